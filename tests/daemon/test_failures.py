"""Failures on a real cluster: recovery in place, migration-threshold, failure-timeout, cleanup.

Three real daemons on loopback run Debian's unmodified ``ocf:heartbeat:Dummy``. A failure is made behind
the cluster's back, as in production: the agent's state file is deleted, so the next recurring monitor
finds the service gone. Where a resource runs is read from the agents' state files; fail counts and their
countdowns from the API (what ``hakeeper status`` and the dashboard show).

One cluster serves the whole module (starting three daemons is the slow part); each test works on its own
resource, and the resources have no constraints between them, so the tests do not interfere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hakeeper.api.auth import Role
from hakeeper.api.client import ApiClient, ApiRequestError
from hakeeper.api.schemas import FailCountView, ResourceView
from hakeeper.cli.localcluster import LocalCluster, wait_until
from hakeeper.cli.main import _register, cli
from tests.clusters import DUMMY, NODES, running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed"),
]

FAILURE_TIMEOUT_S = 6

BOOTSTRAP = f"""
[cluster]
name = "failures"

[properties]
stonith-enabled = false

[rsc_defaults]
resource-stickiness = 100

[nodes.n1]
[nodes.n2]
[nodes.n3]

[resources.inplace]
agent = "ocf:heartbeat:Dummy"
ops = [{{ name = "monitor", interval = "1s", timeout = "10s" }}]

[resources.mover]
agent = "ocf:heartbeat:Dummy"
meta = {{ migration-threshold = "2" }}
ops = [{{ name = "monitor", interval = "1s", timeout = "10s" }}]

[resources.expiring]
agent = "ocf:heartbeat:Dummy"
meta = {{ failure-timeout = "{FAILURE_TIMEOUT_S}s" }}
ops = [{{ name = "monitor", interval = "1s", timeout = "10s" }}]

[resources.tunable]
agent = "ocf:heartbeat:Dummy"
params = {{ state = "{{tunable_state}}" }}
ops = [{{ name = "monitor", interval = "1s", timeout = "10s" }}]
"""


class Local(LocalCluster):
    token: str
    """An admin token (only root needs none on the local socket)."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    root = tmp_path_factory.mktemp("failures")
    c = Local(root, NODES, BOOTSTRAP.replace("{tunable_state}", str(root / "tunable-1.state")))
    c.token = c.create_token("tests", Role.ADMIN)
    try:
        c.start_all()
        up = wait_until(lambda: all(len(running(c, r)) == 1 for r in ("inplace", "mover", "expiring")), 90)
        up = up and wait_until(lambda: (root / "tunable-1.state").exists(), 60)
        assert up, c.logs()
        yield c
    finally:
        c.stop_all()


def api(cluster: LocalCluster, node: str) -> ApiClient:
    token = getattr(cluster, "token", None)
    return ApiClient(socket_path=cluster.node_dir(node) / "api.sock", token=token, timeout_s=10)


def state_file(cluster: LocalCluster, node: str, rsc: str) -> Path:
    return cluster.node_dir(node) / "lrm" / f"Dummy-{rsc}.state"


def view(cluster: LocalCluster, rsc: str) -> ResourceView | None:
    """The resource as the API of the first live node shows it (None while that API does not answer)."""
    node = next(iter(cluster.procs))
    try:
        with api(cluster, node) as c:
            return c.resource(rsc)
    except ApiRequestError:
        return None


def fail_counts(cluster: LocalCluster, rsc: str) -> dict[str, FailCountView]:
    v = view(cluster, rsc)
    return {f.node: f for f in v.fail_counts} if v is not None else {}


def counts(cluster: LocalCluster, rsc: str) -> dict[str, int]:
    return {n: f.count for n, f in fail_counts(cluster, rsc).items()}


def kill_behind_the_clusters_back(cluster: LocalCluster, rsc: str) -> str:
    """Delete the running resource's state file; answer the node it ran on."""
    (node,) = running(cluster, rsc)
    state_file(cluster, node, rsc).unlink()
    return node


def hakeeper(cluster: LocalCluster, node: str, *args: str) -> Result:
    """``hakeeper ARGS`` as an operator on ``node``."""
    if "status" not in cli.commands:
        _register()
    socket = cluster.node_dir(node) / "api.sock"
    env = {"HAKEEPER_URL": None, "HAKEEPER_TOKEN": getattr(cluster, "token", None)}
    return CliRunner().invoke(cli, [*args, "--socket", str(socket)], env=env)


def settled_on(cluster: LocalCluster, rsc: str, node: str) -> bool:
    return running(cluster, rsc) == {node}


def count_is(cluster: LocalCluster, rsc: str, node: str, count: int) -> Callable[[], bool]:
    return lambda: counts(cluster, rsc).get(node) == count


def test_a_monitor_failure_is_recovered_in_place_with_a_fail_count(cluster: LocalCluster) -> None:
    node = kill_behind_the_clusters_back(cluster, "inplace")
    assert wait_until(lambda: counts(cluster, "inplace") == {node: 1}, 60, 0.3), cluster.logs()
    assert wait_until(lambda: settled_on(cluster, "inplace", node), 60), cluster.logs()
    v = view(cluster, "inplace")
    assert v is not None and v.nodes == [node] and v.role == "Started"
    [fc] = v.fail_counts
    assert fc.expires_in_s is None, "without failure-timeout a fail count never expires"

    # 'hakeeper resource cleanup' clears the fail count and the failed action; the resource keeps running
    cleaned = hakeeper(cluster, node, "resource", "cleanup", "inplace")
    assert cleaned.exit_code == 0 and "Committed" in cleaned.output, cleaned.output
    assert wait_until(lambda: not counts(cluster, "inplace"), 30, 0.3), fail_counts(cluster, "inplace")
    with api(cluster, node) as c:
        failed = [f for f in c.resources().failed_actions if f.rsc == "inplace"]
    assert failed == []
    assert wait_until(lambda: (v := view(cluster, "inplace")) is not None and v.nodes == [node], 30, 0.3)
    assert running(cluster, "inplace") == {node}, "cleanup must not start a second copy elsewhere"


