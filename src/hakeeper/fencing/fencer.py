"""The sans-I/O fencing core: from "fence this node" to device attempts, retries, delays and history.

The DC's controller owns one :class:`Fencer`. It calls :meth:`Fencer.request` when a node must be fenced,
:meth:`Fencer.tick` at :meth:`Fencer.next_deadline`, and :meth:`Fencer.result` with what each
:class:`RunDevice` produced. Outputs say what to run where (:class:`RunDevice`), what to write into the CIB's
fencing history (:class:`RecordEvent`) and when a request is over (:class:`FencingFinished`). Nothing here
reads a clock or draws unseeded random numbers: ``now`` is monotonic seconds, ``wall`` (epoch seconds, for
the history; defaults to ``now``) is passed in, and the random delays come from the injected ``rng``.

Rules:
- **Never the target.** Each attempt runs on a current member other than the target: the requesting node
  first, then the others in name order, rotating on retries so that a node that cannot reach the device
  does not fail every try. With no such member the attempt fails (and is retried: a node may join).
- **Levels.** The plan comes from :mod:`~hakeeper.fencing.topology`. Within a level devices run one after
  the other and all must succeed; a failed device (after its retries) fails the level and the next level
  starts. When every level has failed, the whole plan is tried again after a backoff, up to
  ``stonith-max-attempts`` rounds; then the request fails for good and the node stays unclean.
- **Retries.** A device is tried ``1 + pcmk_<action>_retries`` times per round, with exponential backoff.
- **Delays** (the fencing race of two partitions): before a device's first attempt in a request, its
  ``pcmk_delay_base`` plus a random part so that the total is at most ``pcmk_delay_max``; before the very
  first attempt also ``priority-fencing-delay`` when the target is the node running the most important
  resources and this partition has no majority, so that node wins a 2-node race.
- **History.** A request is recorded ``pending``; every failed attempt ``failed`` (device, executor, why);
  a device that succeeded while its level still has devices to go is recorded ``pending`` (the node is not
  fenced yet!); only a whole level succeeding records ``done``. Consumers take a target's latest event.
- **Watchdog fencing.** With no device able to fence the target and ``stonith-watchdog-timeout`` set, the
  request completes (``done``, device ``watchdog``) once that timeout has passed with this side quorate:
  the target, which lost quorum, has stopped its resources or reset itself by then
  (:mod:`~hakeeper.fencing.watchdog`). Time without quorum does not count (:meth:`Fencer.set_quorate`).
  A target that is still a member (:meth:`Fencer.set_members`) has not lost quorum and will not reset
  itself: such a request fails at once rather than reporting a fence that did not happen.
- Requests to power off a node that is already being powered off (off or reboot) are merged.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from hakeeper.cib.model import Configuration, FenceEvent, FencingLevel
from hakeeper.fencing.devices import (
    Capability,
    FenceDevice,
    FencingOptions,
    can_fence,
    devices_from_config,
    effective_host_check,
)
from hakeeper.fencing.topology import Level, Plan, all_node_attributes, plan_for

RESULT_GRACE_S = 10.0
"""How long past an attempt's timeout the core waits for its result before declaring it lost."""
_POWER_OFF = frozenset({"off", "reboot"})
State = Literal["pending", "done", "failed"]


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    """Delay before retry ``n`` (1-based): ``base_s * factor**(n-1)``, at most ``cap_s``."""

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 30.0

    def delay(self, n: int) -> float:
        return min(self.cap_s, self.base_s * self.factor ** max(0, n - 1))


class PriorityInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What ``priority-fencing-delay`` needs: each node's resource priority and the partition's size."""

    node_priorities: dict[str, int] = {}
    partition_size: int = 0
    cluster_size: int = 0


def node_priority(resources: Iterable[tuple[int, bool]]) -> int:
    """A node's priority: the sum of its resources' ``priority``; a promoted instance counts one more
    (when its priority is not 0), as Pacemaker computes it. ``resources`` is ``(priority, promoted)``."""
    return sum(prio + (1 if promoted and prio else 0) for prio, promoted in resources)


def priority_delay_s(target: str, info: PriorityInfo | None, delay_ms: int) -> float:
    """The priority fencing delay for ``target`` (0 unless this partition lacks a majority and the target
    runs strictly the most important resources)."""
    if info is None or delay_ms <= 0 or not info.node_priorities:
        return 0.0
    if info.partition_size * 2 > info.cluster_size:
        return 0.0
    prios = info.node_priorities
    top, low = max(prios.values()), min(prios.values())
    if top == low or prios.get(target, 0) < top:
        return 0.0
    return delay_ms / 1000.0


def device_delay_s(device: FenceDevice, target: str, rng: random.Random) -> float:
    """``pcmk_delay_base`` plus a random part, the total at most ``pcmk_delay_max`` (whole ms)."""
    base, top = device.static_delay_ms(target), device.delay_max_ms
    if top <= 0:
        return base / 1000.0
    base = min(base, top)
    return (base + rng.randint(0, top - base)) / 1000.0


# --- reading the history ----------------------------------------------------------------------------


def latest_event(history: Sequence[FenceEvent], target: str) -> FenceEvent | None:
    """The most recent event about ``target`` (the last one in the list: history is append-only)."""
    return next((e for e in reversed(history) if e.target == target), None)


def fenced_since(history: Sequence[FenceEvent], target: str, since: int) -> bool:
    """Whether ``target`` was fenced (off or reboot, by a device, the watchdog or an operator) at or after
    epoch second ``since``. This is the confirmation recovery must wait for: a node lost at ``since`` may
    have its resources started elsewhere only when this is True."""
    return any(
        e.target == target
        and e.state == "done"
        and e.action in _POWER_OFF
        and e.completed is not None
        and e.completed >= since
        for e in history
    )


# --- outputs ----------------------------------------------------------------------------------------


class FencingPlanned(msgspec.Struct, frozen=True, kw_only=True):
    """A request was accepted: the plan, and when its first attempt will start (after the delays)."""

    request_id: int
    target: str
    action: str
    plan: Plan
    first_attempt_at: float
    delay_s: float


class RunDevice(msgspec.Struct, frozen=True, kw_only=True):
    """Run ``action`` of ``device`` against ``target`` on node ``executor`` now; report with ``result``."""

    attempt_id: int
    request_id: int
    device: str
    target: str
    action: str
    executor: str
    timeout_s: float
    level: int = 0
    """The index of the level (topology) or the position in the device order this attempt belongs to."""
    round: int = 1


class RecordEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Append ``event`` to the CIB's fencing history."""

    event: FenceEvent


class FencingFinished(msgspec.Struct, frozen=True, kw_only=True):
    """A request is over. ``ok``: the target is fenced (policy may now recover its resources)."""

    request_id: int
    target: str
    action: str
    ok: bool
    reason: str = ""
    devices: tuple[str, ...] = ()
    delegate: str | None = None
    attempts: int = 0
    event: FenceEvent | None = None
    """The request's final history record (also emitted as a :class:`RecordEvent`): the one to hand to the
    controller as *the* result. Earlier records of the request (pending, failed attempts) are history only."""


Output = FencingPlanned | RunDevice | RecordEvent | FencingFinished


# --- state ------------------------------------------------------------------------------------------


@dataclass
class _Attempt:
    id: int
    device: str
    executor: str
    deadline: float


@dataclass
class _Request:
    id: int
    target: str
    action: str
    origin: str
    client: str
    requested_wall: int
    plan: Plan
    levels: tuple[Level, ...]
    round: int = 1
    level_pos: int = 0
    device_pos: int = 0
    tries: int = 0
    attempts: int = 0
    due: float | None = None
    running: _Attempt | None = None
    delayed: set[str] = field(default_factory=set)
    watchdog: bool = False

    @property
    def level(self) -> Level:
        return self.levels[self.level_pos]

    @property
    def device(self) -> str:
        return self.level.devices[self.device_pos]


