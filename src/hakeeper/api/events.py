"""The cluster's event stream, derived from committed CIB changes: pure functions and a bounded log.

The daemon calls ``changes(old, new)`` after each commit it applies and records the result in an
``EventLog``; the API serves the log (``events``/``subscribe``) and alerts deliver it. Deriving events from
the CIB (rather than from each component) means every node produces the same events in the same order,
and a new DC needs nothing but the CIB.

What counts as an event follows Pacemaker's alerts: node membership changes (desc ``member``/``lost``),
resource operation results (every one, except recurring monitors that found what they expected), node
attribute changes, and finished fencing operations.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable

import msgspec

from hakeeper.agents.results import OcfRc
from hakeeper.api.handle import Event, EventKind
from hakeeper.cib import model as m

RC_TEXT: dict[int, str] = {
    OcfRc.SUCCESS: "ok",
    OcfRc.ERR_GENERIC: "error",
    OcfRc.ERR_ARGS: "invalid parameter",
    OcfRc.ERR_UNIMPLEMENTED: "unimplemented feature",
    OcfRc.ERR_PERM: "insufficient privileges",
    OcfRc.ERR_INSTALLED: "not installed",
    OcfRc.ERR_CONFIGURED: "not configured",
    OcfRc.NOT_RUNNING: "not running",
    OcfRc.RUNNING_PROMOTED: "promoted",
    OcfRc.FAILED_PROMOTED: "promoted (failed)",
    OcfRc.DEGRADED: "degraded",
    OcfRc.DEGRADED_PROMOTED: "promoted (degraded)",
}


class Draft(msgspec.Struct, frozen=True, kw_only=True):
    """An event before the log gives it an id and a time."""

    kind: EventKind
    desc: str
    node: str | None = None
    nodeid: str | None = None
    rsc: str | None = None
    task: str | None = None
    interval_ms: int | None = None
    rc: int | None = None
    target_rc: int | None = None
    status: int | None = None
    attribute_name: str | None = None
    attribute_value: str | None = None


def _truthy(text: str | None) -> bool:
    return text is not None and text.lower() not in ("", "false", "offline", "0", "no", "down")


def is_member(state: m.NodeState | None) -> bool:
    return state is not None and _truthy(state.in_ccm) and _truthy(state.crmd)


def _name(state: m.NodeState) -> str:
    return state.uname or state.id


def _expected_rc(op: m.OpRecord) -> int | None:
    if op.transition_key is None:
        return None
    parts = op.transition_key.split(":")
    try:
        return int(parts[2]) if len(parts) >= 3 else None
    except ValueError:
        return None


def _node_events(old: dict[str, m.NodeState], new: dict[str, m.NodeState]) -> list[Draft]:
    out = []
    for name in sorted(set(old) | set(new)):
        was, now = is_member(old.get(name)), is_member(new.get(name))
        if was != now:
            state = new.get(name) or old[name]
            out.append(Draft(kind="node", desc="member" if now else "lost", node=name, nodeid=state.id))
    return out


def _op_events(node: str, old: m.NodeState | None, new: m.NodeState) -> list[Draft]:
    seen = {(h.id, o.id, o.call_id) for h in (old.resources if old else []) for o in h.ops}
    out = []
    for hist in new.resources:
        for op in sorted(hist.ops, key=lambda o: o.call_id):
            if (
                (hist.id, op.id, op.call_id) in seen
                or op.id.endswith("_last_failure_0")
                or op.op_status == -1
            ):
                continue
            target = _expected_rc(op)
            if op.interval > 0 and op.rc == (target if target is not None else 0):
                continue  # a recurring monitor that found what it expected: not news
            desc = op.exit_reason or RC_TEXT.get(op.rc, f"exit code {op.rc}")
            out.append(
                Draft(
                    kind="resource",
                    desc=desc,
                    node=node,
                    nodeid=new.id,
                    rsc=hist.id,
                    task=op.operation,
                    interval_ms=op.interval,
                    rc=op.rc,
                    target_rc=target,
                    status=op.op_status,
                )
            )
    return out


def _attrs(state: m.NodeState | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in state.transient_attributes if state else []:
        out.update(s.values)
    return out


def _attribute_events(node: str, old: m.NodeState | None, new: m.NodeState | None) -> list[Draft]:
    before, after = _attrs(old), _attrs(new)
    out = []
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            value = after.get(name)
            desc = f"{name} set to {value}" if value is not None else f"{name} removed"
            out.append(
                Draft(
                    kind="attribute",
                    desc=desc,
                    node=node,
                    attribute_name=name,
                    attribute_value=value if value is not None else "",
                )
            )
    return out


def _fence_events(old: list[m.FenceEvent], new: list[m.FenceEvent]) -> list[Draft]:
    done_before = {msgspec.json.encode(e) for e in old if e.state != "pending"}
    out = []
    for e in new:
        if e.state == "pending" or msgspec.json.encode(e) in done_before:
            continue
        result = "OK" if e.state == "done" else f"failed{': ' + e.reason if e.reason else ''}"
        who = f" by {e.delegate or e.origin}" if (e.delegate or e.origin) else ""
        out.append(
            Draft(
                kind="fencing",
                desc=f"Operation {e.action} of {e.target}{who}: {result}",
                node=e.target,
                task=e.action,
                rc=0 if e.state == "done" else 1,
            )
        )
    return out


def changes(old: m.Cib, new: m.Cib) -> list[Draft]:
    """The events one commit produced, in a stable order: fencing, nodes, resources, attributes."""
    old_states = {_name(s): s for s in old.status.nodes}
    new_states = {_name(s): s for s in new.status.nodes}
    out = _fence_events(list(old.status.fencing_history), list(new.status.fencing_history))
    out += _node_events(old_states, new_states)
    for name, state in new_states.items():
        out += _op_events(name, old_states.get(name), state)
    for name in sorted(set(old_states) | set(new_states)):
        out += _attribute_events(name, old_states.get(name), new_states.get(name))
    return out


class EventLog:
    """Gives events ids (one more each time, never reused) and keeps the newest ``max_events``."""

    def __init__(self, max_events: int = 10_000, next_id: int = 1) -> None:
        self._events: deque[Event] = deque(maxlen=max_events)
        self.next_id = next_id

    def record(self, drafts: Iterable[Draft], now: float) -> list[Event]:
        out = []
        for d in drafts:
            event = Event(id=self.next_id, timestamp=now, **msgspec.structs.asdict(d))
            self.next_id += 1
            self._events.append(event)
            out.append(event)
        return out

    def since(self, since: int = 0, limit: int = 1000) -> list[Event]:
        newer = [e for e in self._events if e.id > since]
        return newer[-limit:] if limit > 0 else []


class EventHub:
    """The event log plus its live subscribers: what both the daemon and the fake cluster serve."""

    def __init__(self, max_events: int = 10_000) -> None:
        self.log = EventLog(max_events)
        self._subscribers: list[asyncio.Queue[Event]] = []

    def record(self, drafts: Iterable[Draft], now: float) -> list[Event]:
        """Give ``drafts`` ids, keep them, and hand them to every subscriber."""
        events = self.log.record(drafts, now)
        for event in events:
            for queue in self._subscribers:
                queue.put_nowait(event)
        return events

    async def subscribe(self, since: int = 0) -> AsyncIterator[Event]:
        """Events with ``id > since``: those kept, then live ones as they are recorded."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        backlog = self.log.since(since, limit=self.log.next_id)
        self._subscribers.append(queue)
        try:
            for event in backlog:
                yield event
            last = backlog[-1].id if backlog else since
            while True:
                event = await queue.get()
                if event.id > last:
                    last = event.id
                    yield event
        finally:
            self._subscribers.remove(queue)
