"""Synthetic, realistic CIBs for benchmarking the policy engine (and Pacemaker's, on the same XML).

A cluster has ``nodes`` members with ``rack``/``disk`` attributes, one fencing device (stonith-enabled),
``resources`` primitives made of: a few anonymous clones (a ping-like health check on every node), groups
"VIP + Filesystem + service" linked in chains of three (each group colocated INFINITY with, and ordered
after, the previous one), and a few standalone primitives. Location rules on node attributes give each chain
a preferred rack and keep database chains on SSD nodes; ``resource-stickiness`` (rsc_defaults) is larger
than any preference, so a running resource stays put.

Scenarios:

* ``initial``: every node online, no operation history (the scheduler probes and places everything);
* ``steady``: every resource running where this generator placed it (on an allowed, preferred node), with
  the history Pacemaker writes: ``<rsc>_last_0`` (probe rc 7 elsewhere, start rc 0 where it runs) with
  ``transition-key``/``transition-magic``, and the recurring monitor ``<rsc>_monitor_<ms>``;
* ``node-failed``: ``steady``, then one node hosting resources is lost (in_ccm=false, crmd=offline,
  expected=member), so it must be fenced and its resources recovered elsewhere.

Pure: no I/O, no clock; all randomness comes from ``random.Random(seed)``. ``execution_date`` is fixed so
a simulation of the result is deterministic.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Literal

from hakeeper.cib import model as m

Scenario = Literal["initial", "steady", "node-failed"]
SCENARIOS: tuple[Scenario, ...] = ("initial", "steady", "node-failed")

EXECUTION_DATE = 1_767_225_600  # 2026-01-01T00:00:00Z: every scenario is "now" at the same instant
FEATURE_SET = "3.16.1"  # Pacemaker 2.1.5 refuses updates from a newer feature set (crm_simulate -S aborts)
MONITOR_MS = 10_000
FENCE_MONITOR_MS = 60_000
STICKINESS = "100"
RACK_PREFERENCE = 50  # below stickiness: a running chain never moves for its preference alone
CHAIN = 3  # groups per colocation/order chain
DB_EVERY = 4  # every fourth chain is a database chain, kept on SSD nodes
INF = 1_000_000


@dataclass(frozen=True)
class Agent:
    klass: str
    provider: str | None
    type: str
    params: tuple[tuple[str, str], ...] = ()


DUMMY = Agent("ocf", "pacemaker", "Dummy")
VIP = Agent("ocf", "heartbeat", "IPaddr2")
FS = Agent("ocf", "heartbeat", "Filesystem")
PING = Agent("ocf", "pacemaker", "ping")
FENCE = Agent("stonith", None, "fence_ipmilan")


@dataclass
class _Layout:
    """Which primitives exist, how they group, and (for steady) where each runs."""

    nodes: list[str]
    attrs: dict[str, dict[str, str]]
    resources: list[m.Resource] = field(default_factory=list)
    constraints: list[m.Constraint] = field(default_factory=list)
    placed: dict[str, list[tuple[str, Agent]]] = field(default_factory=dict)  # node -> (rsc id, agent)
    everywhere: list[tuple[str, Agent]] = field(default_factory=list)  # clone primitives
    agents: dict[str, Agent] = field(default_factory=dict)  # every primitive id -> agent


def synthetic_cib(nodes: int, resources: int, scenario: Scenario, seed: int) -> m.Cib:
    """A cluster of ``nodes`` members running ``resources`` primitives, in the given scenario."""
    if nodes < 2:
        raise ValueError(f"a synthetic cluster needs at least 2 nodes, not {nodes}")
    if resources < 1:
        raise ValueError(f"a synthetic cluster needs at least 1 resource, not {resources}")
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    rng = random.Random(seed)
    layout = _layout(nodes, resources, rng)
    config = m.Configuration(
        properties=[
            m.NvSet(
                id="cib-bootstrap-options",
                values={
                    "stonith-enabled": "true",
                    "no-quorum-policy": "stop",
                    "cluster-name": f"synthetic-{nodes}x{resources}",
                },
            )
        ],
        nodes=[
            m.Node(
                id=str(i + 1),
                uname=name,
                instance_attributes=[m.NvSet(id=f"{name}-attrs", values=layout.attrs[name])],
            )
            for i, name in enumerate(layout.nodes)
        ],
        resources=layout.resources,
        constraints=layout.constraints,
        rsc_defaults=[m.NvSet(id="rsc-options", values={"resource-stickiness": STICKINESS})],
        op_defaults=[m.NvSet(id="op-options", values={"timeout": "20s"})],
    )
    status = _status(layout, scenario, rng)
    return m.Cib(
        epoch=10 + rng.randrange(1000),
        num_updates=rng.randrange(100),
        validate_with="pacemaker-3.9",
        crm_feature_set=FEATURE_SET,
        have_quorum=True,
        dc_uuid="1",
        execution_date=EXECUTION_DATE,
        configuration=config,
        status=status,
    )


# --- configuration ----------------------------------------------------------------------------------


def _node_attrs(nodes: int) -> dict[str, dict[str, str]]:
    racks = min(nodes, 4)
    return {
        f"node{i + 1}": {"rack": f"rack{i % racks}", "disk": "ssd" if i % 2 == 0 else "hdd"}
        for i in range(nodes)
    }


def _primitive(rsc_id: str, agent: Agent, *, monitor_ms: int = MONITOR_MS) -> m.Primitive:
    return m.Primitive(
        id=rsc_id,
        klass=agent.klass,
        provider=agent.provider,
        type=agent.type,
        instance_attributes=[m.NvSet(id=f"{rsc_id}-params", values=dict(agent.params))]
        if agent.params
        else [],
        operations=[
            m.Operation(
                id=f"{rsc_id}-monitor-{monitor_ms}", name="monitor", interval=monitor_ms, timeout=20_000
            )
        ],
    )


def _layout(nodes: int, resources: int, rng: random.Random) -> _Layout:
    attrs = _node_attrs(nodes)
    layout = _Layout(nodes=list(attrs), attrs=attrs)
    layout.placed = {name: [] for name in layout.nodes}
    fence = _primitive("fence-ipmi", FENCE, monitor_ms=FENCE_MONITOR_MS)
    layout.resources.append(fence)
    layout.placed[layout.nodes[0]].append((fence.id, FENCE))
    layout.agents[fence.id] = FENCE
    clones = max(1, resources // 200)
    remaining = resources - clones
    groups = (remaining * 9 // 10) // 3
    singles = remaining - 3 * groups
    for c in range(clones):
        _add_clone(layout, c)
    for chain_start in range(0, groups, CHAIN):
        _add_chain(layout, chain_start // CHAIN, range(chain_start, min(groups, chain_start + CHAIN)), rng)
    for s in range(singles):
        _add_single(layout, s, rng)
    return layout


def _add_clone(layout: _Layout, index: int) -> None:
    agent = Agent(PING.klass, PING.provider, PING.type, (("host_list", f"10.0.0.{index + 1}"),))
    child = _primitive(f"ping{index}", agent)
    layout.resources.append(
        m.Clone(
            id=f"ping{index}-clone",
            child=child,
            meta_attributes=[m.NvSet(id=f"ping{index}-clone-meta", values={"interleave": "true"})],
        )
    )
    layout.everywhere.append((child.id, agent))
    layout.agents[child.id] = agent


def _group(layout: _Layout, index: int) -> tuple[m.Group, list[tuple[str, Agent]]]:
    vip = Agent(
        VIP.klass,
        VIP.provider,
        VIP.type,
        (("ip", f"10.{index // 250 % 250}.{index % 250}.10"), ("cidr_netmask", "24")),
    )
    fs = Agent(
        FS.klass,
        FS.provider,
        FS.type,
        (("device", f"/dev/vg/lv{index}"), ("directory", f"/srv/app{index}"), ("fstype", "xfs")),
    )
    svc = Agent(DUMMY.klass, DUMMY.provider, DUMMY.type, (("state", f"/run/app{index}.state"),))
    members = [(f"app{index}-vip", vip), (f"app{index}-fs", fs), (f"app{index}-svc", svc)]
    for rsc_id, agent in members:
        layout.agents[rsc_id] = agent
    return m.Group(id=f"app{index}", children=[_primitive(i, a) for i, a in members]), members


def _location_rules(head: str, rack: str, database: bool) -> list[m.Constraint]:
    out: list[m.Constraint] = [
        m.Location(
            id=f"loc-{head}-rack",
            rsc=head,
            rules=[
                m.Rule(
                    id=f"loc-{head}-rack-rule",
                    score=RACK_PREFERENCE,
                    expressions=[
                        m.AttrExpression(
                            id=f"loc-{head}-rack-expr", attribute="rack", operation="eq", value=rack
                        )
                    ],
                )
            ],
        )
    ]
    if database:
        out.append(
            m.Location(
                id=f"loc-{head}-ssd",
                rsc=head,
                rules=[
                    m.Rule(
                        id=f"loc-{head}-ssd-rule",
                        score=-INF,
                        expressions=[
                            m.AttrExpression(
                                id=f"loc-{head}-ssd-expr", attribute="disk", operation="ne", value="ssd"
                            )
                        ],
                    )
                ],
            )
        )
    return out


def _add_chain(layout: _Layout, chain: int, indexes: range, rng: random.Random) -> None:
    """Groups colocated with and ordered after their predecessor; the head prefers a rack."""
    database = chain % DB_EVERY == DB_EVERY - 1
    candidates = [n for n in layout.nodes if not database or layout.attrs[n]["disk"] == "ssd"]
    rack = layout.attrs[rng.choice(candidates)]["rack"]
    preferred = [n for n in candidates if layout.attrs[n]["rack"] == rack]
    home = min(preferred, key=lambda n: (len(layout.placed[n]), layout.nodes.index(n)))
    previous: str | None = None
    for index in indexes:
        group, members = _group(layout, index)
        layout.resources.append(group)
        layout.placed[home].extend(members)
        if previous is None:
            layout.constraints.extend(_location_rules(group.id, rack, database))
        else:
            layout.constraints.append(
                m.Colocation(id=f"col-{group.id}-with-{previous}", rsc=group.id, with_rsc=previous, score=INF)
            )
            layout.constraints.append(
                m.Order(id=f"ord-{previous}-then-{group.id}", first=previous, then=group.id, kind="Mandatory")
            )
        previous = group.id
    # Every chain waits for the health-check clone, but need not restart with it.
    if layout.everywhere and previous is not None:
        head = f"app{indexes[0]}"
        clone = f"{layout.everywhere[chain % len(layout.everywhere)][0]}-clone"
        layout.constraints.append(
            m.Order(id=f"ord-{clone}-then-{head}", first=clone, then=head, kind="Optional")
        )


def _add_single(layout: _Layout, index: int, rng: random.Random) -> None:
    rsc_id = f"worker{index}"
    agent = Agent(DUMMY.klass, DUMMY.provider, DUMMY.type, (("state", f"/run/worker{index}.state"),))
    layout.resources.append(_primitive(rsc_id, agent))
    layout.agents[rsc_id] = agent
    home = rng.choice(layout.nodes)
    layout.constraints.append(
        m.Location(id=f"loc-{rsc_id}-prefers-{home}", rsc=rsc_id, node=home, score=RACK_PREFERENCE)
    )
    layout.placed[home].append((rsc_id, agent))


# --- status -----------------------------------------------------------------------------------------


def op_digest(agent: Agent, interval: int) -> str:
    """The parameter digest Pacemaker records with an operation (``op-digest``).

    Without it Pacemaker assumes the definition changed and restarts everything. It is the MD5 of the
    operation's parameters written as one sorted ``<parameters .../>`` element (leading space, trailing
    newline, as Pacemaker's v1 digest does); recurring operations also carry their timeout. Our own engine
    does not compare digests.
    """
    params = dict(agent.params)
    if interval:
        params["CRM_meta_timeout"] = "20000"
    attrs = "".join(f' {k}="{v}"' for k, v in sorted(params.items()))
    return hashlib.md5(f" <parameters{attrs}/>\n".encode(), usedforsecurity=False).hexdigest()


class _History:
    """Writes operation records the way the controller does, with increasing call ids and action numbers."""

    def __init__(self, rng: random.Random) -> None:
        self.uuid = "-".join(f"{rng.getrandbits(b):0{b // 4}x}" for b in (32, 16, 16, 16, 48))
        self.action = 0
        self.calls: dict[str, int] = {}

    def record(
        self,
        node: str,
        rsc_id: str,
        agent: Agent,
        task: str,
        interval: int,
        rc: int,
        expected: int,
        last_id: bool,
        when: int,
    ) -> m.OpRecord:
        self.action += 1
        call = self.calls.get(node, 0) + 1
        self.calls[node] = call
        key = f"{self.action}:1:{expected}:{self.uuid}"
        return m.OpRecord(
            id=f"{rsc_id}_last_0" if last_id else f"{rsc_id}_{task}_{interval}",
            operation_key=f"{rsc_id}_{task}_{interval}",
            operation=task,
            call_id=call,
            rc=rc,
            op_status=0,
            interval=interval,
            transition_key=key,
            transition_magic=f"0:{rc};{key}",
            on_node=node,
            last_rc_change=when,
            last_run=when if interval == 0 else None,
            exec_time=20,
            queue_time=0,
            crm_feature_set=FEATURE_SET,
            op_digest=op_digest(agent, interval),
        )


def _resource_history(
    hist: _History, node: str, rsc_id: str, agent: Agent, running: bool, monitor_ms: int, when: int
) -> m.ResourceHistory:
    if running:
        ops = [
            hist.record(node, rsc_id, agent, "start", 0, 0, 0, True, when),
            hist.record(node, rsc_id, agent, "monitor", monitor_ms, 0, 0, False, when + 1),
        ]
    else:
        ops = [hist.record(node, rsc_id, agent, "monitor", 0, 7, 7, True, when)]
    return m.ResourceHistory(id=rsc_id, klass=agent.klass, provider=agent.provider, type=agent.type, ops=ops)


def _node_history(layout: _Layout, hist: _History, node: str, when: int) -> list[m.ResourceHistory]:
    here = {rsc_id for rsc_id, _agent in layout.placed[node]} | {rsc_id for rsc_id, _ in layout.everywhere}
    out = []
    for rsc_id, agent in layout.agents.items():
        monitor = FENCE_MONITOR_MS if agent.klass == "stonith" else MONITOR_MS
        out.append(_resource_history(hist, node, rsc_id, agent, rsc_id in here, monitor, when))
    return out


def _failed_node(layout: _Layout) -> str:
    """The node to lose: the busiest one other than the fencing device's (and DC's) node."""
    others = layout.nodes[1:]
    return max(others, key=lambda n: (len(layout.placed[n]), -layout.nodes.index(n)))


def _status(layout: _Layout, scenario: Scenario, rng: random.Random) -> m.Status:
    hist = _History(rng)
    lost = _failed_node(layout) if scenario == "node-failed" else None
    when = EXECUTION_DATE - 3600
    states = []
    for i, name in enumerate(layout.nodes):
        history = [] if scenario == "initial" else _node_history(layout, hist, name, when)
        online = name != lost
        states.append(
            m.NodeState(
                id=str(i + 1),
                uname=name,
                in_ccm="true" if online else "false",
                crmd="online" if online else "offline",
                join="member" if online else "down",
                expected="member",
                resources=history,
            )
        )
    return m.Status(nodes=states)
