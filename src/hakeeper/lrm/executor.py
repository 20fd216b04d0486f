"""The asyncio shell that runs one agent invocation: its own process group, a timeout, bounded output.

Timeout policy (Pacemaker's, ``execd_commands.c``): when an operation overruns its timeout the whole process
group gets SIGKILL at once, with no SIGTERM grace. The timeout already *is* the agent's grace period, and a
grace period on top would let a hung stop run longer than the operator configured. Grandchildren that stayed
in the group die with it; a child that deliberately left the group (``setsid``) is a daemon the agent started
and is not ours to kill.

Completion is the exit of the agent process itself (watched through a pidfd), not the closing of its
pipes: a daemon the agent started in the background may keep them open forever. Pipes are then read for
at most ``PIPE_DRAIN_S`` more. (asyncio's own subprocess support waits for the pipes, so it is not used.)

Built-in agents (``ocf:hakeeper:*``) are forked from a warm interpreter when the LRM has a fork server
(:mod:`hakeeper.lrm.forkserver`): the same pipes, process group and timeout, without a fresh Python's
start-up.

Output: each stream keeps only its last ``limit`` bytes (the tail holds the exit reason and the most recent
errors); the number of bytes dropped is recorded. The exit reason is the last ``ocf-exit-reason:`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import IO, NamedTuple

import msgspec

from hakeeper.agents.base import Invocation
from hakeeper.agents.ocf import EXIT_REASON_PREFIX
from hakeeper.lrm.forkserver import ForkServerClient, ForkServerLost, ForkServerUnavailable

DEFAULT_OUTPUT_LIMIT = 64 * 1024
KILL_WAIT_S = 5.0
"""How long to wait for a SIGKILLed group leader to be reaped before reporting it as unkillable."""
PIPE_DRAIN_S = 0.2
"""After the agent exits, how long to keep reading pipes that a leftover child may still hold open."""


class RawResult(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to the process, before any agent-class interpretation."""

    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    survived_kill: bool = False
    """The agent was still not reaped ``KILL_WAIT_S`` after SIGKILL (stuck in the kernel, e.g. on I/O)."""
    spawn_error: str = ""
    lost: str = ""
    """Why the exit status is unknown (the fork server that started the agent died while it ran)."""
    stdout: str = ""
    stderr: str = ""
    dropped_bytes: int = 0
    started: float = 0.0
    finished: float = 0.0
    finished_wall: float = 0.0

    @property
    def exit_reason(self) -> str:
        return exit_reason_from(self.stderr)


def exit_reason_from(stderr: str) -> str:
    """The text after the last ``ocf-exit-reason:`` prefix in ``stderr`` (empty if none)."""
    reason = ""
    for line in stderr.splitlines():
        at = line.find(EXIT_REASON_PREFIX)
        if at >= 0:
            reason = line[at + len(EXIT_REASON_PREFIX) :].strip()
    return reason


class TailBuffer:
    """Keeps the last ``limit`` bytes written to it and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data = bytearray()
        self.dropped = 0

    def write(self, chunk: bytes) -> None:
        self._data += chunk
        excess = len(self._data) - self.limit
        if excess > 0:
            del self._data[:excess]
            self.dropped += excess

    def text(self) -> str:
        return self._data.decode("utf-8", errors="replace")


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class _PipeReader:
    """Reads one pipe into a :class:`TailBuffer` from the event loop, without blocking."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pipe: IO[bytes] | None, sink: TailBuffer) -> None:
        self.loop = loop
        self.pipe = pipe
        self.sink = sink
        self.eof: asyncio.Future[None] = loop.create_future()
        if pipe is None:
            self.eof.set_result(None)
            return
        os.set_blocking(pipe.fileno(), False)
        loop.add_reader(pipe.fileno(), self._readable)

    def _readable(self) -> None:
        assert self.pipe is not None
        try:
            while chunk := os.read(self.pipe.fileno(), 65536):
                self.sink.write(chunk)
        except BlockingIOError:
            return
        except OSError:
            pass
        self.close()  # EOF or a broken pipe: nothing more will come

    def close(self) -> None:
        if self.pipe is not None:
            self.loop.remove_reader(self.pipe.fileno())
            self.pipe.close()
            self.pipe = None
        if not self.eof.done():
            self.eof.set_result(None)


