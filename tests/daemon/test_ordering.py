"""Ordering and colocation on a real cluster: ``db`` then ``app`` (mandatory order), ``app`` with ``db``.

Evidence comes from two independent witnesses, never from timings:

- the event stream, derived from the CIB in commit order: every start of ``app`` is committed after a start
  of ``db`` on the same node, and on a move ``app`` stops before ``db`` does;
- the world: Debian's Dummy agent creates its state file when it starts, so the file's modification time
  says when the agent really ran. ``app``'s state file is written after the DC had *committed* ``db``'s start
  result (the event's timestamp on the DC is taken when the DC applies the commit), which is the rule:
  B's start is never sent before A's start result is recorded.

One cluster serves the module; the tests run in order (start, move, failover) and each reads the current
placement first.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hakeeper.api.client import ApiClient, ApiRequestError
from hakeeper.api.handle import Event
from hakeeper.cli.localcluster import LocalCluster, wait_until
from tests.clusters import DUMMY, NODES, running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed"),
]

BOOTSTRAP = """
[cluster]
name = "ordering"

[properties]
stonith-enabled = false

[rsc_defaults]
resource-stickiness = 100

[nodes.n1]
[nodes.n2]
[nodes.n3]

[resources.db]
agent = "ocf:heartbeat:Dummy"
ops = [{ name = "monitor", interval = "1s", timeout = "10s" }]

[resources.app]
agent = "ocf:heartbeat:Dummy"
ops = [{ name = "monitor", interval = "1s", timeout = "10s" }]

[constraints.db-then-app]
type = "order"
first = "db"
then = "app"

[constraints.app-with-db]
type = "colocation"
resource = "app"
with = "db"
score = "INFINITY"
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("ordering"), NODES, BOOTSTRAP)
    try:
        c.start_all()
        assert wait_until(lambda: together(c) is not None, 90), c.logs()
        yield c
    finally:
        c.stop_all()


def together(cluster: LocalCluster) -> str | None:
    """The node where both run, if they run on exactly one node, the same one."""
    db, app = running(cluster, "db"), running(cluster, "app")
    return next(iter(db)) if len(db) == 1 and db == app else None


def client(cluster: LocalCluster, node: str) -> ApiClient:
    return ApiClient(socket_path=cluster.node_dir(node) / "api.sock", timeout_s=10)


def the_dc(cluster: LocalCluster) -> str | None:
    for node in cluster.procs:
        try:
            with client(cluster, node) as c:
                dc = c.cluster().dc
        except ApiRequestError:
            continue
        if dc in cluster.procs:
            return dc
    return None


def events_on(cluster: LocalCluster, node: str) -> list[Event]:
    with client(cluster, node) as c:
        return c.events(limit=10_000).events


def ops(events: list[Event], rsc: str, task: str, node: str | None = None) -> list[Event]:
    return [
        e
        for e in events
        if e.kind == "resource" and e.rsc == rsc and e.task == task and (node is None or e.node == node)
    ]


def assert_app_started_after_db_committed(cluster: LocalCluster, dc: str, node: str) -> None:
    """On ``node``: the last ``app`` start was committed after a ``db`` start, and the agent ran after it."""
    events = events_on(cluster, dc)
    app_start = ops(events, "app", "start", node)[-1]
    db_starts = [e for e in ops(events, "db", "start", node) if e.id < app_start.id and e.rc == 0]
    assert db_starts, events
    db_start = db_starts[-1]
    # no stop of db on that node between its start and app's start
    assert not [e for e in ops(events, "db", "stop", node) if db_start.id < e.id < app_start.id], events
    app_ran_at = (cluster.node_dir(node) / "lrm" / "Dummy-app.state").stat().st_mtime
    assert app_ran_at > db_start.timestamp, (
        f"app's agent ran at {app_ran_at}, before the DC committed db's start at {db_start.timestamp}"
    )


def test_then_starts_only_after_first_is_recorded(cluster: LocalCluster) -> None:
    node = together(cluster)
    assert node is not None
    dc = the_dc(cluster)
    assert dc is not None
    assert_app_started_after_db_committed(cluster, dc, node)


def test_a_move_stops_in_reverse_order_and_starts_in_order(cluster: LocalCluster) -> None:
    source = together(cluster)
    assert source is not None
    target = next(n for n in NODES if n != source and n in cluster.procs)
    dc = the_dc(cluster)
    assert dc is not None
    since = events_on(cluster, dc)[-1].id
    with client(cluster, dc) as c:
        c.move("db", target)
    assert wait_until(lambda: together(cluster) == target, 60), cluster.logs()
    events = [e for e in events_on(cluster, dc) if e.id > since]
    [app_stop] = ops(events, "app", "stop", source)
    [db_stop] = ops(events, "db", "stop", source)
    assert app_stop.id < db_stop.id, "app must stop before db (the order, reversed)"
    assert db_stop.timestamp >= app_stop.timestamp
    [db_start] = ops(events, "db", "start", target)
    [app_start] = ops(events, "app", "start", target)
    assert db_stop.id < db_start.id < app_start.id
    assert_app_started_after_db_committed(cluster, dc, target)
    with client(cluster, dc) as c:
        c.clear("db")


def test_colocation_and_order_hold_after_a_failover(cluster: LocalCluster) -> None:
    lost = together(cluster)
    assert lost is not None
    cluster.kill(lost)
    assert wait_until(lambda: together(cluster) is not None, 90), cluster.logs()
    survivor = together(cluster)
    assert survivor is not None and survivor != lost
    assert wait_until(lambda: the_dc(cluster) is not None, 60)
    dc = the_dc(cluster)
    assert dc is not None
    assert_app_started_after_db_committed(cluster, dc, survivor)
    # and they stay together
    for _ in range(10):
        assert together(cluster) == survivor
