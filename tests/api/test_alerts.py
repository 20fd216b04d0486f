"""Alerts: the ordered, retried queue core, the CRM_alert_* environment, and real agents and a webhook."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import msgspec
import pytest

from hakeeper.api.alerts import (
    AlertQueue,
    AlertRunner,
    Target,
    alert_env,
    follow,
    format_timestamp,
    targets_from_cib,
)
from hakeeper.api.app import build_app
from hakeeper.api.auth import Role, TokenStore
from hakeeper.api.fake import FakeCluster
from hakeeper.api.handle import Event, EventKind
from hakeeper.api.routing import Services
from hakeeper.cib import model as m
from hakeeper.cib.patch import Create, Patch
from tests.api.helpers import sample_cib

pytestmark = pytest.mark.timeout(60)
T0 = 1_700_000_000.123456


def event(n: int, kind: EventKind = "node", **fields: object) -> Event:
    return msgspec.convert(
        {"id": n, "timestamp": T0 + n, "kind": kind, "desc": f"event {n}", **fields}, Event
    )


def target(name: str, *select: str, path: str = "/bin/true", env: dict[str, str] | None = None) -> Target:
    return Target(
        alert_id=name,
        recipient_id=f"{name}-r",
        recipient=f"{name}@example",
        path=path,
        select=frozenset(select),
        env=env or {},
    )


# --- the core -------------------------------------------------------------------------------


def test_events_go_out_in_order_one_at_a_time_to_the_targets_that_select_them() -> None:
    q = AlertQueue([target("all"), target("fence", "fencing")])
    q.push(event(1, "node"))
    q.push(event(2, "fencing"))
    first = q.ready(0)
    assert [(d.target.alert_id, d.event.id, d.sequence) for d in first] == [("all", 1, 1), ("fence", 2, 1)]
    assert q.ready(0) == []  # one delivery in flight per target
    for d in first:
        q.done(d, 0, ok=True)
    [second] = q.ready(0)
    assert (second.target.alert_id, second.event.id, second.sequence) == ("all", 2, 2)
    q.done(second, 0, ok=True)
    assert q.idle() and [s.delivered for s in q.status(0)] == [2, 1]


def test_a_failure_is_retried_with_backoff_and_holds_later_events_back() -> None:
    q = AlertQueue([target("a"), target("b")], backoff_s=1.0, backoff_max_s=3.0, max_attempts=4)
    q.push(event(1))
    q.push(event(2))
    da, db = q.ready(0)
    q.done(da, 0, ok=False, error="exit code 1")
    q.done(db, 0, ok=True)
    assert [d.target.alert_id for d in q.ready(0.5)] == ["b"]  # b is not held up by a
    assert q.next_wakeup() == 1.0
    retry = q.ready(1.0)
    assert [(d.target.alert_id, d.event.id, d.attempt) for d in retry] == [("a", 1, 2)]
    q.done(retry[0], 1.0, ok=False, error="exit code 1")
    status = {s.alert_id: s for s in q.status(1.0)}["a"]
    assert status.failed_attempts == 2 and status.retry_at == 3.0 and status.queued == 2
    assert (
        status.last_error is not None and "event 1" in status.last_error and "attempt 2" in status.last_error
    )
    assert q.ready(2.9) == []
    [third] = q.ready(3.0)
    q.done(third, 3.0, ok=False, error="x")
    assert q.next_wakeup() == 6.0  # capped at backoff_max_s
    [fourth] = q.ready(6.0)
    q.done(fourth, 6.0, ok=False, error="still broken")
    status = {s.alert_id: s for s in q.status(6.0)}["a"]
    assert status.given_up == 1 and "gave up after 4 attempts" in (status.last_error or "")
    [nxt] = [d for d in q.ready(6.0) if d.target.alert_id == "a"]
    assert (nxt.event.id, nxt.attempt) == (2, 1)


def test_reconfiguring_keeps_existing_queues_and_drops_removed_ones() -> None:
    q = AlertQueue([target("a"), target("b")])
    q.push(event(1))
    [da, db] = q.ready(0)
    q.configure([target("a"), target("c")])
    q.done(db, 0, ok=True)  # b is gone: ignored
    q.done(da, 0, ok=True)
    assert {s.alert_id: s.delivered for s in q.status(0)} == {"a": 1, "c": 0}


def test_queues_are_bounded() -> None:
    q = AlertQueue([target("a")], max_queue=3)
    for n in range(1, 6):
        q.push(event(n))
    [d] = q.ready(0)
    assert d.event.id == 3 and q.status(0)[0].dropped == 2


def test_targets_from_the_cib() -> None:
    cfg = m.Configuration(
        alerts=[
            m.Alert(
                id="mail",
                path="/usr/share/pacemaker/alerts/alert_smtp.sh",
                select=["nodes", "fencing"],
                instance_attributes=[m.NvSet(id="mail-ia", values={"email_sender": "ha@example"})],
                meta_attributes=[m.NvSet(id="mail-meta", values={"timeout": "15s"})],
                recipients=[
                    m.AlertRecipient(id="ops", value="ops@example"),
                    m.AlertRecipient(
                        id="dev",
                        value="dev@example",
                        meta_attributes=[m.NvSet(id="dev-meta", values={"timeout": "2s"})],
                    ),
                ],
            ),
            m.Alert(id="hook", path="https://hooks.example/ha"),
        ]
    )
    mail_ops, mail_dev, hook = targets_from_cib(cfg)
    assert (mail_ops.recipient, mail_ops.timeout_s, mail_ops.select) == (
        "ops@example",
        15.0,
        frozenset({"nodes", "fencing"}),
    )
    assert mail_dev.timeout_s == 2.0 and mail_ops.env == {"email_sender": "ha@example"}
    assert hook.is_webhook and hook.recipient == "" and not mail_ops.is_webhook
    assert mail_ops.wants(event(1, "node")) and not mail_ops.wants(event(1, "resource"))


def test_pacemaker_timestamps_and_environment() -> None:
    assert format_timestamp(T0, "%H:%M:%S.%06N") == "22:13:20.123456"
    assert format_timestamp(T0, "%Y-%m-%d %H:%M:%S.%3N") == "2023-11-14 22:13:20.123"
    ev = event(4, "resource", node="n1", rsc="vip", task="start", rc=0, target_rc=0, status=0, interval_ms=0)
    env = alert_env(target("a", env={"extra": "1"}), ev, 9)
    assert {
        k: env[k]
        for k in (
            "CRM_alert_kind",
            "CRM_alert_node",
            "CRM_alert_rsc",
            "CRM_alert_task",
            "CRM_alert_rc",
            "CRM_alert_desc",
            "CRM_alert_recipient",
            "CRM_alert_node_sequence",
            "CRM_alert_timestamp_epoch",
            "extra",
        )
    } == {
        "CRM_alert_kind": "resource",
        "CRM_alert_node": "n1",
        "CRM_alert_rsc": "vip",
        "CRM_alert_task": "start",
        "CRM_alert_rc": "0",
        "CRM_alert_desc": "event 4",
        "CRM_alert_recipient": "a@example",
        "CRM_alert_node_sequence": "9",
        "CRM_alert_timestamp_epoch": "1700000004",
        "extra": "1",
    }
    assert env["CRM_notify_kind"] == "resource" and "CRM_alert_attribute_name" not in env


# --- real agents -------------------------------------------------------------------------------

RECORDER = """#!/bin/sh
printf '%s|%s|%s|%s|%s|%s\\n' "$CRM_alert_kind" "$CRM_alert_node" "$CRM_alert_rsc" "$CRM_alert_task" \\
  "$CRM_alert_desc" "$CRM_alert_recipient" >> "$log"
