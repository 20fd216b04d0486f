"""Operation results become CIB status the way Pacemaker's controller writes it."""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.cib.patch import Patch, apply
from hakeeper.controller.history import Expectation, is_failure, record_result
from hakeeper.lrm.messages import OpResult, OpStatus


def result(
    op: str, rc: int = 0, interval: int = 0, status: OpStatus = OpStatus.DONE, call: int = 1
) -> OpResult:
    return OpResult(
        resource_id="web",
        agent="ocf:heartbeat:Dummy",
        operation=op,
        interval_ms=interval,
        call_id=call,
        rc=rc,
        op_status=status,
        last_run=1000.0,
        last_rc_change=1000.0,
    )


def record(cib: m.Cib, res: OpResult, expected_rc: int = 0, node: str = "n1", now: int = 1000) -> m.Cib:
    exp = Expectation(action_id=3, transition_id=9, expected_rc=expected_rc, uuid="abc")
    return apply(cib, Patch(ops=record_result(cib.status, node, res, exp, now=now)))


def ops_of(cib: m.Cib, node: str = "n1") -> dict[str, m.OpRecord]:
    state = next(n for n in cib.status.nodes if n.id == node)
    (hist,) = state.resources
    return {o.id: o for o in hist.ops}


def attrs_of(cib: m.Cib, node: str = "n1") -> dict[str, str]:
    state = next(n for n in cib.status.nodes if n.id == node)
    return {k: v for s in state.transient_attributes for k, v in s.values.items()}


def test_a_start_creates_node_resource_and_last_op() -> None:
    cib = record(m.Cib(), result("start"))
    (state,) = cib.status.nodes
    assert state.resources[0].klass == "ocf" and state.resources[0].provider == "heartbeat"
    last = ops_of(cib)["web_last_0"]
    assert (last.operation, last.rc, last.call_id, last.transition_key) == ("start", 0, 1, "3:9:0:abc")
    assert last.transition_magic == "0:0;3:9:0:abc"
    assert attrs_of(cib) == {}


def test_recurring_monitor_has_its_own_entry_and_goes_away_on_stop() -> None:
    cib = record(m.Cib(), result("start"))
    cib = record(cib, result("monitor", interval=10_000, call=2))
    assert set(ops_of(cib)) == {"web_last_0", "web_monitor_10000"}
    cib = record(cib, result("stop", call=3))
    assert set(ops_of(cib)) == {"web_last_0"}
    assert ops_of(cib)["web_last_0"].operation == "stop"


def test_cancelled_monitor_is_removed() -> None:
    cib = record(m.Cib(), result("monitor", interval=5000))
    cib = record(cib, result("monitor", interval=5000, status=OpStatus.CANCELLED, call=2))
    assert set(ops_of(cib)) == set()


def test_a_failed_monitor_counts_and_keeps_last_failure() -> None:
    cib = record(m.Cib(), result("start"))
    cib = record(cib, result("monitor", rc=7, interval=10_000, call=2), now=2000)
    assert ops_of(cib)["web_last_failure_0"].rc == 7
    assert attrs_of(cib) == {"fail-count-web#monitor_10000": "1", "last-failure-web#monitor_10000": "2000"}
    cib = record(cib, result("monitor", rc=1, interval=10_000, call=3), now=3000)
    assert attrs_of(cib)["fail-count-web#monitor_10000"] == "2"
    assert attrs_of(cib)["last-failure-web#monitor_10000"] == "3000"


def test_failed_start_and_stop_are_infinite() -> None:
    cib = record(m.Cib(), result("start", rc=1))
    assert attrs_of(cib)["fail-count-web#start_0"] == "INFINITY"
    cib = record(cib, result("stop", rc=1, call=2))
    assert attrs_of(cib)["fail-count-web#stop_0"] == "INFINITY"


def test_a_probe_reports_state_without_failing() -> None:
    for rc in (0, 7, 8):
        assert not is_failure(result("monitor", rc=rc), expected_rc=7)
    assert is_failure(result("monitor", rc=5), expected_rc=7)
    assert not is_failure(result("monitor", rc=5, status=OpStatus.NOT_INSTALLED), expected_rc=7)
    cib = record(m.Cib(), result("monitor", rc=0), expected_rc=7)
    assert attrs_of(cib) == {} and "web_last_failure_0" not in ops_of(cib)


def test_timeouts_are_failures_whatever_the_rc() -> None:
    assert is_failure(result("start", rc=0, status=OpStatus.TIMEOUT), expected_rc=0)


def test_transition_keys_round_trip() -> None:
    exp = Expectation(4, 12, 7, "uuid-x")
    assert Expectation.parse(exp.transition_key) == exp
    assert Expectation.parse("garbage") is None
    assert Expectation.parse("a:b:c:d") is None


def test_the_digest_of_the_parameters_an_operation_ran_with_is_recorded() -> None:
    import msgspec

    cib = record(m.Cib(), msgspec.structs.replace(result("start"), op_digest="0123abcd"))
    assert ops_of(cib)["web_last_0"].op_digest == "0123abcd"
    unknown = record(m.Cib(), result("start"))
    assert ops_of(unknown)["web_last_0"].op_digest is None
