"""Actions for every resource and node, the ordering edges between them, and the propagation of
"required" and "unrunnable" along those edges (the transition graph before it is written out)."""

from __future__ import annotations

import itertools

from hakeeper.policy import digests
from hakeeper.policy.constraints import OrderSpec
from hakeeper.policy.unpack import WorkingSet
from hakeeper.policy.working import Action, NodeInfo, Role, Rsc

# ordering flags (how one action's state constrains another's)
OPTIONAL = 1  # pure ordering
IMPLIES_THEN = 2  # first required -> then required
IMPLIES_FIRST = 4  # then required -> first required
RUNNABLE_LEFT = 8  # first unrunnable -> then unrunnable
RESTART = 16  # stop/start of one resource
ONE_OR_MORE = 32  # then runnable once enough firsts are runnable
PROMOTED_IMPLIES_FIRST = 64
IMPLIES_FIRST_MIGRATABLE = 128  # then not migratable/runnable -> first unrunnable; then required -> first
PSEUDO_LEFT = 256  # first unrunnable -> then no longer migratable nor pseudo
ASYMMETRICAL = 512  # mandatory one way only: first unrunnable -> then unrunnable, unless then is already done

DONE_TASK = {"start": "running", "stop": "stopped", "promote": "promoted", "demote": "demoted"}


class Graph:
    """All actions of one transition, indexed by (resource id or node, task, node)."""

    def __init__(self, ws: WorkingSet) -> None:
        self.ws = ws
        self.actions: list[Action] = []
        self.index: dict[tuple[str, str, str], Action] = {}

    def action(
        self,
        rsc: Rsc | None,
        task: str,
        node: NodeInfo | None,
        optional: bool = True,
        pseudo: bool = False,
        owner: str | None = None,
    ) -> Action:
        key = (rsc.id if rsc is not None else owner or "", task, node.name if node is not None else "")
        existing = self.index.get(key)
        if existing is not None:
            if not optional:
                existing.optional = False
            return existing
        uuid = f"{key[0]}_{task}_0"
        act = Action(uuid=uuid, task=task, rsc=rsc, node=node, optional=optional, pseudo=pseudo)
        act.id = len(self.actions)
        self.actions.append(act)
        self.index[key] = act
        if rsc is not None:
            rsc.actions.append(act)
        return act

    def find(self, rsc: Rsc, task: str, node: NodeInfo | None = None) -> list[Action]:
        return [a for a in rsc.actions if a.task == task and (node is None or a.node is node)]

    def order(self, first: Action, then: Action, flags: int) -> None:
        if first is then:
            return
        first.before.append((then, flags))
        then.after.append((first, flags))
        if flags & ONE_OR_MORE and then.required_runnable_before == 0:
            then.required_runnable_before = 1


def can_migrate(rsc: Rsc, current: NodeInfo | None) -> bool:
    """Whether a move can be a live migration (allow-migrate, managed, healthy, clean nodes)."""
    if not rsc.allow_migrate or not rsc.managed or rsc.failed or rsc.start_pending:
        return False
    if current is None or current.unclean:
        return False
    return rsc.assigned is not None and not rsc.assigned.unclean


# --- per-resource actions ---------------------------------------------------------------------------------


def _clear_optional(act: Action) -> None:
    act.optional = False


def quorum_blocks(ws: WorkingSet, rsc: Rsc, act: Action) -> str | None:
    """The reason an action cannot run for lack of quorum, if it cannot."""
    cfg = ws.config
    if cfg.have_quorum or act.task in ("stop", "demote") or act.pseudo:
        return None
    if rsc.meta.get("requires", "").lower() == "nothing":
        return None
    policy = cfg.no_quorum_policy
    if policy == "ignore":
        return None
    if policy == "demote":
        if rsc.role in (Role.PROMOTED, Role.UNPROMOTED):
            return None
        return "no quorum"
    if policy == "freeze":
        if not rsc.running_on or rsc.next_role > rsc.role:
            return "quorum freeze"
        return None
    return "no quorum"


def update_runnable(ws: WorkingSet, act: Action) -> None:
    """An action on an offline/pending node, or without a node, cannot run; nor without quorum."""
    if act.pseudo or act.rsc is None:
        return
    node = act.node
    if node is None or not node.online or node.pending:
        act.runnable = False
        return
    reason = quorum_blocks(ws, act.rsc, act)
    if reason is not None:
        act.runnable = False
        act.reason = act.reason or reason


