"""Property test of the scheduler: random submissions, completions and clock jumps keep its invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.lrm.core import Completion, Execute, LrmCore, Output
from hakeeper.lrm.messages import OpRequest, OpResult, OpStatus

RESOURCES = ["a", "b", "c"]
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("submit"), st.sampled_from(RESOURCES), st.sampled_from(["start", "stop", "demote"])
        ),
        st.tuples(st.just("monitor"), st.sampled_from(RESOURCES), st.sampled_from([1000, 5000])),
        st.tuples(st.just("complete"), st.integers(0, 5), st.sampled_from([0, 1, 7])),
        st.tuples(st.just("advance"), st.floats(0.0, 10.0), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(steps=steps, cap=st.integers(1, 3))
def test_invariants_hold(steps: list[tuple[str, object, object]], cap: int) -> None:
    core, now = LrmCore(max_parallel=cap), 0.0
    running: dict[int, Execute] = {}
    one_shots: dict[int, int] = {}  # call id -> results seen

    def absorb(outputs: list[Output]) -> None:
        for out in outputs:
            if isinstance(out, Execute):
                running[out.exec_id] = out
                busy = [e.request.resource_id for e in running.values()]
                assert len(busy) == len(set(busy)), "two operations ran at once on one resource"
                assert len(running) <= cap, "the parallelism cap was exceeded"
            else:
                check_result(out)

    def check_result(result: OpResult) -> None:
        if result.interval_ms == 0:
            one_shots[result.call_id] += 1
        else:
            assert result.op_status in (OpStatus.DONE, OpStatus.CANCELLED)

    for kind, x, y in steps:
        if kind == "submit":
            absorb(core.submit(now, OpRequest(resource_id=str(x), agent="ocf:t:t", operation=str(y))))
            one_shots[core.last_call_id] = 0
        elif kind == "monitor":
            absorb(core.submit(now, OpRequest(resource_id=str(x), agent="ocf:t:t", operation="monitor",
                                              interval_ms=int(str(y)))))  # fmt: skip
        elif kind == "complete" and running:
            exec_id = sorted(running)[int(str(x)) % len(running)]
            del running[exec_id]
            absorb(core.complete(now, Completion(exec_id=exec_id, rc=int(str(y)), op_status=OpStatus.DONE)))
        elif kind == "advance":
            now += float(str(x))
            absorb(core.poll(now))
    # drain: finish everything that runs or is queued; recurring ones are cancelled by a final stop
    for rsc in RESOURCES:
        absorb(core.submit(now, OpRequest(resource_id=rsc, agent="ocf:t:t", operation="stop")))
        one_shots[core.last_call_id] = 0
    while running:
        exec_id = min(running)
        del running[exec_id]
        absorb(core.complete(now, Completion(exec_id=exec_id, rc=0, op_status=OpStatus.DONE)))
    assert all(count == 1 for count in one_shots.values()), "a one-shot operation was lost or doubled"
    assert core.queued_count == 0 and core.running_count == 0 and core.recurring_keys() == []
