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


def guest_name(prim: m.Primitive) -> str | None:
    """The guest node a VM or container resource hosts (its ``remote-node`` meta attribute), if any."""
    if is_connection(prim):
        return None
    for nvset in prim.meta_attributes:
        name = nvset.values.get("remote-node")
        if name:
            return name
    return None


def guest_connection(container: m.Primitive, name: str) -> m.Primitive:
    """The implicit connection resource to a guest node, named after the node (as Pacemaker makes it)."""
    meta: dict[str, str] = {}
    params: dict[str, str] = {}
    for nvset in container.meta_attributes:
        for key, value in nvset.values.items():
            if key in ("is-managed", "allow-migrate"):
                meta[key] = value
            elif key == "remote-addr":
                params["addr"] = value
            elif key == "remote-port":
                params["port"] = value
    return m.Primitive(
        id=name,
        klass="ocf",
        provider="pacemaker",
        type="remote",
        meta_attributes=[m.NvSet(id=f"{name}-meta", values=meta)] if meta else [],
        instance_attributes=[m.NvSet(id=f"{name}-params", values=params)] if params else [],
    )


def add_remote_nodes(cib: m.Cib, nodes: dict[str, NodeInfo]) -> None:
    """One node per connection resource (kept where the configuration already lists it), and one per
    guest (a resource with ``remote-node``)."""
    for res in cib.configuration.resources:
        if not isinstance(res, m.Primitive):
            continue
        name = res.id if is_connection(res) else guest_name(res)
        if name is None:
            continue
        node = nodes.get(name)
        if node is None:
            node = NodeInfo(name=name, id=name, kind="remote")
            nodes[name] = node
        node.kind = "remote"
        node.remote_rsc = name
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
        container = conn.container
        if container is not None:
            host = container.current_node()
            if container.failed or (host is not None and host.unclean and not host.online):
                node.requires_reset = True  # recovering the container is this guest's fencing
                running = False
            elif container.role < Role.STARTED:
                running = False  # a guest is down with its VM or container
        node.online = running and not conn.failed
        node.shutdown = running and conn.next_role == Role.STOPPED


def avoid_remote_nodes(nodes: dict[str, NodeInfo], resources: list[Rsc]) -> None:
    """Connections and fencing devices never run on a remote node."""
    remote = [n.name for n in nodes.values() if n.kind == "remote"]
    if not remote:
        return
    for top in resources:
        for prim in top.primitives():
            hosts_guest = any(c.container is prim and c.agent == REMOTE_AGENT for c in resources)
            if prim.klass == "stonith" or prim.agent == REMOTE_AGENT or hosts_guest:
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


def unreachable_remote_nodes(
    nodes: dict[str, NodeInfo], by_id: dict[str, Rsc], stopping_on: set[str]
) -> list[NodeInfo]:
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
