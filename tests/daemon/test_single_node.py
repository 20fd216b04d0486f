"""A cluster of one node is a cluster: its daemon is the DC and runs the resources (no peer ever joins)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hakeeper.api.client import ApiClient, ApiRequestError
from hakeeper.cli.localcluster import LocalCluster, wait_until
from tests.clusters import DUMMY, running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed"),
]

BOOTSTRAP = """
[cluster]
name = "solo"

[properties]
stonith-enabled = false

[nodes.n1]

[resources.web]
agent = "ocf:heartbeat:Dummy"
ops = [{ name = "monitor", interval = "1s", timeout = "10s" }]
"""


@pytest.fixture
def solo(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path, ["n1"], BOOTSTRAP)
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.stop_all()


def test_a_one_node_cluster_starts_its_resources_and_recovers_them(solo: LocalCluster) -> None:
    assert wait_until(lambda: running(solo, "web") == {"n1"}, 60), solo.logs()
    (solo.node_dir("n1") / "lrm" / "Dummy-web.state").unlink()  # the service dies behind the cluster's back
    assert wait_until(lambda: fail_count(solo) == 1, 60), solo.logs()
    assert wait_until(lambda: running(solo, "web") == {"n1"}, 60), solo.logs()


def fail_count(cluster: LocalCluster) -> int | None:
    try:
        with ApiClient(socket_path=cluster.node_dir("n1") / "api.sock", timeout_s=10) as api:
            counts = api.resource("web").fail_counts
    except ApiRequestError:
        return None
    return sum(f.count for f in counts)
