"""Recurring monitors in the transition: how the cluster notices a resource that dies under a live node.

After a resource starts (or changes role) on a node, each of its configured recurring ``monitor`` operations
for the role it ends in is scheduled there, ordered after the action that put it in that role. Before a
promotion, the monitors of the unpromoted role are cancelled (the LRM cancels every recurring operation by
itself before a stop, demote or migration, as Pacemaker's executor does). Monitors never appear in the
transition summary, as in crm_simulate.

This is the scheduler's last step, so it also adds the probes (``policy/probes.py``): they need the final
start and promote actions to order themselves before.

A resource that stays where it runs gets each monitor its history lacks there (as Pacemaker does): a
transition aborted between a start and its monitor must not leave the resource unwatched for good.
"""

from __future__ import annotations

from hakeeper.policy.actions import OPTIONAL, Graph
from hakeeper.policy.probes import add_probes
from hakeeper.policy.working import Action, NodeInfo, OpDef, Role, Rsc


def _applies(op: OpDef, role: Role) -> bool:
    if op.name != "monitor" or op.interval_ms <= 0 or not op.enabled:
        return False
    if op.role in (Role.UNKNOWN, Role.STARTED):
        return role in (Role.STARTED, Role.UNPROMOTED)
    return op.role == role


def _new_action(
    graph: Graph, rsc: Rsc, node: NodeInfo, task: str, interval_ms: int, runnable: bool
) -> Action:
    act = Action(
        uuid=f"{rsc.id}_{task}_{interval_ms}",
        task=task,
        rsc=rsc,
        node=node,
        optional=False,
        runnable=runnable,
        interval_ms=interval_ms,
    )
    act.id = len(graph.actions)
    graph.actions.append(act)
    rsc.actions.append(act)
    return act


def _last_role_change(rsc: Rsc, node: NodeInfo) -> tuple[Action, Role] | None:
    """The required action that leaves ``rsc`` in its final role on ``node`` (promote > start > demote)."""
    for task, role in (("promote", Role.PROMOTED), ("demote", Role.UNPROMOTED), ("start", Role.STARTED)):
        for act in rsc.actions:
            if act.task == task and act.node is node and not act.optional and not act.pseudo:
                if role is Role.STARTED and rsc.promotable:
                    role = Role.UNPROMOTED
                return act, role
    return None


def add_recurring_monitors(graph: Graph, primitives: list[Rsc]) -> None:
    """Recurring monitors for each resource's final role, then the probes of the whole transition."""
    _add_monitors(graph, primitives)
    add_probes(graph)


def _add_monitors(graph: Graph, primitives: list[Rsc]) -> None:
    for rsc in primitives:
        node = rsc.assigned
        if node is None or not rsc.ops:
            continue
        change = _last_role_change(rsc, node)
        if change is None:
            _restore_missing_monitors(graph, rsc, node)
            continue
        after, role = change
        if role is Role.PROMOTED:
            for op in rsc.ops:
                if _applies(op, Role.UNPROMOTED) and node in rsc.running_on:
                    cancel = _new_action(graph, rsc, node, "cancel", op.interval_ms, after.runnable)
                    graph.order(cancel, after, OPTIONAL)
        for op in rsc.ops:
            if _applies(op, role):
                monitor = _new_action(graph, rsc, node, "monitor", op.interval_ms, after.runnable)
                graph.order(after, monitor, OPTIONAL)


def _restore_missing_monitors(graph: Graph, rsc: Rsc, node: NodeInfo) -> None:
    """Monitors of a resource that stays put on ``node`` whose history there lacks them."""
    if node not in rsc.running_on or not rsc.managed or not node.online or node.unclean:
        return
    if any(a.task in ("stop", "demote") and a.node is node and not a.optional for a in rsc.actions):
        return
    role = Role.UNPROMOTED if rsc.promotable and rsc.role is Role.STARTED else rsc.role
    recorded = {
        o.interval
        for h in rsc.history
        if h.node is node
        for o in h.ops
        # a failure record (<rsc>_last_failure_0) is history, not an active monitor; 1: cancelled
        if o.operation == "monitor"
        and o.interval > 0
        and o.op_status != 1
        and not o.id.endswith("_failure_0")
    }
    for op in rsc.ops:
        if _applies(op, role) and op.interval_ms not in recorded:
            _new_action(graph, rsc, node, "monitor", op.interval_ms, True)
