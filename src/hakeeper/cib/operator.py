"""The operator's edits as pure functions ``(cib, arguments) -> Patch``, with Pacemaker's semantics.

Every command the CLI and the API offer (resource create/update/delete, move/ban/clear, cleanup,
enable/disable, constraints, standby, maintenance, node attributes) is computed here, once, from the CIB the
operator saw. Nothing here does I/O: the caller submits the patch through the DC and the replicated log.

Conventions follow Pacemaker's tools so that exported CIBs read the same there:

- ``move RSC NODE`` adds location ``cli-prefer-RSC`` (INFINITY on NODE), optionally with a lifetime rule
  that stops preferring NODE after a given time; ``ban RSC NODE`` adds ``cli-ban-RSC-on-NODE`` (-INFINITY);
  ``clear RSC`` removes both kinds.
- ``cleanup RSC [NODE]`` deletes the resource's operation history and fail counts, so the cluster probes it
  again and forgets its failures.
- ``enable``/``disable`` set the ``target-role`` meta attribute to ``Started``/``Stopped``.
- ``restart`` is two patches (``restart_steps``): disable, then, once the resource is seen stopped, enable.
  The caller (CLI or API) waits in between; the patches carry no precondition so status changes in the
  meantime do not make the second one stale.
- standby and node maintenance are permanent node attributes (``standby=on``, ``maintenance=on``); cluster
  maintenance is the ``maintenance-mode`` property.

Every function raises ``OperatorError`` with a sentence naming what is missing or wrong.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import msgspec

from hakeeper.cib import model as m
from hakeeper.cib.patch import Create, Delete, Patch, PatchOp, Put, apply
from hakeeper.cib.validate import describe, errors, validate
from hakeeper.cib.values import INFINITY, format_datetime

CLI_PREFER = "cli-prefer-"
CLI_BAN = "cli-ban-"
BOOTSTRAP = "cib-bootstrap-options"
ORDER_KINDS = ("Mandatory", "Optional", "Serialize")


class OperatorError(ValueError):
    """The operator's request cannot be carried out on this CIB; the message says why and what to do."""


class NotFound(OperatorError):
    """The request names a resource, node or constraint the configuration does not have."""


def validated(cib: m.Cib, patch: Patch) -> Patch:
    """``patch``, if it adds no configuration error (an order cycle, say); else OperatorError saying which.

    Errors the configuration already had are not the operator's doing now, so they do not block the change.
    """
    if not any(o.path.startswith("/configuration") for o in patch.ops):
        return patch
    before = {(p.path, p.message) for p in errors(validate(cib.configuration))}
    after = errors(validate(apply(cib, patch).configuration))
    new = [p for p in after if (p.path, p.message) not in before]
    if new:
        raise OperatorError(f"this change would make the configuration invalid: {describe(new)}")
    return patch


# --- finding things ---------------------------------------------------------------------------------------


class Found(msgspec.Struct, frozen=True):
    """A resource of the configuration and the patch path that addresses it."""

    resource: m.Resource
    path: str
    parent: m.Resource | None = None


def _walk(resources: list[m.Resource], base: str, parent: m.Resource | None = None) -> Iterator[Found]:
    for rsc in resources:
        path = f"{base}/{rsc.id}"
        yield Found(rsc, path, parent)
        if isinstance(rsc, m.Group):
            yield from _walk(list(rsc.children), f"{path}/children", rsc)
        elif isinstance(rsc, m.Clone):
            child_path = f"{path}/child"
            yield Found(rsc.child, child_path, rsc)
            if isinstance(rsc.child, m.Group):
                yield from _walk(list(rsc.child.children), f"{child_path}/children", rsc.child)


def all_resources(cib: m.Cib) -> list[Found]:
    """Every resource (top level, group members, clone children) with its path, in document order."""
    return list(_walk(list(cib.configuration.resources), "/configuration/resources"))


