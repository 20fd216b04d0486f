"""The operator CLI against three real daemons on loopback.

`hakeeper status` shows where a resource runs, `hakeeper resource move` moves it and status shows the move;
a killed node shows as offline.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hakeeper.api.auth import TOKENS_FILE, Role, TokenStore
from hakeeper.cli.localcluster import LocalCluster, wait_until
from hakeeper.cli.main import _register, cli
from tests.clusters import DUMMY, NODES, dummy_bootstrap

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed"),
]

BOOTSTRAP = dummy_bootstrap("clitest")


class Live(LocalCluster):
    """The local cluster, with an admin token per node when the tests do not run as root."""

    tokens: dict[str, str]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Live]:
    if "status" not in cli.commands:
        _register()
    c = Live(tmp_path, NODES, BOOTSTRAP)
    c.tokens = {}
    if os.getuid() != 0:  # only root needs no token on the socket
        for name in NODES:
            c.node_dir(name).mkdir(parents=True, exist_ok=True)
            store = TokenStore(c.node_dir(name) / TOKENS_FILE)
            c.tokens[name] = store.create("cli-test", Role.ADMIN, time.time())
    try:
        yield c
    finally:
        c.stop_all()


def hakeeper(cluster: Live, node: str, *args: str) -> Result:
    """``hakeeper ARGS --socket <node's api.sock>``, as an operator on that node."""
    socket = cluster.node_dir(node) / "api.sock"
    env = {"HAKEEPER_TOKEN": cluster.tokens.get(node), "HAKEEPER_URL": None}
    return CliRunner().invoke(cli, [*args, "--socket", str(socket)], env=env)


def running_on(cluster: Live, node: str) -> list[str]:
    """Where ``hakeeper status --json`` (asked of ``node``) says web runs; [] while the API is not up."""
    result = hakeeper(cluster, node, "status", "--json")
    if result.exit_code != 0:
        return []
    doc = json.loads(result.output)
    return next((r["nodes"] for r in doc["resources"]["resources"] if r["id"] == "web"), [])


def test_status_shows_the_resource_and_move_moves_it(cluster: Live) -> None:
    cluster.start_all()
    assert wait_until(lambda: len(running_on(cluster, "n1")) == 1, 90, 0.5), cluster.logs()
    (active,) = running_on(cluster, "n1")
    status = hakeeper(cluster, "n2", "status")
    assert status.exit_code == 0, status.output
    assert f"* web (ocf:heartbeat:Dummy): Started on {active}" in status.output
    assert "partition with quorum" in status.output
    for name in NODES:
        assert f"{name}: online" in status.output

    target = next(n for n in NODES if n != active)
    moved = hakeeper(cluster, "n3", "resource", "move", "web", target)
    assert moved.exit_code == 0, moved.output
    assert "Committed: CIB version" in moved.output
    assert wait_until(lambda: running_on(cluster, "n1") == [target], 60, 0.5), cluster.logs()
    assert (cluster.node_dir(target) / "lrm" / "Dummy-web.state").exists()  # the agent agrees
    after = hakeeper(cluster, "n1", "status")
    assert f"* web (ocf:heartbeat:Dummy): Started on {target}" in after.output
    assert f"web start on {target}: " in after.output  # the start appears among the recent events

    lost = next(n for n in NODES if n != target)
    cluster.kill(lost)
    assert wait_until(lambda: f"{lost}: OFFLINE" in hakeeper(cluster, target, "status").output, 30, 0.5)
    assert running_on(cluster, target) == [target]
