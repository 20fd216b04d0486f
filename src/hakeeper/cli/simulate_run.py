"""``hakeeper simulate --run``: carry out the transition on paper and show the cluster afterwards.

The transition is planned exactly as the DC plans it (``controller.planning.plan_transition``) and its actions
are "executed" in dependency order: each succeeds with the result the DC expects, unless a ``--run-fail``
spec names it, and every result is written into the status section through ``controller.history`` as the DC
records a node's report. A failed action stops what depends on it, as an aborted transition would. Fencing
marks the node cleanly down with its history wiped, as a confirmed fence does.

The status view (``status_lines``) follows crm_simulate's "Current cluster status" layout, read from the
policy engine's own view of the CIB, so what it shows is what the scheduler believes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from hakeeper.cib import model as m
from hakeeper.cib.patch import Patch, PatchError, apply
from hakeeper.cli.simulate_inject import (
    InjectionError,
    OpSpec,
    next_call_id,
    node_down,
)
from hakeeper.controller.graph import GraphAction, TransitionGraph
from hakeeper.controller.history import Expectation, record_result, start_failure_is_fatal
from hakeeper.controller.planning import plan_transition
from hakeeper.lrm.messages import OpResult, OpStatus
from hakeeper.policy.unpack import WorkingSet, unpack
from hakeeper.policy.working import NodeInfo, Role, Rsc

SIMULATED_TRANSITION = 1
SIMULATED_UUID = "hakeeper-simulate"


class RunError(ValueError):
    """The transition could not be carried out on paper; the message says why."""


@dataclass
class RunResult:
    """The CIB after the transition, and one line per action carried out (crm_simulate's wording)."""

    cib: m.Cib
    lines: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


# --- running the graph ------------------------------------------------------------------------------------


def _matches(spec: OpSpec, action: GraphAction) -> bool:
    names = {action.rsc or "", (action.rsc or "").split(":", 1)[0]}
    return (
        spec.rsc in names
        and spec.operation == action.task
        and spec.interval_ms == action.interval_ms
        and spec.node == action.node
    )


def _node_id(cib: m.Cib, name: str) -> str:
    node = next((n for n in cib.configuration.nodes if n.uname == name), None)
    return node.id if node is not None else name


def _ensure_state(cib: m.Cib, node_id: str, name: str) -> m.Cib:
    if any(s.id == node_id for s in cib.status.nodes):
        return cib
    states = [*cib.status.nodes, m.NodeState(id=node_id, uname=name)]
    return msgspec.structs.replace(cib, status=msgspec.structs.replace(cib.status, nodes=states))


def _history_id(cib: m.Cib, node_id: str, rsc: str) -> str:
    """The name the node's history knows a resource by: older CIBs record anonymous clone instances with
    their number (``ocfs:0``), and a result must update that entry rather than start a second one."""
    state = next((s for s in cib.status.nodes if s.id == node_id), None)
    names = [h.id for h in (state.resources if state else []) if h.id.split(":", 1)[0] == rsc]
    if rsc in names or len(names) != 1:
        return rsc
    return names[0]


def _record(cib: m.Cib, action: GraphAction, rc: int, now: int) -> m.Cib:
    """Write an action's result into the status section as the DC records a node's report."""
    assert action.node is not None and action.rsc is not None
    node_id = _node_id(cib, action.node)
    cib = _ensure_state(cib, node_id, action.node)
    task = action.task
    if task == "migrate_from":
        task = "start"  # the resource now runs on the target: recorded as the start it amounts to
    result = OpResult(
        resource_id=_history_id(cib, node_id, action.rsc),
        agent=action.agent or "ocf:heartbeat:Unknown",  # an orphan's history entry already exists
        operation=task,
        interval_ms=action.interval_ms,
        call_id=next_call_id(cib, node_id),
        rc=rc,
        op_status=OpStatus.DONE,
        last_run=float(now),
        last_rc_change=float(now),
    )
    exp = Expectation(action.id, SIMULATED_TRANSITION, action.expected_rc, SIMULATED_UUID)
    fatal = start_failure_is_fatal(cib, now)
    ops = record_result(cib.status, node_id, result, exp, now=now, start_failure_is_fatal=fatal)
    try:
        return apply(cib, Patch(ops=ops))
    except PatchError as err:
        raise RunError(f"cannot record {action.describe()}: {err}") from err


def _fence(cib: m.Cib, action: GraphAction, now: int) -> m.Cib:
    """A confirmed fence: the node is down, runs nothing, and the fencing history says so."""
    assert action.node is not None
    try:
        cib = node_down(cib, action.node)
    except InjectionError as err:
        raise RunError(f"cannot fence {action.node}: {err}") from err
    event = m.FenceEvent(
        target=action.node,
        action=action.fence_action or "reboot",
        state="done",
        origin="hakeeper-simulate",
        requested=now,
        completed=now,
        reason=action.meta.get("reason"),
    )
    history = [*cib.status.fencing_history, event]
    return msgspec.structs.replace(cib, status=msgspec.structs.replace(cib.status, fencing_history=history))


def _line(action: GraphAction, rc: int | None) -> str:
    if action.kind == "fence":
        return f"* Fencing {action.node} ({action.fence_action or 'reboot'})"
    if action.kind == "pseudo":
        name = f"{action.rsc}_{action.task}_0" if action.rsc else action.task
        return f"* Pseudo action:   {name}"
    if action.kind == "cluster":
        what = f"{action.task} for {action.rsc}" if action.rsc else action.task
        return f"* Cluster action:  {what} on {action.node}"
    task = action.task if action.interval_ms == 0 else f"{action.task}={action.interval_ms}"
    tail = f" (fails with rc={rc})" if rc is not None and rc != action.expected_rc else ""
    return f"* Resource action: {action.rsc or '':<15} {task} on {action.node}{tail}"


def _ready(graph: TransitionGraph, done: set[int], failed: set[int]) -> list[GraphAction]:
    return [a for a in graph.actions if a.id not in done and a.id not in failed and set(a.inputs) <= done]


def run_transition(cib: m.Cib, now: int, failures: tuple[OpSpec, ...] = ()) -> RunResult:
    """Plan ``cib`` as the DC would, carry every action out in order, and return the CIB afterwards."""
    graph = plan_transition(cib, now, SIMULATED_TRANSITION)
    result = RunResult(cib)
    done: set[int] = set()
    failed: set[int] = set()
    while ready := _ready(graph, done, failed):
        for action in sorted(ready, key=lambda a: a.id):
            ok = _execute(result, action, failures, now)
            (done if ok else failed).add(action.id)
    skipped = [a for a in graph.actions if a.id not in done and a.id not in failed]
    result.failed += [f"{a.describe()} was not run: an action it waits for failed" for a in skipped]
    return result


def _execute(result: RunResult, action: GraphAction, failures: tuple[OpSpec, ...], now: int) -> bool:
    if action.kind == "fence":
        result.cib = _fence(result.cib, action, now)
        result.lines.append(_line(action, None))
        return True
    if action.kind != "resource" or action.rsc is None or action.node is None:
        result.lines.append(_line(action, None))
        return True
    spec = next((s for s in failures if _matches(s, action)), None)
    rc = spec.rc if spec is not None else action.expected_rc
    result.lines.append(_line(action, rc))
    if action.task not in ("notify", "migrate_to"):  # neither leaves its own trace in the history
        result.cib = _record(result.cib, action, rc, now)
    if rc != action.expected_rc:
        result.failed.append(f"{action.describe()} failed with rc={rc}")
        return False
    return True


# --- the status view --------------------------------------------------------------------------------------


def _node_lines(ws: WorkingSet) -> list[str]:
    online: list[str] = []
    offline: list[str] = []
    special: list[str] = []
    for node in sorted(ws.nodes.values(), key=lambda n: n.name):
        if node.unclean:
            special.append(f"* Node {node.name}: UNCLEAN ({'online' if node.online else 'offline'})")
        elif not node.online:
            offline.append(node.name)
        elif node.pending:
            special.append(f"* Node {node.name}: pending")
        elif node.standby:
            busy = " (with active resources)" if _runs_anything(ws, node) else ""
            special.append(f"* Node {node.name}: standby{busy}")
        elif node.maintenance:
            special.append(f"* Node {node.name}: maintenance")
        else:
            online.append(node.name)
    out = ["* Node List:", *(f"  {line}" for line in special)]
    if online:
        out.append(f"  * Online: [ {' '.join(online)} ]")
    if offline:
        out.append(f"  * OFFLINE: [ {' '.join(offline)} ]")
    return out


def _runs_anything(ws: WorkingSet, node: NodeInfo) -> bool:
    return any(node in p.running_on for top in ws.resources for p in top.primitives())


def _agent(rsc: Rsc) -> str:
    if rsc.klass == "stonith":
        return f"stonith:{rsc.agent.split(':')[-1]}"
    return rsc.agent if ":" in rsc.agent else f"{rsc.klass}:{rsc.agent}"


def _role(rsc: Rsc) -> str:
    if rsc.failed:
        return "FAILED"
    clone = rsc.clone_parent()
    if rsc.role <= Role.STARTED and clone is not None and clone.promotable:
        return "Unpromoted"  # a running instance of a promotable clone is unpromoted until promoted
    return rsc.role.text if rsc.role > Role.STOPPED else "Started"


def _state(rsc: Rsc) -> str:
    disabled = " (disabled)" if rsc.target_role == Role.STOPPED else ""
    if not rsc.running_on:
        state = f"Stopped{disabled}"
    else:
        role = "Starting" if rsc.start_pending and not rsc.failed else _role(rsc)
        state = f"{role} {' '.join(n.name for n in rsc.running_on)}"
        if any(n.unclean and not n.online for n in rsc.running_on):
            state += " (UNCLEAN)"
        state += disabled
    if rsc.blocked:
        state += " (blocked)"
    elif not rsc.managed:
        state += " (unmanaged)"
    return f"ORPHANED {state}" if rsc.orphan else state


def _primitive_line(rsc: Rsc, name: str | None = None) -> str:
    return f"* {name or rsc.id}\t({_agent(rsc)}):\t {_state(rsc)}"


def _disabled(rsc: Rsc) -> str:
    """The flags crm_mon adds to a group's or clone's heading."""
    flags = " (disabled)" if rsc.target_role == Role.STOPPED else ""
    return flags + (" (unmanaged)" if not rsc.managed else "")


def _group_lines(group: Rsc) -> list[str]:
    members = [f"  {_primitive_line(p)}" for p in group.children]
    return [f"* Resource Group: {group.id}{_disabled(group)}:", *members]


def _clone_lines(ws: WorkingSet, clone: Rsc) -> list[str]:
    child = clone.children[0].id.rsplit(":", 1)[0] if clone.children else clone.id
    flags = [f for f, on in (("promotable", clone.promotable), ("unique", clone.unique)) if on]
    kind = f" ({', '.join(flags)})" if flags else ""
    out = [f"* Clone Set: {clone.id} [{child}]{kind}{_disabled(clone)}:"]
    if clone.unique:
        return out + [f"  {_primitive_line(p)}" for p in clone.primitives() if not p.orphan or p.running_on]
    return out + [f"  {line}" for line in _anonymous_instances(ws, clone)]


def _unusual(prim: Rsc) -> bool:
    """An instance crm_mon lists on its own line instead of in the ``Started: [ ... ]`` summary."""
    return prim.failed or prim.orphan or not prim.managed or any(n.unclean for n in prim.running_on)


def _instance_group(inst: Rsc) -> list[str]:
    members = [f"  {_primitive_line(p, p.id.rsplit(':', 1)[0])}" for p in inst.children]
    return [f"* Resource Group: {inst.id}:", *members]


def _anonymous_instances(ws: WorkingSet, clone: Rsc) -> list[str]:
    """Healthy instances summarised by role (``Started: [ n1 n2 ]``); failed, orphaned or partly active
    ones one by one."""
    by_role: dict[str, list[str]] = {}
    single: list[str] = []
    active: set[str] = set()
    running = 0
    for inst in clone.children:
        prims = inst.primitives()
        if not prims or not any(p.running_on for p in prims):
            continue
        first = next(p for p in prims if p.running_on)
        running += 1
        active.update(n.name for n in first.running_on)
        if inst.kind == "group" and any(not p.running_on or _unusual(p) for p in prims):
            single.extend(_instance_group(inst))
            continue
        if _unusual(first):
            single.append(_primitive_line(first, first.id.rsplit(":", 1)[0]))
            continue
        for node in first.running_on:
            by_role.setdefault(_role(first), []).append(node.name)
    out = [
        f"* {role}: [ {' '.join(sorted(by_role[role]))} ]"
        for role in ("Promoted", "Unpromoted", "Started")
        if role in by_role
    ]
    out += single
    stopped = sorted(n for n in ws.nodes if n not in active)
    if stopped and running < clone.clone_max:
        label = "Stopped" + (" (disabled)" if clone.target_role == Role.STOPPED else "")
        out.append(f"* {label}: [ {' '.join(stopped)} ]")
    return out


def status_lines(cib: m.Cib, now: int) -> list[str]:
    """The cluster as the policy engine reads it: nodes by state, then every resource and where it runs."""
    ws = unpack(cib, now)
    if not ws.config.stonith_enabled:
        for node in ws.nodes.values():
            node.unclean = False  # nothing can be fenced: crm_mon shows such nodes as plainly offline
    out = [*_node_lines(ws), "", "* Full List of Resources:"]
    for top in ws.resources:
        if top.orphan and not any(p.running_on for p in top.primitives()):
            continue
        if top.kind == "group":
            lines = _group_lines(top)
        elif top.kind == "clone":
            lines = _clone_lines(ws, top)
        else:
            lines = [_primitive_line(top)]
        out.extend(f"  {line}" for line in lines)
    return out
