"""Fencing devices as the configuration defines them, and which nodes each one can fence.

A device is a ``Primitive`` of class ``stonith``. Its instance attributes are split in two: the ``pcmk_*``
ones tell the cluster how to use the device (host mapping, delays, timeouts, action names) and everything
else is passed to the fence agent unchanged. Semantics follow Pacemaker Explained's fencing chapter:

- ``pcmk_host_list``: node names separated by spaces, commas or semicolons.
- ``pcmk_host_map``: ``node:port`` entries separated by ``;`` or spaces (``=`` works like ``:``; a backslash
  escapes the next character). The port is what the agent is told to fence; ``node2:2,3`` passes ``2,3``.
- ``pcmk_host_check``: ``static-list`` (the list, or any node the map names), ``dynamic-list`` (the ports the
  agent's ``list`` action prints), ``status`` (ask the agent about each node), ``none`` (every node).
  Default: ``static-list`` when a list or map is set, otherwise ``dynamic-list`` when the agent supports
  ``list``, otherwise ``status`` when it supports ``status``, otherwise ``none``.
- ``pcmk_delay_base`` (a duration, or ``node:duration`` entries) plus a random part so that the total stays
  at most ``pcmk_delay_max``.
- ``pcmk_<action>_action`` / ``_timeout`` / ``_retries`` rename an action, bound it (default: the
  ``stonith-timeout`` property) and retry it (default 2 retries).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping, Sequence

import msgspec

from hakeeper.cib.model import Clone, Configuration, Group, NvSet, Primitive, Resource, Template
from hakeeper.cib.nvsets import cluster_properties, resolve_nvsets
from hakeeper.cib.rules import RuleContext
from hakeeper.cib.values import parse_duration_ms

HOST_CHECKS = ("static-list", "dynamic-list", "status", "none")
FENCING_ACTIONS = ("off", "on", "reboot")
DEFAULT_STONITH_TIMEOUT_MS = 60_000
DEFAULT_RETRIES = 2
DEFAULT_MAX_ATTEMPTS = 10
DEFAULT_MONITOR_INTERVAL_MS = 60_000
_AGENT_NAME = re.compile(r"fence_[A-Za-z0-9_.+-]+")
_LIST_SEPARATORS = re.compile(r"[\s,;]+")


class DeviceError(ValueError):
    """A fencing device (or a fencing property) is configured in a way that cannot work."""


class Capability(enum.Enum):
    """Whether a device can fence a node, as far as the cluster knows now."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"  # dynamic-list not fetched yet, or status check not run yet


class FenceDevice(msgspec.Struct, frozen=True, kw_only=True):
    """One fencing device, resolved from the configuration."""

    id: str
    agent: str
    params: dict[str, str] = {}
    """What the agent receives on stdin (every instance attribute except ``pcmk_*``)."""
    host_list: tuple[str, ...] = ()
    host_map: dict[str, str] = {}
    host_check: str | None = None
    """As configured; ``None`` means "derive it" (see :func:`effective_host_check`)."""
    host_argument: str | None = None
    delay_base_ms: int = 0
    delay_base_per_node: dict[str, int] = {}
    delay_max_ms: int = 0
    action_names: dict[str, str] = {}
    timeouts_ms: dict[str, int] = {}
    retries: dict[str, int] = {}
    default_timeout_ms: int = DEFAULT_STONITH_TIMEOUT_MS
    priority: int = 0
    enabled: bool = True
    monitor_interval_ms: int = DEFAULT_MONITOR_INTERVAL_MS
    """How often the device's health is checked (its recurring ``monitor`` operation; 0: never)."""

    def port_for(self, node: str) -> str:
        """What the agent is told to fence for ``node``: its mapped port, or the node name itself."""
        return self.host_map.get(node, node)

    def agent_action(self, action: str) -> str:
        """The agent action for a cluster action (``pcmk_reboot_action`` may rename it)."""
        return self.action_names.get(action, action)

    def timeout_ms(self, action: str) -> int:
        return self.timeouts_ms.get(action, self.default_timeout_ms)

    def retries_for(self, action: str) -> int:
        return self.retries.get(action, DEFAULT_RETRIES)

    def static_delay_ms(self, target: str) -> int:
        return self.delay_base_per_node.get(target, self.delay_base_ms)


class FencingOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The cluster properties that govern fencing."""

    enabled: bool = True
    action: str = "reboot"
    timeout_ms: int = DEFAULT_STONITH_TIMEOUT_MS
    priority_delay_ms: int = 0
    watchdog_timeout_ms: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


# --- parsing ----------------------------------------------------------------------------------------


def parse_host_list(text: str) -> tuple[str, ...]:
    """``"node1 node2,node3;node4"`` -> the names, in order, without duplicates."""
    names = [n for n in _LIST_SEPARATORS.split(text.strip()) if n]
    return tuple(dict.fromkeys(names))


def _map_entries(text: str) -> Iterator[str]:
    """Split a ``;``/space separated map into raw entries, keeping backslash escapes for later."""
    entry: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            entry.append(ch + next(chars, ""))
        elif ch == ";" or ch.isspace():
            if entry:
                yield "".join(entry)
            entry = []
        else:
            entry.append(ch)
    if entry:
        yield "".join(entry)


def _split_entry(entry: str) -> tuple[str, str] | None:
    """``node:port`` (or ``node=port``) with backslash escapes resolved; None without a separator."""
    name: list[str] = []
    i = 0
    while i < len(entry):
        ch = entry[i]
        if ch == "\\" and i + 1 < len(entry):
            name.append(entry[i + 1])
            i += 2
            continue
        if ch in ":=":
            return "".join(name), _unescape(entry[i + 1 :])
        name.append(ch)
        i += 1
    return None


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_host_map(text: str, *, what: str = "pcmk_host_map") -> dict[str, str]:
    """``"node1:port1;node2:port2"`` -> ``{"node1": "port1", "node2": "port2"}``."""
    result: dict[str, str] = {}
    for entry in _map_entries(text):
        pair = _split_entry(entry)
        if pair is None or not pair[0] or not pair[1]:
            raise DeviceError(
                f"{what} entry {entry!r} is not of the form node:value (write entries like 'node1:1;node2:2')"
            )
        result[pair[0]] = pair[1]
    return result


def _duration(value: str, what: str) -> int:
    try:
        return parse_duration_ms(value.strip())
    except ValueError as err:
        raise DeviceError(
            f"{what} is {value!r}, which is not a duration (write e.g. '5s' or '500ms')"
        ) from err


def _delay_base(value: str, device: str) -> tuple[int, dict[str, int]]:
    """``pcmk_delay_base`` is one duration for every target, or ``node:duration`` entries."""
    what = f"pcmk_delay_base of {device}"
    if ":" not in value and "=" not in value:
        return _duration(value, what), {}
    mapped = parse_host_map(value, what=what)
    return 0, {node: _duration(v, f"{what} for {node}") for node, v in mapped.items()}


def _int(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError as err:
        raise DeviceError(f"{what} is {value!r}, which is not a whole number") from err


def _is_true(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "yes", "on", "y", "1")


# --- resolution from the configuration --------------------------------------------------------------


def stonith_primitives(config: Configuration) -> list[tuple[Primitive, Template | None]]:
    """Every primitive of class ``stonith`` (directly, or through its template), in document order."""
    templates = {t.id: t for t in config.templates}
    found: list[tuple[Primitive, Template | None]] = []
    for prim in _primitives(config.resources):
        template = templates.get(prim.template) if prim.template else None
        klass = prim.klass or (template.klass if template else None)
        if klass == "stonith":
            found.append((prim, template))
    return found


def _primitives(resources: Sequence[Resource]) -> Iterator[Primitive]:
    for rsc in resources:
        if isinstance(rsc, Primitive):
            yield rsc
        elif isinstance(rsc, Group):
            yield from rsc.children
        elif isinstance(rsc, Clone):
            yield from _primitives([rsc.child])


def _resolve(sets: Sequence[NvSet], ctx: RuleContext) -> dict[str, str]:
    return resolve_nvsets(sets, ctx) if sets else {}


def _per_action(attrs: Mapping[str, str], suffix: str) -> dict[str, str]:
    """``pcmk_off_timeout=30s`` -> ``{"off": "30s"}`` for suffix ``_timeout``."""
    out: dict[str, str] = {}
    for name, value in attrs.items():
        if name.startswith("pcmk_") and name.endswith(suffix):
            action = name[len("pcmk_") : -len(suffix)]
            out[action] = value
    return out


def device_from_primitive(
    prim: Primitive,
    template: Template | None = None,
    *,
    options: FencingOptions | None = None,
    now: int | None = None,
) -> FenceDevice:
    """Resolve one stonith primitive; raises :class:`DeviceError` naming the device and the bad value."""
    options = options or FencingOptions()
    agent = prim.type or (template.type if template else None) or ""
    if not _AGENT_NAME.fullmatch(agent):
        raise DeviceError(_bad_agent_message(prim.id, agent))
    ctx = RuleContext(now=now)
    attrs = {
        **_resolve(template.instance_attributes if template else [], ctx),
        **_resolve(prim.instance_attributes, ctx),
    }
    meta = {
        **_resolve(template.meta_attributes if template else [], ctx),
        **_resolve(prim.meta_attributes, ctx),
    }
    device = _build(prim.id, agent, attrs, meta, options)
    ops = [*(template.operations if template else []), *prim.operations]
    monitors = [op for op in ops if op.name == "monitor" and op.interval > 0]
    if not monitors:
        return device  # no monitor configured: check every minute anyway, as pcs configures by default
    enabled = [op.interval for op in monitors if op.enabled]
    return msgspec.structs.replace(device, monitor_interval_ms=min(enabled, default=0))


def _bad_agent_message(dev_id: str, agent: str) -> str:
    if agent and re.fullmatch(r"(external/)?[A-Za-z0-9_.-]+", agent):
        # Heartbeat's cluster-glue plugins (external/sbd, external/ipmi, ssh, null...), which Pacemaker
        # runs through fence_legacy.
        return (
            f"fencing device {dev_id} uses {agent!r}, a cluster-glue (Heartbeat) stonith plugin; "
            f"hakeeper runs fence-agents only: use the fence_ equivalent "
            f"(e.g. fence_sbd, fence_ipmilan, fence_virsh)"
        )
    return (
        f"fencing device {dev_id} uses agent {agent!r}; "
        f"fence agents are named fence_<something> (e.g. fence_ipmilan)"
    )


def _build(
    dev_id: str, agent: str, attrs: Mapping[str, str], meta: Mapping[str, str], options: FencingOptions
) -> FenceDevice:
    host_check = attrs.get("pcmk_host_check")
    if host_check is not None and host_check not in HOST_CHECKS:
        raise DeviceError(
            f"fencing device {dev_id} has pcmk_host_check={host_check!r}; use one of {', '.join(HOST_CHECKS)}"
        )
    base, per_node = _delay_base(attrs.get("pcmk_delay_base", "0"), dev_id)
    delay_max = _duration(attrs.get("pcmk_delay_max", "0"), f"pcmk_delay_max of {dev_id}")
    timeouts = {
        a: _duration(v, f"pcmk_{a}_timeout of {dev_id}") for a, v in _per_action(attrs, "_timeout").items()
    }
    retries = {a: _int(v, f"pcmk_{a}_retries of {dev_id}") for a, v in _per_action(attrs, "_retries").items()}
    host_argument = attrs.get("pcmk_host_argument")
    return FenceDevice(
        id=dev_id,
        agent=agent,
        params={k: v for k, v in attrs.items() if not k.startswith("pcmk_")},
        host_list=parse_host_list(attrs.get("pcmk_host_list", "")),
        host_map=parse_host_map(attrs.get("pcmk_host_map", ""), what=f"pcmk_host_map of {dev_id}"),
        host_check=host_check,
        host_argument=host_argument.strip() if host_argument else None,
        delay_base_ms=base,
        delay_base_per_node=per_node,
        delay_max_ms=delay_max,
        action_names={a: v.strip() for a, v in _per_action(attrs, "_action").items() if v.strip()},
        timeouts_ms=timeouts,
        retries=retries,
        default_timeout_ms=options.timeout_ms,
        priority=_int(meta.get("priority", "0"), f"priority of {dev_id}"),
        enabled=meta.get("target-role", "Started").strip().lower() != "stopped",
    )


def fencing_options(config: Configuration, *, now: int | None = None) -> FencingOptions:
    """The fencing cluster properties, with Pacemaker's defaults."""
    props = cluster_properties(config.properties, now) if config.properties else {}
    action = props.get("stonith-action", "reboot").strip().lower()
    action = "off" if action == "poweroff" else action
    if action not in ("reboot", "off"):
        raise DeviceError(f"the stonith-action property is {action!r}; use reboot or off")
    watchdog = props.get("stonith-watchdog-timeout", "0").strip()
    # A negative watchdog timeout means "derive it from the sbd watchdog" in Pacemaker; we need it set.
    watchdog_ms = 0 if watchdog.startswith("-") else _duration(watchdog, "stonith-watchdog-timeout")
    attempts = props.get("stonith-max-attempts", str(DEFAULT_MAX_ATTEMPTS))
    return FencingOptions(
        enabled=_is_true(props.get("stonith-enabled"), True),
        action=action,
        timeout_ms=_duration(props.get("stonith-timeout", "60s"), "the stonith-timeout property"),
        priority_delay_ms=_duration(props.get("priority-fencing-delay", "0"), "priority-fencing-delay"),
        watchdog_timeout_ms=watchdog_ms,
        max_attempts=max(1, _int(attempts, "stonith-max-attempts")),
    )


