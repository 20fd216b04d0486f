"""Ordering and colocation on a real cluster: ``db`` then ``app`` (mandatory order), ``app`` with ``db``.

Evidence comes from two independent witnesses, never from durations:

- the event stream, derived from the CIB in commit order: every start of ``app`` is committed after a start
  of ``db`` on the same node, and on a move ``app`` stops before ``db`` does;
- the world: each service (``ocf:hakeeper:process`` running a small script) writes to a journal, with the
  clock's full resolution, when it begins and when it is told to stop. ``app`` begins after the DC had
  *committed* ``db``'s start (the event's timestamp on the DC is taken when the DC applies the commit, before
  it sends anything that waited for it): B's start is never sent before A's start result is recorded. On a
  move, ``db`` is told to stop only after the DC committed ``app``'s stop.

(File modification times would not do: the kernel stamps them from a coarse clock, milliseconds behind.)

One cluster serves the module; the tests run in order (start, move, failover) and each reads the current
placement first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hakeeper.api.auth import Role
from hakeeper.api.client import ApiClient, ApiRequestError
from hakeeper.api.handle import Event
from hakeeper.cli.localcluster import LocalCluster, wait_until
from tests.clusters import NODES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SERVICE_SCRIPT = """#!/bin/sh
# service NAME JOURNAL: journal when it begins and when it is told to stop (epoch seconds, nanoseconds)
echo "$1 begin $HA_NODENAME $(date +%s.%N)" >> "$2"
trap 'echo "$1 stop $HA_NODENAME $(date +%s.%N)" >> "$2"; exit 0' TERM
while :; do sleep 1 & wait $!; done
"""


def bootstrap(tools: Path) -> str:
    def service(name: str) -> str:
        command = f"/bin/sh {tools / 'service'} {name} {tools / 'journal'}"
        return f"""
[resources.{name}]
agent = "ocf:hakeeper:process"
params = {{ command = "{command}" }}
ops = [{{ name = "monitor", interval = "1s", timeout = "10s" }}]
"""

    return f"""
[cluster]
name = "ordering"

[properties]
stonith-enabled = false

[rsc_defaults]
resource-stickiness = 100

[nodes.n1]
[nodes.n2]
[nodes.n3]
{service("db")}
{service("app")}
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


class Cluster(LocalCluster):
    tools: Path
    token: str  # admin (only root needs none on the local socket)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("ordering")
    tools = root / "tools"
    tools.mkdir()
    (tools / "service").write_text(SERVICE_SCRIPT)
    c = Cluster(root / "cluster", NODES, bootstrap(tools))
    c.tools = tools
    c.token = c.create_token("tests", Role.ADMIN)
    try:
        c.start_all()
        assert wait_until(lambda: together(c) is not None, 90), c.logs()
        yield c
    finally:
        c.stop_all()  # also kills the services, from their pidfiles


def journal(cluster: Cluster) -> list[tuple[str, str, str, float]]:
    """(service, begin|stop, node, when) in the order written."""
    path = cluster.tools / "journal"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(w[0], w[1], w[2], float(w[3])) for w in (line.split() for line in lines) if len(w) == 4]


def running(cluster: Cluster, rsc: str) -> set[str]:
    """Live nodes whose last journal entry for ``rsc`` is a begin (started and not told to stop since)."""
    last: dict[str, str] = {}
    for name, what, node, _ in journal(cluster):
        if name == rsc:
            last[node] = what
    return {node for node, what in last.items() if what == "begin" and node in cluster.procs}


def together(cluster: Cluster) -> str | None:
    """The node where both run, if they run on exactly one node, the same one."""
    db, app = running(cluster, "db"), running(cluster, "app")
    return next(iter(db)) if len(db) == 1 and db == app else None


def client(cluster: Cluster, node: str) -> ApiClient:
    return ApiClient(socket_path=cluster.node_dir(node) / "api.sock", token=cluster.token, timeout_s=10)


def the_dc(cluster: Cluster) -> str | None:
    for node in cluster.procs:
        try:
            with client(cluster, node) as c:
                dc = c.cluster().dc
        except ApiRequestError:
            continue
        if dc in cluster.procs:
            return dc
    return None