class Fencer:
    """The DC's fencing state machine (see the module docstring)."""

    def __init__(
        self,
        devices: Mapping[str, FenceDevice],
        topology: Sequence[FencingLevel] = (),
        options: FencingOptions | None = None,
        *,
        rng: random.Random,
        node_attrs: Mapping[str, Mapping[str, str]] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._devices = dict(devices)
        self._topology = list(topology)
        self._options = options or FencingOptions()
        self._node_attrs = {k: dict(v) for k, v in (node_attrs or {}).items()}
        self._rng = rng
        self._backoff = backoff or Backoff()
        self._members: tuple[str, ...] = ()
        self._lists: dict[str, frozenset[str]] = {}
        self._agent_actions: dict[str, frozenset[str]] = {}
        self._requests: dict[int, _Request] = {}
        self._next_id = 1
        self._quorate = True

    @classmethod
    def from_config(
        cls,
        config: Configuration,
        *,
        rng: random.Random,
        backoff: Backoff | None = None,
        now: int | None = None,
    ) -> tuple[Fencer, dict[str, str]]:
        """A fencer for ``config``, and the devices that could not be used (id -> why: raise them!).

        Raises :class:`~hakeeper.fencing.devices.DeviceError` when a fencing cluster property is invalid.
        """
        devset = devices_from_config(config, now=now)
        fencer = cls(
            devset.devices,
            config.fencing_topology,
            devset.options,
            rng=rng,
            node_attrs=all_node_attributes(config, now),
            backoff=backoff,
        )
        return fencer, dict(devset.errors)

    def reconfigure_from(self, config: Configuration, *, now: int | None = None) -> dict[str, str]:
        """:meth:`reconfigure` from a new configuration; returns the devices that could not be used."""
        devset = devices_from_config(config, now=now)
        self.reconfigure(
            devset.devices, config.fencing_topology, devset.options, all_node_attributes(config, now)
        )
        return dict(devset.errors)

    # --- inputs that are not events ---------------------------------------------------------------

    def reconfigure(
        self,
        devices: Mapping[str, FenceDevice],
        topology: Sequence[FencingLevel] = (),
        options: FencingOptions | None = None,
        node_attrs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """New configuration; requests in progress keep their plans."""
        self._devices = dict(devices)
        self._topology = list(topology)
        self._options = options or self._options
        if node_attrs is not None:
            self._node_attrs = {k: dict(v) for k, v in node_attrs.items()}

    def set_dynamic_list(self, device: str, ports: frozenset[str]) -> None:
        """The ports ``device``'s ``list`` action printed last (for ``dynamic-list`` host checks)."""
        self._lists[device] = ports

    def set_agent_actions(self, agent: str, actions: frozenset[str]) -> None:
        """The actions ``agent``'s metadata advertises (for deriving ``pcmk_host_check``)."""
        self._agent_actions[agent] = actions

    def set_members(self, members: Iterable[str], now: float, wall: float | None = None) -> list[Output]:
        """The nodes that may run devices now; an attempt on a node that left fails at once."""
        self._members = tuple(dict.fromkeys(members))
        out: list[Output] = []
        for req in list(self._requests.values()):
            if req.running is not None and req.running.executor not in self._members:
                why = f"{req.running.executor} left the cluster before reporting the result"
                out += self._attempt_failed(req, now, wall, why)
        return out

    # --- queries ----------------------------------------------------------------------------------

    def capability(self, device: FenceDevice, node: str) -> Capability:
        check = effective_host_check(device, self._agent_actions.get(device.agent))
        return can_fence(device, node, host_check=check, dynamic_list=self._lists.get(device.id))

    def plan(self, target: str) -> Plan:
        return plan_for(target, self._devices, self._topology, self._node_attrs.get(target), self.capability)

    def in_progress(self, target: str) -> bool:
        return any(r.target == target for r in self._requests.values())

    def next_deadline(self) -> float | None:
        times = [r.due for r in self._requests.values() if r.due is not None]
        times += [r.running.deadline for r in self._requests.values() if r.running is not None]
        return min(times, default=None)

    # --- events -----------------------------------------------------------------------------------

    def request(
        self,
        target: str,
        action: str,
        origin: str,
        now: float,
        *,
        wall: float | None = None,
        client: str = "controller",
        priority: PriorityInfo | None = None,
    ) -> list[Output]:
        """Fence ``target`` (``off``/``reboot``/``on``) on behalf of ``origin``."""
        for req in self._requests.values():
            if req.target == target and (req.action == action or {req.action, action} <= _POWER_OFF):
                return []  # merged into the request already running
        plan = self.plan(target)
        req = _Request(
            id=self._next_id,
            target=target,
            action=action,
            origin=origin,
            client=client,
            requested_wall=_epoch(wall, now),
            plan=plan,
            levels=plan.usable_levels,
        )
        self._next_id += 1
        out: list[Output] = [self._record(req, "pending", now, wall)]
        watchdog = not req.levels and self._options.watchdog_timeout_ms > 0 and action in _POWER_OFF
        if watchdog and target in self._members:
            why = (
                f"no fencing device can fence {target}, and watchdog fencing cannot either while {target} "
                "is a member of the cluster: only a node that lost quorum resets itself"
            )
            return out + self._finish(req, now, wall, ok=False, reason=why)
        if watchdog:
            req.watchdog = True  # no device: the target resets itself (it lost quorum); wait for that
            delay = self._options.watchdog_timeout_ms / 1000.0
        elif not req.levels:
            return out + self._finish(req, now, wall, ok=False, reason=_no_device_reason(plan))
        else:
            delay = priority_delay_s(target, priority, self._options.priority_delay_ms)
            delay += self._device_delay(req)
        self._requests[req.id] = req
        req.due = now + delay if self._quorate or not req.watchdog else None
        out.append(
            FencingPlanned(
                request_id=req.id,
                target=target,
                action=action,
                plan=plan,
                first_attempt_at=now + delay,
                delay_s=delay,
            )
        )
        return out + self.tick(now, wall)

    def tick(self, now: float, wall: float | None = None) -> list[Output]:
        """Start attempts that are due; fail attempts whose result never came."""
        out: list[Output] = []
        for req in list(self._requests.values()):
            if req.running is not None and req.running.deadline <= now:
                why = f"no result from {req.running.executor} within the device timeout"
                out += self._attempt_failed(req, now, wall, why)
            if req.id in self._requests and req.due is not None and req.due <= now:
                out += self._watchdog_done(req, now, wall) if req.watchdog else self._start(req, now, wall)
        return out

    def set_quorate(self, quorate: bool, now: float, wall: float | None = None) -> list[Output]:
        """Watchdog fencing counts only time spent with quorum: losing it pauses the waits, and regaining it
        starts each wait again from the beginning (the target may have been quorate meanwhile)."""
        was, self._quorate = self._quorate, quorate
        for req in self._requests.values():
            if req.watchdog and not quorate:
                req.due = None
            elif req.watchdog and not was:
                req.due = now + self._options.watchdog_timeout_ms / 1000.0
        return self.tick(now, wall)

    def cancel(self, target: str, now: float, *, reason: str, wall: float | None = None) -> list[Output]:
        """Give up fencing ``target`` (for example: it rejoined before its watchdog wait ended)."""
        out: list[Output] = []
        for req in [r for r in self._requests.values() if r.target == target]:
            out += self._finish(req, now, wall, ok=False, reason=f"cancelled: {reason}")
        return out

    def result(
        self, attempt_id: int, ok: bool, now: float, *, reason: str = "", wall: float | None = None
    ) -> list[Output]:
        """What a :class:`RunDevice` produced. Unknown or stale attempts are ignored."""
        req = next((r for r in self._requests.values() if r.running and r.running.id == attempt_id), None)
        if req is None or req.running is None:
            return []
        if not ok:
            return self._attempt_failed(req, now, wall, reason or "the device reported a failure")
        attempt, req.running = req.running, None
        req.tries = 0
        req.device_pos += 1
        if req.device_pos < len(req.level.devices):
            nxt = req.device
            note = f"{attempt.device} succeeded; level {req.level.index} still needs {nxt}"
            req.due = now + self._device_delay(req)
            event = self._record(
                req, "pending", now, wall, device=attempt.device, delegate=attempt.executor, reason=note
            )
            return [event, *self.tick(now, wall)]
        return self._finish(req, now, wall, ok=True, delegate=attempt.executor, devices=req.level.devices)

    def confirm(
        self, target: str, origin: str, now: float, *, wall: float | None = None, client: str = "operator"
    ) -> list[Output]:
        """An operator says ``target`` is down (powered off by hand): record it as fenced, end requests.

        Always ends with a :class:`FencingFinished` with ``request_id`` 0 (the operator's answer, under
        ``client``), so the controller treats a confirmation like any completed fencing. A request in
        progress ends with the confirmation recorded under its own ``client``, so whoever waits for that
        request (a transition's fence action) sees it done.
        """
        event = FenceEvent(
            target=target,
            action="off",
            state="done",
            origin=origin,
            delegate=origin,
            device="manual",
            client=client,
            requested=_epoch(wall, now),
            completed=_epoch(wall, now),
            reason="confirmed by an operator",
        )
        out: list[Output] = [RecordEvent(event=event)]
        requests = [r for r in self._requests.values() if r.target == target]
        for req in requests:
            mine = msgspec.structs.replace(event, client=req.client)
            out += self._finish(req, now, wall, ok=True, reason=event.reason or "", recorded=mine)
        # the operator's own answer, also when requests in progress ended with it
        out.append(
            FencingFinished(
                request_id=0, target=target, action="off", ok=True, reason=event.reason or "", event=event
            )
        )
        return out

    # --- internals --------------------------------------------------------------------------------

    def _watchdog_done(self, req: _Request, now: float, wall: float | None) -> list[Output]:
        timeout = self._options.watchdog_timeout_ms / 1000.0
        why = (
            f"no fencing device; {req.target} has reset itself by now (stonith-watchdog-timeout {timeout:g}s)"
        )
        return self._finish(req, now, wall, ok=True, reason=why, delegate=req.target, devices=("watchdog",))

    def _device_delay(self, req: _Request) -> float:
        """The device delay before a device's first attempt in this request (first round only)."""
        if req.round > 1 or req.device in req.delayed:
            return 0.0
        req.delayed.add(req.device)
        device = self._devices.get(req.device)
        return device_delay_s(device, req.target, self._rng) if device else 0.0

    def _executor(self, req: _Request) -> str | None:
        others = [m for m in self._members if m != req.target]
        ordered = ([req.origin] if req.origin in others else []) + sorted(
            m for m in others if m != req.origin
        )
        return ordered[req.tries % len(ordered)] if ordered else None

    def _start(self, req: _Request, now: float, wall: float | None) -> list[Output]:
        req.due = None
        executor = self._executor(req)
        if executor is None:
            return self._attempt_failed(
                req,
                now,
                wall,
                f"no node other than {req.target} is available to run fencing device {req.device}",
                executor=None,
            )
        device = self._devices.get(req.device)
        if device is None:
            return self._attempt_failed(
                req, now, wall, f"device {req.device} is no longer configured", executor=None
            )
        timeout = device.timeout_ms(req.action) / 1000.0
        attempt = _Attempt(
            id=self._next_id, device=req.device, executor=executor, deadline=now + timeout + RESULT_GRACE_S
        )
        self._next_id += 1
        req.running = attempt
        req.attempts += 1
        return [
            RunDevice(
                attempt_id=attempt.id,
                request_id=req.id,
                device=req.device,
                target=req.target,
                action=req.action,
                executor=executor,
                timeout_s=timeout,
                level=req.level.index,
                round=req.round,
            )
        ]

    def _attempt_failed(
        self, req: _Request, now: float, wall: float | None, reason: str, *, executor: str | None = ""
    ) -> list[Output]:
        delegate = req.running.executor if req.running is not None and executor == "" else executor
        device = req.device
        req.running = None
        out: list[Output] = [
            self._record(req, "failed", now, wall, device=device, delegate=delegate, reason=reason)
        ]
        req.tries += 1
        dev = self._devices.get(device)
        if dev is not None and req.tries <= dev.retries_for(req.action):
            req.due = now + self._backoff.delay(req.tries)
            return out
        req.tries, req.device_pos = 0, 0
        req.level_pos += 1
        if req.level_pos < len(req.levels):
            req.due = now + self._device_delay(req)
            return out + self.tick(now, wall)
        if req.round >= self._options.max_attempts:
            why = (
                f"every fencing level failed in {req.round} round(s); the node stays unclean until "
                f"fencing succeeds or an operator confirms it is down. Last error: {reason}"
            )
            return out + self._finish(req, now, wall, ok=False, reason=why)
        req.level_pos = 0
        req.round += 1
        req.due = now + self._backoff.delay(req.round - 1)
        return out

    def _finish(
        self,
        req: _Request,
        now: float,
        wall: float | None,
        *,
        ok: bool,
        reason: str = "",
        delegate: str | None = None,
        devices: tuple[str, ...] = (),
        recorded: FenceEvent | None = None,
    ) -> list[Output]:
        """End ``req``: record its final event (unless ``recorded`` already was) and report it."""
        self._requests.pop(req.id, None)
        out: list[Output] = []
        if recorded is None:
            record = self._record(
                req,
                "done" if ok else "failed",
                now,
                wall,
                device=",".join(devices) or None,
                delegate=delegate,
                reason=reason or None,
            )
            out.append(record)
            recorded = record.event
        out.append(
            FencingFinished(
                request_id=req.id,
                target=req.target,
                action=req.action,
                ok=ok,
                reason=reason,
                devices=devices,
                delegate=delegate,
                attempts=req.attempts,
                event=recorded,
            )
        )
        return out

    def _record(
        self,
        req: _Request,
        state: State,
        now: float,
        wall: float | None,
        *,
        device: str | None = None,
        delegate: str | None = None,
        reason: str | None = None,
    ) -> RecordEvent:
        done = state in ("done", "failed")
        event = FenceEvent(
            target=req.target,
            action=req.action,
            state=state,
            origin=req.origin,
            delegate=delegate,
            device=device,
            client=req.client,
            requested=req.requested_wall,
            completed=_epoch(wall, now) if done else None,
            reason=reason or None,
        )
        return RecordEvent(event=event)


def _epoch(wall: float | None, now: float) -> int:
    return int(wall if wall is not None else now)


def _no_device_reason(plan: Plan) -> str:
    if not plan.levels:
        return f"no fencing device can fence {plan.target}"
    problems = "; ".join(p for level in plan.levels for p in level.problems)
    return f"no fencing level for {plan.target} can work: {problems}"


# --- recurring device checks ------------------------------------------------------------------------


class RunCheck(msgspec.Struct, frozen=True, kw_only=True):
    """Run ``action`` (``monitor`` or ``list``) of ``device`` on any healthy node; report with ``checked``."""

    device: str
    action: Literal["monitor", "list"]


class DeviceHealthChanged(msgspec.Struct, frozen=True, kw_only=True):
    """A device's monitor result changed (reported on change only). Raise it in status when not ok."""

    device: str
    ok: bool
    reason: str = ""


class DynamicListChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The ports a device's ``list`` reports changed: pass them to :meth:`Fencer.set_dynamic_list`."""

    device: str
    ports: frozenset[str]


CheckOutput = RunCheck | DeviceHealthChanged | DynamicListChanged


@dataclass
class _Checked:
    next_due: float
    running: bool = False
    ok: bool | None = None
    ports: frozenset[str] | None = None


class DeviceMonitor:
    """Schedules each device's recurring ``monitor`` (and ``list`` for dynamic-list devices).

    A check is due every ``monitor_interval_ms`` after the previous one *finished*; a device with
    interval 0 is never checked. Results are reported upward only when they change.
    """

    def __init__(self, devices: Mapping[str, FenceDevice], now: float, dynamic: Iterable[str] = ()) -> None:
        self._devices: dict[str, FenceDevice] = {}
        self._state: dict[tuple[str, str], _Checked] = {}
        self.reconfigure(devices, now, dynamic)

    def reconfigure(
        self, devices: Mapping[str, FenceDevice], now: float, dynamic: Iterable[str] = ()
    ) -> None:
        """New devices are checked at once; removed ones are forgotten; ``dynamic`` ones also listed."""
        wanted = {(d.id, "monitor") for d in devices.values() if d.enabled and d.monitor_interval_ms > 0}
        wanted |= {(d, "list") for d in dynamic if d in devices and devices[d].enabled}
        self._devices = dict(devices)
        self._state = {key: self._state.get(key) or _Checked(next_due=now) for key in sorted(wanted)}

    def next_deadline(self) -> float | None:
        return min((c.next_due for c in self._state.values() if not c.running), default=None)

    def tick(self, now: float) -> list[CheckOutput]:
        out: list[CheckOutput] = []
        for (device, action), checked in self._state.items():
            if not checked.running and checked.next_due <= now:
                checked.running = True
                out.append(RunCheck(device=device, action="list" if action == "list" else "monitor"))
        return out

    def checked(
        self,
        device: str,
        action: str,
        ok: bool,
        now: float,
        *,
        reason: str = "",
        ports: frozenset[str] | None = None,
    ) -> list[CheckOutput]:
        """The result of a :class:`RunCheck`; unknown devices (removed meanwhile) are ignored."""
        checked = self._state.get((device, action))
        dev = self._devices.get(device)
        if checked is None or dev is None:
            return []
        checked.running = False
        interval = dev.monitor_interval_ms or 60_000
        checked.next_due = now + interval / 1000.0
        if action == "list":
            if ok and ports is not None and ports != checked.ports:
                checked.ports = ports
                return [DynamicListChanged(device=device, ports=ports)]
            return []
        if ok != checked.ok:
            checked.ok = ok
            return [DeviceHealthChanged(device=device, ok=ok, reason="" if ok else reason)]
        return []
