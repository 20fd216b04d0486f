"""The DC core, driven through a tiny in-memory cluster: commits apply at once, plans come from a script."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from hakeeper.cib import model as m
from hakeeper.cib.patch import apply
from hakeeper.controller.dc import (
    Command,
    DcCore,
    Event,
    Plan,
    Propose,
    RequestFence,
    SendOp,
)
from hakeeper.controller.graph import GraphAction, TransitionGraph
from hakeeper.controller.messages import Sync
from hakeeper.lrm.messages import AttributeUpdate, OpResult, OpStatus

Planner = Callable[[m.Cib, int], list[GraphAction]]


class Harness:
    """Applies every proposal immediately (a one-node log) and answers plans with ``planner``."""

    def __init__(
        self, planner: Planner, members: frozenset[str] = frozenset({"n1", "n2"}), *, synced: bool = True
    ) -> None:
        self.dc = DcCore("n1", uuid="dc-uuid")
        self.planner = planner
        self.cib = m.Cib(
            configuration=m.Configuration(nodes=[m.Node(id=n, uname=n) for n in sorted(members)])
        )
        self.sent: list[SendOp] = []
        self.fences: list[RequestFence] = []
        self.events: list[str] = []
        self.plans = 0
        self.now = 1_000_000
        self.dc.cib = self.cib
        self.dc.members = members
        self.run(self.dc.become_dc(self.now))
        if synced:  # every member reports it has nothing unrecorded and runs nothing
            for node in sorted(members):
                self.run(self.dc.member_sync(Sync(node=node, dc="n1"), self.now))

    def run(self, commands: list[Command]) -> None:
        queue = list(commands)
        while queue:
            cmd = queue.pop(0)
            if isinstance(cmd, Propose):
                self.cib = apply(self.cib, cmd.patch)
                queue += self.dc.cib_committed(self.cib, cmd.patch, self.now)
            elif isinstance(cmd, Plan):
                self.plans += 1
                graph = TransitionGraph(
                    id=cmd.transition_id, actions=self.planner(cmd.cib, cmd.transition_id)
                )
                queue += self.dc.plan_ready(graph, self.now)
            elif isinstance(cmd, SendOp):
                self.sent.append(cmd)
            elif isinstance(cmd, RequestFence):
                self.fences.append(cmd)
            elif isinstance(cmd, Event):
                self.events.append(cmd.text)

    def complete(self, send: SendOp, rc: int = 0, status: OpStatus = OpStatus.DONE) -> None:
        req = send.request
        res = OpResult(
            resource_id=req.resource_id,
            agent=req.agent,
            operation=req.operation,
            interval_ms=req.interval_ms,
            call_id=len(self.sent),
            rc=rc,
            op_status=status,
            transition_key=req.transition_key,
        )
        self.run(self.dc.op_result(send.node, res, self.now))


def start(aid: int, rsc: str, node: str, *inputs: int) -> GraphAction:
    return GraphAction(
        id=aid,
        kind="resource",
        task="start",
        node=node,
        rsc=rsc,
        agent="ocf:heartbeat:Dummy",
        inputs=list(inputs),
    )


def running_on(cib: m.Cib, rsc: str) -> set[str]:
    nodes = set()
    for st in cib.status.nodes:
        for hist in st.resources:
            last = next((o for o in hist.ops if o.id == f"{rsc}_last_0"), None)
            if hist.id == rsc and last is not None and last.operation == "start" and last.rc == 0:
                nodes.add(st.id)
    return nodes


def ordered_planner(cib: m.Cib, tid: int) -> list[GraphAction]:
    """Start a then b on n1, unless already running (a stand-in for the policy engine)."""
    actions = []
    if not running_on(cib, "a"):
        actions.append(start(1, "a", "n1"))
    if not running_on(cib, "b"):
        actions.append(start(2, "b", "n1", *([1] if actions else [])))
    return actions


def test_becoming_dc_records_membership_and_plans() -> None:
    h = Harness(lambda cib, tid: [])
    states = {s.id: (s.in_ccm, s.crmd, s.join, s.expected) for s in h.cib.status.nodes}
    assert states == {n: ("true", "online", "member", "member") for n in ("n1", "n2")}
    assert h.plans == 1 and h.sent == []


def test_then_is_sent_only_after_first_result_is_committed() -> None:
    h = Harness(ordered_planner)
    assert [(s.request.resource_id, s.node) for s in h.sent] == [("a", "n1")]
    h.complete(h.sent[0])
    assert [s.request.resource_id for s in h.sent] == ["a", "b"]
    assert running_on(h.cib, "a") == {"n1"}
    h.complete(h.sent[1])
    assert running_on(h.cib, "b") == {"n1"}
    assert any("complete" in e for e in h.events)
    # a completed transition with work is followed by one more plan, which finds nothing to do
    assert h.plans == 2 and len(h.sent) == 2


def test_a_failed_start_aborts_records_and_replans() -> None:
    h = Harness(ordered_planner)
    h.complete(h.sent[0], rc=1)
    assert [s.request.resource_id for s in h.sent] == ["a", "a"], (
        "b never starts; a is retried by the new plan"
    )
    attrs = {k: v for st in h.cib.status.nodes for s in st.transient_attributes for k, v in s.values.items()}
    assert attrs["fail-count-a#start_0"] == "INFINITY"
    assert any("aborted" in e and "a_start_0 on n1 failed" in e for e in h.events)


def test_results_from_another_dc_are_recorded_and_replanned() -> None:
    h = Harness(lambda cib, tid: [])
    plans = h.plans
    stray = OpResult(
        resource_id="x",
        agent="ocf:heartbeat:Dummy",
        operation="monitor",
        interval_ms=10_000,
        call_id=7,
        rc=7,
        op_status=OpStatus.DONE,
        transition_key="4:2:0:old-dc",
    )
    h.run(h.dc.op_result("n2", stray, h.now))
    assert h.plans == plans + 1, "an unexpected monitor result triggers a new plan"
    hist = next(st for st in h.cib.status.nodes if st.id == "n2").resources[0]
    assert {o.id for o in hist.ops} == {"x_monitor_10000", "x_last_failure_0"}


def test_node_loss_is_recorded_and_fencing_completes_only_when_committed() -> None:
    def planner(cib: m.Cib, tid: int) -> list[GraphAction]:
        lost = [s.id for s in cib.status.nodes if s.in_ccm == "false" and s.expected == "member"]
        if not lost:
            return []
        fence = GraphAction(id=1, kind="fence", task="stonith", node=lost[0], fence_action="reboot")
        return [fence, start(2, "a", "n1", 1)]

    h = Harness(planner)
    h.run(h.dc.membership(frozenset({"n1"}), h.now))
    assert [f.target for f in h.fences] == ["n2"] and h.sent == []
    fence = h.fences[0]
    event = m.FenceEvent(target="n2", action="reboot", state="done", delegate="n1", client=fence.key)
    h.run(h.dc.fence_result(event, h.now))
    assert h.cib.status.fencing_history == [event]
    n2 = next(s for s in h.cib.status.nodes if s.id == "n2")
    assert (n2.expected, n2.join, n2.resources) == ("down", "down", [])
    assert [(s.request.resource_id, s.node) for s in h.sent] == [("a", "n1")], "recovery only after the fence"


def test_attribute_updates_are_recorded_and_trigger_a_plan() -> None:
    h = Harness(lambda cib, tid: [])
    plans = h.plans
    h.run(h.dc.attribute_update(AttributeUpdate(node="n2", name="master-db", value="10"), h.now))
    attrs = {
        k: v
        for st in h.cib.status.nodes
        if st.id == "n2"
        for s in st.transient_attributes
        for k, v in s.values.items()
    }
    assert attrs == {"master-db": "10"} and h.plans == plans + 1
    h.run(h.dc.attribute_update(AttributeUpdate(node="n2", name="master-db", value="10"), h.now))
    assert h.plans == plans + 1, "an unchanged value is not a change"


def test_a_non_dc_does_nothing() -> None:
    dc = DcCore("n2", uuid="x")
    assert dc.membership(frozenset({"n1", "n2"}), 0) == []
    assert dc.attribute_update(AttributeUpdate(node="n2", name="a", value="1"), 0) == []


def test_after_a_node_is_lost_the_next_plan_already_sees_it_lost() -> None:
    seen: list[str | None] = []

    def planner(cib: m.Cib, tid: int) -> list[GraphAction]:
        n2 = next((s for s in cib.status.nodes if s.id == "n2"), None)
        seen.append(n2.in_ccm if n2 else None)
        return [start(1, "a", "n2")] if n2 is not None and n2.in_ccm == "true" else []

    h = Harness(planner)
    assert [(s.request.resource_id, s.node) for s in h.sent] == [("a", "n2")]
    # n2 dies before answering: its start fails at once, and the new plan waits for the membership commit
    h.run(h.dc.membership(frozenset({"n1"}), h.now))
    assert any("node n2 left while running a_start_0 on n2" in e for e in h.events)
    assert seen[-1] == "false" and len(h.sent) == 1, "no plan was made on the stale membership"


def probe(aid: int, rsc: str, node: str) -> GraphAction:
    return GraphAction(
        id=aid,
        kind="resource",
        task="monitor",
        node=node,
        rsc=rsc,
        agent="ocf:heartbeat:Dummy",
        expected_rc=7,
    )


def probing_planner(cib: m.Cib, tid: int) -> list[GraphAction]:
    """Probe a on n2, then start it on n1, unless the history already says where it runs."""
    found = {st.id for st in cib.status.nodes for h in st.resources if h.id == "a" and h.ops}
    if "n2" in found:
        return []
    return [probe(1, "a", "n2"), start(2, "a", "n1", 1)]


def test_a_probe_finding_nothing_lets_the_start_go_ahead() -> None:
    h = Harness(probing_planner)
    assert [(s.request.operation, s.node) for s in h.sent] == [("monitor", "n2")]
    h.complete(h.sent[0], rc=7)
    assert [(s.request.operation, s.node) for s in h.sent] == [("monitor", "n2"), ("start", "n1")]


def test_a_probe_finding_it_running_stops_the_transition_before_the_start() -> None:
    h = Harness(probing_planner)
    h.complete(h.sent[0], rc=0)
    assert [(s.request.operation, s.node) for s in h.sent] == [("monitor", "n2")]
    assert any("the probe found it running" in e for e in h.events), h.events
    n2 = next(st for st in h.cib.status.nodes if st.id == "n2")
    (last,) = [o for hist in n2.resources for o in hist.ops if o.id == "a_last_0"]
    assert (last.operation, last.rc) == ("monitor", 0)
    assert not [o for hist in n2.resources for o in hist.ops if o.id == "a_last_failure_0"]
    assert h.plans >= 2  # planned again from what the probe found


def start_result(rsc: str, call_id: int, key: str) -> OpResult:
    return OpResult(
        resource_id=rsc,
        agent="ocf:heartbeat:Dummy",
        operation="start",
        interval_ms=0,
        call_id=call_id,
        rc=0,
        op_status=OpStatus.DONE,
        transition_key=key,
    )


def test_a_new_dc_plans_only_once_every_member_has_synced() -> None:
    h = Harness(lambda cib, tid: [], synced=False)
    assert h.plans == 0
    h.run(h.dc.member_sync(Sync(node="n1", dc="n1"), h.now))
    h.run(h.dc.member_sync(Sync(node="n2", dc="n1", in_flight=1), h.now))  # still running something
    assert h.plans == 0
    h.run(h.dc.member_sync(Sync(node="n2", dc="n3"), h.now))  # meant for another DC
    assert h.plans == 0
    h.run(h.dc.member_sync(Sync(node="n2", dc="n1"), h.now))
    assert h.plans == 1


def test_what_a_member_started_for_the_previous_dc_is_recorded_before_the_first_plan() -> None:
    seen: list[set[str]] = []

    def planner(cib: m.Cib, tid: int) -> list[GraphAction]:
        seen.append(running_on(cib, "web"))
        return []

    h = Harness(planner, synced=False)
    h.run(h.dc.member_sync(Sync(node="n1", dc="n1"), h.now))
    result = start_result("web", 7, "3:1:0:old-dc")
    h.run(h.dc.member_sync(Sync(node="n2", dc="n1", results=[result]), h.now))
    assert seen[0] == {"n2"}  # the plan saw the start the old DC never recorded
    h.run(h.dc.member_sync(Sync(node="n2", dc="n1", results=[result]), h.now))  # recorded: nothing new
    assert h.plans == 1


def test_syncs_that_arrive_before_the_barrier_count_and_joining_nodes_sync_too() -> None:
    dc = DcCore("n1", uuid="u")
    dc.members = frozenset({"n1", "n2"})
    dc.cib = m.Cib(configuration=m.Configuration(nodes=[m.Node(id="n1", uname="n1")]))
    assert dc.member_sync(Sync(node="n2", dc="n1"), 1) == []  # leader, barrier not committed yet
    dc.become_dc(2)
    assert dc.unsynced == {"n1"}
    dc.membership(frozenset({"n1", "n2", "n3"}), 3)
    assert dc.unsynced == {"n1", "n3"}
    dc.membership(frozenset({"n1", "n2"}), 4)
    assert dc.unsynced == {"n1"}
    dc.lose_dc()
    assert dc.unsynced == set() and dc.early_syncs == {}


def test_a_node_running_a_new_daemon_has_its_old_history_forgotten_before_the_plan() -> None:
    seen: list[set[str]] = []

    def planner(cib: m.Cib, tid: int) -> list[GraphAction]:
        seen.append(running_on(cib, "web"))
        return []

    h = Harness(planner, synced=False)
    h.run(h.dc.member_sync(Sync(node="n1", dc="n1"), h.now))
    h.run(h.dc.member_sync(Sync(node="n2", dc="n1", results=[start_result("web", 3, "1:1:0:x")]), h.now))
    assert seen == [{"n2"}]  # no daemon run named: nothing forgotten
    h.run(h.dc.member_sync(Sync(node="n2", dc="n1", boot="run-2"), h.now))  # n2's daemon restarted
    assert seen[-1] == set()  # what its earlier run reported is forgotten (it will be probed)
    plans = h.plans
    h.run(h.dc.member_sync(Sync(node="n2", dc="n1", boot="run-2"), h.now))
    assert h.plans == plans  # the same run again: nothing to forget, nothing to plan


def test_an_unanswered_request_is_sent_again_until_its_result_arrives() -> None:
    from hakeeper.controller.dc import RESEND_OP_MS

    h = Harness(ordered_planner)
    (first,) = h.sent
    h.now += RESEND_OP_MS - 1
    h.run(h.dc.tick(h.now))
    assert len(h.sent) == 1  # not yet: the answer may be on its way
    h.now += 1
    h.run(h.dc.tick(h.now))
    assert [s.request for s in h.sent] == [first.request, first.request]  # same transition key
    h.complete(h.sent[0])
    (then,) = h.sent[2:]
    assert then.request.resource_id == "b"
    h.now += RESEND_OP_MS
    h.run(h.dc.tick(h.now))
    assert [s.request.resource_id for s in h.sent[2:]] == ["b", "b"]  # a is answered: only b again


def test_a_request_for_a_node_that_left_is_not_sent_again() -> None:
    from hakeeper.controller.dc import RESEND_OP_MS

    h = Harness(lambda cib, tid: [] if running_on(cib, "a") else [start(1, "a", "n2")])
    (first,) = h.sent
    h.run(h.dc.membership(frozenset({"n1"}), h.now))
    h.now += 10 * RESEND_OP_MS
    h.run(h.dc.tick(h.now))
    assert first.request.transition_key not in h.dc.unanswered
    assert all(s.request.transition_key != first.request.transition_key for s in h.sent[1:])


def test_a_fencing_merged_into_an_earlier_request_completes_the_fence_action_too() -> None:
    def planner(cib: m.Cib, tid: int) -> list[GraphAction]:
        lost = [s.id for s in cib.status.nodes if s.in_ccm == "false" and s.expected == "member"]
        if not lost:
            return []
        return [GraphAction(id=1, kind="fence", task="stonith", node=lost[0]), start(2, "a", "n1", 1)]

    h = Harness(planner)
    h.run(h.dc.membership(frozenset({"n1"}), h.now))
    assert [f.target for f in h.fences] == ["n2"]
    # the fencer merged this request into one an earlier transition made: its result names that one's key
    event = m.FenceEvent(target="n2", action="reboot", state="done", delegate="n1", client="1:1:0:earlier")
    h.run(h.dc.fence_result(event, h.now))
    assert [(s.request.resource_id, s.node) for s in h.sent] == [("a", "n1")]


def test_an_action_for_a_node_that_left_fails_at_once_and_its_loss_is_written_again() -> None:
    h = Harness(lambda cib, tid: [])
    # n2 is gone, but the membership write saying so was lost: the CIB still shows it up
    h.dc.members = frozenset({"n1"})
    h.dc.membership_pending_until = 0
    proposals: list[str] = []
    h.planner = lambda cib, tid: [] if running_on(cib, "a") else [start(1, "a", "n2")]
    commands = h.dc._request_plan()
    (plan,) = commands
    assert isinstance(plan, Plan)
    graph = TransitionGraph(id=plan.transition_id, actions=h.planner(plan.cib, plan.transition_id))
    out = h.dc.plan_ready(graph, h.now)
    proposals = [c.why for c in out if isinstance(c, Propose)]
    assert not [c for c in out if isinstance(c, SendOp)]  # nothing sent to the node that left
    assert proposals == ["membership: -n2"]  # written again, so the next plan waits for it
    assert any("has left the cluster" in c.text for c in out if isinstance(c, Event))
    assert h.dc.running is not None and h.dc.running.engine.finished
    # the replan waits for the membership commit instead of looping on the lost node
    assert h.dc.planning is None and h.dc.replan_needed


def test_a_plan_computed_while_a_node_left_is_discarded() -> None:
    h = Harness(lambda cib, tid: [])
    (plan,) = h.dc._request_plan() or [None]
    assert isinstance(plan, Plan)
    h.dc.membership(frozenset({"n1"}), h.now)
    out = h.dc.plan_ready(TransitionGraph(id=plan.transition_id, actions=[start(1, "a", "n2")]), h.now)
    assert not [c for c in out if isinstance(c, SendOp)]
    assert h.dc.running is None or h.dc.running.graph.id != plan.transition_id


def _with_recheck(h: Harness, value: str | None) -> None:
    props = {} if value is None else {"cluster-recheck-interval": value}
    sets = [m.NvSet(id="cib-bootstrap-options", values=props)]
    h.cib = msgspec.structs.replace(
        h.cib, configuration=msgspec.structs.replace(h.cib.configuration, properties=sets)
    )
    h.dc.cib = h.cib


@pytest.mark.parametrize(
    ("value", "after_ms"), [("2min", 120_000), (None, 15 * 60_000), ("not a duration", 15 * 60_000)]
)
def test_an_idle_dc_plans_again_after_the_cluster_recheck_interval(value: str | None, after_ms: int) -> None:
    h = Harness(lambda cib, tid: [])
    _with_recheck(h, value)
    plans = h.plans
    h.now += after_ms - 1
    h.run(h.dc.tick(h.now))
    assert h.plans == plans
    h.now += 1
    h.run(h.dc.tick(h.now))
    assert h.plans == plans + 1  # and counted from this plan on
    h.now += after_ms - 1
    h.run(h.dc.tick(h.now))
    assert h.plans == plans + 1


def test_a_recheck_interval_of_zero_never_plans_by_itself() -> None:
    h = Harness(lambda cib, tid: [])
    _with_recheck(h, "0")
    plans = h.plans
    h.now += 24 * 3600 * 1000
    h.run(h.dc.tick(h.now))
    assert h.plans == plans


def test_a_one_node_cluster_records_its_only_node_as_a_member_without_any_join() -> None:
    dc = DcCore("solo", uuid="u")
    dc.cib = m.Cib(configuration=m.Configuration(nodes=[m.Node(id="solo", uname="solo")]))
    proposals = [c for c in dc.become_dc(1_000) if isinstance(c, Propose)]
    assert len(proposals) == 1
    cib = apply(dc.cib, proposals[0].patch)
    (state,) = cib.status.nodes
    assert (state.id, state.in_ccm, state.crmd, state.join) == ("solo", "true", "online", "member")


def _three_configured(stonith: str = "true", recorded: tuple[str, ...] = ()) -> DcCore:
    dc = DcCore("n1", uuid="u")
    dc.cib = m.Cib(
        configuration=m.Configuration(
            properties=[m.NvSet(id="opts", values={"stonith-enabled": stonith, "dc-deadtime": "10s"})],
            nodes=[m.Node(id=n, uname=n) for n in ("n1", "n2", "n3")],
        ),
        status=m.Status(nodes=[m.NodeState(id=n, uname=n, in_ccm="false", crmd="offline") for n in recorded]),
    )
    dc.members = frozenset({"n1", "n2"})
    return dc


def _settle(dc: DcCore, commands: list[Command], now: int) -> list[Command]:
    """Commit proposals and answer syncs as they come; returns every command seen."""
    seen, queue = [], list(commands)
    while queue:
        cmd = queue.pop(0)
        seen.append(cmd)
        if isinstance(cmd, Propose):
            cib = apply(dc.cib, cmd.patch)
            queue += dc.cib_committed(cib, cmd.patch, now)
    for node in sorted(dc.unsynced):
        seen += dc.member_sync(Sync(node=node, dc="n1"), now)
    return seen


def test_a_new_dc_waits_dc_deadtime_for_a_node_it_never_saw_before_fencing_it() -> None:
    dc = _three_configured()
    seen = _settle(dc, dc.become_dc(1_000), 1_000)
    assert not any(isinstance(c, Plan) for c in seen)
    assert any(isinstance(c, Event) and "dc-deadtime" in c.text and "n3" in c.text for c in seen)
    assert not any(isinstance(c, Plan) for c in dc.tick(10_999))
    assert any(isinstance(c, Plan) for c in dc.tick(11_000)), "after dc-deadtime it plans (and fences n3)"


def test_an_unseen_node_that_joins_in_time_ends_the_wait() -> None:
    dc = _three_configured()
    _settle(dc, dc.become_dc(1_000), 1_000)
    seen = _settle(dc, dc.membership(frozenset({"n1", "n2", "n3"}), 2_000), 2_000)
    assert any(isinstance(c, Plan) for c in seen)


@pytest.mark.parametrize(("stonith", "recorded"), [("false", ()), ("true", ("n3",))])
def test_no_wait_without_fencing_or_for_a_node_seen_before(stonith: str, recorded: tuple[str, ...]) -> None:
    dc = _three_configured(stonith, recorded)
    seen = _settle(dc, dc.become_dc(1_000), 1_000)
    assert any(isinstance(c, Plan) for c in seen)


def test_a_bare_state_written_before_the_node_joined_does_not_count_as_seen() -> None:
    dc = _three_configured()
    boot = m.NvSet(id="status-n3", values={"hakeeper-boot": "abc"})
    dc.cib = msgspec.structs.replace(
        dc.cib, status=m.Status(nodes=[m.NodeState(id="n3", uname="n3", transient_attributes=[boot])])
    )
    seen = _settle(dc, dc.become_dc(1_000), 1_000)
    assert not any(isinstance(c, Plan) for c in seen), "n3 never joined: the DC still waits for it"
    (state,) = [s for s in dc.cib.status.nodes if s.id == "n3"]
    assert state.in_ccm is None, "nor is it written down as a member that left"
