"""A whole cluster on this machine: one daemon process per node, each on its own 127.0.0.x address.

Used by ``hakeeper demo`` and by the integration tests. Each node has its own directory (configuration,
Raft log, LRM run directory, agents' state files), so a node can be killed — daemon and everything it
started — and brought back, as a real machine would be.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hakeeper.api.auth import TOKENS_FILE, Role, TokenStore
from hakeeper.messaging.keys import write_key_file


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def default_subnet() -> int:
    """The third octet of this process's 127.0.x.y addresses: by pid, and in a test run with several
    workers (pytest-xdist's ``PYTEST_XDIST_WORKER=gwN``) in a range of the worker's own, so that two
    workers' clusters never share addresses."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 1:
        width = 200 // int(count)
        return 30 + (int(worker[2:]) % int(count)) * width + os.getpid() % max(width, 1)
    return 30 + os.getpid() % 200


class LocalCluster:
    def __init__(
        self,
        root: Path,
        nodes: list[str],
        bootstrap: str,
        *,
        subnet: int | None = None,
        http_port: int | None = None,
    ) -> None:
        self.root = root
        self.nodes = nodes
        self.http_port = http_port
        """With a port, each node serves the dashboard on http://<its address>:<port>/ (token required)."""
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        root.mkdir(parents=True, exist_ok=True)
        key = root / "cluster.key"
        write_key_file(key, force=True)
        third = subnet if subnet is not None else default_subnet()
        self.addresses: dict[str, str] = {}
        lines = ["[cluster]", 'name = "local"', f'key_file = "{key}"', 'data_dir = "@DATA@"', ""]
        for i, name in enumerate(nodes, start=1):
            host = f"127.0.{third}.{i + 10}"
            self.addresses[name] = host
            port = free_udp_port(host)
            lines += ["[[nodes]]", f'name = "{name}"', f"id = {i}", f'addresses = ["{host}:{port}"]', ""]
        self.config_text = "\n".join(lines)
        (root / "bootstrap.toml").write_text(bootstrap)

    def node_dir(self, name: str) -> Path:
        return self.root / name

    def start(self, name: str) -> None:
        node_dir = self.node_dir(name)
        node_dir.mkdir(exist_ok=True)
        config = self.config_text.replace("@DATA@", str(node_dir))
        if self.http_port is not None:
            config += f'\n[api]\nhttp_listen = "{self.addresses[name]}:{self.http_port}"\n'
        (node_dir / "cluster.toml").write_text(config)
        log = (node_dir / "daemon.log").open("ab")
        argv = [sys.executable, "-m", "hakeeper", "daemon", "-v", "--config", str(node_dir / "cluster.toml")]
        argv += ["--node", name, "--bootstrap", str(self.root / "bootstrap.toml")]
        self.procs[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def dashboard_url(self, name: str) -> str:
        """The web dashboard of node ``name`` (needs ``http_port``)."""
        if self.http_port is None:
            raise ValueError("this local cluster was made without http_port: it serves no dashboard")
        return f"http://{self.addresses[name]}:{self.http_port}/"

    def create_token(self, name: str, role: Role) -> str:
        """An API token valid on every node (the same tokens file is given to each)."""
        first = self.node_dir(self.nodes[0]) / TOKENS_FILE
        first.parent.mkdir(parents=True, exist_ok=True)
        token = TokenStore(first).create(name, role, int(time.time()))
        for other in self.nodes[1:]:
            self.node_dir(other).mkdir(parents=True, exist_ok=True)
            shutil.copy2(first, self.node_dir(other) / TOKENS_FILE)
        return token

    def start_all(self) -> None:
        for name in self.nodes:
            self.start(name)

    def kill(self, name: str) -> None:
        """Kill the node as a power failure would: its daemon and every process its agents started."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pid in self._agent_daemons(name):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def _agent_daemons(self, name: str) -> list[int]:
        pids = []
        for pidfile in (self.node_dir(name) / "lrm").rglob("*.pid"):
            words = pidfile.read_text(errors="replace").split()
            if words and words[0].isdigit():
                pids.append(int(words[0]))
        return pids

    def stop_all(self, timeout: float = 15.0) -> None:
        """Stop every node cleanly (SIGTERM), killing what does not stop in time."""
        for name in list(self.procs):
            proc = self.procs[name]
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in list(self.procs):
            proc = self.procs.pop(name)
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for name in self.nodes:
            for pid in self._agent_daemons(name):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def logs(self, tail: int = 4000) -> str:
        parts = []
        for n in self.nodes:
            path = self.node_dir(n) / "daemon.log"
            if path.exists():
                parts.append(f"--- {n} ---\n" + path.read_text(errors="replace")[-tail:])
        return "\n".join(parts)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False