"""
FLAKY = """#!/bin/sh
n=$(cat "$count" 2>/dev/null || echo 0); echo $((n + 1)) > "$count"
if [ "$n" -lt 2 ]; then echo "not yet ($n)" >&2; exit 1; fi
printf '%s|%s\\n' "$CRM_alert_kind" "$CRM_alert_desc" >> "$log"
"""
BROKEN = """#!/bin/sh
echo "mail server unreachable" >&2
exit 1
"""

NODE_FAILURE_AND_RECOVERY = [
    event(1, "node", node="n2", desc="node n2 lost"),
    event(2, "fencing", node="n2", task="reboot", rc=0, desc="n2 fenced"),
    event(3, "resource", node="n2", rsc="vip", task="stop", rc=0, desc="vip stopped on n2"),
    event(4, "resource", node="n1", rsc="vip", task="start", rc=0, desc="vip started on n1"),
    event(5, "node", node="n2", desc="node n2 joined"),
]


def script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


async def until_idle(q: AlertQueue) -> None:
    while not q.idle():
        await asyncio.sleep(0.01)


async def test_real_agents_receive_every_event_in_order_once_and_failures_show(tmp_path: Path) -> None:
    targets = [
        target("rec", path=script(tmp_path, "rec.sh", RECORDER), env={"log": str(tmp_path / "rec.log")}),
        target(
            "flaky",
            path=script(tmp_path, "flaky.sh", FLAKY),
            env={"log": str(tmp_path / "flaky.log"), "count": str(tmp_path / "count")},
        ),
        target("broken", path=script(tmp_path, "broken.sh", BROKEN)),
        target("missing", path=str(tmp_path / "no-such-agent")),
    ]
    q = AlertQueue(targets, backoff_s=0.01, backoff_max_s=0.02, max_attempts=3)
    runner = AlertRunner(q)
    task = asyncio.create_task(runner.run())
    try:
        for ev in NODE_FAILURE_AND_RECOVERY:
            runner.push(ev)
        await asyncio.wait_for(until_idle(q), timeout=30)
    finally:
        task.cancel()
    assert (tmp_path / "rec.log").read_text().splitlines() == [
        "node|n2|||node n2 lost|rec@example",
        "fencing|n2||reboot|n2 fenced|rec@example",
        "resource|n2|vip|stop|vip stopped on n2|rec@example",
        "resource|n1|vip|start|vip started on n1|rec@example",
        "node|n2|||node n2 joined|rec@example",
    ]
    assert (tmp_path / "flaky.log").read_text().splitlines() == [
        f"{e.kind}|{e.desc}" for e in NODE_FAILURE_AND_RECOVERY
    ]
    status = {s.alert_id: s for s in q.status(0)}
    assert (status["flaky"].delivered, status["flaky"].failed_attempts) == (5, 2)
    assert "not yet (1)" in (status["flaky"].last_error or "")
    assert (status["broken"].delivered, status["broken"].given_up) == (0, 5)
    assert "mail server unreachable" in (status["broken"].last_error or "")
    assert "could not start" in (status["missing"].last_error or "")


async def test_webhook_posts_json_in_order(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        received.append(json.loads(await reader.readexactly(length)))
        status = b"500 Internal Server Error" if len(received) == 1 else b"200 OK"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    q = AlertQueue([target("hook", path=f"http://127.0.0.1:{port}/alert")], backoff_s=0.01)
    runner = AlertRunner(q)
    task = asyncio.create_task(runner.run())
    try:
        for ev in NODE_FAILURE_AND_RECOVERY[:2]:
            runner.push(ev)
        await asyncio.wait_for(until_idle(q), timeout=30)
    finally:
        task.cancel()
        server.close()
    ids = [r["event"]["id"] for r in received]  # type: ignore[index]
    assert ids == [1, 1, 2]  # the first POST failed (500) and was retried before event 2
    assert received[2]["recipient"] == "hook@example" and received[2]["sequence"] == 2
    status = q.status(0)[0]
    assert status.delivered == 2 and status.failed_attempts == 1 and "HTTP 500" in (status.last_error or "")


async def test_follow_feeds_the_cluster_events_and_the_api_shows_failures(tmp_path: Path) -> None:
    fake = FakeCluster(sample_cib())
    agent = m.Alert(
        id="rec",
        path=script(tmp_path, "rec.sh", RECORDER),
        select=["nodes"],
        instance_attributes=[m.NvSet(id="rec-ia", values={"log": str(tmp_path / "rec.log")})],
        recipients=[m.AlertRecipient(id="rec-ops", value="ops")],
    )
    broken = m.Alert(id="broken", path=script(tmp_path, "broken.sh", BROKEN))
    await fake.submit(
        Patch(
            ops=[Create(path="/configuration/alerts", value=msgspec.to_builtins(a)) for a in (agent, broken)]
        ),
        actor="test",
    )
    q = AlertQueue(backoff_s=0.01, max_attempts=2)
    runner = AlertRunner(q)
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(follow(fake, runner))]
    try:
        await asyncio.sleep(0)
        fake.publish("node", "node n2 lost", node="n2")
        fake.publish("resource", "vip started", node="n1", rsc="vip", task="start", rc=0)
        fake.publish("node", "node n2 joined", node="n2")
        while len(q.status(0)) < 2 or not q.idle():
            await asyncio.sleep(0.01)
    finally:
        for t in tasks:
            t.cancel()
    assert (tmp_path / "rec.log").read_text().splitlines() == [
        "node|n2|||node n2 lost|ops",
        "node|n2|||node n2 joined|ops",
    ]
    store = TokenStore(tmp_path / "tokens.json")
    token = store.create("viewer", Role.READ, 0)
    app = build_app(Services(handle=fake, tokens=store, alerts=q))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        resp = await client.get("/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    by_id = {t["alert_id"]: t for t in resp.json()["targets"]}
    assert by_id["rec"]["delivered"] == 2 and by_id["rec"]["last_error"] is None
    assert by_id["broken"]["given_up"] == 3 and "mail server unreachable" in by_id["broken"]["last_error"]
