"""A node's clean shutdown: through the DC first, locally after the timeout, and the DC's side of it."""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.controller.dc import DcCore, Propose
from hakeeper.controller.member import SendToDc
from hakeeper.controller.messages import AttributeChanged
from hakeeper.controller.shutdown import (
    Leave,
    Phase,
    ShutdownCore,
    Situation,
    StopLocally,
    active_in_cib,
    requested_at,
)

NOW_MS = 1_700_000_000_000
STARTED_S = NOW_MS // 1000 - 100


def op(rsc: str, operation: str, rc: int = 0, interval: int = 0) -> m.OpRecord:
    return m.OpRecord(id=f"{rsc}_last_0", operation=operation, call_id=1, rc=rc, interval=interval)


def node(name: str, *ops: m.OpRecord, shutdown: str | None = None) -> m.NodeState:
    attrs = [m.NvSet(id=f"status-{name}", values={"shutdown": shutdown})] if shutdown else []
    resources = [
        m.ResourceHistory(id=o.id.split("_last_0")[0], klass="ocf", type="Dummy", ops=[o]) for o in ops
    ]
    return m.NodeState(
        id=name,
        uname=name,
        in_ccm="true",
        crmd="online",
        join="member",
        expected="member",
        resources=resources,
        transient_attributes=attrs,
    )


def cib(*states: m.NodeState) -> m.Cib:
    return m.Cib(status=m.Status(nodes=list(states)))


def situation(
    c: m.Cib,
    *,
    now: int = NOW_MS,
    dc: str | None = "n2",
    quorate: bool = True,
    busy: bool = False,
    active: frozenset[str] = frozenset(),
) -> Situation:
    return Situation(now_ms=now, cib=c, dc=dc, quorate=quorate, lrm_busy=busy, active_here=active)


def core() -> ShutdownCore:
    return ShutdownCore("n1", timeout_ms=60_000, started_at_s=STARTED_S)


def test_history_says_what_may_still_be_active() -> None:
    c = cib(
        node(
            "n1",
            op("web", "start"),
            op("db", "stop"),
            op("ip", "monitor", rc=7),
            op("q", "monitor"),
            op("bad", "stop", rc=1),
        )
    )
    assert active_in_cib(c, "n1") == ["bad", "q", "web"]
    assert active_in_cib(c, "n9") == []


def test_the_request_goes_to_the_dc_and_is_resent_until_recorded() -> None:
    s = core()
    s.request(NOW_MS, "SIGTERM")
    running = cib(node("n1", op("web", "start")))
    (send,) = s.step(situation(running))
    assert isinstance(send, SendToDc) and send.dc == "n2"
    assert isinstance(send.message, AttributeChanged)
    assert (send.message.update.name, send.message.update.value) == ("shutdown", str(NOW_MS // 1000))
    assert s.step(situation(running, now=NOW_MS + 500)) == []  # not yet due again
    assert len(s.step(situation(running, now=NOW_MS + 2_500))) == 1
    recorded = cib(node("n1", op("web", "start"), shutdown=str(NOW_MS // 1000)))
    assert s.step(situation(recorded, now=NOW_MS + 5_000)) == []  # recorded; web still runs here: wait


def test_it_leaves_once_nothing_runs_here_and_the_lrm_is_idle() -> None:
    s = core()
    s.request(NOW_MS, "SIGTERM")
    moved = cib(node("n1", op("web", "stop"), shutdown="1"))
    assert s.step(situation(moved, busy=True)) == []
    assert s.step(situation(moved, active=frozenset({"web"}))) == []
    (leave,) = s.step(situation(moved))
    assert isinstance(leave, Leave) and s.phase is Phase.DONE


def test_after_the_timeout_it_stops_locally_and_says_so() -> None:
    s = core()
    s.request(NOW_MS, "SIGTERM")
    stuck = cib(node("n1", op("web", "start"), shutdown="1"))
    out = s.step(situation(stuck, now=NOW_MS + 60_000, active=frozenset({"web"})))
    assert any(isinstance(o, StopLocally) for o in out)
    assert any("timeout (60 s) passed with web still here" in getattr(o, "text", "") for o in out), out
    assert s.step(situation(stuck, now=NOW_MS + 61_000, active=frozenset({"web"}))) == []
    (leave,) = s.step(situation(stuck, now=NOW_MS + 62_000))
    assert isinstance(leave, Leave)


def test_without_quorum_nothing_can_move_so_it_stops_locally_at_once() -> None:
    s = core()
    s.request(NOW_MS, "SIGTERM")
    out = s.step(situation(cib(node("n1", op("web", "start"))), quorate=False, active=frozenset({"web"})))
    assert any(isinstance(o, StopLocally) for o in out)


def test_a_request_committed_by_an_operator_is_honoured_but_not_a_stale_one() -> None:
    s = core()
    stale = cib(node("n1", shutdown=str(STARTED_S - 10)))
    assert s.cib_committed(stale, NOW_MS) == [] and s.phase is Phase.RUNNING
    fresh = cib(node("n1", shutdown=str(STARTED_S + 10)))
    assert s.cib_committed(fresh, NOW_MS) and s.phase is Phase.THROUGH_DC
    assert requested_at(fresh, "n1") == STARTED_S + 10


def dc_with(c: m.Cib, members: frozenset[str]) -> DcCore:
    dc = DcCore("n2", uuid="u")
    dc.cib = c
    dc.members = members
    dc.become_dc(NOW_MS)
    return dc


def test_a_node_that_leaves_after_asking_is_expected_down_and_its_request_cleared() -> None:
    dc = dc_with(cib(node("n1", shutdown="5"), node("n2")), frozenset({"n1", "n2"}))
    out = dc.membership(frozenset({"n2"}), NOW_MS)
    (patch,) = [o.patch for o in out if isinstance(o, Propose)]
    changes = {o.path: getattr(o, "changes", None) for o in patch.ops}
    assert changes["/status/nodes/n1"]["expected"] == "down"
    assert "/status/nodes/n1/transient_attributes/status-n1/values/shutdown" in changes


def test_a_node_that_simply_fails_stays_expected_member() -> None:
    dc = dc_with(cib(node("n1"), node("n2")), frozenset({"n1", "n2"}))
    out = dc.membership(frozenset({"n2"}), NOW_MS)
    (patch,) = [o.patch for o in out if isinstance(o, Propose)]
    changes = {o.path: getattr(o, "changes", None) for o in patch.ops}
    assert "expected" not in changes["/status/nodes/n1"]


def test_the_member_stops_everything_it_runs_with_its_parameters() -> None:
    from hakeeper.controller.member import MemberCore, Submit
    from hakeeper.controller.messages import RunOp
    from hakeeper.lrm.messages import OpRequest, OpResult, OpStatus

    member = MemberCore("n1")
    member.dc_changed("n2")
    start = OpRequest(resource_id="web", agent="ocf:heartbeat:Dummy", operation="start", params={"a": "1"})
    member.on_message(RunOp(dc="n2", request=start))
    done = OpResult(
        resource_id="web",
        agent="ocf:heartbeat:Dummy",
        operation="start",
        interval_ms=0,
        call_id=1,
        rc=0,
        op_status=OpStatus.DONE,
    )
    member.on_result(done)
    stops = [o.request for o in member.stop_everything() if isinstance(o, Submit)]
    assert [(r.resource_id, r.operation, r.params) for r in stops] == [("web", "stop", {"a": "1"})]
