"""What-if changes for ``hakeeper simulate``, applied to the CIB before scheduling (as crm_simulate does).

Every injection is a pure function ``Cib -> Cib``. Node and ticket changes edit the status section the way
the controller records membership; an operation failure is recorded through ``controller.history``, so it
lands in the history and the fail count exactly as a real failure reported by a node would.
Bad input raises ``InjectionError`` with a sentence saying what is wrong and what would be accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec

from hakeeper.cib import model as m
from hakeeper.cib.patch import Patch, PatchError, apply
from hakeeper.cib.values import parse_datetime
from hakeeper.controller.history import Expectation, record_result, start_failure_is_fatal
from hakeeper.lrm.messages import OpResult, OpStatus

UP_FIELDS = {"in_ccm": "true", "crmd": "online", "join": "member", "expected": "member"}
DOWN_FIELDS = {"in_ccm": "false", "crmd": "offline", "join": "down", "expected": "down"}
# an unclean loss: the node is expected in the cluster but has left it, so it must be fenced
FAILED_FIELDS = {"in_ccm": "false", "crmd": "offline", "join": "down", "expected": "member"}

# operations whose names contain an underscore (the key is split on the last underscores otherwise)
_OPS_WITH_UNDERSCORE = ("migrate_to", "migrate_from")
_SPEC_RE = re.compile(r"^(?P<key>[^@=\s]+)@(?P<node>[^@=\s]+)=(?P<rc>-?\d+)$")
INJECTED_TRANSITION = 0  # transition number written into injected results' keys
INJECTED_UUID = "hakeeper-simulate"


class InjectionError(ValueError):
    """A what-if change that cannot be applied; the message is meant for the operator."""


@dataclass(frozen=True)
class OpSpec:
    """``RSC_OP_INTERVAL@NODE=RC``: an operation of a resource on a node and the rc it returns."""

    rsc: str
    operation: str
    interval_ms: int
    node: str
    rc: int

    @property
    def key(self) -> str:
        return f"{self.rsc}_{self.operation}_{self.interval_ms}"


def _split_key(key: str, text: str) -> tuple[str, str, int]:
    rest, _, interval = key.rpartition("_")
    if not rest or not interval.isdigit():
        raise InjectionError(
            f"{text!r}: the operation key must end with the interval in milliseconds, "
            "as in web_monitor_10000@node1=7"
        )
    for name in _OPS_WITH_UNDERSCORE:
        if rest.endswith(f"_{name}"):
            return rest[: -len(name) - 1], name, int(interval)
    rsc, _, operation = rest.rpartition("_")
    if not rsc or not operation:
        raise InjectionError(
            f"{text!r}: expected RESOURCE_OPERATION_INTERVAL@NODE=RC, as in web_monitor_10000@node1=7"
        )
    return rsc, operation, int(interval)


def parse_op_spec(text: str) -> OpSpec:
    """Parse ``web_monitor_10000@node1=7`` (resource, operation, interval in ms, node, OCF return code)."""
    match = _SPEC_RE.match(text.strip())
    if match is None:
        raise InjectionError(
            f"{text!r} is not an operation result: expected RESOURCE_OPERATION_INTERVAL@NODE=RC, "
            "as in web_monitor_10000@node1=7"
        )
    rsc, operation, interval = _split_key(match["key"], text)
    rc = int(match["rc"])
    if not 0 <= rc <= 255:
        raise InjectionError(f"{text!r}: the return code must be an OCF exit code between 0 and 255")
    return OpSpec(rsc, operation, interval, match["node"], rc)


def parse_time(text: str) -> int:
    """``--at``: epoch seconds (``1700000000``) or an ISO 8601 date-time (``2024-05-01T10:00:00Z``)."""
    stripped = text.strip()
    if re.fullmatch(r"-?\d+", stripped):
        return int(stripped)
    try:
        return parse_datetime(stripped)
    except ValueError as err:
        raise InjectionError(
            f"{text!r} is not a time: give epoch seconds or an ISO 8601 date-time such as "
            f"2024-05-01T10:00:00Z ({err})"
        ) from err


# --- nodes ---------------------------------------------------------------------------------------------


def _configured_node(cib: m.Cib, name: str) -> m.Node:
    for node in cib.configuration.nodes:
        if node.uname == name or node.id == name:
            return node
    known = ", ".join(n.uname for n in cib.configuration.nodes) or "none"
    raise InjectionError(f"there is no node {name!r} in the configuration (configured nodes: {known})")


def _state_index(cib: m.Cib, node: m.Node) -> int | None:
    for index, state in enumerate(cib.status.nodes):
        if state.id == node.id or (state.uname is not None and state.uname == node.uname):
            return index
    return None


def _with_state(cib: m.Cib, node: m.Node, **fields: object) -> m.Cib:
    """The CIB with ``node``'s status entry created if absent, then ``fields`` set on it."""
    states = list(cib.status.nodes)
    index = _state_index(cib, node)
    if index is None:
        states.append(m.NodeState(id=node.id, uname=node.uname))
        index = len(states) - 1
    states[index] = msgspec.structs.replace(states[index], **fields)
    status = msgspec.structs.replace(cib.status, nodes=states)
    return msgspec.structs.replace(cib, status=status)


