"""Lab: fencing in whole clusters of network-namespace nodes (issue 8's must-shows).

- Two nodes (``two_node`` quorum, the lab fence agent with a static delay so the race is decided) lose the
  link between them, round after round: exactly one survives each time, the VIP is never answered by two
  nodes at once (a raw-socket ARP prober in the client namespace records who answers each request), and the
  service recovers only after the loser's fencing is in the CIB. The rounds default to a CI-sized number;
  ``HAKEEPER_LAB_ROUNDS=30`` runs the full 30.
- Three nodes, the group's node is isolated: it is fenced and the group restarts elsewhere.
- The same with watchdog self-fencing (a simulated watchdog process per node) instead of a device: the
  isolated node stops its resources itself, the others wait ``stonith-watchdog-timeout``, then recover.

The link between two nodes is cut with bridge port isolation: their host-side veths can no longer reach
each other but both still reach the client, so a split brain would show as two ARP answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from hakeeper.api.client import ApiRequestError
from hakeeper.api.handle import Event
from hakeeper.api.schemas import FencingList
from hakeeper.cib import model as m
from hakeeper.cli.lab import CLIENT, LabCluster, LabError, sh, web_group_bootstrap
from hakeeper.cli.localcluster import wait_until

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab tests need root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed"),
    pytest.mark.skipif(shutil.which("curl") is None, reason="the lab's client uses curl"),
]

PORT = 8080
SETTLE_S = 120
ROUNDS = int(os.environ.get("HAKEEPER_LAB_ROUNDS", "4"))
TIMERS = {"heartbeat_interval": "50ms", "failure_timeout": "300ms", "election_timeout": "600ms"}
WATCHDOG_S = 4
STONITH_WATCHDOG_S = 10


# --- the client's view ----------------------------------------------------------------------------------


def serving(lab: LabCluster) -> str | None:
    """The node answering HTTP through the VIP, as the client sees it."""
    answer = lab.client_get(f"http://{lab.vip}:{PORT}/", timeout=1.0)
    return answer.removeprefix("hello from ").strip() if answer and answer.startswith("hello from ") else None


def alive(lab: LabCluster) -> list[str]:
    return [n for n in lab.nodes if lab.alive(n)]


def fencing_history(lab: LabCluster, node: str) -> list[m.FenceEvent]:
    """The CIB's fencing history as node ``node`` has it."""
    with lab.api(node) as client:
        return msgspec.json.decode(client.request("GET", "/v1/fencing"), type=FencingList).history


def events(lab: LabCluster, node: str, since: float) -> list[Event]:
    """Node ``node``'s event stream (commit order) since epoch second ``since``."""
    with lab.api(node) as client:
        return [e for e in client.events().events if e.timestamp >= since]


def online(lab: LabCluster) -> set[str]:
    for node in alive(lab):
        try:
            with lab.api(node) as client:
                view = client.cluster()
        except (ApiRequestError, httpx.HTTPError, OSError):
            continue
        return {n.name for n in view.nodes if n.online} if view.quorate else set()
    return set()


def settled(lab: LabCluster) -> bool:
    return online(lab) == set(lab.nodes) and serving(lab) is not None


ARP_PROBER = r"""
import select, socket, struct, sys, time
iface, my_ip, vip, out = sys.argv[1:5]
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
sock.bind((iface, 0))
mac = sock.getsockname()[4]
arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(my_ip)
arp += bytes(6) + socket.inet_aton(vip)
request = b"\xff" * 6 + mac + b"\x08\x06" + arp
seq, due = 0, 0.0
with open(out, "a", buffering=1) as log:
    print("probing", file=log)
    while True:
        if time.monotonic() >= due:
            seq, due = seq + 1, time.monotonic() + 0.05
            sock.send(request)
        ready, _, _ = select.select([sock], [], [], max(0.0, due - time.monotonic()))
        if ready:
            frame = sock.recv(128)
            op, sha, spa, tha = struct.unpack("!H", frame[20:22])[0], frame[22:28], frame[28:32], frame[32:38]
            if op == 2 and spa == socket.inet_aton(vip) and tha == mac:
                print(seq, f"{time.time():.3f}", sha.hex(":"), file=log)
"""


class ArpWatch:
    """Asks "who has the VIP?" every 50 ms from the client namespace and records every answer."""

    def __init__(self, lab: LabCluster, out: Path) -> None:
        self.out = out
        argv = ["ip", "netns", "exec", lab.client_ns, sys.executable, "-c", ARP_PROBER]
        argv += [lab.interface(0), lab.address(CLIENT), lab.vip, str(out)]
        self.proc = subprocess.Popen(argv, start_new_session=True)
        assert wait_until(lambda: out.exists() and "probing" in out.read_text(), 30), (
            "the ARP prober did not start"
        )

    def answers(self) -> list[tuple[int, float, str]]:
        """(request number, epoch seconds, MAC of the answering node) of every answer so far."""
        rows = []
        for line in self.out.read_text().splitlines()[1:]:
            seq, when, mac = line.split()
            rows.append((int(seq), float(when), mac))
        return rows

    def double_answers(self) -> dict[int, set[str]]:
        """Requests answered by more than one node."""
        by_request: dict[int, set[str]] = {}
        for seq, _, mac in self.answers():
            by_request.setdefault(seq, set()).add(mac)
        return {seq: macs for seq, macs in by_request.items() if len(macs) > 1}

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def mac_of(lab: LabCluster, node: str) -> str:
    return lab.run_in(node, "cat", f"/sys/class/net/{lab.interface(0)}/address").stdout.strip()


