"""Constraints expanded onto the working tree: locations (with rules), colocations and orderings,
including resource sets, tags, ``rsc-pattern`` and the implicit constraints of groups."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from hakeeper.cib import model as m
from hakeeper.policy.remote import avoid_remote_nodes
from hakeeper.policy.unpack import WorkingSet
from hakeeper.policy.working import INFINITY, Colocation, NodeInfo, Role, Rsc, add_scores, parse_role

NodeRule = Callable[[m.Rule, NodeInfo], bool]


@dataclass
class OrderSpec:
    """One ordering between two resources' actions, before expansion into action edges."""

    id: str
    first: Rsc
    first_action: str
    then: Rsc
    then_action: str
    kind: str  # Mandatory Optional Serialize
    symmetrical: bool
    min_first: int = 0  # clone-min / require-all=false: instances of "first" needed before "then"


def resolve_ids(ws: WorkingSet, name: str) -> list[Rsc]:
    """A constraint's resource reference: a resource id or a tag naming several."""
    if name in ws.by_id:
        return [ws.by_id[name]]
    if name in ws.template_users:
        return [ws.by_id[ref] for ref in ws.template_users[name] if ref in ws.by_id]
    for tag in ws.cib.configuration.tags:
        if tag.id == name:
            return [ws.by_id[ref] for ref in tag.refs if ref in ws.by_id]
    return []


# --- locations -------------------------------------------------------------------------------------------


def apply_locations(ws: WorkingSet, node_rule: NodeRule) -> list[tuple[Rsc, str, int]]:
    """Apply location constraints to allowed-node scores. Returns role-specific (promoted) preferences."""
    promoted: list[tuple[Rsc, str, int]] = []
    for con in ws.cib.configuration.constraints:
        if not isinstance(con, m.Location):
            continue
        for rsc in _location_targets(ws, con):
            scores = _location_scores(ws, con, node_rule)
            if (con.resource_discovery or "").lower() == "exclusive":
                _discover_exclusively(rsc, {node_name for _role, node_name, _score in scores})
            for role_text, node_name, score in scores:
                role = parse_role(role_text)
                if role == Role.PROMOTED and rsc_promotable(rsc):
                    promoted.append((rsc, node_name, score))
                    continue
                if role not in (Role.UNKNOWN, Role.STARTED, Role.UNPROMOTED) and not rsc_promotable(rsc):
                    continue
                add_location(rsc, node_name, score)
    _apply_exclusive_discovery(ws)
    return promoted


def _discover_exclusively(rsc: Rsc, nodes: set[str]) -> None:
    for member in _walk(rsc):
        member.discover_exclusive = (member.discover_exclusive or set()) | nodes


def _apply_exclusive_discovery(ws: WorkingSet) -> None:
    """resource-discovery=exclusive: the resource may only run where such a constraint applies."""
    for top in ws.resources:
        for rsc in _walk(top):
            if rsc.discover_exclusive is None:
                continue
            for name in rsc.allowed:
                if name not in rsc.discover_exclusive:
                    rsc.allowed[name] = -INFINITY


def rsc_promotable(rsc: Rsc) -> bool:
    clone = rsc if rsc.kind == "clone" else rsc.clone_parent()
    return clone is not None and clone.promotable


def _location_targets(ws: WorkingSet, con: m.Location) -> list[Rsc]:
    if con.rsc is not None:
        return resolve_ids(ws, con.rsc)
    if con.rsc_pattern is not None:
        try:
            pattern = re.compile(con.rsc_pattern)
        except re.error:
            ws.warnings.append(f"Location {con.id}: rsc-pattern {con.rsc_pattern!r} is not a valid regex")
            return []
        return [r for r in ws.resources if pattern.search(r.id)]
    out: list[Rsc] = []
    for rset in con.resource_sets:
        for ref in rset.resources:
            out.extend(resolve_ids(ws, ref))
    return out


def _location_scores(
    ws: WorkingSet, con: m.Location, node_rule: NodeRule
) -> list[tuple[str | None, str, int]]:
    """(role the preference is for, node, score) for a fixed node or each node a rule matches."""
    if con.node is not None:
        if con.node not in ws.nodes:
            return []
        return [(con.role, con.node, con.score if con.score is not None else 0)]
    out: list[tuple[str | None, str, int]] = []
    for rule in con.rules:
        for node in ws.nodes.values():
            if not node_rule(rule, node):
                continue
            out.append((rule.role or con.role, node.name, _rule_score(rule, node)))
    return out


