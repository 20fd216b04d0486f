"""What the tests that run real daemons share: a three-node bootstrap with a Dummy resource, and where
it runs — read from the world (the unmodified ``ocf:heartbeat:Dummy`` agent's state file in each node's own
directory), not from the cluster's opinion of itself.
"""

from __future__ import annotations

from pathlib import Path

from hakeeper.cli.localcluster import LocalCluster

DUMMY = Path("/usr/lib/ocf/resource.d/heartbeat/Dummy")
NODES = ["n1", "n2", "n3"]


def dummy_bootstrap(name: str, *, fencing: str = "") -> str:
    """Three nodes, stickiness 100, one ``web`` Dummy monitored every second; ``fencing`` is a fence
    device's TOML (or none)."""
    stonith = "true" if fencing else "false"
    return f"""
[cluster]
name = "{name}"

[properties]
stonith-enabled = {stonith}

[rsc_defaults]
resource-stickiness = 100

[nodes.n1]
[nodes.n2]
[nodes.n3]
{fencing}
[resources.web]
agent = "ocf:heartbeat:Dummy"
ops = [{{ name = "monitor", interval = "1s", timeout = "10s" }}]
"""


def running(cluster: LocalCluster, rsc: str) -> set[str]:
    """Live nodes where the Dummy agent's state file says ``rsc`` runs."""
    return {n for n in cluster.procs if (cluster.node_dir(n) / "lrm" / f"Dummy-{rsc}.state").exists()}
