"""Lab: the vip agent in a network namespace of its own, run as the LRM runs it (one process per action).

start must return while its later announcements are still due (a detached announcer sends them), and stop
must end that announcer before it removes the address. The peer end of a veth pair sees the announcements.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakeeper.agents.builtin.common import process_start_time
from hakeeper.cli.localcluster import wait_until

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab tests need root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed"),
]


def ip(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=True, timeout=30)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace holding veth ``va`` (10.98.0.1/24), whose peer ``vb`` is in the same namespace."""
    name = f"hkg-{secrets.token_hex(3)}"
    try:
        ip("netns", "add", name)
        ip("-n", name, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        ip("-n", name, "addr", "add", "10.98.0.1/24", "dev", "va")
        for link in ("va", "vb", "lo"):
            ip("-n", name, "link", "set", link, "up")
    except subprocess.CalledProcessError as exc:
        subprocess.run(["ip", "netns", "del", name], check=False)
        pytest.skip(f"cannot build a network namespace here: {exc.stderr.strip()}")
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


def vip(namespace: str, action: str, run_dir: Path, **params: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OCF_RESOURCE_INSTANCE": "vip",
        "HA_RSCTMP": str(run_dir),
        **{f"OCF_RESKEY_{k}": v for k, v in params.items()},
    }
    argv = ["ip", "netns", "exec", namespace, sys.executable, "-m", "hakeeper.agents.builtin", "vip", action]
    # the executor reads the agent's pipes until they close: a leftover holder would block this call
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def announcer(run_dir: Path) -> int | None:
    """The live announcer's pid, from its pidfile."""
    path = run_dir / "hakeeper-vip-announcer-vip.pid"
    if not path.exists():
        return None
    pid, started = path.read_text().split()
    return int(pid) if process_start_time(int(pid)) == started else None


def test_start_leaves_the_announcements_to_a_detached_child_and_stop_ends_it(
    namespace: str, tmp_path: Path
) -> None:
    params = {"ip": "10.98.0.50", "arp_count": "600", "arp_interval": "100"}  # a minute of announcements
    assert vip(namespace, "monitor", tmp_path, **params).returncode == 7
    started = vip(namespace, "start", tmp_path, **params)
    assert started.returncode == 0, started.stderr
    pid = announcer(tmp_path)
    assert pid is not None, "no announcer runs after start"
    assert os.getsid(pid) == pid, "the announcer must lead its own session, outside the agent's group"
    assert vip(namespace, "monitor", tmp_path, **params).returncode == 0
    assert "10.98.0.50/24" in ip("-n", namespace, "addr", "show", "dev", "va").stdout

    stopped = vip(namespace, "stop", tmp_path, **params)
    assert stopped.returncode == 0, stopped.stderr
    assert wait_until(lambda: process_start_time(pid) is None, 30), "stop left the announcer running"
    assert announcer(tmp_path) is None
    assert vip(namespace, "monitor", tmp_path, **params).returncode == 7


def test_one_announcement_needs_no_announcer(namespace: str, tmp_path: Path) -> None:
    params = {"ip": "10.98.0.51", "arp_count": "1"}
    assert vip(namespace, "start", tmp_path, **params).returncode == 0
    assert announcer(tmp_path) is None
    assert vip(namespace, "stop", tmp_path, **params).returncode == 0
