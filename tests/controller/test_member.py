"""Every node's controller duties: relay for the DC, keep results until committed, no-quorum-policy."""

from __future__ import annotations

import msgspec
import pytest

from hakeeper.cib import model as m
from hakeeper.controller import messages
from hakeeper.controller.member import MemberCore, Note, SelfFence, SendToDc, Submit
from hakeeper.controller.messages import CancelOp, OpDone, RunOp, Sync
from hakeeper.lrm.messages import AttributeUpdate, CancelRequest, OpRequest, OpResult, OpStatus


def req(rsc: str, op: str, params: dict[str, str] | None = None) -> OpRequest:
    return OpRequest(resource_id=rsc, agent="ocf:heartbeat:IPaddr2", operation=op, params=params or {})


def res(rsc: str, op: str, rc: int = 0, call: int = 1, interval: int = 0) -> OpResult:
    return OpResult(
        resource_id=rsc,
        agent="ocf:heartbeat:IPaddr2",
        operation=op,
        interval_ms=interval,
        call_id=call,
        rc=rc,
        op_status=OpStatus.DONE,
    )


def started(core: MemberCore, rsc: str, params: dict[str, str] | None = None, promote: bool = False) -> None:
    core.on_message(RunOp(dc="n1", request=req(rsc, "start", params)))
    core.on_result(res(rsc, "start"))
    if promote:
        core.on_message(RunOp(dc="n1", request=req(rsc, "promote", params)))
        core.on_result(res(rsc, "promote", call=2))


def test_runs_only_what_the_current_dc_asks() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    assert core.on_message(RunOp(dc="n1", request=req("vip", "start"))) == [Submit(req("vip", "start"))]
    (note,) = core.on_message(RunOp(dc="n3", request=req("vip", "stop")))
    assert isinstance(note, Note) and "not the DC" in note.text
    assert (
        core.on_message(
            CancelOp(dc="n3", request=CancelRequest(resource_id="vip", operation="monitor", interval_ms=1))
        )
        == []
    )


def test_results_are_kept_until_committed_and_resent_to_a_new_dc() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    result = res("vip", "start", call=5)
    assert core.on_result(result) == [SendToDc("n1", OpDone("n2", result))]
    assert core.dc_changed("n3") == [SendToDc("n3", Sync(node="n2", dc="n3", results=[result]))]
    recorded = m.OpRecord(id="vip_last_0", operation="start", call_id=5, rc=0)
    cib = m.Cib(
        status=m.Status(
            nodes=[
                m.NodeState(
                    id="n2",
                    resources=[m.ResourceHistory(id="vip", klass="ocf", type="IPaddr2", ops=[recorded])],
                )
            ]
        )
    )
    core.cib_committed(cib)
    assert core.dc_changed("n1") == [SendToDc("n1", Sync(node="n2", dc="n1"))]


def test_a_sync_lists_results_in_the_order_they_happened_and_what_still_runs() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    core.on_message(RunOp(dc="n1", request=req("vip", "stop")))
    core.on_message(RunOp(dc="n1", request=req("db", "stop")))
    later, earlier = res("vip", "stop", call=9), res("vip", "monitor", rc=7, call=3)
    core.on_result(later)
    core.on_result(earlier)
    assert core.dc_changed("n3") == [
        SendToDc("n3", Sync(node="n2", dc="n3", results=[earlier, later], in_flight=1))
    ]


def test_attributes_go_to_the_dc() -> None:
    core = MemberCore("n2")
    update = AttributeUpdate(node="n2", name="pingd", value="1000")
    (note,) = core.on_attribute(update)
    assert isinstance(note, Note) and "no DC" in note.text
    core.dc_changed("n1")
    assert core.on_attribute(update) == [SendToDc("n1", messages.AttributeChanged(update))]


def test_losing_quorum_with_stop_stops_everything_with_its_parameters() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    started(core, "vip", {"ip": "10.0.0.10"})
    started(core, "db", promote=True)
    started(core, "gone")
    core.on_result(res("gone", "stop", call=9))
    out = core.quorum_changed(False, "stop")
    submits = [
        (o.request.resource_id, o.request.operation, o.request.params) for o in out if isinstance(o, Submit)
    ]
    assert submits == [("db", "demote", {}), ("db", "stop", {}), ("vip", "stop", {"ip": "10.0.0.10"})]
    assert core.quorum_changed(False, "stop") == [], "only the transition to no quorum acts"


def test_demote_policy_demotes_promoted_and_stops_the_rest() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    started(core, "db", promote=True)
    started(core, "web")
    out = [
        (o.request.resource_id, o.request.operation)
        for o in core.quorum_changed(False, "demote")
        if isinstance(o, Submit)
    ]
    assert out == [("db", "demote"), ("web", "stop")]


@pytest.mark.parametrize("policy", ["freeze", "ignore"])
def test_freeze_and_ignore_keep_running(policy: str) -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    started(core, "web")
    out = core.quorum_changed(False, policy)
    assert not any(isinstance(o, Submit) for o in out)


def test_suicide_fences_itself() -> None:
    core = MemberCore("n2")
    assert isinstance(core.quorum_changed(False, "suicide")[0], SelfFence)