class PrimitiveActions:
    """Pacemaker's role transitions for one primitive: stop/start/promote/demote as needed."""

    def __init__(self, graph: Graph, rsc: Rsc) -> None:
        self.graph = graph
        self.ws = graph.ws
        self.rsc = rsc

    def create(self) -> None:
        rsc = self.rsc
        if rsc.next_role == Role.UNKNOWN:
            rsc.next_role = Role.STARTED if rsc.assigned is not None else Role.STOPPED
            clone = rsc.clone_parent()
            if clone is not None and clone.promotable and rsc.next_role == Role.STARTED:
                rsc.next_role = Role.UNPROMOTED
        if rsc.role == Role.UNKNOWN:
            rsc.role = Role.STOPPED
        current = rsc.current_node()
        need_stop = False
        need_promote = False
        moving = (
            current is not None
            and rsc.assigned is not None
            and current is not rsc.assigned
            and rsc.next_role >= Role.STARTED
        )
        if moving:
            need_stop = True
        multiply = (
            len(rsc.running_on) > 1
            if rsc.requires_fencing
            else len([n for n in rsc.running_on if not n.unclean]) > 1
        )
        if rsc.partial_migration_source is not None:
            multiply = False
        if multiply and rsc.multiple_active in ("stop_start", "stop_unexpected"):
            need_stop = True
        if moving:
            pass
        elif rsc.failed:
            if rsc.stop_needed:
                need_stop = True
            elif rsc.next_role == Role.PROMOTED:
                need_promote = True
        elif rsc.blocked:
            need_stop = True
        elif rsc.role > Role.STARTED and current is not None and rsc.assigned is not None:
            start = self.start(rsc.assigned, optional=True)
            if not start.optional:
                need_stop = True
        if rsc.restart_required and not moving:
            need_stop = True
        changed = self.definition_changed(current, moving)
        if changed in (digests.RESTART, digests.AGENT):
            need_stop = True
        allow_migrate = moving and can_migrate(rsc, current)
        if rsc.partial_migration_source is not None and rsc.partial_migration_target is not None:
            continuing = (
                allow_migrate
                and len(rsc.running_on) == 2
                and current is rsc.partial_migration_source
                and rsc.assigned is rsc.partial_migration_target
            )
            if not continuing:
                need_stop = True
                rsc.partial_migration_source = rsc.partial_migration_target = None
                allow_migrate = False
        for source in rsc.dangling_migrations:
            if source not in rsc.running_on and source.online:
                stop = self.graph.action(rsc, "stop", source, optional=False)  # the clean-up a migration owes
                stop.dangling = True
        self.restart_actions(current, need_stop, need_promote)
        if changed == digests.RESTART and rsc.assigned is not None:
            for start in self.graph.find(rsc, "start", rsc.assigned):
                start.reason = start.reason or "resource definition change"
        self.role_transitions()
        if allow_migrate and current is not None:
            self.migration(current)

    def definition_changed(self, current: NodeInfo | None, moving: bool) -> str | None:
        """Restart (or reload) in place a resource whose parameters or agent changed since it started."""
        rsc = self.rsc
        change = rsc.definition_change.get(current.name) if current is not None else None
        if change is None or moving or rsc.assigned is None:
            return None
        if change == digests.RELOAD:
            if rsc.failed or not rsc.managed:
                return None
            if rsc.start_pending:
                return digests.AGENT  # a start still running with the old parameters: a full restart instead
            rsc.reload = True
        return change

    def migration(self, current: NodeInfo) -> None:
        rsc = self.rsc
        assert rsc.assigned is not None
        start = self.start(rsc.assigned, optional=True)
        stops = self.graph.find(rsc, "stop", current)
        stop = stops[0] if stops else self.graph.action(rsc, "stop", current)
        migrate_to = None
        if rsc.partial_migration_target is None:
            migrate_to = self.graph.action(rsc, "migrate_to", current, optional=True)
        migrate_from = self.graph.action(rsc, "migrate_from", rsc.assigned, optional=True)
        start.migratable = stop.migratable = True
        start.pseudo = True
        migrate_from.migratable = True
        if migrate_to is not None:
            migrate_to.migratable = True
            update_runnable(self.ws, migrate_to)
            self.graph.order(migrate_to, migrate_from, OPTIONAL | IMPLIES_FIRST_MIGRATABLE)
        update_runnable(self.ws, migrate_from)
        self.graph.order(migrate_from, stop, OPTIONAL | IMPLIES_FIRST_MIGRATABLE)
        self.graph.order(migrate_from, start, OPTIONAL | IMPLIES_FIRST_MIGRATABLE | PSEUDO_LEFT)

    # the role ladder: stopped <-> started/unpromoted <-> promoted
    def restart_actions(self, current: NodeInfo | None, need_stop: bool, need_promote: bool) -> None:
        rsc = self.rsc
        role = rsc.role
        if role == Role.PROMOTED:
            self.demote(optional=not need_stop)
            role = Role.UNPROMOTED
        if role in (Role.STARTED, Role.UNPROMOTED):
            self.stop(optional=not need_stop)
            role = Role.STOPPED
        if rsc.blocked or rsc.role > rsc.next_role or rsc.role == Role.STOPPED:
            return
        if rsc.assigned is None:
            return
        self.start(rsc.assigned, optional=not need_stop)
        if rsc.role == Role.PROMOTED:
            self.promote(rsc.assigned, optional=not (need_stop or need_promote))

    def role_transitions(self) -> None:
        rsc = self.rsc
        role, goal = rsc.role, rsc.next_role
        if role == goal:
            return
        if goal == Role.STOPPED:
            if role == Role.PROMOTED:
                self.demote(optional=False)
            self.stop(optional=False)
            return
        if role == Role.STOPPED:
            if rsc.assigned is None:
                return
            self.start(rsc.assigned, optional=False)
            if goal == Role.PROMOTED:
                self.promote(rsc.assigned, optional=False)
            return
        if role == Role.PROMOTED and goal in (Role.UNPROMOTED, Role.STARTED):
            self.demote(optional=False)
            return
        if role in (Role.UNPROMOTED, Role.STARTED) and goal == Role.PROMOTED and rsc.assigned is not None:
            self.promote(rsc.assigned, optional=False)

    def stop(self, optional: bool) -> None:
        rsc = self.rsc
        for node in rsc.running_on:
            target = rsc.partial_migration_target
            if target is not None:
                if node is target and node is rsc.assigned:
                    continue
                optional = False
            act = self.graph.action(rsc, "stop", node, optional=optional)
            if not optional:
                act.optional = False
            if rsc.assigned is None:
                act.reason = "node availability"
            if not rsc.managed:
                act.runnable = False

    def start(self, node: NodeInfo, optional: bool) -> Action:
        act = self.graph.action(self.rsc, "start", node, optional=True)
        update_runnable(self.ws, act)
        if act.runnable and not optional:
            act.optional = False
        return act

    def promote(self, node: NodeInfo, optional: bool) -> None:
        starts = self.graph.find(self.rsc, "start", node)
        runnable = all(s.runnable for s in starts)
        act = self.graph.action(self.rsc, "promote", node, optional=optional)
        if not runnable:
            act.runnable = False
        else:
            update_runnable(self.ws, act)

    def demote(self, optional: bool) -> None:
        for node in self.rsc.running_on:
            self.graph.action(self.rsc, "demote", node, optional=optional)