def host_veth(lab: LabCluster, node: str) -> str:
    """The host end of ``node``'s link-0 veth (the lab's naming)."""
    return f"{lab.prefix}-v{lab.nodes.index(node) + 1}l0"


def isolate_from_each_other(lab: LabCluster, nodes: list[str], on: bool) -> None:
    """Bridge port isolation: isolated ports reach the client's port but not each other."""
    for node in nodes:
        sh(
            "ip",
            "link",
            "set",
            "dev",
            host_veth(lab, node),
            "type",
            "bridge_slave",
            "isolated",
            "on" if on else "off",
        )


def fence_device(lab: LabCluster, delay_base: str) -> str:
    host_map = ";".join(f"{node}:{lab.namespace(node)}" for node in lab.nodes)
    return (
        "\n[resources.fence-lab]\n"
        'agent = "stonith:fence_hakeeper_netns"\n'
        f'params = {{ pcmk_host_map = "{host_map}", pcmk_delay_base = "{delay_base}" }}\n'
    )


def bootstrap(lab: LabCluster, *, device: str = "", properties: str = "") -> str:
    text = web_group_bootstrap(lab, fencing=False, port=PORT, monitor="2s")
    props = "stonith-enabled = true\n" + properties
    return text.replace("stonith-enabled = false\n", props).replace(
        "[resources.vip]", device + "\n[resources.vip]"
    )


def build(lab: LabCluster) -> LabCluster:
    try:
        lab.create()
    except LabError as err:
        pytest.skip(f"cannot build a lab here: {err}")
    return lab


def fenced_then_started(
    lab: LabCluster, survivor: str, target: str, since: float
) -> tuple[m.FenceEvent, Event]:
    """The target's fencing record and the group's first start on the survivor since ``since``, checked to
    be in that order: in commit order (event ids) and in time (the CIB's completion time)."""
    fenced = [e for e in fencing_history(lab, survivor) if e.target == target and e.state == "done"]
    record = next((e for e in fenced if (e.completed or 0) >= int(since)), None)
    assert record is not None and record.completed is not None, fenced
    seen = events(lab, survivor, since)
    fence_ids = [e.id for e in seen if e.kind == "fencing" and e.node == target]
    starts = [
        e
        for e in seen
        if e.kind == "resource" and e.rsc == "vip" and e.task == "start" and e.node == survivor
    ]
    assert fence_ids and starts and starts[0].id > fence_ids[0], seen
    assert starts[0].timestamp >= record.completed, (record, starts[0])
    return record, starts[0]


# --- two nodes, partitioned again and again -------------------------------------------------------------


@pytest.mark.timeout(1800)
def test_two_nodes_partitioned_again_and_again_exactly_one_survives(tmp_path: Path) -> None:
    lab = build(LabCluster(tmp_path, ["n1", "n2"], two_node=True, timers=TIMERS))
    winner, loser = "n1", "n2"
    # fencing n1 waits 8 s, fencing n2 not at all: n1 wins every race, long before n2's attempt could start
    lab.bootstrap = bootstrap(lab, device=fence_device(lab, f"{winner}:8s"))
    watch: ArpWatch | None = None
    try:
        lab.start_all()
        assert wait_until(lambda: settled(lab), SETTLE_S, 0.5), lab.logs()
        macs = {mac_of(lab, n): n for n in lab.nodes}
        watch = ArpWatch(lab, tmp_path / "arp.log")
        for round_no in range(1, ROUNDS + 1):
            # the service starts each round on the node that will lose, so every round has a recovery
            with lab.api(winner) as client:
                client.move("websvc", loser)
                assert wait_until(lambda: serving(lab) == loser, SETTLE_S, 0.2), lab.logs()
                client.clear("websvc")
            cut_at = time.time()
            isolate_from_each_other(lab, lab.nodes, True)
            assert wait_until(lambda: alive(lab) == [winner], 60, 0.05), f"round {round_no}\n{lab.logs()}"
            assert wait_until(lambda: serving(lab) == winner, 60, 0.1), f"round {round_no}\n{lab.logs()}"
            assert alive(lab) == [winner], f"round {round_no}: the survivor was fenced too"
            fenced, _ = fenced_then_started(lab, winner, loser, cut_at)
            assert fenced.device == "fence-lab", fenced
            assert watch.double_answers() == {}, watch.double_answers()
            answered_by = {macs.get(mac, mac) for _, when, mac in watch.answers() if when >= cut_at}
            assert answered_by <= {winner, loser}
            isolate_from_each_other(lab, lab.nodes, False)
            lab.power_on(loser)
            assert wait_until(lambda: settled(lab), SETTLE_S, 0.5), f"round {round_no}\n{lab.logs()}"
        assert watch.double_answers() == {}
        assert len({mac for _, _, mac in watch.answers()}) == 2  # both nodes held the VIP at some point
    finally:
        if watch is not None:
            watch.stop()
        lab.teardown()


