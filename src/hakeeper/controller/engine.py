"""The transition engine: carries out one transition graph, sans-I/O.

It fires every action whose inputs have completed, hands resource/fence/cluster actions out as ``Execute``
outputs and completes pseudo actions itself. Results come back in; an action that fails, or whose result
does not arrive within its timeout plus a margin, aborts the transition: nothing new is fired, the actions
already running are waited for, and then the engine reports the transition finished so the DC can plan
again from the CIB (which by then records what really happened). An abort from outside (configuration
change, node loss, unexpected monitor result) works the same way. Time is passed in, in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hakeeper.controller.graph import GraphAction, TransitionGraph


class ActionState(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Execute:
    """Send this action to its executor (a node's LRM, the fencer, or a node's controller)."""

    action: GraphAction


@dataclass(frozen=True)
class TransitionFinished:
    graph_id: int
    outcome: str  # "complete" or "aborted"
    reason: str
    failed: tuple[int, ...] = ()


Output = Execute | TransitionFinished

DEFAULT_MARGIN_MS = 20_000
"""Added to an action's own timeout before the engine gives up waiting for its result (network, queueing)."""


class TransitionEngine:
    def __init__(self, graph: TransitionGraph, *, margin_ms: int = DEFAULT_MARGIN_MS, batch_limit: int = 0):
        graph.validate()
        self.graph = graph
        self.margin_ms = margin_ms
        self.batch_limit = batch_limit
        self.state: dict[int, ActionState] = {a.id: ActionState.WAITING for a in graph.actions}
        self._by_id = {a.id: a for a in graph.actions}
        self._dependents: dict[int, list[int]] = {a.id: [] for a in graph.actions}
        self._position = {a.id: i for i, a in enumerate(graph.actions)}
        self._deferred: set[int] = set()  # ready, but held back by the batch limit
        for a in graph.actions:
            for i in a.inputs:
                self._dependents[i].append(a.id)
        self._deadline: dict[int, int] = {}
        self.abort_reason: str | None = None
        self.finished = False
        self.ignored_results = 0

    # -- inputs -------------------------------------------------------------------------------------------

    def start(self, now: int) -> list[Output]:
        return self._advance(now, [a.id for a in self.graph.actions])

    def result(self, action_id: int, success: bool, now: int, *, reason: str = "") -> list[Output]:
        """The outcome of an action this engine fired. Results for other actions are counted and ignored."""
        if self.state.get(action_id) is not ActionState.RUNNING:
            self.ignored_results += 1
            return []
        self._deadline.pop(action_id, None)
        if success:
            self.state[action_id] = ActionState.DONE
        else:
            self.state[action_id] = ActionState.FAILED
            action = self._by_id[action_id]
            self._abort(f"{action.describe()} failed" + (f": {reason}" if reason else ""))
        return self._advance(now, self._dependents[action_id])

    def abort(self, reason: str, now: int) -> list[Output]:
        """Stop firing new actions; finish once the running ones are back."""
        self._abort(reason)
        return self._advance(now)

    def node_lost(self, node: str, now: int) -> list[Output]:
        """``node`` left the cluster: what it was running will never report back, so it failed."""
        lost = [a.id for a in self.running if a.node == node and a.kind != "fence"]
        for aid in sorted(lost):
            self._deadline.pop(aid, None)
            self.state[aid] = ActionState.FAILED
        if lost:
            self._abort(
                f"node {node} left while running {', '.join(self._by_id[i].describe() for i in lost)}"
            )
        return self._advance(now) if lost else []

    def tick(self, now: int) -> list[Output]:
        """Fail the running actions whose results are overdue."""
        overdue = [aid for aid, deadline in self._deadline.items() if now >= deadline]
        for aid in sorted(overdue):
            del self._deadline[aid]
            self.state[aid] = ActionState.FAILED
            self._abort(f"no result for {self._by_id[aid].describe()} within its timeout")
        return self._advance(now) if overdue else []

    # -- queries ------------------------------------------------------------------------------------------

    def action(self, action_id: int) -> GraphAction:
        return self._by_id[action_id]

    @property
    def running(self) -> list[GraphAction]:
        return [self._by_id[i] for i, s in self.state.items() if s is ActionState.RUNNING]

    def next_deadline(self) -> int | None:
        return min(self._deadline.values(), default=None)

    # -- internals ----------------------------------------------------------------------------------------

    def _abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason

    def _ready(self, action: GraphAction) -> bool:
        return self.state[action.id] is ActionState.WAITING and all(
            self.state[i] is ActionState.DONE for i in action.inputs
        )

    def _advance(self, now: int, candidates: list[int] | None = None) -> list[Output]:
        """Fire what became ready. Only ``candidates`` (the dependents of what just completed, in graph
        order) and the actions the batch limit held back can have become ready, so a result costs the
        size of its neighbourhood, not of the whole graph."""
        if self.finished:
            return []
        out: list[Output] = []
        pending = self._in_order([*(candidates or []), *self._deferred])
        self._deferred.clear()
        while pending and self.abort_reason is None:
            unlocked: list[int] = []
            for i, aid in enumerate(pending):
                action = self._by_id[aid]
                if not self._ready(action):
                    continue
                if action.kind == "pseudo":
                    self.state[aid] = ActionState.DONE
                    unlocked += self._dependents[aid]
                    continue
                if self.batch_limit and len(self._deadline) >= self.batch_limit:
                    self._deferred.update(a for a in pending[i:] if self._ready(self._by_id[a]))
                    break
                self.state[aid] = ActionState.RUNNING
                self._deadline[aid] = now + action.timeout_ms + self.margin_ms
                out.append(Execute(action))
            pending = self._in_order(unlocked)
        if not self._deadline:
            out.extend(self._finish_if_idle())
        return out

    def _in_order(self, ids: list[int]) -> list[int]:
        return sorted(set(ids), key=self._position.__getitem__)

    def _finish_if_idle(self) -> list[Output]:
        waiting = [i for i, s in self.state.items() if s is ActionState.WAITING]
        if waiting and self.abort_reason is None:
            return []  # blocked behind running actions: not idle (cannot happen with no deadlines left)
        self.finished = True
        failed = tuple(sorted(i for i, s in self.state.items() if s is ActionState.FAILED))
        if self.abort_reason is None:
            return [TransitionFinished(self.graph.id, "complete", "all actions completed")]
        return [TransitionFinished(self.graph.id, "aborted", self.abort_reason, failed)]
