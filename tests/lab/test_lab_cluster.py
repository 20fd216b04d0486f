"""Lab: whole clusters in network namespaces, a real virtual IP, machines that fail (issue 7's must-shows).

Every node is a namespace with its own network stack; the client is another namespace on the same bridge and
reaches the service only through the VIP. Where a resource runs is read from the world — who answers HTTP
through the VIP, the Dummy and Stateful agents' state files in each node's directory — and checked against
the cluster's own view (API, events).

One three-node cluster (a VIP + web group, a Dummy clone and a promotable Stateful, fencing with the lab
agent) is shared by the three-node checks; each check leaves it whole again (the failed node back and
everything settled). Clusters run with fencing, as production clusters must; one test checks that a node
returning without having been fenced does not move the service either.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hakeeper.api.client import ApiClient, ApiRequestError
from hakeeper.api.schemas import ClusterView
from hakeeper.cli.lab import LabCluster, LabError
from hakeeper.cli.localcluster import wait_until
from tests.clusters import dummy_bootstrap

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab tests need root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed"),
    pytest.mark.skipif(shutil.which("curl") is None, reason="the lab's client uses curl"),
    pytest.mark.timeout(600),
]

STATEFUL = Path("/usr/lib/ocf/resource.d/pacemaker/Stateful")
DUMMY = Path("/usr/lib/ocf/resource.d/heartbeat/Dummy")
NODES3 = ["n1", "n2", "n3"]
PORT = 8080
SETTLE_S = 90
STAY_WINDOW_S = 6.0  # how long a recovered service is watched for a needless move after the node returns


def group_toml(lab: LabCluster) -> str:
    """The A/P service: the VIP, then the demo's web service bound to it (so it can only answer there)."""
    web = f"{sys.executable} -m hakeeper.cli.demo_web --bind {lab.vip} --port {PORT}"
    return f"""
[resources.vip]
agent = "ocf:hakeeper:vip"
params = {{ ip = "{lab.vip}", cidr_netmask = 24, nic = "{lab.interface(0)}", arp_count = 3, \
arp_interval = 50 }}
ops = [{{ name = "monitor", interval = "2s", timeout = "10s" }}]

[resources.web]
agent = "ocf:hakeeper:process"
params = {{ command = "{web}", health_http = "http://{lab.vip}:{PORT}/", stop_grace = 2 }}
ops = [{{ name = "monitor", interval = "2s", timeout = "10s" }}]

[resources.websvc]
group = ["vip", "web"]
"""


EXTRAS_TOML = """
[resources.ping]
agent = "ocf:heartbeat:Dummy"
ops = [{ name = "monitor", interval = "2s", timeout = "10s" }]

[resources.ping-clone]
clone = "ping"

[resources.db]
agent = "ocf:pacemaker:Stateful"
ops = [
  { name = "monitor", interval = "3s", timeout = "10s", role = "Unpromoted" },
  { name = "monitor", interval = "2s", timeout = "10s", role = "Promoted" },
]

[resources.db-clone]
clone = "db"
promotable = true
meta = { promoted-max = "1" }
"""


def bootstrap(nodes: list[str], resources: str, fencing: bool) -> str:
    node_tables = "\n".join(f"[nodes.{n}]" for n in nodes)
    return f"""
[cluster]
name = "lab"

[properties]
stonith-enabled = {"true" if fencing else "false"}
stonith-action = "off"   # fenced nodes stay off until power_on reboots them (clearing their VIP)

[rsc_defaults]
resource-stickiness = 100

{node_tables}
{resources}
"""


def serving(lab: LabCluster) -> str | None:
    """The node that answers HTTP through the VIP, as the client namespace sees it."""
    answer = lab.client_get(f"http://{lab.vip}:{PORT}/", timeout=1.0)
    return answer.removeprefix("hello from ").strip() if answer and answer.startswith("hello from ") else None


def live(lab: LabCluster) -> list[str]:
    return [n for n in lab.nodes if lab.alive(n)]


def state_files(lab: LabCluster, node: str, agent: str) -> dict[str, tuple[int, int, str]]:
    """The agent's state files on ``node``: name -> (inode, mtime ns, content). Only live nodes count."""
    found: dict[str, tuple[int, int, str]] = {}
    if not lab.alive(node):
        return found
    for path in (lab.node_dir(node) / "lrm").glob(f"{agent}-*.state"):
        try:
            st = path.stat()
            found[path.name] = (st.st_ino, st.st_mtime_ns, path.read_text().strip())
        except OSError:
            continue  # removed under our feet by a stop
    return found


def dummy_nodes(lab: LabCluster) -> set[str]:
    return {n for n in lab.nodes if state_files(lab, n, "Dummy")}


def promoted_nodes(lab: LabCluster) -> set[str]:
    """Live nodes whose Stateful state file says Promoted (the agent writes its role there)."""
    return {n for n in lab.nodes if any(v[2] == "Promoted" for v in state_files(lab, n, "Stateful").values())}


