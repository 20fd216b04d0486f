"""Probes with real daemons: a joining node is asked what it runs before anything is placed on it, and a
resource started by hand outside the cluster is found instead of being started a second time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakeeper.api.client import ApiClient
from hakeeper.api.handle import Event
from hakeeper.cib.operator import ResourceSpec
from hakeeper.cli.localcluster import LocalCluster, wait_until
from tests.clusters import DUMMY, NODES, dummy_bootstrap, running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed"),
]

PREFER_N3 = """
[constraints.web-prefers-n3]
type = "location"
resource = "web"
node = "n3"
score = 200
"""


def events(cluster: LocalCluster, node: str) -> list[Event]:
    with ApiClient(socket_path=cluster.node_dir(node) / "api.sock") as c:
        return c.events().events


def ops(evs: list[Event], rsc: str, node: str) -> list[tuple[str, int | None]]:
    """(task, rc) of ``rsc``'s one-shot operations on ``node``, in commit order."""
    return [
        (e.task or "", e.rc)
        for e in evs
        if e.kind == "resource" and e.rsc == rsc and e.node == node and not e.interval_ms
    ]


def start_by_hand(cluster: LocalCluster, node: str, rsc: str) -> None:
    """What the Dummy agent's start would leave behind, done outside the cluster."""
    lrm = cluster.node_dir(node) / "lrm"
    lrm.mkdir(parents=True, exist_ok=True)
    (lrm / f"Dummy-{rsc}.state").write_text("")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path, NODES, dummy_bootstrap("probes") + PREFER_N3)
    try:
        yield c
    finally:
        c.stop_all()


def test_a_joining_node_is_probed_before_anything_is_placed_on_it(cluster: LocalCluster) -> None:
    cluster.start("n1")
    cluster.start("n2")
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
    assert running(cluster, "web") <= {"n1", "n2"}
    cluster.start("n3")
    assert wait_until(lambda: running(cluster, "web") == {"n3"}, 90), cluster.logs()
    history = ops(events(cluster, "n3"), "web", "n3")
    assert history[:2] == [("monitor", 7), ("start", 0)], history


def test_a_resource_started_by_hand_is_found_and_not_started_elsewhere(cluster: LocalCluster) -> None:
    cluster.start("n1")
    cluster.start("n2")
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
    start_by_hand(cluster, "n3", "found")
    cluster.start("n3")
    assert wait_until(lambda: running(cluster, "web") == {"n3"}, 90), cluster.logs()
    with ApiClient(socket_path=cluster.node_dir("n1") / "api.sock") as c:
        c.create_resource(ResourceSpec(id="found", agent="ocf:heartbeat:Dummy"))
    assert wait_until(lambda: ("monitor", 0) in ops(events(cluster, "n1"), "found", "n3"), 90), cluster.logs()
    for _ in range(20):  # settled: the cluster adopts the running copy and starts no other
        assert running(cluster, "found") == {"n3"}
        time.sleep(0.1)
    evs = events(cluster, "n1")
    assert not [e for e in evs if e.kind == "resource" and e.rsc == "found" and e.task == "start"], evs


def test_a_copy_found_running_twice_is_resolved_as_multiple_active(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "twice", NODES, dummy_bootstrap("twice"))  # no preference: web stays
    try:
        cluster.start("n1")
        cluster.start("n2")
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
        (first,) = running(cluster, "web")
        start_by_hand(cluster, "n3", "web")
        cluster.start("n3")
        found = lambda: ("monitor", 0) in ops(events(cluster, first), "web", "n3")  # noqa: E731
        assert wait_until(found, 90), cluster.logs()

        def both_stopped() -> bool:
            evs = events(cluster, first if first in cluster.procs else "n3")
            return ("stop", 0) in ops(evs, "web", first) and ("stop", 0) in ops(evs, "web", "n3")

        # multiple-active=stop_start: both copies are stopped, then one is started
        assert wait_until(both_stopped, 90), cluster.logs()
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
    finally:
        cluster.stop_all()


def test_a_node_returning_unfenced_is_probed_again_and_nothing_moves(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "r", NODES, dummy_bootstrap("returning"))
    try:
        cluster.start_all()
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
        (first,) = running(cluster, "web")
        cluster.kill(first)
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
        (survivor,) = running(cluster, "web")
        (cluster.node_dir(first) / "lrm" / "Dummy-web.state").unlink(missing_ok=True)  # the reboot cleared it
        before = max(e.id for e in events(cluster, survivor))
        cluster.start(first)

        def probed_again() -> bool:
            since = [e for e in events(cluster, survivor) if e.id > before]
            return ("monitor", 7) in ops(since, "web", first)

        assert wait_until(probed_again, 90), cluster.logs()
        for _ in range(20):  # its stale history does not make web look active twice: nothing moves
            assert running(cluster, "web") == {survivor}
            time.sleep(0.1)
        evs = events(cluster, survivor)
        assert ops(evs, "web", survivor).count(("stop", 0)) == 0, evs
    finally:
        cluster.stop_all()
