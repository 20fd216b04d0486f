"""Watchdog self-fencing (the role sbd plays) for clusters without a power switch.

Two sans-I/O cores and two thin shells:

- :class:`SelfFencer` runs on every node. While all is well it asks for the watchdog to be petted. When the
  node loses quorum it asks for every resource to be stopped at once and keeps petting only until
  ``watchdog_timeout`` has passed; if the stop has not been reported by then it stops petting and asks for a
  reset. A daemon that hangs stops petting by itself (nobody calls :meth:`SelfFencer.tick`), so the watchdog
  resets the node within its timeout either way.
- :class:`PeerWatchdogTracker` runs on the quorate side's DC. A lost node counts as fenced only once
  ``stonith-watchdog-timeout`` has passed since it was lost *while this side held quorum*. Set
  ``stonith-watchdog-timeout`` to at least twice the nodes' watchdog timeout: the isolated node may notice
  its loss of quorum up to one watchdog timeout late, and its reset can take another.
- :class:`DeviceWatchdog` pets ``/dev/watchdog`` (softdog or hardware) when present.
  :class:`SimulatedWatchdog` is for tests and labs: when not petted in time it kills a process group, the
  way a reset would end every process of a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import os
import signal
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from hakeeper.cib.model import FenceEvent

WDIOC_SETTIMEOUT = 0xC0045706
"""``_IOWR('W', 6, int)`` from ``linux/watchdog.h``: set the timeout in seconds."""
MAGIC_CLOSE = b"V"


class Pet(msgspec.Struct, frozen=True):
    """Pet the watchdog now."""


class StopResources(msgspec.Struct, frozen=True):
    """Stop every resource on this node now; report :meth:`SelfFencer.resources_stopped` when done."""

    reason: str


class SelfReset(msgspec.Struct, frozen=True):
    """Do not pet again: the watchdog will reset this node (the shell may also reset it at once)."""

    reason: str


SelfOutput = Pet | StopResources | SelfReset


class SelfState(enum.Enum):
    HEALTHY = "healthy"
    STOPPING = "stopping"  # quorum lost, resources being stopped, deadline running
    STOPPED = "stopped"  # quorum lost, every resource stopped: safe, keeps petting
    RESET = "reset"


class SelfFencer:
    """The node-local watchdog core (see the module docstring). Times are monotonic seconds."""

    def __init__(self, watchdog_timeout_s: float, *, pet_interval_s: float | None = None) -> None:
        if watchdog_timeout_s <= 0:
            raise ValueError("the watchdog timeout must be positive")
        self.timeout_s = watchdog_timeout_s
        self.pet_interval_s = pet_interval_s if pet_interval_s is not None else watchdog_timeout_s / 3
        self.state = SelfState.HEALTHY
        self._next_pet: float | None = None
        self._stop_deadline: float | None = None

    def start(self, now: float) -> list[SelfOutput]:
        self._next_pet = now
        return self.tick(now)

    def next_deadline(self) -> float | None:
        if self.state is SelfState.RESET:
            return None
        times = [t for t in (self._next_pet, self._stop_deadline) if t is not None]
        return min(times, default=None)

    def tick(self, now: float) -> list[SelfOutput]:
        if self.state is SelfState.RESET:
            return []
        if self._stop_deadline is not None and now >= self._stop_deadline:
            self.state = SelfState.RESET
            self._next_pet = self._stop_deadline = None
            why = f"quorum lost and resources not stopped within the {self.timeout_s:g}s watchdog timeout"
            return [SelfReset(reason=why)]
        if self._next_pet is not None and now >= self._next_pet:
            self._next_pet = now + self.pet_interval_s
            return [Pet()]
        return []

    def quorum_lost(self, now: float) -> list[SelfOutput]:
        if self.state is not SelfState.HEALTHY:
            return []
        self.state = SelfState.STOPPING
        self._stop_deadline = now + self.timeout_s
        return [StopResources(reason="this node lost quorum"), *self.tick(now)]

    def resources_stopped(self, now: float) -> list[SelfOutput]:
        if self.state is SelfState.STOPPING and self._stop_deadline is not None and now < self._stop_deadline:
            self.state = SelfState.STOPPED
            self._stop_deadline = None
        return self.tick(now)

    def quorum_regained(self, now: float) -> list[SelfOutput]:
        if self.state in (SelfState.STOPPING, SelfState.STOPPED):
            self.state = SelfState.HEALTHY
            self._stop_deadline = None
        return self.tick(now)


# --- the quorate side -------------------------------------------------------------------------------


class WatchdogFenced(msgspec.Struct, frozen=True, kw_only=True):
    """``node`` may now be treated as fenced (record ``event`` in the fencing history)."""

    node: str
    event: FenceEvent


class PeerWatchdogTracker:
    """Counts lost nodes as fenced once ``stonith-watchdog-timeout`` has passed while quorate."""

    def __init__(self, stonith_watchdog_timeout_s: float, *, origin: str) -> None:
        if stonith_watchdog_timeout_s <= 0:
            raise ValueError("watchdog fencing needs stonith-watchdog-timeout > 0")
        self.timeout_s = stonith_watchdog_timeout_s
        self.origin = origin
        self._quorate = False
        self._lost: dict[str, tuple[float, float]] = {}  # node -> (counting since, wall when lost)

    def set_quorate(self, quorate: bool, now: float) -> None:
        """Time without quorum does not count: on regaining it, every wait starts again."""
        if quorate and not self._quorate:
            self._lost = {n: (max(since, now), wall) for n, (since, wall) in self._lost.items()}
        self._quorate = quorate

    def node_lost(self, node: str, now: float, *, wall: float | None = None) -> None:
        self._lost.setdefault(node, (now, wall if wall is not None else now))

    def node_seen(self, node: str) -> None:
        """The node is back (it was not reset, or it rebooted and rejoined): stop waiting."""
        self._lost.pop(node, None)

    def waiting(self) -> dict[str, float]:
        """Lost nodes and when each will count as fenced (if quorum holds)."""
        return {n: since + self.timeout_s for n, (since, _) in self._lost.items()}

    def next_deadline(self) -> float | None:
        return min(self.waiting().values(), default=None) if self._quorate else None

    def tick(self, now: float, *, wall: float | None = None) -> list[WatchdogFenced]:
        if not self._quorate:
            return []
        out = []
        for node, (since, lost_wall) in sorted(self._lost.items()):
            if now - since >= self.timeout_s:
                del self._lost[node]
                event = FenceEvent(
                    target=node,
                    action="off",
                    state="done",
                    origin=self.origin,
                    delegate=node,
                    device="watchdog",
                    client="watchdog",
                    requested=int(lost_wall),
                    completed=int(wall if wall is not None else now),
                    reason=f"self-fenced: lost for {self.timeout_s:g}s (stonith-watchdog-timeout)",
                )
                out.append(WatchdogFenced(node=node, event=event))
        return out


# --- shells -----------------------------------------------------------------------------------------


class DeviceWatchdog:
    """``/dev/watchdog``: opening it arms it; each write pets it; ``V`` before closing disarms it.

    Only for real nodes: opening a watchdog that is then not petted resets the machine.
    """

    def __init__(self, path: str = "/dev/watchdog") -> None:
        self.path = path
        self._fd: int | None = None

    @staticmethod
    def present(path: str = "/dev/watchdog") -> bool:
        return os.path.exists(path)

    def open(self, timeout_s: int) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # not every driver lets the timeout be changed
            fcntl.ioctl(self._fd, WDIOC_SETTIMEOUT, struct.pack("i", max(1, int(timeout_s))))

    def pet(self) -> None:
        if self._fd is not None:
            os.write(self._fd, b"\0")

    def disarm(self) -> None:
        """A clean shutdown: tell the driver not to reset, then close."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._fd, MAGIC_CLOSE)
            os.close(self._fd)
            self._fd = None

    def abandon(self) -> None:
        """Close without the magic character: the watchdog resets the node at its timeout."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SimulatedWatchdog:
    """A watchdog for tests: if not petted within ``timeout_s`` it SIGKILLs process group ``pgid``."""

    def __init__(self, pgid: int, timeout_s: float) -> None:
        self.pgid = pgid
        self.timeout_s = timeout_s
        self.fired = False
        self._task: asyncio.Task[None] | None = None

    def pet(self) -> None:
        if self.fired:
            return
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.get_running_loop().create_task(self._countdown())

    async def _countdown(self) -> None:
        await asyncio.sleep(self.timeout_s)
        self.fired = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signal.SIGKILL)

    def disarm(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class Pettable(Protocol):
    def pet(self) -> None: ...


class WatchdogDriver:
    """Runs a :class:`SelfFencer` on a real clock: pets ``watchdog``, stops resources, stops petting.

    ``stop_resources`` must stop every resource of the node and return when done (raise if it cannot);
    the driver reports the success to the core. Feed quorum changes with :meth:`quorum_lost` and
    :meth:`quorum_regained`. If the event loop hangs, nothing pets the watchdog, which is the point.
    """

    def __init__(
        self,
        core: SelfFencer,
        watchdog: Pettable,
        stop_resources: Callable[[], Awaitable[object]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.core = core
        self.watchdog = watchdog
        self.stop_resources = stop_resources
        self.clock = clock
        self.reset_reason = ""
        self._wake = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Until the core asks for a reset (then return, leaving the watchdog unpetted)."""
        self._apply(self.core.start(self.clock()))
        while self.core.state is not SelfState.RESET:
            deadline = self.core.next_deadline()
            wait = max(0.0, deadline - self.clock()) if deadline is not None else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()
            self._apply(self.core.tick(self.clock()))

    def quorum_lost(self) -> None:
        self._handle(self.core.quorum_lost(self.clock()))

    def quorum_regained(self) -> None:
        self._handle(self.core.quorum_regained(self.clock()))

    def _handle(self, outputs: list[SelfOutput]) -> None:
        """Outputs of an event from outside the loop: apply them and let the loop re-plan its wait."""
        self._apply(outputs)
        self._wake.set()

    def _apply(self, outputs: list[SelfOutput]) -> None:
        for out in outputs:
            if isinstance(out, Pet):
                self.watchdog.pet()
            elif isinstance(out, StopResources) and self._stopping is None:
                self._stopping = asyncio.get_running_loop().create_task(self._stop())
            elif isinstance(out, SelfReset):
                self.reset_reason = out.reason

    async def _stop(self) -> None:
        try:
            await self.stop_resources()
        except Exception:  # a failed stop is exactly what the watchdog is for
            return
        finally:
            self._stopping = None
        self._handle(self.core.resources_stopped(self.clock()))
