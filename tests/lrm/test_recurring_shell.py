"""Recurring monitors through the real shell: report on change only, cancellation before stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hakeeper.lrm.messages import AttributeUpdate, CancelRequest, OpRequest, OpResult, OpStatus
from hakeeper.lrm.service import LocalResourceManager


async def next_result(lrm: LocalResourceManager, timeout: float = 10.0) -> OpResult:
    while True:
        event = await asyncio.wait_for(lrm.events.get(), timeout)
        if not isinstance(event, AttributeUpdate):
            return event


def dummy(operation: str, state: Path, interval_ms: int = 0, **kw: object) -> OpRequest:
    return OpRequest(
        resource_id="d",
        agent="ocf:hakeeper:dummy",
        operation=operation,
        interval_ms=interval_ms,
        params={"state": str(state)},
        **kw,  # type: ignore[arg-type]
    )


async def test_monitor_reports_only_changes_and_stop_cancels_it(
    lrm: LocalResourceManager, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    assert (await lrm.run(dummy("start", state))).rc == 0
    await next_result(lrm)  # the start
    call_id = lrm.submit(dummy("monitor", state, 200))
    first = await next_result(lrm)
    assert (first.operation, first.interval_ms, first.rc, first.call_id) == ("monitor", 200, 0, call_id)
    state.unlink()  # the "service" dies behind the cluster's back
    failed = await next_result(lrm)
    assert (failed.rc, failed.call_id) == (7, call_id)
    history = lrm.core.history("d")
    assert history is not None and history.last_failure is not None and history.last_failure.rc == 7
    stop = lrm.submit(dummy("stop", state))
    cancelled = await next_result(lrm)
    assert (cancelled.op_status, cancelled.call_id) == (OpStatus.CANCELLED, call_id)
    stopped = await next_result(lrm)
    assert (stopped.operation, stopped.call_id, stopped.rc) == ("stop", stop, 0)
    assert lrm.core.recurring_keys() == []


async def test_unchanged_monitor_results_stay_silent(lrm: LocalResourceManager, tmp_path: Path) -> None:
    state = tmp_path / "state"
    await lrm.run(dummy("start", state))
    await next_result(lrm)
    lrm.submit(dummy("monitor", state, 100, role="Unpromoted", check_level=10))
    assert (await next_result(lrm)).rc == 0
    runs_before = _runs(lrm)
    while _runs(lrm) < runs_before + 3:  # let it run a few more times
        await asyncio.sleep(0.05)
    assert lrm.events.empty()
    lrm.cancel(CancelRequest(resource_id="d", operation="monitor", interval_ms=100))
    assert (await next_result(lrm)).op_status == OpStatus.CANCELLED


def _runs(lrm: LocalResourceManager) -> int:
    history = lrm.core.history("d")
    assert history is not None
    return len(history.recent)
