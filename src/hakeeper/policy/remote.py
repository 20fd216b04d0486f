"""Pacemaker Remote nodes: nodes that exist because a connection resource (``ocf:pacemaker:remote``) runs.

A remote node is named after its connection resource. It is online while the connection runs (and has
not failed), so its operation history is only read then. Connections are placed before every other
resource: a connection that will run brings its node online for this transition, one that will not run
shuts the node down, so whatever runs there is stopped. Neither connections nor fencing devices may run
on remote nodes.

Not covered yet: guest nodes (``remote-node`` meta on a VM or container resource), bundles, and fencing of
a remote node whose connection is lost while resources are active there.
"""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.policy.working import INFINITY, NodeInfo, Role, Rsc

REMOTE_AGENT = "ocf:pacemaker:remote"


def is_connection(prim: m.Primitive) -> bool:
    return (prim.klass or "") == "ocf" and (prim.provider or "") == "pacemaker" and prim.type == "remote"


def add_remote_nodes(cib: m.Cib, nodes: dict[str, NodeInfo]) -> None:
    """One node per connection resource (kept where the configuration already lists it)."""
    for res in cib.configuration.resources:
        if not isinstance(res, m.Primitive) or not is_connection(res):
            continue
        node = nodes.get(res.id)
        if node is None:
            node = NodeInfo(name=res.id, id=res.id, kind="remote")
            nodes[res.id] = node
        node.kind = "remote"
        node.remote_rsc = res.id
        node.unclean = False
        node.unseen = True  # fencing it is revoked if the connection can run again (unless it failed)


def connection_of(node: NodeInfo, by_id: dict[str, Rsc]) -> Rsc | None:
    return by_id.get(node.remote_rsc) if node.remote_rsc is not None else None


def set_remote_online(nodes: dict[str, NodeInfo], by_id: dict[str, Rsc]) -> None:
    """A remote node is up while its connection runs and has not failed; it shuts down if it is stopping."""
    for node in nodes.values():
        conn = connection_of(node, by_id)
        if conn is None:
            continue
        running = conn.role >= Role.STARTED and bool(conn.running_on)
        node.online = running and not conn.failed
        node.shutdown = running and conn.next_role == Role.STOPPED


def avoid_remote_nodes(nodes: dict[str, NodeInfo], resources: list[Rsc]) -> None:
    """Connections and fencing devices never run on a remote node."""
    remote = [n.name for n in nodes.values() if n.kind == "remote"]
    if not remote:
        return
    for top in resources:
        for prim in top.primitives():
            if prim.klass == "stonith" or prim.agent == "ocf:pacemaker:remote":
                for name in remote:
                    prim.allowed[name] = -INFINITY


def connection_lost(node: NodeInfo, conn: Rsc) -> bool:
    """Will this remote node stay unreachable: its connection cannot run again and it failed (or its host
    is being fenced)? Then only fencing can stop what runs there."""
    if conn.next_role != Role.STOPPED and conn.assigned is not None:
        return False
    host = conn.current_node()
    if host is not None and host.unclean:
        return True
    if not conn.failed:
        return False
    # with a reconnect interval after a fencing, whether it can come back is only known after the interval
    shutting_down = node.attrs.get("shutdown", "0") not in ("", "0")
    return not (conn.reconnect_s > 0 and node.remote_was_fenced and not shutting_down)


def unreachable_remote_nodes(nodes: dict[str, NodeInfo], by_id: dict[str, Rsc],
                             stopping_on: set[str]) -> list[NodeInfo]:
    """Remote nodes with something to stop whose connection is lost for good: they must be fenced."""
    out: list[NodeInfo] = []
    for node in nodes.values():
        conn = connection_of(node, by_id)
        if conn is not None and node.name in stopping_on and connection_lost(node, conn):
            out.append(node)
    return out


def connection_assigned(conn: Rsc, nodes: dict[str, NodeInfo]) -> None:
    """Once its connection is placed, a remote node will be up for this transition, or shut down."""
    node = nodes.get(conn.id)
    if node is None or node.remote_rsc != conn.id:
        return
    if conn.assigned is not None and conn.next_role != Role.STOPPED:
        node.online = True
        if node.unseen:
            node.unclean = False
    else:
        node.shutdown = True