def test_migration_threshold_moves_the_resource_and_the_failed_node_is_not_used_again(
    cluster: LocalCluster,
) -> None:
    visited: list[str] = []
    for _ in range(len(NODES)):
        first = kill_behind_the_clusters_back(cluster, "mover")
        assert wait_until(count_is(cluster, "mover", first, 1), 60, 0.3), cluster.logs()
        # below the threshold: recovered in place
        assert wait_until(partial(settled_on, cluster, "mover", first), 60), cluster.logs()
        kill_behind_the_clusters_back(cluster, "mover")
        assert wait_until(count_is(cluster, "mover", first, 2), 60, 0.3), cluster.logs()
        visited.append(first)
        if len(visited) < len(NODES):
            # threshold reached: it moves, and never to a node whose fail count stands
            assert wait_until(lambda: len(running(cluster, "mover")) == 1, 60), cluster.logs()
            (now_on,) = running(cluster, "mover")
            assert now_on not in visited, (visited, now_on)
    # every node has reached the threshold: the resource can run nowhere and stays stopped
    assert sorted(visited) == sorted(NODES)
    assert wait_until(
        lambda: (v := view(cluster, "mover")) is not None and v.role == "Stopped" and not v.nodes, 60, 0.3
    ), view(cluster, "mover")
    assert running(cluster, "mover") == set()
    assert all(f.migration_threshold == 2 for f in fail_counts(cluster, "mover").values())

    # cleanup on one node lets the resource run there again
    with api(cluster, NODES[0]) as c:
        c.cleanup("mover", visited[1])
    assert wait_until(lambda: running(cluster, "mover") == {visited[1]}, 60), cluster.logs()
    assert set(counts(cluster, "mover")) == set(NODES) - {visited[1]}


def status_json(cluster: LocalCluster, node: str) -> dict[str, object]:
    result = hakeeper(cluster, node, "status", "--json")
    assert result.exit_code == 0, result.output
    doc: dict[str, object] = json.loads(result.output)
    return doc


def status_text(cluster: LocalCluster, node: str) -> str:
    result = hakeeper(cluster, node, "status")
    assert result.exit_code == 0, result.output
    return result.output


def test_failure_timeout_expires_the_fail_count_and_status_shows_the_time_left(
    cluster: LocalCluster,
) -> None:
    node = kill_behind_the_clusters_back(cluster, "expiring")
    assert wait_until(lambda: counts(cluster, "expiring") == {node: 1}, 60, 0.2), cluster.logs()
    fc = fail_counts(cluster, "expiring")[node]
    assert fc.expires_in_s is not None and 0 < fc.expires_in_s <= FAILURE_TIMEOUT_S, fc
    assert fc.last_failure is not None
    status_json(cluster, node)  # the CLI reads the same view
    text = status_text(cluster, node)
    assert f"expiring on {node}: 1" in text and "expires in" in text, text
    assert wait_until(lambda: settled_on(cluster, "expiring", node), 60), cluster.logs()

    # the fail count expires: the cluster forgets it without an operator
    assert wait_until(lambda: not counts(cluster, "expiring"), FAILURE_TIMEOUT_S + 60, 0.5), fail_counts(
        cluster, "expiring"
    )
    assert f"expiring on {node}" not in status_text(cluster, node)
    with api(cluster, node) as c:
        failed = [f for f in c.resources().failed_actions if f.rsc == "expiring"]
    assert failed == [], "an expired failure is no longer listed as a failed action"
    assert running(cluster, "expiring") == {node}


def starts_of(cluster: LocalCluster, rsc: str) -> list[tuple[str | None, int]]:
    """Every recorded start of ``rsc`` (node, event id), from the cluster's event log."""
    with api(cluster, NODES[0]) as c:
        events = c.events(limit=1000).events
    return [(e.node, e.id) for e in events if e.rsc == rsc and e.task == "start"]


def test_a_changed_parameter_restarts_the_resource_in_place_once(cluster: LocalCluster) -> None:
    old = cluster.root / "tunable-1.state"
    new = cluster.root / "tunable-2.state"
    assert old.exists()
    before = starts_of(cluster, "tunable")
    node = before[-1][0]
    updated = hakeeper(cluster, NODES[1], "resource", "update", "tunable", f"state={new}")
    assert updated.exit_code == 0, updated.output
    # the recorded digest no longer matches: stop with the old parameters, start with the new, same node
    assert wait_until(lambda: new.exists() and not old.exists(), 60), cluster.logs()
    assert wait_until(lambda: len(starts_of(cluster, "tunable")) == len(before) + 1, 30, 0.3)
    assert starts_of(cluster, "tunable")[-1][0] == node, "stickiness keeps it where it was"
    # and only once: the new start's digest matches the definition, so nothing restarts it again
    assert not wait_until(lambda: len(starts_of(cluster, "tunable")) > len(before) + 1, 5, 0.5)
    assert new.exists()