def view(lab: LabCluster) -> tuple[ClusterView, ApiClient] | None:
    for node in live(lab):
        client = lab.api(node)
        try:
            return client.cluster(), client
        except (ApiRequestError, httpx.HTTPError, OSError):
            client.close()
    return None


def online(lab: LabCluster) -> set[str]:
    found = view(lab)
    if found is None:
        return set()
    cluster, client = found
    client.close()
    return {n.name for n in cluster.nodes if n.online} if cluster.quorate else set()


def api_promoted(lab: LabCluster) -> list[str]:
    found = view(lab)
    if found is None:
        return []
    _, client = found
    with client:
        return list(client.resource("db-clone").promoted_on)


def resource_events(lab: LabCluster, node: str) -> list[tuple[str, str | None, str | None]]:
    """(rsc, task, node) of every resource event as ``node``'s API records them."""
    with lab.api(node) as client:
        return [(e.rsc or "", e.task, e.node) for e in client.events().events if e.kind == "resource"]


def settled(lab: LabCluster) -> bool:
    """Every node online, the service answering, the clone everywhere and exactly one promoted instance."""
    return (
        online(lab) == set(lab.nodes)
        and serving(lab) is not None
        and dummy_nodes(lab) == set(lab.nodes)
        and len(promoted_nodes(lab)) == 1
    )


def stays_on(lab: LabCluster, node: str, window_s: float) -> list[str | None]:
    """Who answered through the VIP, polled for ``window_s``: a list of one name when nothing moved."""
    seen: list[str | None] = []
    end = time.monotonic() + window_s
    while time.monotonic() < end:
        answer = serving(lab)
        if not seen or seen[-1] != answer:
            seen.append(answer)
        time.sleep(0.2)
    return seen


def build(
    root: Path,
    nodes: list[str],
    resources: Callable[[LabCluster], str],
    *,
    fencing: bool,
    witness: bool = False,
) -> LabCluster:
    try:
        lab = LabCluster(root, nodes, witness=witness)
    except LabError as err:
        pytest.skip(f"cannot reserve a lab here: {err}")
    device = lab.fence_device_toml() if fencing else ""
    lab.bootstrap = bootstrap(nodes, device + resources(lab), fencing)
    try:
        lab.create()
    except LabError as err:
        pytest.skip(f"cannot build a lab here: {err}")
    return lab


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    if not (DUMMY.exists() and STATEFUL.exists()):
        pytest.skip("Debian's resource-agents and pacemaker-resource-agents are needed")
    root = tmp_path_factory.mktemp("lab3")
    lab = build(root, NODES3, lambda lab: group_toml(lab) + EXTRAS_TOML, fencing=True)
    try:
        lab.start_all()
        lab.wait_for(
            lambda: settled(lab), SETTLE_S, "settle (all online, VIP answering, clone everywhere, 1 promoted)"
        )
        yield lab
    finally:
        lab.teardown()


def bring_back(lab: LabCluster, node: str) -> None:
    if not lab.alive(node):
        lab.power_on(node)
    assert wait_until(lambda: settled(lab), SETTLE_S, 0.5), lab.logs()


def test_active_passive_three_nodes_the_vip_moves_and_stays(three: LabCluster) -> None:
    lab = three
    first = serving(lab)
    assert first is not None
    lab.power_off(first)
    try:
        assert wait_until(lambda: serving(lab) not in (None, first), SETTLE_S, 0.1), lab.logs()
        second = serving(lab)
        assert second in lab.nodes and second != first
        lab.power_on(first)
        assert wait_until(lambda: online(lab) == set(lab.nodes), SETTLE_S, 0.5), lab.logs()
        # the node is back: the service must neither move to it nor stop (stickiness, no flapping)
        assert stays_on(lab, second, STAY_WINDOW_S) == [second], lab.logs()
        moved = [e for e in resource_events(lab, second) if e[0] in ("vip", "web") and e[1] == "stop"]
        assert moved == [], moved
    finally:
        bring_back(lab, first)


def test_active_active_clone_survivors_are_not_restarted(three: LabCluster) -> None:
    lab = three
    victim = next(n for n in lab.nodes if n != serving(lab))  # not the group's node: only the clone is hit
    before = {n: state_files(lab, n, "Dummy") for n in lab.nodes if n != victim}
    assert all(before.values())
    events_before = len(resource_events(lab, next(iter(before))))
    lab.power_off(victim)
    try:
        assert wait_until(lambda: victim not in online(lab) and bool(online(lab)), SETTLE_S, 0.2), lab.logs()
        # the cluster has noticed; give its transition time to (wrongly) touch the survivors, then look
        survivor = next(iter(before))
        assert wait_until(lambda: len(resource_events(lab, survivor)) >= events_before, SETTLE_S)
        stays_on(lab, serving(lab) or "", 3.0)
        after = {n: state_files(lab, n, "Dummy") for n in before}
        assert after == before  # same files, same inodes, same mtimes: never stopped nor started again
        later = resource_events(lab, survivor)[events_before:]
        touched = [e for e in later if e[0] == "ping" and e[1] in ("start", "stop")]
        assert touched == [], touched
    finally:
        bring_back(lab, victim)


