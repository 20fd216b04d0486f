"""Lab: two nodes (namespaces) shoot each other at once; the priority delay decides and exactly one lives.

Each side is a real process inside its own namespace running the fencer core with its shell loop, and its
RunDevice runs the real fence_hakeeper_netns against the other namespace. The loser's fencer is killed by
the winner's fence before its own (delayed) attempt starts.
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

from hakeeper.fencing.agent import AgentError, find_agent
from hakeeper.fencing.netns_agent import links

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab tests need root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed"),
]

SIDE = r"""
import asyncio, random, sys, time
from hakeeper.fencing.agent import run_agent
from hakeeper.fencing.devices import FenceDevice, FencingOptions
from hakeeper.fencing.fencer import Fencer, FencingFinished, PriorityInfo, RunDevice

me, peer, peer_ns, seed, important = sys.argv[1:4] + [int(sys.argv[4]), sys.argv[5]]
search = sys.argv[6:]
priorities = {me: 0, peer: 0, important: 10}  # the important node runs the important resources

async def main() -> None:
    device = FenceDevice(id="lab", agent="fence_hakeeper_netns", host_map={peer: peer_ns}, delay_max_ms=300)
    fencer = Fencer({"lab": device}, (), FencingOptions(priority_delay_ms=1500), rng=random.Random(seed))
    fencer.set_members([me], time.monotonic())
    info = PriorityInfo(node_priorities=priorities, partition_size=1, cluster_size=2)
    print("ready", flush=True)
    sys.stdin.readline()  # both sides start together
    out = fencer.request(peer, "off", me, time.monotonic(), priority=info)
    while True:
        for item in out:
            if isinstance(item, FencingFinished):
                print("fenced" if item.ok else f"failed {item.reason}", peer, flush=True)
                return
        runs = [o for o in out if isinstance(o, RunDevice)]
        out = []
        for run in runs:
            result = await run_agent(device, run.action, run.target, search_path=search or None)
            out += fencer.result(run.attempt_id, result.ok, time.monotonic(), reason=result.reason)
        if not runs:
            await asyncio.sleep(max(0.0, (fencer.next_deadline() or time.monotonic()) - time.monotonic()))
            out = fencer.tick(time.monotonic())

asyncio.run(main())
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    tag = secrets.token_hex(3)
    a, b = f"hkr{tag}-a", f"hkr{tag}-b"
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh(
            "ip",
            "link",
            "add",
            f"hkr{tag}a",
            "netns",
            a,
            "type",
            "veth",
            "peer",
            "name",
            f"hkr{tag}b",
            "netns",
            b,
        )
        sh("ip", "-n", a, "link", "set", f"hkr{tag}a", "up")
        sh("ip", "-n", b, "link", "set", f"hkr{tag}b", "up")
        yield a, b
    finally:
        for ns in (a, b):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                subprocess.run(["kill", "-9", pid], check=False)
            sh("ip", "netns", "delete", ns, check=False)


@pytest.fixture
def search_path(tmp_path: Path) -> list[str]:
    try:
        find_agent("fence_hakeeper_netns")
        return []
    except AgentError:
        wrapper = tmp_path / "fence_hakeeper_netns"
        wrapper.write_text(f"#!{sys.executable}\nfrom hakeeper.fencing.netns_agent import main\nmain()\n")
        wrapper.chmod(0o755)
        return [str(tmp_path)]


def side(
    ns: str, me: str, peer: str, peer_ns: str, seed: int, important: str, search: list[str]
) -> subprocess.Popen[str]:
    argv = [
        "ip",
        "netns",
        "exec",
        ns,
        sys.executable,
        "-c",
        SIDE,
        me,
        peer,
        peer_ns,
        str(seed),
        important,
        *search,
    ]
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize(("seed", "important"), [(0, "a"), (1, "a"), (2, "b"), (3, "b")])
def test_two_node_race_exactly_one_survives(
    namespaces: tuple[str, str], search_path: list[str], seed: int, important: str
) -> None:
    ns = {"a": namespaces[0], "b": namespaces[1]}
    winner, loser = (important, "b" if important == "a" else "a")
    procs = {
        me: side(ns[me], f"node-{me}", f"node-{peer}", ns[peer], seed, f"node-{important}", search_path)
        for me, peer in (("a", "b"), ("b", "a"))
    }
    try:
        for proc in procs.values():
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs.values():
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out, err = procs[winner].communicate(timeout=60)
        procs[loser].wait(timeout=30)
        assert procs[winner].returncode == 0, err
        assert out.splitlines()[-1] == f"fenced node-{loser}"
        assert procs[loser].returncode == -9  # its fencer died with its node, before it could shoot
        assert sh("ip", "netns", "pids", ns[loser]).stdout.split() == []
        assert not any(links(ns[loser]).values())  # and it is cut off
        assert sh("ip", "netns", "pids", ns[winner]).stdout.split() == []  # the winner's side simply ended
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
