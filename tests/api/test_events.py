"""Events derived from CIB changes: node membership, operation results, attributes, fencing; the log's ids."""

from __future__ import annotations

import msgspec
import pytest

from hakeeper.api.events import Draft, EventLog, changes
from hakeeper.api.fake import FakeCluster
from hakeeper.cib import model as m
from hakeeper.cib.operator import cleanup
from hakeeper.cib.patch import apply
from tests.api.helpers import NOW, sample_cib

pytestmark = pytest.mark.timeout(60)


def with_node(cib: m.Cib, name: str, **fields: object) -> m.Cib:
    nodes = [msgspec.structs.replace(s, **fields) if s.uname == name else s for s in cib.status.nodes]
    return msgspec.structs.replace(cib, status=msgspec.structs.replace(cib.status, nodes=nodes))


def op(
    rid: str,
    task: str,
    call_id: int,
    rc: int,
    *,
    interval: int = 0,
    expected: int = 0,
    reason: str | None = None,
) -> m.OpRecord:
    suffix = "last_0" if interval == 0 else f"{task}_{interval}"
    return m.OpRecord(
        id=f"{rid}_{suffix}",
        operation=task,
        call_id=call_id,
        rc=rc,
        interval=interval,
        transition_key=f"3:1:{expected}:abc",
        exit_reason=reason,
    )


def test_node_loss_and_return() -> None:
    cib = sample_cib()
    lost = with_node(cib, "n2", in_ccm="false", crmd="offline")
    assert changes(cib, lost) == [Draft(kind="node", desc="lost", node="n2", nodeid="n2")]
    assert changes(lost, cib) == [Draft(kind="node", desc="member", node="n2", nodeid="n2")]
    assert changes(cib, cib) == []


def test_operation_results_but_not_quiet_monitors() -> None:
    cib = sample_cib()
    hist = m.ResourceHistory(
        id="vip",
        klass="ocf",
        provider="pacemaker",
        type="Dummy",
        ops=[op("vip", "start", 11, 0), op("vip", "monitor", 12, 0, interval=10_000)],
    )
    started = with_node(cib, "n2", resources=[hist])
    [start] = changes(cib, started)
    assert (start.kind, start.node, start.rsc, start.task, start.rc, start.target_rc, start.desc) == (
        "resource",
        "n2",
        "vip",
        "start",
        0,
        0,
        "ok",
    )
    failed_hist = msgspec.structs.replace(
        hist, ops=[hist.ops[0], op("vip", "monitor", 13, 7, interval=10_000, reason="process gone")]
    )
    failed = with_node(started, "n2", resources=[failed_hist])
    [monitor] = changes(started, failed)
    assert (monitor.task, monitor.interval_ms, monitor.rc, monitor.desc) == (
        "monitor",
        10_000,
        7,
        "process gone",
    )


def test_attribute_changes() -> None:
    cib = sample_cib()
    cleaned = changes(cib, msgspec.structs.replace(cib, status=cleanup_status(cib)))
    assert {(d.kind, d.node, d.attribute_name, d.attribute_value) for d in cleaned} == {
        ("attribute", "n1", "fail-count-vip#monitor_10000", ""),
        ("attribute", "n1", "last-failure-vip#monitor_10000", ""),
    }


def cleanup_status(cib: m.Cib) -> m.Status:
    return apply(cib, cleanup(cib, "vip")).status


def test_finished_fencing_is_an_event_once() -> None:
    cib = sample_cib()
    pending = m.FenceEvent(target="n2", action="reboot", state="pending", origin="n1", requested=NOW)
    done = msgspec.structs.replace(pending, state="done", completed=NOW + 3)
    step1 = msgspec.structs.replace(
        cib,
        status=msgspec.structs.replace(cib.status, fencing_history=[*cib.status.fencing_history, pending]),
    )
    step2 = msgspec.structs.replace(
        cib, status=msgspec.structs.replace(cib.status, fencing_history=[*cib.status.fencing_history, done])
    )
    assert changes(cib, step1) == []
    [fenced] = changes(step1, step2)
    assert (fenced.kind, fenced.node, fenced.task, fenced.desc) == (
        "fencing",
        "n2",
        "reboot",
        "Operation reboot of n2 by n1: OK",
    )
    assert changes(step2, step2) == []


def test_the_log_numbers_events_and_keeps_the_newest() -> None:
    log = EventLog(max_events=3)
    drafts = [Draft(kind="node", desc=f"d{i}") for i in range(5)]
    events = log.record(drafts, NOW)
    assert [e.id for e in events] == [1, 2, 3, 4, 5] and all(e.timestamp == NOW for e in events)
    assert [e.id for e in log.since(0)] == [3, 4, 5]
    assert [e.id for e in log.since(4)] == [5] and log.since(0, limit=1)[0].id == 5


async def test_the_fake_derives_events_from_its_commits() -> None:
    fake = FakeCluster(sample_cib(), now=NOW)
    fake.set_cib(with_node(fake.cib(), "n3", in_ccm="false", crmd="offline"))
    events = fake.events()
    assert [(e.id, e.kind, e.desc, e.node) for e in events] == [(1, "node", "lost", "n3")]
