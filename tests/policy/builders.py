"""Small builders for readable scheduler scenarios (CIB model objects, no XML)."""

from __future__ import annotations

from hakeeper.cib import model as m


def prim(rsc_id: str, **meta: str) -> m.Primitive:
    sets = [m.NvSet(id=f"{rsc_id}-meta", values=dict(meta))] if meta else []
    return m.Primitive(id=rsc_id, klass="ocf", provider="heartbeat", type="Dummy", meta_attributes=sets)


def fencing_device() -> m.Primitive:
    return m.Primitive(id="fence", klass="stonith", type="fence_dummy")


def op(
    rsc_id: str,
    task: str,
    call_id: int,
    rc: int = 0,
    expected: int = 0,
    interval: int = 0,
    last_change: int | None = None,
) -> m.OpRecord:
    return m.OpRecord(
        id=f"{rsc_id}_{task}_{interval}",
        operation=task,
        call_id=call_id,
        rc=rc,
        interval=interval,
        transition_key=f"1:1:{expected}:abc",
        last_rc_change=last_change,
    )


def history(rsc_id: str, *ops: m.OpRecord) -> m.ResourceHistory:
    """Operations recorded for the agent the builders configure (a changed agent would force a restart)."""
    if rsc_id == fencing_device().id:
        return m.ResourceHistory(id=rsc_id, klass="stonith", type="fence_dummy", ops=list(ops))
    return m.ResourceHistory(id=rsc_id, klass="ocf", provider="heartbeat", type="Dummy", ops=list(ops))


def started(rsc_id: str, call_id: int = 2) -> m.ResourceHistory:
    """A resource whose last operation on the node was a successful start."""
    return history(rsc_id, op(rsc_id, "start", call_id))


def node_state(
    name: str,
    *resources: m.ResourceHistory,
    online: bool = True,
    attrs: dict[str, str] | None = None,
    expected: str = "member",
) -> m.NodeState:
    transient = [m.NvSet(id=f"{name}-attrs", values=attrs)] if attrs else []
    return m.NodeState(
        id=name,
        uname=name,
        in_ccm="true" if online else "false",
        crmd="online" if online else "offline",
        join="member" if online else "down",
        expected=expected,
        resources=list(resources),
        transient_attributes=transient,
    )


def cib(
    resources: list[m.Resource],
    states: list[m.NodeState],
    *,
    constraints: list[m.Constraint] | None = None,
    nodes: list[str] | None = None,
    stonith: bool = False,
    props: dict[str, str] | None = None,
    quorum: bool = True,
    rsc_defaults: dict[str, str] | None = None,
    node_attrs: dict[str, dict[str, str]] | None = None,
) -> m.Cib:
    names = nodes if nodes is not None else [s.uname or s.id for s in states]
    values = {"stonith-enabled": "true" if stonith else "false"}
    values.update(props or {})
    node_attrs = node_attrs or {}
    config = m.Configuration(
        properties=[m.NvSet(id="cib-bootstrap-options", values=values)],
        nodes=[
            m.Node(
                id=n,
                uname=n,
                instance_attributes=[m.NvSet(id=f"{n}-na", values=node_attrs[n])] if n in node_attrs else [],
            )
            for n in names
        ],
        resources=list(resources),
        constraints=list(constraints or []),
        rsc_defaults=[m.NvSet(id="rsc-options", values=rsc_defaults)] if rsc_defaults else [],
    )
    return m.Cib(configuration=config, status=m.Status(nodes=list(states)), have_quorum=quorum)


def lines(transition_summary: list[str]) -> set[str]:
    """Summary lines with whitespace collapsed, for order-free comparison."""
    return {" ".join(line.split()).replace("( ", "(").replace(" )", ")") for line in transition_summary}
