"""Why a resource goes where it goes, in sentences (``hakeeper simulate --explain RSC``).

The scheduler keeps only final scores, so this re-runs its allocation stages (the same functions, in the same
order as ``schedule``) and snapshots every resource's node scores after each stage: the change a stage made
on a node is what that stage's rule (a location constraint, stickiness, a fail count...) contributed there.
Relations that act during assignment (colocations, groups, clones, promotion) are then described from the
assigned working set, and the transition itself tells what happens and what is blocked. Pure, like the
rest of the policy engine; the allocation functions are called, never changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hakeeper.cib import model as m
from hakeeper.cib.values import format_score
from hakeeper.policy.allocate import (
    Assigner,
    apply_fail_thresholds,
    apply_stickiness,
    failcount,
    promotion_score,
)
from hakeeper.policy.constraints import (
    OrderSpec,
    TicketDep,
    _location_scores,
    _location_targets,
    apply_locations,
    apply_node_health,
    apply_tickets,
    build_colocations,
    build_orders,
    build_tickets,
    init_allowed,
    rsc_promotable,
    ticket_usable,
    walk,
)
from hakeeper.policy.schedule import Transition, node_rule, schedule
from hakeeper.policy.unpack import WorkingSet, unpack
from hakeeper.policy.working import INFINITY, Colocation, NodeInfo, Role, Rsc, parse_role

Scores = dict[int, dict[str, int]]  # id() of a working resource -> node -> score (ids can repeat: orphans)

RC_MEANING = {
    1: "a generic error",
    2: "invalid parameters",
    3: "an unimplemented action",
    4: "insufficient privileges",
    5: "the software not being installed",
    6: "the resource not being configured",
    7: "the resource not running",
}


class ExplainError(ValueError):
    """The resource to explain does not exist; the message lists what does."""


@dataclass
class Trace:
    """The working set after assignment, with every resource's node scores after each allocation stage."""

    ws: WorkingSet
    stages: list[tuple[str, Scores]] = field(default_factory=list)
    promoted_locations: list[tuple[Rsc, str, int]] = field(default_factory=list)
    tickets: list[TicketDep] = field(default_factory=list)
    orders: list[OrderSpec] = field(default_factory=list)

    def scores(self, stage: str) -> Scores:
        return next(s for name, s in self.stages if name == stage)

    def score_lines(self) -> list[str]:
        """The final scores in ``--show-scores`` form (they must equal the scheduler's own)."""
        final = self.scores("final")
        return [
            f"{rsc.id} allocation score on {node}: {format_score(final[id(rsc)][node])}"
            for top in self.ws.resources
            for rsc in walk(top)
            for node in sorted(final[id(rsc)])
        ]


def _snapshot(ws: WorkingSet) -> Scores:
    return {id(rsc): dict(rsc.allowed) for top in ws.resources for rsc in walk(top)}


def _set_node_attrs(ws: WorkingSet, cib: m.Cib) -> None:
    # the built-in node attributes rules may test, as schedule() sets them
    for node in ws.nodes.values():
        node.attrs.setdefault("#uname", node.name)
        node.attrs.setdefault("#id", node.id)
        node.attrs.setdefault("#kind", "cluster" if node.kind == "member" else node.kind)
        node.attrs.setdefault("#is_dc", "true" if cib.dc_uuid == node.id else "false")


def trace_allocation(cib: m.Cib, now: int) -> Trace:
    """Run the scheduler's allocation stages, in ``schedule``'s order, keeping a snapshot after each."""
    ws = unpack(cib, now)
    _set_node_attrs(ws, cib)
    trace = Trace(ws)
    trace.stages.append(("history", _snapshot(ws)))  # bans unpacking the history recorded
    init_allowed(ws)
    trace.stages.append(("base", _snapshot(ws)))
    apply_node_health(ws)
    trace.stages.append(("health", _snapshot(ws)))
    trace.promoted_locations = apply_locations(ws, node_rule(ws))
    trace.stages.append(("locations", _snapshot(ws)))
    trace.tickets = build_tickets(ws)
    apply_tickets(ws, trace.tickets)
    trace.stages.append(("tickets", _snapshot(ws)))
    apply_stickiness(ws)
    trace.stages.append(("stickiness", _snapshot(ws)))
    apply_fail_thresholds(ws)
    trace.stages.append(("failures", _snapshot(ws)))
    build_colocations(ws)
    trace.orders = build_orders(ws)
    Assigner(ws, trace.promoted_locations, trace.tickets).assign_all()
    trace.stages.append(("final", _snapshot(ws)))
    return trace


