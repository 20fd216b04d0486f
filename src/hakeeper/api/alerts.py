"""Alerts: Pacemaker-compatible alert agents (and webhooks) run for cluster events, in order, retried.

An alert (``m.Alert`` in the CIB) is an executable run once per event and recipient with the ``CRM_alert_*``
environment Pacemaker documents (kind, node, rsc, task, rc, desc, timestamp, recipient, ...), plus its
instance attributes as environment variables. An alert whose path is an ``http(s)://`` URL is a webhook: the
event is POSTed as JSON, with the recipient in the body.

Unlike Pacemaker (and keepalived's notify scripts), deliveries for one (alert, recipient) are strictly in
event order, one at a time, and a failed delivery is retried with exponential backoff before later events
go out; after ``max_attempts`` the event is given up (and the status says so) so one broken recipient
cannot hold its queue forever. Different recipients never wait for each other.

``AlertQueue`` is the sans-I/O core, driven by ``(now, event)``; ``AlertRunner`` is the thin asyncio shell
that runs agents with ``hakeeper.lrm.executor.run_invocation`` and posts webhooks with httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import httpx
import msgspec

from hakeeper.agents.base import Invocation
from hakeeper.api.handle import ClusterHandle, Event
from hakeeper.api.views import merged
from hakeeper.cib import model as m
from hakeeper.cib.values import parse_duration_ms
from hakeeper.lrm.executor import RawResult, run_invocation

ALERT_VERSION = "2.1.5"
"""Reported in ``CRM_alert_version``: the Pacemaker version whose alert interface this follows."""
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_TIMESTAMP_FORMAT = "%H:%M:%S.%06N"
SELECT_OF_KIND = {"node": "nodes", "resource": "resources", "fencing": "fencing", "attribute": "attributes"}
MAX_QUEUE = 10_000


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One (alert, recipient) pair: a queue of its own."""

    alert_id: str
    recipient_id: str
    recipient: str
    path: str
    select: frozenset[str] = frozenset()  # empty: every kind
    timeout_s: float = DEFAULT_TIMEOUT_S
    timestamp_format: str = DEFAULT_TIMESTAMP_FORMAT
    env: dict[str, str] = {}

    @property
    def key(self) -> tuple[str, str]:
        return (self.alert_id, self.recipient_id)

    @property
    def is_webhook(self) -> bool:
        return self.path.startswith(("http://", "https://"))

    def wants(self, event: Event) -> bool:
        kind = SELECT_OF_KIND.get(event.kind)
        return kind is not None and (not self.select or kind in self.select)


def _timeout_s(meta: dict[str, str], default: float) -> float:
    text = meta.get("timeout")
    if text is None:
        return default
    try:
        return max(parse_duration_ms(text) / 1000, 0.001)
    except ValueError:
        return default


def targets_from_cib(cfg: m.Configuration) -> list[Target]:
    """Every (alert, recipient) of the config; an alert without recipients has one, empty, recipient."""
    out = []
    for alert in cfg.alerts:
        meta = merged(alert.meta_attributes)
        env = merged(alert.instance_attributes)
        recipients = alert.recipients or [m.AlertRecipient(id=f"{alert.id}-default", value="")]
        for rcp in recipients:
            rmeta = {**meta, **merged(rcp.meta_attributes)}
            out.append(
                Target(
                    alert_id=alert.id,
                    recipient_id=rcp.id,
                    recipient=rcp.value,
                    path=alert.path,
                    select=frozenset(alert.select),
                    timeout_s=_timeout_s(rmeta, DEFAULT_TIMEOUT_S),
                    timestamp_format=rmeta.get("timestamp-format", DEFAULT_TIMESTAMP_FORMAT),
                    env={**env, **merged(rcp.instance_attributes)},
                )
            )
    return out


# --- the CRM_alert_* environment ---------------------------------------------------------------------------


def format_timestamp(epoch: float, fmt: str) -> str:
    """strftime in UTC, plus Pacemaker's ``%N`` (``%3N`` milliseconds, ``%06N`` microseconds, ...)."""
    micros = round(epoch * 1_000_000) % 1_000_000
    out = []
    i = 0
    while i < len(fmt):
        j = i + 1
        while j < len(fmt) and fmt[j].isdigit():
            j += 1
        if fmt[i] == "%" and j < len(fmt) and fmt[j] == "N":
            digits = int(fmt[i + 1 : j].lstrip("0") or "9") if j > i + 1 else 9
            out.append(f"{micros * 1000:09d}"[: min(digits, 9)])
            i = j + 1
        else:
            out.append(fmt[i])
            i += 1
    return time.strftime("".join(out), time.gmtime(int(epoch)))