def _rule_score(rule: m.Rule, node: NodeInfo) -> int:
    if rule.score is not None:
        return rule.score
    if rule.score_attribute:
        from hakeeper.policy.attrs import parse_int_score

        return parse_int_score(node.attrs.get(rule.score_attribute), 0)
    return 0


def add_location(rsc: Rsc, node: str, score: int) -> None:
    """Add a score for a node to a resource and all its descendants."""
    rsc.allowed[node] = add_scores(rsc.allowed[node], score) if node in rsc.allowed else score
    for child in rsc.children:
        add_location(child, node, score)


def init_allowed(ws: WorkingSet) -> None:
    """Symmetric clusters allow every node at score 0 before constraints; asymmetric ones none."""
    for top in ws.resources:
        for rsc in _walk(top):
            seeded = dict(rsc.allowed)  # bans recorded while unpacking history
            rsc.allowed = {}
            if ws.config.symmetric:
                for node in ws.nodes.values():
                    rsc.allowed[node.name] = node.base_score
            for name, score in seeded.items():
                rsc.allowed[name] = add_scores(rsc.allowed[name], score) if name in rsc.allowed else score
            if len(rsc.running_on) > 1 and rsc.partial_migration_source is None:
                _multiply_active(ws, rsc)
            if rsc.orphan:  # no longer configured: never started again
                for node in ws.nodes.values():
                    rsc.allowed[node.name] = -INFINITY
    avoid_remote_nodes(ws.nodes, ws.resources)


def _multiply_active(ws: WorkingSet, rsc: Rsc) -> None:
    """multiple-active: stop_only stops it everywhere, block leaves it alone; stop_start is handled later."""
    if rsc.multiple_active == "stop_only":
        for node in ws.nodes.values():
            rsc.allowed[node.name] = -INFINITY
    elif rsc.multiple_active == "block":
        rsc.managed = False
        rsc.blocked = True


def _walk(rsc: Rsc) -> list[Rsc]:
    out = [rsc]
    for child in rsc.children:
        out.extend(_walk(child))
    return out


def walk(rsc: Rsc) -> list[Rsc]:
    return _walk(rsc)


# --- colocations ------------------------------------------------------------------------------------------


def build_colocations(ws: WorkingSet) -> list[Colocation]:
    out: list[Colocation] = []
    for top in ws.resources:
        for prim in top.primitives():
            if prim.container is not None:  # it runs where its VM or container runs
                out.append(
                    Colocation(
                        id="resource-with-container", dependent=prim, primary=prim.container, score=INFINITY
                    )
                )
        for rsc in _walk(top):
            if rsc.kind == "group":
                members = rsc.children
                for prev, member in itertools.pairwise(members):
                    out.append(
                        Colocation(id=f"{rsc.id}-internal", dependent=member, primary=prev, score=INFINITY)
                    )
    for con in ws.cib.configuration.constraints:
        if not isinstance(con, m.Colocation):
            continue
        if con.resource_sets:
            out.extend(_set_colocations(ws, con))
            continue
        if con.rsc is None or con.with_rsc is None:
            continue
        for dep in resolve_ids(ws, con.rsc):
            for prim in resolve_ids(ws, con.with_rsc):
                out.append(
                    _coloc(
                        ws,
                        con.id,
                        dep,
                        prim,
                        con.score,
                        con.rsc_role,
                        con.with_rsc_role,
                        con.node_attribute,
                        con.influence,
                    )
                )
    for col in out:
        if col.dependent is col.primary:
            continue
        col.dependent.this_with.append(col)
        col.primary.with_this.append(col)
    return out


def _coloc(
    ws: WorkingSet,
    cid: str,
    dep: Rsc,
    prim: Rsc,
    score: int,
    dep_role: str | None,
    prim_role: str | None,
    attr: str | None,
    influence: bool | None,
) -> Colocation:
    if influence is None:
        influence = _is_true_meta(dep.meta.get("critical"), True)
    return Colocation(
        id=cid,
        dependent=dep,
        primary=prim,
        score=score,
        dependent_role=_coloc_role(dep_role),
        primary_role=_coloc_role(prim_role),
        node_attribute=attr or "#uname",
        influence=influence,
    )


def _coloc_role(text: str | None) -> Role:
    role = parse_role(text)
    return Role.UNKNOWN if role == Role.STARTED else role


def _is_true_meta(value: str | None, default: bool) -> bool:
    from hakeeper.policy.attrs import is_true

    return is_true(value, default)


