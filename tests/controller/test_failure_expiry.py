"""Fail counts expire: planning clears those past their failure-timeout and says when the next one expires;
the DC plans again at that time even when nothing else changes (Pacemaker's recheck)."""

from __future__ import annotations

import msgspec

from hakeeper.cib import model as m
from hakeeper.cib.patch import apply
from hakeeper.controller.dc import DcCore, Plan, Propose
from hakeeper.controller.graph import GraphAction, TransitionGraph
from hakeeper.controller.planning import plan_transition

NOW = 1_700_000_000


def dummy(rid: str, **meta: str) -> m.Primitive:
    sets = [m.NvSet(id=f"{rid}-meta", values=dict(meta))] if meta else []
    return m.Primitive(id=rid, klass="ocf", provider="heartbeat", type="Dummy", meta_attributes=sets)


def failed_on_n1(rsc: str, at: int) -> dict[str, str]:
    return {f"fail-count-{rsc}#monitor_1000": "1", f"last-failure-{rsc}#monitor_1000": str(at)}


def cib_with_failures(attrs: dict[str, str], *resources: m.Primitive) -> m.Cib:
    def state(node: str, values: dict[str, str]) -> m.NodeState:
        transient = [m.NvSet(id=f"status-{node}", values=values)] if values else []
        return m.NodeState(
            id=node,
            uname=node,
            in_ccm="true",
            crmd="online",
            join="member",
            expected="member",
            transient_attributes=transient,
        )

    return m.Cib(
        configuration=m.Configuration(
            properties=[m.NvSet(id="cib-bootstrap-options", values={"stonith-enabled": "false"})],
            nodes=[m.Node(id="n1", uname="n1"), m.Node(id="n2", uname="n2")],
            resources=list(resources),
        ),
        status=m.Status(nodes=[state("n1", attrs), state("n2", {})]),
    )


def clears(graph: TransitionGraph) -> set[tuple[str | None, str | None]]:
    return {(a.rsc, a.node) for a in graph.actions if a.task == "clear_failcount"}


def test_an_expired_fail_count_is_cleared_and_a_pending_one_sets_the_recheck_time() -> None:
    attrs = (
        failed_on_n1("old", NOW - 100)
        | failed_on_n1("recent", NOW - 10)
        | failed_on_n1("forever", NOW - 1000)
    )
    cib = cib_with_failures(
        attrs,
        dummy("old", **{"failure-timeout": "60s"}),
        dummy("recent", **{"failure-timeout": "1min"}),
        dummy("forever"),
    )
    graph = plan_transition(cib, NOW, 3)
    assert clears(graph) == {("old", "n1")}
    assert graph.recheck_at_s == NOW - 10 + 60
    [clear] = [a for a in graph.actions if a.task == "clear_failcount"]
    assert clear.kind == "cluster" and clear.id not in {a.id for a in graph.actions if a is not clear}
    graph.validate()


def test_failure_timeout_from_rsc_defaults_counts_too() -> None:
    cib = cib_with_failures(failed_on_n1("web", NOW - 5), dummy("web"))
    defaults = [m.NvSet(id="rsc-defaults", values={"failure-timeout": "5"})]
    cib = m.Cib(
        configuration=m.Configuration(
            properties=cib.configuration.properties,
            nodes=cib.configuration.nodes,
            resources=cib.configuration.resources,
            rsc_defaults=defaults,
        ),
        status=cib.status,
    )
    assert clears(plan_transition(cib, NOW, 1)) == {("web", "n1")}
    assert plan_transition(cib, NOW - 1, 1).recheck_at_s == NOW


def test_no_failures_no_recheck() -> None:
    graph = plan_transition(cib_with_failures({}, dummy("web", **{"failure-timeout": "60s"})), NOW, 1)
    assert graph.recheck_at_s is None and not clears(graph)


def dc_awaiting_a_plan(cib: m.Cib) -> DcCore:
    """A DC that has asked for plan 1 (how it got there — membership, member syncs — is not the point)."""
    dc = DcCore("n1", uuid="u")
    dc.cib = cib
    dc.members = frozenset({"n1", "n2"})
    dc.is_dc = True
    dc.planning, dc.next_transition = 1, 2
    return dc


def with_failed_monitor(cib: m.Cib, rsc: str, node: str) -> m.Cib:
    """``rsc`` restarted on ``node`` after a monitor failure: ``_last_0`` (start) and ``_last_failure_0``."""
    ops = [
        m.OpRecord(id=f"{rsc}_last_0", operation="start", call_id=5, rc=0, on_node=node),
        m.OpRecord(
            id=f"{rsc}_last_failure_0", operation="monitor", call_id=4, rc=7, interval=1000, on_node=node
        ),
    ]
    history = m.ResourceHistory(id=rsc, klass="ocf", provider="heartbeat", type="Dummy", ops=ops)
    nodes = [msgspec.structs.replace(s, resources=[history]) if s.id == node else s for s in cib.status.nodes]
    return msgspec.structs.replace(cib, status=msgspec.structs.replace(cib.status, nodes=nodes))


def test_the_dc_plans_again_when_a_fail_count_expires_and_clears_it() -> None:
    cib = cib_with_failures(failed_on_n1("web", NOW - 10), dummy("web", **{"failure-timeout": "60s"}))
    cib = with_failed_monitor(cib, "web", "n1")
    dc = dc_awaiting_a_plan(cib)
    graph = TransitionGraph(id=1, actions=[], recheck_at_s=NOW + 50)
    dc.plan_ready(graph, NOW * 1000)
    assert not any(isinstance(c, Plan) for c in dc.tick((NOW + 49) * 1000)), "not yet"
    [plan] = [c for c in dc.tick((NOW + 50) * 1000) if isinstance(c, Plan)]
    assert plan.now_s == NOW + 50
    # that plan clears the count; the DC commits the deletion
    clear = GraphAction(id=1, kind="cluster", task="clear_failcount", rsc="web", node="n1")
    out = dc.plan_ready(TransitionGraph(id=plan.transition_id, actions=[clear]), (NOW + 50) * 1000)
    [propose] = [c for c in out if isinstance(c, Propose)]
    after = apply(cib, propose.patch)
    left = {k for s in after.status.nodes for t in s.transient_attributes for k in t.values}
    assert left == set()
    # the failure leaves the history too (as Pacemaker's clear_failcount), so status no longer lists it
    [history] = [h for s in after.status.nodes for h in s.resources]
    assert [o.id for o in history.ops] == ["web_last_0"]
    assert not any(isinstance(c, Plan) for c in dc.tick((NOW + 100) * 1000)), "a recheck fires once"


def test_a_recheck_waits_for_the_running_transition() -> None:
    dc = dc_awaiting_a_plan(cib_with_failures({}, dummy("web")))
    start = GraphAction(
        id=1, kind="resource", task="start", rsc="web", node="n2", agent="ocf:heartbeat:Dummy"
    )
    dc.plan_ready(TransitionGraph(id=1, actions=[start], recheck_at_s=NOW + 1), NOW * 1000)
    assert not any(isinstance(c, Plan) for c in dc.tick((NOW + 2) * 1000)), "the start is still running"
