"""The daemon's watchdog self-fencing (the role sbd plays next to Pacemaker).

With ``[fencing] watchdog`` (or ``simulated_watchdog``) set, the daemon opens the watchdog at start and pets
it from its event loop through :class:`~hakeeper.fencing.watchdog.WatchdogDriver`. When this node loses
quorum, the member core stops every resource here (``no-quorum-policy`` is read as ``stop``: the quorate
side will count this node as fenced after ``stonith-watchdog-timeout``, so nothing may keep running); if the
stops are not done within ``watchdog_timeout`` the driver stops petting and the watchdog resets the node. A
daemon whose loop hangs stops petting by itself. A clean stop disarms the watchdog (the magic close).

The quorate side is the DC's fencer (:mod:`hakeeper.fencing.fencer`): for a lost node no device can fence
it waits ``stonith-watchdog-timeout`` with quorum and then records it fenced with device ``watchdog``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from hakeeper.cib.values import parse_duration_ms
from hakeeper.daemon.config import DaemonConfig
from hakeeper.fencing.simwatchdog import PetFile
from hakeeper.fencing.watchdog import DeviceWatchdog, SelfFencer, WatchdogDriver

log = logging.getLogger("hakeeper.daemon.selffence")

STOP_POLL_S = 0.1
UNSAFE_POLICIES = frozenset({"freeze", "ignore", "demote"})


class Watchdog(Protocol):
    def open(self, timeout_s: int) -> None: ...
    def pet(self) -> None: ...
    def disarm(self) -> None: ...
    def abandon(self) -> None: ...


class SelfFenceError(Exception):
    """The configured watchdog cannot be used; the daemon must not run without it."""


def open_watchdog(config: DaemonConfig) -> Watchdog | None:
    """The configured watchdog, opened (armed); None when self-fencing is off."""
    timeout_s = max(1, config.watchdog_timeout_ms // 1000)
    watchdog: Watchdog
    if config.watchdog_device is not None:
        watchdog, where = DeviceWatchdog(str(config.watchdog_device)), str(config.watchdog_device)
    elif config.simulated_watchdog is not None:
        watchdog, where = PetFile(config.simulated_watchdog), str(config.simulated_watchdog)
    else:
        return None
    try:
        watchdog.open(timeout_s)
    except OSError as err:
        raise SelfFenceError(
            f"cannot open the watchdog {where}: {err.strerror or err}. Watchdog self-fencing is configured "
            "([fencing] in the daemon configuration), and the other nodes will count this node as fenced "
            "when it is lost, so it must not run without one: load a watchdog driver (or softdog), check "
            "that no other program (sbd, watchdogd) holds the device, or remove the [fencing] watchdog"
        ) from err
    return watchdog


def stonith_watchdog_warning(config: DaemonConfig, property_value: str | None) -> str | None:
    """A sentence when the cluster's ``stonith-watchdog-timeout`` and this node's watchdog do not fit."""
    text = (property_value or "").strip()
    try:
        cluster_ms = 0 if not text or text.startswith("-") else parse_duration_ms(text)
    except ValueError:
        return None  # the fencing layer reports an unreadable property
    if not config.watchdog_enabled:
        if cluster_ms == 0:
            return None
        return (
            f"stonith-watchdog-timeout is {text}, so the other nodes count this node as fenced that long "
            "after losing it, but this node has no watchdog ([fencing] watchdog in its daemon "
            "configuration): if it is cut off and cannot stop its resources, nothing resets it"
        )
    if cluster_ms == 0:
        return (
            "this node has a watchdog but the cluster property stonith-watchdog-timeout is not set: the "
            "other nodes will not count on it (set it to at least twice the watchdog timeout)"
        )
    if cluster_ms >= 2 * config.watchdog_timeout_ms:
        return None
    return (
        f"stonith-watchdog-timeout ({text}) is less than twice this node's watchdog timeout "
        f"({config.watchdog_timeout_ms / 1000:g}s): the other nodes may recover this node's resources "
        "before it has stopped them or been reset; set it to at least twice the watchdog timeout"
    )


class SelfFencing:
    """Watchdog self-fencing for one daemon; does nothing when the configuration has no watchdog.

    ``active`` tells how many resources still run on this node (the member core's view of its LRM).
    """

    def __init__(self, config: DaemonConfig, node: str, active: Callable[[], int]) -> None:
        self.config = config
        self.node = node
        self.active = active
        self.watchdog: Watchdog | None = None
        self.driver: WatchdogDriver | None = None
        self._quorate = False
        self._warned = ""

    @property
    def enabled(self) -> bool:
        return self.config.watchdog_enabled

    def open(self) -> None:
        """Arm the watchdog (raises :class:`SelfFenceError`); from now on it must be petted."""
        self.watchdog = open_watchdog(self.config)
        if self.watchdog is not None:
            core = SelfFencer(self.config.watchdog_timeout_ms / 1000)
            self.driver = WatchdogDriver(core, self.watchdog, self._stop_resources)

    async def run(self) -> None:
        """Pet until the core decides on a reset; then leave the watchdog unpetted (it resets the node)."""
        if self.driver is None or self.watchdog is None:
            return
        await self.driver.run()
        log.critical(
            "%s: %s: the watchdog will reset this node within %gs",
            self.node,
            self.driver.reset_reason,
            self.config.watchdog_timeout_ms / 1000,
        )
        self.watchdog.abandon()
        self.watchdog = None

    def no_quorum_policy(self, configured: str) -> str:
        """The policy to apply on losing quorum: with self-fencing, whatever would keep resources running
        becomes ``stop`` (the others will take this node for fenced)."""
        policy = configured.strip().lower() or "stop"
        if self.enabled and policy in UNSAFE_POLICIES:
            log.warning(
                "%s: no-quorum-policy=%s does not stop resources, but with watchdog self-fencing the other "
                "nodes recover them after stonith-watchdog-timeout: stopping them here instead",
                self.node,
                policy,
            )
            return "stop"
        return policy

    def quorum_changed(self, quorate: bool, stonith_watchdog_timeout: str = "") -> None:
        """Quorum changed; ``stonith_watchdog_timeout`` is the cluster property now (checked once)."""
        was, self._quorate = self._quorate, quorate
        if was == quorate:
            return
        if quorate:
            warning = stonith_watchdog_warning(self.config, stonith_watchdog_timeout)
            if warning and warning != self._warned:
                log.warning("%s: %s", self.node, warning)
            self._warned = warning or ""
        if self.driver is None:
            return
        if quorate:
            self.driver.quorum_regained()
        else:
            self.driver.quorum_lost()

    def close(self) -> None:
        """A clean stop: disarm (the magic close), unless a reset is already on its way."""
        if self.watchdog is not None:
            self.watchdog.disarm()
            self.watchdog = None

    async def _stop_resources(self) -> None:
        # The member core already asked the LRM to stop everything (no_quorum_policy says stop): wait for it.
        while self.active() > 0:
            await asyncio.sleep(STOP_POLL_S)