def test_messages_round_trip_and_reject_garbage() -> None:
    msg = OpDone("n2", res("vip", "start"))
    assert messages.decode(messages.encode(msg)) == msg
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        messages.decode(b"\x81\xa4kind\xa5bogus")
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        messages.decode(b"\xff\x00")


def test_a_start_asked_again_by_a_new_dc_is_answered_not_run_twice() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    first = OpRequest(
        resource_id="vip", agent="ocf:heartbeat:IPaddr2", operation="start", transition_key="1:1:0:a"
    )
    again = msgspec.structs.replace(first, transition_key="7:1:0:b")
    assert core.on_message(RunOp(dc="n1", request=first)) == [Submit(first)]
    core.dc_changed("n3")
    (note,) = core.on_message(RunOp(dc="n3", request=again))  # still starting: nothing new runs
    assert isinstance(note, Note) and "being started" in note.text
    done = msgspec.structs.replace(res("vip", "start", call=4), transition_key="1:1:0:a")
    out = core.on_result(done)
    assert out == [
        SendToDc("n3", OpDone("n2", done)),
        SendToDc("n3", OpDone("n2", msgspec.structs.replace(done, transition_key="7:1:0:b"))),
    ]
    third = msgspec.structs.replace(first, transition_key="9:2:0:b")  # running: answered with the same start
    note, sent = core.on_message(RunOp(dc="n3", request=third))
    assert isinstance(note, Note) and "runs here already" in note.text
    assert sent == SendToDc("n3", OpDone("n2", msgspec.structs.replace(done, transition_key="9:2:0:b")))


def test_a_start_after_a_stop_runs_again() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    started(core, "vip")
    stop = req("vip", "stop")
    assert core.on_message(RunOp(dc="n1", request=stop)) == [Submit(stop)]
    core.on_result(res("vip", "stop", call=2))
    assert core.on_message(RunOp(dc="n1", request=req("vip", "start"))) == [Submit(req("vip", "start"))]


def test_a_start_asked_while_a_stop_is_running_is_not_answered_from_the_old_start() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    started(core, "vip")
    core.on_message(RunOp(dc="n1", request=req("vip", "stop")))
    assert core.on_message(RunOp(dc="n1", request=req("vip", "start"))) == [Submit(req("vip", "start"))]


def test_what_a_probe_finds_running_is_stopped_when_quorum_is_lost() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    for rsc, rc in (("found", 0), ("absent", 7)):
        core.on_message(RunOp(dc="n1", request=req(rsc, "monitor", {"ip": "10.0.0.9"})))
        core.on_result(res(rsc, "monitor", rc=rc))
    out = core.quorum_changed(False, "stop")
    submits = [(o.request.resource_id, o.request.operation) for o in out if isinstance(o, Submit)]
    assert submits == [("found", "stop")]


def test_a_request_sent_again_by_the_dc_runs_once_and_is_answered_with_its_result() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    request = msgspec.structs.replace(req("vip", "stop"), transition_key="1:3:0:dc")
    assert core.on_message(RunOp(dc="n1", request=request)) == [Submit(request)]
    assert core.on_message(RunOp(dc="n1", request=request)) == []  # still running: no second run
    result = msgspec.structs.replace(res("vip", "stop"), transition_key="1:3:0:dc")
    core.on_result(result)
    # answered again (the first answer was lost), never run again
    assert core.on_message(RunOp(dc="n1", request=request)) == [SendToDc("n1", OpDone("n2", result))]


def test_a_new_result_of_a_recurring_monitor_is_kept_until_that_result_is_recorded() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    gone = res("vip", "monitor", rc=7, call=4, interval=10_000)  # same call id as every run of the monitor
    core.on_result(gone)
    earlier = m.OpRecord(id="vip_monitor_10000", operation="monitor", call_id=4, rc=0, interval=10_000)
    history = m.ResourceHistory(id="vip", klass="ocf", type="IPaddr2", ops=[earlier])
    core.cib_committed(m.Cib(status=m.Status(nodes=[m.NodeState(id="n2", resources=[history])])))
    assert core.unconfirmed == {"vip_monitor_10000": gone}  # the earlier run's record does not confirm it


def test_a_stop_runs_with_the_agent_and_parameters_the_resource_was_started_with() -> None:
    core = MemberCore("n2")
    core.dc_changed("n1")
    started(core, "vip", {"ip": "10.0.0.10"})
    changed = msgspec.structs.replace(req("vip", "stop", {"ip": "10.0.0.99"}), agent="ocf:hakeeper:vip")
    (submit,) = [o for o in core.on_message(RunOp(dc="n1", request=changed)) if isinstance(o, Submit)]
    assert (submit.request.agent, submit.request.params) == ("ocf:heartbeat:IPaddr2", {"ip": "10.0.0.10"})
    core.on_result(res("vip", "stop", call=2))
    # stopped: a later stop (of something this node never started) runs as asked
    (again,) = [o for o in core.on_message(RunOp(dc="n1", request=changed)) if isinstance(o, Submit)]
    assert again.request.params == {"ip": "10.0.0.99"}
