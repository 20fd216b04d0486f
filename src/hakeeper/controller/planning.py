"""From the policy engine's transition to the graph the controller executes.

The policy engine says *what* (start web on n2 after stopping it on n1); this adds what an executor needs to
do it: the agent, its parameters and meta-attributes resolved for that node, the operation's timeout and the
result that counts as success. ``plan_transition`` is a pure, picklable top-level function so the DC can run
it in a worker process, off the event loop that keeps heartbeats on time.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from hakeeper.cib import model as m
from hakeeper.cib.nvsets import cluster_properties, resolve_nvsets
from hakeeper.cib.rules import RuleContext
from hakeeper.cib.values import parse_duration_ms
from hakeeper.controller.graph import GraphAction, TransitionGraph
from hakeeper.lrm.messages import DEFAULT_TIMEOUT_MS
from hakeeper.policy.attrs import parse_interval_s
from hakeeper.policy.schedule import GraphAction as PolicyAction
from hakeeper.policy.schedule import schedule


@dataclass(frozen=True)
class _Placed:
    """A primitive as configured, with the clone or group around it (if any)."""

    primitive: m.Primitive
    clone: m.Clone | None
    group: m.Group | None


def _index(cfg: m.Configuration) -> dict[str, _Placed]:
    out: dict[str, _Placed] = {}

    def visit(r: m.Resource, clone: m.Clone | None, group: m.Group | None) -> None:
        if isinstance(r, m.Primitive):
            out[r.id] = _Placed(r, clone, group)
        elif isinstance(r, m.Group):
            for child in r.children:
                visit(child, clone, r)
        elif isinstance(r, m.Clone):
            visit(r.child, r, group)

    for r in cfg.resources:
        visit(r, None, None)
    return out


def _templates(cfg: m.Configuration) -> dict[str, m.Template]:
    return {t.id: t for t in cfg.templates}


def _agent(p: m.Primitive, templates: dict[str, m.Template]) -> str:
    t = templates.get(p.template or "")
    klass = p.klass or (t.klass if t else "")
    provider = p.provider or (t.provider if t else None)
    rtype = p.type or (t.type if t else "")
    return ":".join(x for x in (klass, provider, rtype) if x)


def _node_attrs(cib: m.Cib, node: str | None) -> dict[str, str]:
    attrs: dict[str, str] = {"#uname": node or ""}
    for n in cib.configuration.nodes:
        if n.uname == node:
            attrs.update(resolve_nvsets(n.instance_attributes, RuleContext(node_attrs=attrs)))
    for st in cib.status.nodes:
        if st.id == node or st.uname == node:
            for s in st.transient_attributes:
                attrs.update(s.values)
    return attrs


def _meta(cib: m.Cib, placed: _Placed, ctx: RuleContext) -> dict[str, str]:
    sets: list[m.NvSet] = list(placed.primitive.meta_attributes)
    if placed.group is not None:
        sets += placed.group.meta_attributes
    if placed.clone is not None:
        sets += placed.clone.meta_attributes
    meta = resolve_nvsets(cib.configuration.rsc_defaults, ctx)
    meta.update(resolve_nvsets(sets, ctx))
    return meta


def _timeout_ms(cib: m.Cib, p: m.Primitive, task: str, interval_ms: int, ctx: RuleContext) -> int:
    for op in p.operations:
        if op.name == task and op.interval == interval_ms and op.timeout is not None:
            return op.timeout
    defaults = resolve_nvsets(cib.configuration.op_defaults, ctx)
    try:
        return parse_duration_ms(defaults["timeout"]) if "timeout" in defaults else DEFAULT_TIMEOUT_MS
    except ValueError:
        return DEFAULT_TIMEOUT_MS


def _lrm_id(rsc: str, placed: _Placed, meta: dict[str, str]) -> str:
    # anonymous clone instances are one per node: the node's LRM knows them by the clone's primitive id
    unique = meta.get("globally-unique", "false").lower() in ("true", "yes", "1", "on")
    if placed.clone is not None and not unique:
        return rsc.split(":", 1)[0]
    return rsc


def _op_role(p: m.Primitive, task: str, interval_ms: int) -> str | None:
    for op in p.operations:
        if op.name == task and op.interval == interval_ms:
            return op.role
    return None


def _expected_rc(task: str, interval_ms: int, role: str | None) -> int:
    if task == "monitor" and interval_ms == 0:
        return 7
    if task == "monitor" and role in ("Promoted", "Master"):
        return 8
    return 0


def _convert(
    cib: m.Cib,
    action: PolicyAction,
    index: dict[str, _Placed],
    props: dict[str, str],
    policy_params: dict[str, str] | None,
) -> GraphAction:
    templates = _templates(cib.configuration)
    if action.task == "stonith":
        return GraphAction(
            id=action.id,
            kind="fence",
            task="stonith",
            node=action.node,
            fence_action=props.get("stonith-action", "reboot"),
            meta={"reason": action.reason or "the node is unclean"},
        )
    if action.pseudo or action.rsc is None or action.node is None:
        return GraphAction(id=action.id, kind="pseudo", task=action.task, rsc=action.rsc, node=action.node)
    placed = index.get(action.rsc.split(":", 1)[0]) or index.get(action.rsc)
    if placed is None:
        # an orphan (no longer configured): only stop is possible, with what its history says
        return GraphAction(id=action.id, kind="resource", task=action.task, rsc=action.rsc, node=action.node)
    ctx = RuleContext(node_attrs=_node_attrs(cib, action.node))
    meta = _meta(cib, placed, ctx)
    # the policy engine's parameters (group and clone ones inherited, the operation's on top) are the ones
    # whose digest the history records and the engine compares later: any other set would restart forever
    params = (
        policy_params
        if policy_params is not None
        else resolve_nvsets(placed.primitive.instance_attributes, ctx)
    )
    interval = action.interval_ms
    role = _op_role(placed.primitive, action.task, interval)
    if role:
        meta = {**meta, "role": role}
    return GraphAction(
        id=action.id,
        kind="resource",
        task=action.task,
        node=action.node,
        rsc=_lrm_id(action.rsc, placed, meta),
        agent=_agent(placed.primitive, templates),
        interval_ms=interval,
        timeout_ms=_timeout_ms(cib, placed.primitive, action.task, interval, ctx),
        params=params,
        meta=meta,
        expected_rc=_expected_rc(action.task, interval, role),
    )


@dataclass(frozen=True)
class _Failures:
    """A resource's fail counts on one node: when the last failure was, and its failure-timeout."""

    rsc: str
    node: str
    last_s: int
    timeout_s: int


