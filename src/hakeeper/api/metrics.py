"""Prometheus metrics computed on each scrape from the CIB snapshot and the cluster state.

No global registry and no counters kept in memory: a custom collector reads the same views the API shows,
so the figures always match what ``status`` says. Names follow ``ha_cluster_exporter`` where the meaning is
the same (``ha_cluster_pacemaker_nodes``, ``..._resources``, ``..._fail_count``,
``..._migration_threshold``, ``ha_cluster_corosync_quorate``); hakeeper's own figures start with
``hakeeper_``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from hakeeper.api.handle import ClusterHandle
from hakeeper.api.views import cluster_view, resource_list
from hakeeper.cib import model as m

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _node_status(online: bool, standby: bool, maintenance: bool, unclean: bool) -> list[str]:
    out = ["online" if online else "offline"]
    if standby:
        out.append("standby")
    if maintenance:
        out.append("maintenance")
    if unclean:
        out.append("unclean")
    return out


class ClusterCollector(Collector):
    """Collects the cluster's figures from a ``ClusterHandle`` at scrape time."""

    def __init__(self, handle: ClusterHandle, extra: Callable[[], Iterable[Metric]] | None = None) -> None:
        self.handle = handle
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        cib, now = self.handle.cib(), self.handle.now()
        cluster = cluster_view(cib, self.handle.cluster_state(), now)
        resources = resource_list(cib, now)

        nodes = GaugeMetricFamily(
            "ha_cluster_pacemaker_nodes",
            "Nodes by status (1 when the node has it)",
            labels=["node", "type", "status"],
        )
        for n in cluster.nodes:
            for status in _node_status(n.online, n.standby, n.maintenance, n.unclean):
                nodes.add_metric([n.name, "member", status], 1)
        yield nodes
        yield GaugeMetricFamily(
            "ha_cluster_pacemaker_nodes_total", "Configured nodes", value=len(cluster.nodes)
        )
        yield GaugeMetricFamily(
            "hakeeper_nodes_online", "Nodes online", value=sum(1 for n in cluster.nodes if n.online)
        )
        yield GaugeMetricFamily(
            "ha_cluster_corosync_quorate",
            "1 when this node's partition has quorum",
            value=1 if cluster.quorate else 0,
        )
        dc = GaugeMetricFamily("hakeeper_dc", "The node that is DC (consensus leader)", labels=["node"])
        if cluster.dc:
            dc.add_metric([cluster.dc], 1)
        yield dc

        rsc = GaugeMetricFamily(
            "ha_cluster_pacemaker_resources",
            "Primitive resources active, by node and role",
            labels=["node", "resource", "role", "managed", "status"],
        )
        fails = GaugeMetricFamily(
            "ha_cluster_pacemaker_fail_count", "Failures of a resource on a node", labels=["node", "resource"]
        )
        thresholds = GaugeMetricFamily(
            "ha_cluster_pacemaker_migration_threshold",
            "Failures allowed before the resource leaves the node",
            labels=["node", "resource"],
        )
        expiry = GaugeMetricFamily(
            "hakeeper_fail_count_expires_in_seconds",
            "Seconds until the failures expire (absent: they never do)",
            labels=["node", "resource"],
        )
        for view in resources.resources:
            if view.kind != "primitive":
                continue
            status = "failed" if view.failed else "active"
            for node in view.nodes:
                role = "Promoted" if node in view.promoted_on else view.role
                rsc.add_metric([node, view.id, role, str(view.managed).lower(), status], 1)
            for fc in view.fail_counts:
                fails.add_metric([fc.node, view.id], fc.count)
                thresholds.add_metric([fc.node, view.id], fc.migration_threshold)
                if fc.expires_in_s is not None:
                    expiry.add_metric([fc.node, view.id], fc.expires_in_s)
        yield rsc
        yield fails
        yield thresholds
        yield expiry
        yield GaugeMetricFamily(
            "ha_cluster_pacemaker_resources_total",
            "Configured primitive resources",
            value=cluster.resources_configured,
        )
        yield GaugeMetricFamily(
            "hakeeper_failed_actions",
            "Failed operations recorded in the status",
            value=len(resources.failed_actions),
        )
        last = self.handle.events(0, 1)
        yield GaugeMetricFamily(
            "hakeeper_events_last_id",
            "Id of the newest cluster event (grows by one per event)",
            value=last[-1].id if last else 0,
        )
        yield GaugeMetricFamily("hakeeper_cib_epoch", "Configuration epoch of the CIB", value=cib.epoch)
        yield GaugeMetricFamily(
            "hakeeper_cib_num_updates", "Status updates since the epoch changed", value=cib.num_updates
        )
        yield from _operation_metrics(cib)
        yield from _fencing_metrics(cib)
        if self.extra is not None:
            yield from self.extra()  # the daemon's own figures: messaging, transitions


def _operation_metrics(cib: m.Cib) -> Iterator[Metric]:
    """How long each resource's latest operations took, from the operation history in the status."""
    family = GaugeMetricFamily(
        "hakeeper_operation_exec_seconds",
        "Run time of the latest recorded operation (per resource, node, operation)",
        labels=["node", "resource", "operation", "interval_ms"],
    )
    for state in cib.status.nodes:
        for hist in state.resources:
            for op in hist.ops:
                if op.exec_time is not None and not op.id.endswith("_last_failure_0"):
                    family.add_metric(
                        [state.uname or state.id, hist.id, op.operation, str(op.interval)],
                        op.exec_time / 1000,
                    )
    yield family


def _fencing_metrics(cib: m.Cib) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "hakeeper_fencing_events",
        "Fencing operations in the history, by target and result",
        labels=["target", "action", "state"],
    )
    counts: dict[tuple[str, str, str], int] = {}
    for e in cib.status.fencing_history:
        key = (e.target, e.action, e.state)
        counts[key] = counts.get(key, 0) + 1
    for (target, action, state), count in sorted(counts.items()):
        family.add_metric([target, action, state], count)
    yield family


def render(handle: ClusterHandle, extra: Callable[[], Iterable[Metric]] | None = None) -> bytes:
    """The Prometheus text exposition of the cluster's figures, now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(handle, extra))
    return generate_latest(registry)
