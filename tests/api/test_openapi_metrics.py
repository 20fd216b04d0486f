"""The API description covers every route with the models it validates with; /metrics matches the state."""

from __future__ import annotations

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hakeeper.api.app import all_routes
from hakeeper.api.schemas import REQUEST_MODELS
from tests.api.helpers import Env

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
