"""Lenient parsing of agent meta-data XML, and a cache keyed by the agent file's identity.

Real agents print the OCF 1.0 DOCTYPE, ``unique="1"`` instead of unique groups, durations such as ``20s`` or
``2min``, and sometimes omit attributes entirely; none of that is an error here. Only XML that is not
well-formed, or whose root is not ``<resource-agent>``, is refused (with a sentence saying so).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Hashable

import msgspec


class MetadataError(ValueError):
    """The agent's meta-data could not be read."""


class ParameterInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    type: str = "string"
    default: str | None = None
    required: bool = False
    unique: bool = False
    unique_group: str = ""
    reloadable: bool = False
    deprecated: bool = False
    shortdesc: str = ""
    longdesc: str = ""
    options: list[str] = []


class ActionInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    timeout_ms: int | None = None
    interval_ms: int | None = None
    depth: int | None = None
    role: str = ""


class AgentMetadata(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str = ""
    shortdesc: str = ""
    longdesc: str = ""
    parameters: list[ParameterInfo] = []
    actions: list[ActionInfo] = []

    def parameter(self, name: str) -> ParameterInfo | None:
        return next((p for p in self.parameters if p.name == name), None)

    def advised_timeout_ms(self, action: str) -> int | None:
        """The timeout the agent advises for ``action`` (the first entry, as Pacemaker reads it)."""
        return next((a.timeout_ms for a in self.actions if a.name == action and a.timeout_ms), None)

    def supports(self, action: str) -> bool:
        return any(a.name == action for a in self.actions)


_UNITS_MS = {
    "": 1000, "s": 1000, "sec": 1000, "secs": 1000, "second": 1000, "seconds": 1000,
    "ms": 1, "msec": 1, "msecs": 1, "us": 0.001, "usec": 0.001,
    "m": 60_000, "min": 60_000, "mins": 60_000, "minute": 60_000, "minutes": 60_000,
    "h": 3_600_000, "hr": 3_600_000, "hour": 3_600_000, "hours": 3_600_000,
}  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration_ms(text: str) -> int | None:
    """``"20s"`` -> 20000, ``"2min"`` -> 120000, ``"100"`` -> 100000 (bare numbers are seconds); else None."""
    match = _DURATION.match(text)
    if match is None:
        return None
    factor = _UNITS_MS.get(match.group(2).lower())
    if factor is None:
        return None
    return int(float(match.group(1)) * factor)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "y", "on")


def _text(parent: ET.Element, tag: str) -> str:
    node = parent.find(tag)
    return " ".join((node.text or "").split()) if node is not None else ""


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _parameter(node: ET.Element) -> ParameterInfo | None:
    name = node.get("name")
    if not name:
        return None
    content = node.find("content")
    ptype, default, options = "string", None, []
    if content is not None:
        ptype = content.get("type", "string")
        default = content.get("default")
        options = [o.get("value", "") for o in content.findall("option")]
    unique_group = node.get("unique-group", "")
    return ParameterInfo(
        name=name,
        type=ptype,
        default=default,
        required=_truthy(node.get("required")),
        unique=_truthy(node.get("unique")) or bool(unique_group),
        unique_group=unique_group,
        reloadable=_truthy(node.get("reloadable")),
        deprecated=node.find("deprecated") is not None,
        shortdesc=_text(node, "shortdesc"),
        longdesc=_text(node, "longdesc"),
        options=options,
    )


def _action(node: ET.Element) -> ActionInfo | None:
    name = node.get("name")
    if not name:
        return None
    timeout, interval = node.get("timeout"), node.get("interval")
    return ActionInfo(
        name=name,
        timeout_ms=parse_duration_ms(timeout) if timeout else None,
        interval_ms=parse_duration_ms(interval) if interval else None,
        depth=_int_or_none(node.get("depth")),
        role=node.get("role", ""),
    )


def parse_metadata(xml_text: str | bytes, source: str = "agent") -> AgentMetadata:
    """Parse meta-data XML leniently; raise :class:`MetadataError` only when it is not usable at all."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise MetadataError(f"the meta-data of {source} is not well-formed XML ({exc})") from None
    if root.tag != "resource-agent":
        raise MetadataError(
            f"the meta-data of {source} does not start with <resource-agent> (got <{root.tag}>)"
        )
    params_node = root.find("parameters")
    actions_node = root.find("actions")
    parameters = [p for p in map(_parameter, params_node or []) if p is not None]
    actions = [a for a in map(_action, actions_node or []) if a is not None]
    return AgentMetadata(
        name=root.get("name", source),
        version=_text(root, "version") or root.get("version", ""),
        shortdesc=_text(root, "shortdesc"),
        longdesc=_text(root, "longdesc"),
        parameters=parameters,
        actions=actions,
    )


class MetadataCache:
    """Parsed meta-data per agent, reloaded only when the agent's identity (path, mtime) changes."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Hashable, AgentMetadata]] = {}

    def get(self, key: str, stamp: Hashable, load: Callable[[], str]) -> AgentMetadata:
        cached = self._entries.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        metadata = parse_metadata(load(), source=key)
        self._entries[key] = (stamp, metadata)
        return metadata

    def __len__(self) -> int:
        return len(self._entries)