# --- entry point ------------------------------------------------------------------------------------------


def explain(cib: m.Cib, now: int, rsc_id: str, transition: Transition | None = None) -> list[str]:
    """Sentences saying why ``rsc_id`` (a primitive, group, clone, or a clone's primitive) is placed where
    it is, or why it does not run. ``transition`` is ``schedule(cib, now)`` when the caller has it."""
    bundle = next(
        (r for r in cib.configuration.resources if r.id == rsc_id and isinstance(r, m.Bundle)), None
    )
    if bundle is not None:
        return [
            f"{rsc_id} is a bundle: the policy engine does not schedule bundles yet and leaves it as it is."
        ]
    trace = trace_allocation(cib, now)
    targets = _targets(trace.ws, rsc_id)
    transition = transition if transition is not None else schedule(cib, now)
    out = _collective_intro(trace.ws, rsc_id)
    for prim in targets:
        if out:
            out.append("")
        out.extend(_Explainer(trace, prim, transition).lines())
    return out


def _collective_intro(ws: WorkingSet, rsc_id: str) -> list[str]:
    rsc = ws.by_id.get(rsc_id)
    if rsc is not None and rsc.kind == "primitive":
        return []
    if rsc is None:
        return [f"{rsc_id} is cloned: each instance is explained in turn."]
    return [f"{rsc_id} is a {rsc.kind}: each of its primitives is explained in turn."]


def _targets(ws: WorkingSet, rsc_id: str) -> list[Rsc]:
    if rsc_id in ws.by_id:
        return ws.by_id[rsc_id].primitives()
    instances = [r for r in ws.by_id.values() if r.id.rsplit(":", 1)[0] == rsc_id and r.clone_parent()]
    if instances:
        return [p for inst in instances for p in inst.primitives()]
    names = sorted({r.id.rsplit(":", 1)[0] for r in ws.by_id.values()})
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    raise ExplainError(f"there is no resource {rsc_id!r} in the configuration (resources: {shown or 'none'})")


# --- one primitive ----------------------------------------------------------------------------------------


def node_unavailable(node: NodeInfo) -> str | None:
    """Why a node cannot run resources at all, or None when it can."""
    if node.unclean:
        return "it is unclean (it must be fenced before anything runs there)"
    if not node.online:
        return "it is offline"
    if node.pending:
        return "it has not finished joining the cluster"
    if node.shutdown:
        return "it is shutting down"
    if node.standby:
        return "it is in standby"
    if node.maintenance:
        return "it is in maintenance mode"
    return None


def _fmt(score: int | None) -> str:
    return "not allowed" if score is None else format_score(score)


def _signed(score: int) -> str:
    text = format_score(score)
    return text if score < 0 else f"+{text}"


def _is_in(rsc: Rsc, target: Rsc) -> bool:
    """Whether ``target`` is ``rsc`` or one of its ancestors (a constraint on a group applies to members)."""
    walker: Rsc | None = rsc
    while walker is not None:
        if walker is target:
            return True
        walker = walker.parent
    return False


