"""Assign resources to nodes: allowed-node scores, stickiness, fail thresholds, colocations (with the
attenuated influence of dependents), groups, clone instances and promotable roles."""

from __future__ import annotations

import functools

from hakeeper.policy.constraints import TicketDep, promotion_blocked_by_ticket, walk
from hakeeper.policy.remote import connection_assigned
from hakeeper.policy.unpack import WorkingSet
from hakeeper.policy.working import INFINITY, Colocation, NodeInfo, Role, Rsc, add_scores

INFINITY_HACK = INFINITY * -100  # marks "unusable" while merging optional scores


# --- node ordering --------------------------------------------------------------------------------------


def node_score(ws: WorkingSet, rsc: Rsc, node: NodeInfo) -> int:
    return rsc.allowed.get(node.name, -INFINITY)


def _capacity_votes(a: NodeInfo, b: NodeInfo) -> int:
    """Negative when ``a`` has more free capacity than ``b`` on more utilization attributes."""
    result = 0
    for name, free in a.utilization.items():
        other = b.utilization.get(name, 0)
        if free > other:
            result -= 1
        elif free < other:
            result += 1
    for name, other in b.utilization.items():
        if name not in a.utilization and other > 0:
            result += 1
    return result


def sort_nodes(ws: WorkingSet, scores: dict[str, int], current: NodeInfo | None) -> list[NodeInfo]:
    """Best node first: score (unavailable nodes count as -INFINITY), [free capacity], fewer resources,
    current node, name (``minimal`` placement goes straight from score to name)."""
    strategy = ws.config.placement_strategy

    def compare(a: NodeInfo, b: NodeInfo) -> int:
        sa = scores.get(a.name, -INFINITY) if a.available() else -INFINITY
        sb = scores.get(b.name, -INFINITY) if b.available() else -INFINITY
        if sa != sb:
            return -1 if sa > sb else 1
        if strategy != "minimal":
            if strategy == "balanced":
                votes = _capacity_votes(a, b)
                if votes:
                    return -1 if votes < 0 else 1
            if a.num_resources != b.num_resources:
                return -1 if a.num_resources < b.num_resources else 1
            if current is not None and (a is current) != (b is current):
                return -1 if a is current else 1
        return -1 if a.name < b.name else (1 if a.name > b.name else 0)

    return sorted((ws.nodes[name] for name in scores if name in ws.nodes), key=functools.cmp_to_key(compare))


def ban_insufficient_capacity(ws: WorkingSet, rsc: Rsc) -> None:
    """With a placement strategy, a node without enough free capacity cannot take the resource."""
    if ws.config.placement_strategy == "default" or not rsc.utilization:
        return
    for name in list(rsc.allowed):
        node = ws.nodes.get(name)
        if node is None:
            continue
        if any(node.utilization.get(attr, 0) < need for attr, need in rsc.utilization.items()):
            rsc.allowed[name] = -INFINITY


# --- node-criteria stage -------------------------------------------------------------------------------


def apply_stickiness(ws: WorkingSet) -> None:
    for top in ws.resources:
        for rsc in top.primitives():
            if not rsc.managed or rsc.stickiness < 1 or len(rsc.running_on) != 1:
                continue
            node = rsc.running_on[0]
            if not ws.config.symmetric and node.name not in rsc.allowed:
                continue
            rsc.allowed[node.name] = add_scores(rsc.allowed.get(node.name, 0), rsc.stickiness)


def failcount(ws: WorkingSet, rsc: Rsc, node: NodeInfo) -> int:
    """Fail count of a resource on a node, ignoring failures older than failure-timeout."""
    names = {rsc.id}
    if rsc.history_name:
        names.add(rsc.history_name)
    clone = rsc.clone_parent()
    if clone is not None and not clone.unique:
        names.add(rsc.id.rsplit(":", 1)[0])
    total = 0
    for name in names:
        count, last = ws.failcounts.get((name, node.name), (0, 0))
        if count and rsc.failure_timeout > 0 and last and last + rsc.failure_timeout <= ws.now:
            continue
        total = add_scores(total, count)
    return total