def node_up(cib: m.Cib, name: str) -> m.Cib:
    """The node has joined the cluster cleanly (as after a boot)."""
    return _with_state(cib, _configured_node(cib, name), **UP_FIELDS)


def node_down(cib: m.Cib, name: str) -> m.Cib:
    """The node left cleanly (an orderly shutdown): it runs nothing and keeps no transient attributes."""
    node = _configured_node(cib, name)
    return _with_state(cib, node, **DOWN_FIELDS, resources=[], transient_attributes=[])


def node_fail(cib: m.Cib, name: str) -> m.Cib:
    """The node vanished while expected up: its resources are in doubt and it must be fenced."""
    return _with_state(cib, _configured_node(cib, name), **FAILED_FIELDS)


# --- tickets -------------------------------------------------------------------------------------------


def _set_ticket(cib: m.Cib, ticket: str, granted: bool, now: int) -> m.Cib:
    if not ticket.strip():
        raise InjectionError("a ticket name cannot be empty")
    tickets = list(cib.status.tickets)
    index = next((i for i, t in enumerate(tickets) if t.id == ticket), None)
    current = tickets[index] if index is not None else m.TicketState(id=ticket)
    last = now if granted else current.last_granted
    updated = msgspec.structs.replace(current, granted=granted, last_granted=last)
    if index is None:
        tickets.append(updated)
    else:
        tickets[index] = updated
    status = msgspec.structs.replace(cib.status, tickets=tickets)
    return msgspec.structs.replace(cib, status=status)


def ticket_grant(cib: m.Cib, ticket: str, now: int) -> m.Cib:
    return _set_ticket(cib, ticket, True, now)


def ticket_revoke(cib: m.Cib, ticket: str, now: int) -> m.Cib:
    return _set_ticket(cib, ticket, False, now)


# --- operation results ---------------------------------------------------------------------------------


def _primitives(cib: m.Cib) -> dict[str, m.Primitive]:
    out: dict[str, m.Primitive] = {}

    def visit(res: m.Resource) -> None:
        if isinstance(res, m.Primitive):
            out[res.id] = res
        elif isinstance(res, m.Group):
            for child in res.children:
                visit(child)
        elif isinstance(res, m.Clone):
            visit(res.child)

    for res in cib.configuration.resources:
        visit(res)
    return out


def agent_of(cib: m.Cib, prim: m.Primitive) -> str:
    """``class:provider:type`` of a primitive, its template filling what it leaves out."""
    tpl = next((t for t in cib.configuration.templates if t.id == prim.template), None)
    klass = prim.klass or (tpl.klass if tpl else "ocf")
    provider = prim.provider or (tpl.provider if tpl else None)
    rtype = prim.type or (tpl.type if tpl else "")
    return ":".join(part for part in (klass, provider, rtype) if part)


def find_primitive(cib: m.Cib, rsc: str) -> m.Primitive:
    """A configured primitive by id; a clone instance (``db:1``) names its primitive."""
    prims = _primitives(cib)
    found = prims.get(rsc) or prims.get(rsc.split(":", 1)[0])
    if found is None:
        known = ", ".join(sorted(prims)) or "none"
        raise InjectionError(
            f"there is no primitive resource {rsc!r} in the configuration (primitives: {known})"
        )
    return found