def _failures(cib: m.Cib, index: dict[str, _Placed]) -> list[_Failures]:
    """Fail counts of resources that have a failure-timeout (as the policy engine reads it)."""
    out = []
    for state in cib.status.nodes:
        node = state.uname or state.id
        attrs = {k: v for s in state.transient_attributes for k, v in s.values.items()}
        last: dict[str, int] = {}
        for name, value in attrs.items():
            if name.startswith("fail-count-") and value not in ("0", ""):
                rsc = name.removeprefix("fail-count-").split("#", 1)[0].split(":", 1)[0]
                last.setdefault(rsc, 0)
            elif name.startswith("last-failure-") and value.isdigit():
                rsc = name.removeprefix("last-failure-").split("#", 1)[0].split(":", 1)[0]
                last[rsc] = max(last.get(rsc, 0), int(value))
        for rsc, when in sorted(last.items()):
            placed = index.get(rsc)
            if placed is None:
                continue
            meta = _meta(cib, placed, RuleContext(node_attrs=_node_attrs(cib, node)))
            timeout = parse_interval_s(meta.get("failure-timeout"))
            if timeout > 0:
                out.append(_Failures(rsc, node, when, timeout))
    return out


def _expiry(
    cib: m.Cib, now_s: int, index: dict[str, _Placed], first_id: int
) -> tuple[list[GraphAction], int | None]:
    """``clear_failcount`` actions for fail counts past their failure-timeout, and when the next expires.

    The policy engine already ignores expired failures; clearing them makes the CIB (and so status, the
    API and the next plans) say so too, as Pacemaker does. Without the recheck time the DC would only notice
    an expiry at the next unrelated change.
    """
    actions: list[GraphAction] = []
    upcoming: list[int] = []
    for f in _failures(cib, index):
        expires = f.last_s + f.timeout_s
        if expires <= now_s:
            actions.append(
                GraphAction(
                    id=first_id + len(actions), kind="cluster", task="clear_failcount", rsc=f.rsc, node=f.node
                )
            )
        else:
            upcoming.append(expires)
    return actions, min(upcoming, default=None)


def plan_transition(cib: m.Cib, now_s: int, transition_id: int) -> TransitionGraph:
    """Run the policy engine and return the executable graph (unrunnable actions left out), with the
    fail counts whose failure-timeout has passed cleared and the time the next one expires."""
    transition = schedule(cib, now_s)
    props = cluster_properties(cib.configuration.properties, now_s)
    index = _index(cib.configuration)
    runnable = {a.id for a in transition.actions if a.runnable}
    inputs: dict[int, list[int]] = {i: [] for i in runnable}
    for edge in transition.edges:
        if edge.first in runnable and edge.then in runnable:
            inputs[edge.then].append(edge.first)
    actions = []
    for a in transition.actions:
        if a.id not in runnable:
            continue
        g = _convert(cib, a, index, props, transition.agent_params.get(a.id))
        actions.append(msgspec.structs.replace(g, inputs=sorted(set(inputs[a.id]))))
    first_id = max((a.id for a in transition.actions), default=0) + 1
    clears, recheck = _expiry(cib, now_s, index, first_id)
    return TransitionGraph(
        id=transition_id, actions=actions + clears, cib_version=cib.version, recheck_at_s=recheck
    )