class DeviceSet(msgspec.Struct, frozen=True, kw_only=True):
    """Every device resolved from a configuration, plus the ones that could not be (with why)."""

    options: FencingOptions
    devices: dict[str, FenceDevice] = {}
    errors: dict[str, str] = {}


def devices_from_config(config: Configuration, *, now: int | None = None) -> DeviceSet:
    """Resolve every stonith primitive; a bad device is reported in ``errors`` and the rest still work."""
    options = fencing_options(config, now=now)
    devices: dict[str, FenceDevice] = {}
    errors: dict[str, str] = {}
    for prim, template in stonith_primitives(config):
        try:
            devices[prim.id] = device_from_primitive(prim, template, options=options, now=now)
        except DeviceError as err:
            errors[prim.id] = str(err)
    return DeviceSet(options=options, devices=devices, errors=errors)


# --- host mapping -----------------------------------------------------------------------------------


def effective_host_check(device: FenceDevice, agent_actions: frozenset[str] | None = None) -> str:
    """The host check in force: as configured, or derived from the mapping and the agent's actions.

    ``agent_actions`` comes from the agent's metadata; ``None`` (metadata unknown) assumes ``list``.
    """
    if device.host_check is not None:
        return device.host_check
    if device.host_list or device.host_map:
        return "static-list"
    if agent_actions is None or "list" in agent_actions:
        return "dynamic-list"
    if "status" in agent_actions:
        return "status"
    return "none"


def can_fence(
    device: FenceDevice,
    node: str,
    *,
    host_check: str | None = None,
    dynamic_list: frozenset[str] | None = None,
) -> Capability:
    """Whether ``device`` can fence ``node``.

    ``dynamic_list`` is the set of ports the agent's last ``list`` printed (``None``: not known yet).
    With ``status`` checking the answer needs the agent, so it is ``UNKNOWN`` here.
    """
    if not device.enabled:
        return Capability.NO
    check = host_check or effective_host_check(device)
    if check == "none":
        return Capability.YES
    if check == "static-list":
        return Capability.YES if node in device.host_list or node in device.host_map else Capability.NO
    if check == "dynamic-list":
        if dynamic_list is None:
            return Capability.UNKNOWN
        return Capability.YES if device.port_for(node) in dynamic_list else Capability.NO
    return Capability.UNKNOWN
