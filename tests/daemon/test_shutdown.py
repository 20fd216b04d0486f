"""Clean shutdown with real daemons: SIGTERM moves the node's resources away through the DC before the daemon
exits, the resource never runs twice, and the node is welcome again when it returns."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from hakeeper.api.client import ApiClient
from hakeeper.api.schemas import FencingList
from hakeeper.cli.localcluster import LocalCluster, wait_until
from tests.clusters import DUMMY, NODES, dummy_bootstrap, running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed"),
]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path, NODES, dummy_bootstrap("shutdown"))
    try:
        yield c
    finally:
        c.stop_all()


def test_sigterm_moves_the_resource_away_before_the_daemon_exits(cluster: LocalCluster) -> None:
    cluster.start_all()
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
    (active,) = running(cluster, "web")
    proc = cluster.procs[active]
    proc.send_signal(signal.SIGTERM)
    seen: list[tuple[set[str], bool]] = []  # (where web runs, is the stopping daemon still alive?)

    def moved() -> bool:
        alive = proc.poll() is None
        where = running(cluster, "web")
        seen.append((where, alive))
        return bool(where - {active})

    assert wait_until(moved, 90), cluster.logs()
    (new_active,) = running(cluster, "web")
    assert new_active != active
    assert seen[-1][1], "the stopping daemon was still running when web started elsewhere"
    assert all(len(where) <= 1 for where, _ in seen), seen
    proc.wait(timeout=90)
    cluster.procs.pop(active)
    assert "nothing runs here any more; leaving the cluster" in cluster.logs(20_000)
    survivor = next(n for n in NODES if n != active)
    with ApiClient(socket_path=cluster.node_dir(survivor) / "api.sock") as c:

        def recorded_gone() -> bool:
            view = next(n for n in c.cluster().nodes if n.name == active)
            return not view.online and "shutdown" not in view.transient_attributes

        # the DC (a new one, if the stopped node was the DC) records it gone and forgets the request
        assert wait_until(recorded_gone, 60), cluster.logs()
        view = next(n for n in c.cluster().nodes if n.name == active)
    assert not view.unclean
    # it comes back as a normal member: nothing keeps resources off it
    cluster.start(active)
    with ApiClient(socket_path=cluster.node_dir(survivor) / "api.sock") as c:
        assert wait_until(lambda: next(n for n in c.cluster().nodes if n.name == active).online, 90)
        c.move("web", active)
    assert wait_until(lambda: running(cluster, "web") == {active}, 90), cluster.logs()


def test_a_node_with_nothing_to_move_leaves_at_once(cluster: LocalCluster) -> None:
    cluster.start_all()
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
    (active,) = running(cluster, "web")
    idle = next(n for n in NODES if n != active)
    proc = cluster.procs.pop(idle)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)  # well before the shutdown timeout (2 min): it had nothing to wait for
    assert running(cluster, "web") == {active}, "nothing else moved"


FENCE_DEVICE = """
[resources.fencer]
agent = "stonith:fence_dummy"
params = {{ type = "file", status_file = "{status}", pcmk_host_list = "n1 n2 n3" }}
"""


@pytest.mark.skipif(shutil.which("fence_dummy") is None, reason="fence-agents is not installed")
def test_a_node_that_shuts_down_cleanly_is_not_fenced(tmp_path: Path) -> None:
    status = tmp_path / "power"
    status.write_text("on")
    fencing = FENCE_DEVICE.format(status=status)
    cluster = LocalCluster(tmp_path / "c", NODES, dummy_bootstrap("clean-fenced", fencing=fencing))
    try:
        cluster.start_all()
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
        (active,) = running(cluster, "web")
        proc = cluster.procs.pop(active)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
        survivor = next(n for n in NODES if n != active)
        with ApiClient(socket_path=cluster.node_dir(survivor) / "api.sock") as c:

            def recorded_gone() -> bool:
                view = next(n for n in c.cluster().nodes if n.name == active)
                return not view.online and "shutdown" not in view.transient_attributes

            assert wait_until(recorded_gone, 60), cluster.logs()
            marker = c.cluster().version
            # let the DC plan from that record at least once more: a change it must plan for
            c.ban("web", active)
            assert wait_until(lambda: c.cluster().version != marker, 30)
            for _ in range(30):  # a fencing of the node would be planned and recorded within this
                fencing = msgspec.json.decode(c.request("GET", "/v1/fencing"), type=FencingList)
                assert not [e for e in fencing.history if e.target == active], fencing
                time.sleep(0.1)
            view = next(n for n in c.cluster().nodes if n.name == active)
        assert not view.unclean
        assert status.read_text().strip() == "on"
    finally:
        cluster.stop_all()