def events_on(cluster: Cluster, node: str) -> list[Event]:
    with client(cluster, node) as c:
        return c.events(limit=10_000).events


def ops(events: list[Event], rsc: str, task: str, node: str | None = None) -> list[Event]:
    return [
        e
        for e in events
        if e.kind == "resource" and e.rsc == rsc and e.task == task and (node is None or e.node == node)
    ]


def last_in_journal(cluster: Cluster, rsc: str, what: str, node: str) -> float:
    return [when for name, w, n, when in journal(cluster) if (name, w, n) == (rsc, what, node)][-1]


def first_stop_after_last_begin(cluster: Cluster, rsc: str, node: str) -> float:
    """When ``rsc`` was first told to stop on ``node`` since it last began there (the agent signals the
    service's process group and the process, so it may journal the stop twice)."""
    began = last_in_journal(cluster, rsc, "begin", node)
    stops = [
        w for name, what, n, w in journal(cluster) if (name, what, n) == (rsc, "stop", node) and w > began
    ]
    return min(stops)


def committed_start(cluster: Cluster, dc: str, rsc: str, node: str) -> bool:
    return bool(ops(events_on(cluster, dc), rsc, "start", node))


def assert_app_started_after_db_committed(cluster: Cluster, dc: str, node: str) -> None:
    """On ``node``: the last ``app`` start was committed after a ``db`` start, and began after that commit."""
    assert wait_until(lambda: committed_start(cluster, dc, "app", node), 60), cluster.logs()
    events = events_on(cluster, dc)
    app_start = ops(events, "app", "start", node)[-1]
    db_starts = [e for e in ops(events, "db", "start", node) if e.id < app_start.id and e.rc == 0]
    assert db_starts, events
    db_start = db_starts[-1]
    # no stop of db on that node between its start and app's start
    assert not [e for e in ops(events, "db", "stop", node) if db_start.id < e.id < app_start.id], events
    app_began = last_in_journal(cluster, "app", "begin", node)
    assert app_began > db_start.timestamp, (
        f"app began at {app_began}, before the DC committed db's start at {db_start.timestamp}"
    )


def test_then_starts_only_after_first_is_recorded(cluster: Cluster) -> None:
    node = together(cluster)
    assert node is not None
    assert wait_until(lambda: the_dc(cluster) is not None, 60)
    dc = the_dc(cluster)
    assert dc is not None
    assert_app_started_after_db_committed(cluster, dc, node)


def test_a_move_stops_in_reverse_order_and_starts_in_order(cluster: Cluster) -> None:
    source = together(cluster)
    assert source is not None
    target = next(n for n in NODES if n != source and n in cluster.procs)
    dc = the_dc(cluster)
    assert dc is not None
    since = events_on(cluster, dc)[-1].id
    with client(cluster, dc) as c:
        c.move("db", target)
    assert wait_until(lambda: together(cluster) == target, 60), cluster.logs()
    assert wait_until(lambda: committed_start(cluster, dc, "app", target), 60), cluster.logs()
    events = [e for e in events_on(cluster, dc) if e.id > since]
    [app_stop] = ops(events, "app", "stop", source)
    [db_stop] = ops(events, "db", "stop", source)
    assert app_stop.id < db_stop.id, "app must stop before db (the order, reversed)"
    db_told_to_stop = first_stop_after_last_begin(cluster, "db", source)
    assert db_told_to_stop > app_stop.timestamp, "db was told to stop before app's stop was committed"
    assert first_stop_after_last_begin(cluster, "app", source) < db_told_to_stop
    [db_start] = ops(events, "db", "start", target)
    [app_start] = ops(events, "app", "start", target)
    assert db_stop.id < db_start.id < app_start.id
    assert_app_started_after_db_committed(cluster, dc, target)
    with client(cluster, dc) as c:
        c.clear("db")


def test_colocation_and_order_hold_after_a_failover(cluster: Cluster) -> None:
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
    # and they stay together, each running once
    for _ in range(10):
        assert together(cluster) == survivor