def test_promotable_the_promoted_node_fails_and_another_is_promoted(three: LabCluster) -> None:
    lab = three
    (promoted,) = promoted_nodes(lab)
    assert wait_until(lambda: api_promoted(lab) == [promoted], SETTLE_S, 0.5), api_promoted(lab)
    lab.power_off(promoted)
    try:
        assert wait_until(lambda: len(promoted_nodes(lab)) == 1, SETTLE_S, 0.2), lab.logs()
        (new,) = promoted_nodes(lab)
        assert new != promoted
        assert wait_until(lambda: api_promoted(lab) == [new], SETTLE_S, 0.5), api_promoted(lab)
    finally:
        bring_back(lab, promoted)


def two_nodes_fail_over_and_return(lab: LabCluster) -> str:
    """Two nodes and a witness: power off the serving node; the survivor keeps quorum thanks to the
    witness's vote and takes the service; the node returns and the service stays. Returns the survivor."""
    lab.start_all()
    assert wait_until(lambda: serving(lab) is not None, SETTLE_S, 0.5), lab.logs()
    first = serving(lab)
    assert first is not None
    (other,) = [n for n in lab.nodes if n != first]
    lab.power_off(first)
    assert wait_until(lambda: serving(lab) == other, SETTLE_S, 0.1), lab.logs()
    lab.power_on(first)
    assert wait_until(lambda: online(lab) == set(lab.nodes), SETTLE_S, 0.5), lab.logs()
    assert stays_on(lab, other, STAY_WINDOW_S) == [other], lab.logs()
    return other


def test_active_passive_two_nodes_and_a_witness(tmp_path: Path) -> None:
    lab = build(tmp_path, ["n1", "n2"], group_toml, fencing=True, witness=True)
    try:
        two_nodes_fail_over_and_return(lab)
    finally:
        lab.teardown()


def test_a_node_that_returns_unfenced_does_not_move_the_service(tmp_path: Path) -> None:
    lab = build(tmp_path, ["n1", "n2"], group_toml, fencing=False, witness=True)
    try:
        other = two_nodes_fail_over_and_return(lab)
        stops = [e for e in resource_events(lab, other) if e[0] in ("vip", "web") and e[1] == "stop"]
        assert stops == [], stops
    finally:
        lab.teardown()


def test_the_lab_demo_runs_unattended(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hakeeper", "demo", "--lab", "--auto", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the VIP answers again, served by" in proc.stdout
    assert "stays on" in proc.stdout


def test_two_links_one_lost_changes_nothing_and_an_isolated_node_stops_its_resource(tmp_path: Path) -> None:
    if not DUMMY.exists():
        pytest.skip("Debian's resource-agents is needed")
    lab = LabCluster(tmp_path, NODES3, links=2, client=False)
    lab.bootstrap = dummy_bootstrap("lab-links")
    try:
        lab.create()
    except LabError as err:
        pytest.skip(f"cannot build a lab here: {err}")
    try:
        lab.start_all()
        assert wait_until(lambda: len(dummy_nodes(lab)) == 1 and online(lab) == set(NODES3), SETTLE_S, 0.5)
        (active,) = dummy_nodes(lab)
        before = state_files(lab, active, "Dummy")
        observer = next(n for n in NODES3 if n != active)

        def link_up(link: int) -> bool | None:
            with lab.api(observer) as client:
                states = client.cluster().links
            return next((s.up for s in states if s.node == active and s.link == link), None)

        lab.cut(active, link=0)
        assert wait_until(lambda: link_up(0) is False, SETTLE_S, 0.2), lab.logs()
        assert link_up(1) is True
        assert online(lab) == set(NODES3)  # a node is up while any of its links is
        assert state_files(lab, active, "Dummy") == before and dummy_nodes(lab) == {active}
        lab.heal(active, link=0)
        assert wait_until(lambda: link_up(0) is True, SETTLE_S, 0.2), lab.logs()

        lab.cut(active)  # isolated: it loses quorum and stops its resource; the others start it elsewhere
        assert wait_until(lambda: not state_files(lab, active, "Dummy"), SETTLE_S, 0.2), lab.logs()
        assert wait_until(lambda: len(dummy_nodes(lab)) == 1, SETTLE_S, 0.2), lab.logs()
        assert active not in dummy_nodes(lab)
        assert lab.alive(active)  # isolation, not a failure: its daemon still runs
    finally:
        lab.teardown()
