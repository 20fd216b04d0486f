"""The LRM's end of the built-in agents' fork server (:mod:`hakeeper.agents.builtin.forkserver`).

Built-in actions forked from a warm interpreter start in about a millisecond instead of the tens of
milliseconds a fresh Python needs, which is most of a VIP's or a service's start on a failover. The server
is started with the LRM (under the same command prefix, so a namespaced node's agents stay in its
namespace) and ends when the LRM closes its socket.

Anything wrong with the server is never an operation failure by itself: :meth:`ForkServerClient.spawn`
raises :class:`ForkServerUnavailable` and the executor runs the action as a fresh process instead; the next
action starts a new server. Only an action already forked when the server dies loses its exit status
(:class:`ForkServerLost` from its ``exited`` future).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Mapping

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 2.0
MAX_MESSAGE_BYTES = 65536


class ForkServerUnavailable(Exception):
    """The server could not take the action; run it as a fresh process instead."""


class ForkServerLost(Exception):
    """The server died after forking the action, so the action's exit status cannot be known."""


class ForkServerClient:
    """Starts the server on first use (or :meth:`start`), forks actions through it, reports their exits."""

    def __init__(self, python: str = "", command_prefix: list[str] | None = None) -> None:
        self.python = python or sys.executable
        self.command_prefix = list(command_prefix or [])
        self.spawned = 0
        """How many actions were forked (tests and benchmarks read it)."""
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}

    @property
    def running(self) -> bool:
        return self._sock is not None

    def start(self) -> None:
        """Start the server now (it takes a few tens of milliseconds to import the agents; requests sent
        meanwhile wait in the socket)."""
        if self._sock is not None:
            return
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            argv = [*self.command_prefix, self.python, "-m", "hakeeper.agents.builtin.forkserver"]
            self._process = subprocess.Popen(
                [*argv, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            raise ForkServerUnavailable(f"could not start the fork server: {exc}") from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock, self._loop = ours, loop
        loop.add_reader(ours.fileno(), self._readable)

    async def spawn(
        self, agent_type: str, action: str, env: Mapping[str, str], cwd: str, fds: list[int]
    ) -> int:
        """Fork ``agent_type action`` with ``fds`` as its stdin, stdout and stderr; returns its pid (which is
        also its process group). The caller keeps (and closes) ``fds``."""
        self.start()
        assert self._sock is not None and self._loop is not None
        request_id = next(self._ids)
        message = {"id": request_id, "type": agent_type, "action": action, "env": dict(env), "cwd": cwd}
        reply: asyncio.Future[int] = self._loop.create_future()
        self._replies[request_id] = reply
        try:
            await self._send(json.dumps(message).encode(), fds)
            return await reply
        finally:
            self._replies.pop(request_id, None)

    def exited(self, pid: int) -> asyncio.Future[int]:
        """Resolves with the child's exit status as :attr:`subprocess.Popen.returncode` gives it (negative
        for a signal), or fails with :class:`ForkServerLost`."""
        return self._exits[pid]

    def forget(self, pid: int) -> None:
        self._exits.pop(pid, None)

    async def _send(self, data: bytes, fds: list[int]) -> None:
        assert self._sock is not None and self._loop is not None
        deadline = self._loop.time() + SEND_TIMEOUT_S
        while True:
            try:
                socket.send_fds(self._sock, [data], fds)
                return
            except BlockingIOError:
                if self._loop.time() > deadline:
                    self._lost("the fork server stopped taking requests")
                    raise ForkServerUnavailable("the fork server stopped taking requests") from None
                await asyncio.sleep(0.005)
            except OSError as exc:
                self._lost(f"the fork server's socket failed: {exc}")
                raise ForkServerUnavailable(f"the fork server's socket failed: {exc}") from exc

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(MAX_MESSAGE_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                self._lost(f"the fork server's socket failed: {exc}")
                return
            if not data:
                self._lost("the fork server exited")
                return
            self._on_message(data)

    def _on_message(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self._lost(f"the fork server sent something that is not JSON: {data[:80]!r}")
            return
        if not isinstance(message, dict):
            return
        pid, status = message.get("pid"), message.get("status")
        if isinstance(pid, int) and isinstance(status, int):
            self._on_exit(pid, status)
        else:
            self._on_reply(message)

    def _on_reply(self, message: dict[str, object]) -> None:
        request_id, pid = message.get("id"), message.get("pid")
        reply = self._replies.get(request_id) if isinstance(request_id, int) else None
        if reply is None:  # an error for a request it could not even read: the oldest one waiting
            reply = next((f for f in self._replies.values() if not f.done()), None)
        if reply is None or reply.done():
            return
        if isinstance(pid, int):
            assert self._loop is not None
            self._exits[pid] = self._loop.create_future()  # before the exit report can arrive
            self.spawned += 1
            reply.set_result(pid)
        else:
            reply.set_exception(ForkServerUnavailable(f"the fork server refused: {message.get('error')}"))

    def _on_exit(self, pid: int, status: int) -> None:
        exited = self._exits.get(pid)
        if exited is not None and not exited.done():
            exited.set_result(os.waitstatus_to_exitcode(status))

    def _lost(self, why: str) -> None:
        """The server is gone or broken: fail what waits on it and start afresh next time."""
        if self._sock is None:
            return
        log.warning("built-in agent fork server: %s; actions run as fresh processes until it restarts", why)
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(ForkServerUnavailable(why))
        self._stop(why, grace_s=0.0)

    def close(self) -> None:
        """Stop the server (forked actions still running are left to the caller's cancellation)."""
        self._stop("the LRM closed the fork server", grace_s=2.0)

    def _stop(self, why: str, grace_s: float) -> None:
        """Close our end, fail the exits still awaited, and see the server process gone: it leaves by itself
        when our end closes, within ``grace_s``, or is killed."""
        if self._sock is not None:
            assert self._loop is not None
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for exited in self._exits.values():
            if not exited.done():
                exited.set_exception(ForkServerLost(why))
                exited.exception()  # whoever waits still gets it; nobody waiting is not an error
        self._exits.clear()
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
        if process.poll() is None:
            process.kill()
            process.wait()
