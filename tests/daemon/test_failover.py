"""The thin end-to-end path: real daemons on loopback, a real OCF agent, kill the active node, recovery.

Each node is its own process on its own 127.0.0.x address. The resource is Debian's unmodified
``ocf:heartbeat:Dummy``, whose state file each node keeps in its own directory, so where the resource runs is
read from the world, not from the cluster's own opinion.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from hakeeper.api.schemas import FencingList
from hakeeper.cli.localcluster import LocalCluster, wait_until
from tests.clusters import DUMMY, NODES, dummy_bootstrap, running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed"),
]

BOOTSTRAP = dummy_bootstrap("e2e")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path, NODES, BOOTSTRAP)
    try:
        yield c
    finally:
        c.stop_all()


def test_kill_the_active_node_and_the_resource_starts_on_another(cluster: LocalCluster) -> None:
    cluster.start_all()
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 60), cluster.logs()
    (active,) = running(cluster, "web")
    cluster.kill(active)
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 60), cluster.logs()
    (new_active,) = running(cluster, "web")
    assert new_active != active
    # it stays there (stickiness) and never runs twice among the live nodes
    for _ in range(20):
        assert running(cluster, "web") == {new_active}
        time.sleep(0.1)


def test_the_demo_runs_unattended(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hakeeper", "demo", "--auto", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the web service answers again, served by" in proc.stdout
    assert "stays on" in proc.stdout


def test_operators_use_any_node_api_and_changes_reach_the_dc(cluster: LocalCluster) -> None:
    from hakeeper.api.client import ApiClient

    cluster.start_all()
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 60), cluster.logs()
    (active,) = running(cluster, "web")

    def client(node: str) -> ApiClient:
        return ApiClient(socket_path=cluster.node_dir(node) / "api.sock")

    with client(NODES[0]) as c:
        view = c.cluster()
    dc = view.dc
    assert dc in NODES and view.quorate
    other = (
        next(n for n in NODES if n not in (dc, active)) if dc != active else next(n for n in NODES if n != dc)
    )
    target = next(n for n in NODES if n != active)
    with client(other) as c:  # a node that is not the DC: the change is forwarded
        result = c.move("web", target)
    assert result.version
    assert wait_until(lambda: running(cluster, "web") == {target}, 60), cluster.logs()
    with client(dc) as c:
        events = c.events().events
    assert any(
        e.kind == "resource" and e.rsc == "web" and e.task == "start" and e.node == target for e in events
    )


FENCE_DEVICE = """
[resources.fencer]
agent = "stonith:fence_dummy"
params = {{ type = "file", status_file = "{status}", pcmk_host_list = "n1 n2 n3" }}
"""


@pytest.mark.skipif(shutil.which("fence_dummy") is None, reason="fence-agents is not installed")
def test_a_lost_node_is_fenced_before_its_resource_is_recovered(tmp_path: Path) -> None:
    from hakeeper.api.client import ApiClient

    status = tmp_path / "power"
    status.write_text("on")
    cluster = LocalCluster(
        tmp_path / "c", NODES, dummy_bootstrap("e2e-fenced", fencing=FENCE_DEVICE.format(status=status))
    )
    try:
        cluster.start_all()
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 60), cluster.logs()
        (active,) = running(cluster, "web")
        cluster.kill(active)
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 60), cluster.logs()
        (survivor,) = running(cluster, "web")
        with ApiClient(socket_path=cluster.node_dir(survivor) / "api.sock") as c:
            fencing = msgspec.json.decode(c.request("GET", "/v1/fencing"), type=FencingList)
            events = c.events().events
    finally:
        cluster.stop_all()
    assert survivor != active
    done = [e for e in fencing.history if e.target == active and e.state == "done"]
    assert done, fencing
    assert "off" in status.read_text() or status.read_text() == "on", "fence_dummy ran (reboot leaves it on)"
    # the recovery came after the fencing: in the commit-ordered event stream, the fence precedes the start
    fenced_at = next(e.id for e in events if e.kind == "fencing" and e.node == active)
    started_at = [
        e.id
        for e in events
        if e.kind == "resource" and e.rsc == "web" and e.task == "start" and e.node == survivor
    ]
    assert started_at and min(started_at) > fenced_at, events


def test_a_daemon_stops_promptly_while_an_event_stream_is_open(cluster: LocalCluster) -> None:
    import threading

    from hakeeper.api.client import ApiClient

    cluster.start_all()
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 60), cluster.logs()
    seen: list[int] = []

    def follow() -> None:
        try:
            with ApiClient(socket_path=cluster.node_dir("n1") / "api.sock") as c:
                for event in c.stream_events():
                    seen.append(event.id)
        except Exception:  # the stream ends when the daemon goes away
            return

    threading.Thread(target=follow, daemon=True).start()
    assert wait_until(lambda: bool(seen), 30), "the stream delivers the backlog"
    proc = cluster.procs.pop("n1")
    proc.terminate()
    proc.wait(timeout=20)  # before the fix, an open stream kept the daemon alive indefinitely


def test_a_monitor_failure_is_recovered_in_place_and_counted(cluster: LocalCluster) -> None:
    from hakeeper.api.client import ApiClient

    cluster.start_all()
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 60), cluster.logs()
    (active,) = running(cluster, "web")
    state = cluster.node_dir(active) / "lrm" / "Dummy-web.state"
    state.unlink()  # the service dies behind the cluster's back; the node stays up
    assert wait_until(state.exists, 60), cluster.logs()  # the monitor notices, the DC restarts it
    assert running(cluster, "web") == {active}, "recovered in place: one failure is below migration-threshold"
    with ApiClient(socket_path=cluster.node_dir(active) / "api.sock") as c:
        view = c.resource("web")
    counts = {(f.node, f.count) for f in view.fail_counts}
    assert (active, 1) in counts, view
