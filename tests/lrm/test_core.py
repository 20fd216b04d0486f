"""The sans-I/O scheduler, driven with a hand-held clock: no processes, no sleeps."""

from __future__ import annotations

from hakeeper.lrm.core import Completion, Execute, LrmCore, Output, drain_results
from hakeeper.lrm.messages import CancelRequest, OpRequest, OpResult, OpStatus


def req(rsc: str, operation: str, interval_ms: int = 0, **kw: object) -> OpRequest:
    return OpRequest(
        resource_id=rsc,
        agent="ocf:hakeeper:dummy",
        operation=operation,
        interval_ms=interval_ms,
        **kw,  # type: ignore[arg-type]
    )


def executes(outputs: list[Output]) -> list[Execute]:
    return [o for o in outputs if isinstance(o, Execute)]


def done(execute: Execute, rc: int = 0, wall: float = 1000.0, status: OpStatus = OpStatus.DONE) -> Completion:
    return Completion(exec_id=execute.exec_id, rc=rc, op_status=status, exec_time_ms=5, finished_wall=wall)


def test_operations_on_one_resource_run_one_at_a_time_in_order() -> None:
    core = LrmCore(max_parallel=4)
    (first,) = executes(core.submit(0.0, req("a", "start")))
    assert executes(core.submit(0.0, req("a", "monitor"))) == []
    out = core.complete(1.0, done(first))
    assert [r.operation for r in drain_results(out)] == ["start"]
    (second,) = executes(out)
    assert second.request.operation == "monitor"
    result = drain_results(core.complete(1.5, done(second, rc=0)))[0]
    assert result.queue_time_ms == 1000


def test_different_resources_run_in_parallel_up_to_the_cap() -> None:
    core = LrmCore(max_parallel=2)
    started = [executes(core.submit(0.0, req(f"r{i}", "start"))) for i in range(5)]
    running = [e for batch in started for e in batch]
    assert [e.request.resource_id for e in running] == ["r0", "r1"]
    assert core.running_count == 2 and core.queued_count == 3
    nxt = executes(core.complete(1.0, done(running[0])))
    assert [e.request.resource_id for e in nxt] == ["r2"]


def test_recurring_monitor_start_delay_reschedule_and_report_on_change() -> None:
    core = LrmCore()
    out = core.submit(0.0, req("a", "monitor", 10_000, start_delay_ms=2_000))
    assert out == [] and core.next_wakeup() == 2.0
    assert core.poll(1.9) == []
    (run1,) = executes(core.poll(2.0))
    first = drain_results(core.complete(2.1, done(run1, wall=50.0)))
    assert len(first) == 1 and first[0].rc == 0  # the first result is always reported
    assert core.next_wakeup() == 12.1  # interval counted from completion
    (run2,) = executes(core.poll(12.1))
    assert run2.call_id == run1.call_id  # a recurring op keeps its call id
    assert drain_results(core.complete(12.2, done(run2, wall=60.0))) == []  # unchanged: silent
    (run3,) = executes(core.poll(22.2))
    changed = drain_results(core.complete(22.3, done(run3, rc=7, wall=70.0)))
    assert [(r.rc, r.last_rc_change) for r in changed] == [(7, 70.0)]
    history = core.history("a")
    assert history is not None and history.last_failure is not None and history.last_failure.rc == 7


def test_last_rc_change_stays_while_the_result_stays_the_same() -> None:
    core = LrmCore()
    (run1,) = executes(core.submit(0.0, req("a", "monitor", 1_000)))
    core.complete(0.1, done(run1, wall=10.0))
    (run2,) = executes(core.poll(1.1))
    core.complete(1.2, done(run2, wall=11.0))
    history = core.history("a")
    assert history is not None
    (latest,) = history.recurring.values()
    assert (latest.last_run, latest.last_rc_change) == (11.0, 10.0)


