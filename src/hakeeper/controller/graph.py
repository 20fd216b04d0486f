"""The transition graph as the controller executes it.

The policy engine decides *what* must happen; this is the form the transition engine carries out: actions
with the ids of the actions they wait for. It is plain data (msgspec) so the DC can hand it to another
process, record it, and a new DC can reason about the one its predecessor was running.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ActionKind = Literal["resource", "pseudo", "fence", "cluster"]
"""``resource``: an agent operation on a node's LRM; ``pseudo``: a marker that completes when its inputs do
(e.g. "all instances of a clone started"); ``fence``: a fencing request; ``cluster``: a controller duty on a
node (e.g. ``do_shutdown``, ``clear_failcount``)."""


class GraphAction(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: ActionKind
    task: str
    node: str | None = None
    rsc: str | None = None
    agent: str | None = None
    interval_ms: int = 0
    timeout_ms: int = 20_000
    params: dict[str, str] = {}
    meta: dict[str, str] = {}
    expected_rc: int = 0
    """What success looks like: 0 for start/stop, 7 for a probe of a stopped resource, 8 for promoted."""
    fence_action: str | None = None
    inputs: list[int] = []

    @property
    def key(self) -> str:
        """Pacemaker-style operation key, ``web_monitor_10000``, or the task for non-resource actions."""
        if self.rsc is None:
            return self.task
        return f"{self.rsc}_{self.task}_{self.interval_ms}"

    def describe(self) -> str:
        where = f" on {self.node}" if self.node else ""
        if self.kind == "fence":
            return f"fence ({self.fence_action or 'reboot'}) {self.node}"
        return f"{self.key}{where}"


class TransitionGraph(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    actions: list[GraphAction] = []
    cib_version: tuple[int, int, int] = (0, 0, 0)
    """The CIB version the policy engine planned from."""
    recheck_at_s: int | None = None
    """Epoch seconds at which the plan goes stale without any change (a fail count's failure-timeout
    passes): the DC plans again then, as Pacemaker's recheck timer does."""

    def validate(self) -> None:
        """Refuse graphs that could never complete: unknown inputs, duplicate ids, cycles."""
        ids = [a.id for a in self.actions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"transition {self.id}: duplicate action ids")
        known = set(ids)
        for a in self.actions:
            missing = [i for i in a.inputs if i not in known]
            if missing:
                raise ValueError(
                    f"transition {self.id}: action {a.describe()} waits for unknown actions {missing}"
                )
        _check_acyclic(self)


def _check_acyclic(graph: TransitionGraph) -> None:
    waiting = {a.id: set(a.inputs) for a in graph.actions}
    done: set[int] = set()
    progress = True
    while progress:
        progress = False
        for aid, inputs in waiting.items():
            if aid not in done and inputs <= done:
                done.add(aid)
                progress = True
    stuck = sorted(set(waiting) - done)
    if stuck:
        raise ValueError(f"transition {graph.id}: actions {stuck} wait for each other in a cycle")
