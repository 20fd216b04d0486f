"""The DC is killed in the middle of a transition: the new DC finishes the work and starts nothing twice.

Four services (``ocf:hakeeper:process``) each take a few seconds to start, in two ordered chains
(``s1`` then ``s2``, ``s3`` then ``s4``), and are kept off the DC's node so killing it kills none of them.
Once the first starts are under way, the DC's node is killed (daemon and agents, as a power cut would).

What each service's own start script writes to a journal shared by the nodes (the nodes are processes on
one machine) is the agents' view of the truth: every service must begin exactly once, and the second of
each chain only after the first became ready — across the change of DC. The processes alive at the end
must be exactly one per service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakeeper.api.client import ApiClient, ApiRequestError
from hakeeper.cli.localcluster import LocalCluster, wait_until
from tests.clusters import NODES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SERVICES = ("s1", "s2", "s3", "s4")
START_S = 3

BOOTSTRAP = """
[cluster]
name = "handover"

[properties]
stonith-enabled = false

[rsc_defaults]
resource-stickiness = 100

[nodes.n1]
[nodes.n2]
[nodes.n3]
"""

SERVICE_SCRIPT = f"""#!/bin/sh
# slow-service NAME JOURNAL: note the start in the journal, take {START_S} s to become ready, then run
echo "$1 begin $HA_NODENAME $$" >> "$2"
rm -f "$HA_RSCTMP/ready-$1"
sleep {START_S}
touch "$HA_RSCTMP/ready-$1"
echo "$1 ready $HA_NODENAME $$" >> "$2"
exec sleep 1000000
"""


def services_toml(tools: Path, dc: str) -> str:
    journal = tools / "journal"
    out = []
    for name in SERVICES:
        command = f"/bin/sh {tools / 'slow-service'} {name} {journal}"
        health = f"/bin/sh {tools / 'is-ready'} {name}"
        out += [
            f"[resources.{name}]",
            'agent = "ocf:hakeeper:process"',
            f'params = {{ command = "{command}", health_command = "{health}" }}',
            'ops = [{ name = "monitor", interval = "2s", timeout = "10s" }, '
            '{ name = "start", interval = "0s", timeout = "30s" }]',
            "",
            f"[constraints.{name}-not-on-the-dc]",
            'type = "location"',
            f'resource = "{name}"',
            f'node = "{dc}"',
            'score = "-INFINITY"',
            "",
        ]
    for first, then in (("s1", "s2"), ("s3", "s4")):
        out += [
            f"[constraints.{first}-then-{then}]",
            'type = "order"',
            f'first = "{first}"',
            f'then = "{then}"',
            "",
        ]
    return "\n".join(out)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "cluster", NODES, BOOTSTRAP)
    try:
        yield c
    finally:
        c.stop_all()  # also kills the services, from their pidfiles


def api(cluster: LocalCluster, node: str) -> ApiClient:
    return ApiClient(socket_path=cluster.node_dir(node) / "api.sock", timeout_s=15)


def dc_of(cluster: LocalCluster) -> str | None:
    for node in cluster.procs:
        try:
            with api(cluster, node) as c:
                view = c.cluster()
        except ApiRequestError:
            continue
        if view.quorate and view.dc in cluster.procs and view.resources_configured >= 0:
            return view.dc
    return None


def journal(tools: Path) -> list[tuple[str, str, str]]:
    path = tools / "journal"
    if not path.exists():
        return []
    return [tuple(line.split()[:3]) for line in path.read_text().splitlines() if line.strip()]  # type: ignore[misc]


def alive(cluster: LocalCluster) -> dict[str, list[int]]:
    """Service -> pids of its live processes, from each node's pidfiles (the agent's own record)."""
    out: dict[str, list[int]] = {}
    for node in cluster.nodes:
        for pidfile in (cluster.node_dir(node) / "lrm").rglob("*.pid"):
            name = next((s for s in SERVICES if pidfile.name.endswith(f"-{s}.pid")), None)
            words = pidfile.read_text(errors="replace").split()
            if name is None or not words or not words[0].isdigit():
                continue
            pid = int(words[0])
            if "sleep" in _cmdline(pid):  # the service's process (a recycled pid would not be sleeping)
                out.setdefault(name, []).append(pid)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def all_ready(tools: Path) -> bool:
    return {name for name, what, _ in journal(tools) if what == "ready"} >= set(SERVICES)


def test_a_new_dc_finishes_the_transition_without_starting_anything_twice(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "slow-service").write_text(SERVICE_SCRIPT)
    (tools / "is-ready").write_text('#!/bin/sh\ntest -f "$HA_RSCTMP/ready-$1"\n')
    cluster.start_all()
    assert wait_until(lambda: dc_of(cluster) is not None, 90), cluster.logs()
    old_dc = dc_of(cluster)
    assert old_dc is not None
    with api(cluster, old_dc) as c:
        config = c.config()
        c.apply_config(config.toml + "\n" + services_toml(tools, old_dc), if_match=config.config_version)

    # the first start of each chain is under way, its result not yet in: kill the DC
    assert wait_until(lambda: {n for n, what, _ in journal(tools) if what == "begin"} >= {"s1", "s3"}, 60)
    assert not any(what == "ready" for _, what, _ in journal(tools)), "the starts were meant to be slow"
    cluster.kill(old_dc)

    assert wait_until(lambda: all_ready(tools), 120), cluster.logs(8000) + "\n" + str(journal(tools))
    new_dc = dc_of(cluster)
    assert new_dc is not None and new_dc != old_dc

    # the new DC records every result: the API shows each service started, on one node
    def recorded() -> bool:
        with api(cluster, new_dc) as c:
            views = {r.id: r for r in c.resources().resources}
        return all(views[s].role == "Started" and len(views[s].nodes) == 1 for s in SERVICES)

    assert wait_until(recorded, 60), cluster.logs(8000)

    lines = journal(tools)
    begins = [(name, node) for name, what, node in lines if what == "begin"]
    assert sorted(name for name, _ in begins) == sorted(SERVICES), f"a service started twice: {lines}"
    assert all(node != old_dc for _, node in begins)
    order = [(name, what) for name, what, _ in lines]
    for first, then in (("s1", "s2"), ("s3", "s4")):
        assert order.index((first, "ready")) < order.index((then, "begin")), lines
    # the CIB's view agrees: one committed start per service (each result is an event, by call id)
    with api(cluster, new_dc) as c:
        events = c.events(limit=10_000).events
    starts = sorted(e.rsc or "" for e in events if e.kind == "resource" and e.task == "start")
    assert starts == sorted(SERVICES), [(e.rsc, e.node, e.task, e.rc) for e in events if e.kind == "resource"]
    running = alive(cluster)
    assert {s: len(running.get(s, [])) for s in SERVICES} == dict.fromkeys(SERVICES, 1), running
    # and nothing starts again once the cluster has settled (monitors keep running meanwhile)
    for _ in range(20):
        assert journal(tools) == lines
        time.sleep(0.25)
