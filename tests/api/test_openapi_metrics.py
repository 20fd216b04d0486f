"""The API description covers every route with the models it validates with; /metrics matches the state."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from hakeeper.api.app import all_routes, build_app
from hakeeper.api.auth import Role, TokenStore
from hakeeper.api.fake import FakeCluster
from hakeeper.api.routing import Services
from hakeeper.api.schemas import REQUEST_MODELS
from tests.api.helpers import NOW, Env, sample_cib

pytestmark = pytest.mark.timeout(60)


async def test_every_route_is_in_openapi(env: Env) -> None:
    resp = await env.client.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"].startswith("3.")
    for route in all_routes():
        operation = doc["paths"][route.path][route.method.lower()]
        assert operation["summary"] == route.summary
        if route.role is not None:
            assert operation["x-hakeeper-role"] == route.role.text
        if route.body is not None:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    counted = sum(len(methods) for methods in doc["paths"].values())
    assert counted == len(all_routes())


async def test_openapi_schemas_are_the_validation_models(env: Env) -> None:
    doc = (await env.client.get("/openapi.json")).json()
    _, components = msgspec.json.schema_components(REQUEST_MODELS, ref_template="#/components/schemas/{name}")
    for name, schema in components.items():
        assert doc["components"]["schemas"][name] == schema
    move = doc["components"]["schemas"]["MoveRequest"]
    assert move["required"] == ["node"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_parse_and_match_the_cluster(env: Env) -> None:
    env.fake.set_member("n3", online=False)
    env.fake.publish("node", "node n3 lost", node="n3")
    resp = await env.client.get("/metrics", headers=env.auth("read"))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    got = samples(resp.text)
    assert got[("ha_cluster_corosync_quorate", ())] == 1
    assert got[("ha_cluster_pacemaker_nodes_total", ())] == 3
    assert got[("hakeeper_nodes_online", ())] == 2
    assert (
        got[("ha_cluster_pacemaker_nodes", (("node", "n3"), ("status", "offline"), ("type", "member")))] == 1
    )
    assert (
        got[("ha_cluster_pacemaker_nodes", (("node", "n1"), ("status", "online"), ("type", "member")))] == 1
    )
    assert got[("hakeeper_dc", (("node", "n1"),))] == 1
    active = {
        dict(labels)["resource"]: dict(labels)["node"]
        for (name, labels) in got
        if name == "ha_cluster_pacemaker_resources"
    }
    assert active == {"vip": "n1", "fs": "n1", "httpd": "n1"}
    assert got[("ha_cluster_pacemaker_fail_count", (("node", "n1"), ("resource", "vip")))] == 1
    assert got[("ha_cluster_pacemaker_migration_threshold", (("node", "n1"), ("resource", "vip")))] == 3
    assert got[("hakeeper_fail_count_expires_in_seconds", (("node", "n1"), ("resource", "vip")))] == 500
    assert got[("ha_cluster_pacemaker_resources_total", ())] == 4
    assert got[("hakeeper_failed_actions", ())] == 1
    assert got[("hakeeper_events_last_id", ())] == 2
    assert got[("hakeeper_cib_epoch", ())] == 7


async def test_metrics_follow_changes(env: Env) -> None:
    env.fake.quorate = False
    await env.client.post("/v1/resources/vip/cleanup", headers=env.auth("operate"), json={})
    got = samples((await env.client.get("/metrics", headers=env.auth("read"))).text)
    assert got[("ha_cluster_corosync_quorate", ())] == 0
    assert got[("hakeeper_failed_actions", ())] == 0
    assert not any(name == "ha_cluster_pacemaker_fail_count" for name, _ in got)


async def test_operation_durations_fencing_and_the_daemons_own_figures(tmp_path: Path) -> None:
    cib = sample_cib()
    n1 = cib.status.nodes[0]
    timed = [
        msgspec.structs.replace(h, ops=[msgspec.structs.replace(o, exec_time=1500) for o in h.ops])
        if h.id == "fs"
        else h
        for h in n1.resources
    ]
    cib = msgspec.structs.replace(
        cib,
        status=msgspec.structs.replace(
            cib.status, nodes=[msgspec.structs.replace(n1, resources=timed), *cib.status.nodes[1:]]
        ),
    )

    def daemon_figures() -> list[Metric]:
        return [GaugeMetricFamily("hakeeper_raft_commit_latency_seconds", "Commit latency", value=0.004)]

    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("prom", Role.READ, NOW)
    app = build_app(Services(handle=FakeCluster(cib, now=NOW), tokens=store, metrics_extra=daemon_figures))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        text = (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text
    got = samples(text)
    key = (("interval_ms", "0"), ("node", "n1"), ("operation", "start"), ("resource", "fs"))
    assert got[("hakeeper_operation_exec_seconds", key)] == 1.5
    assert got[("hakeeper_fencing_events", (("action", "reboot"), ("state", "done"), ("target", "n3")))] == 1
    assert got[("hakeeper_raft_commit_latency_seconds", ())] == 0.004