def create_resource_actions(graph: Graph, top: Rsc) -> None:
    for prim in top.primitives():
        PrimitiveActions(graph, prim).create()
        for act in prim.actions:
            if act.task in ("stop", "demote"):
                # with fencing, a lost node's resources stop only when it is fenced (the fencing stage)
                lost = act.node is not None and not act.node.online
                if lost and act.node is not None and act.node.unclean and not graph.ws.config.stonith_enabled:
                    act.pseudo = True
                elif lost:
                    act.runnable = False
            if not prim.managed and act.task not in ("monitor",):
                act.optional = True
                if act.task in ("stop", "demote"):
                    act.runnable = False
                # an unmanaged resource's actions are never scheduled, but may block others


def internal_orderings(graph: Graph, prim: Rsc) -> None:
    stops = graph.find(prim, "stop")
    starts = graph.find(prim, "start")
    for stop in stops:
        # the clean-up stop of a finished migration does not make the resource restart where it runs
        flags = OPTIONAL | RESTART if stop.dangling else OPTIONAL | IMPLIES_THEN | RESTART
        for start in starts:
            graph.order(stop, start, flags)
    for demote in graph.find(prim, "demote"):
        for stop in stops:
            graph.order(demote, stop, PROMOTED_IMPLIES_FIRST)
    for start in starts:
        for promote in graph.find(prim, "promote"):
            graph.order(start, promote, RUNNABLE_LEFT)


