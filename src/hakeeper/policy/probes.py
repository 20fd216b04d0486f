"""Probes: find out what already runs on a node before the cluster places anything there.

As Pacemaker does, every primitive with no operation history on an online, clean node (not in maintenance
and not shutting down) gets a one-shot ``monitor`` with interval 0 there, expecting "not running" (rc 7).
Every start, promote or migration of that primitive (or of the group or clone around it) anywhere waits for
its probes, so a resource someone started by hand outside the cluster is found before a second copy is
started. A probe that finds something unexpected aborts the transition; the next plan reads the answer
from the history (rc 0: running there, rc 8: promoted there).

Location constraints with ``resource-discovery=never`` stop probing on their nodes; with ``exclusive``, the
resource is probed only on the nodes those constraints name. Anonymous clones are probed once per node, with
the instance planned for that node (or the first one). Orphans are never probed. Probes never appear in the
transition summary, as in crm_simulate.
"""

from __future__ import annotations

import re

from hakeeper.cib import model as m
from hakeeper.cib.rules import RuleContext, evaluate_rule
from hakeeper.policy.actions import OPTIONAL, Graph
from hakeeper.policy.unpack import WorkingSet
from hakeeper.policy.working import Action, NodeInfo, Rsc

_GATED_TASKS = ("start", "promote", "migrate_to", "migrate_from")


class Discovery:
    """Where ``resource-discovery`` location constraints allow probing, per top-level resource id."""

    def __init__(self, ws: WorkingSet) -> None:
        self.never: dict[str, set[str]] = {}
        self.exclusive: dict[str, set[str]] = {}
        for con in ws.cib.configuration.constraints:
            if not isinstance(con, m.Location) or con.resource_discovery is None:
                continue
            mode = con.resource_discovery.strip().lower()
            if mode not in ("never", "exclusive"):
                continue  # "always" (the default) and unknown words change nothing
            table = self.never if mode == "never" else self.exclusive
            nodes = _constraint_nodes(ws, con)
            for rsc_id in _constraint_resources(ws, con):
                table.setdefault(rsc_id, set()).update(nodes)

    def allows(self, rsc: Rsc, node: NodeInfo) -> bool:
        lineage = _lineage(rsc)
        if any(node.name in self.never.get(r.id, set()) for r in lineage):
            return False
        return all(node.name in self.exclusive[r.id] for r in lineage if r.id in self.exclusive)


def _lineage(rsc: Rsc) -> list[Rsc]:
    """The resource and every resource around it (group, clone), innermost first."""
    out: list[Rsc] = []
    walker: Rsc | None = rsc
    while walker is not None:
        out.append(walker)
        walker = walker.parent
    return out


def _constraint_resources(ws: WorkingSet, con: m.Location) -> list[str]:
    if con.rsc is not None:
        return [con.rsc]
    if con.rsc_pattern is not None:
        try:
            pattern = re.compile(con.rsc_pattern)
        except re.error:
            return []  # the placement code already warns about it
        return [r.id for r in ws.resources if pattern.search(r.id)]
    return [ref for rset in con.resource_sets for ref in rset.resources]


def _constraint_nodes(ws: WorkingSet, con: m.Location) -> set[str]:
    if con.node is not None:
        return {con.node}
    matched: set[str] = set()
    for rule in con.rules:
        for node in ws.nodes.values():
            if evaluate_rule(rule, RuleContext(node_attrs=node.attrs, now=ws.now)):
                matched.add(node.name)
    return matched


def _probe_nodes(ws: WorkingSet) -> list[NodeInfo]:
    """Nodes whose answers can be trusted and acted on."""
    return [
        n
        for n in ws.nodes.values()
        if n.online
        and not n.unclean
        and not n.pending
        and not n.maintenance
        and not n.shutdown
        and n.kind == "member"
    ]


def _instance_for(clone: Rsc, node: NodeInfo) -> Rsc | None:
    """The anonymous clone instance to probe on ``node``: the one known there, the one planned there, or
    the first one."""
    for child in clone.children:
        if any(node.name in p.known_on for p in child.primitives()):
            return child
    for child in clone.children:
        if any(p.assigned is node for p in child.primitives()):
            return child
    return clone.children[0] if clone.children else None


def _candidates(top: Rsc, node: NodeInfo) -> list[Rsc]:
    """The primitives of ``top`` that are probe candidates on ``node``."""
    if top.kind == "clone" and not top.unique:
        instance = _instance_for(top, node)
        return instance.primitives() if instance is not None else []
    if top.kind == "primitive":
        return [top]
    out: list[Rsc] = []
    for child in top.children:
        out.extend(_candidates(child, node))
    return out


def _needs_probe(rsc: Rsc, node: NodeInfo, discovery: Discovery) -> bool:
    if rsc.orphan or node.name in rsc.known_on or node in rsc.running_on:
        return False
    return discovery.allows(rsc, node)


def _probe(graph: Graph, rsc: Rsc, node: NodeInfo) -> Action:
    probe = Action(
        uuid=f"{rsc.id}_monitor_0",
        task="monitor",
        rsc=rsc,
        node=node,
        optional=False,
        runnable=True,
        interval_ms=0,
    )
    probe.id = len(graph.actions)
    graph.actions.append(probe)
    rsc.actions.append(probe)
    return probe


def _gated_actions(top: Rsc) -> list[Action]:
    """Required actions that make ``top`` or anything in it active somewhere (as Pacemaker orders a probe
    before its top-level resource's start)."""
    out: list[Action] = []
    for member in [top, *_descendants(top)]:
        out.extend(a for a in member.actions if a.task in _GATED_TASKS and not a.optional)
    return out


def _descendants(rsc: Rsc) -> list[Rsc]:
    out: list[Rsc] = []
    for child in rsc.children:
        out.append(child)
        out.extend(_descendants(child))
    return out


def add_probes(graph: Graph) -> list[Action]:
    """Add the probes this transition needs, each ordered before whatever would make its resource active."""
    ws = graph.ws
    discovery = Discovery(ws)
    probes: list[Action] = []
    nodes = _probe_nodes(ws)
    for top in list(ws.resources):
        pending: list[Action] = []
        for node in nodes:
            for rsc in _candidates(top, node):
                if _needs_probe(rsc, node, discovery):
                    pending.append(_probe(graph, rsc, node))
        if not pending:
            continue
        gated = _gated_actions(top)
        for probe in pending:
            for then in gated:
                graph.order(probe, then, OPTIONAL)
        probes.extend(pending)
    return probes
