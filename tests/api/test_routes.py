"""Every route over HTTP against the fake cluster: answers, roles, preconditions, secrets, audit log."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest

from hakeeper.api.app import all_routes
from hakeeper.api.auth import Role
from hakeeper.api.handle import NoQuorum, NotLeader
from hakeeper.cib import model as m
from hakeeper.cib.operator import find_resource
from tests.api.helpers import FAILED_AT, NOW, SECRET, Env
from tests.api.samples import SAMPLES, Sample

pytestmark = pytest.mark.timeout(60)

ROUTES = {(r.method, r.path): r for r in all_routes()}


async def send(env: Env, sample: Sample, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    hdrs = dict(sample.headers) | (headers or {})
    kwargs: dict[str, object] = {"headers": hdrs}
    if sample.body is not None:
        kwargs["content"] = json.dumps(sample.body)
        hdrs["Content-Type"] = "application/json"
    resp = await env.client.request(sample.method, sample.url, **kwargs)  # type: ignore[arg-type]
    return resp.status_code, resp.content


def test_every_route_has_a_sample() -> None:
    assert {(s.method, s.route) for s in SAMPLES} == set(ROUTES)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{s.method} {s.route}")
async def test_every_route_answers_admin(env: Env, sample: Sample) -> None:
    status, body = await send(env, sample, env.auth("admin"))
    assert status == 200, body
    assert SECRET.encode() not in body


@pytest.mark.parametrize(
    "sample",
    [s for s in SAMPLES if ROUTES[(s.method, s.route)].role is not None],
    ids=lambda s: f"{s.method} {s.route}",
)
async def test_no_token_is_401_and_a_wrong_token_too(env: Env, sample: Sample) -> None:
    status, body = await send(env, sample)
    assert status == 401 and b"needs a token" in body
    status, body = await send(env, sample, {"Authorization": "Bearer not-a-real-token"})
    assert status == 401 and b"not recognised" in body


ROLE_CASES = [
    (s, role) for s in SAMPLES for role in Role if (r := ROUTES[(s.method, s.route)].role) is not None
]


@pytest.mark.parametrize(("sample", "role"), ROLE_CASES, ids=lambda x: getattr(x, "url", None) or x.text)
async def test_each_role_boundary(env: Env, sample: Sample, role: Role) -> None:
    needed = ROUTES[(sample.method, sample.route)].role
    assert needed is not None
    status, body = await send(env, sample, env.auth(role.text))
    if role < needed:
        assert status == 403, body
        assert needed.text.encode() in body and role.text.encode() in body
    else:
        assert status == 200, body


def test_operate_and_admin_boundaries_are_as_documented() -> None:
    operate = {p for (meth, p), r in ROUTES.items() if r.role == Role.OPERATE}
    assert operate == {
        "/v1/resources/{rsc}/move",
        "/v1/resources/{rsc}/ban",
        "/v1/resources/{rsc}/clear",
        "/v1/resources/{rsc}/cleanup",
        "/v1/resources/{rsc}/enable",
        "/v1/resources/{rsc}/disable",
        "/v1/resources/{rsc}/restart",
        "/v1/nodes/{node}/standby",
        "/v1/nodes/{node}/unstandby",
        "/v1/nodes/{node}/shutdown",
    }
    assert all(r.role == Role.ADMIN for r in ROUTES.values() if r.write and r.path not in operate)
    assert all(r.role in (Role.READ, None) for r in ROUTES.values() if not r.write)


# --- reads -------------------------------------------------------------------------------------------------


async def test_cluster_nodes_and_resources_show_the_state(env: Env) -> None:
    env.fake.set_member("n3", online=False, unclean=True)
    cluster = (await env.client.get("/v1/cluster", headers=env.auth("read"))).json()
    assert cluster["quorate"] is True and cluster["dc"] == "n1" and cluster["version"] == "0.7.2"
    nodes = {n["name"]: n for n in cluster["nodes"]}
    assert (
        nodes["n1"]["online"] and nodes["n1"]["is_dc"] and nodes["n1"]["resources"] == ["fs", "httpd", "vip"]
    )
    assert not nodes["n3"]["online"] and nodes["n3"]["unclean"]
    rscs = (await env.client.get("/v1/resources", headers=env.auth("read"))).json()
    by_id = {r["id"]: r for r in rscs["resources"]}
    assert by_id["vip"]["role"] == "Started" and by_id["vip"]["nodes"] == ["n1"]
    assert by_id["web"]["members"] == ["fs", "httpd"] and by_id["web"]["nodes"] == ["n1"]
    assert by_id["ping-clone"]["role"] == "Stopped"
    [failed] = rscs["failed_actions"]
    assert (failed["rsc"], failed["node"], failed["rc"], failed["exit_reason"]) == (
        "vip",
        "n1",
        7,
        "not running",
    )


async def test_fail_counts_show_the_time_left_before_they_expire(env: Env) -> None:
    vip = (await env.client.get("/v1/resources/vip", headers=env.auth("read"))).json()
    [fc] = vip["fail_counts"]
    assert (fc["node"], fc["count"], fc["migration_threshold"]) == ("n1", 1, 3)
    assert fc["last_failure"] == FAILED_AT and fc["expires_in_s"] == 500
    env.fake.set_now(NOW + 450)
    vip = (await env.client.get("/v1/resources/vip", headers=env.auth("read"))).json()
    assert vip["fail_counts"][0]["expires_in_s"] == 50


async def test_secrets_are_never_returned(env: Env) -> None:
    read = env.auth("read")
    vip = (await env.client.get("/v1/resources/vip", headers=read)).json()
    assert vip["params"] == {"ip": "10.0.0.10", "password": "***", "community": "***"}
    for url in (
        "/v1/resources",
        "/v1/resources/vip",
        "/v1/resources/vip/explain",
        "/v1/config",
        "/v1/cluster",
        "/metrics",
        "/v1/nodes",
    ):
        body = (await env.client.get(url, headers=env.auth("admin"))).content
        assert SECRET.encode() not in body and b"public-ish" not in body, url
    audit_text = env.audit.path.read_bytes() if env.audit.path.exists() else b""
    resp = await env.client.post(
        "/v1/resources",
        headers=env.auth("admin"),
        json={"id": "db", "agent": "ocf:heartbeat:pgsql", "params": {"db_password": "hunter2"}},
    )
    assert resp.status_code == 200
    audit_text = env.audit.path.read_bytes()
    assert b"hunter2" not in audit_text and b"db_password" in audit_text


async def test_config_round_trip_keeps_masked_secrets(env: Env) -> None:
    admin = env.auth("admin")
    got = (await env.client.get("/v1/config", headers=admin)).json()
    assert SECRET not in got["toml"] and "***" in got["toml"]
    edited = got["toml"].replace("10.0.0.10", "10.0.0.99")
    resp = await env.client.put(
        "/v1/config", headers=admin | {"If-Match": got["config_version"]}, json={"toml": edited}
    )
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["committed"]["previous_version"] == "0.7.2" and result["committed"]["version"] == "0.8.0"
    vip = find_resource(env.fake.cib(), "vip").resource
    assert isinstance(vip, m.Primitive)
    assert vip.instance_attributes[0].values == {
        "ip": "10.0.0.99",
        "password": SECRET,
        "community": "public-ish",
    }


async def test_stale_writes_get_409_with_the_current_version(env: Env) -> None:
    admin = env.auth("admin")
    got = (await env.client.get("/v1/config", headers=admin)).json()
    first = await env.client.post(
        "/v1/resources/vip/move", headers=admin | {"If-Match": got["config_version"]}, json={"node": "n2"}
    )
    assert first.status_code == 200 and first.json()["config_version"] == "0.8"
    stale = await env.client.put(
        "/v1/config", headers=admin | {"If-Match": got["config_version"]}, json={"toml": got["toml"]}
    )
    assert stale.status_code == 409
    assert stale.json()["current_version"] == "0.8" and "changed since you read it" in stale.json()["error"]
    stale_move = await env.client.post(
        "/v1/resources/vip/ban", headers=admin | {"If-Match": '"0.7"'}, json={"node": "n3"}
    )
    assert stale_move.status_code == 409
    missing = await env.client.put("/v1/config", headers=admin, json={"toml": got["toml"]})
    assert missing.status_code == 428 and "If-Match" in missing.json()["error"]


async def test_config_dry_run_predicts_and_changes_nothing(env: Env) -> None:
    admin = env.auth("admin")
    got = (await env.client.get("/v1/config", headers=admin)).json()
    resp = await env.client.put(
        "/v1/config",
        headers=admin | {"If-Match": got["config_version"]},
        json={"toml": got["toml"].replace('"10.0.0.10"', '"10.0.0.11"'), "dry_run": True},
    )
    assert resp.status_code == 200 and resp.json()["committed"] is None and resp.json()["changes"] >= 1
    changed = resp.json()["changed"]
    assert changed == ["modify /configuration/resources/vip/instance_attributes/vip-ia/values: ip"]
    assert "10.0.0.11" not in resp.text
    assert env.fake.cib().epoch == 7


async def test_invalid_configuration_is_refused_with_the_problems(env: Env) -> None:
    admin = env.auth("admin")
    resp = await env.client.put(
        "/v1/config", headers=admin | {"If-Match": "0.7"}, json={"toml": "[resources.x]\nagent = 12\n"}
    )
    assert resp.status_code == 400 and "resources" in resp.json()["error"]


# --- writes ------------------------------------------------------------------------------------------------


async def test_writes_answer_with_the_committed_version_and_are_audited(env: Env) -> None:
    op = env.auth("operate")
    resp = await env.client.post("/v1/nodes/n2/standby", headers=op)
    assert resp.json() == {
        "version": "0.8.0",
        "index": 1,
        "previous_version": "0.7.2",
        "config_version": "0.8",
        "changed": True,
    }
    resp = await env.client.post("/v1/resources/vip/cleanup", headers=op, json={})
    assert resp.json()["version"] == "0.8.1" and resp.json()["index"] == 2
    denied = await env.client.post("/v1/resources/vip/move", headers=op, json={"node": "nowhere"})
    assert denied.status_code == 404 and "nowhere" in denied.json()["error"]
    records = env.audit.records()
    assert [(r.actor, r.action, r.version_before, r.version_after, r.status) for r in records] == [
        ("operate-user", "POST /v1/nodes/n2/standby", "0.7.2", "0.8.0", 200),
        ("operate-user", "POST /v1/resources/vip/cleanup", "0.8.0", "0.8.1", 200),
        ("operate-user", "POST /v1/resources/vip/move", "0.8.1", None, 404),
    ]
    assert records[2].request == {"node": "nowhere", "lifetime_s": None}
    assert all(r.time == NOW for r in records)


@pytest.mark.parametrize(
    "sample",
    [s for s in SAMPLES if ROUTES[(s.method, s.route)].write and not (s.body or {}).get("dry_run")],
    ids=lambda s: f"{s.method} {s.route}",
)
async def test_audit_records_each_write(env: Env, sample: Sample) -> None:
    status, _ = await send(env, sample, env.auth("admin"))
    assert status == 200
    [record] = env.audit.records()
    assert record.action == f"{sample.method} {sample.url.split('?')[0]}" and record.actor == "admin-user"
    assert record.version_before == "0.7.2" and record.status == 200


async def test_move_then_the_policy_engine_moves_it(env: Env) -> None:
    admin = env.auth("admin")
    await env.client.post("/v1/resources/vip/move", headers=admin, json={"node": "n2"})
    loc = next(c for c in env.fake.cib().configuration.constraints if c.id == "cli-prefer-vip")
    assert isinstance(loc, m.Location) and loc.node == "n2"
    explain = (await env.client.get("/v1/resources/vip/explain", headers=admin)).json()
    assert any("vip" in line and "n1 -> n2" in line for line in explain["planned"])
    assert any(line.startswith("vip allocation score on n2") for line in explain["scores"])
    assert any("cli-prefer-vip" in r for r in explain["reasons"])
    cleared = await env.client.post("/v1/resources/vip/clear", headers=admin, json={})
    assert cleared.json()["changed"] is True
    again = await env.client.post("/v1/resources/vip/clear", headers=admin, json={})
    assert again.json()["changed"] is False and again.json()["index"] == 0


async def test_simulate_changes_nothing(env: Env) -> None:
    before = env.fake.cib()
    resp = await env.client.post(
        "/v1/simulate",
        headers=env.auth("read"),
        json={
            "ops": [
                {
                    "op": "create",
                    "path": "/configuration/nodes/n1/instance_attributes",
                    "value": {"id": "n1-standby", "values": {"standby": "on"}},
                }
            ]
        },
    )
    assert resp.status_code == 200
    assert any("vip" in line and "n1 ->" in line for line in resp.json()["summary"])
    assert env.fake.cib() is before
    bad = await env.client.post(
        "/v1/simulate",
        headers=env.auth("read"),
        json={"ops": [{"op": "delete", "path": "/configuration/resources/nope"}]},
    )
    assert bad.status_code == 400 and "nope" in bad.json()["error"]
    dangling = await env.client.post(
        "/v1/simulate",
        headers=env.auth("read"),
        json={
            "ops": [
                {
                    "op": "create",
                    "path": "/configuration/constraints",
                    "value": {
                        "element": "colocation",
                        "id": "c9",
                        "rsc": "vip",
                        "with_rsc": "ghost",
                        "score": 5,
                    },
                }
            ]
        },
    )
    assert dangling.status_code == 400 and "ghost" in dangling.json()["error"]


@pytest.mark.parametrize(("error", "status"), [(NoQuorum(), 503), (NotLeader(None), 503)])
async def test_cluster_unavailable_is_503_with_the_reason(env: Env, error: Exception, status: int) -> None:
    env.fake.refuse_next = error  # type: ignore[assignment]
    resp = await env.client.post("/v1/nodes/n2/standby", headers=env.auth("operate"))
    assert resp.status_code == status and str(error) == resp.json()["error"]
    assert env.audit.records()[-1].status == status


async def test_events_and_the_live_stream(env: Env) -> None:
    env.fake.publish("node", "node n3 lost", node="n3")  # events 2 and 3 after the fixture's first
    env.fake.publish("resource", "vip started on n2", node="n2", rsc="vip", task="start", rc=0)
    listed = (await env.client.get("/v1/events?since=2", headers=env.auth("read"))).json()
    assert [e["desc"] for e in listed["events"]] == ["vip started on n2"] and listed["last_id"] == 3
    resp = await env.client.get("/v1/events/stream?since=1&limit=2", headers=env.auth("read"))
    assert resp.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in resp.text.split("\n\n") if f.startswith("id:")]
    assert [f.splitlines()[0] for f in frames] == ["id: 2", "id: 3"]
    data = msgspec.json.decode(frames[1].splitlines()[2].removeprefix("data: "))
    assert data["rsc"] == "vip" and data["kind"] == "resource"
    resumed = await env.client.get(
        "/v1/events/stream?limit=1", headers=env.auth("read") | {"Last-Event-ID": "2"}
    )
    assert "id: 3" in resumed.text and "id: 2\n" not in resumed.text
    bad = await env.client.get("/v1/events?since=abc", headers=env.auth("read"))
    assert bad.status_code == 400 and "since" in bad.json()["error"]


async def test_fencing_history_and_whoami(env: Env) -> None:
    hist = (await env.client.get("/v1/fencing", headers=env.auth("read"))).json()["history"]
    assert hist[0]["target"] == "n3" and hist[0]["state"] == "done"
    who = (await env.client.get("/v1/whoami", headers=env.auth("operate"))).json()
    assert who == {"actor": "operate-user", "role": "operate"}


async def test_unknown_routes_and_methods_answer_json(env: Env) -> None:
    resp = await env.client.get("/v1/nothing", headers=env.auth("read"))
    assert resp.status_code == 404 and "/openapi.json" in resp.json()["error"]
    resp = await env.client.delete("/v1/cluster", headers=env.auth("admin"))
    assert resp.status_code == 405 and "not allowed" in resp.json()["error"]
    resp = await env.client.delete("/v1/constraints/web-with-vip/", headers=env.auth("admin"))
    assert resp.status_code == 404 and "no API route" in resp.json()["error"]


async def test_revoked_tokens_stop_working(env: Env) -> None:
    env.store.revoke("read-user")
    resp = await env.client.get("/v1/cluster", headers=env.auth("read"))
    assert resp.status_code == 401


def vip_meta(env: Env) -> dict[str, str]:
    vip = find_resource(env.fake.cib(), "vip").resource
    assert isinstance(vip, m.Primitive)
    return dict(vip.meta_attributes[0].values)


async def test_restart_waits_for_the_stop_then_restores_the_target_role(env: Env) -> None:
    request = asyncio.create_task(
        env.client.post("/v1/resources/vip/restart", headers=env.auth("operate"), json={"timeout_s": 30})
    )
    while vip_meta(env).get("target-role") != "Stopped":
        await asyncio.sleep(0.01)
    assert not request.done()  # waiting for the cluster to report vip stopped
    cib = env.fake.cib()
    stopped = m.OpRecord(id="vip_last_0", operation="stop", call_id=9, rc=0, on_node="n1")
    n1 = cib.status.nodes[0]
    hist = [msgspec.structs.replace(h, ops=[stopped]) if h.id == "vip" else h for h in n1.resources]
    nodes = [msgspec.structs.replace(n1, resources=hist), *cib.status.nodes[1:]]
    env.fake.set_cib(msgspec.structs.replace(cib, status=msgspec.structs.replace(cib.status, nodes=nodes)))
    resp = await request
    assert resp.status_code == 200, resp.text
    assert resp.json()["previous_version"] == "0.7.2" and resp.json()["index"] == 2
    assert "target-role" not in vip_meta(env)
    [record] = env.audit.records()
    assert (record.version_before, record.version_after) == ("0.7.2", resp.json()["version"])


async def test_restart_that_never_sees_the_stop_says_so(env: Env) -> None:
    resp = await env.client.post(
        "/v1/resources/vip/restart", headers=env.auth("operate"), json={"timeout_s": 0.3}
    )
    assert resp.status_code == 504 and "stays disabled" in resp.json()["error"]
    assert vip_meta(env)["target-role"] == "Stopped"


async def test_shutdown_asks_an_online_node_and_refuses_others(env: Env) -> None:
    answer = await env.client.post("/v1/nodes/n2/shutdown", headers=env.auth("operate"))
    assert answer.status_code == 200, answer.text
    n2 = next(n for n in env.fake.cib().status.nodes if n.id == "n2")
    assert any("shutdown" in s.values for s in n2.transient_attributes)
    env.fake.set_member("n3", online=False)
    down = await env.client.post("/v1/nodes/n3/shutdown", headers=env.auth("operate"))
    assert down.status_code == 409 and "nothing to stop" in down.text
    unknown = await env.client.post("/v1/nodes/n9/shutdown", headers=env.auth("operate"))
    assert unknown.status_code == 404
    # the node answering: its daemon begins the shutdown itself (no commit needed, so no quorum needed)
    env.fake.quorate = False
    before = env.fake.cib().version
    local = await env.client.post("/v1/nodes/n1/shutdown", headers=env.auth("operate"))
    assert local.status_code == 200, local.text
    assert len(env.fake.shutdowns) == 1 and env.fake.cib().version == before