def _set_colocations(ws: WorkingSet, con: m.Colocation) -> list[Colocation]:
    out: list[Colocation] = []
    sets = con.resource_sets
    resolved = [[r for ref in s.resources for r in resolve_ids(ws, ref)] for s in sets]
    for rset, members in zip(sets, resolved, strict=True):
        score = rset.score if rset.score is not None else con.score
        if rset.sequential is None or rset.sequential:
            for prev, member in itertools.pairwise(members):
                out.append(
                    _coloc(
                        ws,
                        con.id,
                        member,
                        prev,
                        score,
                        rset.role,
                        rset.role,
                        con.node_attribute,
                        con.influence,
                    )
                )
    for index in range(len(sets) - 1):
        first_set, next_set = sets[index], sets[index + 1]
        firsts, nexts = resolved[index], resolved[index + 1]
        if not firsts or not nexts:
            continue
        # every member of a later set is placed with the earlier set's last (or every) member
        primaries = [firsts[-1]] if first_set.sequential is None or first_set.sequential else firsts
        dependents = [nexts[0]] if next_set.sequential is None or next_set.sequential else nexts
        for prim in primaries:
            for dep in dependents:
                out.append(
                    _coloc(
                        ws,
                        con.id,
                        dep,
                        prim,
                        con.score,
                        next_set.role,
                        first_set.role,
                        con.node_attribute,
                        con.influence,
                    )
                )
    return out


# --- orderings --------------------------------------------------------------------------------------------


def build_orders(ws: WorkingSet) -> list[OrderSpec]:
    # a guest's connection starts after its VM or container, and stops before it
    out: list[OrderSpec] = [
        OrderSpec(f"{prim.id}-after-container", prim.container, "start", prim, "start", "Mandatory", True)
        for top in ws.resources
        for prim in top.primitives()
        if prim.container is not None
    ]
    for con in ws.cib.configuration.constraints:
        if not isinstance(con, m.Order):
            continue
        kind = con.kind or ("Optional" if con.score == 0 else "Mandatory")
        kind = kind.capitalize()
        symmetrical = con.symmetrical if con.symmetrical is not None else kind != "Serialize"
        if con.resource_sets:
            out.extend(_set_orders(ws, con, kind, symmetrical))
            continue
        if con.first is None or con.then is None:
            continue
        for first in resolve_ids(ws, con.first):
            for then in resolve_ids(ws, con.then):
                out.append(
                    OrderSpec(
                        con.id,
                        first,
                        (con.first_action or "start").lower(),
                        then,
                        (con.then_action or con.first_action or "start").lower(),
                        kind,
                        symmetrical,
                        _minimum_first(first, con),
                    )
                )
    return out


def _minimum_first(first: Rsc, con: m.Order) -> int:
    if first.kind != "clone":
        return 0
    if "clone-min" in first.meta:
        text = first.meta["clone-min"].strip()
        return int(text) if text.isdigit() else 0
    if con.require_all is False:
        return 1
    return 0


def _set_orders(ws: WorkingSet, con: m.Order, kind: str, symmetrical: bool) -> list[OrderSpec]:
    out: list[OrderSpec] = []
    sets = con.resource_sets
    resolved = [[r for ref in s.resources for r in resolve_ids(ws, ref)] for s in sets]
    for rset, members in zip(sets, resolved, strict=True):
        action = (rset.action or "start").lower()
        if rset.sequential is None or rset.sequential:
            for prev, member in itertools.pairwise(members):
                out.append(OrderSpec(con.id, prev, action, member, action, kind, symmetrical))
    for index in range(len(sets) - 1):
        first_set, next_set = sets[index], sets[index + 1]
        firsts, nexts = resolved[index], resolved[index + 1]
        if not firsts or not nexts:
            continue
        first_action = (first_set.action or "start").lower()
        then_action = (next_set.action or "start").lower()
        heads = [firsts[-1]] if first_set.sequential is None or first_set.sequential else firsts
        tails = [nexts[0]] if next_set.sequential is None or next_set.sequential else nexts
        for first in heads:
            for then in tails:
                out.append(OrderSpec(con.id, first, first_action, then, then_action, kind, symmetrical))
    return out


# --- tickets ------------------------------------------------------------------------------------------------


@dataclass
class TicketDep:
    """A resource that needs a ticket (optionally only for one role)."""

    id: str
    rsc: Rsc
    ticket: str
    role: Role
    loss_policy: str


