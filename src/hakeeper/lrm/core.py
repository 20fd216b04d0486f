"""The sans-I/O LRM scheduler: which operation runs when, and what is reported upward.

Driven by ``(now, event) -> outputs`` with ``now`` from a monotonic clock; it never runs anything itself.
Outputs are :class:`Execute` (the shell must run this and later call :meth:`LrmCore.complete`) and
:class:`~hakeeper.lrm.messages.OpResult` (report upward).

Rules (Pacemaker's executor):
- operations on one resource run one at a time, in arrival order; different resources run in parallel, at
  most ``max_parallel`` at once;
- a recurring operation (interval > 0) first runs after its start-delay, then ``interval`` after each
  completion; it keeps its call id; its result is reported only when (rc, status) changes;
- a stop, demote or migration first cancels every recurring operation of the resource (each cancellation is
  reported with status CANCELLED), so a monitor can never race the stop;
- submitting a recurring operation that already exists replaces it (duplicates are merged).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable

import msgspec

from hakeeper.agents.results import OcfRc, OpStatus
from hakeeper.lrm.messages import STOP_LIKE, CancelRequest, OpRequest, OpResult

HISTORY_RECENT = 16
"""How many recent results each resource keeps besides the last, last failure and recurring ones."""
ACCEPTABLE_DEGRADED = frozenset({OcfRc.DEGRADED, OcfRc.DEGRADED_PROMOTED})


class Execute(msgspec.Struct, frozen=True, kw_only=True):
    """Run ``request`` now. ``due`` is when the schedule wanted it to start (for lateness)."""

    exec_id: int
    call_id: int
    request: OpRequest
    due: float


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    """What the shell learned from running an :class:`Execute`."""

    exec_id: int
    rc: int
    op_status: OpStatus
    exit_reason: str = ""
    output: str = ""
    agent_exit_code: int | None = None
    exec_time_ms: int = 0
    finished_wall: float = 0.0


Output = Execute | OpResult


def expected_rcs(req: OpRequest) -> frozenset[int]:
    """Exit codes that count as success for ``req`` when the CRM did not say (meta ``op_target_rc``)."""
    target = req.meta.get("op_target_rc")
    if target is not None and target.lstrip("-").isdigit():
        return frozenset({int(target)})
    if req.operation == "monitor":
        if req.interval_ms == 0:
            return frozenset({OcfRc.SUCCESS, OcfRc.NOT_RUNNING, OcfRc.RUNNING_PROMOTED}) | ACCEPTABLE_DEGRADED
        if req.role.lower() in ("promoted", "master"):
            return frozenset({OcfRc.RUNNING_PROMOTED, OcfRc.DEGRADED_PROMOTED})
        return frozenset({OcfRc.SUCCESS, OcfRc.DEGRADED})
    return frozenset({OcfRc.SUCCESS})


def is_failure(req: OpRequest, rc: int, status: OpStatus) -> bool:
    if status == OpStatus.CANCELLED:
        return False
    return status != OpStatus.DONE or rc not in expected_rcs(req)


class ResourceHistory(msgspec.Struct, kw_only=True):
    """Per resource, what the CRM records in the CIB status section."""

    resource_id: str
    agent: str
    last: OpResult | None = None
    """The last non-recurring operation (Pacemaker's ``<rsc>_last_0``)."""
    last_failure: OpResult | None = None
    recurring: dict[str, OpResult] = {}
    """The latest result of each active recurring operation, by operation key."""
    recent: list[OpResult] = []


class _Pending(msgspec.Struct, kw_only=True):
    request: OpRequest
    call_id: int
    queued_at: float
    due: float
    queue_s: float = 0.0
    generation: int = 0
    """For recurring runs: the registration they belong to (a stale run is discarded)."""


class _Recurring(msgspec.Struct, kw_only=True):
    request: OpRequest
    call_id: int
    generation: int
    next_due: float | None = None
    in_flight: bool = False
    last_reported: tuple[int, OpStatus] | None = None


class LrmCore:
    """The scheduler. Not thread-safe; one shell drives it."""

    def __init__(self, max_parallel: int = 4) -> None:
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.max_parallel = max_parallel
        self._next_call_id = 1
        self.last_call_id = 0
        """The call id given to the most recent :meth:`submit` (recurring re-registrations get a new one)."""
        self._next_exec_id = 1
        self._generation = 0
        self._queues: dict[str, deque[_Pending]] = {}
        self._ready: deque[str] = deque()
        self._running: dict[int, _Pending] = {}
        self._busy: set[str] = set()
        self._recurring: dict[str, _Recurring] = {}
        self._timers: list[tuple[float, int, str, int]] = []
        self._timer_seq = 0
        self._histories: dict[str, ResourceHistory] = {}
        self._rc_since: dict[str, tuple[int, OpStatus, float]] = {}

    # ---- inputs -------------------------------------------------------------------------------------------

    def submit(self, now: float, req: OpRequest, wall: float = 0.0) -> list[Output]:
        """Accept one operation request. ``wall`` (epoch s) stamps the cancellations this may report."""
        outputs: list[Output] = []
        if req.operation in STOP_LIKE:
            outputs += self._cancel_all_recurring(req.resource_id, wall)
        call_id = self._new_call_id()
        if req.interval_ms > 0:
            self._register_recurring(now, req, call_id, outputs, wall)
        else:
            self._enqueue(_Pending(request=req, call_id=call_id, queued_at=now, due=now))
        return outputs + self.poll(now)

    def cancel(self, now: float, req: CancelRequest, wall: float = 0.0) -> list[Output]:
        """Cancel one recurring operation; reports it as CANCELLED (nothing if it was unknown)."""
        key = f"{req.resource_id}_{req.operation}_{req.interval_ms}"
        outputs = self._cancel_recurring(key, wall)
        return outputs + self._dispatch(now)

    def complete(self, now: float, done: Completion) -> list[Output]:
        """The shell finished an :class:`Execute`."""
        pending = self._running.pop(done.exec_id, None)
        if pending is None:
            return []
        req = pending.request
        self._busy.discard(req.resource_id)
        if self._queues.get(req.resource_id):
            self._ready.append(req.resource_id)
        outputs: list[Output] = []
        result = self._result(pending, done)
        if req.interval_ms > 0:
            outputs += self._finish_recurring(now, pending, result)
        else:
            self._record(result, req)
            outputs.append(result)
        return outputs + self._dispatch(now)

    def poll(self, now: float) -> list[Output]:
        """Fire recurring operations that are due and start whatever may start."""
        while self._timers and self._timers[0][0] <= now:
            _due, _seq, key, generation = heapq.heappop(self._timers)
            rec = self._recurring.get(key)
            if rec is None or rec.generation != generation or rec.in_flight or rec.next_due is None:
                continue
            rec.in_flight = True
            self._enqueue(
                _Pending(
                    request=rec.request,
                    call_id=rec.call_id,
                    queued_at=rec.next_due,
                    due=rec.next_due,
                    generation=generation,
                )
            )
        return self._dispatch(now)

    # ---- queries ------------------------------------------------------------------------------------------

    def next_wakeup(self) -> float | None:
        """When :meth:`poll` next has something to do (monotonic seconds), or None."""
        while self._timers:
            due, _seq, key, generation = self._timers[0]
            rec = self._recurring.get(key)
            if rec is not None and rec.generation == generation and not rec.in_flight:
                return due
            heapq.heappop(self._timers)
        return None

    def history(self, resource_id: str) -> ResourceHistory | None:
        return self._histories.get(resource_id)

    def resources(self) -> list[str]:
        return sorted(self._histories)

    def recurring_keys(self, resource_id: str | None = None) -> list[str]:
        return sorted(k for k, r in self._recurring.items() if resource_id in (None, r.request.resource_id))

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def queued_count(self) -> int:
        return sum(len(q) for q in self._queues.values())

    # ---- internals ----------------------------------------------------------------------------------------

    def _new_call_id(self) -> int:
        call_id = self._next_call_id
        self._next_call_id += 1
        self.last_call_id = call_id
        return call_id

    def _enqueue(self, pending: _Pending) -> None:
        rsc = pending.request.resource_id
        queue = self._queues.setdefault(rsc, deque())
        if not queue and rsc not in self._busy:
            self._ready.append(rsc)
        queue.append(pending)

    def _dispatch(self, now: float) -> list[Output]:
        outputs: list[Output] = []
        while self._ready and len(self._running) < self.max_parallel:
            rsc = self._ready.popleft()
            queue = self._queues.get(rsc)
            if not queue or rsc in self._busy:
                continue
            pending = queue.popleft()
            if not queue:
                del self._queues[rsc]
            exec_id = self._next_exec_id
            self._next_exec_id += 1
            self._busy.add(rsc)
            pending.queue_s = max(0.0, now - pending.queued_at)
            self._running[exec_id] = pending
            outputs.append(
                Execute(exec_id=exec_id, call_id=pending.call_id, request=pending.request, due=pending.due)
            )
        return outputs

    def _register_recurring(
        self, now: float, req: OpRequest, call_id: int, outputs: list[Output], wall: float
    ) -> None:
        key = req.key
        if key in self._recurring:
            outputs += self._cancel_recurring(key, wall, report=False)
        self._generation += 1
        rec = _Recurring(request=req, call_id=call_id, generation=self._generation)
        self._recurring[key] = rec
        self._arm(rec, now + req.start_delay_ms / 1000.0)

    def _arm(self, rec: _Recurring, due: float) -> None:
        rec.next_due = due
        self._timer_seq += 1
        heapq.heappush(self._timers, (due, self._timer_seq, rec.request.key, rec.generation))

    def _finish_recurring(self, now: float, pending: _Pending, result: OpResult) -> list[Output]:
        rec = self._recurring.get(pending.request.key)
        if rec is None or rec.generation != pending.generation:
            return []  # cancelled (or replaced) while it ran: its result no longer matters
        rec.in_flight = False
        self._arm(rec, now + rec.request.interval_ms / 1000.0)
        self._record(result, rec.request)
        state = (result.rc, result.op_status)
        if rec.last_reported == state:
            return []
        rec.last_reported = state
        return [result]

    def _cancel_all_recurring(self, resource_id: str, wall: float) -> list[Output]:
        outputs: list[Output] = []
        for key in self.recurring_keys(resource_id):
            outputs += self._cancel_recurring(key, wall)
        return outputs

    def _cancel_recurring(self, key: str, wall: float, report: bool = True) -> list[Output]:
        rec = self._recurring.pop(key, None)
        if rec is None:
            return []
        req = rec.request
        queue = self._queues.get(req.resource_id)
        if queue:
            kept = deque(p for p in queue if p.request.key != key or p.generation != rec.generation)
            if kept:
                self._queues[req.resource_id] = kept
            else:
                del self._queues[req.resource_id]
        history = self._histories.get(req.resource_id)
        if history is not None:
            history.recurring.pop(key, None)
        self._rc_since.pop(key, None)
        if not report:
            return []
        return [
            OpResult(
                resource_id=req.resource_id,
                agent=req.agent,
                operation=req.operation,
                interval_ms=req.interval_ms,
                call_id=rec.call_id,
                rc=OcfRc.SUCCESS,
                op_status=OpStatus.CANCELLED,
                last_run=wall,
                last_rc_change=wall,
                transition_key=req.transition_key,
                op_digest=req.op_digest,
            )
        ]

    def _result(self, pending: _Pending, done: Completion) -> OpResult:
        req = pending.request
        since = self._rc_since.get(req.key)
        if since is None or (since[0], since[1]) != (done.rc, done.op_status):
            since = (done.rc, done.op_status, done.finished_wall)
            self._rc_since[req.key] = since
        return OpResult(
            resource_id=req.resource_id,
            agent=req.agent,
            operation=req.operation,
            interval_ms=req.interval_ms,
            call_id=pending.call_id,
            rc=done.rc,
            op_status=done.op_status,
            exec_time_ms=done.exec_time_ms,
            queue_time_ms=round(pending.queue_s * 1000),
            last_run=done.finished_wall,
            last_rc_change=since[2],
            exit_reason=done.exit_reason,
            output=done.output,
            agent_exit_code=done.agent_exit_code,
            transition_key=req.transition_key,
            op_digest=req.op_digest,
        )

    def _record(self, result: OpResult, req: OpRequest) -> None:
        history = self._histories.get(req.resource_id)
        if history is None:
            history = ResourceHistory(resource_id=req.resource_id, agent=req.agent)
            self._histories[req.resource_id] = history
        history.agent = req.agent
        if req.interval_ms > 0:
            history.recurring[req.key] = result
        else:
            history.last = result
        if is_failure(req, result.rc, result.op_status):
            history.last_failure = result
        history.recent = [*history.recent[-(HISTORY_RECENT - 1) :], result]


def drain_results(outputs: Iterable[Output]) -> list[OpResult]:
    """The :class:`OpResult` entries of ``outputs`` (convenience for tests and shells)."""
    return [o for o in outputs if isinstance(o, OpResult)]