class _PipeWriter:
    """Feeds ``data`` to the child's stdin from the event loop, then closes it (a child that stops reading
    or exits early just loses the rest)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pipe: IO[bytes] | None, data: bytes) -> None:
        self.loop = loop
        self.pipe = pipe
        self.data = memoryview(data)
        if pipe is None:
            return
        os.set_blocking(pipe.fileno(), False)
        loop.add_writer(pipe.fileno(), self._writable)

    def _writable(self) -> None:
        assert self.pipe is not None
        try:
            while self.data:
                written = os.write(self.pipe.fileno(), self.data[:65536])
                self.data = self.data[written:]
        except BlockingIOError:
            return
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        if self.pipe is not None:
            self.loop.remove_writer(self.pipe.fileno())
            with contextlib.suppress(OSError):
                self.pipe.close()
            self.pipe = None


class _ExitWatcher:
    """Resolves ``exited`` with the exit status once the process ends (pidfd, or polling without one)."""

    POLL_S = 0.05

    def __init__(self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes]) -> None:
        self.loop = loop
        self.proc = proc
        self.exited: asyncio.Future[int] = loop.create_future()
        self._pidfd: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        try:
            self._pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self._timer = loop.call_later(self.POLL_S, self._poll)
            return
        loop.add_reader(self._pidfd, self._check)

    def _check(self) -> None:
        code = self.proc.poll()
        if code is not None and not self.exited.done():
            self.exited.set_result(code)
            self.close()

    def _poll(self) -> None:
        self._check()
        if not self.exited.done():
            self._timer = self.loop.call_later(self.POLL_S, self._poll)

    def close(self) -> None:
        if self._pidfd is not None:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _spawn(invocation: Invocation) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        invocation.argv,
        env=invocation.env,
        cwd=invocation.cwd,
        stdin=subprocess.PIPE if invocation.stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
    )


class _Child(NamedTuple):
    """A started agent however it was started: its group, our ends of its pipes, and its exit status
    (:attr:`subprocess.Popen.returncode` style: negative for a signal)."""

    pid: int
    stdin: IO[bytes] | None
    stdout: IO[bytes] | None
    stderr: IO[bytes] | None
    exited: asyncio.Future[int]
    release: Callable[[], None]


def _start_process(loop: asyncio.AbstractEventLoop, invocation: Invocation) -> _Child:
    proc = _spawn(invocation)
    watcher = _ExitWatcher(loop, proc)
    return _Child(proc.pid, proc.stdin, proc.stdout, proc.stderr, watcher.exited, watcher.close)


async def _fork_warm(invocation: Invocation, forkserver: ForkServerClient) -> _Child:
    """Fork a built-in action from the warm server; raises :class:`ForkServerUnavailable` when it cannot."""
    assert invocation.builtin_action is not None
    agent_type, action = invocation.builtin_action
    ours: list[int] = []
    theirs: list[int] = []
    try:
        if invocation.stdin:
            stdin_read, stdin_write = os.pipe()
            ours.append(stdin_write)
            theirs.append(stdin_read)
        else:
            theirs.append(os.open(os.devnull, os.O_RDONLY))
        for _ in range(2):
            read_end, write_end = os.pipe()
            ours.append(read_end)
            theirs.append(write_end)
        pid = await forkserver.spawn(agent_type, action, invocation.env, invocation.cwd, theirs)
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in theirs:
            os.close(fd)
    stdin = open(ours[0], "wb", buffering=0) if invocation.stdin else None  # noqa: SIM115 (closed by the writer)
    stdout, stderr = (open(fd, "rb", buffering=0) for fd in ours[-2:])  # noqa: SIM115 (closed by the readers)
    return _Child(pid, stdin, stdout, stderr, forkserver.exited(pid), lambda: forkserver.forget(pid))


async def _start(invocation: Invocation, forkserver: ForkServerClient | None) -> _Child:
    loop = asyncio.get_running_loop()
    if forkserver is not None and invocation.builtin_action is not None:
        try:
            return await _fork_warm(invocation, forkserver)
        except ForkServerUnavailable:
            pass  # logged by the client; a fresh interpreter does the same work, only slower
    return _start_process(loop, invocation)


async def _wait(future: asyncio.Future[int], timeout: float) -> bool:
    """True if ``future`` resolved within ``timeout`` seconds (the future itself is never cancelled)."""
    try:
        await asyncio.wait_for(asyncio.shield(future), timeout=max(timeout, 0.0))
    except TimeoutError:
        return False
    return True


async def run_invocation(
    invocation: Invocation,
    timeout_s: float,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    forkserver: ForkServerClient | None = None,
) -> RawResult:
    """Run ``invocation`` to completion or timeout; never raises for agent misbehaviour. With a
    ``forkserver``, a built-in action is forked from it instead of starting a fresh interpreter."""
    started = time.monotonic()
    try:
        child = await _start(invocation, forkserver)
    except (OSError, ValueError) as exc:
        reason = f"could not start {invocation.argv[0]}: {getattr(exc, 'strerror', None) or exc}"
        now = time.monotonic()
        return RawResult(spawn_error=reason, started=started, finished=now, finished_wall=time.time())
    loop = asyncio.get_running_loop()
    out, err = TailBuffer(output_limit), TailBuffer(output_limit)
    readers = [_PipeReader(loop, child.stdout, out), _PipeReader(loop, child.stderr, err)]
    writer = _PipeWriter(loop, child.stdin, invocation.stdin)
    timed_out = survived_kill = False
    lost = ""
    try:
        if not await _wait(child.exited, timeout_s):
            timed_out = True
            _kill_group(child.pid)
            survived_kill = not await _wait(child.exited, KILL_WAIT_S)
        finished = time.monotonic()
        await asyncio.wait([r.eof for r in readers], timeout=PIPE_DRAIN_S)
    except ForkServerLost as exc:
        _kill_group(child.pid)  # orphaned: whatever it would have reported can no longer be known
        lost, finished = str(exc), time.monotonic()
    except asyncio.CancelledError:
        _kill_group(child.pid)
        raise
    finally:
        child.release()
        writer.close()
        for reader in readers:
            reader.close()
    code = None if lost or not child.exited.done() else child.exited.result()
    return RawResult(
        exit_code=code if code is not None and code >= 0 else None,
        signal=-code if code is not None and code < 0 else None,
        timed_out=timed_out,
        survived_kill=survived_kill,
        lost=lost,
        stdout=out.text(),
        stderr=err.text(),
        dropped_bytes=out.dropped + err.dropped,
        started=started,
        finished=finished,
        finished_wall=time.time(),
    )
