"""The API's route and role suite against a real three-node cluster, over the HTTP listener with tokens.

``test_routes.py`` runs the same samples (``samples.py``) against the in-memory fake; here every route is
exercised once on real daemons: changes go through the DC and the replicated log (requests are sent to
``n1``, which forwards them when it is not the DC), the audit log is the daemon's own file, and secrets are
looked for in every answer, the audit log and the daemons' logs.

One cluster serves the module. The tests run in file order: first those that change nothing (401, 403),
then every route once (which leaves the cluster in maintenance mode, so nothing created by the samples is
started), then the stale write and the secrets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from hakeeper.api.app import all_routes
from hakeeper.api.audit import AUDIT_FILE, AuditLog
from hakeeper.api.auth import Role
from hakeeper.cli.localcluster import LocalCluster, free_tcp_port, wait_until
from tests.api.helpers import SECRET
from tests.api.samples import SAMPLES, Sample
from tests.clusters import DUMMY, NODES

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed"),
]

ROUTES = {(r.method, r.path): r for r in all_routes()}
OTHER_SECRET = "public-ish"  # not secret by its name, but listed in the resource's secret-params

# the sample cluster of helpers.sample_cib, as a bootstrap configuration on Debian's Dummy agent
BOOTSTRAP = f"""
[cluster]
name = "api-real"

[properties]
stonith-enabled = false

[rsc_defaults]
resource-stickiness = 100

[nodes.n1]
attributes = {{ rack = "r0" }}
[nodes.n2]
[nodes.n3]

[resources.vip]
agent = "ocf:heartbeat:Dummy"
params = {{ ip = "10.0.0.10", password = "{SECRET}", community = "{OTHER_SECRET}" }}
meta = {{ failure-timeout = "600", migration-threshold = "3", secret-params = "community" }}

[resources.fs]
agent = "ocf:heartbeat:Dummy"

[resources.httpd]
agent = "ocf:heartbeat:Dummy"

[resources.web]
group = ["fs", "httpd"]

[resources.ping]
agent = "ocf:heartbeat:Dummy"

[resources.ping-clone]
clone = "ping"