def find_resource(cib: m.Cib, rsc_id: str) -> Found:
    for found in all_resources(cib):
        if found.resource.id == rsc_id:
            return found
    known = ", ".join(f.resource.id for f in all_resources(cib)) or "none are configured"
    raise NotFound(f"there is no resource {rsc_id!r} (resources: {known})")


def primitives_of(rsc: m.Resource) -> list[m.Primitive]:
    if isinstance(rsc, m.Primitive):
        return [rsc]
    if isinstance(rsc, m.Group):
        return list(rsc.children)
    if isinstance(rsc, m.Clone):
        return primitives_of(rsc.child)
    return []


def find_node(cib: m.Cib, name: str) -> m.Node:
    """A configured node by name (``uname``) or id."""
    for node in cib.configuration.nodes:
        if name in (node.uname, node.id):
            return node
    known = ", ".join(n.uname for n in cib.configuration.nodes) or "none are configured"
    raise NotFound(f"there is no node {name!r} in the configuration (nodes: {known})")


def _all_ids(cib: m.Cib) -> set[str]:
    cfg = cib.configuration
    ids = {f.resource.id for f in all_resources(cib)}
    ids |= {c.id for c in cfg.constraints} | {t.id for t in cfg.templates} | {t.id for t in cfg.tags}
    return ids


def _require_new_id(cib: m.Cib, new_id: str, what: str) -> None:
    if not new_id or any(ch.isspace() for ch in new_id) or "/" in new_id or new_id.startswith("#"):
        raise OperatorError(f"{what} id {new_id!r} is not usable: use letters, digits, '-', '_' or '.'")
    if new_id in _all_ids(cib):
        raise OperatorError(
            f"the id {new_id!r} is already used in the configuration; choose another {what} id"
        )


# --- name/value sets ---------------------------------------------------------------------------------------


def set_values(
    owner_path: str, field: str, sets: list[m.NvSet], default_set_id: str, changes: Mapping[str, str | None]
) -> list[PatchOp]:
    """Set (value) or remove (None) names in an object's name/value sets.

    New values go into the first set (Pacemaker's tools do the same); a removal removes the name from every
    set that has it, so no lower-priority value shows through by surprise.
    """
    ops: list[PatchOp] = []
    to_set = {k: v for k, v in changes.items() if v is not None}
    if to_set and not sets:
        nvset = m.NvSet(id=default_set_id, values=dict(to_set))
        ops.append(Create(path=f"{owner_path}/{field}", value=msgspec.to_builtins(nvset)))
    elif to_set:
        target = sets[0].id
        ops.extend(
            Create(path=f"{owner_path}/{field}/{target}/values", key=k, value=v) for k, v in to_set.items()
        )
    for name, value in changes.items():
        if value is None:
            ops.extend(
                Delete(path=f"{owner_path}/{field}/{s.id}/values/{name}") for s in sets if name in s.values
            )
    return ops


def _check_names(values: Mapping[str, str | None], what: str) -> None:
    for name, value in values.items():
        if not name or "/" in name or any(ch.isspace() for ch in name):
            raise OperatorError(f"{what} name {name!r} is not usable: no spaces or '/' allowed")
        if value is not None and not isinstance(value, str):
            raise OperatorError(f"{what} {name!r} must be a text value, not {type(value).__name__}")


# --- resources ---------------------------------------------------------------------------------------------


class OperationSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    interval_ms: int = 0
    timeout_ms: int | None = None


class ResourceSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What ``resource create`` needs: an id, an agent and its settings, and optionally a wrapper."""

    id: str
    agent: str  # class:provider:type or class:type
    params: dict[str, str] = {}
    meta: dict[str, str] = {}
    operations: list[OperationSpec] = []
    group: str | None = None  # add to this group (created when missing)
    clone: bool = False
    promotable: bool = False
    clone_meta: dict[str, str] = {}


def parse_agent(agent: str) -> tuple[str, str | None, str]:
    parts = agent.split(":")
    if len(parts) == 3 and all(parts):
        return parts[0], parts[1], parts[2]
    if len(parts) == 2 and all(parts) and parts[0] != "ocf":
        return parts[0], None, parts[1]
    raise OperatorError(
        f"agent {agent!r} is not understood: write class:provider:type (ocf:heartbeat:IPaddr2) "
        "or class:type (systemd:nginx, lsb:httpd, stonith:fence_ipmilan)"
    )


def _primitive(spec: ResourceSpec) -> m.Primitive:
    klass, provider, rtype = parse_agent(spec.agent)
    _check_names(spec.params, "parameter")
    _check_names(spec.meta, "meta attribute")
    inst = [m.NvSet(id=f"{spec.id}-instance_attributes", values=dict(spec.params))] if spec.params else []
    meta = [m.NvSet(id=f"{spec.id}-meta_attributes", values=dict(spec.meta))] if spec.meta else []
    ops = []
    for op in spec.operations:
        if not op.name or op.interval_ms < 0 or (op.timeout_ms is not None and op.timeout_ms <= 0):
            raise OperatorError(
                f"operation {op.name!r} of {spec.id}: needs a name, interval >= 0, timeout > 0"
            )
        ops.append(
            m.Operation(
                id=f"{spec.id}-{op.name}-interval-{op.interval_ms // 1000}s",
                name=op.name,
                interval=op.interval_ms,
                timeout=op.timeout_ms,
            )
        )
    return m.Primitive(
        id=spec.id,
        klass=klass,
        provider=provider,
        type=rtype,
        instance_attributes=inst,
        meta_attributes=meta,
        operations=ops,
    )


def resource_create(cib: m.Cib, spec: ResourceSpec) -> Patch:
    """Create a primitive, optionally inside a (new or existing) group, optionally wrapped in a clone."""
    _require_new_id(cib, spec.id, "resource")
    prim = _primitive(spec)
    base = "/configuration/resources"
    if spec.group is not None:
        if spec.group == spec.id:
            raise OperatorError(f"{spec.id!r} cannot be both a resource and its group; rename the group")
        if spec.clone or spec.promotable:
            raise OperatorError("a resource added to a group cannot also be cloned; clone the group instead")
        existing = [f for f in all_resources(cib) if f.resource.id == spec.group]
        if existing:
            grp = existing[0]
            if not isinstance(grp.resource, m.Group):
                raise OperatorError(
                    f"{spec.group!r} is a {grp.resource.__class__.__name__.lower()}, not a group"
                )
            return Patch(ops=[Create(path=f"{grp.path}/children", value=msgspec.to_builtins(prim))])
        _require_new_id(cib, spec.group, "group")
        group = m.Group(id=spec.group, children=[prim])
        return Patch(ops=[Create(path=base, value=msgspec.to_builtins(group))])
    if spec.clone or spec.promotable:
        clone_id = f"{spec.id}-clone"
        _require_new_id(cib, clone_id, "clone")
        meta = dict(spec.clone_meta)
        if spec.promotable:
            meta["promotable"] = "true"
        _check_names(meta, "clone meta attribute")
        sets = [m.NvSet(id=f"{clone_id}-meta_attributes", values=meta)] if meta else []
        clone = m.Clone(id=clone_id, child=prim, meta_attributes=sets)
        return Patch(ops=[Create(path=base, value=msgspec.to_builtins(clone))])
    return Patch(ops=[Create(path=base, value=msgspec.to_builtins(prim))])


def _sets_of(rsc: m.Resource, field: str) -> list[m.NvSet]:
    if isinstance(rsc, m.Bundle):
        raise OperatorError(f"{rsc.id} is a bundle; bundles can only be changed through the configuration")
    sets: list[m.NvSet] = getattr(rsc, field)
    return sets


def resource_update(
    cib: m.Cib,
    rsc_id: str,
    *,
    params: Mapping[str, str | None] | None = None,
    meta: Mapping[str, str | None] | None = None,
) -> Patch:
    """Set (or, with None, remove) instance parameters and meta attributes of a resource."""
    found = find_resource(cib, rsc_id)
    ops: list[PatchOp] = []
    if params:
        if not isinstance(found.resource, m.Primitive):
            raise OperatorError(f"{rsc_id} is not a primitive: parameters belong to its member resources")
        _check_names(params, "parameter")
        ops += set_values(
            found.path,
            "instance_attributes",
            _sets_of(found.resource, "instance_attributes"),
            f"{rsc_id}-instance_attributes",
            params,
        )
    if meta:
        _check_names(meta, "meta attribute")
        ops += set_values(
            found.path,
            "meta_attributes",
            _sets_of(found.resource, "meta_attributes"),
            f"{rsc_id}-meta_attributes",
            meta,
        )
    if not params and not meta:
        raise OperatorError("nothing to change: give parameters or meta attributes to set or remove")
    return Patch(ops=ops)


def _references(c: m.Constraint, ids: set[str]) -> bool:
    named: list[str | None] = []
    if isinstance(c, m.Location | m.Ticket):
        named.append(c.rsc)
    elif isinstance(c, m.Colocation):
        named += [c.rsc, c.with_rsc]
    elif isinstance(c, m.Order):
        named += [c.first, c.then]
    named += [r for s in c.resource_sets for r in s.resources]
    return any(n in ids for n in named)


def resource_delete(cib: m.Cib, rsc_id: str) -> Patch:
    """Delete a resource and the constraints that name it (as ``pcs resource delete`` does).

    Deleting the last member of a group deletes the group; a clone's child goes with its clone.
    """
    found = find_resource(cib, rsc_id)
    target = found
    if isinstance(found.parent, m.Clone):
        target = find_resource(cib, found.parent.id)
    elif isinstance(found.parent, m.Group) and len(found.parent.children) == 1:
        grandparent = find_resource(cib, found.parent.id)
        target = (
            find_resource(cib, grandparent.parent.id)
            if isinstance(grandparent.parent, m.Clone)
            else grandparent
        )
    ids = {target.resource.id} | {p.id for p in primitives_of(target.resource)}
    if isinstance(target.resource, m.Clone):
        ids.add(target.resource.child.id)
    if target is not found:
        ids.add(found.resource.id)
    ops: list[PatchOp] = [Delete(path=target.path)]
    ops += [
        Delete(path=f"/configuration/constraints/{c.id}")
        for c in cib.configuration.constraints
        if _references(c, ids)
    ]
    return Patch(ops=ops)


def _meta_patch(cib: m.Cib, rsc_id: str, name: str, value: str | None) -> Patch:
    found = find_resource(cib, rsc_id)
    sets = _sets_of(found.resource, "meta_attributes")
    return Patch(
        ops=set_values(found.path, "meta_attributes", sets, f"{rsc_id}-meta_attributes", {name: value})
    )


def enable(cib: m.Cib, rsc_id: str) -> Patch:
    return _meta_patch(cib, rsc_id, "target-role", "Started")


def disable(cib: m.Cib, rsc_id: str) -> Patch:
    return _meta_patch(cib, rsc_id, "target-role", "Stopped")


def restart_steps(cib: m.Cib, rsc_id: str) -> tuple[Patch, Patch]:
    """The two patches of a restart: stop it, then (after the caller saw it stopped) start it again.

    The second restores the operator's previous ``target-role`` (removing it when there was none), so a
    restart never changes what the resource is meant to be.
    """
    found = find_resource(cib, rsc_id)
    previous: str | None = None
    for s in _sets_of(found.resource, "meta_attributes"):
        previous = previous or s.values.get("target-role")
    if previous is not None and previous.lower() == "stopped":
        raise OperatorError(f"{rsc_id} is disabled (target-role=Stopped); enable it instead of restarting")
    stop = disable(cib, rsc_id)
    # The second step is computed on the CIB as the first leaves it, so it finds the value it must undo.
    start = _meta_patch(apply(cib, stop), rsc_id, "target-role", previous)
    return stop, start


def is_stopped_everywhere(cib: m.Cib, rsc_id: str) -> bool:
    """Whether no node's history shows the resource (or its members) active: restart's second step may go."""
    ids = {p.id for p in primitives_of(find_resource(cib, rsc_id).resource)}
    for state in cib.status.nodes:
        for hist in state.resources:
            base = hist.id.split(":", 1)[0]
            if base in ids and _last_active(hist):
                return False
    return True


def _last_active(hist: m.ResourceHistory) -> bool:
    ops = sorted((o for o in hist.ops if o.interval == 0), key=lambda o: o.call_id)
    if not ops:
        return False
    last = ops[-1]
    if last.operation == "stop":
        return last.rc != 0
    return last.rc in (0, 8) or last.operation in ("start", "promote", "demote", "migrate_from")


# --- move, ban, clear --------------------------------------------------------------------------------------


def move(
    cib: m.Cib, rsc_id: str, node: str, *, lifetime_s: int | None = None, now: int | None = None
) -> Patch:
    """Prefer ``node`` for ``rsc_id`` with INFINITY (``cli-prefer-RSC``), replacing an earlier move.

    With ``lifetime_s`` (and ``now``, epoch seconds) the preference is a rule that stops holding at
    ``now + lifetime_s``; ``clear`` still removes it.
    """
    found = find_resource(cib, rsc_id)
    if isinstance(found.parent, m.Group | m.Clone):
        raise OperatorError(f"{rsc_id} is part of {found.parent.id}; move {found.parent.id} instead")
    target = find_node(cib, node).uname
    cid = f"{CLI_PREFER}{rsc_id}"
    if lifetime_s is None:
        loc = m.Location(id=cid, rsc=rsc_id, node=target, score=INFINITY, role=None)
    else:
        if now is None or lifetime_s <= 0:
            raise OperatorError(
                "a move lifetime must be a positive number of seconds (and needs the time now)"
            )
        rule = m.Rule(
            id=f"cli-prefer-rule-{rsc_id}",
            score=INFINITY,
            expressions=[
                m.AttrExpression(
                    id=f"cli-prefer-expr-{rsc_id}",
                    attribute="#uname",
                    operation="eq",
                    value=target,
                    type="string",
                ),
                m.DateExpression(
                    id=f"cli-prefer-lifetime-end-{rsc_id}",
                    operation="lt",
                    end=format_datetime(now + lifetime_s),
                ),
            ],
        )
        loc = m.Location(id=cid, rsc=rsc_id, rules=[rule])
    return Patch(ops=[Put(path="/configuration/constraints", value=msgspec.to_builtins(loc))])


def ban(cib: m.Cib, rsc_id: str, node: str) -> Patch:
    """Keep ``rsc_id`` off ``node`` (``cli-ban-RSC-on-NODE``, -INFINITY) until cleared."""
    found = find_resource(cib, rsc_id)
    if isinstance(found.parent, m.Group | m.Clone):
        raise OperatorError(f"{rsc_id} is part of {found.parent.id}; ban {found.parent.id} instead")
    target = find_node(cib, node).uname
    loc = m.Location(id=f"{CLI_BAN}{rsc_id}-on-{target}", rsc=rsc_id, node=target, score=-INFINITY)
    return Patch(ops=[Put(path="/configuration/constraints", value=msgspec.to_builtins(loc))])


def clear(cib: m.Cib, rsc_id: str, node: str | None = None) -> Patch:
    """Remove the constraints `move` and `ban` made for `rsc_id` (only those naming `node`, if given)."""
    find_resource(cib, rsc_id)
    target = find_node(cib, node).uname if node is not None else None
    ops: list[PatchOp] = []
    for c in cib.configuration.constraints:
        if not isinstance(c, m.Location) or c.rsc != rsc_id:
            continue
        prefer = c.id == f"{CLI_PREFER}{rsc_id}" and (target is None or c.node in (None, target))
        banned = c.id.startswith(f"{CLI_BAN}{rsc_id}-on-") and (target is None or c.node == target)
        if prefer or banned:
            ops.append(Delete(path=f"/configuration/constraints/{c.id}"))
    return Patch(ops=ops)


# --- cleanup -----------------------------------------------------------------------------------------------


def _state_matches(state: m.NodeState, names: set[str] | None) -> bool:
    return names is None or state.id in names or (state.uname is not None and state.uname in names)


def _is_failure_attr(attr: str, ids: set[str]) -> bool:
    for prefix in ("fail-count-", "last-failure-"):
        if attr.startswith(prefix):
            rsc = attr[len(prefix) :].split("#", 1)[0].split(":", 1)[0]
            return rsc in ids
    return False


def cleanup(cib: m.Cib, rsc_id: str, node: str | None = None) -> Patch:
    """Forget the resource's operation history and fail counts (on ``node`` or everywhere): it is re-probed.

    Members of groups and clones are cleaned with their wrapper; clone instances (``rsc:0``) count as the
    resource.
    """
    ids = {rsc_id}
    try:
        found = find_resource(cib, rsc_id)
        ids |= {p.id for p in primitives_of(found.resource)}
    except OperatorError:
        if not any(h.id.split(":", 1)[0] == rsc_id for s in cib.status.nodes for h in s.resources):
            raise
    names = None
    if node is not None:
        cfg_node = find_node(cib, node)
        names = {cfg_node.uname, cfg_node.id}
    ops: list[PatchOp] = []
    for state in cib.status.nodes:
        if not _state_matches(state, names):
            continue
        base = f"/status/nodes/{state.id}"
        ops += [
            Delete(path=f"{base}/resources/{h.id}") for h in state.resources if h.id.split(":", 1)[0] in ids
        ]
        for s in state.transient_attributes:
            ops += [
                Delete(path=f"{base}/transient_attributes/{s.id}/values/{a}")
                for a in s.values
                if _is_failure_attr(a, ids)
            ]
    return Patch(ops=ops)


# --- constraints -------------------------------------------------------------------------------------------


def _require_resource(cib: m.Cib, rsc_id: str) -> None:
    find_resource(cib, rsc_id)


def _constraint_id(cib: m.Cib, given: str | None, proposed: str) -> str:
    if given is not None:
        _require_new_id(cib, given, "constraint")
        return given
    taken = _all_ids(cib)
    cid, n = proposed, 1
    while cid in taken:
        n += 1
        cid = f"{proposed}-{n}"
    return cid


def _score_text(score: int) -> str:
    return "INFINITY" if score >= INFINITY else "-INFINITY" if score <= -INFINITY else str(score)


def _check_score(score: int) -> int:
    if not -INFINITY <= score <= INFINITY:
        raise OperatorError(f"score {score} is outside -INFINITY..INFINITY (-1000000..1000000)")
    return score


def location_add(
    cib: m.Cib, rsc_id: str, node: str, score: int, *, constraint_id: str | None = None
) -> Patch:
    _require_resource(cib, rsc_id)
    target = find_node(cib, node).uname
    cid = _constraint_id(cib, constraint_id, f"location-{rsc_id}-{target}-{_score_text(score)}")
    loc = m.Location(id=cid, rsc=rsc_id, node=target, score=_check_score(score))
    return Patch(ops=[Create(path="/configuration/constraints", value=msgspec.to_builtins(loc))])


def colocation_add(
    cib: m.Cib, rsc_id: str, with_rsc: str, score: int = INFINITY, *, constraint_id: str | None = None
) -> Patch:
    _require_resource(cib, rsc_id)
    _require_resource(cib, with_rsc)
    if rsc_id == with_rsc:
        raise OperatorError(f"{rsc_id} cannot be colocated with itself")
    cid = _constraint_id(cib, constraint_id, f"colocation-{rsc_id}-{with_rsc}-{_score_text(score)}")
    col = m.Colocation(id=cid, rsc=rsc_id, with_rsc=with_rsc, score=_check_score(score))
    return Patch(ops=[Create(path="/configuration/constraints", value=msgspec.to_builtins(col))])


def order_add(
    cib: m.Cib,
    first: str,
    then: str,
    *,
    kind: str = "Mandatory",
    symmetrical: bool | None = None,
    first_action: str | None = None,
    then_action: str | None = None,
    constraint_id: str | None = None,
) -> Patch:
    _require_resource(cib, first)
    _require_resource(cib, then)
    if first == then:
        raise OperatorError(f"{first} cannot be ordered against itself")
    if kind not in ORDER_KINDS:
        raise OperatorError(f"order kind {kind!r} is not one of {', '.join(ORDER_KINDS)}")
    cid = _constraint_id(cib, constraint_id, f"order-{first}-{then}-{kind}")
    order = m.Order(
        id=cid,
        first=first,
        then=then,
        kind=kind,
        symmetrical=symmetrical,
        first_action=first_action,
        then_action=then_action,
    )
    return Patch(ops=[Create(path="/configuration/constraints", value=msgspec.to_builtins(order))])


def constraint_remove(cib: m.Cib, constraint_id: str) -> Patch:
    if not any(c.id == constraint_id for c in cib.configuration.constraints):
        known = ", ".join(c.id for c in cib.configuration.constraints) or "there are none"
        raise NotFound(f"there is no constraint {constraint_id!r} (constraints: {known})")
    return Patch(ops=[Delete(path=f"/configuration/constraints/{constraint_id}")])


# --- nodes and the cluster ---------------------------------------------------------------------------------


def node_attribute(cib: m.Cib, node: str, name: str, value: str | None) -> Patch:
    """Set (or, with None, delete) a permanent node attribute; deleting an absent one is an error."""
    cfg_node = find_node(cib, node)
    _check_names({name: value}, "node attribute")
    if value is None and not any(name in s.values for s in cfg_node.instance_attributes):
        raise OperatorError(f"node {cfg_node.uname} has no attribute {name!r}")
    path = f"/configuration/nodes/{cfg_node.id}"
    return Patch(
        ops=set_values(
            path,
            "instance_attributes",
            list(cfg_node.instance_attributes),
            f"nodes-{cfg_node.id}",
            {name: value},
        )
    )


def standby(cib: m.Cib, node: str, on: bool = True) -> Patch:
    """Put a node in standby (``standby=on``: resources move away) or take it out (the attribute goes)."""
    cfg_node = find_node(cib, node)
    present = any("standby" in s.values for s in cfg_node.instance_attributes)
    if not on and not present:
        return Patch(ops=[])
    return node_attribute(cib, node, "standby", "on" if on else None)


def node_maintenance(cib: m.Cib, node: str, on: bool = True) -> Patch:
    """Node maintenance (``maintenance=on``): the cluster stops managing resources on that node."""
    cfg_node = find_node(cib, node)
    present = any("maintenance" in s.values for s in cfg_node.instance_attributes)
    if not on and not present:
        return Patch(ops=[])
    return node_attribute(cib, node, "maintenance", "on" if on else None)


def cluster_property(cib: m.Cib, name: str, value: str | None) -> Patch:
    _check_names({name: value}, "cluster property")
    sets = list(cib.configuration.properties)
    bootstrap = [s for s in sets if s.id == BOOTSTRAP]
    ordered = bootstrap + [s for s in sets if s.id != BOOTSTRAP]
    if value is None and not any(name in s.values for s in sets):
        return Patch(ops=[])
    return Patch(ops=set_values("/configuration", "properties", ordered, BOOTSTRAP, {name: value}))


def maintenance(cib: m.Cib, on: bool) -> Patch:
    """Cluster-wide maintenance mode: nothing is started, stopped or monitored until it is turned off."""
    return cluster_property(cib, "maintenance-mode", "true" if on else "false")


# --- Heartbeat v1 haresources -------------------------------------------------------------------------------

HARESOURCES_AGENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # Heartbeat resource name -> (OCF agent, its parameters in haresources argument order)
    "IPaddr": ("ocf:heartbeat:IPaddr2", ("ip", "cidr_netmask", "nic", "broadcast")),
    "IPaddr2": ("ocf:heartbeat:IPaddr2", ("ip", "cidr_netmask", "nic", "broadcast")),
    "Filesystem": ("ocf:heartbeat:Filesystem", ("device", "directory", "fstype", "options")),
}
HARESOURCES_SCORE = 100
"""The preferred node's score: a preference, not a pin, so the group still fails over (auto_failback on)."""


