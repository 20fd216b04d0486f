"""What the API shows, computed from a CIB snapshot, the live cluster state and the time: pure functions.

Resource state (role, nodes, failures) is read with the policy engine's own unpacking, so the API shows
exactly what the scheduler believes. Secret parameters are replaced by ``***`` here, once, for every reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from msgspec.structs import replace

from hakeeper.api.handle import ClusterState
from hakeeper.api.schemas import (
    ClusterView,
    FailCountView,
    FailedActionView,
    NodeView,
    ResourceList,
    ResourceView,
)
from hakeeper.cib import model as m
from hakeeper.cib.operator import Found, all_resources, primitives_of
from hakeeper.cib.patch import version_of
from hakeeper.policy.unpack import WorkingSet, unpack
from hakeeper.policy.working import Role, Rsc

MASK = "***"
SECRET_WORDS = ("password", "passwd", "secret", "token", "key")
SECRET_META = "secret-params"
"""Meta attribute listing (comma or space separated) more parameter names that must never be shown."""


def config_version(cib: m.Cib) -> str:
    """The configuration's version (``admin_epoch.epoch``): what ``If-Match`` compares against."""
    return f"{cib.admin_epoch}.{cib.epoch}"


def merged(sets: Iterable[m.NvSet]) -> dict[str, str]:
    """Name/value sets flattened, the first set winning (enough for display; rules are not evaluated)."""
    out: dict[str, str] = {}
    for s in sets:
        for k, v in s.values.items():
            out.setdefault(k, v)
    return out


# --- secrets ------------------------------------------------------------------------------------------------


def secret_names(params: Iterable[str], meta: Mapping[str, str]) -> set[str]:
    """The parameters to hide: names that look secret, plus those the operator listed in ``secret-params``."""
    listed = {p for p in meta.get(SECRET_META, "").replace(",", " ").split() if p}
    return {p for p in params if p in listed or any(w in p.lower() for w in SECRET_WORDS)}


def mask_params(params: Mapping[str, str], meta: Mapping[str, str]) -> dict[str, str]:
    hidden = secret_names(params, meta)
    return {k: (MASK if k in hidden else v) for k, v in params.items()}


def _mask_sets(sets: list[m.NvSet], meta: Mapping[str, str]) -> list[m.NvSet]:
    names = {k for s in sets for k in s.values}
    hidden = secret_names(names, meta)
    return [
        m.NvSet(
            id=s.id,
            score=s.score,
            rule=s.rule,
            values={k: (MASK if k in hidden else v) for k, v in s.values.items()},
        )
        for s in sets
    ]


def _mask_primitive(p: m.Primitive) -> m.Primitive:
    meta = merged(p.meta_attributes)
    return replace(p, instance_attributes=_mask_sets(list(p.instance_attributes), meta))


def _mask_resource(rsc: m.Resource) -> m.Resource:
    if isinstance(rsc, m.Primitive):
        return _mask_primitive(rsc)
    if isinstance(rsc, m.Group):
        return replace(rsc, children=[_mask_primitive(c) for c in rsc.children])
    if isinstance(rsc, m.Clone):
        child = rsc.child
        masked: m.Primitive | m.Group = (
            _mask_primitive(child)
            if isinstance(child, m.Primitive)
            else replace(child, children=[_mask_primitive(c) for c in child.children])
        )
        return replace(rsc, child=masked)
    return rsc


def mask_configuration(cfg: m.Configuration) -> m.Configuration:
    """The configuration with every secret parameter (resources, templates, alerts) shown as ``***``."""
    templates = [
        replace(t, instance_attributes=_mask_sets(list(t.instance_attributes), merged(t.meta_attributes)))
        for t in cfg.templates
    ]
    alerts = [
        replace(a, instance_attributes=_mask_sets(list(a.instance_attributes), merged(a.meta_attributes)))
        for a in cfg.alerts
    ]
    return replace(
        cfg, resources=[_mask_resource(r) for r in cfg.resources], templates=templates, alerts=alerts
    )