def apply_fail_thresholds(ws: WorkingSet) -> None:
    # the failures of what runs inside a container count towards the container's own
    fillers: dict[int, list[Rsc]] = {}
    for top in ws.resources:
        for prim in top.primitives():
            if prim.container is not None:
                fillers.setdefault(id(prim.container), []).append(prim)
    for top in ws.resources:
        for rsc in top.primitives():
            if rsc.migration_threshold <= 0:
                continue
            inside = fillers.get(id(rsc), [])
            for node in ws.nodes.values():
                count = failcount(ws, rsc, node)
                for filler in inside:
                    count = add_scores(count, failcount(ws, filler, node))
                if count >= rsc.migration_threshold:
                    target = rsc
                    clone = rsc.clone_parent()
                    if clone is not None and not clone.unique:
                        target = clone
                    for member in walk(target):
                        member.allowed[node.name] = -INFINITY


# --- assignment -------------------------------------------------------------------------------------------


class Assigner:
    """Runs Pacemaker's assignment over the working tree."""

    def __init__(
        self,
        ws: WorkingSet,
        promoted_locations: list[tuple[Rsc, str, int]] | None = None,
        tickets: list[TicketDep] | None = None,
    ) -> None:
        self.ws = ws
        self.promoted_locations = promoted_locations or []
        self.tickets = tickets or []

    def assign_all(self) -> None:
        ordered = sorted_for_assignment(self.ws)
        # remote connections first: where they run decides which remote nodes are up
        for rsc in ordered:
            if rsc.agent == "ocf:pacemaker:remote" and rsc.kind == "primitive":
                self.assign(rsc, rsc.partial_migration_target)
                connection_assigned(rsc, self.ws.nodes)
        for rsc in ordered:
            self.assign(rsc, None)

    def assign(self, rsc: Rsc, prefer: NodeInfo | None) -> NodeInfo | None:
        if rsc.kind == "group":
            return self.assign_group(rsc, prefer)
        if rsc.kind == "clone":
            return self.assign_clone(rsc, prefer)
        return self.assign_primitive(rsc, prefer)

    # primitives
    def assign_primitive(self, rsc: Rsc, prefer: NodeInfo | None) -> NodeInfo | None:
        if rsc.parent is not None and rsc.parent.provisional and not rsc.parent.allocating:
            self.assign(rsc.parent, prefer)
        if not rsc.provisional:
            return rsc.assigned
        if rsc.allocating:
            return None
        rsc.allocating = True
        for col in list(rsc.this_with):
            self.apply_this_with(rsc, col)
        for col in list(rsc.with_this):
            self.apply_with_this(rsc, col)
        cfg = self.ws.config
        if rsc.next_role == Role.STOPPED:
            for name in rsc.allowed:
                rsc.allowed[name] = -INFINITY
        elif rsc.next_role > rsc.role and not cfg.have_quorum and cfg.no_quorum_policy == "freeze":
            rsc.next_role = rsc.role
            rsc.next_role_reason = "no-quorum-policy=freeze"
        if cfg.stonith_enabled and not cfg.have_stonith_resource:
            rsc.managed = False
        if not rsc.managed:
            if rsc.role != Role.UNKNOWN:
                rsc.next_role = rsc.role
            self.finalize(rsc, rsc.current_node(), force=True)
        elif cfg.stop_all_resources:
            self.finalize(rsc, None, force=True)
        else:
            self.assign_best(rsc, prefer)
        rsc.allocating = False
        return rsc.assigned

    def assign_best(self, rsc: Rsc, prefer: NodeInfo | None) -> None:
        ban_insufficient_capacity(self.ws, rsc)
        nodes = sort_nodes(self.ws, rsc.allowed, rsc.current_node())
        best = nodes[0] if nodes else None
        chosen: NodeInfo | None = None
        if prefer is not None and best is not None and prefer.name in rsc.allowed:
            score = rsc.allowed[prefer.name]
            if score >= rsc.allowed[best.name] and prefer.available() and score >= 0:
                chosen = prefer
        if chosen is None and best is not None:
            chosen = best
            running = rsc.current_node()
            clone = rsc.clone_parent()
            unique_instance = clone is not None and clone.unique
            best_score = rsc.allowed[best.name]
            if (
                not unique_instance
                and best_score > 0
                and best.available()
                and running is not None
                and running.available()
                and rsc.allowed.get(running.name, -INFINITY) >= 0
            ):
                for node in nodes[1:]:
                    if rsc.allowed[node.name] != best_score:
                        break
                    if node is running:
                        chosen = node
        self.finalize(rsc, chosen, force=False)

    def finalize(self, rsc: Rsc, node: NodeInfo | None, force: bool) -> None:
        if node is not None and not force:
            score = rsc.allowed.get(node.name, -INFINITY)
            if score < 0 or not node.available():
                node = None
        rsc.provisional = False
        if node is None:
            rsc.assigned = None
            wants_to_run = rsc.next_role == Role.UNKNOWN or (rsc.next_role > Role.STOPPED and rsc.managed)
            if wants_to_run and (rsc.managed or not force):
                rsc.next_role = Role.STOPPED
                rsc.next_role_reason = rsc.next_role_reason or "node availability"
            return
        rsc.assigned = node
        node.num_resources += 1
        self.add_utilization(node, rsc)

    def add_utilization(self, node: NodeInfo, rsc: Rsc) -> None:
        if self.ws.config.placement_strategy == "default":
            return
        for name, amount in rsc.utilization.items():
            node.utilization[name] = node.utilization.get(name, 0) - amount

    # colocations
    def apply_this_with(self, rsc: Rsc, col: Colocation) -> None:
        primary = col.primary
        archive = None
        if col.dependent_role >= Role.PROMOTED or (-INFINITY < col.score < 0):
            archive = dict(rsc.allowed)
        self.assign(primary, None)
        self.apply_coloc_score(rsc, col)
        if archive is not None and not any_available(self.ws, rsc.allowed):
            rsc.allowed = archive

    def apply_with_this(self, rsc: Rsc, col: Colocation) -> None:
        if not col.influence:
            return
        factor = col.score / INFINITY
        rsc.allowed = self.colocated_scores(
            col.dependent, rsc.allowed, col.node_attribute, factor, active=True, nonnegative=False
        )

    def primary_node(self, col: Colocation) -> tuple[bool, set[str]]:
        """Where the primary of a colocation ended up: (assigned at all, node names in the right role)."""
        primary = col.primary
        if primary.kind == "group":
            members = primary.children
            if not members:
                return False, set()
            member = members[-1] if col.score >= INFINITY else members[0]
            primary = member
        if primary.kind == "clone":
            names: set[str] = set()
            for inst in primary.children:
                for prim in inst.primitives()[:1]:
                    if prim.assigned is None:
                        continue
                    if col.primary_role != Role.UNKNOWN and _next_role(prim) != col.primary_role:
                        continue
                    names.add(prim.assigned.name)
            return True, names
        if primary.provisional:
            return False, set()
        if primary.assigned is None:
            return True, set()
        if col.primary_role != Role.UNKNOWN and col.score > 0 and _next_role(primary) != col.primary_role:
            return True, set()
        return True, {primary.assigned.name}

    def apply_coloc_score(self, dep: Rsc, col: Colocation) -> None:
        assigned, names = self.primary_node(col)
        if not assigned:
            return
        dep_clone = dep.clone_parent()
        if (
            col.dependent_role >= Role.UNPROMOTED
            and dep_clone is not None
            and dep_clone.promotable
            and not dep.provisional
        ):
            return
        if (
            col.score > 0
            and col.dependent_role not in (Role.UNKNOWN, Role.PROMOTED, Role.UNPROMOTED)
            and col.dependent_role != _next_role(dep)
        ):
            return
        if (
            col.score < 0
            and col.primary_role != Role.UNKNOWN
            and col.primary.kind != "clone"
            and col.primary_role == _next_role(col.primary)
        ):
            return
        if col.dependent_role in (Role.PROMOTED, Role.UNPROMOTED) and dep.clone_parent() is not None:
            return  # role colocations of promotable instances are applied when choosing roles
        attr = col.node_attribute
        values = {self.ws.nodes[n].attrs.get(attr) if attr != "#uname" else n for n in names}
        if not names and col.score < 0:
            return
        work = dict(dep.allowed)
        for name in work:
            node = self.ws.nodes.get(name)
            value = name if attr == "#uname" else (node.attrs.get(attr) if node else None)
            if not names:
                work[name] = add_scores(-col.score, work[name])
            elif value in values and value is not None:
                if col.score < INFINITY:
                    work[name] = add_scores(col.score, work[name])
            elif col.score >= INFINITY:
                work[name] = add_scores(-col.score, work[name])
        if col.score <= -INFINITY or col.score >= INFINITY or any_available(self.ws, work):
            dep.allowed = work

    def colocated_scores(
        self, rsc: Rsc, nodes: dict[str, int], attr: str, factor: float, active: bool, nonnegative: bool
    ) -> dict[str, int]:
        """Fold a dependent's (attenuated) preferences into ``nodes``, following its own dependents."""
        if rsc.merging:
            return nodes
        rsc.merging = True
        try:
            if rsc.kind == "group":
                if not rsc.children:
                    return nodes
                return self.colocated_scores(rsc.children[0], nodes, attr, factor, active, nonnegative)
            work = dict(nodes)
            self.add_matching(work, rsc, attr, factor, nonnegative)
            if any_available(self.ws, work):
                multiplier = -1.0 if factor < 0 else 1.0
                for col in rsc.with_this:
                    if not col.influence:
                        continue
                    sub = multiplier * col.score / INFINITY
                    work = self.colocated_scores(
                        col.dependent, work, col.node_attribute, sub, True, nonnegative
                    )
            elif active:
                return nodes
            if nonnegative:
                for name, score in work.items():
                    if score == INFINITY_HACK:
                        work[name] = 1
            return work
        finally:
            rsc.merging = False

    def add_matching(
        self, work: dict[str, int], rsc: Rsc, attr: str, factor: float, only_positive: bool
    ) -> None:
        source = rsc.allowed
        if rsc.kind == "clone":
            source = rsc.allowed
        for name in list(work):
            node = self.ws.nodes.get(name)
            if node is None:
                continue
            value = name if attr == "#uname" else node.attrs.get(attr)
            best: int | None = None
            for other, score in source.items():
                other_node = self.ws.nodes.get(other)
                if other_node is None or not other_node.available():
                    continue
                other_value = other if attr == "#uname" else other_node.attrs.get(attr)
                if other_value != value:
                    continue
                if best is None or score > best:
                    best = score
            score = best if best is not None else -INFINITY
            if factor < 0 and score < 0:
                continue
            if work[name] == INFINITY_HACK:
                continue
            weighted = factor * score
            delta = int(weighted - 0.5) if weighted < 0 else int(weighted + 0.5)
            if delta == 0 and score != 0:
                delta = 1 if factor > 0 else -1 if factor < 0 else 0
            new = add_scores(delta, work[name])
            if only_positive and new < 0 and work[name] > 0:
                work[name] = INFINITY_HACK
                continue
            if only_positive and new < 0 and work[name] == 0:
                continue
            work[name] = new

    # groups
    def assign_group(self, rsc: Rsc, prefer: NodeInfo | None) -> NodeInfo | None:
        if not rsc.provisional:
            return rsc.assigned
        if rsc.allocating:
            return None
        if not rsc.children:
            rsc.provisional = False
            return None
        rsc.allocating = True
        expand_group_colocations(rsc)
        first_node: NodeInfo | None = None
        for index, member in enumerate(rsc.children):
            node = self.assign_primitive(member, prefer)
            if index == 0:
                first_node = node
        rsc.next_role = rsc.children[0].next_role
        rsc.allocating = False
        rsc.provisional = False
        rsc.assigned = first_node
        return first_node

    # clones
    def assign_clone(self, rsc: Rsc, prefer: NodeInfo | None) -> NodeInfo | None:
        if not rsc.provisional or rsc.allocating:
            return None
        rsc.allocating = True
        for col in rsc.this_with:
            self.assign(col.primary, prefer)
        for col in rsc.with_this:
            if col.influence:
                rsc.allowed = self.colocated_scores(
                    col.dependent,
                    rsc.allowed,
                    col.node_attribute,
                    col.score / INFINITY,
                    active=True,
                    nonnegative=True,
                )
        if rsc.promotable:
            add_promotion_scores(self.ws, rsc)
        instances = sorted_instances(self.ws, rsc)
        self.distribute(rsc, instances)
        if rsc.promotable:
            set_promotable_roles(self, rsc)
        rsc.allocating = False
        rsc.provisional = False
        return None

    def distribute(self, clone: Rsc, instances: list[Rsc]) -> None:
        nodes = [n for n in self.ws.nodes.values() if n.available()]
        counts: dict[str, int] = {n.name: 0 for n in self.ws.nodes.values()}
        limit = clone.clone_max
        all_coloc = limit < len(nodes)
        loop_max = max(1, limit // len(nodes)) if nodes else 1
        assigned = 0
        for inst in instances:
            if assigned >= limit:
                break
            current = inst.current_node()
            if current is None or not inst.provisional or _instance_failed(inst):
                continue
            if not current.available():
                continue
            if counts.get(current.name, 0) >= loop_max:
                continue
            if self.assign_instance(clone, inst, current, all_coloc, counts):
                assigned += 1
        for inst in instances:
            if not inst.provisional:
                continue
            if assigned >= limit:
                for member in walk(inst):
                    for name in member.allowed:
                        member.allowed[name] = -INFINITY
                self.assign(inst, None)
                continue
            if self.assign_instance(clone, inst, None, all_coloc, counts):
                assigned += 1

    def assign_instance(
        self, clone: Rsc, inst: Rsc, prefer: NodeInfo | None, all_coloc: bool, counts: dict[str, int]
    ) -> NodeInfo | None:
        self.inherit_colocations(clone, inst, all_coloc)
        if prefer is not None and inst.allowed.get(prefer.name, -INFINITY) < 0:
            return None
        for node in self.ws.nodes.values():
            allowed = clone.allowed.get(node.name)
            if (
                not node.available()
                or inst.orphan
                or allowed is None
                or counts[node.name] >= clone.clone_node_max
            ):
                set_score_all(inst, node.name, -INFINITY)
            elif allowed < 0:
                set_score_all(inst, node.name, allowed)
        backup = {m.id: dict(m.allowed) for m in walk(inst)}
        chosen = self.assign(inst, prefer)
        if inst.kind == "group":
            chosen = inst.children[0].assigned if inst.children else None
        if chosen is not None and prefer is not None and chosen is not prefer:
            for member in walk(inst):
                member.allowed = backup[member.id]
                unassign(member)
            return None
        if chosen is not None:
            counts[chosen.name] = counts.get(chosen.name, 0) + 1
        return chosen

    def inherit_colocations(self, clone: Rsc, inst: Rsc, all_coloc: bool) -> None:
        target = inst.children[0] if inst.kind == "group" and inst.children else inst
        for col in clone.this_with:
            if (all_coloc or col.score < 0 or col.score >= INFINITY) and col not in target.this_with:
                target.this_with.append(col)
        last = inst.children[-1] if inst.kind == "group" and inst.children else inst
        for col in clone.with_this:
            if col.influence and (all_coloc or col.score < 0) and col not in last.with_this:
                last.with_this.append(col)


def expand_group_colocations(grp: Rsc) -> None:
    """ "Group with R" applies to the first member (the rest follow it); "R with group" to the last."""
    first, last = grp.children[0], grp.children[-1]
    for col in grp.this_with:
        if col not in first.this_with:
            first.this_with.append(col)
    any_unmanaged = not first.managed
    for member in grp.children[1:]:
        if any_unmanaged:
            for col in grp.this_with:
                if col.score >= INFINITY and col not in member.this_with:
                    member.this_with.append(col)
        elif not member.managed:
            any_unmanaged = True
    grp.this_with = []
    for col in grp.with_this:
        if col not in last.with_this:
            last.with_this.append(col)
    grp.with_this = []


def set_score_all(rsc: Rsc, node: str, score: int) -> None:
    for member in walk(rsc):
        member.allowed[node] = score


def unassign(rsc: Rsc) -> None:
    if rsc.assigned is not None:
        rsc.assigned.num_resources -= 1
    rsc.assigned = None
    rsc.provisional = True


def _instance_failed(inst: Rsc) -> bool:
    return any(p.failed for p in inst.primitives())


def _next_role(rsc: Rsc) -> Role:
    if rsc.next_role != Role.UNKNOWN:
        return rsc.next_role
    if rsc.provisional:
        return Role.UNKNOWN
    return Role.STARTED if rsc.assigned is not None else Role.STOPPED


def any_available(ws: WorkingSet, scores: dict[str, int]) -> bool:
    return any(
        score >= 0 and name in ws.nodes and ws.nodes[name].available() for name, score in scores.items()
    )


def _cmp_instances(ws: WorkingSet, clone: Rsc, a: Rsc, b: Rsc) -> int:
    """Pacemaker's clone instance order: fewer active nodes, allowed, priority, active, healthy, number."""
    na, nb = len(a.running_on), len(b.running_on)
    if na > 0 and nb > 0 and na != nb:
        return -1 if na < nb else 1
    node_a, node_b = a.current_node(), b.current_node()
    can_a = node_a is None or clone.allowed.get(node_a.name, -INFINITY) >= 0
    can_b = node_b is None or clone.allowed.get(node_b.name, -INFINITY) >= 0
    if can_a != can_b:
        return -1 if can_a else 1
    if a.priority != b.priority:
        return -1 if a.priority > b.priority else 1
    if node_a is None and node_b is None:
        return _instance_number(a.id) - _instance_number(b.id)
    if node_a is None:
        return 1
    if node_b is None:
        return -1
    if node_a.available() != node_b.available():
        return -1 if node_a.available() else 1
    fa, fb = _instance_failed(a), _instance_failed(b)
    if fa != fb:
        return 1 if fa else -1
    return _instance_number(a.id) - _instance_number(b.id)


def sorted_instances(ws: WorkingSet, clone: Rsc) -> list[Rsc]:
    def compare(a: Rsc, b: Rsc) -> int:
        return _cmp_instances(ws, clone, a, b)

    return sorted(clone.children, key=functools.cmp_to_key(compare))


def _instance_number(rsc_id: str) -> int:
    tail = rsc_id.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def sorted_for_assignment(ws: WorkingSet) -> list[Rsc]:
    """Configuration order by priority; with a placement strategy, also by current-node and best scores."""
    if ws.config.placement_strategy == "default":
        return sorted(ws.resources, key=lambda rsc: (rsc.orphan, -rsc.priority))
    node_order = sort_nodes(ws, {n: 0 for n in ws.nodes}, None)

    def key(rsc: Rsc) -> tuple[int, int, tuple[int, ...]]:
        scores = _merged_scores(rsc)
        current = rsc.current_node()
        here = scores.get(current.name, -INFINITY) if current is not None else -INFINITY
        return (-rsc.priority, -here, tuple(-scores.get(n.name, -INFINITY) for n in node_order))

    return sorted(ws.resources, key=key)


def _merged_scores(rsc: Rsc) -> dict[str, int]:
    if rsc.kind == "group" and rsc.children:
        return dict(rsc.children[-1].allowed)
    return dict(rsc.allowed)


# --- promotable roles ---------------------------------------------------------------------------------


def _promotion_attr(ws: WorkingSet, prim: Rsc, node: NodeInfo) -> str | None:
    name = prim.history_name or prim.id
    value = node.attrs.get(f"master-{name}")
    clone = prim.clone_parent()
    if value is None and clone is not None and not clone.unique:
        value = node.attrs.get(f"master-{prim.id.rsplit(':', 1)[0]}")
    return value


def _score_applies(ws: WorkingSet, prim: Rsc, node: NodeInfo) -> bool:
    clone = prim.clone_parent()
    if clone is not None and not clone.unique:
        base = prim.id.rsplit(":", 1)[0]
        active = None
        for inst in clone.children:
            for member in inst.primitives():
                if member.id.rsplit(":", 1)[0] == base and node in member.running_on:
                    active = member
        if active is prim:
            return True
        if active is None and node.name in clone.known_on:
            return True
    if not prim.running_on and not prim.known_on:
        return True
    return node.name in prim.known_on or node in prim.running_on


def promotion_score(ws: WorkingSet, inst: Rsc, node: NodeInfo) -> tuple[int, bool]:
    """The agent-set promotion preference (``master-<rsc>`` node attribute): (score, no value set)."""
    total, default = 0, True
    from hakeeper.policy.attrs import parse_int_score

    for prim in inst.primitives():
        if not _score_applies(ws, prim, node):
            continue
        value = _promotion_attr(ws, prim, node)
        if value is None:
            continue
        default = False
        total = add_scores(total, parse_int_score(value, 0))
    return total, default


def add_promotion_scores(ws: WorkingSet, clone: Rsc) -> None:
    """Promotion scores also attract instances to nodes (and order them), before assignment."""
    for inst in clone.children:
        target = inst.children[0] if inst.kind == "group" and inst.children else inst
        for name in list(target.allowed):
            node = ws.nodes.get(name)
            if node is None or not node.available():
                continue
            score, _default = promotion_score(ws, inst, node)
            if score > 0:
                target.allowed[name] = add_scores(target.allowed[name], score)
            if score > inst.priority:
                inst.priority = score


def _instance_node(inst: Rsc) -> NodeInfo | None:
    prims = inst.primitives()
    return prims[0].assigned if prims else None


def _set_role_tree(inst: Rsc, role: Role) -> None:
    for member in walk(inst):
        if member.kind == "primitive" and role == Role.PROMOTED and member.next_role != Role.UNKNOWN:
            continue
        member.next_role = role


def set_promotable_roles(assigner: Assigner, clone: Rsc) -> None:
    """Choose which assigned instances are promoted: highest promotion priority first, up to promoted-max."""
    ws, promoted_locations, tickets = assigner.ws, assigner.promoted_locations, assigner.tickets
    keyed: list[tuple[int, int, int, Rsc]] = []
    for index, inst in enumerate(sorted_instances(ws, clone)):
        for member in walk(inst):
            if member.role == Role.STARTED:
                member.role = Role.UNPROMOTED
        node = _instance_node(inst)
        if node is None:
            keyed.append((-INFINITY, 0, index, inst))
            continue
        nxt = inst.primitives()[0].next_role
        if nxt in (Role.UNPROMOTED, Role.STOPPED):
            priority = -INFINITY
        else:
            priority, default = promotion_score(ws, inst, node)
            if default:
                priority = -1
        for rsc, node_name, loc_score in promoted_locations:
            if (rsc is clone or rsc is inst) and node_name == node.name:
                priority = add_scores(priority, loc_score)
        for col in clone.this_with:
            if col.dependent_role == Role.PROMOTED:
                _, names = assigner.primary_node(col)
                if node.name in names:
                    priority = add_scores(priority, col.score)
                elif col.score >= INFINITY:
                    priority = -INFINITY
        if any(promotion_blocked_by_ticket(ws, tickets, p) for p in inst.primitives()):
            priority = -INFINITY
        sort_index = INFINITY if nxt == Role.PROMOTED else priority
        role_now = max((p.role for p in inst.primitives()), default=Role.STOPPED)
        keyed.append((sort_index, -int(role_now), index, inst))
    keyed.sort(key=lambda item: (-item[0], item[1], item[2]))
    promoted = 0
    per_node: dict[str, int] = {}
    for sort_index, _role, _index, inst in keyed:
        node = _instance_node(inst)
        prim = inst.primitives()[0] if inst.primitives() else None
        chosen = False
        if (
            node is not None
            and prim is not None
            and sort_index >= 0
            and (promoted < clone.promoted_max or not clone.managed)
        ):
            eligible = prim.managed or prim.role == Role.PROMOTED
            if eligible and node.available() and per_node.get(node.name, 0) < clone.promoted_node_max:
                chosen = True
        if (
            chosen
            and prim is not None
            and prim.role < Role.PROMOTED
            and not ws.config.have_quorum
            and ws.config.no_quorum_policy == "freeze"
        ):
            chosen = False
        if chosen and not ws.config.have_quorum and ws.config.no_quorum_policy == "demote":
            chosen = False  # without quorum, promoted instances are demoted (and kept running)
        if not chosen:
            _set_role_tree(inst, Role.UNPROMOTED if node is not None else Role.STOPPED)
            continue
        assert node is not None
        per_node[node.name] = per_node.get(node.name, 0) + 1
        promoted += 1
        for member in walk(inst):
            if member.next_role == Role.UNKNOWN:
                member.next_role = Role.PROMOTED
