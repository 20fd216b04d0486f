"""``schedule(cib, now) -> Transition``: the policy engine as one pure function."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from hakeeper.cib import model as m
from hakeeper.cib.rules import RuleContext, evaluate_rule
from hakeeper.policy import actions as act
from hakeeper.policy.allocate import (
    Assigner,
    apply_fail_thresholds,
    apply_stickiness,
)
from hakeeper.policy.constraints import (
    apply_locations,
    apply_node_health,
    apply_tickets,
    build_colocations,
    build_orders,
    build_tickets,
    init_allowed,
    walk,
)
from hakeeper.policy.digests import agent_params, find_definition_changes
from hakeeper.policy.recurring import add_recurring_monitors
from hakeeper.policy.remote import unreachable_remote_nodes
from hakeeper.policy.summary import SummaryLine, render_lines, resource_lines
from hakeeper.policy.unpack import WorkingSet, fence_node, unpack
from hakeeper.policy.working import INFINITY, Action, NodeInfo, Rsc


class GraphAction(msgspec.Struct, frozen=True, kw_only=True):
    """One action of the transition graph, as the controller will execute it."""

    id: int
    task: str
    rsc: str | None
    node: str | None
    pseudo: bool = False
    runnable: bool = True
    reason: str | None = None
    interval_ms: int = 0


class GraphEdge(msgspec.Struct, frozen=True, kw_only=True):
    """``then`` may only start once ``first`` has completed."""

    first: int
    then: int


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """What the cluster must do: the scheduled actions, their ordering, and a human summary."""

    actions: list[GraphAction] = []
    edges: list[GraphEdge] = []
    summary: list[str] = []
    scores: list[str] = []
    warnings: list[str] = []
    agent_params: dict[int, dict[str, str]] = {}
    """Per resource action id: the parameters its agent gets (the resource's own, those inherited from its
    group or clone, and the operation's), the set a recorded digest is compared against. Not part of what
    operators see (it may hold secrets)."""


def node_rule(ws: WorkingSet) -> Callable[[m.Rule, NodeInfo], bool]:
    def check(rule: m.Rule, node: NodeInfo) -> bool:
        ctx = RuleContext(node_attrs=node.attrs, now=ws.now)
        return evaluate_rule(rule, ctx)

    return check


def can_fence(ws: WorkingSet, node: NodeInfo) -> bool:
    cfg = ws.config
    if not cfg.stonith_enabled or not cfg.have_stonith_resource:
        return False
    return cfg.have_quorum or cfg.no_quorum_policy == "ignore" or node.online


def _score_lines(ws: WorkingSet) -> list[str]:
    lines: list[str] = []
    for top in ws.resources:
        for rsc in walk(top):
            for node in sorted(rsc.allowed):
                score = rsc.allowed[node]
                text = "INFINITY" if score >= INFINITY else "-INFINITY" if score <= -INFINITY else str(score)
                lines.append(f"{rsc.id} allocation score on {node}: {text}")
    return lines


def _guest_fencing(ws: WorkingSet, graph: act.Graph, node: NodeInfo) -> SummaryLine | None:
    """A guest is "fenced" by recovering its container: a pseudo fencing that what ran there waits for."""
    conn = ws.by_id.get(node.remote_rsc or "")
    container = conn.container if conn is not None else None
    if container is None or not node.requires_reset:
        return None
    if any(not n.online and not can_fence(ws, n) for n in container.running_on):
        return None
    fence = graph.action(None, "stonith", node, optional=False, pseudo=True, owner=f"stonith-{node.name}")
    fence.fence_kind = "reboot" if graph.find(container, "start") else "off"
    fence.reason = "guest is unclean"
    for stop in graph.find(container, "stop"):
        graph.order(stop, fence, act.IMPLIES_THEN | act.RUNNABLE_LEFT)
    for action in graph.actions:
        if action.node is node and action.rsc is not None and action.task in ("stop", "demote"):
            action.pseudo = True
            action.runnable = True
            graph.order(fence, action, act.IMPLIES_THEN)
    label = f"{node.name} (resource: {container.id})"
    return SummaryLine(f"Fence ({fence.fence_kind})", label, "", fence.reason)


def _fence_actions(ws: WorkingSet, graph: act.Graph) -> list[SummaryLine]:
    lines: list[SummaryLine] = []
    for node in ws.nodes.values():
        guest_line = _guest_fencing(ws, graph, node)
        if guest_line is not None:
            lines.append(guest_line)
    for name in ws.fence_order + [n for n in ws.nodes if n not in ws.fence_order]:
        node = ws.nodes[name]
        if not node.unclean or not can_fence(ws, node):
            continue
        fence = graph.action(None, "stonith", node, optional=False, owner=f"stonith-{name}")
        fence.fence_kind = ws.config.stonith_action
        fence.reason = node.fence_reason or "node is unclean"
        lines.append(SummaryLine(f"Fence ({fence.fence_kind})", name, "", fence.reason))
        for action in graph.actions:
            if action.node is node and action.rsc is not None and action.task in ("stop", "demote"):
                action.pseudo = True
                action.runnable = True
                graph.order(fence, action, act.IMPLIES_THEN)
        _starts_wait_for(graph, fence)
    return lines


def _starts_wait_for(graph: act.Graph, fence: Action) -> None:
    """Every start or promote of a resource that requires fencing waits for every fencing of the transition
    (Pacemaker's ``requires=fencing``): an unclean node may run something the CIB does not show — a start
    whose result its DC never recorded — so nothing of that kind starts anywhere before it is fenced."""
    for action in graph.actions:
        rsc = action.rsc
        if rsc is not None and rsc.requires_fencing and action.task in ("start", "promote"):
            graph.order(fence, action, act.OPTIONAL)


def _fence_unreachable_remotes(ws: WorkingSet, graph: act.Graph) -> None:
    stopping_on = {
        a.node.name
        for a in graph.actions
        if a.task == "stop" and a.rsc is not None and a.node is not None and not a.pseudo
    }
    for node in unreachable_remote_nodes(ws.nodes, ws.by_id, stopping_on):
        fence_node(ws, node, "resources are active but connection is unrecoverable")


def _resources_in_order(ws: WorkingSet) -> list[Rsc]:
    out: list[Rsc] = []
    for top in ws.resources:
        out.extend(top.primitives())
    return out


def schedule(cib: m.Cib, now: int) -> Transition:
    """Decide where every resource should run and which actions get it there. Pure and deterministic."""
    ws = unpack(cib, now)
    for node in ws.nodes.values():
        node.attrs.setdefault("#uname", node.name)
        node.attrs.setdefault("#id", node.id)
        node.attrs.setdefault("#kind", "cluster" if node.kind == "member" else node.kind)
        node.attrs.setdefault("#is_dc", "true" if cib.dc_uuid == node.id else "false")
    find_definition_changes(_resources_in_order(ws), ws.ctx)  # parameters may depend on those attributes
    init_allowed(ws)
    apply_node_health(ws)
    promoted_locations = apply_locations(ws, node_rule(ws))
    tickets = build_tickets(ws)
    apply_tickets(ws, tickets)
    apply_stickiness(ws)
    apply_fail_thresholds(ws)
    build_colocations(ws)
    orders = build_orders(ws)
    Assigner(ws, promoted_locations, tickets).assign_all()
    graph = act.Graph(ws)
    for top in ws.resources:
        act.create_resource_actions(graph, top)
    _fence_unreachable_remotes(ws, graph)
    fence_lines = _fence_actions(ws, graph)
    for prim in _resources_in_order(ws):
        act.internal_orderings(graph, prim)
    for top in ws.resources:
        if top.kind != "primitive":
            act.collective_actions(graph, top)
    act.user_orderings(graph, orders)
    act.propagate(graph)
    add_recurring_monitors(graph, _resources_in_order(ws))
    lines = list(fence_lines)
    for prim in _resources_in_order(ws):
        lines.extend(resource_lines(prim))
    return Transition(
        actions=[
            GraphAction(
                id=a.id,
                task=a.task,
                rsc=a.rsc.id if a.rsc else None,
                node=a.node.name if a.node else None,
                pseudo=a.pseudo,
                runnable=a.runnable,
                reason=a.reason,
                interval_ms=a.interval_ms,
            )
            for a in graph.actions
            if not a.optional
        ],
        agent_params={
            a.id: agent_params(a.rsc, a.task, a.interval_ms, a.node, ws.ctx)
            for a in graph.actions
            if a.rsc is not None and not a.pseudo and not a.optional
        },
        edges=[
            GraphEdge(first=a.id, then=b.id)
            for a in graph.actions
            if not a.optional
            for b, _flags in a.before
            if not b.optional
        ],
        summary=render_lines(lines),
        scores=_score_lines(ws),
        warnings=list(ws.warnings),
    )
