"""The daemon's side of a clean shutdown: feeds ``ShutdownCore`` and carries out what it decides.

SIGTERM (or an operator's ``hakeeper cluster stop``, which reaches this node as its ``shutdown`` attribute in
the CIB) starts it; a second SIGTERM or SIGINT stops the daemon at once, as an operator in a hurry expects.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import time
from typing import TYPE_CHECKING

from hakeeper.cib import model as m
from hakeeper.controller.member import SendToDc
from hakeeper.controller.shutdown import Leave, Say, ShutdownCore, ShutdownOutput, Situation, StopLocally

if TYPE_CHECKING:
    from hakeeper.daemon.node import NodeDaemon

log = logging.getLogger("hakeeper.daemon")


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def setup_worker(daemon_pid: int) -> None:
    """For the daemon's worker processes. SIGTERM/SIGINT sent to the whole process group (systemd, a
    terminal's Ctrl-C) must not kill the policy engine in the middle of a clean shutdown: the daemon ends
    its workers itself. If the daemon dies without doing so (SIGKILL, a crash), the kernel kills the worker
    too; a worker waiting on its queue would otherwise never notice and stay behind after every crash."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0
    except (OSError, AttributeError):  # not Linux: the worker ends when the daemon closes its pool
        failed = True
    if failed:
        log.warning("a worker cannot ask to die with the daemon: a crashed daemon may leave it behind")
    if os.getppid() != daemon_pid:  # the daemon died before we asked
        os._exit(1)


class DaemonShutdown:
    def __init__(self, daemon: NodeDaemon) -> None:
        self.daemon = daemon
        self.core = ShutdownCore(
            daemon.name, daemon.config.shutdown_timeout_ms, started_at_s=int(time.time())
        )
        self._stop: asyncio.Event | None = None

    def attach(self, stop: asyncio.Event) -> None:
        """The event that ends the daemon's run when set."""
        self._stop = stop

    def request(self, why: str) -> None:
        """Begin a clean shutdown; asked again while one is running, stop at once."""
        first = self.core.request(self._now_ms(), why)
        if first:
            self._carry_out(first)
            self.tick()
            return
        log.warning("%s: %s again: stopping at once, without moving resources", self.daemon.name, why)
        self._leave()

    def begin(self, why: str) -> None:
        """Begin a clean shutdown if none is running (an operator's request: asking twice changes nothing)."""
        first = self.core.request(self._now_ms(), why)
        if first:
            self._carry_out(first)
            self.tick()

    def cib_committed(self, cib: m.Cib) -> None:
        self._carry_out(self.core.cib_committed(cib, self._now_ms()))

    def tick(self) -> None:
        self._carry_out(self.core.step(self._situation()))

    def _situation(self) -> Situation:
        d = self.daemon
        service = d.service
        lrm = d.lrm
        busy = lrm is not None and (lrm.core.running_count + lrm.core.queued_count) > 0
        return Situation(
            now_ms=self._now_ms(),
            cib=d.cib,
            dc=d.leader,
            quorate=bool(service is not None and service.quorum.quorate),
            lrm_busy=busy,
            active_here=frozenset(d.member.active),
        )

    def _carry_out(self, outputs: list[ShutdownOutput]) -> None:
        d = self.daemon
        for out in outputs:
            if isinstance(out, SendToDc):
                d._send(out.dc, out.message)
            elif isinstance(out, StopLocally):
                d._run_member(d.member.stop_everything())
            elif isinstance(out, Say):
                (log.warning if out.warning else log.info)("%s", out.text)
            elif isinstance(out, Leave):
                log.info("%s", out.reason)
                self._leave()

    def _leave(self) -> None:
        if self._stop is not None:
            self._stop.set()

    @staticmethod
    def _now_ms() -> int:
        return int(time.time() * 1000)
