"""Recording operation results in the CIB status section, the way Pacemaker's controller does.

The policy engine reads resource state from this history, so it must be written in the shape the engine
(and Pacemaker's tools) understand:

- the last non-recurring operation of a resource on a node is ``<rsc>_last_0``; a failed one is also kept as
  ``<rsc>_last_failure_0``; each recurring operation has its own entry, ``<rsc>_<op>_<interval>``, removed
  when it is cancelled or the resource stops;
- the transition key ``action:transition:expected-rc:uuid`` tells what result was expected, the magic
  ``status:rc;key`` what came back;
- a failure increments ``fail-count-<rsc>#<op>_<interval>`` and sets ``last-failure-<rsc>#<op>_<interval>``
  in the node's transient attributes; a failed start (with ``start-failure-is-fatal``) or a failed stop sets
  the count to INFINITY at once, because neither can sensibly be retried in place.

Everything here is pure: status and a result in, patch operations out.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from hakeeper.cib import model as m
from hakeeper.cib.nvsets import cluster_properties
from hakeeper.cib.patch import Create, Delete, PatchOp, Put
from hakeeper.cib.values import INFINITY, add_scores, parse_score
from hakeeper.lrm.messages import OpResult, OpStatus
from hakeeper.policy.attrs import is_true

FEATURE_SET = "3.16.2"
"""The CIB feature set we write; Pacemaker 2.1.5's, so exported status reads the same there."""


@dataclass(frozen=True)
class Expectation:
    """What the DC expected of an operation it sent, carried in its transition key."""

    action_id: int
    transition_id: int
    expected_rc: int
    uuid: str

    @property
    def transition_key(self) -> str:
        return f"{self.action_id}:{self.transition_id}:{self.expected_rc}:{self.uuid}"

    @classmethod
    def parse(cls, key: str) -> Expectation | None:
        parts = key.split(":", 3)
        if len(parts) != 4:
            return None
        try:
            return cls(int(parts[0]), int(parts[1]), int(parts[2]), parts[3])
        except ValueError:
            return None


def is_failure(result: OpResult, expected_rc: int) -> bool:
    """Whether a result is a failure the cluster must react to (and count)."""
    if result.op_status == OpStatus.CANCELLED:
        return False
    probe = result.operation == "monitor" and result.interval_ms == 0
    if probe and result.op_status == OpStatus.NOT_INSTALLED:
        return False  # as Pacemaker: an agent missing on this node means the resource cannot be running here
    if result.op_status != OpStatus.DONE:
        return True
    if probe:
        return result.rc not in (0, 7, 8, 190, 191)  # a probe reports state; only errors are failures
    return result.rc != expected_rc


def _agent_parts(agent: str) -> tuple[str, str | None, str]:
    parts = agent.split(":")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return "ocf", None, agent


def _node_path(node: str) -> str:
    return f"/status/nodes/{node}"


def _rsc_path(node: str, rsc: str) -> str:
    return f"{_node_path(node)}/resources/{rsc}"


def _find_node(status: m.Status, node: str) -> m.NodeState | None:
    return next((n for n in status.nodes if n.id == node), None)


def _find_history(status: m.Status, node: str, rsc: str) -> m.ResourceHistory | None:
    state = _find_node(status, node)
    if state is None:
        return None
    return next((r for r in state.resources if r.id == rsc), None)


def ensure_node(node: str) -> PatchOp:
    return Put(
        path="/status/nodes",
        value=msgspec.to_builtins(m.NodeState(id=node, uname=node)),
        keep_existing=True,
    )


def _op_record(op_id: str, node: str, result: OpResult, exp: Expectation) -> m.OpRecord:
    key = exp.transition_key
    return m.OpRecord(
        id=op_id,
        operation=result.operation,
        call_id=result.call_id,
        rc=result.rc,
        op_status=int(result.op_status),
        interval=result.interval_ms,
        operation_key=result.key,
        transition_key=key,
        transition_magic=f"{int(result.op_status)}:{result.rc};{key}",
        last_rc_change=int(result.last_rc_change),
        last_run=int(result.last_run),
        exec_time=result.exec_time_ms,
        queue_time=result.queue_time_ms,
        exit_reason=result.exit_reason or None,
        on_node=node,
        op_digest=result.op_digest or None,
        crm_feature_set=FEATURE_SET,
    )