def test_stop_cancels_recurring_operations_first_and_discards_a_running_one() -> None:
    core = LrmCore()
    (mon,) = executes(core.submit(0.0, req("a", "monitor", 10_000)))
    core.submit(0.0, req("a", "monitor", 30_000, start_delay_ms=60_000))
    out = core.submit(0.5, req("a", "stop"), wall=5.0)
    cancelled = drain_results(out)
    assert sorted(r.interval_ms for r in cancelled) == [10_000, 30_000]
    assert {r.op_status for r in cancelled} == {OpStatus.CANCELLED}
    assert executes(out) == []  # the stop waits for the running monitor
    out = core.complete(1.0, done(mon, rc=7))
    assert drain_results(out) == []  # the cancelled monitor's result is dropped
    (stop,) = executes(out)
    assert stop.request.operation == "stop"
    core.complete(2.0, done(stop))
    assert core.next_wakeup() is None and core.recurring_keys() == []


def test_demote_and_migration_also_cancel_recurring() -> None:
    for operation in ("demote", "migrate_to", "migrate_from"):
        core = LrmCore()
        (mon,) = executes(core.submit(0.0, req("a", "monitor", 10_000)))
        core.complete(0.1, done(mon))
        cancelled = drain_results(core.submit(1.0, req("a", operation)))
        assert [r.op_status for r in cancelled] == [OpStatus.CANCELLED], operation


def test_resubmitting_a_recurring_operation_replaces_it() -> None:
    core = LrmCore()
    (run1,) = executes(core.submit(0.0, req("a", "monitor", 10_000, params={"v": "1"})))
    out = core.submit(0.1, req("a", "monitor", 10_000, params={"v": "2"}))
    assert drain_results(out) == []  # a replacement is not a cancellation the CRM must record
    assert core.recurring_keys() == ["a_monitor_10000"]
    out = core.complete(0.2, done(run1))
    assert drain_results(out) == []  # the old registration's run is stale
    (run2,) = executes(out)  # the new registration was queued behind it
    assert run2.request.params == {"v": "2"}


def test_cancel_request_reports_cancelled_and_unknown_is_ignored() -> None:
    core = LrmCore()
    (mon,) = executes(core.submit(0.0, req("a", "monitor", 5_000)))
    core.complete(0.1, done(mon))
    out = core.cancel(1.0, CancelRequest(resource_id="a", operation="monitor", interval_ms=5_000), wall=9.0)
    (result,) = drain_results(out)
    assert (result.op_status, result.call_id, result.last_run) == (OpStatus.CANCELLED, mon.call_id, 9.0)
    assert core.cancel(1.0, CancelRequest(resource_id="a", operation="monitor", interval_ms=5_000)) == []
    assert core.poll(100.0) == []


def test_a_slow_run_is_not_doubled_by_its_timer() -> None:
    core = LrmCore(max_parallel=1)
    (blocker,) = executes(core.submit(0.0, req("b", "start")))
    core.submit(0.0, req("a", "monitor", 1_000))  # queued behind the cap
    assert executes(core.poll(50.0)) == []
    out = core.complete(60.0, done(blocker))
    (mon,) = executes(out)
    assert mon.request.resource_id == "a" and core.queued_count == 0


def test_history_keeps_last_last_failure_and_call_ids() -> None:
    core = LrmCore()
    results: list[OpResult] = []
    for operation, rc in (("start", 0), ("monitor", 1), ("stop", 0)):
        (ex,) = executes(core.submit(0.0, req("a", operation)))
        results += drain_results(core.complete(0.0, done(ex, rc=rc)))
    history = core.history("a")
    assert history is not None and history.last is not None and history.last_failure is not None
    assert [r.call_id for r in results] == [1, 2, 3]
    assert (history.last.operation, history.last_failure.operation) == ("stop", "monitor")


def test_probe_of_stopped_resource_is_not_a_failure() -> None:
    core = LrmCore()
    (ex,) = executes(core.submit(0.0, req("a", "monitor")))
    core.complete(0.0, done(ex, rc=7))
    history = core.history("a")
    assert history is not None and history.last_failure is None


def test_after_restart_nothing_is_known_until_probed() -> None:
    assert LrmCore().history("a") is None and LrmCore().resources() == []
