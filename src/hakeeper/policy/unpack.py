"""Build the working set from a CIB: cluster options, nodes and their state, the resource tree, and each
resource's current state on each node reconstructed from the operation history."""

from __future__ import annotations

from dataclasses import dataclass, field

from hakeeper.cib import model as m
from hakeeper.cib.rules import RuleContext
from hakeeper.policy.attrs import is_true, parse_int_score, parse_interval_s, resolve_sets
from hakeeper.policy.migration import MigrationHistory
from hakeeper.policy.remote import (
    REMOTE_AGENT,
    add_remote_nodes,
    guest_connection,
    guest_name,
    set_remote_online,
)
from hakeeper.policy.working import (
    INFINITY,
    ClusterConfig,
    NodeHistory,
    NodeInfo,
    OpDef,
    Role,
    Rsc,
    parse_role,
)

# OCF exit codes the history interpretation needs
RC_OK, RC_ERR_GENERIC, RC_ERR_ARGS, RC_UNIMPLEMENTED, RC_PERM, RC_NOT_INSTALLED = 0, 1, 2, 3, 4, 5
RC_NOT_CONFIGURED, RC_NOT_RUNNING, RC_PROMOTED, RC_FAILED_PROMOTED = 6, 7, 8, 9
RC_DEGRADED, RC_DEGRADED_PROMOTED = 190, 191
# executor statuses
ST_PENDING, ST_DONE, ST_CANCELLED, ST_TIMEOUT, ST_NOT_SUPPORTED, ST_ERROR = -1, 0, 1, 2, 3, 4
ST_ERROR_HARD, ST_ERROR_FATAL, ST_NOT_INSTALLED, ST_NOT_CONNECTED, ST_INVALID = 5, 6, 7, 8, 9
ST_NO_FENCE_DEVICE, ST_NO_SECRETS = 10, 11

# on-fail handling, weakest first (a later failure only escalates)
ON_FAIL_RANK = {
    "ignore": 0,
    "demote": 1,
    "restart": 2,
    "restart-container": 3,
    "reset-remote": 4,
    "migrate": 5,
    "block": 6,
    "stop": 7,
    "standby": 8,
    "fence": 9,
}


@dataclass
class WorkingSet:
    """Everything the later stages need, built once per ``schedule`` call."""

    config: ClusterConfig
    nodes: dict[str, NodeInfo]
    resources: list[Rsc]  # top-level, configuration order (orphans appended)
    by_id: dict[str, Rsc]  # every resource, including clone instances, by id
    now: int
    cib: m.Cib
    rsc_defaults: dict[str, str] = field(default_factory=dict)
    op_defaults: dict[str, str] = field(default_factory=dict)
    tickets: dict[str, m.TicketState] = field(default_factory=dict)
    fence_order: list[str] = field(default_factory=list)  # nodes in the order they became unclean
    # (resource, node) -> (fail count, last failure epoch)
    failcounts: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    ctx: RuleContext = field(default_factory=RuleContext)
    warnings: list[str] = field(default_factory=list)
    template_users: dict[str, list[str]] = field(default_factory=dict)  # template id -> primitive ids

    def node_list(self) -> list[NodeInfo]:
        return list(self.nodes.values())


# --- cluster options ---------------------------------------------------------------------------------


def unpack_config(cib: m.Cib, ctx: RuleContext) -> ClusterConfig:
    props = resolve_sets(cib.configuration.properties, ctx, always_first="cib-bootstrap-options")
    cfg = ClusterConfig(properties=props)
    cfg.stonith_enabled = is_true(props.get("stonith-enabled"), True)
    cfg.symmetric = is_true(props.get("symmetric-cluster"), True)
    cfg.no_quorum_policy = props.get("no-quorum-policy", "stop").lower()
    cfg.have_quorum = cib.have_quorum
    cfg.stop_orphan_resources = is_true(props.get("stop-orphan-resources"), True)
    cfg.stop_orphan_actions = is_true(props.get("stop-orphan-actions"), True)
    cfg.start_failure_is_fatal = is_true(props.get("start-failure-is-fatal"), True)
    cfg.maintenance_mode = is_true(props.get("maintenance-mode"), False)
    cfg.stop_all_resources = is_true(props.get("stop-all-resources"), False)
    cfg.placement_strategy = props.get("placement-strategy", "default").lower()
    cfg.startup_fencing = is_true(props.get("startup-fencing"), True)
    cfg.stonith_action = props.get("stonith-action", "reboot").lower()
    if cfg.stonith_action == "poweroff":
        cfg.stonith_action = "off"
    cfg.concurrent_fencing = is_true(props.get("concurrent-fencing"), False)
    cfg.shutdown_lock = is_true(props.get("shutdown-lock"), False)
    cfg.node_health_strategy = props.get("node-health-strategy", "none").lower()
    return cfg


# --- nodes -------------------------------------------------------------------------------------------


def unpack_nodes(cib: m.Cib, cfg: ClusterConfig, ctx: RuleContext) -> dict[str, NodeInfo]:
    nodes: dict[str, NodeInfo] = {}
    for node in cib.configuration.nodes:
        info = NodeInfo(name=node.uname, id=node.id, kind=node.type or "member")
        info.base_score = node.score or 0
        info.attrs = resolve_sets(node.instance_attributes, ctx)
        info.utilization = _int_values(resolve_sets(node.utilization, ctx))
        info.unclean = cfg.startup_fencing and info.kind != "remote"
        nodes[node.uname] = info
    return nodes


