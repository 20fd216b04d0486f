"""The LRM's local view of node attributes, and the (sans-I/O) handling of helper-command requests.

Agents' helper commands (``crm_attribute``, ``attrd_updater``...) send small JSON requests; this object
answers them and produces :class:`AttributeUpdate` events for the CRM. Dampening is recorded in the event;
applying it (delaying the cluster-wide write) is the attribute manager's job upstream, so queries here see
the new value at once, as Pacemaker's attrd shows a node's own pending value.
"""

from __future__ import annotations

from collections.abc import Mapping

from hakeeper.lrm.messages import AttributeUpdate

EX_USAGE, EX_NOSUCH = 64, 105


class AttributeView:
    """Attribute values known on this node: ``(node, name) -> value``, plus membership and quorum."""

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self._values: dict[tuple[str, str], str] = {}
        self._lifetimes: dict[tuple[str, str], str] = {}
        self.nodes: list[str] = [node_name]
        self.quorate: bool = True

    def get(self, name: str, node: str | None = None) -> str | None:
        return self._values.get((node or self.node_name, name))

    def values_of(self, name: str) -> dict[str, str]:
        return {node: value for (node, attr), value in self._values.items() if attr == name}

    def set_from_cluster(self, node: str, name: str, value: str | None) -> None:
        """Apply a value learned from the CIB (so queries see what the cluster sees)."""
        if value is None:
            self._values.pop((node, name), None)
        else:
            self._values[(node, name)] = value

    def handle(self, req: Mapping[str, object]) -> tuple[dict[str, object], list[AttributeUpdate]]:
        """Answer one helper request; returns (answer, updates to send upward)."""
        op = req.get("op")
        if op == "quorum":
            return {"ok": True, "quorate": self.quorate}, []
        if op == "nodes":
            return {"ok": True, "nodes": list(self.nodes)}, []
        name, node = req.get("name"), req.get("node") or self.node_name
        if not isinstance(name, str) or not name or not isinstance(node, str):
            return {"ok": False, "error": "the request names no attribute", "code": EX_USAGE}, []
        if op == "query":
            if req.get("all"):
                return {"ok": True, "values": self.values_of(name), "value": self.get(name, node)}, []
            value = self.get(name, node)
            return {"ok": True, "value": value, "values": {node: value} if value is not None else {}}, []
        if op in ("update", "delete", "delay"):
            return self._change(op, name, node, req)
        return {"ok": False, "error": f"unknown request {op!r}", "code": EX_USAGE}, []

    def _change(
        self, op: str, name: str, node: str, req: Mapping[str, object]
    ) -> tuple[dict[str, object], list[AttributeUpdate]]:
        key = (node, name)
        if op == "update":
            value: str | None = str(req.get("value", ""))
        elif op == "delete":
            value = None
        else:  # a new dampening only: re-announce the current value
            value = self._values.get(key)
        lifetime = str(req.get("lifetime") or self._lifetimes.get(key, "reboot"))
        if value is None:
            self._values.pop(key, None)
        else:
            self._values[key] = value
            self._lifetimes[key] = lifetime
        dampen = req.get("dampen_ms", 0)
        update = AttributeUpdate(
            node=node,
            name=name,
            value=value,
            lifetime=lifetime,
            dampen_ms=dampen if isinstance(dampen, int) else 0,
            resource_id=str(req.get("resource", "")),
        )
        return {"ok": True}, [update]
