"""Recurring monitors: a resource that stays where it runs gets each monitor its history lacks there."""

from __future__ import annotations

import msgspec

from hakeeper.cib import model as m
from hakeeper.policy.schedule import schedule
from tests.policy.builders import cib, history, node_state, op, prim

NOW = 1_700_000_000


def monitored() -> m.Primitive:
    return msgspec.structs.replace(
        prim("db"), operations=[m.Operation(id="db-mon", name="monitor", interval=10_000, timeout=20_000)]
    )


def monitors(*ops: m.OpRecord) -> set[tuple[str, int]]:
    config = cib([monitored()], [node_state("n1", history("db", *ops))])
    return {(a.node or "", a.interval_ms) for a in schedule(config, NOW).actions if a.task == "monitor"}


def test_a_running_resource_whose_monitor_was_never_recorded_gets_it() -> None:
    # a transition aborted between the start and its monitor: nothing would ever watch db again
    assert monitors(op("db", "start", 3)) == {("n1", 10_000)}


def test_an_active_monitor_is_not_scheduled_again() -> None:
    assert monitors(op("db", "start", 3), op("db", "monitor", 4, interval=10_000)) == set()


def test_a_failure_record_is_not_an_active_monitor() -> None:
    failed = msgspec.structs.replace(op("db", "monitor", 4, rc=7, interval=10_000), id="db_last_failure_0")
    restarted = msgspec.structs.replace(op("db", "start", 6), id="db_last_0")
    assert monitors(restarted, failed) == {("n1", 10_000)}