def build_tickets(ws: WorkingSet) -> list[TicketDep]:
    out: list[TicketDep] = []
    for con in ws.cib.configuration.constraints:
        if not isinstance(con, m.Ticket):
            continue
        policy = (con.loss_policy or "stop").lower()
        if policy == "fence" and not ws.config.stonith_enabled:
            policy = "stop"
        refs: list[tuple[str, str | None]] = []
        if con.rsc is not None:
            refs.append((con.rsc, con.rsc_role))
        for rset in con.resource_sets:
            refs.extend((ref, rset.role) for ref in rset.resources)
        for ref, role_text in refs:
            role = parse_role(role_text)
            if role == Role.STARTED:
                role = Role.UNKNOWN
            for rsc in resolve_ids(ws, ref):
                out.append(TicketDep(con.id, rsc, con.ticket, role, policy))
    return out


def ticket_usable(ws: WorkingSet, name: str) -> tuple[bool, bool]:
    """(granted, standby) for a ticket; an unknown ticket is not granted."""
    state = ws.tickets.get(name)
    if state is None:
        return False, False
    return state.granted, state.standby


def apply_tickets(ws: WorkingSet, deps: list[TicketDep]) -> None:
    from hakeeper.policy.unpack import fence_node

    for dep in deps:
        granted, standby = ticket_usable(ws, dep.ticket)
        if granted and not standby:
            continue
        for prim in _walk(dep.rsc):
            if prim.children:
                continue
            _apply_ticket_loss(ws, dep, prim, granted, fence_node)


def _role_matches(prim: Rsc, role: Role) -> bool:
    return role == Role.UNKNOWN or prim.role == role


def _apply_ticket_loss(
    ws: WorkingSet,
    dep: TicketDep,
    prim: Rsc,
    granted: bool,
    fence: Callable[[WorkingSet, NodeInfo, str], None],
) -> None:
    def ban_everywhere() -> None:
        for node in ws.nodes:
            prim.allowed[node] = -INFINITY

    if not granted and prim.running_on:
        if dep.loss_policy == "stop":
            ban_everywhere()
        elif dep.loss_policy == "demote":
            if dep.role != Role.PROMOTED:
                ban_everywhere()
        elif dep.loss_policy == "fence":
            if not _role_matches(prim, dep.role):
                return
            ban_everywhere()
            for node in prim.running_on:
                fence(ws, node, "deadman ticket was lost")
        elif dep.loss_policy == "freeze":
            if not _role_matches(prim, dep.role):
                return
            prim.managed = False
            prim.blocked = True
        return
    if dep.role != Role.PROMOTED or dep.loss_policy == "stop":
        ban_everywhere()


def promotion_blocked_by_ticket(ws: WorkingSet, deps: list[TicketDep], rsc: Rsc) -> bool:
    """A promoted-role ticket that is revoked or in standby forbids promotion."""
    chain = {id(r) for r in _ancestors(rsc)}
    for dep in deps:
        if dep.role != Role.PROMOTED or id(dep.rsc) not in chain:
            continue
        granted, standby = ticket_usable(ws, dep.ticket)
        if not granted or standby:
            return True
    return False


def _ancestors(rsc: Rsc) -> list[Rsc]:
    out = [rsc]
    while rsc.parent is not None:
        rsc = rsc.parent
        out.append(rsc)
    return out


# --- node health ---------------------------------------------------------------------------------------


def _health_colours(ws: WorkingSet) -> dict[str, int] | None:
    from hakeeper.policy.attrs import parse_int_score

    strategy = ws.config.node_health_strategy
    if strategy in ("none", ""):
        return None
    if strategy == "migrate-on-red":
        return {"red": -INFINITY, "yellow": 0, "green": 0}
    if strategy == "only-green":
        return {"red": -INFINITY, "yellow": -INFINITY, "green": 0}
    props = ws.config.properties
    return {
        "red": parse_int_score(props.get("node-health-red"), -INFINITY),
        "yellow": parse_int_score(props.get("node-health-yellow"), 0),
        "green": parse_int_score(props.get("node-health-green"), 0),
    }


def apply_node_health(ws: WorkingSet) -> None:
    """Node health attributes (``#health-*``: red/yellow/green or scores) become location scores."""
    from hakeeper.policy.attrs import is_true, parse_int_score

    colours = _health_colours(ws)
    if colours is None:
        return
    base = 0
    if ws.config.node_health_strategy == "progressive":
        base = parse_int_score(ws.config.properties.get("node-health-base"), 0)
    for node in ws.nodes.values():
        health = base
        for name, value in node.attrs.items():
            if name.startswith("#health"):
                score = colours.get(value.strip().lower())
                health = add_scores(score if score is not None else parse_int_score(value, 0), health)
        if health == 0:
            continue
        for top in ws.resources:
            if health < 0 and is_true(top.meta.get("allow-unhealthy-nodes")):
                continue
            add_location(top, node.name, health)