# --- three nodes, the group's node isolated -------------------------------------------------------------


def node_events(lab: LabCluster, survivor: str, node: str, since: float) -> list[Event]:
    return [e for e in events(lab, survivor, since) if e.kind == "node" and e.node == node]


@pytest.mark.timeout(600)
def test_three_nodes_the_isolated_group_node_is_fenced_and_the_group_moves(
    tmp_path: Path,
) -> None:
    lab = build(LabCluster(tmp_path, ["n1", "n2", "n3"], timers=TIMERS))
    lab.bootstrap = bootstrap(lab, device=lab.fence_device_toml())
    try:
        lab.start_all()
        assert wait_until(lambda: settled(lab), SETTLE_S, 0.5), lab.logs()
        holder = serving(lab)
        assert holder is not None
        cut_at = time.time()
        lab.cut(holder)  # its links go down; its processes (and the service) keep running
        assert wait_until(lambda: not lab.alive(holder), 60, 0.1), lab.logs()  # fenced: everything killed
        assert wait_until(lambda: serving(lab) not in (None, holder), 60, 0.1), lab.logs()
        survivor = serving(lab)
        assert survivor is not None
        fenced, _ = fenced_then_started(lab, survivor, holder, cut_at)
        assert fenced.device == "fence-lab" and fenced.delegate != holder
        assert sorted(alive(lab)) == sorted(n for n in lab.nodes if n != holder)
    finally:
        lab.teardown()


# --- the same with watchdog self-fencing instead of a device ---------------------------------------------


class WatchdogLab(LabCluster):
    """Every node's daemon pets a simulated watchdog that kills its namespace's processes."""

    def config_text(self, name: str) -> str:
        pet = self.node_dir(name) / "watchdog.pet"
        watchdog = f'\n[fencing]\nsimulated_watchdog = "{pet}"\nwatchdog_timeout = "{WATCHDOG_S}s"\n'
        return super().config_text(name) + watchdog

    def start_watchdog(self, name: str) -> subprocess.Popen[str]:
        self.node_dir(name).mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "hakeeper.fencing.simwatchdog", "--timeout", str(WATCHDOG_S)]
        argv += ["--pet-file", str(self.node_dir(name) / "watchdog.pet")]
        argv += ["--kill-namespace", self.namespace(name)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)


def has_vip(lab: LabCluster, node: str) -> bool:
    shown = sh("ip", "-n", lab.namespace(node), "-o", "addr", "show", "dev", lab.interface(0), check=False)
    return f" {lab.vip}/" in shown.stdout


@pytest.mark.timeout(600)
def test_watchdog_fencing_the_isolated_node_stops_and_the_others_wait(
    tmp_path: Path,
) -> None:
    lab = WatchdogLab(tmp_path, ["n1", "n2", "n3"], timers=TIMERS)
    build(lab)
    watchdog = f'have-watchdog = true\nstonith-watchdog-timeout = "{STONITH_WATCHDOG_S}s"\n'
    lab.bootstrap = bootstrap(lab, properties=watchdog)
    dogs: dict[str, subprocess.Popen[str]] = {}
    try:
        dogs = {n: lab.start_watchdog(n) for n in lab.nodes}
        lab.start_all()
        assert wait_until(lambda: settled(lab), SETTLE_S, 0.5), lab.logs()
        holder = serving(lab)
        assert holder is not None and has_vip(lab, holder)
        cut_at = time.time()
        lab.cut(holder)
        # the isolated node lost quorum: it stops the group itself, well before the others may act
        assert wait_until(lambda: not has_vip(lab, holder), 60, 0.05), lab.logs()
        stopped_at = time.time()
        assert wait_until(lambda: serving(lab) not in (None, holder), 90, 0.1), lab.logs()
        survivor = serving(lab)
        assert survivor is not None
        fenced, started = fenced_then_started(lab, survivor, holder, cut_at)
        assert fenced.device == "watchdog" and fenced.completed is not None
        lost = node_events(lab, survivor, holder, cut_at)
        assert lost, events(lab, survivor, cut_at)
        # order: the isolated node stopped, then (stonith-watchdog-timeout after the loss) it counted as
        # fenced, then the group started elsewhere; CIB times are whole seconds
        assert stopped_at <= fenced.completed + 1
        assert fenced.completed + 1 >= lost[0].timestamp + STONITH_WATCHDOG_S, (lost[0], fenced)
        assert started.timestamp >= fenced.completed
        # it stopped its resources in time, so its watchdog never had to reset it
        assert lab.alive(holder) and dogs[holder].poll() is None
    finally:
        for dog in dogs.values():
            dog.kill()
            dog.wait()
        lab.teardown()
