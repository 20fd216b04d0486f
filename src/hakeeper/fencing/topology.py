"""Fencing topology: which devices are tried for a node, level by level.

Levels are configured per target, selected by node name (``target``), by a regular expression on the name
(``target_pattern``, matched anywhere in the name, as Pacemaker's ``regexec``) or by a node attribute
(``target_attribute`` = ``target_value``). Levels that share one selector form that target's topology. A
selector naming the node exactly wins; otherwise the first matching selector in configuration order does
(Pacemaker leaves that choice to a hash table; we make it predictable). Level 1 is tried first; a level
succeeds only when every one of its devices succeeds; the next level is tried when one fails.

Without a topology for the node, every device that can fence it is tried in turn, each as its own level:
highest ``priority`` meta attribute first, then configuration order; devices whose capability is only known
by asking the agent (``status`` checks, dynamic lists not fetched yet) come after the certain ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import msgspec

from hakeeper.cib.model import Configuration, FencingLevel, Node
from hakeeper.cib.nvsets import resolve_nvsets
from hakeeper.cib.rules import RuleContext
from hakeeper.fencing.devices import Capability, FenceDevice, can_fence

CapabilityCheck = Callable[[FenceDevice, str], Capability]


class Level(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a plan: every device must succeed. ``problems`` say why the level cannot work."""

    index: int
    devices: tuple[str, ...]
    level_id: str = ""
    problems: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return not self.problems


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """The levels to try for one target, in order."""

    target: str
    levels: tuple[Level, ...] = ()
    from_topology: bool = False
    selector: str = ""

    @property
    def usable_levels(self) -> tuple[Level, ...]:
        return tuple(level for level in self.levels if level.usable)


def selector_of(level: FencingLevel) -> str:
    """A readable key for the target a level is for: ``node1``, ``/^web/``, ``rack=r1``."""
    if level.target is not None:
        return level.target
    if level.target_pattern is not None:
        return f"/{level.target_pattern}/"
    return f"{level.target_attribute}={level.target_value}"


def node_attributes(node: Node, now: int | None = None) -> dict[str, str]:
    """A node's permanent attributes (plus ``#uname``/``#id``), for ``target_attribute`` levels."""
    attrs = {"#uname": node.uname, "#id": node.id}
    if node.instance_attributes:
        attrs.update(resolve_nvsets(node.instance_attributes, RuleContext(now=now)))
    return attrs


def all_node_attributes(config: Configuration, now: int | None = None) -> dict[str, dict[str, str]]:
    return {node.uname: node_attributes(node, now) for node in config.nodes}


def _matches(level: FencingLevel, node: str, attrs: Mapping[str, str]) -> bool:
    if level.target is not None:
        return level.target == node
    if level.target_pattern is not None:
        try:
            return re.search(level.target_pattern, node) is not None
        except re.error:
            return False
    if level.target_attribute is not None:
        return attrs.get(level.target_attribute) == level.target_value
    return False


def topology_for(
    node: str, topology: Sequence[FencingLevel], node_attrs: Mapping[str, str] | None = None
) -> tuple[str, list[FencingLevel]]:
    """The selector chosen for ``node`` and its levels sorted by index (empty when none applies)."""
    attrs = node_attrs or {}
    matching = [lv for lv in topology if _matches(lv, node, attrs)]
    if not matching:
        return "", []
    exact = [lv for lv in matching if lv.target == node]
    chosen = selector_of(exact[0] if exact else matching[0])
    by_index: dict[int, FencingLevel] = {}
    for level in matching:
        if selector_of(level) == chosen:
            by_index[level.index] = level  # a repeated index: the later definition wins
    return chosen, [by_index[i] for i in sorted(by_index)]


def bad_patterns(topology: Sequence[FencingLevel]) -> dict[str, str]:
    """Level ids whose ``target_pattern`` is not a valid regular expression, with the reason."""
    bad: dict[str, str] = {}
    for level in topology:
        if level.target_pattern is None:
            continue
        try:
            re.compile(level.target_pattern)
        except re.error as err:
            bad[level.id] = f"fencing level {level.id} has target-pattern {level.target_pattern!r}: {err}"
    return bad


def _default_check(device: FenceDevice, node: str) -> Capability:
    return can_fence(device, node)


def _device_problem(
    device_id: str,
    node: str,
    devices: Mapping[str, FenceDevice],
    check: CapabilityCheck,
    unusable: Mapping[str, str],
) -> str | None:
    device = devices.get(device_id)
    if device is None and device_id in unusable:
        return f"device {device_id} is configured but cannot be used (its configuration is invalid)"
    if device is None:
        return f"device {device_id} is not configured"
    if not device.enabled:
        return f"device {device_id} is disabled (target-role=Stopped)"
    if check(device, node) is Capability.NO:
        return f"device {device_id} cannot fence {node} (not in its host list or map)"
    return None


def plan_for(
    node: str,
    devices: Mapping[str, FenceDevice],
    topology: Sequence[FencingLevel] = (),
    node_attrs: Mapping[str, str] | None = None,
    check: CapabilityCheck | None = None,
    unusable: Mapping[str, str] | None = None,
) -> Plan:
    """The levels to try to fence ``node`` (see the module docstring). ``unusable`` names devices that are
    configured but could not be resolved (id -> why), so a level naming one says so precisely."""
    capability = check or _default_check
    selector, levels = topology_for(node, topology, node_attrs)
    if levels:
        planned = []
        for level in levels:
            problems = [
                p
                for d in level.devices
                if (p := _device_problem(d, node, devices, capability, unusable or {}))
            ]
            if not level.devices:
                problems.append(f"level {level.index} lists no devices")
            planned.append(
                Level(
                    index=level.index,
                    devices=tuple(level.devices),
                    level_id=level.id,
                    problems=tuple(problems),
                )
            )
        return Plan(target=node, levels=tuple(planned), from_topology=True, selector=selector)
    ranked = []
    for position, device in enumerate(devices.values()):
        cap = capability(device, node) if device.enabled else Capability.NO
        if cap is not Capability.NO:
            ranked.append((cap is not Capability.YES, -device.priority, position, device.id))
    ranked.sort()
    return Plan(
        target=node,
        levels=tuple(Level(index=i, devices=(entry[3],)) for i, entry in enumerate(ranked, start=1)),
    )
