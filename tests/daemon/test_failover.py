"""The thin end-to-end path: real daemons on loopback, a real OCF agent, kill the active node, recovery.

Each node is its own process on its own 127.0.0.x address. The resource is Debian's unmodified
``ocf:heartbeat:Dummy``, whose state file each node keeps in its own directory, so where the resource runs is
read from the world, not from the cluster's own opinion.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hakeeper.messaging.keys import write_key_file

DUMMY = Path("/usr/lib/ocf/resource.d/heartbeat/Dummy")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed"),
]

NODES = ["n1", "n2", "n3"]

BOOTSTRAP = """
[cluster]
name = "e2e"

[properties]
stonith-enabled = false

[rsc_defaults]
resource-stickiness = 100

[nodes.n1]
[nodes.n2]
[nodes.n3]

[resources.web]
agent = "ocf:heartbeat:Dummy"
"""


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, root: Path, nodes: list[str]) -> None:
        self.root = root
        self.nodes = nodes
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        key = root / "cluster.key"
        write_key_file(key)
        base = 30 + (os.getpid() % 50) * 4
        lines = ["[cluster]", 'name = "e2e"', f'key_file = "{key}"', f'data_dir = "{root}/unused"', ""]
        for i, name in enumerate(nodes, start=1):
            host = f"127.0.{base % 250}.{i + 10}"
            port = free_port(host)
            lines += ["[[nodes]]", f'name = "{name}"', f"id = {i}", f'addresses = ["{host}:{port}"]', ""]
        self.config_text = "\n".join(lines)
        (root / "bootstrap.toml").write_text(BOOTSTRAP)

    def start(self, name: str) -> None:
        node_dir = self.root / name
        node_dir.mkdir(exist_ok=True)
        text = self.config_text.replace(f'data_dir = "{self.root}/unused"', f'data_dir = "{node_dir}"')
        (node_dir / "cluster.toml").write_text(text)
        log = (node_dir / "daemon.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hakeeper",
                "daemon",
                "-v",
                "--config",
                str(node_dir / "cluster.toml"),
                "--node",
                name,
                "--bootstrap",
                str(self.root / "bootstrap.toml"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def running(self, rsc: str) -> set[str]:
        """Nodes (among the live ones) where the Dummy agent's state file says ``rsc`` runs."""
        return {n for n in self.procs if (self.root / n / "lrm" / f"Dummy-{rsc}.state").exists()}

    def logs(self) -> str:
        return "\n".join(
            f"--- {n} ---\n" + (self.root / n / "daemon.log").read_text(errors="replace")[-4000:]
            for n in self.nodes
            if (self.root / n / "daemon.log").exists()
        )


def wait_for(check: Callable[[], bool], timeout: float, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting until {what}\n{cluster.logs()}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, NODES)
    try:
        yield c
    finally:
        c.stop_all()


def test_kill_the_active_node_and_the_resource_starts_on_another(cluster: Cluster) -> None:
    for name in NODES:
        cluster.start(name)
    wait_for(lambda: len(cluster.running("web")) == 1, 60, "web runs on exactly one node", cluster)
    (active,) = cluster.running("web")
    cluster.kill(active)
    wait_for(lambda: len(cluster.running("web")) == 1, 60, "web runs again on a survivor", cluster)
    (new_active,) = cluster.running("web")
    assert new_active != active
    # it stays there (stickiness) and never runs twice among the live nodes
    for _ in range(20):
        assert cluster.running("web") == {new_active}
        time.sleep(0.1)