def alert_env(target: Target, event: Event, sequence: int) -> dict[str, str]:
    """The environment Pacemaker gives an alert agent for ``event`` (``CRM_alert_*`` and ``CRM_notify_*``)."""
    values: dict[str, str | int | None] = {
        "kind": event.kind,
        "version": ALERT_VERSION,
        "recipient": target.recipient,
        "node_sequence": sequence,
        "timestamp": format_timestamp(event.timestamp, target.timestamp_format),
        "timestamp_epoch": int(event.timestamp),
        "timestamp_usec": round(event.timestamp * 1e6) % 1_000_000,
        "node": event.node,
        "nodeid": event.nodeid,
        "desc": event.desc,
        "rsc": event.rsc,
        "task": event.task,
        "interval": event.interval_ms,
        "rc": event.rc,
        "target_rc": event.target_rc,
        "status": event.status,
        "attribute_name": event.attribute_name,
        "attribute_value": event.attribute_value,
    }
    env = dict(target.env)
    for name, value in values.items():
        if value is not None:
            env[f"CRM_alert_{name}"] = str(value)
            env[f"CRM_notify_{name}"] = str(value)  # the older name, which many scripts still read
    return env


# --- the sans-I/O core -------------------------------------------------------------------------------------


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt to hand one event to one target."""

    target: Target
    event: Event
    attempt: int  # 1 for the first try
    sequence: int  # per target, grows by one per event (CRM_alert_node_sequence)


class TargetStatus(msgspec.Struct, frozen=True, kw_only=True):
    alert_id: str
    recipient: str
    queued: int
    delivered: int
    failed_attempts: int
    given_up: int
    dropped: int
    last_error: str | None = None
    retry_at: float | None = None


@dataclass
class _Queue:
    target: Target
    pending: deque[tuple[int, Event]] = field(default_factory=deque)
    in_flight: bool = False
    attempt: int = 0
    next_try: float = 0.0
    sequence: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    dropped: int = 0
    last_error: str | None = None


class AlertQueue:
    """Per-target ordered queues with retry and backoff. No I/O, no clock: ``now`` is always passed in."""

    def __init__(
        self,
        targets: Iterable[Target] = (),
        *,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_attempts: int = 5,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_attempts = max_attempts
        self.max_queue = max_queue
        self._queues: dict[tuple[str, str], _Queue] = {}
        self.configure(targets)

    def configure(self, targets: Iterable[Target]) -> None:
        """Follow a config change: new targets get a queue, removed ones lose it, others keep theirs."""
        new: dict[tuple[str, str], _Queue] = {}
        for target in targets:
            old = self._queues.get(target.key)
            if old is not None:
                old.target = target
                new[target.key] = old
            else:
                new[target.key] = _Queue(target)
        self._queues = new

    def push(self, event: Event) -> int:
        """Queue ``event`` for every target that selects its kind; returns how many did."""
        count = 0
        for q in self._queues.values():
            if not q.target.wants(event):
                continue
            q.sequence += 1
            q.pending.append((q.sequence, event))
            if len(q.pending) > self.max_queue:  # bounded memory: the oldest waiting event goes
                del q.pending[1 if q.in_flight else 0]
                q.dropped += 1
            count += 1
        return count

    def ready(self, now: float) -> list[Delivery]:
        """Deliveries to start now: the head of each idle queue whose retry time has come."""
        out = []
        for q in self._queues.values():
            if q.in_flight or not q.pending or q.next_try > now:
                continue
            q.in_flight = True
            q.attempt += 1
            sequence, event = q.pending[0]
            out.append(Delivery(target=q.target, event=event, attempt=q.attempt, sequence=sequence))
        return out

    def done(self, delivery: Delivery, now: float, *, ok: bool, error: str | None = None) -> None:
        """Record how a delivery went: next event, a retry after backoff, or (at the limit) give up."""
        q = self._queues.get(delivery.target.key)
        if q is None or not q.in_flight:
            return  # the target was removed from the configuration meanwhile
        q.in_flight = False
        if ok:
            q.pending.popleft()
            q.delivered += 1
            q.attempt = 0
            q.next_try = now
            return
        q.failed_attempts += 1
        q.last_error = f"event {delivery.event.id} ({delivery.event.desc}), attempt {q.attempt}: {error}"
        if q.attempt >= self.max_attempts:
            q.pending.popleft()
            q.given_up += 1
            q.attempt = 0
            q.next_try = now
            q.last_error += f"; gave up after {self.max_attempts} attempts"
            return
        q.next_try = now + min(self.backoff_max_s, self.backoff_s * 2 ** (q.attempt - 1))

    def next_wakeup(self) -> float | None:
        """When ``ready`` may next return something (None: only after a ``push`` or ``done``)."""
        times = [q.next_try for q in self._queues.values() if q.pending and not q.in_flight]
        return min(times, default=None)

    def idle(self) -> bool:
        return all(not q.pending and not q.in_flight for q in self._queues.values())

    def status(self, now: float) -> list[TargetStatus]:
        return [
            TargetStatus(
                alert_id=q.target.alert_id,
                recipient=q.target.recipient,
                queued=len(q.pending),
                delivered=q.delivered,
                failed_attempts=q.failed_attempts,
                given_up=q.given_up,
                dropped=q.dropped,
                last_error=q.last_error,
                retry_at=q.next_try if q.pending and q.next_try > now else None,
            )
            for q in self._queues.values()
        ]


# --- the asyncio shell -------------------------------------------------------------------------------------


def _outcome(result: RawResult) -> tuple[bool, str | None]:
    if result.spawn_error:
        return False, result.spawn_error
    if result.timed_out:
        return False, "timed out"
    if result.exit_code == 0:
        return True, None
    reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    code = f"exit code {result.exit_code}" if result.exit_code is not None else f"signal {result.signal}"
    return False, f"{code}{': ' + reason if reason else ''}"


async def run_agent(delivery: Delivery) -> tuple[bool, str | None]:
    target = delivery.target
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    env.update(alert_env(target, delivery.event, delivery.sequence))
    result = await run_invocation(Invocation(argv=[target.path], env=env), target.timeout_s)
    return _outcome(result)


async def post_webhook(delivery: Delivery) -> tuple[bool, str | None]:
    body = {
        "recipient": delivery.target.recipient,
        "sequence": delivery.sequence,
        "event": msgspec.to_builtins(delivery.event),
    }
    try:
        async with httpx.AsyncClient(timeout=delivery.target.timeout_s) as client:
            resp = await client.post(delivery.target.path, json=body)
    except httpx.HTTPError as err:
        return False, f"{type(err).__name__}: {err}"
    if resp.is_success:
        return True, None
    return False, f"HTTP {resp.status_code}"


Deliver = Callable[[Delivery], Awaitable[tuple[bool, str | None]]]


class AlertRunner:
    """Drives an ``AlertQueue``: starts ready deliveries, sleeps until the next retry or a new event.

    ``push`` never blocks, so the controller can hand events over from anywhere on the loop.
    """

    def __init__(
        self,
        queue: AlertQueue,
        *,
        clock: Callable[[], float] = time.time,
        agent: Deliver = run_agent,
        webhook: Deliver = post_webhook,
    ) -> None:
        self.queue = queue
        self.clock = clock
        self.agent = agent
        self.webhook = webhook
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def push(self, event: Event) -> None:
        if self.queue.push(event):
            self._wake.set()

    async def _deliver(self, delivery: Delivery) -> None:
        run = self.webhook if delivery.target.is_webhook else self.agent
        try:
            ok, error = await run(delivery)
        except Exception as err:  # a bug in delivery must not stop the other queues
            ok, error = False, f"{type(err).__name__}: {err}"
        self.queue.done(delivery, self.clock(), ok=ok, error=error)
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled."""
        try:
            while True:
                self._wake.clear()
                for delivery in self.queue.ready(self.clock()):
                    task = asyncio.ensure_future(self._deliver(delivery))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                wakeup = self.queue.next_wakeup()
                delay = None if wakeup is None else max(0.0, wakeup - self.clock())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            for task in list(self._tasks):
                task.cancel()


async def follow(handle: ClusterHandle, runner: AlertRunner, since: int = 0) -> None:
    """Feed the cluster's event stream to ``runner``, following alert configuration changes. Runs until
    cancelled; the daemon starts it next to ``runner.run()``."""
    digest: bytes | None = None
    async for event in handle.subscribe(since):
        alerts = handle.cib().configuration.alerts
        current = msgspec.json.encode(alerts)
        if current != digest:
            runner.queue.configure(targets_from_cib(handle.cib().configuration))
            digest = current
        runner.push(event)