def _ha_resource(word: str, service_class: str) -> tuple[str, str, dict[str, str]]:
    """``IPaddr::10.0.0.10/24/eth0`` -> (agent, id, params); a bare ``httpd`` is the service of that name."""
    name, *args = word.split("::")
    if not name:
        raise OperatorError(f"{word!r} has no resource name before '::'")
    if name in HARESOURCES_AGENTS:
        agent, names = HARESOURCES_AGENTS[name]
        values = args[0].split("/") if name.startswith("IPaddr") and len(args) == 1 else args
        if not values or not values[0] or len(values) > len(names):
            raise OperatorError(f"{word!r}: {name} takes {', '.join(names)} (at least the first)")
        params = {k: v for k, v in zip(names, values, strict=False) if v}
        ident = f"{name}_{values[0]}".replace("/", "_").replace(":", "_").replace(".", "_")
        return agent, ident, params
    if args:
        raise OperatorError(
            f"{word!r}: only IPaddr, IPaddr2 and Filesystem take '::' arguments here; "
            "create other resources with their parameters using 'resource create'"
        )
    return f"{service_class}:{name}", name, {}


def haresources(cib: m.Cib, line: str, *, service_class: str = "lsb") -> Patch:
    """Heartbeat's ``node1 IPaddr::10.0.0.10/24 httpd``: a group of the resources, in order, preferring node1.

    Addresses and file systems become their OCF agents; a bare name is the system service of that name
    (``service_class``: ``lsb`` as Heartbeat ran init scripts, or ``systemd``).
    """
    words = line.split("#", 1)[0].split()
    if len(words) < 2:
        raise OperatorError(
            "a haresources line is 'NODE RESOURCE...', e.g. 'node1 IPaddr::10.0.0.10/24 httpd'"
        )
    node = find_node(cib, words[0]).uname
    specs = []
    for word in words[1:]:
        agent, ident, params = _ha_resource(word, service_class)
        specs.append(ResourceSpec(id=ident, agent=agent, params=params))
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise OperatorError(f"the line names a resource twice ({', '.join(ids)})")
    group_id = f"group_{ids[0]}"
    _require_new_id(cib, group_id, "group")
    for spec in specs:
        _require_new_id(cib, spec.id, "resource")
    group = m.Group(id=group_id, children=[_primitive(s) for s in specs])
    prefer = m.Location(id=f"{group_id}-prefers-{node}", rsc=group_id, node=node, score=HARESOURCES_SCORE)
    return Patch(
        ops=[
            Create(path="/configuration/resources", value=msgspec.to_builtins(group)),
            Create(path="/configuration/constraints", value=msgspec.to_builtins(prefer)),
        ]
    )
