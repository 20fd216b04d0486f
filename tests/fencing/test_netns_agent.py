"""fence_hakeeper_netns: protocol parsing (anyone) and real fencing of a namespace (lab: root)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from hakeeper.fencing.agent import AgentError, find_agent, parse_metadata, run_agent
from hakeeper.fencing.devices import FenceDevice
from hakeeper.fencing.netns_agent import METADATA, Failure, parse_argv, parse_stdin, run, target_namespace

RNG = Path("/usr/share/cluster/relaxng/metadata.rng")  # shipped by Debian's fence-agents


def test_stdin_protocol_parsing() -> None:
    text = "# comment\naction=off\n\nport=ns1\nport=ns2\nnot a pair\nnodename = node1 \n"
    assert parse_stdin(text) == {"action": "off", "port": "ns2", "nodename": "node1"}


def test_command_line_mode() -> None:
    assert parse_argv(["-o", "status", "-n", "ns1", "--prefix=hk"]) == {
        "action": "status",
        "port": "ns1",
        "prefix": "hk",
    }
    with pytest.raises(Failure, match="unknown option"):
        parse_argv(["--ip", "1.2.3.4"])
    with pytest.raises(Failure, match="needs a value"):
        parse_argv(["-o"])


def test_target_comes_from_port_plug_or_nodename_and_must_be_a_name() -> None:
    assert target_namespace({"nodename": "node1"}) == "node1"
    assert target_namespace({"nodename": "node1", "plug": "ns-1"}) == "ns-1"
    with pytest.raises(Failure, match="not a valid name"):
        target_namespace({"port": "../../etc"})
    with pytest.raises(Failure, match="missing"):
        run({"action": "off"})
    with pytest.raises(Failure, match="unrecognised action"):
        run({"action": "explode", "port": "x-does-not-exist"})


def test_metadata_is_valid_fence_agent_metadata() -> None:
    meta = parse_metadata(METADATA)
    assert {"off", "on", "reboot", "status", "list", "monitor", "metadata"} <= meta.actions
    assert meta.host_argument == "port"
    if RNG.exists():
        schema = etree.RelaxNG(etree.parse(str(RNG)))
        assert schema.validate(etree.fromstring(METADATA.encode())), schema.error_log


@pytest.fixture
def agent_dir(tmp_path: Path) -> list[str] | None:
    """Where fence_hakeeper_netns is: installed as a console script, or a wrapper written here."""
    try:
        find_agent("fence_hakeeper_netns")
        return None
    except AgentError:
        wrapper = tmp_path / "fence_hakeeper_netns"
        wrapper.write_text(f"#!{sys.executable}\nfrom hakeeper.fencing.netns_agent import main\nmain()\n")
        wrapper.chmod(0o755)
        return [str(tmp_path)]


async def test_metadata_through_the_runner(agent_dir: list[str] | None) -> None:
    result = await run_agent(
        FenceDevice(id="lab", agent="fence_hakeeper_netns"), "metadata", search_path=agent_dir
    )
    assert result.ok and parse_metadata(result.output).name == "fence_hakeeper_netns"


# --- lab ------------------------------------------------------------------------------------------


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


class Pair:
    """Two namespaces (two lab nodes) joined by a veth pair."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.prefix = f"hkf{tag}"
        self.a, self.b = f"{self.prefix}-a", f"{self.prefix}-b"
        self.a_if, self.b_if = f"hkf{tag}a", f"hkf{tag}b"
        self.extra: list[str] = []

    def up(self) -> None:
        sh("ip", "netns", "add", self.a)
        sh("ip", "netns", "add", self.b)
        sh(
            "ip",
            "link",
            "add",
            self.a_if,
            "netns",
            self.a,
            "type",
            "veth",
            "peer",
            "name",
            self.b_if,
            "netns",
            self.b,
        )
        for ns, ifname, addr in ((self.a, self.a_if, "10.98.0.1/24"), (self.b, self.b_if, "10.98.0.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", ifname)
            sh("ip", "-n", ns, "link", "set", ifname, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def down(self) -> None:
        for ns in (self.a, self.b, *self.extra):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                if ns in (self.a, self.b):
                    subprocess.run(["kill", "-9", pid], check=False)
            sh("ip", "netns", "delete", ns, check=False)

    def link_up(self, ns: str, ifname: str) -> bool:
        out = sh("ip", "-n", ns, "-o", "link", "show", "dev", ifname).stdout
        return "UP" in out.split("<", 1)[1].split(">", 1)[0].split(",")

    def pids(self, ns: str) -> list[str]:
        return sh("ip", "netns", "pids", ns).stdout.split()


@pytest.fixture
def pair() -> Iterator[Pair]:
    p = Pair()
    try:
        p.up()
        yield p
    finally:
        p.down()


def wait_exit(proc: subprocess.Popen[bytes], limit_s: float = 5.0) -> int | None:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return proc.returncode
        time.sleep(0.02)
    return None


@pytest.mark.lab
@pytest.mark.skipif(os.geteuid() != 0, reason="lab tests need root (network namespaces)")
@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed")
async def test_fencing_a_namespace_kills_its_processes_and_cuts_its_link(
    pair: Pair, agent_dir: list[str] | None
) -> None:
    sleepers = [
        subprocess.Popen(["ip", "netns", "exec", pair.a, "sh", "-c", "sleep 300 & sleep 300 & wait"]),
        subprocess.Popen(["ip", "netns", "exec", pair.a, "sleep", "300"]),
    ]
    outsider = subprocess.Popen(["ip", "netns", "exec", pair.b, "sleep", "300"])
    try:
        for _ in range(100):
            if len(pair.pids(pair.a)) >= 4:
                break
            time.sleep(0.02)
        assert len(pair.pids(pair.a)) >= 4
        assert (
            sh("ip", "netns", "exec", pair.b, "ping", "-c1", "-W1", "10.98.0.1", check=False).returncode == 0
        )
        device = FenceDevice(
            id="lab", agent="fence_hakeeper_netns", host_map={"nodeA": pair.a}, timeouts_ms={"off": 20000}
        )

        before = await run_agent(device, "status", "nodeA", search_path=agent_dir)
        assert before.ok and before.power == "on", before.reason
        off = await run_agent(device, "off", "nodeA", search_path=agent_dir)
        assert off.ok, off.reason

        assert [wait_exit(p) for p in sleepers] == [-9, -9]
        assert pair.pids(pair.a) == []
        assert not pair.link_up(pair.a, pair.a_if)
        assert (
            sh("ip", "netns", "exec", pair.b, "ping", "-c1", "-W1", "10.98.0.1", check=False).returncode != 0
        )
        assert outsider.poll() is None  # the other node is untouched
        after = await run_agent(device, "status", "nodeA", search_path=agent_dir)
        assert after.ok and after.power == "off"

        on = await run_agent(device, "on", "nodeA", search_path=agent_dir)
        assert on.ok, on.reason
        assert pair.link_up(pair.a, pair.a_if)
        assert (await run_agent(device, "status", "nodeA", search_path=agent_dir)).power == "on"

        listing = FenceDevice(id="lab", agent="fence_hakeeper_netns", params={"prefix": pair.prefix})
        listed = await run_agent(listing, "list", search_path=agent_dir)
        assert listed.ok and listed.ports == frozenset({pair.a, pair.b})
        assert (await run_agent(listing, "monitor", search_path=agent_dir)).ok
    finally:
        for proc in [*sleepers, outsider]:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.mark.lab
@pytest.mark.skipif(os.geteuid() != 0, reason="lab tests need root (network namespaces)")
@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed")
async def test_the_agent_refuses_to_fence_its_own_namespace(pair: Pair, agent_dir: list[str] | None) -> None:
    own = f"{pair.prefix}-self"
    pair.extra.append(own)
    sh("ip", "netns", "attach", own, str(os.getpid()))
    device = FenceDevice(id="lab", agent="fence_hakeeper_netns")
    result = await run_agent(device, "off", own, search_path=agent_dir)
    assert not result.ok
    assert "refusing to fence myself" in result.reason


def test_second_guard_never_kills_pid_1_or_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    from hakeeper.fencing import netns_agent

    killed: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: killed.append(pid))
    for found in ([1, 4242], [os.getpid()], [os.getppid(), 4242]):
        monkeypatch.setattr(netns_agent, "pids_in", lambda name, found=found: found)
        with pytest.raises(Failure, match="refusing to kill it"):
            netns_agent.kill_all("some-ns")
    assert killed == []


@pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed")
@pytest.mark.parametrize("action", ["off", "on", "reboot", "status"])
def test_an_unknown_namespace_is_an_error_never_a_silent_success(action: str) -> None:
    with pytest.raises(Failure, match="does not exist"):
        run({"action": action, "port": f"hk-missing-{secrets.token_hex(4)}"})