def record_result(
    status: m.Status,
    node: str,
    result: OpResult,
    exp: Expectation,
    *,
    now: int,
    start_failure_is_fatal: bool = True,
) -> list[PatchOp]:
    """Patch operations that record ``result`` (run on ``node``) in the status section."""
    klass, provider, rtype = _agent_parts(result.agent)
    rsc = result.resource_id
    ops_path = f"{_rsc_path(node, rsc)}/ops"
    out: list[PatchOp] = [
        ensure_node(node),
        Put(
            path=f"{_node_path(node)}/resources",
            value=msgspec.to_builtins(m.ResourceHistory(id=rsc, klass=klass, provider=provider, type=rtype)),
            keep_existing=True,
        ),
    ]
    history = _find_history(status, node, rsc)
    existing = {o.id for o in history.ops} if history is not None else set()
    failed = is_failure(result, exp.expected_rc)
    if result.interval_ms > 0:
        op_id = f"{rsc}_{result.operation}_{result.interval_ms}"
        if result.op_status == OpStatus.CANCELLED:
            if op_id in existing:
                out.append(Delete(path=f"{ops_path}/{op_id}"))
            return out
        out.append(Put(path=ops_path, value=msgspec.to_builtins(_op_record(op_id, node, result, exp))))
    else:
        record = _op_record(f"{rsc}_last_0", node, result, exp)
        out.append(Put(path=ops_path, value=msgspec.to_builtins(record)))
        if result.operation == "stop" and not failed:
            out.extend(Delete(path=f"{ops_path}/{i}") for i in sorted(existing) if _is_recurring_id(rsc, i))
    if failed:
        failure = _op_record(f"{rsc}_last_failure_0", node, result, exp)
        out.append(Put(path=ops_path, value=msgspec.to_builtins(failure)))
        out.extend(_count_failure(status, node, result, now=now, fatal_start=start_failure_is_fatal))
    return out


def _is_recurring_id(rsc: str, op_id: str) -> bool:
    return op_id.startswith(f"{rsc}_") and not op_id.startswith((f"{rsc}_last_0", f"{rsc}_last_failure_0"))


def transient_set_id(node: str) -> str:
    return f"status-{node}"


def _transient(status: m.Status, node: str) -> dict[str, str]:
    state = _find_node(status, node)
    if state is None:
        return {}
    merged: dict[str, str] = {}
    for s in state.transient_attributes:
        merged.update(s.values)
    return merged


def set_transient_attribute(node: str, name: str, value: str) -> list[PatchOp]:
    """Patch operations that set one transient (reboot-lifetime) attribute of ``node``."""
    set_path = f"{_node_path(node)}/transient_attributes"
    return [
        ensure_node(node),
        Put(path=set_path, value=msgspec.to_builtins(m.NvSet(id=transient_set_id(node))), keep_existing=True),
        Create(path=f"{set_path}/{transient_set_id(node)}/values", key=name, value=value),
    ]


def _count_failure(
    status: m.Status, node: str, result: OpResult, *, now: int, fatal_start: bool
) -> list[PatchOp]:
    suffix = f"{result.resource_id}#{result.operation}_{result.interval_ms}"
    current_text = _transient(status, node).get(f"fail-count-{suffix}", "0")
    try:
        current = parse_score(current_text)
    except ValueError:
        current = 0
    if (result.operation == "start" and fatal_start) or result.operation == "stop":
        count = INFINITY
    else:
        count = add_scores(current, 1)
    value = "INFINITY" if count >= INFINITY else str(count)
    return [
        *set_transient_attribute(node, f"fail-count-{suffix}", value),
        *set_transient_attribute(node, f"last-failure-{suffix}", str(now))[2:],
    ]


def start_failure_is_fatal(cib: m.Cib, now_s: int) -> bool:
    """``start-failure-is-fatal`` as the policy engine reads it (bootstrap set first, rules at ``now``;
    default true): whether a failed start sets the fail count to INFINITY."""
    props = cluster_properties(cib.configuration.properties, now_s)
    return is_true(props.get("start-failure-is-fatal"), True)
