"""A warm interpreter that forks one child per built-in agent action (the LRM's fork server).

A built-in action run as ``python -m hakeeper.agents.builtin TYPE ACTION`` spends most of its time starting
Python and importing the agent, and two such actions (the VIP, then the service) sit on every failover's
critical path. This process imports the agents once and forks a child per action instead; the child is what
a fresh interpreter would have been: its own session, the action's environment and working directory, the
executor's pipes as standard input, output and error, and the agent's exit code as its exit status.

``python -m hakeeper.agents.builtin.forkserver FD``: FD is one end of a ``SOCK_SEQPACKET`` socket pair whose
other end the LRM holds. Every request is one JSON message with the child's standard streams attached as
three file descriptors::

    {"id": 7, "type": "vip", "action": "start", "env": {...}, "cwd": "/"}  + fds [stdin, stdout, stderr]

and is answered ``{"id": 7, "pid": 1234}`` (or ``{"id": 7, "error": "why"}``). When a child ends, the server
reaps it and reports ``{"pid": 1234, "status": <wait status>}``. It exits when the LRM's end closes, so it
never outlives its daemon; the children it started run on (their results are lost with the LRM anyway).

Only the standard library and the agents are imported: the children inherit whatever is loaded here.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import socket
import sys
import traceback

from hakeeper.agents.builtin import BUILTIN_TYPES
from hakeeper.agents.builtin.common import run_agent

MAX_REQUEST_BYTES = 1 << 20
"""A request is an environment of a few kilobytes; anything this big is not from our LRM."""
STREAMS = 3


class ForkServer:
    """The server loop: requests on ``control``, child exits through a SIGCHLD wake-up pipe."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.modules = {
            name: importlib.import_module(f"hakeeper.agents.builtin.{name}") for name in BUILTIN_TYPES
        }
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)
        os.set_blocking(self.wake_read, False)

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        while True:
            readable, _, _ = select.select([self.control.fileno(), self.wake_read], [], [])
            if self.wake_read in readable:
                self._drain_wakeups()
            self._reap()
            if self.control.fileno() in readable and not self._serve_one():
                return

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_read, 512):
                pass

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._send({"pid": pid, "status": status})

    def _serve_one(self) -> bool:
        """Handle one request; False when the LRM has gone."""
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.control, MAX_REQUEST_BYTES, STREAMS)
        except ConnectionError:
            return False
        if not data and not fds:
            return False
        try:
            request = json.loads(data)
            problem = self._problem(request, fds)
            if problem:
                self._send({"id": request.get("id") if isinstance(request, dict) else None, "error": problem})
                return True
            pid = self._fork(request, fds)
            self._send({"id": request["id"], "pid": pid})
        except (ValueError, OSError) as exc:
            self._send({"id": None, "error": f"could not start the action: {exc}"})
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def _problem(self, request: object, fds: list[int]) -> str:
        if not isinstance(request, dict) or not isinstance(request.get("id"), int):
            return "a request is a JSON object with an integer id"
        if request.get("type") not in self.modules:
            return f"there is no built-in agent {request.get('type')!r}"
        if not isinstance(request.get("action"), str):
            return "the action must be a string"
        env, cwd = request.get("env"), request.get("cwd")
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            return "env must map names to strings"
        if not isinstance(cwd, str):
            return "cwd must be a string"
        if not os.path.isdir(cwd):
            return f"no directory {cwd}"  # as a fresh process would fail to start, not the agent to run
        if len(fds) != STREAMS:
            return f"expected {STREAMS} file descriptors (stdin, stdout, stderr), got {len(fds)}"
        return ""

    def _fork(self, request: dict[str, object], fds: list[int]) -> int:
        """Fork the agent; return once it leads its own session in its directory and environment, so the LRM
        can always kill its group."""
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_read)
            self._become_agent(request, fds, ready_write)  # never returns
        os.close(ready_write)
        try:
            os.read(ready_read, 1)  # end of file once the child closed its end (or died)
        finally:
            os.close(ready_read)
        return pid

    def _become_agent(self, request: dict[str, object], fds: list[int], ready: int) -> None:
        code = 1
        try:
            self._reset_process(fds, ready)
            os.chdir(str(request["cwd"]))
            env = request["env"]
            assert isinstance(env, dict)
            os.environ.clear()
            os.environ.update(env)
            os.close(ready)  # set up: the server may answer with our pid
            module = self.modules[str(request["type"])]
            sys.argv = ["hakeeper.agents.builtin", str(request["type"]), str(request["action"])]
            code = run_agent(module.METADATA, module.ACTIONS, str(request["action"]), os.environ)
        except SystemExit as exc:
            code = _exit_code(exc)
        except BaseException:  # what an uncaught exception does to a fresh interpreter
            traceback.print_exc()
            code = 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code & 0xFF)

    def _reset_process(self, fds: list[int], ready: int) -> None:
        """What exec would have given the child: default signals, own session, only its three streams (and
        the ready pipe, closed once the rest is set up)."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        self.control.detach()  # closed below with every other descriptor
        highest = os.sysconf("SC_OPEN_MAX")  # close_range(2): cheap however high the limit
        os.closerange(STREAMS, ready)
        os.closerange(ready + 1, highest)  # close_range(2): cheap however high the limit

    def _send(self, message: dict[str, object]) -> None:
        self.control.send(json.dumps(message).encode())


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m hakeeper.agents.builtin.forkserver FD", file=sys.stderr)
        return 2
    control = socket.socket(fileno=int(argv[0]))
    control.setblocking(True)
    ForkServer(control).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