# --- collectives ------------------------------------------------------------------------------------------


def _child_status(rsc: Rsc) -> tuple[bool, bool, bool, bool]:
    """(active, starting, stopping, some instance both stops and starts) over a collective's primitives."""
    active = starting = stopping = both = False
    for child in rsc.children:
        child_start = child_stop = False
        for prim in child.primitives():
            if prim.running_on:
                active = True
            for act in prim.actions:
                if act.optional or not (act.pseudo or act.runnable):
                    continue
                if act.task == "stop":
                    child_stop = True
                elif act.task == "start" and act.runnable:
                    child_start = True
        starting |= child_start
        stopping |= child_stop
        both |= child_start and child_stop
    return active, starting, stopping, both


def collective_actions(graph: Graph, rsc: Rsc) -> None:
    """Pseudo-actions for a group or clone: ``start``/``running``, ``stop``/``stopped`` (and promote)."""
    for child in rsc.children:
        if child.kind != "primitive":
            collective_actions(graph, child)
    active, starting, stopping, both = _child_status(rsc)
    for task, done in DONE_TASK.items():
        busy = {"start": starting, "stop": stopping}.get(task, False)
        begin = graph.action(rsc, task, None, pseudo=True, optional=not busy)
        end = graph.action(rsc, done, None, pseudo=True, optional=not busy)
        if task == "stop":
            begin.migratable = not both
        members = rsc.children
        for child in members:
            for act in _entry_actions(graph, child, task):
                graph.order(begin, act, RUNNABLE_LEFT | OPTIONAL)
            for act in _exit_actions(graph, child, task):
                graph.order(act, end, IMPLIES_THEN | (ONE_OR_MORE if rsc.kind == "clone" else RUNNABLE_LEFT))
        graph.order(begin, end, RUNNABLE_LEFT)
        if rsc.kind == "clone" and task in ("start", "promote"):
            end.runnable = active or starting if task == "start" else True
            end.required_runnable_before = 0
    if rsc.kind == "group":
        group_orderings(graph, rsc)


def _clone_keeps_running(rsc: Rsc, task: str) -> bool:
    return any(p.assigned is not None for p in rsc.primitives())


def _entry_actions(graph: Graph, rsc: Rsc, task: str) -> list[Action]:
    """The action(s) that begin ``task`` on a resource: its own, or a collective's pseudo-action."""
    if rsc.kind == "primitive":
        return graph.find(rsc, task)
    return graph.find(rsc, task, None)


def _exit_actions(graph: Graph, rsc: Rsc, task: str) -> list[Action]:
    if rsc.kind == "primitive":
        return graph.find(rsc, task)
    return [a for a in rsc.actions if a.task == DONE_TASK[task]]


def group_orderings(graph: Graph, grp: Rsc) -> None:
    members = grp.children
    for prev, member in itertools.pairwise(members):
        for first in graph.find(prev, "start"):
            for then in graph.find(member, "start"):
                graph.order(first, then, OPTIONAL | IMPLIES_THEN | RUNNABLE_LEFT)
        for first in graph.find(member, "stop"):
            for then in graph.find(prev, "stop"):
                graph.order(first, then, OPTIONAL | RESTART)
        for first in graph.find(prev, "promote"):
            for then in graph.find(member, "promote"):
                graph.order(first, then, OPTIONAL | IMPLIES_THEN | RUNNABLE_LEFT)
        for first in graph.find(member, "demote"):
            for then in graph.find(prev, "demote"):
                graph.order(first, then, OPTIONAL)


# --- user orderings -----------------------------------------------------------------------------------------


def _flags_for(spec: OrderSpec, first_task: str) -> int:
    if spec.kind == "Optional":
        return OPTIONAL
    if spec.kind == "Serialize":
        return OPTIONAL
    if not spec.symmetrical:
        return OPTIONAL | ASYMMETRICAL
    flags = OPTIONAL | IMPLIES_THEN
    if first_task in ("start", "promote"):
        flags |= RUNNABLE_LEFT
    return flags


def _first_side(graph: Graph, rsc: Rsc, task: str) -> list[Action]:
    if rsc.kind == "primitive":
        found = graph.find(rsc, task)
        if not found and task in ("start", "promote"):
            # an ordering names an action that was not scheduled: it exists, but cannot run anywhere
            placeholder = graph.action(rsc, task, None, optional=True)
            placeholder.runnable = False
            found = [placeholder]
        return found
    done = DONE_TASK.get(task)
    return graph.find(rsc, done, None) if done else []