def _int_values(values: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in values.items():
        try:
            out[name] = int(value)
        except ValueError:
            continue
    return out


def _find_node(nodes: dict[str, NodeInfo], state: m.NodeState) -> NodeInfo | None:
    if state.uname and state.uname in nodes:
        return nodes[state.uname]
    for info in nodes.values():
        if info.id == state.id:
            return info
    return None


def fence_node(ws: WorkingSet, node: NodeInfo, reason: str) -> None:
    """Mark a node unclean (it will be fenced if fencing is possible), remembering the first reason."""
    if node.kind == "remote" and node.remote_rsc is None:
        return
    conn = ws.by_id.get(node.remote_rsc) if node.remote_rsc is not None else None
    if conn is not None and conn.container is not None:
        _reset_guest(node, conn.container, reason)
        return
    if not node.unclean:
        node.unclean = True
        node.fence_reason = reason
        if node.name not in ws.fence_order:
            ws.fence_order.append(node.name)
    elif node.fence_reason is None:
        node.fence_reason = reason
        if node.name not in ws.fence_order:
            ws.fence_order.append(node.name)


def _reset_guest(node: NodeInfo, container: Rsc, reason: str) -> None:
    """A guest node is fenced by recovering its VM or container; it is not unclean, so it can run
    resources again in this very transition once that recovery succeeds."""
    if container.failed or not container.managed:
        return
    node.requires_reset = True
    node.fence_reason = node.fence_reason or reason
    container.failed = True
    container.stop_needed = True


def unpack_node_state(ws: WorkingSet, state: m.NodeState) -> None:
    node = _find_node(ws.nodes, state)
    if node is None:
        name = state.uname or state.id
        ws.warnings.append(f"Ignoring recorded state for node {name}: it is not configured")
        return
    transient = resolve_sets(state.transient_attributes, ws.ctx)
    node.attrs.update(transient)
    if node.kind == "remote" or state.remote_node:
        node.remote_was_fenced = (state.node_fenced or "0") != "0"
        return
    node.unclean = False
    node.unseen = False
    _determine_online(ws, node, state)
    if not ws.config.have_quorum and node.online and ws.config.no_quorum_policy == "suicide":
        fence_node(ws, node, "cluster does not have quorum")


def _shutdown_requested(node: NodeInfo) -> bool:
    value = node.attrs.get("shutdown")
    return value is not None and value not in ("", "0")


def _determine_online(ws: WorkingSet, node: NodeInfo, state: m.NodeState) -> None:
    node.shutdown = _shutdown_requested(node)
    node.expected_up = (state.expected or "").lower() == "member" and not node.shutdown
    if node.kind == "ping":
        node.unclean = False
        online = False
    elif not ws.config.stonith_enabled:
        online = _online_without_fencing(ws, node, state)
    else:
        online = _online_with_fencing(ws, node, state)
    node.online = online
    if is_true(node.attrs.get("standby")):
        node.standby = True
    if is_true(node.attrs.get("maintenance")) or state.node_in_maintenance:
        node.maintenance = True


def _in_cluster(state: m.NodeState) -> bool | None:
    value = state.in_ccm
    if value is None:
        return None
    text = value.strip().lower()
    return text not in ("false", "no", "off", "0", "")  # "true" or a timestamp


def _crmd_online(state: m.NodeState) -> bool:
    value = (state.crmd or "").strip().lower()
    if value in ("online", "true"):
        return True
    return value.isdigit() and value != "0"


def _online_without_fencing(ws: WorkingSet, node: NodeInfo, state: m.NodeState) -> bool:
    join = (state.join or "").lower()
    if not _in_cluster(state):
        return False
    if _crmd_online(state):
        return join == "member"
    if node.expected_up:
        fence_node(ws, node, "peer is unexpectedly down")
    return False


def _online_with_fencing(ws: WorkingSet, node: NodeInfo, state: m.NodeState) -> bool:
    join = (state.join or "").lower()
    in_cluster = _in_cluster(state)
    crmd = _crmd_online(state)
    expected = (state.expected or "down").lower()
    terminate_attr = node.attrs.get("terminate")
    terminate = is_true(terminate_attr) or (
        bool(terminate_attr)
        and terminate_attr is not None
        and terminate_attr[0].isdigit()
        and terminate_attr[0] != "0"
    )
    online = bool(in_cluster)
    if node.shutdown:
        return crmd
    if in_cluster is None:
        fence_node(ws, node, "peer has not been seen by the cluster")
    elif join == "nack":
        fence_node(ws, node, "peer failed Pacemaker membership criteria")
    elif not terminate and expected == "down":
        if in_cluster or crmd:
            node.standby = True
            node.pending = True
    elif terminate and join == "down" and not in_cluster and not crmd:
        online = False
    elif not in_cluster:
        fence_node(ws, node, "peer is no longer part of the cluster")
    elif not crmd:
        fence_node(ws, node, "peer process is no longer available")
    elif terminate:
        fence_node(ws, node, "termination was requested")
    elif join == "member":
        pass
    elif join in ("pending", "down"):
        node.standby = True
        node.pending = True
    else:
        fence_node(ws, node, "peer was in an unknown state")
    return online


# --- resources ---------------------------------------------------------------------------------------


def _templates(cib: m.Cib) -> dict[str, m.Template]:
    return {t.id: t for t in cib.configuration.templates}


def _expand_template(prim: m.Primitive, templates: dict[str, m.Template]) -> m.Primitive:
    if prim.template is None or prim.template not in templates:
        return prim
    tpl = templates[prim.template]
    own_ops = {(op.name, op.interval) for op in prim.operations}
    ops = list(prim.operations) + [op for op in tpl.operations if (op.name, op.interval) not in own_ops]
    return m.Primitive(
        id=prim.id,
        klass=prim.klass or tpl.klass,
        provider=prim.provider or tpl.provider,
        type=prim.type or tpl.type,
        # among sets of equal score the one listed last wins, so the primitive's own sets go last
        instance_attributes=list(tpl.instance_attributes) + list(prim.instance_attributes),
        meta_attributes=list(tpl.meta_attributes) + list(prim.meta_attributes),
        utilization=list(tpl.utilization) + list(prim.utilization),
        operations=ops,
    )


class _Builder:
    """Turns configured resources into the working tree, resolving meta attributes with inheritance."""

    def __init__(self, ws: WorkingSet) -> None:
        self.ws = ws
        self.templates = _templates(ws.cib)

    def build(self, res: m.Resource) -> Rsc | None:
        if isinstance(res, m.Primitive):
            return self.primitive(res, None, {}, "")
        if isinstance(res, m.Group):
            return self.group(res, None, {}, "", {})
        if isinstance(res, m.Clone):
            return self.clone(res)
        self.ws.warnings.append(f"Bundle {res.id} is not scheduled yet; it is left as it is")
        return None

    def _meta(self, sets: list[m.NvSet], inherited: dict[str, str]) -> dict[str, str]:
        meta = dict(self.ws.rsc_defaults)
        meta.update(inherited)
        meta.update(resolve_sets(sets, self.ws.ctx))
        return meta

    def primitive(
        self,
        prim: m.Primitive,
        parent: Rsc | None,
        inherited: dict[str, str],
        suffix: str,
        inherited_params: dict[str, str] | None = None,
        inherited_layers: list[list[m.NvSet]] | None = None,
    ) -> Rsc:
        if prim.template is not None and not suffix:
            self.ws.template_users.setdefault(prim.template, []).append(prim.id)
        prim = _expand_template(prim, self.templates)
        meta = self._meta(prim.meta_attributes, inherited)
        rsc = Rsc(id=prim.id + suffix, kind="primitive", parent=parent, meta=meta)
        # agent parameters set on an enclosing group or clone reach the primitive, its own win
        rsc.params = {**(inherited_params or {}), **resolve_sets(prim.instance_attributes, self.ws.ctx)}
        layers = [*(inherited_layers or []), list(prim.instance_attributes)]
        rsc.param_layers = layers if any(s.rule is not None for sets in layers for s in sets) else []
        rsc.utilization = _int_values(resolve_sets(prim.utilization, self.ws.ctx))
        rsc.klass = prim.klass or ""
        rsc.agent = prim.agent
        rsc.ops = [self._opdef(op) for op in prim.operations]
        apply_meta(self.ws, rsc)
        if rsc.agent == REMOTE_AGENT:
            # a reconnect interval works as the connection's failure timeout
            rsc.reconnect_s = parse_interval_s(rsc.params.get("reconnect_interval"))
            if rsc.reconnect_s > 0:
                rsc.failure_timeout = rsc.reconnect_s
        self.ws.by_id[rsc.id] = rsc
        return rsc

    def _opdef(self, op: m.Operation) -> OpDef:
        meta = resolve_sets(op.meta_attributes, self.ws.ctx)
        on_fail = op.on_fail or meta.get("on-fail")
        return OpDef(
            name=op.name,
            interval_ms=op.interval,
            role=parse_role(op.role),
            on_fail=on_fail,
            enabled=op.enabled,
            params=resolve_sets(op.instance_attributes, self.ws.ctx),
        )

    def group(
        self,
        grp: m.Group,
        parent: Rsc | None,
        inherited: dict[str, str],
        suffix: str,
        params: dict[str, str],
        layers: list[list[m.NvSet]] | None = None,
    ) -> Rsc:
        meta = self._meta(grp.meta_attributes, inherited)
        params = {**params, **resolve_sets(grp.instance_attributes, self.ws.ctx)}
        layers = [*(layers or []), list(grp.instance_attributes)]
        rsc = Rsc(id=grp.id + suffix, kind="group", parent=parent, meta=meta)
        apply_meta(self.ws, rsc)
        child_meta = {
            k: v for k, v in meta.items() if k not in self.ws.rsc_defaults or self.ws.rsc_defaults[k] != v
        }
        for child in grp.children:
            rsc.children.append(self.primitive(child, rsc, child_meta, suffix, params, layers))
        self.ws.by_id[rsc.id] = rsc
        return rsc

    def clone(self, clone: m.Clone) -> Rsc:
        meta = self._meta(clone.meta_attributes, {})
        rsc = Rsc(id=clone.id, kind="clone", meta=meta)
        apply_meta(self.ws, rsc)
        rsc.unique = is_true(meta.get("globally-unique"))
        rsc.promotable = is_true(meta.get("promotable"))
        rsc.clone_max = _int_meta(meta, ("clone-max",), len(self.ws.nodes))
        rsc.clone_node_max = _int_meta(meta, ("clone-node-max",), 1)
        rsc.promoted_max = _int_meta(meta, ("promoted-max", "master-max"), 1)
        rsc.promoted_node_max = _int_meta(meta, ("promoted-node-max", "master-node-max"), 1)
        rsc.interleave = is_true(meta.get("interleave"))
        rsc.ordered = is_true(meta.get("ordered"))
        rsc.notify = is_true(meta.get("notify"))
        child_meta = {
            k: v for k, v in meta.items() if k not in self.ws.rsc_defaults or self.ws.rsc_defaults[k] != v
        }
        self.ws.by_id[rsc.id] = rsc
        for index in range(max(rsc.clone_max, 1)):
            rsc.children.append(self.instance(clone, rsc, child_meta, index))
        if rsc.clone_max == 0:
            rsc.children[0].orphan = True
        return rsc

    def instance(self, clone: m.Clone, parent: Rsc, meta: dict[str, str], index: int) -> Rsc:
        suffix = f":{index}"
        params = resolve_sets(clone.instance_attributes, self.ws.ctx)
        layers = [list(clone.instance_attributes)]
        if isinstance(clone.child, m.Group):
            return self.group(clone.child, parent, meta, suffix, params, layers)
        return self.primitive(clone.child, parent, meta, suffix, params, layers)


def _int_meta(meta: dict[str, str], names: tuple[str, ...], default: int) -> int:
    for name in names:
        if name in meta:
            try:
                return int(meta[name])
            except ValueError:
                return default
    return default


def limit_role(rsc: Rsc) -> None:
    """``target-role`` Stopped or Unpromoted caps the role a resource may reach."""
    goal = rsc.target_role
    if goal not in (Role.STOPPED, Role.UNPROMOTED):
        return
    if goal == Role.UNPROMOTED and rsc.clone_parent() is None:
        return
    if rsc.next_role == Role.UNKNOWN or goal < rsc.next_role:
        rsc.next_role = goal


def apply_meta(ws: WorkingSet, rsc: Rsc) -> None:
    """Derive scheduling settings from a resource's effective meta attributes."""
    meta = rsc.meta
    rsc.managed = is_true(meta.get("is-managed"), True) and not ws.config.maintenance_mode
    if is_true(meta.get("maintenance")):
        rsc.managed = False
    rsc.priority = parse_int_score(meta.get("priority"), 0)
    stickiness = meta.get("resource-stickiness", meta.get("resource_stickiness"))
    if stickiness is None:
        stickiness = ws.config.properties.get("default-resource-stickiness")
    rsc.stickiness = parse_int_score(stickiness, 0)
    threshold = meta.get("migration-threshold")
    rsc.migration_threshold = parse_int_score(threshold, INFINITY) if threshold is not None else INFINITY
    rsc.failure_timeout = parse_interval_s(meta.get("failure-timeout"))
    rsc.allow_migrate = is_true(meta.get("allow-migrate"))
    rsc.multiple_active = meta.get("multiple-active", "stop_start").lower()
    rsc.target_role = parse_role(meta.get("target-role"))
    limit_role(rsc)
    requires = meta.get("requires")
    if requires is None:
        rsc.requires_fencing = ws.config.stonith_enabled and rsc.klass != "stonith"
    else:
        rsc.requires_fencing = requires.lower() in ("fencing", "unfencing") and ws.config.stonith_enabled


def unpack_resources(ws: WorkingSet) -> None:
    builder = _Builder(ws)
    guests: list[tuple[m.Primitive, Rsc, str]] = []
    for res in ws.cib.configuration.resources:
        rsc = builder.build(res)
        if rsc is not None:
            ws.resources.append(rsc)
            if isinstance(res, m.Primitive):
                name = guest_name(res)
                if name is not None and name not in ws.by_id:
                    guests.append((res, rsc, name))
    # a guest node's connection is an implicit resource, after every configured one
    for res, container, name in guests:
        conn = builder.primitive(guest_connection(res, name), None, {}, "")
        conn.container = container
        ws.resources.append(conn)
    _link_fillers(ws)


def _link_fillers(ws: WorkingSet) -> None:
    """``container`` meta: the resource runs inside another one, with it and after it."""
    guest_hosts = {id(top.container) for top in ws.resources if top.container is not None}
    for top in ws.resources:
        for prim in top.primitives():
            name = prim.meta.get("container")
            host = ws.by_id.get(name) if name else None
            if host is None or host is prim or prim.container is not None or prim.agent == REMOTE_AGENT:
                continue
            # (inside a VM that hosts a guest node, a resource simply runs on that guest: not covered here)
            if host.kind == "primitive" and host.agent != REMOTE_AGENT and id(host) not in guest_hosts:
                prim.container = host
    # As Pacemaker: a cluster whose nodes self-fence through a watchdog (have-watchdog) can fence too.
    ws.config.have_stonith_resource = any(
        r.klass == "stonith" for top in ws.resources for r in top.primitives()
    ) or is_true(ws.config.properties.get("have-watchdog"), False)


# --- status: resource history --------------------------------------------------------------------------


def _op_target_rc(op: m.OpRecord) -> int:
    key = op.transition_key
    if key is None and op.transition_magic and ";" in op.transition_magic:
        key = op.transition_magic.split(";", 1)[1]
    if key:
        parts = key.split(":")
        if len(parts) >= 3:
            try:
                return int(parts[2])
            except ValueError:
                return -1
    return -1


def _is_probe(op: m.OpRecord) -> bool:
    return op.operation == "monitor" and op.interval == 0


def _base_name(rsc_id: str) -> str:
    return rsc_id.rsplit(":", 1)[0] if ":" in rsc_id else rsc_id


class HistoryUnpacker:
    """Reads one node's ``lrm_resource`` entries into resource state, as Pacemaker's unpacker does."""

    def __init__(self, ws: WorkingSet) -> None:
        self.ws = ws
        self.migrations = MigrationHistory(ws.cib, ws.nodes)

    def unpack_node(self, node: NodeInfo, state: m.NodeState) -> None:
        for hist in state.resources:
            ops = [op for op in hist.ops if op.operation not in ("notify", "meta-data")]
            if not hist.ops:
                continue
            rsc = self.find_resource(node, hist)
            if rsc is None:
                rsc = self.orphan(hist)
            ordered = sorted(ops, key=_call_order)
            rsc.history.append(NodeHistory(node, hist, ordered))
            self.unpack_resource(rsc, node, ordered)

    # which resource a history entry belongs to
    def find_resource(self, node: NodeInfo, hist: m.ResourceHistory) -> Rsc | None:
        rsc = self.ws.by_id.get(hist.id)
        parent: Rsc | None = None
        if rsc is None:
            zero = self.ws.by_id.get(_base_name(hist.id) + ":0")
            if zero is not None and zero.clone_parent() is not None and not _clone_of(zero).unique:
                rsc = zero
                parent = _clone_of(zero)
        elif rsc.kind != "primitive":
            return None
        else:
            parent = rsc.clone_parent()
        if parent is not None and not parent.unique:
            rsc = self.find_anonymous_instance(node, parent, _base_name(hist.id))
        if rsc is not None and rsc.id != hist.id:
            rsc.history_name = hist.id
        return rsc

    def find_anonymous_instance(self, node: NodeInfo, clone: Rsc, base: str) -> Rsc:
        found: Rsc | None = None
        inactive: Rsc | None = None
        skip_inactive = False
        for child in clone.children:
            locations = {n.name for p in child.primitives() for n in p.running_on}
            locations |= {p.pending_node for p in child.primitives() if p.pending_node}
            if locations:
                if node.name in locations:
                    member = _member_named(child, base)
                    if member is not None:
                        if member.running_on:
                            skip_inactive = True
                        else:
                            found = member
                            break
            elif not skip_inactive and inactive is None and not child.blocked:
                member = _member_named(child, base)
                if member is not None and (member.pending_node is None or member.pending_node == node.name):
                    inactive = member
        if found is None and not skip_inactive:
            found = inactive
        if found is not None and not found.requires_fencing and (not node.online or node.unclean):
            found = None
        if found is None:
            found = self.anonymous_orphan(clone, base)
        return found

    def anonymous_orphan(self, clone: Rsc, base: str) -> Rsc:
        template = clone.children[0]
        member = _member_named(template, base) or template
        index = len(clone.children)
        rsc = Rsc(id=f"{base}:{index}", kind="primitive", parent=clone, meta=dict(member.meta))
        rsc.klass, rsc.agent, rsc.ops, rsc.params = member.klass, member.agent, member.ops, member.params
        rsc.param_layers = member.param_layers
        apply_meta(self.ws, rsc)
        rsc.orphan = True
        rsc.managed = member.managed and self.ws.config.stop_orphan_resources
        clone.children.append(rsc)
        self.ws.by_id[rsc.id] = rsc
        return rsc

    def orphan(self, hist: m.ResourceHistory) -> Rsc:
        agent = ":".join(p for p in (hist.klass, hist.provider or "", hist.type) if p)
        rsc = Rsc(id=hist.id, kind="primitive", meta=dict(self.ws.rsc_defaults))
        rsc.klass = hist.klass
        rsc.agent = agent
        apply_meta(self.ws, rsc)
        rsc.orphan = True
        if not self.ws.config.stop_orphan_resources:
            rsc.managed = False
        self.ws.resources.append(rsc)
        self.ws.by_id[rsc.id] = rsc
        return rsc

    # the history of one resource on one node
    def unpack_resource(self, rsc: Rsc, node: NodeInfo, ops: list[m.OpRecord]) -> None:
        saved_role = rsc.role
        rsc.role = Role.UNKNOWN
        track = _Track()
        for op in ops:
            self.unpack_op(rsc, node, op, track)
        self.process_state(rsc, node, track)
        limit_role(rsc)
        if saved_role > rsc.role:
            rsc.role = saved_role

    def on_fail_for(self, rsc: Rsc, op: m.OpRecord) -> str:
        for opdef in rsc.ops:
            if opdef.name == op.operation and opdef.interval_ms == op.interval and opdef.on_fail:
                return opdef.on_fail.lower()
        if rsc.agent == REMOTE_AGENT and op.operation != "start" and not _is_probe(op):
            # losing an active connection to a remote node means that node must be fenced
            return "reset-remote" if rsc.managed else "stop"
        if rsc.container is not None and rsc.agent != REMOTE_AGENT:
            return "restart-container"  # a filler's failure is repaired by restarting its container
        default = self.ws.op_defaults.get("on-fail")
        if op.operation == "stop":
            if default:
                return default.lower()
            return "fence" if self.ws.config.stonith_enabled else "block"
        if default:
            return default.lower()
        return "restart"

    def expired(self, rsc: Rsc, node: NodeInfo, op: m.OpRecord, rc: int, target: int) -> bool:
        if rsc.failure_timeout <= 0 or op.last_rc_change is None:
            return False
        if op.last_rc_change + rsc.failure_timeout > self.ws.now:
            return False
        count, last = self.ws.failcounts.get((rsc.id, node.name), (0, 0))
        if count > 0 and last + rsc.failure_timeout > self.ws.now:
            return False  # a newer failure is still counting
        return rc != target

    def unpack_op(self, rsc: Rsc, node: NodeInfo, op: m.OpRecord, track: _Track) -> None:
        task = op.operation
        rc = op.rc
        status = op.op_status
        target = _op_target_rc(op)
        probe = _is_probe(op)
        parent = rsc if rsc.unique or rsc.parent is None else rsc.top()
        expired = status != ST_NOT_INSTALLED and self.expired(rsc, node, op, rc, target)
        if task == "monitor":
            rc = {RC_DEGRADED: RC_OK, RC_DEGRADED_PROMOTED: RC_PROMOTED}.get(rc, rc)
        masked = probe and (rc in (RC_NOT_INSTALLED, RC_ERR_ARGS) or status == ST_NOT_INSTALLED)
        if masked:
            status, rc = ST_DONE, RC_NOT_RUNNING
        elif status in (ST_DONE, ST_ERROR):
            status, rc = self.remap(rsc, node, op, rc, target, track)
        if expired and masked:
            if rsc.role <= Role.STOPPED:
                rsc.role = Role.UNKNOWN
            return
        if expired and rc != target and op.interval == 0:
            return
        if expired and rc != target and node.online and not node.unclean:
            return
        if masked:
            self.update_state(rsc, node, op, task, RC_NOT_RUNNING if target < 0 else target, track)
            ban(parent, node.name, -INFINITY)
            return
        if status == ST_CANCELLED:
            return
        if status == ST_PENDING:
            if task == "start":
                rsc.start_pending = True
                self.set_active(rsc)
            elif task == "promote":
                rsc.role = Role.PROMOTED
            if rsc.pending_node is None and (op.interval != 0 or task != "monitor"):
                rsc.pending_node = node.name
            return
        if status == ST_DONE:
            self.update_state(rsc, node, op, task, rc, track)
            return
        if status == ST_NOT_INSTALLED:
            strategy = self.on_fail_for(rsc, op)
            if strategy == "ignore":
                track.on_fail = "migrate"
            ban(parent, node.name, -INFINITY)
            self.op_failure(rsc, node, op, rc, track)
            return
        if status in (ST_NO_FENCE_DEVICE, ST_NO_SECRETS):
            status = ST_ERROR_HARD
        strategy = self.on_fail_for(rsc, op)
        if strategy == "ignore" or (strategy == "restart-container" and task == "stop"):
            self.update_state(rsc, node, op, task, target, track)
            return
        self.op_failure(rsc, node, op, rc, track)
        if status == ST_ERROR_HARD:
            ban(parent, node.name, -INFINITY)
        elif status == ST_ERROR_FATAL:
            for name in self.ws.nodes:
                ban(parent, name, -INFINITY)

    def remap(
        self, rsc: Rsc, node: NodeInfo, op: m.OpRecord, rc: int, target: int, track: _Track
    ) -> tuple[int, int]:
        status = ST_DONE
        probe = _is_probe(op)
        if target < 0 or target != rc:
            status = ST_ERROR
        if rc == RC_OK:
            if probe and target == RC_NOT_RUNNING:
                status = ST_DONE
        elif rc == RC_NOT_RUNNING:
            if probe or target == rc or not rsc.managed:
                status = ST_DONE
                rsc.role = Role.STOPPED
                track.on_fail = "ignore"
                rsc.next_role = Role.UNKNOWN
        elif rc == RC_PROMOTED:
            if probe and rc != target:
                status = ST_DONE
            rsc.role = Role.PROMOTED
        elif rc == RC_FAILED_PROMOTED:
            rsc.role = Role.PROMOTED
            status = ST_ERROR
        elif rc == RC_NOT_CONFIGURED:
            status = ST_ERROR_FATAL
        elif rc == RC_UNIMPLEMENTED:
            if op.interval == 0:
                self.check_recoverable(rsc, node, op.operation)
                status = ST_ERROR_HARD
            else:
                status = ST_NOT_SUPPORTED
        elif rc in (RC_NOT_INSTALLED, RC_ERR_ARGS, RC_PERM):
            self.check_recoverable(rsc, node, op.operation)
            status = ST_ERROR_HARD
        elif status == ST_DONE:
            status = ST_ERROR
        return status, rc

    def check_recoverable(self, rsc: Rsc, node: NodeInfo, task: str) -> None:
        if task != "stop":
            return
        if self.ws.config.stonith_enabled:
            return
        rsc.managed = False
        rsc.blocked = True

    def set_active(self, rsc: Rsc) -> None:
        clone = rsc.clone_parent()
        rsc.role = Role.UNPROMOTED if clone is not None and clone.promotable else Role.STARTED

    def update_state(
        self, rsc: Rsc, node: NodeInfo, op: m.OpRecord, task: str, rc: int, track: _Track
    ) -> None:
        clear = False
        if rc == RC_NOT_INSTALLED:
            rsc.role = Role.STOPPED
        elif rc == RC_NOT_RUNNING:
            clear = True
        elif task == "monitor":
            if track.last_failure is not None and _op_key(track.last_failure) == _op_key(op):
                clear = True
            if rsc.role < Role.STARTED:
                self.set_active(rsc)
        elif task == "start":
            rsc.role = Role.STARTED
            clear = True
        elif task == "stop":
            rsc.role = Role.STOPPED
            clear = True
        elif task == "promote":
            rsc.role = Role.PROMOTED
            clear = True
        elif task == "demote":
            if track.on_fail == "demote":
                clear = True
            rsc.role = Role.UNPROMOTED
        elif task == "migrate_from":
            rsc.role = Role.STARTED
            clear = True
        elif task == "migrate_to":
            self.migrations.migrate_to_done(rsc, rsc.history_name or rsc.id, node, op)
        elif rsc.role < Role.STARTED:
            self.set_active(rsc)
        # with a reconnect interval a connection failure stays until it expires, even after a stop
        cleared: tuple[str, ...] = ("block", "ignore", "demote", "restart", "restart-container")
        if rsc.reconnect_s == 0:
            cleared += ("reset-remote",)
        if clear and track.on_fail in cleared:
            track.on_fail = "ignore"
            rsc.next_role = Role.UNKNOWN

    def op_failure(self, rsc: Rsc, node: NodeInfo, op: m.OpRecord, rc: int, track: _Track) -> None:
        track.last_failure = op
        strategy = self.on_fail_for(rsc, op)
        if ON_FAIL_RANK.get(strategy, 2) > ON_FAIL_RANK.get(track.on_fail, 0):
            track.on_fail = strategy
        task = op.operation
        if task == "stop":
            ban(rsc, node.name, -INFINITY)
        elif task == "promote":
            rsc.role = Role.PROMOTED
        elif task == "demote":
            if strategy == "block":
                rsc.role = Role.PROMOTED
                rsc.next_role = Role.STOPPED
            elif rc == RC_NOT_RUNNING:
                rsc.role = Role.STOPPED
            else:
                rsc.role = Role.UNPROMOTED
        elif task == "migrate_to":
            self.migrations.migrate_to_failed(rsc, rsc.history_name or rsc.id, node, op)
        elif task == "migrate_from":
            self.migrations.migrate_from_failed(rsc, rsc.history_name or rsc.id, node, op)
        if _is_probe(op) and rc == RC_NOT_INSTALLED:
            rsc.role = Role.STOPPED
        elif rsc.role < Role.STARTED:
            self.set_active(rsc)
        if strategy == "stop" and (rsc.next_role == Role.UNKNOWN or rsc.next_role > Role.STOPPED):
            rsc.next_role = Role.STOPPED
            rsc.next_role_reason = "failure"
            fail_rsc = rsc
            clone = rsc.clone_parent()
            if clone is not None and not clone.unique:
                fail_rsc = clone
            for name in self.ws.nodes:
                ban(fail_rsc, name, -INFINITY)

    def lost_reason(self, rsc: Rsc, node: NodeInfo) -> str:
        conn = self.ws.by_id.get(node.remote_rsc) if node.remote_rsc is not None else None
        if conn is not None and not conn.failed:
            # the fencing is called off if the connection can be re-established elsewhere
            node.unseen = True
            return (
                f"{rsc.id} is active there (fencing will be revoked if remote connection can be "
                "re-established elsewhere)"
            )
        return f"{rsc.id} is thought to be active there"

    def connection_failed(self, rsc: Rsc) -> None:
        """A remote connection failed: recover it, and fence its node unless that already happened."""
        rsc.failed = True
        rsc.stop_needed = True
        remote = self.ws.nodes.get(rsc.id)
        if remote is not None and remote.remote_rsc == rsc.id:
            remote.unseen = False  # a failed connection does not revoke the fencing
            if self.ws.config.stonith_enabled and not remote.remote_was_fenced:
                fence_node(self.ws, remote, "remote connection is unrecoverable")
        if rsc.reconnect_s > 0:
            rsc.next_role = Role.STOPPED  # stays down until the failure expires

    def process_state(self, rsc: Rsc, node: NodeInfo, track: _Track) -> None:
        if rsc.role != Role.UNKNOWN:
            rsc.known_on.add(node.name)
            walker = rsc.parent
            while walker is not None and not walker.unique:
                walker.known_on.add(node.name)
                walker = walker.parent
        active_on_lost_node = rsc.role > Role.STOPPED and not node.online and not node.maintenance
        guest = _is_guest(self.ws, node)
        if active_on_lost_node and rsc.managed and guest:
            # its guest is recovered, and so is it (whether or not fencing is enabled)
            rsc.failed = True
            rsc.stop_needed = True
            fence_node(self.ws, node, f"{rsc.id} is thought to be active there")
        elif active_on_lost_node and rsc.managed and self.ws.config.stonith_enabled:
            fence_node(self.ws, node, self.lost_reason(rsc, node))
        on_fail = track.on_fail
        if node.unclean:
            on_fail = "ignore"
        if on_fail == "demote":
            rsc.failed = True
        elif on_fail == "fence":
            fence_node(self.ws, node, f"{rsc.id} failed there")
        elif on_fail == "standby":
            node.standby = True
        elif on_fail == "block":
            rsc.managed = False
            rsc.blocked = True
        elif on_fail == "migrate":
            ban(rsc, node.name, -INFINITY)
        elif on_fail == "stop":
            rsc.next_role = Role.STOPPED
            rsc.next_role_reason = "on-fail=stop"
        elif on_fail == "reset-remote":
            self.connection_failed(rsc)
        elif on_fail == "restart-container" and rsc.container is not None:
            rsc.failed = True
            rsc.stop_needed = True
            rsc.container.restart_required = True
        elif on_fail in ("restart", "restart-container") and rsc.role not in (
            Role.STOPPED,
            Role.UNKNOWN,
        ):
            rsc.failed = True
            rsc.stop_needed = True
        if rsc.role not in (Role.STOPPED, Role.UNKNOWN):
            if node not in rsc.running_on:
                rsc.running_on.append(node)
                walker = rsc.parent
                while walker is not None:
                    if node not in walker.running_on:
                        walker.running_on.append(node)
                    walker = walker.parent
            if on_fail in ("ignore",):
                pass
            elif on_fail in ("demote", "block"):
                rsc.failed = True
            else:
                rsc.failed = True
                rsc.stop_needed = True


def _is_guest(ws: WorkingSet, node: NodeInfo) -> bool:
    conn = ws.by_id.get(node.remote_rsc) if node.remote_rsc is not None else None
    return conn is not None and conn.container is not None


class _Track:
    """Per (resource, node) bookkeeping while walking the history."""

    def __init__(self) -> None:
        self.on_fail = "ignore"
        self.last_failure: m.OpRecord | None = None


def _op_key(op: m.OpRecord) -> str:
    return op.operation_key or f"{op.operation}_{op.interval}"


def _call_order(op: m.OpRecord) -> tuple[int, int]:
    if op.call_id < 0:
        return (1, 0)
    return (0, op.call_id)


def _clone_of(rsc: Rsc) -> Rsc:
    clone = rsc.clone_parent()
    assert clone is not None
    return clone


def _member_named(instance: Rsc, base: str) -> Rsc | None:
    for prim in instance.primitives():
        if _base_name(prim.id) == base:
            return prim
    return None


def ban(rsc: Rsc, node: str, score: int) -> None:
    """Add a location score for a resource (and, for collectives, every descendant)."""
    from hakeeper.policy.working import add_scores

    rsc.allowed[node] = add_scores(rsc.allowed.get(node, 0), score) if node in rsc.allowed else score
    for child in rsc.children:
        ban(child, node, score)


# --- fail counts ---------------------------------------------------------------------------------------


def unpack_failcounts(ws: WorkingSet) -> None:
    """Collect ``fail-count-<rsc>[#op_interval]`` and ``last-failure-*`` attributes per (resource, node)."""
    for node in ws.nodes.values():
        counts: dict[str, int] = {}
        lasts: dict[str, int] = {}
        for name, value in node.attrs.items():
            if name.startswith("fail-count-"):
                rsc_id = name[len("fail-count-") :].split("#", 1)[0]
                from hakeeper.policy.working import add_scores

                counts[rsc_id] = add_scores(counts.get(rsc_id, 0), parse_int_score(value, 0))
            elif name.startswith("last-failure-"):
                rsc_id = name[len("last-failure-") :].split("#", 1)[0]
                try:
                    lasts[rsc_id] = max(lasts.get(rsc_id, 0), int(value))
                except ValueError:
                    continue
        for rsc_id, count in counts.items():
            ws.failcounts[(rsc_id, node.name)] = (count, lasts.get(rsc_id, 0))


# --- entry point -----------------------------------------------------------------------------------------


def unpack(cib: m.Cib, now: int) -> WorkingSet:
    ctx = RuleContext(now=now)
    cfg = unpack_config(cib, ctx)
    nodes = unpack_nodes(cib, cfg, ctx)
    add_remote_nodes(cib, nodes)
    ws = WorkingSet(config=cfg, nodes=nodes, resources=[], by_id={}, now=now, cib=cib, ctx=ctx)
    ws.rsc_defaults = resolve_sets(cib.configuration.rsc_defaults, ctx)
    ws.op_defaults = resolve_sets(cib.configuration.op_defaults, ctx)
    ws.tickets = {t.id: t for t in cib.status.tickets}
    unpack_resources(ws)
    for state in cib.status.nodes:
        unpack_node_state(ws, state)
    unpack_failcounts(ws)
    history = HistoryUnpacker(ws)
    # Without fencing (and shutdown locks) offline nodes' histories are not trusted at all.
    trust_offline = cfg.stonith_enabled or cfg.shutdown_lock
    for state in cib.status.nodes:
        node = _find_node(ws.nodes, state)
        if node is None or node.kind == "remote" or state.remote_node:
            continue
        if not trust_offline and not node.online:
            continue
        history.unpack_node(node, state)
    # remote nodes are up only while their connection runs: read their history once that is known
    set_remote_online(ws.nodes, ws.by_id)
    for state in cib.status.nodes:
        node = _find_node(ws.nodes, state)
        if node is not None and node.remote_rsc is not None and node.online:
            node.standby = is_true(node.attrs.get("standby"))
            node.maintenance = is_true(node.attrs.get("maintenance")) or bool(state.node_in_maintenance)
            history.unpack_node(node, state)
    # with fencing, what is recorded on a remote node that is down still counts (it may need fencing)
    if cfg.stonith_enabled:
        for state in cib.status.nodes:
            node = _find_node(ws.nodes, state)
            if node is not None and node.remote_rsc is not None and not node.online:
                history.unpack_node(node, state)
    return ws
