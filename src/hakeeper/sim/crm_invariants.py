"""The physical truth of the CRM simulation, and the safety invariants checked against it.

:class:`World` knows what really runs where — including on nodes that crashed and were not fenced, which
the cluster cannot see. A resource is *possibly active* on a node from the moment its start begins until a
stop completes there or the node is powered off by a fencing device. :class:`CrmViolation` is raised as soon
as:

- a start begins on a node while another node may still run the resource, or two nodes possibly run one
  primitive at any moment (never two active copies);
- a resource of a lost node (possibly active there when it was lost) starts elsewhere before a completed
  fencing of that node, done after the loss, is committed in the CIB (recovery waits for the *record*) —
  unless the node came back and was seen to have stopped it (a stop, or a probe finding it not running);
- a start begins where the resource already runs or is starting, with no stop or failure in between (a DC
  handover must not start anything twice).

Fencing devices (``stonith`` primitives) are exempt from the first two: as in Pacemaker they need quorum, not
fencing (``requires=quorum``), so the cluster may start one elsewhere while its old node is still unclean — a
second copy only watches the same power switch. Liveness (everything runs exactly once after the faults stop)
is checked by :meth:`World.unconverged`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class CrmViolation(AssertionError):
    """A safety property of the CRM was broken: the seed that produced this is a bug report."""


class Phys(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"  # a start or monitor failed: state unknown, possibly running
    STOPPING = "stopping"


@dataclass
class _Loss:
    at_ms: int
    resources: set[str]  # possibly active on the node when it was lost
    killed_ms: int | None = None  # powered off by a fencing device at/after the loss


@dataclass
class World:
    resources: tuple[str, ...]
    nodes: tuple[str, ...]
    exempt: frozenset[str] = frozenset()  # resources that do not require fencing (fencing devices)
    state: dict[str, dict[str, Phys]] = field(default_factory=dict)  # node -> rsc -> state
    losses: dict[str, _Loss] = field(default_factory=dict)  # unresolved losses, by node
    starts: int = 0
    checks: int = 0

    def __post_init__(self) -> None:
        self.state = {n: {} for n in self.nodes}

    # -- queries -------------------------------------------------------------------------------------

    def where(self, rsc: str) -> list[str]:
        """Nodes where ``rsc`` is possibly active."""
        return [n for n in self.nodes if rsc in self.state[n]]

    def phys(self, node: str, rsc: str) -> Phys | None:
        return self.state[node].get(rsc)

    def unconverged(self) -> list[str]:
        """What keeps the cluster from "every resource runs exactly once, nothing in flight"."""
        problems = []
        for rsc in self.resources:
            states = {n: self.state[n][rsc] for n in self.where(rsc)}
            if len(states) != 1 or next(iter(states.values())) is not Phys.RUNNING:
                shown = ", ".join(f"{s.value} on {n}" for n, s in states.items()) or "not running"
                problems.append(f"{rsc}: {shown}")
        return problems

    # -- events from the simulation ------------------------------------------------------------------

    def start_begins(self, node: str, rsc: str, now_ms: int) -> None:
        self.starts += 1
        here = self.state[node].get(rsc)
        if here in (Phys.STARTING, Phys.RUNNING):
            raise CrmViolation(
                f"{rsc} started on {node} at {now_ms} ms while already {here.value} there, "
                "with no stop or failure in between"
            )
        if rsc not in self.exempt:
            self._check_elsewhere(node, rsc, now_ms)
        self.state[node][rsc] = Phys.STARTING

    def _check_elsewhere(self, node: str, rsc: str, now_ms: int) -> None:
        others = [f"{n} ({self.state[n][rsc].value})" for n in self.where(rsc) if n != node]
        if others:
            raise CrmViolation(
                f"{rsc} started on {node} at {now_ms} ms while it may still be active on {', '.join(others)}"
            )
        for lost, loss in sorted(self.losses.items()):
            if lost != node and rsc in loss.resources:
                raise CrmViolation(
                    f"{rsc} started on {node} at {now_ms} ms, but it was active on {lost} when that node was "
                    f"lost at {loss.at_ms} ms and no fencing of {lost} after that is committed in the CIB"
                )

    def set(self, node: str, rsc: str, phys: Phys | None) -> None:
        if phys is None:
            self.state[node].pop(rsc, None)
            loss = self.losses.get(node)
            if loss is not None:
                loss.resources.discard(rsc)  # seen stopped there: no longer a lost node's resource
        else:
            self.state[node][rsc] = phys

    def seen_not_running(self, node: str, rsc: str) -> None:
        """A monitor on ``node`` itself found ``rsc`` not running (a probe after the node came back)."""
        if rsc not in self.state[node]:
            self.set(node, rsc, None)

    def node_lost(self, node: str, now_ms: int) -> None:
        """``node`` crashed or was powered off: what it may run stays possibly active until fenced."""
        if node in self.losses:
            return  # still unresolved: the first loss is the one a fence must follow
        self.losses[node] = _Loss(now_ms, set(self.state[node]))

    def powered_off(self, node: str, now_ms: int) -> None:
        """A fencing device killed ``node``: nothing runs there any more."""
        self.node_lost(node, now_ms)
        self.losses[node].killed_ms = now_ms
        self.state[node] = {}

    def fence_committed(self, target: str, now_ms: int) -> None:
        """A completed fencing of ``target`` is now in the committed CIB."""
        loss = self.losses.get(target)
        if loss is not None and loss.killed_ms is not None:
            del self.losses[target]

    def check(self) -> None:
        """After every step: never two possibly-active copies of one primitive."""
        self.checks += 1
        seen: set[str] = set()
        for node in self.nodes:
            for rsc in self.state[node]:
                if rsc in seen and rsc not in self.exempt:
                    shown = ", ".join(f"{n} ({self.state[n][rsc].value})" for n in self.where(rsc))
                    raise CrmViolation(f"{rsc} is possibly active on two nodes at once: {shown}")
                seen.add(rsc)