def _then_side(graph: Graph, rsc: Rsc, task: str) -> list[Action]:
    """Actions a 'then' refers to: a primitive's own, or every member's for a collective."""
    if rsc.kind == "primitive":
        return graph.find(rsc, task)
    if rsc.kind == "group":
        members = rsc.children
        if not members:
            return []
        member = members[0] if task in ("start", "promote") else members[-1]
        return _then_side(graph, member, task) + graph.find(rsc, task, None)
    out: list[Action] = []
    for child in rsc.children:
        out.extend(_then_side(graph, child, task))
    return out + graph.find(rsc, task, None)


_INVERSE = {"start": "stop", "stop": "start", "promote": "demote", "demote": "promote"}


def _relaxed_ordering(graph: Graph, spec: OrderSpec) -> None:
    """ "then" may run once ``min_first`` instances of the "first" clone can (clone-min, require-all)."""
    met = graph.action(None, f"clone-one-or-more:{spec.id}", None, pseudo=True, owner=spec.id)
    met.required_runnable_before = spec.min_first
    for inst in spec.first.children:
        for first in _first_side(graph, inst, spec.first_action):
            graph.order(first, met, ONE_OR_MORE)
    for then in _then_side(graph, spec.then, spec.then_action):
        graph.order(met, then, _flags_for(spec, spec.first_action) | RUNNABLE_LEFT)


def user_orderings(graph: Graph, specs: list[OrderSpec]) -> None:
    for spec in specs:
        if spec.min_first > 0 and spec.first_action in ("start", "promote"):
            _relaxed_ordering(graph, spec)
        else:
            _order_pair(
                graph,
                spec.first,
                spec.first_action,
                spec.then,
                spec.then_action,
                _flags_for(spec, spec.first_action),
                spec,
            )
        if spec.symmetrical and spec.kind == "Mandatory":
            first_inv = _INVERSE.get(spec.then_action)
            then_inv = _INVERSE.get(spec.first_action)
            if first_inv and then_inv:
                _order_pair(graph, spec.then, first_inv, spec.first, then_inv, OPTIONAL | IMPLIES_FIRST, spec)
        elif spec.symmetrical and spec.kind == "Optional":
            first_inv = _INVERSE.get(spec.then_action)
            then_inv = _INVERSE.get(spec.first_action)
            if first_inv and then_inv:
                _order_pair(graph, spec.then, first_inv, spec.first, then_inv, OPTIONAL, spec)


def _order_pair(
    graph: Graph, first: Rsc, first_task: str, then: Rsc, then_task: str, flags: int, spec: OrderSpec
) -> None:
    if _interleaved(first, then):
        for inst in then.children:
            node = _instance_node(inst)
            partner = next(
                (c for c in first.children if node is not None and _instance_node(c) is node), None
            )
            if partner is None:
                continue
            for a in _first_side(graph, partner, first_task):
                for b in _then_side(graph, inst, then_task):
                    graph.order(a, b, flags)
        return
    firsts = _first_side(graph, first, first_task)
    thens = _then_side(graph, then, then_task)
    for a in firsts:
        for b in thens:
            # "then" is required => "first" is required: judged on the collective as a whole
            member_of_collective = then.kind != "primitive" and b.rsc is not then
            graph.order(a, b, flags & ~IMPLIES_FIRST if member_of_collective else flags)


def _interleaved(first: Rsc, then: Rsc) -> bool:
    return first.kind == "clone" and then.kind == "clone" and then.interleave


def _instance_node(inst: Rsc) -> NodeInfo | None:
    prims = inst.primitives()
    if not prims:
        return None
    return prims[0].assigned or prims[0].current_node()


# --- propagation --------------------------------------------------------------------------------------------


def _reason_text(action: Action, change: str) -> str:
    rsc = action.rsc.id if action.rsc is not None else ""
    return f"{change}{' ' if rsc else ''}{rsc} {action.task}"


def _clear_optional_because(then: Action, cause: Action) -> bool:
    if not then.optional:
        return False
    then.optional = False
    if then.rsc is not cause.rsc and then.reason is None:
        then.reason = _reason_text(cause, "required")
    return True


def _clear_runnable_because(then: Action, cause: Action) -> bool:
    if not then.runnable:
        return False
    then.runnable = False
    if then.rsc is not cause.rsc and then.reason is None:
        then.reason = _reason_text(cause, "unrunnable")
    return True


