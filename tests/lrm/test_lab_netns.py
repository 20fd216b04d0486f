"""Lab tier: virtual IPs inside network namespaces; a second namespace must see the address answer."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hakeeper.lrm.messages import OpRequest, OpStatus
from hakeeper.lrm.service import LocalResourceManager, LrmConfig

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab tests need root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed"),
]


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


class Lab:
    """Two namespaces joined by a veth pair: ``node`` (runs the agents) and ``peer`` (looks at them)."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.node, self.peer = f"hkn-{tag}", f"hkp-{tag}"
        self.node_if, self.peer_if = f"hkv{tag}a", f"hkv{tag}b"

    def up(self) -> None:
        sh("ip", "netns", "add", self.node)
        sh("ip", "netns", "add", self.peer)
        sh("ip", "link", "add", self.node_if, "type", "veth", "peer", "name", self.peer_if)
        sh("ip", "link", "set", self.node_if, "netns", self.node)
        sh("ip", "link", "set", self.peer_if, "netns", self.peer)
        for ns, ifname, v4, v6 in (
            (self.node, self.node_if, "10.99.0.1/24", "fd99::1/64"),
            (self.peer, self.peer_if, "10.99.0.2/24", "fd99::2/64"),
        ):
            self.run(ns, "ip", "addr", "add", v4, "dev", ifname)
            self.run(ns, "ip", "addr", "add", v6, "dev", ifname, "nodad")
            self.run(ns, "ip", "link", "set", ifname, "up")
            self.run(ns, "ip", "link", "set", "lo", "up")
        # let the peer learn neighbours from gratuitous ARP, so we can see the announcement itself
        self.run(self.peer, "sysctl", "-q", "-w", f"net.ipv4.conf.{self.peer_if}.arp_accept=1")

    def down(self) -> None:
        for ns in (self.node, self.peer):
            sh("ip", "netns", "del", ns, check=False)

    @staticmethod
    def run(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", ns, *argv, check=check)

    def peer_reaches(self, address: str, wait_s: int = 2) -> bool:
        ping = ["ping", "-6"] if ":" in address else ["ping"]
        return self.run(self.peer, *ping, "-c", "1", "-W", str(wait_s), address, check=False).returncode == 0

    def peer_neighbour(self, address: str) -> str:
        return self.run(self.peer, "ip", "neigh", "show", address, "dev", self.peer_if).stdout


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        lab.up()
    except subprocess.CalledProcessError as exc:
        lab.down()
        pytest.skip(f"cannot build network namespaces here: {exc.stderr.strip()}")
    yield lab
    lab.down()


@pytest.fixture
async def node_lrm(lab: Lab, tmp_path: Path) -> AsyncIterator[LocalResourceManager]:
    config = LrmConfig(
        node_name="lab1", run_dir=str(tmp_path / "lrm"), command_prefix=["ip", "netns", "exec", lab.node]
    )
    async with LocalResourceManager(config) as manager:
        yield manager


async def lifecycle(lrm: LocalResourceManager, lab: Lab, agent: str, params: dict[str, str]) -> None:
    address = params["ip"]

    async def do(operation: str) -> int:
        result = await lrm.run(OpRequest(resource_id="vip", agent=agent, operation=operation, params=params))
        assert result.op_status == OpStatus.DONE, result.exit_reason
        return result.rc

    assert await do("monitor") == 7
    assert not lab.peer_reaches(address, wait_s=1)
    assert await do("start") == 0, "start failed"
    assert await do("monitor") == 0
    if ":" not in address:
        assert "lladdr" in lab.peer_neighbour(address), "the peer saw no gratuitous ARP"
    assert lab.peer_reaches(address)
    assert await do("stop") == 0
    assert await do("monitor") == 7
    assert not lab.peer_reaches(address, wait_s=1)


async def test_builtin_vip_ipv4(lab: Lab, node_lrm: LocalResourceManager) -> None:
    params = {"ip": "10.99.0.100", "arp_count": "2", "arp_interval": "50"}
    await lifecycle(node_lrm, lab, "ocf:hakeeper:vip", params)


async def test_builtin_vip_ipv6(lab: Lab, node_lrm: LocalResourceManager) -> None:
    params = {"ip": "fd99::100", "nic": lab.node_if, "arp_count": "2", "arp_interval": "50"}
    await lifecycle(node_lrm, lab, "ocf:hakeeper:vip", params)


@pytest.mark.skipif(
    not os.access("/usr/lib/ocf/resource.d/heartbeat/IPaddr2", os.X_OK),
    reason="resource-agents not installed",
)
async def test_heartbeat_ipaddr2(lab: Lab, node_lrm: LocalResourceManager) -> None:
    params = {"ip": "10.99.0.101", "cidr_netmask": "24", "nic": lab.node_if}
    await lifecycle(node_lrm, lab, "ocf:heartbeat:IPaddr2", params)