def _unmask_sets(new: list[m.NvSet], old: list[m.NvSet], where: str) -> list[m.NvSet]:
    current = merged(old)
    out = []
    for s in new:
        values = {}
        for k, v in s.values.items():
            if v == MASK:
                if k not in current:
                    raise ValueError(
                        f"{where}: parameter {k!r} is '***' but has no current value to keep; "
                        "write the real value"
                    )
                values[k] = current[k]
            else:
                values[k] = v
        out.append(m.NvSet(id=s.id, score=s.score, rule=s.rule, values=values))
    return out


def unmask_configuration(new: m.Configuration, old: m.Configuration) -> m.Configuration:
    """Undo ``***`` in an edited configuration: a masked secret keeps the value it has now."""
    old_prims = {p.id: p for f in _found(old) for p in primitives_of(f.resource)}

    def prim(p: m.Primitive) -> m.Primitive:
        before = list(old_prims[p.id].instance_attributes) if p.id in old_prims else []
        sets = _unmask_sets(list(p.instance_attributes), before, f"resource {p.id}")
        return replace(p, instance_attributes=sets)

    def rsc(r: m.Resource) -> m.Resource:
        if isinstance(r, m.Primitive):
            return prim(r)
        if isinstance(r, m.Group):
            return replace(r, children=[prim(c) for c in r.children])
        if isinstance(r, m.Clone):
            child = r.child
            inner: m.Primitive | m.Group = (
                prim(child)
                if isinstance(child, m.Primitive)
                else replace(child, children=[prim(c) for c in child.children])
            )
            return replace(r, child=inner)
        return r

    old_t = {t.id: t for t in old.templates}
    templates = [
        replace(
            t,
            instance_attributes=_unmask_sets(
                list(t.instance_attributes),
                list(old_t[t.id].instance_attributes) if t.id in old_t else [],
                f"template {t.id}",
            ),
        )
        for t in new.templates
    ]
    old_a = {a.id: a for a in old.alerts}
    alerts = [
        replace(
            a,
            instance_attributes=_unmask_sets(
                list(a.instance_attributes),
                list(old_a[a.id].instance_attributes) if a.id in old_a else [],
                f"alert {a.id}",
            ),
        )
        for a in new.alerts
    ]
    return replace(new, resources=[rsc(r) for r in new.resources], templates=templates, alerts=alerts)


def _found(cfg: m.Configuration) -> list[Found]:
    return all_resources(m.Cib(configuration=cfg))


# --- nodes and cluster ---------------------------------------------------------------------------------


def _running_by_node(ws: WorkingSet) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for top in ws.resources:
        for prim in top.primitives():
            for node in prim.running_on:
                out.setdefault(node.name, []).append(prim.id)
    return out


def node_views(cib: m.Cib, state: ClusterState, ws: WorkingSet) -> list[NodeView]:
    members = {mb.name: mb for mb in state.members}
    running = _running_by_node(ws)
    states = {s.uname or s.id: s for s in cib.status.nodes}
    views = []
    for cfg_node in cib.configuration.nodes:
        info = ws.nodes.get(cfg_node.uname)
        member = members.get(cfg_node.uname)
        online = member.online if member is not None else bool(info and info.online)
        status = states.get(cfg_node.uname) or states.get(cfg_node.id)
        views.append(
            NodeView(
                name=cfg_node.uname,
                id=cfg_node.id,
                online=online,
                standby=bool(info and info.standby),
                maintenance=bool(info and info.maintenance),
                unclean=bool((member and member.unclean) or (info and info.unclean and not online)),
                is_dc=state.dc == cfg_node.uname,
                fenced_at=member.fenced_at if member else None,
                attributes=merged(cfg_node.instance_attributes),
                transient_attributes=merged(status.transient_attributes) if status else {},
                resources=sorted(running.get(cfg_node.uname, [])),
            )
        )
    return views


def cluster_view(cib: m.Cib, state: ClusterState, now: float) -> ClusterView:
    ws = unpack(cib, int(now))
    nodes = node_views(cib, state, ws)
    active = sum(1 for top in ws.resources for p in top.primitives() if p.running_on)
    return ClusterView(
        cluster_name=state.cluster_name,
        local_node=state.local_node,
        version=str(version_of(cib)),
        config_version=config_version(cib),
        quorate=state.quorate,
        dc=state.dc,
        maintenance_mode=ws.config.maintenance_mode,
        nodes=nodes,
        links=list(state.links),
        resources_configured=sum(len(primitives_of(r)) for r in cib.configuration.resources),
        resources_active=active,
        failed_actions=len(failed_actions(cib)),
    )