class _Explainer:
    def __init__(self, trace: Trace, rsc: Rsc, transition: Transition) -> None:
        self.trace = trace
        self.ws = trace.ws
        self.rsc = rsc
        self.transition = transition

    def lines(self) -> list[str]:
        out = [self.headline()]
        out.extend(f"  {line}" for line in self.transition_lines())
        out.extend(f"  {line}" for line in self.settings())
        out.append("  Node scores (highest available wins):")
        for node in self.sorted_nodes():
            out.extend(f"    {line}" for line in self.node_lines(node))
        out.extend(f"  {line}" for line in self.choice())
        out.extend(f"  {line}" for line in self.relations())
        return out

    # headline and outcome
    def headline(self) -> str:
        rsc = self.rsc
        if rsc.running_on:
            now = f"runs on {', '.join(n.name for n in rsc.running_on)} ({rsc.role.text}) now"
        else:
            now = "is stopped now"
        if rsc.assigned is None:
            goes = "will not run anywhere"
        elif self.start_blocked(rsc.assigned.name):
            goes = f"is placed on {rsc.assigned.name} but cannot start there"
        else:
            role = rsc.next_role if rsc.next_role not in (Role.UNKNOWN, Role.STOPPED) else Role.STARTED
            goes = f"goes to {rsc.assigned.name} ({role.text})"
        return f"{rsc.id}: {now} and {goes}."

    def start_blocked(self, node: str) -> bool:
        return any(
            a.rsc == self.rsc.id and a.task == "start" and a.node == node and not a.runnable
            for a in self.transition.actions
        )

    def transition_lines(self) -> list[str]:
        mine = [line.strip() for line in self.transition.summary if _summary_rsc(line) == self.rsc.id]
        out = [f"Transition: {line}" for line in mine] or ["Transition: nothing changes for it."]
        for action in self.transition.actions:
            if action.rsc == self.rsc.id and not action.runnable and not action.pseudo:
                why = f" ({action.reason})" if action.reason else ""
                out.append(f"Its {action.task} on {action.node or 'any node'} cannot run{why}.")
        return out

    def settings(self) -> list[str]:
        rsc, cfg = self.rsc, self.ws.config
        out: list[str] = []
        if cfg.stonith_enabled and not cfg.have_stonith_resource:
            out.append(
                "Fencing is enabled but no fencing device is configured, so the cluster manages nothing "
                "(configure a stonith resource or set stonith-enabled=false)."
            )
        if cfg.maintenance_mode:
            out.append("The cluster is in maintenance mode: resources are left as they are.")
        elif not rsc.managed:
            why = (
                "multiple-active=block after it was found active on several nodes"
                if rsc.blocked
                else ("is-managed=false or maintenance on it")
            )
            out.append(f"It is not managed ({why}): the cluster neither starts nor stops it.")
        if cfg.stop_all_resources:
            out.append("stop-all-resources is set: every resource is stopped.")
        if rsc.target_role == Role.STOPPED:
            out.append("Its target-role is Stopped (it is disabled).")
        elif rsc.target_role == Role.UNPROMOTED and rsc_promotable(rsc):
            out.append("Its target-role is Unpromoted: it may run but not be promoted.")
        if rsc.orphan:
            out.append("It is no longer configured (an orphan): it is only stopped.")
        if rsc.failed:
            out.append("It has failed where it runs and must be recovered.")
        if not cfg.have_quorum:
            out.append(f"The cluster has no quorum (no-quorum-policy={cfg.no_quorum_policy}).")
        if rsc.next_role_reason and rsc.assigned is None:
            out.append(f"The scheduler stops it because of {rsc.next_role_reason}.")
        return out

    # per-node scores
    def sorted_nodes(self) -> list[NodeInfo]:
        final = self.trace.scores("final").get(id(self.rsc), {})

        def key(node: NodeInfo) -> tuple[int, int, str]:
            available = node_unavailable(node) is None
            return (0 if available else 1, -final.get(node.name, -INFINITY), node.name)

        return sorted(self.ws.nodes.values(), key=key)

    def node_lines(self, node: NodeInfo) -> list[str]:
        final = self.trace.scores("final").get(id(self.rsc), {}).get(node.name)
        head = f"{node.name}: {_fmt(final)}"
        unavailable = node_unavailable(node)
        if unavailable is not None:
            head += f" (cannot be used: {unavailable})"
        reasons = self.contributions(node)
        return [head, *(f"  - {r}" for r in reasons)]

    def contributions(self, node: NodeInfo) -> list[str]:
        out: list[str] = []
        steps: list[tuple[str, Callable[[NodeInfo, int | None, int | None], list[str]]]] = [
            ("base", self.base_reasons),
            ("health", self.health_reasons),
            ("locations", self.location_reasons),
            ("tickets", self.ticket_reasons),
            ("stickiness", self.stickiness_reasons),
            ("failures", self.failure_reasons),
            ("final", self.assignment_reasons),
        ]
        previous: int | None = None
        for stage, describe in steps:
            value = self.trace.scores(stage).get(id(self.rsc), {}).get(node.name)
            if stage == "base" or value != previous:
                out.extend(describe(node, previous, value))
            previous = value
        out.extend(self.failcount_notes(node))
        return out

    def base_reasons(self, node: NodeInfo, _before: int | None, after: int | None) -> list[str]:
        banned = self.trace.scores("history").get(id(self.rsc), {}).get(node.name)
        out: list[str] = []
        if self.ws.config.symmetric:
            out.append(f"symmetric cluster: every node starts at {format_score(node.base_score)}")
        elif after is None:
            out.append("asymmetric cluster: a node is allowed only where a constraint says so")
        if self.rsc.orphan:
            out.append("no longer configured: banned everywhere (-INFINITY)")
        elif banned is not None:
            out.append(
                f"its operation history bans it here ({format_score(banned)}): {self.history_failure(node)}"
            )
        elif len(self.rsc.running_on) > 1 and self.rsc.multiple_active == "stop_only":
            out.append("active on several nodes with multiple-active=stop_only: stopped everywhere")
        return out

    def history_failure(self, node: NodeInfo) -> str:
        names = {self.rsc.id, self.rsc.id.rsplit(":", 1)[0]}
        if self.rsc.history_name:
            names.add(self.rsc.history_name)
        for state in self.ws.cib.status.nodes:
            if state.uname != node.name and state.id != node.id:
                continue
            for hist in state.resources:
                if hist.id not in names:
                    continue
                for op in hist.ops:
                    if op.id.endswith("_last_failure_0"):
                        meaning = RC_MEANING.get(op.rc, f"rc={op.rc}")
                        return f"its {op.operation} failed with rc={op.rc} ({meaning})"
        return "a failure that cannot be retried on this node"

    def health_reasons(self, _node: NodeInfo, before: int | None, after: int | None) -> list[str]:
        strategy = self.ws.config.node_health_strategy
        return [f"node health (node-health-strategy={strategy}): {_fmt(before)} -> {_fmt(after)}"]

    def location_reasons(self, node: NodeInfo, before: int | None, after: int | None) -> list[str]:
        out: list[str] = []
        check = node_rule(self.ws)
        for con in self.ws.cib.configuration.constraints:
            if not isinstance(con, m.Location):
                continue
            if not any(_is_in(self.rsc, t) for t in _location_targets(self.ws, con)):
                continue
            for role_text, node_name, score in _location_scores(self.ws, con, check):
                if node_name != node.name:
                    continue
                role = parse_role(role_text)
                if role == Role.PROMOTED and rsc_promotable(self.rsc):
                    continue  # a promotion preference: shown with promotion
                how = "rule of location" if con.rules else "location"
                out.append(f"{how} constraint {con.id}: {_signed(score)}")
        if not out:
            out.append(f"location constraints: {_fmt(before)} -> {_fmt(after)}")
        return out

    def ticket_reasons(self, _node: NodeInfo, _before: int | None, after: int | None) -> list[str]:
        out = []
        for dep in self.trace.tickets:
            if not _is_in(self.rsc, dep.rsc):
                continue
            granted, standby = ticket_usable(self.ws, dep.ticket)
            state = "in standby" if granted and standby else "granted" if granted else "not granted"
            out.append(
                f"ticket {dep.ticket} is {state} (constraint {dep.id}, loss-policy={dep.loss_policy}): "
                f"{_fmt(after)}"
            )
        return out or [f"ticket constraints: {_fmt(after)}"]

    def stickiness_reasons(self, node: NodeInfo, _before: int | None, _after: int | None) -> list[str]:
        return [f"resource-stickiness {_signed(self.rsc.stickiness)}: it is running here now"]

    def failure_reasons(self, node: NodeInfo, _before: int | None, _after: int | None) -> list[str]:
        count = failcount(self.ws, self.rsc, node)
        threshold = self.rsc.migration_threshold
        if count > 0:
            return [
                f"failed {format_score(count)} time(s) here, reaching migration-threshold "
                f"{format_score(threshold)}: banned (-INFINITY) until the failures are cleaned up or expire"
            ]
        return ["a sibling clone instance reached migration-threshold here: banned (-INFINITY)"]

    def failcount_notes(self, node: NodeInfo) -> list[str]:
        count = failcount(self.ws, self.rsc, node)
        threshold = self.rsc.migration_threshold
        if count <= 0 or count >= threshold or threshold <= 0:
            return []
        limit = "no migration-threshold" if threshold >= INFINITY else f"migration-threshold {threshold}"
        return [f"failed {count} time(s) here ({limit}): it may still run here"]

    def assignment_reasons(self, node: NodeInfo, before: int | None, after: int | None) -> list[str]:
        out = [self.stop_reason(after)]
        out += [self.pushed_by(col, node) for col in self.rsc.this_with]
        out += [self.pulled_by(col) for col in self.rsc.with_this if col.influence]
        clone = self.rsc.clone_parent()
        if clone is not None:
            out.append(f"placing the instances of clone {clone.id} (clone-node-max {clone.clone_node_max})")
            if clone.promotable:
                out.append("promotion scores attract instances to the nodes that should be promoted")
        reasons = "; ".join(r for r in out if r) or "colocation, group or clone placement"
        return [f"during assignment {_fmt(before)} -> {_fmt(after)}: {reasons}"]

    def stop_reason(self, after: int | None) -> str:
        if self.rsc.next_role != Role.STOPPED or after is None or after > -INFINITY:
            return ""
        if self.rsc.target_role == Role.STOPPED:
            return "its target-role is Stopped, so every node is banned"
        return f"it is to be stopped ({self.rsc.next_role_reason or 'no node can take it'})"

    def pushed_by(self, col: Colocation, node: NodeInfo) -> str:
        """How a colocation with a primary placed earlier changes this node's score ("" when it does not)."""
        primary = col.primary
        placed = _placed_on(primary)
        what = (
            f"group {col.id.removesuffix('-internal')}"
            if col.id.endswith("-internal")
            else f"colocation {col.id}"
        )
        where = ", ".join(sorted(placed)) or "nowhere"
        here = _same_place(self.ws, col, node, placed)
        if col.score >= INFINITY and not here:
            return f"{what}: it must run with {primary.id}, which is {_where(where)}"
        if col.score <= -INFINITY and here:
            return f"{what}: it must not run with {primary.id}, which is placed here"
        if here and -INFINITY < col.score < INFINITY:
            return f"{what}: {_signed(col.score)} for running with {primary.id} here"
        return ""

    def pulled_by(self, col: Colocation) -> str:
        if col.id.endswith("-internal"):
            return f"the members after it in group {col.id.removesuffix('-internal')} bring their preferences"
        score = format_score(col.score)
        return f"{col.dependent.id} (colocation {col.id}, score {score}) brings its preferences"

    # the choice
    def choice(self) -> list[str]:
        rsc = self.rsc
        final = self.trace.scores("final").get(id(rsc), {})
        if rsc.assigned is None:
            return self.why_nowhere(final)
        chosen = rsc.assigned
        score = final.get(chosen.name, -INFINITY)
        ties = [
            n.name
            for n in self.ws.nodes.values()
            if n is not chosen and node_unavailable(n) is None and final.get(n.name, -INFINITY) == score
        ]
        out = [f"{chosen.name} has the best score among the nodes that can run it ({format_score(score)})."]
        if ties:
            current = rsc.current_node()
            why = " (it runs there now)" if current is chosen else ""
            out[-1] = (
                f"{chosen.name} ties with {', '.join(sorted(ties))} at {format_score(score)}; ties go to the "
                f"node with fewer resources, then the current node, then by name: {chosen.name}{why}."
            )
        return out + self.role_lines()

    def why_nowhere(self, final: dict[str, int]) -> list[str]:
        if not self.rsc.managed:
            return ["It stays as it is because it is not managed."]
        if self.rsc.target_role == Role.STOPPED:
            return ["It does not run anywhere because its target-role is Stopped."]
        usable = [
            n.name
            for n in self.ws.nodes.values()
            if node_unavailable(n) is None and final.get(n.name, -INFINITY) >= 0
        ]
        if self.rsc.next_role == Role.STOPPED and self.rsc.next_role_reason not in (
            None,
            "node availability",
        ):
            return [f"It does not run anywhere because of {self.rsc.next_role_reason}."]
        if usable:
            return [
                f"It does not run anywhere although {', '.join(usable)} could take it: see the relations."
            ]
        return ["It does not run anywhere: every node is unavailable or has a negative score."]

    def role_lines(self) -> list[str]:
        rsc, node = self.rsc, self.rsc.assigned
        clone = rsc.clone_parent()
        if node is None or clone is None or not clone.promotable:
            return []
        inst = rsc if rsc.parent is clone else (rsc.parent or rsc)
        score, unset = promotion_score(self.ws, inst, node)
        source = "no promotion score set by the agent" if unset else f"promotion score {format_score(score)}"
        extra = [
            f"location constraint for the promoted role on {name}: {_signed(value)}"
            for target, name, value in self.trace.promoted_locations
            if (target is clone or target is inst) and name == node.name
        ]
        role = rsc.next_role.text if rsc.next_role != Role.UNKNOWN else "Unpromoted"
        return [
            f"As an instance of promotable clone {clone.id} (promoted-max {clone.promoted_max}) it is {role} "
            f"on {node.name}: {source} there.",
            *extra,
        ]

    # relations
    def relations(self) -> list[str]:
        out = self.group_lines() + self.clone_lines() + self.colocation_lines() + self.order_lines()
        return ["Relations:", *(f"  - {line}" for line in out)] if out else []

    def group_lines(self) -> list[str]:
        group = self.rsc.parent
        if group is None or group.kind != "group":
            return []
        members = group.children
        index = members.index(self.rsc)
        if index == 0:
            return [f"first member of group {group.id}: the group goes where it can run"]
        prev = members[index - 1]
        where = prev.assigned.name if prev.assigned else "nowhere"
        return [f"member {index + 1} of group {group.id}: it runs with and starts after {prev.id} ({where})"]

    def clone_lines(self) -> list[str]:
        clone = self.rsc.clone_parent()
        if clone is None:
            return []
        kind = "promotable clone" if clone.promotable else "clone"
        return [
            f"instance of {kind} {clone.id} "
            f"(clone-max {clone.clone_max}, clone-node-max {clone.clone_node_max})"
        ]

    def colocation_lines(self) -> list[str]:
        out: list[str] = []
        for col in self.rsc.this_with:
            if col.id.endswith("-internal"):
                continue
            primary = col.primary
            where = ", ".join(sorted(_placed_on(primary))) or "nowhere"
            verb = "with" if col.score > 0 else "away from"
            out.append(
                f"colocation {col.id}: it runs {verb} {primary.id} (score {format_score(col.score)}), "
                f"which is {_where(where)}"
            )
        for col in self.rsc.with_this:
            if col.id.endswith("-internal") or not col.influence:
                continue
            verb = "with" if col.score > 0 else "away from"
            out.append(
                f"colocation {col.id}: {col.dependent.id} wants to run {verb} it "
                f"(score {format_score(col.score)}) and pulls it"
            )
        return out

    def order_lines(self) -> list[str]:
        out: list[str] = []
        for order in self.trace.orders:
            if _is_in(self.rsc, order.then):
                where = ", ".join(sorted(_placed_on(order.first))) or "nowhere"
                out.append(
                    f"order {order.id} ({order.kind}): its {order.then_action} waits for "
                    f"{order.first_action} of {order.first.id} ({_where(where)})"
                )
            elif _is_in(self.rsc, order.first):
                out.append(
                    f"order {order.id} ({order.kind}): {order.then.id} {order.then_action} waits for its "
                    f"{order.first_action}"
                )
        return out


def _same_place(ws: WorkingSet, col: Colocation, node: NodeInfo, placed: set[str]) -> bool:
    """Whether ``node`` counts as "with" the primary: the same node, or the same ``node-attribute`` value."""
    if col.node_attribute == "#uname":
        return node.name in placed
    values = {ws.nodes[n].attrs.get(col.node_attribute) for n in placed if n in ws.nodes}
    return node.attrs.get(col.node_attribute) in values - {None}


def _where(nodes: str) -> str:
    return f"placed on {nodes}" if nodes != "nowhere" else "not placed anywhere"


def _placed_on(rsc: Rsc) -> set[str]:
    return {p.assigned.name for p in rsc.primitives() if p.assigned is not None}


def _summary_rsc(line: str) -> str | None:
    parts = line.split()
    if len(parts) < 3 or parts[0] != "*" or parts[1].startswith("Fence"):
        return None
    return parts[2]
