"""The fencing routes over HTTP against the fake cluster: fence a node, confirm one, roles, errors, audit."""

from __future__ import annotations

import msgspec
import pytest

from hakeeper.api.routes_write import FenceResult
from hakeeper.fencing.requests import CONFIRM_CLIENT, FENCE_CLIENT
from tests.api.helpers import Env

pytestmark = pytest.mark.timeout(60)


async def test_fencing_a_node_answers_with_the_dcs_record(env: Env) -> None:
    resp = await env.client.post("/v1/nodes/n2/fence", json={"action": "off"}, headers=env.auth("admin"))
    assert resp.status_code == 200, resp.text
    result = msgspec.json.decode(resp.content, type=FenceResult)
    assert result.ok and result.event.target == "n2" and result.event.action == "off"
    assert result.event.state == "done" and result.event.client is not None
    assert result.event.client.startswith(FENCE_CLIENT + "admin-user:")
    history = env.fake.cib().status.fencing_history
    request = next(e for e in history if e.client == result.event.client and e.state == "pending")
    assert request.reason == "off requested by admin-user" and request.origin == env.fake.local_node
    assert result.committed.index > 0


async def test_reboot_is_the_default_action(env: Env) -> None:
    resp = await env.client.post("/v1/nodes/n3/fence", json={}, headers=env.auth("admin"))
    assert msgspec.json.decode(resp.content, type=FenceResult).event.action == "reboot"


async def test_a_failed_fencing_is_an_answer_not_an_error(env: Env) -> None:
    env.fake.fence_outcome = "failed"
    resp = await env.client.post("/v1/nodes/n2/fence", json={}, headers=env.auth("admin"))
    assert resp.status_code == 200
    result = msgspec.json.decode(resp.content, type=FenceResult)
    assert not result.ok and result.event.state == "failed"


async def test_no_answer_within_the_timeout_says_what_to_check(env: Env) -> None:
    env.fake.fence_outcome = None  # the DC went away after the request committed
    resp = await env.client.post("/v1/nodes/n2/fence", json={"timeout_s": 0.3}, headers=env.auth("admin"))
    assert resp.status_code == 504
    assert "hakeeper fence history n2" in resp.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"action": "on"}, 400, "action"),
        ({"timeout_s": 0}, 400, "timeout_s"),
        ({"timeout_s": 99999}, 400, "timeout_s"),
    ],
)
async def test_bad_requests_are_refused(env: Env, body: dict[str, object], status: int, words: str) -> None:
    resp = await env.client.post("/v1/nodes/n2/fence", json=body, headers=env.auth("admin"))
    assert resp.status_code == status and words in resp.json()["error"]
    assert not [e for e in env.fake.cib().status.fencing_history if e.target == "n2"]


async def test_an_unknown_node_is_not_found(env: Env) -> None:
    for path in ("/v1/nodes/n9/fence", "/v1/nodes/n9/fence/confirm"):
        resp = await env.client.post(
            path, headers=env.auth("admin"), json={} if path.endswith("fence") else None
        )
        assert resp.status_code == 404 and "no node 'n9'" in resp.json()["error"]


@pytest.mark.parametrize("role", ["read", "operate"])
async def test_fencing_needs_admin(env: Env, role: str) -> None:
    resp = await env.client.post("/v1/nodes/n2/fence", json={}, headers=env.auth(role))
    assert resp.status_code == 403
    resp = await env.client.post("/v1/nodes/n2/fence/confirm", headers=env.auth(role))
    assert resp.status_code == 403
    assert not [e for e in env.fake.cib().status.fencing_history if e.target == "n2"]


async def test_confirming_an_offline_node_records_it_fenced_manually(env: Env) -> None:
    env.fake.set_member("n3", online=False)
    resp = await env.client.post("/v1/nodes/n3/fence/confirm", headers=env.auth("admin"))
    assert resp.status_code == 200, resp.text
    result = msgspec.json.decode(resp.content, type=FenceResult)
    assert result.ok and result.event.device == "manual" and result.event.action == "off"
    assert result.event.client is not None and result.event.client.startswith(CONFIRM_CLIENT)


async def test_confirming_an_online_node_is_refused(env: Env) -> None:
    resp = await env.client.post("/v1/nodes/n2/fence/confirm", headers=env.auth("admin"))
    assert resp.status_code == 409
    assert "n2 is online" in resp.json()["error"] and "hakeeper fence n2" in resp.json()["error"]
    assert not [e for e in env.fake.cib().status.fencing_history if e.target == "n2"]


async def test_fencing_requests_are_audited(env: Env) -> None:
    await env.client.post("/v1/nodes/n2/fence", json={"action": "off"}, headers=env.auth("admin"))
    await env.client.post("/v1/nodes/n2/fence/confirm", headers=env.auth("admin"))  # refused: online
    records = env.audit.records()
    assert [(r.action, r.status) for r in records] == [
        ("POST /v1/nodes/n2/fence", 200),
        ("POST /v1/nodes/n2/fence/confirm", 409),
    ]
    assert records[0].actor == "admin-user" and records[0].request == {"action": "off", "timeout_s": 180.0}


async def test_force_confirms_a_node_membership_still_shows(env: Env) -> None:
    resp = await env.client.post(
        "/v1/nodes/n2/fence/confirm", json={"force": True}, headers=env.auth("admin")
    )
    assert resp.status_code == 200, resp.text
    assert msgspec.json.decode(resp.content, type=FenceResult).event.device == "manual"


async def test_a_stale_if_match_is_refused_before_anything_is_requested(env: Env) -> None:
    headers = env.auth("admin") | {"If-Match": "0.6"}
    resp = await env.client.post("/v1/nodes/n2/fence", json={}, headers=headers)
    assert resp.status_code == 409
    assert not [e for e in env.fake.cib().status.fencing_history if e.target == "n2"]
