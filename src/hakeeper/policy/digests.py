"""Has a running resource's definition changed since it was started? (Pacemaker's operation digests.)

Every recorded operation carries an MD5 digest of the parameters it ran with (``op-digest``); agents that
can reload also record which parameters force a restart (``op-force-restart``) and a digest of just those
(``op-restart-digest``). Comparing them with the digest of today's parameters tells the scheduler whether
a resource must be restarted, can be reloaded, or is unchanged. When a history was written with secret
parameters masked (``op-secure-params``), a match of the digest without them counts as unchanged, as
crm_simulate does on such sanitized CIBs. A changed agent (class, provider or type) forces a restart too.
"""

from __future__ import annotations

import dataclasses
import hashlib

from hakeeper.cib import model as m
from hakeeper.cib.rules import RuleContext
from hakeeper.policy.attrs import resolve_sets
from hakeeper.policy.working import NodeHistory, NodeInfo, Rsc

RESTART, RELOAD, AGENT = "restart", "reload", "agent"

# operations whose parameters are those the resource was started with
_START_LIKE = ("start", "monitor", "promote", "migrate_from")
# fencing-device parameters older controllers left out of the secure digest
_FENCE_PARAMS = frozenset(
    {
        "provides",
        "stonith-timeout",
        "pcmk_action_limit",
        "pcmk_delay_base",
        "pcmk_delay_max",
        "pcmk_host_argument",
        "pcmk_host_check",
        "pcmk_host_list",
        "pcmk_host_map",
    }
)


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def params_digest(params: dict[str, str]) -> str:
    """The digest Pacemaker records: MD5 of one ``<parameters .../>`` element, attributes sorted by name."""
    attrs = "".join(f' {name}="{_escape(value)}"' for name, value in sorted(params.items()))
    return hashlib.md5(f" <parameters{attrs}/>\n".encode(), usedforsecurity=False).hexdigest()


def _listed(names: str | None) -> set[str]:
    """Pacemaker writes parameter lists as space-separated names (`` state passwd ``)."""
    return set((names or "").split())


def _is_fence_param(name: str) -> bool:
    if name in _FENCE_PARAMS:
        return True
    if not name.startswith("pcmk_"):
        return False
    rest = name[len("pcmk_") :]
    cut = rest.find("_")
    return cut >= 0 and rest[cut:] in ("_action", "_timeout", "_retries")


def _older_than(version: str | None, reference: tuple[int, ...]) -> bool:
    try:
        parts = tuple(int(p) for p in (version or "0").split("."))
    except ValueError:
        return True
    return parts < reference


def _op_params(rsc: Rsc, op: m.OpRecord) -> dict[str, str]:
    """Parameters configured on the operation itself (``<op><instance_attributes>``)."""
    return _configured_op_params(rsc, op.operation, op.interval)


def _configured_op_params(rsc: Rsc, task: str, interval_ms: int) -> dict[str, str]:
    for opdef in rsc.ops:
        if opdef.name == task and opdef.interval_ms == interval_ms:
            return opdef.params
    return {}


def params_on(rsc: Rsc, node: NodeInfo | None, ctx: RuleContext) -> dict[str, str]:
    """The resource's parameters on ``node``: rules in its attribute sets may read the node's attributes
    (a different address or interface per node), as Pacemaker resolves them per node."""
    if not rsc.param_layers or node is None:
        return rsc.params
    on_node = dataclasses.replace(ctx, node_attrs=node.attrs)
    params: dict[str, str] = {}
    for sets in rsc.param_layers:
        params.update(resolve_sets(sets, on_node))
    return params


def agent_params(
    rsc: Rsc, task: str, interval_ms: int, node: NodeInfo | None, ctx: RuleContext
) -> dict[str, str]:
    """What the agent gets for ``task`` on ``node``: the resource's parameters with the operation's own on
    top (the set whose digest a history records, and :func:`compare_op` checks)."""
    return {**params_on(rsc, node, ctx), **_configured_op_params(rsc, task, interval_ms)}


def _only_secrets_changed(rsc: Rsc, op: m.OpRecord, every: dict[str, str]) -> bool:
    if op.op_secure_digest is None:
        return False
    secrets = _listed(op.op_secure_params)
    old = _older_than(op.crm_feature_set, (3, 16, 0))
    base = rsc.params if old else every
    kept = {k: v for k, v in base.items() if k not in secrets}
    if old and rsc.klass == "stonith":
        kept = {k: v for k, v in kept.items() if not _is_fence_param(k)}
    return params_digest(kept) == op.op_secure_digest


def compare_op(rsc: Rsc, op: m.OpRecord, node: NodeInfo | None, ctx: RuleContext) -> str | None:
    """What a recorded one-off operation on ``node`` says about today's definition: restart, reload, or
    None."""
    extra = _op_params(rsc, op)
    every = agent_params(rsc, op.operation, op.interval, node, ctx)
    verdict: str | None = None
    if op.op_restart_digest is not None:
        # without a list of restart-forcing parameters, every parameter forces a restart
        restart_params = every
        if op.op_force_restart is not None:
            forcing = _listed(op.op_force_restart)
            restart_params = {k: v for k, v in every.items() if k in forcing}
        if params_digest(restart_params) != op.op_restart_digest:
            verdict = RESTART
    if verdict is None:
        if op.op_digest is None:
            # Pacemaker would restart; histories our controller wrote before it recorded digests have none,
            # and restarting every resource on an upgrade would be worse than missing one change
            verdict = None
        elif op.op_digest != params_digest(every):
            # parameters configured on the operation itself only take effect through a full restart
            verdict = RESTART if extra or op.op_restart_digest is None else RELOAD
    if verdict is not None and _only_secrets_changed(rsc, op, every):
        return None
    return verdict


def _active_since(ops: list[m.OpRecord]) -> int | None:
    """Index of the operation that last started the resource, or None if it was stopped since."""
    start = stop = implied_by_monitor = implied_by_role = -1
    for index, op in enumerate(ops):
        if op.operation == "stop" and op.op_status == 0:
            stop = index
        elif op.operation in ("start", "migrate_from"):
            start = index
        elif op.operation == "monitor" and implied_by_monitor <= stop and op.rc in (0, 8):
            implied_by_monitor = index
        elif op.operation in ("promote", "demote"):
            implied_by_role = index
    if start < 0:
        start = implied_by_role if implied_by_role >= 0 else implied_by_monitor
    if start < 0 or start < stop:
        return None
    return start


def _can_run(node: NodeInfo) -> bool:
    return node.online and not (node.unclean or node.shutdown or node.standby or node.maintenance)


def _check_history(rsc: Rsc, hist: NodeHistory, ctx: RuleContext) -> str | None:
    if rsc.klass and hist.agent != rsc.agent:
        return AGENT
    since = _active_since(hist.ops)
    if since is None:
        return None
    verdict: str | None = None
    for op in hist.ops[since:]:
        if op.interval != 0 or op.operation not in _START_LIKE:
            continue  # recurring monitors are only rescheduled: nothing an operator would see
        found = compare_op(rsc, op, hist.node, ctx)
        if found == RESTART:
            return RESTART
        verdict = verdict or found
    return verdict


def find_definition_changes(resources: list[Rsc], ctx: RuleContext) -> None:
    """Mark, per node, the active primitives whose definition changed since they were started there."""
    for rsc in resources:
        if rsc.orphan or not rsc.managed:
            continue
        for hist in rsc.history:
            node = hist.node
            if node not in rsc.running_on or not _can_run(node):
                continue
            verdict = _check_history(rsc, hist, ctx)
            if verdict is not None:
                rsc.definition_change[node.name] = verdict