def expected_rc(prim: m.Primitive, operation: str, interval_ms: int) -> int:
    """The rc that counts as success: 7 for a probe, 8 for a monitor of the promoted role, else 0."""
    if operation == "monitor" and interval_ms == 0:
        return 7
    for op in prim.operations:
        if op.name == operation and op.interval == interval_ms and op.role in ("Promoted", "Master"):
            return 8
    return 0


def next_call_id(cib: m.Cib, node_id: str) -> int:
    state = next((s for s in cib.status.nodes if s.id == node_id), None)
    calls = [op.call_id for h in (state.resources if state else []) for op in h.ops]
    return max(calls, default=0) + 1


def record_op(
    cib: m.Cib, spec: OpSpec, now: int, *, expected: int | None = None, action_id: int = 0
) -> m.Cib:
    """Record ``spec``'s result on its node as the controller records a result reported by a node."""
    node = _configured_node(cib, spec.node)
    prim = find_primitive(cib, spec.rsc)
    cib = _with_state(cib, node)  # make sure the node has a status entry keyed by its id
    target = expected_rc(prim, spec.operation, spec.interval_ms) if expected is None else expected
    result = OpResult(
        resource_id=spec.rsc,
        agent=agent_of(cib, prim),
        operation=spec.operation,
        interval_ms=spec.interval_ms,
        call_id=next_call_id(cib, node.id),
        rc=spec.rc,
        op_status=OpStatus.DONE,
        last_run=float(now),
        last_rc_change=float(now),
    )
    exp = Expectation(action_id, INJECTED_TRANSITION, target, INJECTED_UUID)
    fatal = start_failure_is_fatal(cib, now)
    ops = record_result(cib.status, node.id, result, exp, now=now, start_failure_is_fatal=fatal)
    try:
        return apply(cib, Patch(ops=ops))
    except PatchError as err:
        raise InjectionError(f"cannot record {spec.key} on {spec.node}: {err}") from err


def op_fail(cib: m.Cib, spec: OpSpec, now: int) -> m.Cib:
    """``--op-fail``: the operation returned ``spec.rc`` (a failure also raises the fail count)."""
    return record_op(cib, spec, now)


# --- all together --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Injections:
    """Every what-if change of one ``simulate`` call, applied in crm_simulate's order."""

    node_up: tuple[str, ...] = ()
    node_down: tuple[str, ...] = ()
    node_fail: tuple[str, ...] = ()
    ticket_grant: tuple[str, ...] = ()
    ticket_revoke: tuple[str, ...] = ()
    op_fail: tuple[OpSpec, ...] = ()

    def __bool__(self) -> bool:
        return any(
            (
                self.node_up,
                self.node_down,
                self.node_fail,
                self.ticket_grant,
                self.ticket_revoke,
                self.op_fail,
            )
        )

    def describe(self) -> list[str]:
        """One line per change, for the output (crm_simulate prints what it injected)."""
        return [
            *(f"Bringing node {n} online" for n in self.node_up),
            *(f"Taking node {n} offline" for n in self.node_down),
            *(f"Failing node {n}" for n in self.node_fail),
            *(f"Granting ticket {t}" for t in self.ticket_grant),
            *(f"Revoking ticket {t}" for t in self.ticket_revoke),
            *(f"Injecting {s.key}@{s.node}={s.rc} into the operation history" for s in self.op_fail),
        ]


def apply_injections(cib: m.Cib, injections: Injections, now: int) -> m.Cib:
    """Apply every change in order: nodes up, down, failed; tickets; operation results."""
    for name in injections.node_up:
        cib = node_up(cib, name)
    for name in injections.node_down:
        cib = node_down(cib, name)
    for name in injections.node_fail:
        cib = node_fail(cib, name)
    for ticket in injections.ticket_grant:
        cib = ticket_grant(cib, ticket, now)
    for ticket in injections.ticket_revoke:
        cib = ticket_revoke(cib, ticket, now)
    for spec in injections.op_fail:
        cib = op_fail(cib, spec, now)
    return cib