[constraints.web-with-vip]
type = "colocation"
resource = "web"
with = "vip"
score = "INFINITY"
"""


@dataclass
class Api:
    cluster: LocalCluster
    http: httpx.Client
    tokens: dict[Role, str]

    def auth(self, role: Role | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role is not None else {}

    def send(self, sample: Sample, role: Role | None, **headers: str) -> httpx.Response:
        hdrs = dict(sample.headers) | self.auth(role) | headers
        content = None
        if sample.body is not None:
            content = json.dumps(sample.body)
            hdrs["Content-Type"] = "application/json"
        return self.http.request(sample.method, sample.url, content=content, headers=hdrs)

    def config_version(self) -> str:
        resp = self.http.get("/v1/config", headers=self.auth(Role.ADMIN))
        assert resp.status_code == 200, resp.text
        version: str = resp.json()["config_version"]
        return version


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    c = LocalCluster(tmp_path_factory.mktemp("api"), NODES, BOOTSTRAP, http_port=free_tcp_port())
    tokens = {role: c.create_token(f"{role.text}-user", role) for role in Role}
    try:
        c.start_all()
        with httpx.Client(base_url=c.dashboard_url("n1").rstrip("/"), timeout=60) as http:
            a = Api(c, http, tokens)
            assert wait_until(lambda: settled(a), 90, 0.5), c.logs()
            yield a
    finally:
        c.stop_all()


def settled(api: Api) -> bool:
    """n1 answers, the cluster has a DC and quorum, and vip and web run (together)."""
    try:
        resp = api.http.get("/v1/resources", headers=api.auth(Role.READ))
        cluster = api.http.get("/v1/cluster", headers=api.auth(Role.READ))
    except httpx.TransportError:
        return False
    if resp.status_code != 200 or cluster.status_code != 200:
        return False
    views = {r["id"]: r for r in resp.json()["resources"]}
    vip, web = views.get("vip"), views.get("web")
    return (
        bool(cluster.json()["dc"])
        and vip is not None
        and web is not None
        and len(vip["nodes"]) == 1
        and web["nodes"] == vip["nodes"]
    )


def real(sample: Sample, api: Api) -> Sample:
    """The fake suite's sample, adjusted where a real cluster differs: nothing created by the samples may
    touch this machine (a Dummy instead of PostgreSQL, a service that does not exist instead of an address),
    a restart may take longer than on the fake, and ``If-Match`` must name the live configuration version."""
    if (sample.method, sample.route) == ("POST", "/v1/resources"):
        return replace(sample, body={**sample.body, "agent": "ocf:heartbeat:Dummy"})
    if sample.route == "/v1/resources/{rsc}/restart":
        return replace(sample, body={"timeout_s": 90})
    if sample.route == "/v1/config/haresources":
        return replace(sample, body={"line": "n2 hakeeper-no-such-service"})
    if sample.headers and dict(sample.headers).get("If-Match"):
        return replace(sample, headers=(("If-Match", api.config_version()),))
    return sample


def written(resp: httpx.Response) -> dict[str, Any] | None:
    """The committed change a write answered with (``PUT /v1/config`` wraps it; a dry run has none)."""
    body: dict[str, Any] = resp.json()
    if "committed" in body:
        inner: dict[str, Any] | None = body["committed"]
        return inner
    return body


def needed(sample: Sample) -> Role | None:
    return ROUTES[(sample.method, sample.route)].role


FENCE = Sample("POST", "/v1/nodes/{node}/fence", "/v1/nodes/n3/fence", {"action": "off", "timeout_s": 60})
SHUTDOWN = Sample("POST", "/v1/nodes/{node}/shutdown", "/v1/nodes/n3/shutdown")
CONFIRM = Sample("POST", "/v1/nodes/{node}/fence/confirm", "/v1/nodes/n3/fence/confirm")
NODE_ENDING = [s for s in (FENCE, SHUTDOWN, CONFIRM) if (s.method, s.route) in ROUTES]
"""What ends a node goes last, all on one node (the victim): fenced (no device: it stays), asked to shut
down, then killed and confirmed down. Two nodes lost would cost the cluster its quorum. (The fake suite's
samples for these routes may differ; on the real cluster these are the ones that make sense.)"""
ENDING_ROUTES = {(s.method, s.route) for s in NODE_ENDING}
EVERY = [s for s in SAMPLES if (s.method, s.route) not in ENDING_ROUTES] + NODE_ENDING
AUTHENTICATED = [s for s in EVERY if needed(s) is not None]


def test_every_route_has_a_sample() -> None:
    assert {(s.method, s.route) for s in EVERY} == set(ROUTES)


def test_no_token_is_401_on_every_route_that_needs_one(api: Api) -> None:
    for sample in AUTHENTICATED:
        resp = api.send(sample, None)
        assert resp.status_code == 401, (sample, resp.text)
        assert "needs a token" in resp.json()["error"] and "Bearer" in resp.headers["www-authenticate"]
        wrong = api.send(sample, None, Authorization="Bearer not-a-real-token")
        assert wrong.status_code == 401 and "not recognised" in wrong.json()["error"], sample


def test_each_role_below_the_route_s_is_403(api: Api) -> None:
    boundaries = 0
    for sample in AUTHENTICATED:
        route_role = needed(sample)
        assert route_role is not None
        for role in Role:
            if role >= route_role:
                continue
            resp = api.send(sample, role)
            assert resp.status_code == 403, (sample, role, resp.text)
            error = resp.json()["error"]
            assert route_role.text in error and role.text in error and f"{role.text}-user" in error
            boundaries += 1
    assert boundaries >= len([s for s in EVERY if needed(s) == Role.ADMIN])  # read and operate refused


def test_every_route_once_with_the_least_role_it_needs(api: Api) -> None:
    writes: list[tuple[str, str, Role, httpx.Response]] = []
    before = time.time()
    # the node fenced and then confirmed down is the DC when it can be (n1 takes the requests), so the
    # confirmation is made while the cluster elects a new DC
    dc = api.http.get("/v1/cluster", headers=api.auth(Role.READ)).json()["dc"]
    victim = dc if dc != "n1" else "n3"
    for sample in EVERY:
        route = ROUTES[(sample.method, sample.route)]
        if sample is CONFIRM:
            kill_and_wait_offline(api, victim)
        s = real(sample, api)
        if sample in NODE_ENDING:
            s = replace(s, url=s.url.replace("/n3/", f"/{victim}/"))
        resp = api.send(s, route.role)
        assert resp.status_code == 200, (s, resp.text)
        assert SECRET.encode() not in resp.content and OTHER_SECRET.encode() not in resp.content, s
        if sample in (FENCE, CONFIRM):
            assert resp.json()["event"]["target"] == victim, resp.text
        if sample is CONFIRM:
            assert resp.json()["ok"] is True, resp.text
        if route.write:
            if (s.body or {}).get("dry_run"):
                assert written(resp) is None  # a dry run commits nothing, so there is nothing to audit
                continue
            assert route.role is not None
            writes.append((s.method, s.url.split("?")[0], route.role, resp))
            committed = written(resp)
            assert committed is not None and committed["version"] and committed["previous_version"]
    after = time.time()

    # the audit log of the node that took the requests has one record per write: who, what, when, versions
    records = [
        r for r in AuditLog(api.cluster.node_dir("n1") / AUDIT_FILE).records() if before <= r.time <= after
    ]
    assert [(r.action, r.status) for r in records] == [(f"{m} {p}", 200) for m, p, _, _ in writes]
    for record, (_, _, role, resp) in zip(records, writes, strict=True):
        assert (record.actor, record.role) == (f"{role.text}-user", role.text)
        committed = written(resp)
        assert committed is not None
        assert record.version_before == committed["previous_version"]
        assert record.version_after == committed["version"]
        if committed.get("changed", True):
            assert record.index is not None and record.index > 0
    assert SECRET.encode() not in (api.cluster.node_dir("n1") / AUDIT_FILE).read_bytes()

    # the changes reached the real cluster
    cluster = api.http.get("/v1/cluster", headers=api.auth(Role.READ)).json()
    assert cluster["maintenance_mode"] is True
    nodes = {n["name"]: n for n in cluster["nodes"]}
    assert nodes["n2"]["maintenance"] and not nodes["n2"]["standby"]
    assert nodes["n2"]["attributes"].get("rack") == "r1" and "rack" not in nodes["n1"]["attributes"]
    resources = {
        r["id"] for r in api.http.get("/v1/resources", headers=api.auth(Role.READ)).json()["resources"]
    }
    assert "db" in resources and "httpd" not in resources
    assert not nodes[victim]["online"] and nodes[victim]["fenced_at"] is not None
    fencing = api.http.get("/v1/fencing", headers=api.auth(Role.READ)).json()["history"]
    assert any(e["target"] == victim and e["state"] == "done" for e in fencing), fencing


def kill_and_wait_offline(api: Api, node: str) -> None:
    """Power ``node`` off, as an operator would before confirming it fenced, and wait until n1 sees it."""
    api.cluster.kill(node)

    def offline() -> bool:
        nodes = api.http.get("/v1/nodes", headers=api.auth(Role.READ)).json()["nodes"]
        return not next(n for n in nodes if n["name"] == node)["online"]

    assert wait_until(offline, 60, 0.3), api.cluster.logs()


def test_a_stale_configuration_write_is_409_with_the_current_version(api: Api) -> None:
    admin = api.auth(Role.ADMIN)
    seen = api.http.get("/v1/config", headers=admin).json()
    changed = api.http.put("/v1/nodes/n3/attributes/rack", headers=admin, json={"value": "r3"})
    assert changed.status_code == 200, changed.text
    current = api.config_version()
    assert current != seen["config_version"]
    stale = api.http.put(
        "/v1/config", headers=admin | {"If-Match": seen["config_version"]}, json={"toml": seen["toml"]}
    )
    assert stale.status_code == 409, stale.text
    assert stale.json()["current_version"] == current
    assert "changed since you read it" in stale.json()["error"]
    stale_ban = api.http.post(
        "/v1/resources/vip/ban", headers=admin | {"If-Match": seen["config_version"]}, json={"node": "n3"}
    )
    assert stale_ban.status_code == 409 and stale_ban.json()["current_version"] == current
    # with the current version the same write goes through
    fresh = api.http.get("/v1/config", headers=admin).json()
    ok = api.http.put(
        "/v1/config",
        headers=admin | {"If-Match": fresh["config_version"]},
        json={"toml": fresh["toml"], "dry_run": True},
    )
    assert ok.status_code == 200, ok.text


def test_secrets_are_never_returned_nor_logged(api: Api) -> None:
    for role in (Role.READ, Role.ADMIN):
        for sample in SAMPLES:
            if ROUTES[(sample.method, sample.route)].write or sample.route == "/v1/events/stream":
                continue
            resp = api.send(sample, max(role, needed(sample) or Role.READ))
            assert resp.status_code == 200, (sample, resp.text)
            assert SECRET.encode() not in resp.content and OTHER_SECRET.encode() not in resp.content, sample
    vip = api.http.get("/v1/resources/vip", headers=api.auth(Role.READ)).json()
    assert vip["params"] == {"ip": "10.0.0.10", "password": "***", "community": "***"}
    # a secret sent in a write is not written to the audit log either
    created = api.http.post(
        "/v1/resources",
        headers=api.auth(Role.ADMIN),
        json={"id": "db2", "agent": "ocf:heartbeat:Dummy", "params": {"db_password": "hunter2"}},
    )
    assert created.status_code == 200, created.text
    audit = (api.cluster.node_dir("n1") / AUDIT_FILE).read_bytes()
    assert b"db_password" in audit and b"hunter2" not in audit
    for node in NODES:
        log = (api.cluster.node_dir(node) / "daemon.log").read_text(errors="replace")
        assert SECRET not in log and "hunter2" not in log, f"a secret is in {node}'s daemon log"


def test_the_description_lists_every_route(api: Api) -> None:
    doc = api.http.get("/openapi.json").json()
    described = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert set(ROUTES) <= described