# --- resources -------------------------------------------------------------------------------------------


def _base(rsc_id: str) -> str:
    return rsc_id.split(":", 1)[0]


def _runtime(ws: WorkingSet) -> dict[str, list[Rsc]]:
    """Runtime primitives (clone instances included) by configured primitive id."""
    out: dict[str, list[Rsc]] = {}
    for top in ws.resources:
        for prim in top.primitives():
            out.setdefault(_base(prim.id), []).append(prim)
    return out


def _fail_counts(prims: list[Rsc], ws: WorkingSet, now: float) -> list[FailCountView]:
    ids = {_base(p.id) for p in prims}
    rsc = prims[0] if prims else None
    timeout = rsc.failure_timeout if rsc else 0
    threshold = rsc.migration_threshold if rsc else 1_000_000
    views = []
    for (rid, node), (count, last) in sorted(ws.failcounts.items()):
        if _base(rid) not in ids or count <= 0:
            continue
        expires = None
        if timeout > 0 and last:
            expires = max(0.0, last + timeout - now)
        views.append(
            FailCountView(
                node=node,
                count=count,
                last_failure=last or None,
                expires_in_s=expires,
                migration_threshold=threshold,
            )
        )
    return views


def failed_actions(cib: m.Cib) -> list[FailedActionView]:
    out = []
    for state in cib.status.nodes:
        for hist in state.resources:
            for op in hist.ops:
                if op.id.endswith("_last_failure_0"):
                    out.append(
                        FailedActionView(
                            rsc=hist.id,
                            node=state.uname or state.id,
                            operation=op.operation,
                            interval_ms=op.interval,
                            rc=op.rc,
                            op_status=op.op_status,
                            exit_reason=op.exit_reason,
                            last_rc_change=op.last_rc_change,
                        )
                    )
    return out


def _kind(rsc: m.Resource) -> str:
    return type(rsc).__name__.lower()


def resource_view(found: Found, runtime: Mapping[str, list[Rsc]], ws: WorkingSet, now: float) -> ResourceView:
    rsc = found.resource
    prims = [r for p in primitives_of(rsc) for r in runtime.get(p.id, [])]
    meta = {} if isinstance(rsc, m.Bundle) else merged(rsc.meta_attributes)
    params: dict[str, str] = {}
    if isinstance(rsc, m.Primitive):
        params = mask_params(merged(rsc.instance_attributes), meta)
    members: list[str] = []
    if isinstance(rsc, m.Group):
        members = [c.id for c in rsc.children]
    elif isinstance(rsc, m.Clone):
        members = [rsc.child.id]
    role = max((p.role for p in prims), default=Role.STOPPED)
    nodes = sorted({n.name for p in prims for n in p.running_on})
    promoted = sorted({n.name for p in prims if p.role == Role.PROMOTED for n in p.running_on})
    return ResourceView(
        id=rsc.id,
        kind=_kind(rsc),
        agent=rsc.agent if isinstance(rsc, m.Primitive) else None,
        parent=found.parent.id if found.parent else None,
        members=members,
        role=(role if role != Role.UNKNOWN else Role.STOPPED).text,
        nodes=nodes,
        promoted_on=promoted,
        target_role=meta.get("target-role"),
        managed=all(p.managed for p in prims) if prims else True,
        failed=any(p.failed for p in prims),
        params=params,
        meta=meta,
        fail_counts=_fail_counts(prims, ws, now),
    )


def resource_list(cib: m.Cib, now: float) -> ResourceList:
    ws = unpack(cib, int(now))
    runtime = _runtime(ws)
    views = [resource_view(f, runtime, ws, now) for f in all_resources(cib)]
    return ResourceList(resources=views, failed_actions=failed_actions(cib))


def one_resource(cib: m.Cib, found: Found, now: float) -> ResourceView:
    ws = unpack(cib, int(now))
    return resource_view(found, _runtime(ws), ws, now)