def _clear_migratable_because(act: Action, cause: Action) -> bool:
    if not act.migratable:
        return False
    act.migratable = False
    if act.rsc is not cause.rsc:
        act.reason = _reason_text(cause, "unrunnable")
    return True


def _asymmetric(first: Action, then: Action) -> bool:
    """A one-way mandatory ordering holds "then" back only if "then" still has something to do."""
    rsc = then.rsc
    if rsc is None or first.runnable:
        return False
    if rsc.role == Role.STOPPED and then.task == "stop":
        return False  # already stopped
    already_there = len(rsc.running_on) == 1 and then.node is rsc.running_on[0]
    if rsc.role >= Role.STARTED and then.optional and then.task == "start" and already_there:
        return False  # already started (a required start would be a restart, which still waits)
    changed = _clear_optional_because(then, first)
    return _clear_runnable_because(then, first) or changed


def _apply_edge(first: Action, then: Action, flags: int) -> bool:
    changed = False
    if flags & ASYMMETRICAL:
        changed |= _asymmetric(first, then)
    if flags & IMPLIES_FIRST and not then.optional:
        if first.optional:
            changed |= _clear_optional_because(first, then)
        if first.migratable and not then.migratable:
            changed |= _clear_migratable_because(first, then)
    if flags & IMPLIES_FIRST_MIGRATABLE:
        if not (then.migratable and then.runnable):
            changed |= _clear_runnable_because(first, then)
        if not then.optional:
            changed |= _clear_optional_because(first, then)
    if flags & PSEUDO_LEFT and not first.runnable:
        changed |= _clear_migratable_because(then, first)
        if then.pseudo:
            then.pseudo = False
            changed = True
    if (
        flags & PROMOTED_IMPLIES_FIRST
        and then.rsc is not None
        and then.rsc.role == Role.PROMOTED
        and not then.optional
    ):
        changed |= _clear_optional_because(first, then)
    if flags & ONE_OR_MORE:
        pass
    elif flags & RUNNABLE_LEFT and then.runnable and not first.runnable:
        changed |= _clear_runnable_because(then, first)
    if (
        flags & IMPLIES_THEN
        and then.optional
        and not first.optional
        and not first.migratable
        and _can_require(then)
    ):
        changed |= _clear_optional_because(then, first)
    if flags & RESTART:
        changed |= _restart(first, then)
    blocked_stop = (
        first.rsc is not None
        and not first.rsc.managed
        and first.rsc.blocked
        and not first.runnable
        and first.task == "stop"
    )
    if flags & (IMPLIES_THEN | IMPLIES_FIRST | RESTART) and blocked_stop and then.runnable:
        then.runnable = False  # a blocked, unmanaged stop holds up everything ordered after it
        changed = True
    return changed


def _can_require(act: Action) -> bool:
    rsc = act.rsc
    return rsc is None or rsc.kind != "primitive" or rsc.managed


def _restart(first: Action, then: Action) -> bool:
    needed = not then.optional
    if not then.runnable and then.rsc is not None and then.rsc.managed and first.rsc is then.rsc:
        needed = True
    if not needed:
        return False
    changed = False
    if first.runnable and first.optional:
        changed |= _clear_optional_because(first, then)
    if not then.optional and first.optional:
        changed |= _clear_optional_because(first, then)
    if not then.migratable and first.migratable:
        changed |= _clear_migratable_because(first, then)
    if not first.optional and not first.runnable:
        changed |= _clear_runnable_because(then, first)
    return changed


def _one_or_more(then: Action) -> bool:
    firsts = [f for f, flags in then.after if flags & ONE_OR_MORE]
    if not firsts:
        return False
    needed = max(1, then.required_runnable_before)
    runnable = sum(1 for f in firsts if f.runnable) >= needed
    if then.runnable and not runnable:
        then.runnable = False
        return True
    return False


def propagate(graph: Graph) -> None:
    """Apply every ordering's consequences until nothing changes (bounded: flags only ever clear)."""
    for _round in range(len(graph.actions) * 4 + 10):
        changed = False
        for then in graph.actions:
            # newest ordering first, as Pacemaker keeps them (this decides which reason is reported)
            for first, flags in reversed(then.after):
                if _apply_edge(first, then, flags):
                    changed = True
            if _one_or_more(then):
                changed = True
        if not changed:
            return
