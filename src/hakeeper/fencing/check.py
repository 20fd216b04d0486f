"""``hakeeper fence check``: prove, from the configuration alone, that every node can be fenced.

For each node the check builds the same plan the fencer would (topology levels, or every capable device)
and reports which level or device would fence it, or precisely what is missing. Host checks that need the
agent (``dynamic-list``, ``status``) cannot be decided offline; they are reported as unproven unless live
facts are supplied (:func:`gather_live_facts` runs ``metadata``, ``list``, ``status`` and ``monitor``; it is
the only part that runs anything). Whole-configuration problems (fencing disabled, devices that cannot be
used, levels naming unknown devices or nodes, invalid patterns) are reported too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import msgspec

from hakeeper.cib.model import Configuration, FencingLevel, Node
from hakeeper.cib.nvsets import cluster_properties
from hakeeper.fencing.agent import AgentError, agent_metadata, run_agent
from hakeeper.fencing.devices import (
    Capability,
    DeviceError,
    DeviceSet,
    FenceDevice,
    can_fence,
    devices_from_config,
    effective_host_check,
)
from hakeeper.fencing.topology import Level, bad_patterns, node_attributes, plan_for, selector_of

LIVE_PARALLEL = 4
"""How many devices ``--live`` asks at once (agents log in to management boards; be gentle)."""


class LiveFacts(msgspec.Struct, kw_only=True):
    """What the agents said, for the checks that cannot be decided offline."""

    agent_actions: dict[str, frozenset[str]] = {}
    lists: dict[str, frozenset[str]] = {}
    status_ok: dict[str, dict[str, bool]] = {}
    """device -> node -> whether ``status`` for that node answered (on or off)."""
    monitor: dict[str, str] = {}
    """device -> "" when ``monitor`` succeeded, else why it failed."""
    errors: dict[str, str] = {}
    missing_params: dict[str, list[str]] = {}
    """device -> required agent parameters (per its metadata) the device does not set."""


class NodeVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """``fenced_by`` says how the node would be fenced; ``problems`` why it cannot be (or is unproven)."""

    node: str
    proven: bool
    fenced_by: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


class CheckReport(msgspec.Struct, frozen=True, kw_only=True):
    nodes: tuple[NodeVerdict, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors and all(v.proven for v in self.nodes)


def fenceable_nodes(config: Configuration) -> list[Node]:
    """Nodes that must be fenceable: every configured node except ``ping`` nodes."""
    return [n for n in config.nodes if n.type != "ping"]


class _Capabilities:
    """Capability of a device for a node, from the configuration plus any live facts."""

    def __init__(self, live: LiveFacts | None) -> None:
        self.live = live
        self.unknown_why: dict[tuple[str, str], str] = {}

    def __call__(self, device: FenceDevice, node: str) -> Capability:
        actions = self.live.agent_actions.get(device.agent) if self.live else None
        check = effective_host_check(device, actions)
        if check == "status" and self.live is not None and device.id in self.live.status_ok:
            ok = self.live.status_ok[device.id].get(node, False)
            return Capability.YES if ok else Capability.NO
        lists = self.live.lists.get(device.id) if self.live else None
        cap = can_fence(device, node, host_check=check, dynamic_list=lists)
        if cap is Capability.UNKNOWN:
            self.unknown_why[(device.id, node)] = _unknown_reason(device, node, check, self.live)
        return cap


def _unknown_reason(device: FenceDevice, node: str, check: str, live: LiveFacts | None) -> str:
    port = device.port_for(node)
    if live is not None and device.id in live.errors:
        return f"device {device.id} could not be asked ({live.errors[device.id]})"
    if check == "status":
        what = f"whether device {device.id} answers status for {port!r}"
    else:
        what = f"whether device {device.id}'s list includes {port!r}"
    return (
        f"{what} is known only by asking the agent (pcmk_host_check={check}); run with --live, "
        f"or set pcmk_host_list/pcmk_host_map on {device.id}"
    )


def _verdict(
    node: Node, devset: DeviceSet, topology: Sequence[FencingLevel], caps: _Capabilities, watchdog: bool
) -> NodeVerdict:
    name = node.uname
    plan = plan_for(name, devset.devices, topology, node_attributes(node), caps, devset.errors)
    sure = [
        lv
        for lv in plan.usable_levels
        if all(caps(devset.devices[d], name) is Capability.YES for d in lv.devices)
    ]
    if sure:
        return NodeVerdict(
            node=name, proven=True, fenced_by=tuple(_describe(lv, plan.from_topology) for lv in sure)
        )
    problems = [
        f"level {lv.index} ({lv.level_id}): {'; '.join(lv.problems)}" for lv in plan.levels if lv.problems
    ]
    unknown = [
        caps.unknown_why[(d, name)]
        for lv in plan.usable_levels
        for d in lv.devices
        if (d, name) in caps.unknown_why
    ]
    problems += list(dict.fromkeys(unknown))
    if watchdog and not plan.levels:
        return NodeVerdict(
            node=name, proven=True, fenced_by=("watchdog self-fencing (stonith-watchdog-timeout)",)
        )
    if not plan.levels:
        problems.append(_nothing_fences(name, devset))
    elif plan.from_topology and not plan.usable_levels:
        problems.append(f"every fencing level for {name} (selected by {plan.selector}) is unusable")
    return NodeVerdict(node=name, proven=False, problems=tuple(problems))


def _describe(level: Level, from_topology: bool) -> str:
    devices = " + ".join(level.devices)
    return f"level {level.index}: {devices}" if from_topology else f"device {devices}"


def _nothing_fences(node: str, devset: DeviceSet) -> str:
    if not devset.devices and devset.errors:
        return (
            f"no device can fence {node}: no configured fencing device is usable "
            f"({', '.join(devset.errors)}: see the errors above)"
        )
    if not devset.devices:
        return (
            f"no device can fence {node}: no fencing device is configured (add a stonith resource, "
            f"e.g. agent fence_ipmilan, with pcmk_host_list={node})"
        )
    listed = [
        f"{d.id} ({', '.join([*d.host_list, *d.host_map]) or 'no hosts'})"
        for d in devset.devices.values()
        if d.enabled
    ]
    known = "; ".join(listed) or "none enabled"
    return (
        f"no device can fence {node}: add {node} to a device's pcmk_host_list or pcmk_host_map, or add a "
        f"fencing level for {node}. Devices and the nodes they fence: {known}"
    )


def _watchdog_findings(config: Configuration, devset: DeviceSet) -> list[str]:
    """Watchdog fencing needs have-watchdog (or no resource starts without a device) and real watchdogs."""
    if devset.options.watchdog_timeout_ms <= 0 or not devset.options.enabled:
        return []
    props = cluster_properties(config.properties, None) if config.properties else {}
    if props.get("have-watchdog", "false").strip().lower() in ("true", "yes", "on", "1", "y"):
        return []
    if devset.devices:
        return [
            "stonith-watchdog-timeout is set but have-watchdog is not true: set have-watchdog = true once "
            "every node runs a watchdog ([fencing] watchdog in its daemon configuration)"
        ]
    return [
        "no fencing device is configured and have-watchdog is not true, so no resource will start; set "
        "have-watchdog = true once every node runs a watchdog ([fencing] watchdog in its daemon "
        "configuration), which this check cannot see"
    ]


def _config_findings(config: Configuration, devset: DeviceSet) -> tuple[list[str], list[str]]:
    errors = list(devset.errors.values())  # each message names its device
    errors += list(bad_patterns(config.fencing_topology).values())
    warnings: list[str] = []
    if not devset.options.enabled:
        warnings.append(
            "stonith-enabled is false: the cluster will recover resources of a lost node without fencing it, "
            "which can run a service twice and corrupt its data"
        )
    names = {n.uname for n in config.nodes}
    if devset.options.watchdog_timeout_ms > 0 and len(fenceable_nodes(config)) == 2:
        warnings.append(
            "watchdog fencing in a two-node cluster is safe only with a witness: with two_node quorum both "
            "halves stay quorate, so neither resets itself while the other counts it as fenced"
        )
    warnings += _watchdog_findings(config, devset)
    for level in config.fencing_topology:
        for dev_id in level.devices:
            if dev_id not in devset.devices and dev_id not in devset.errors:
                errors.append(
                    f"fencing level {level.id} (for {selector_of(level)}) names device {dev_id}, "
                    f"which is not configured"
                )
        if level.target is not None and level.target not in names:
            warnings.append(
                f"fencing level {level.id} is for node {level.target}, which is not a configured node"
            )
    for device in devset.devices.values():
        strangers = [h for h in [*device.host_list, *device.host_map] if h not in names]
        if strangers and names:
            warnings.append(
                f"device {device.id} lists {', '.join(strangers)}, which is not a configured node"
            )
    return errors, warnings


def check_fencing(config: Configuration, live: LiveFacts | None = None) -> CheckReport:
    """Check that every node can be fenced (see the module docstring); never raises for bad config."""
    try:
        devset = devices_from_config(config)
    except DeviceError as err:
        return CheckReport(errors=(str(err),))
    errors, warnings = _config_findings(config, devset)
    if live is not None:
        warnings += [f"device {d} failed its monitor: {why}" for d, why in live.monitor.items() if why]
        errors += [
            f"device {d} lacks required parameter(s) {', '.join(names)} of its agent (see its metadata)"
            for d, names in live.missing_params.items()
        ]
    caps = _Capabilities(live)
    watchdog = devset.options.watchdog_timeout_ms > 0
    verdicts = tuple(
        _verdict(n, devset, config.fencing_topology, caps, watchdog) for n in fenceable_nodes(config)
    )
    if not verdicts:
        warnings.append("the configuration lists no nodes, so there is nothing to prove")
    return CheckReport(nodes=verdicts, errors=tuple(errors), warnings=tuple(warnings))


def format_report(report: CheckReport) -> list[str]:
    """The report as lines for a terminal."""
    lines = [f"ERROR: {e}" for e in report.errors] + [f"WARNING: {w}" for w in report.warnings]
    for verdict in report.nodes:
        if verdict.proven:
            lines.append(f"{verdict.node}: OK, fenced by {', then '.join(verdict.fenced_by)}")
        else:
            lines.append(f"{verdict.node}: NOT PROVEN")
            lines += [f"  - {p}" for p in verdict.problems]
    lines.append(
        "fencing check passed: every node can be fenced"
        if report.ok
        else "fencing check FAILED: fix the problems above"
    )
    return lines


# --- live facts (runs agents) -----------------------------------------------------------------------


async def gather_live_facts(
    devices: Mapping[str, FenceDevice], nodes: Sequence[str], *, timeout_s: float = 20.0
) -> LiveFacts:
    """Ask every device's agent: metadata, monitor, and list or status as its host check needs."""
    facts = LiveFacts()
    limit = asyncio.Semaphore(LIVE_PARALLEL)

    async def ask(device: FenceDevice) -> None:
        async with limit:
            await _ask(device, nodes, facts, timeout_s)

    await asyncio.gather(*(ask(device) for device in devices.values()))
    return facts


async def _ask(device: FenceDevice, nodes: Sequence[str], facts: LiveFacts, timeout_s: float) -> None:
    try:
        meta = await agent_metadata(device.agent, timeout_s=timeout_s)
    except AgentError as err:
        facts.errors[device.id] = str(err)
        return
    facts.agent_actions[device.agent] = meta.actions
    if missing := meta.missing_parameters(device.params):
        facts.missing_params[device.id] = missing
    params = list(meta.parameters)
    monitor = await run_agent(device, "monitor", timeout_s=timeout_s, metadata_parameters=params)
    facts.monitor[device.id] = "" if monitor.ok else monitor.reason
    check = effective_host_check(device, meta.actions)
    if check == "dynamic-list":
        listed = await run_agent(device, "list", timeout_s=timeout_s, metadata_parameters=params)
        if listed.ok and listed.ports is not None:
            facts.lists[device.id] = listed.ports
        else:
            facts.errors[device.id] = listed.reason
    elif check == "status":
        answers = {}
        for node in nodes:
            status = await run_agent(device, "status", node, timeout_s=timeout_s, metadata_parameters=params)
            answers[node] = status.ok
        facts.status_ok[device.id] = answers
