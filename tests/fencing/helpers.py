"""Small builders for fencing tests: stonith primitives, nodes and configurations."""

from __future__ import annotations

from hakeeper.cib.model import Configuration, FencingLevel, Node, NvSet, Primitive


def stonith(
    dev_id: str, agent: str = "fence_dummy", meta: dict[str, str] | None = None, **params: str
) -> Primitive:
    """A stonith primitive; keyword parameters become instance attributes."""
    return Primitive(
        id=dev_id,
        klass="stonith",
        type=agent,
        instance_attributes=[NvSet(id=f"{dev_id}-ia", values=dict(params))] if params else [],
        meta_attributes=[NvSet(id=f"{dev_id}-meta", values=meta)] if meta else [],
    )


def config(
    *resources: Primitive,
    nodes: tuple[str, ...] = ("node1", "node2"),
    levels: tuple[FencingLevel, ...] = (),
    props: dict[str, str] | None = None,
    node_attrs: dict[str, dict[str, str]] | None = None,
) -> Configuration:
    attrs = node_attrs or {}
    return Configuration(
        properties=[NvSet(id="cib-bootstrap-options", values=props)] if props else [],
        nodes=[
            Node(
                id=str(i),
                uname=n,
                instance_attributes=[NvSet(id=f"{n}-attrs", values=attrs[n])] if n in attrs else [],
            )
            for i, n in enumerate(nodes, start=1)
        ],
        resources=list(resources),
        fencing_topology=list(levels),
    )
