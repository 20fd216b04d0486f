"""The asyncio shell that runs one agent invocation: its own process group, a timeout, bounded output.

Timeout policy (Pacemaker's, ``execd_commands.c``): when an operation overruns its timeout the whole process
group gets SIGKILL at once, with no SIGTERM grace. The timeout already *is* the agent's grace period, and a
grace period on top would let a hung stop run longer than the operator configured. Grandchildren that stayed
in the group die with it; a child that deliberately left the group (``setsid``) is a daemon the agent started
and is not ours to kill.

Output: each stream keeps only its last ``limit`` bytes (the tail holds the exit reason and the most recent
errors); the number of bytes dropped is recorded. The exit reason is the last ``ocf-exit-reason:`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import msgspec

from hakeeper.agents.base import Invocation
from hakeeper.agents.ocf import EXIT_REASON_PREFIX

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
    spawn_error: str = ""
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


async def _pump(stream: asyncio.StreamReader | None, sink: TailBuffer) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        sink.write(chunk)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _drain(tasks: list[asyncio.Task[None]]) -> None:
    """Let readers finish; cancel them if a leftover child keeps the pipes open."""
    _done, pending = await asyncio.wait(tasks, timeout=PIPE_DRAIN_S)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_invocation(
    invocation: Invocation, timeout_s: float, output_limit: int = DEFAULT_OUTPUT_LIMIT
) -> RawResult:
    """Run ``invocation`` to completion or timeout; never raises for agent misbehaviour."""
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *invocation.argv,
            env=invocation.env,
            cwd=invocation.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        now = time.monotonic()
        reason = f"could not start {invocation.argv[0]}: {exc.strerror or exc}"
        return RawResult(spawn_error=reason, started=started, finished=now, finished_wall=time.time())
    out, err = TailBuffer(output_limit), TailBuffer(output_limit)
    readers = [asyncio.create_task(_pump(proc.stdout, out)), asyncio.create_task(_pump(proc.stderr, err))]
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), timeout=max(timeout_s, 0.0))
    except TimeoutError:
        timed_out = True
        _kill_group(proc.pid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=KILL_WAIT_S)
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        await _drain(readers)
        raise
    finished = time.monotonic()
    await _drain(readers)
    code = proc.returncode
    return RawResult(
        exit_code=code if code is not None and code >= 0 else None,
        signal=-code if code is not None and code < 0 else None,
        timed_out=timed_out,
        stdout=out.text(),
        stderr=err.text(),
        dropped_bytes=out.dropped + err.dropped,
        started=started,
        finished=finished,
        finished_wall=time.time(),
    )
