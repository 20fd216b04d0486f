"""The designated coordinator (DC), sans-I/O: plans from the CIB and carries the plan out.

The DC is the consensus leader. It owns nothing but the CIB it is handed: every decision is recomputed from
the committed CIB, so a new DC takes over from the CIB alone. What it does:

- keeps node membership in the status section (``node_state``: in_ccm, crmd, join, expected), as Pacemaker's
  DC does, so the policy engine sees who is up and who is lost;
- asks for a plan (the shell runs the policy engine off the event loop) whenever something that can change
  the plan happened, and runs the resulting transition with the ``TransitionEngine``;
- sends resource actions to the nodes, fencing requests to the fencer, and records every result in the CIB
  through the replicated log. An action counts as done only when its result is *committed* (matched by its
  transition key), so ordering holds across DC changes: B's start is never sent before A's result is in the
  CIB;
- aborts the running transition and plans again on configuration changes, membership changes, unexpected
  results, fencing results and attribute changes.

Inputs are method calls with ``now`` (epoch milliseconds); outputs are returned as lists of commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from hakeeper.cib import model as m
from hakeeper.cib.nvsets import cluster_properties
from hakeeper.cib.patch import Create, Delete, Modify, Patch, PatchOp, Put
from hakeeper.controller.engine import ActionState, Execute, TransitionEngine, TransitionFinished
from hakeeper.controller.graph import GraphAction, TransitionGraph
from hakeeper.controller.history import (
    Expectation,
    ensure_node,
    is_failure,
    record_result,
    set_transient_attribute,
    start_failure_is_fatal,
    transient_set_id,
)
from hakeeper.controller.messages import Sync
from hakeeper.controller.shutdown import SHUTDOWN_ATTRIBUTE
from hakeeper.controller.startup import duration_property_ms, ever_a_member, startup_wait
from hakeeper.lrm.messages import AttributeUpdate, CancelRequest, OpRequest, OpResult, OpStatus
from hakeeper.policy.digests import params_digest

CHECK_LEVEL_PARAM = "OCF_CHECK_LEVEL"
"""An operation's instance attribute that agents get as ``OCF_CHECK_LEVEL``, not as a parameter."""


def _check_level(params: dict[str, str]) -> int | None:
    value = params.get(CHECK_LEVEL_PARAM, "").strip()
    return int(value) if value.isdigit() else None


# --- outputs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Propose:
    """Commit this change through the replicated log."""

    patch: Patch
    why: str


@dataclass(frozen=True)
class Plan:
    """Run the policy engine on ``cib`` at ``now`` (off the event loop) and call ``plan_ready``."""

    cib: m.Cib
    now_s: int
    transition_id: int


@dataclass(frozen=True)
class SendOp:
    node: str
    request: OpRequest


@dataclass(frozen=True)
class SendCancel:
    node: str
    request: CancelRequest


@dataclass(frozen=True)
class RequestFence:
    """Fence ``target``; the result comes back as a ``FenceEvent`` whose ``client`` is ``key``."""

    target: str
    action: str
    reason: str
    key: str


@dataclass(frozen=True)
class Event:
    """Something an operator should see in the log and the event stream."""

    text: str


Command = Propose | Plan | SendOp | SendCancel | RequestFence | Event

MEMBERSHIP_COMMIT_WAIT_MS = 5_000
BOOT_ATTRIBUTE = "hakeeper-boot"
"""The transient node attribute recording which daemon run of the node the CIB's history comes from."""
NOT_MEMBER_BACKOFF_MS = 1_000
"""After an action failed because its node had left, the next plan waits at least this long."""
RESEND_OP_MS = 1_000
"""An operation request not answered within this is sent again (the node-to-node channel is datagrams; a
member recognises a request it already has by its transition key and never runs it twice)."""


# --- state ------------------------------------------------------------------------------------------------


@dataclass
class _Running:
    graph: TransitionGraph
    engine: TransitionEngine
    keys: dict[int, str] = field(default_factory=dict)  # action id -> transition key of what we sent
    # the same, inverted: every commit is matched against it, so it must not be rebuilt per commit
    by_key: dict[str, int] = field(default_factory=dict)

    def engine_action(self, action_id: int) -> GraphAction:
        return self.engine.action(action_id)


def _props(cib: m.Cib, now_s: int) -> dict[str, str]:
    """Cluster properties as Pacemaker reads them: ``cib-bootstrap-options`` first, rules at ``now``."""
    return cluster_properties(cib.configuration.properties, now_s)


DEFAULT_RECHECK_MS = 15 * 60 * 1000
"""Pacemaker's ``cluster-recheck-interval`` default: plan again this long after the last plan, so time-based
rules (date expressions, lifetimes) take effect when nothing else happens."""


def recheck_interval_ms(cib: m.Cib, now_s: int) -> int:
    """``cluster-recheck-interval`` in ms (0 disables it); an unreadable value keeps the default."""
    return duration_property_ms(_props(cib, now_s), "cluster-recheck-interval", DEFAULT_RECHECK_MS)


class DcCore:
    """The DC's decisions. Create one per node; it acts only while ``is_dc``."""

    def __init__(self, node: str, uuid: str) -> None:
        self.node = node
        self.uuid = uuid  # distinguishes this DC's transition keys from another's
        self.is_dc = False
        self.cib = m.Cib()
        # a node is always up in its own view: a one-node cluster hears no join, yet its node is a member
        self.members: frozenset[str] = frozenset({node})
        self.running: _Running | None = None
        self.planning: int | None = None
        self.replan_needed = False
        self.next_transition = 1
        self.now_ms = 0
        # Planning waits while a membership change we proposed is not yet committed: a plan made before it
        # would still see lost nodes as up. The wait is bounded, in case the proposal is lost.
        self.membership_pending_until = 0
        # When the last plan goes stale by itself (a failure-timeout passes): plan again then (0: never).
        self.recheck_at_ms = 0
        self.became_dc_ms = 0
        self.unseen_until_ms = 0  # holding the plan back for nodes never seen, until then (dc-deadtime)
        self.last_plan_ms = 0  # when the last plan was asked for: cluster-recheck-interval counts from it
        self._recheck: tuple[m.Cib, int] | None = None  # (the CIB it was read from, the interval)
        # A DC plans only once every member has synced: told it the results the DC may not have recorded
        # (the previous DC may have died first) and that it runs nothing more. Otherwise a new DC could start
        # again, here or elsewhere, what a member just started for its predecessor. Nodes that join sync too.
        self.unsynced: set[str] = set()
        self.sync_waiting: dict[str, set[OpResult]] = {}  # node -> synced results not yet recorded
        self.early_syncs: dict[str, Sync] = {}  # syncs that came before this node's barrier committed
        self.boot_waiting: dict[str, str] = {}  # node -> its new daemon run, until the CIB records it
        self.unanswered: dict[str, tuple[str, OpRequest, int]] = {}  # transition key -> node, request, sent

    # -- inputs ---------------------------------------------------------------------------------------

    def become_dc(self, now_ms: int) -> list[Command]:
        self.now_ms = now_ms
        self.is_dc = True
        self.became_dc_ms = now_ms
        self.unseen_until_ms = 0
        self.running = None
        self.planning = None
        self.replan_needed = False
        self.unsynced = set(self.members)
        self.sync_waiting, self.boot_waiting = {}, {}
        early, self.early_syncs = self.early_syncs, {}
        membership = self._write_membership(self._recorded_changes(self.members))
        out: list[Command] = [Event(f"{self.node} is now the DC")]
        for _, sync in sorted(early.items()):
            out += self._absorb(sync)
        # when membership must be written first, its commit triggers the first plan
        return out + (membership or self._request_plan())

    def lose_dc(self) -> list[Command]:
        was = self.is_dc
        self.is_dc = False
        self.running = None
        self.planning = None
        self.unsynced, self.sync_waiting, self.early_syncs, self.boot_waiting = set(), {}, {}, {}
        self.unanswered = {}
        return [Event(f"{self.node} is no longer the DC")] if was else []

    def membership(self, up: frozenset[str], now_ms: int) -> list[Command]:
        """The message layer's view of which nodes are up changed."""
        self.now_ms = now_ms
        joined, left = up - self.members, self.members - up
        self.members = up
        if not self.is_dc or not (joined or left):
            return []
        self.unsynced = (self.unsynced | joined) - left
        if left and self.planning is not None:
            self.replan_needed = True  # the plan being computed still counts the lost nodes as up
        for n in left:
            self.sync_waiting.pop(n, None)
            self.boot_waiting.pop(n, None)
        out: list[Command] = [Event(f"node {n} joined") for n in sorted(joined)]
        out += [Event(f"node {n} left") for n in sorted(left)]
        # record the membership first: the plan that follows the abort must wait until it is committed
        membership = self._write_membership(self._recorded_changes(up))
        if self.running is not None and not self.running.engine.finished:
            for n in sorted(left):
                out += self._engine_outputs(self.running.engine.node_lost(n, now_ms))
        return membership + out

    def cib_committed(self, cib: m.Cib, patch: Patch, now_ms: int) -> list[Command]:
        """A change was committed and applied; ``cib`` is the result, ``patch`` what changed."""
        self.cib = cib
        self.now_ms = now_ms
        if not self.is_dc:
            return []
        if any(isinstance(op, Modify) and "in_ccm" in op.changes for op in patch.ops):
            self.membership_pending_until = 0
        out = self._match_committed(patch)
        trigger = self._trigger(patch)
        if trigger is not None:
            out += self._abort_and_replan(trigger)
        for node, waiting in self.sync_waiting.items():
            waiting -= {w for w in waiting if self._recorded(node, w)}
        for node, boot in list(self.boot_waiting.items()):
            if self._transient(node).get(BOOT_ATTRIBUTE) == boot:
                del self.boot_waiting[node]
        return out + self._plan_if_synced()

    def member_sync(self, sync: Sync, now_ms: int) -> list[Command]:
        """A member's ``Sync``: record what it reports; the first plan waits until every member synced."""
        self.now_ms = now_ms
        if sync.dc != self.node:
            return []
        if not self.is_dc:
            self.early_syncs[sync.node] = sync  # leader already, barrier not committed yet: keep it for then
            return []
        return self._absorb(sync) + self._plan_if_synced()

    def op_result(self, node: str, result: OpResult, now_ms: int) -> list[Command]:
        """A node reports an operation result: record it (the commit drives what happens next)."""
        self.now_ms = now_ms
        self.unanswered.pop(result.transition_key, None)
        if not self.is_dc or result.op_status == OpStatus.PENDING:
            return []
        exp = Expectation.parse(result.transition_key) or Expectation(0, 0, 0, "")
        ops = record_result(
            self.cib.status,
            node,
            result,
            exp,
            now=now_ms // 1000,
            start_failure_is_fatal=start_failure_is_fatal(self.cib, now_ms // 1000),
        )
        failed = is_failure(result, exp.expected_rc)
        why = (
            f"{result.key} on {node}: rc={result.rc} status={result.op_status.name.lower()}"
            f"{' (failed)' if failed else ''}"
        )
        out: list[Command] = [Propose(Patch(ops=ops), why)]
        if failed:
            out.append(Event(why + (f": {result.exit_reason}" if result.exit_reason else "")))
        return out

    def attribute_update(self, update: AttributeUpdate, now_ms: int) -> list[Command]:
        """A node attribute changed (an agent's helper command, or an operator)."""
        self.now_ms = now_ms
        if not self.is_dc or self._transient(update.node).get(update.name) == update.value:
            return []
        if update.value is None:
            base = f"/status/nodes/{update.node}/transient_attributes/{transient_set_id(update.node)}/values"
            ops: list[PatchOp] = [Delete(path=f"{base}/{update.name}")]
        else:
            ops = set_transient_attribute(update.node, update.name, update.value)
        return [Propose(Patch(ops=ops), f"attribute {update.name}={update.value} on {update.node}")]

    def plan_ready(self, graph: TransitionGraph, now_ms: int) -> list[Command]:
        """The policy engine's answer to the last ``Plan``."""
        self.now_ms = now_ms
        if not self.is_dc or graph.id != self.planning:
            return []
        self.planning = None
        if self.replan_needed:
            return self._request_plan()
        self.recheck_at_ms = graph.recheck_at_s * 1000 if graph.recheck_at_s is not None else 0
        engine = TransitionEngine(graph)
        self.running = _Running(graph=graph, engine=engine)
        out: list[Command] = []
        if graph.actions:
            out.append(Event(f"transition {graph.id}: {len(graph.actions)} actions"))
        return out + self._engine_outputs(engine.start(now_ms))

    def fence_result(self, event: m.FenceEvent, now_ms: int) -> list[Command]:
        """The fencer finished a request; ``event.client`` carries the fence action's key."""
        self.now_ms = now_ms
        if not self.is_dc:
            return []
        ops: list[PatchOp] = [Create(path="/status/fencing_history", value=msgspec.to_builtins(event))]
        ok = event.state == "done"
        if ok:
            ops += _forget_fenced_node(self.cib, event.target)
            text = f"node {event.target} was fenced ({event.action}) by {event.delegate or 'unknown'}"
        else:
            text = f"fencing of {event.target} failed: {event.reason or 'no reason given'}"
        return [Propose(Patch(ops=ops), text), Event(text)]

    def tick(self, now_ms: int) -> list[Command]:
        self.now_ms = now_ms
        if not self.is_dc:
            return []
        out: list[Command] = []
        if (
            self.replan_needed
            and self.planning is None
            and self.membership_pending_until
            and now_ms >= self.membership_pending_until
        ):
            self.membership_pending_until = 0
            out += self._request_plan()
        if self.recheck_at_ms and now_ms >= self.recheck_at_ms and self._idle():
            self.recheck_at_ms = 0
            out += self._request_plan()
        if self.unseen_until_ms and now_ms >= self.unseen_until_ms:
            self.unseen_until_ms = 0
            out += self._request_plan()
        periodic = self.periodic_recheck_at_ms()
        if periodic and now_ms >= periodic and self._idle():
            out += self._request_plan()
        if self.running is not None:
            out += self._engine_outputs(self.running.engine.tick(now_ms))
        return out + self._resend_unanswered(now_ms)

    def _resend_unanswered(self, now_ms: int) -> list[Command]:
        running = self.running
        waiting = set() if running is None else {running.keys.get(a.id) for a in running.engine.running}
        out: list[Command] = []
        for key, (node, request, sent_ms) in list(self.unanswered.items()):
            if key not in waiting or node not in self.members:
                del self.unanswered[key]
            elif now_ms - sent_ms >= RESEND_OP_MS:
                self.unanswered[key] = (node, request, now_ms)
                out.append(SendOp(node, request))
        return out

    # -- internals ------------------------------------------------------------------------------------

    def periodic_recheck_at_ms(self) -> int:
        """When ``cluster-recheck-interval`` asks for the next plan (0: never)."""
        if self._recheck is None or self._recheck[0] is not self.cib:  # read once per CIB, not per tick
            self._recheck = (self.cib, recheck_interval_ms(self.cib, self.now_ms // 1000))
        interval = self._recheck[1]
        return self.last_plan_ms + interval if interval and self.last_plan_ms else 0

    def _idle(self) -> bool:
        """No plan is being computed and no transition is running (a recheck must not abort work)."""
        return self.planning is None and (self.running is None or self.running.engine.finished)

    def _transient(self, node: str) -> dict[str, str]:
        state = next((n for n in self.cib.status.nodes if n.id == node), None)
        if state is None:
            return {}
        return {k: v for s in state.transient_attributes for k, v in s.values.items()}

    def _recorded_changes(self, up: frozenset[str]) -> dict[str, bool]:
        """Nodes whose recorded membership differs from ``up``: name -> now up?"""
        changes: dict[str, bool] = {}
        recorded = {n.id: n for n in self.cib.status.nodes}
        for name in up:
            st = recorded.get(name)
            if st is None or (st.in_ccm, st.crmd, st.join, st.expected) != (
                "true",
                "online",
                "member",
                "member",
            ):
                changes[name] = True
        for name, st in recorded.items():
            if name in up or st.remote_node or not ever_a_member(st):
                continue  # a bare state (an attribute sent before it joined) is not a member that left
            if st.in_ccm != "false" or st.crmd != "offline":
                changes[name] = False
        return changes

    def _write_membership(self, changes: dict[str, bool]) -> list[Command]:
        ops: list[PatchOp] = []
        for name, is_up in sorted(changes.items()):
            ops.append(ensure_node(name))
            if is_up:
                fields: dict[str, Any] = {
                    "in_ccm": "true",
                    "crmd": "online",
                    "join": "member",
                    "expected": "member",
                }
                if self._was_down(name):
                    # What it ran before it left is not known now (Pacemaker replaces a joining node's history
                    # with what its LRM reports): forget it, so the node is probed before anything is decided.
                    fields["resources"] = []
            else:
                fields = {"in_ccm": "false", "crmd": "offline", "join": "down"}
                if SHUTDOWN_ATTRIBUTE in self._transient(name):
                    fields["expected"] = "down"  # it left cleanly, as asked: not a failure, nothing to fence
            ops.append(Modify(path=f"/status/nodes/{name}", changes=fields))
            ops += self._clear_shutdown_request(name)
        if not ops:
            return []
        self.membership_pending_until = self.now_ms + MEMBERSHIP_COMMIT_WAIT_MS
        what = ", ".join(f"{'+' if up else '-'}{n}" for n, up in sorted(changes.items()))
        return [Propose(Patch(ops=ops), f"membership: {what}")]

    def _absorb(self, sync: Sync) -> list[Command]:
        """Record the results a member reports that the CIB lacks; it is in sync once they are recorded and
        it runs nothing more."""
        out = self._new_boot(sync)
        waiting: set[OpResult] = set()
        for result in sync.results:
            if result.op_status in (OpStatus.PENDING, OpStatus.CANCELLED):
                continue  # nothing to record (a cancellation removes its record)
            if not self._recorded(sync.node, result):
                out += self.op_result(sync.node, result, self.now_ms)
                waiting.add(result)
        self.sync_waiting[sync.node] = waiting
        if sync.in_flight == 0 and sync.node in self.unsynced:
            self.unsynced.discard(sync.node)
        return out

    def _new_boot(self, sync: Sync) -> list[Command]:
        """A node whose daemon restarted cannot vouch for what its earlier run reported (its LRM starts empty,
        while what it ran may still run): forget that history, so the node is probed before any plan uses it.
        Pacemaker likewise replaces a joining node's history with what its LRM reports."""
        node = sync.node
        if not sync.boot or self.boot_waiting.get(node) == sync.boot:
            return []
        if self._transient(node).get(BOOT_ATTRIBUTE) == sync.boot:
            return []
        self.boot_waiting[node] = sync.boot
        ops: list[PatchOp] = [
            ensure_node(node),
            Modify(path=f"/status/nodes/{node}", changes={"resources": []}),
        ]
        ops += set_transient_attribute(node, BOOT_ATTRIBUTE, sync.boot)
        return [Propose(Patch(ops=ops), f"{node} runs a new daemon: its earlier history is forgotten")]

    def _recorded(self, node: str, result: OpResult) -> bool:
        """Whether ``node``'s history records ``result``: a one-shot operation by its call id or a later one
        (which supersedes it); a recurring one by call id and outcome (all its runs share the call id)."""
        state = next((n for n in self.cib.status.nodes if n.id == node), None)
        rsc = result.resource_id
        history = next((h for h in state.resources if h.id == rsc), None) if state is not None else None
        if history is None:
            return False
        if result.interval_ms == 0:
            return any(o.interval == 0 and o.call_id >= result.call_id for o in history.ops)
        outcome = (result.call_id, result.rc, int(result.op_status))
        return any((o.call_id, o.rc, o.op_status) == outcome for o in history.ops if o.interval)

    def _syncing(self) -> bool:
        return bool(self.unsynced) or bool(self.boot_waiting) or any(self.sync_waiting.values())

    def _plan_if_synced(self) -> list[Command]:
        """The plan that waited for the members' syncs, once they are all in."""
        if not self.replan_needed or not self._idle() or self._syncing():
            return []
        if self.now_ms < self.membership_pending_until:
            return []
        return self._request_plan()

    def _was_down(self, node: str) -> bool:
        state = next((n for n in self.cib.status.nodes if n.id == node), None)
        return state is not None and (state.in_ccm or "false").lower() in ("false", "no", "off", "0", "")

    def _clear_shutdown_request(self, node: str) -> list[PatchOp]:
        """A node that left or (re)joined is no longer shutting down: a stale request would keep every
        resource off it after it returns."""
        if SHUTDOWN_ATTRIBUTE not in self._transient(node):
            return []
        base = f"/status/nodes/{node}/transient_attributes/{transient_set_id(node)}/values"
        return [Delete(path=f"{base}/{SHUTDOWN_ATTRIBUTE}")]

    def _request_plan(self) -> list[Command]:
        if self.planning is not None or self.now_ms < self.membership_pending_until or self._syncing():
            self.replan_needed = True
            return []
        props = _props(self.cib, self.now_ms // 1000)
        unseen, until = startup_wait(self.cib, props, self.members, self.became_dc_ms, self.now_ms)
        if unseen:
            self.replan_needed = True
            first = not self.unseen_until_ms
            self.unseen_until_ms = until
            wait_s = (until - self.now_ms) / 1000
            text = f"waiting up to {wait_s:.0f}s (dc-deadtime) for {', '.join(unseen)} to join before fencing"
            return [Event(text)] if first else []
        self.replan_needed = False
        self.last_plan_ms = self.now_ms
        self.planning = self.next_transition
        self.next_transition += 1
        return [Plan(cib=self.cib, now_s=self.now_ms // 1000, transition_id=self.planning)]

    def _abort_and_replan(self, reason: str) -> list[Command]:
        if self.running is not None and not self.running.engine.finished:
            self.replan_needed = True
            return self._engine_outputs(self.running.engine.abort(reason, self.now_ms))
        return self._request_plan()

    def _engine_outputs(self, outputs: list[Execute | TransitionFinished]) -> list[Command]:
        out: list[Command] = []
        for o in outputs:
            if isinstance(o, TransitionFinished):
                out.append(Event(f"transition {o.graph_id} {o.outcome}: {o.reason}"))
                graph_had_work = self.running is not None and bool(self.running.graph.actions)
                if o.outcome == "aborted" or self.replan_needed or graph_had_work:
                    out += self._request_plan()
            else:
                out += self._execute(o.action)
        return out

    def _execute(self, action: GraphAction) -> list[Command]:
        assert self.running is not None
        exp = Expectation(action.id, self.running.graph.id, action.expected_rc, self.uuid)
        self.running.keys[action.id] = exp.transition_key
        self.running.by_key[exp.transition_key] = action.id
        if action.kind == "fence":
            reason = action.meta.get("reason", "requested by the policy engine")
            action_name = action.fence_action or "reboot"
            return [RequestFence(action.node or "", action_name, reason, exp.transition_key)]
        if action.kind == "cluster":
            return self._cluster_action(action)
        if action.node and action.node not in self.members and action.task != "cancel":
            return self._not_a_member(action)
        if action.task == "cancel":
            req = CancelRequest(
                resource_id=action.rsc or "", operation="monitor", interval_ms=action.interval_ms
            )
            out: list[Command] = [SendCancel(action.node or "", req)]
            return out + self._engine_outputs(self.running.engine.result(action.id, True, self.now_ms))
        request = OpRequest(
            resource_id=action.rsc or "",
            agent=action.agent or "",
            operation=action.task,
            interval_ms=action.interval_ms,
            timeout_ms=action.timeout_ms,
            params={k: v for k, v in action.params.items() if k != CHECK_LEVEL_PARAM},
            meta=dict(action.meta),
            role=action.meta.get("role", ""),
            check_level=_check_level(action.params),
            transition_key=exp.transition_key,
            op_digest=params_digest(action.params),
        )
        self.unanswered[exp.transition_key] = (action.node or "", request, self.now_ms)
        return [SendOp(action.node or "", request)]

    def _not_a_member(self, action: GraphAction) -> list[Command]:
        """An action for a node that has left (the plan predates the loss): fail it now rather than wait for
        its timeout. If the CIB still shows the node up (the membership write was lost), write it again; the
        next plan waits for that commit or a short backoff, so this cannot become a tight loop of plans."""
        assert self.running is not None
        node = action.node or ""
        out = self._write_membership(self._recorded_changes(self.members))
        # and never plan again at once: a plan made from this CIB may place on the lost node again
        backoff_until = self.now_ms + NOT_MEMBER_BACKOFF_MS
        self.membership_pending_until = max(self.membership_pending_until, backoff_until)
        why = f"{node} has left the cluster"
        result = self.running.engine.result(action.id, False, self.now_ms, reason=why)
        return [*out, Event(f"{action.describe()} not sent: {why}"), *self._engine_outputs(result)]

    def _cluster_action(self, action: GraphAction) -> list[Command]:
        assert self.running is not None
        out: list[Command] = []
        if action.task == "clear_failcount" and action.node and action.rsc:
            attrs = self._transient(action.node)
            prefixes = (f"fail-count-{action.rsc}#", f"last-failure-{action.rsc}#")
            base = f"/status/nodes/{action.node}/transient_attributes/{transient_set_id(action.node)}/values"
            ops: list[PatchOp] = [Delete(path=f"{base}/{k}") for k in sorted(attrs) if k.startswith(prefixes)]
            ops += self._forget_last_failure(action.node, action.rsc)
            if ops:
                out.append(Propose(Patch(ops=ops), f"fail counts of {action.rsc} on {action.node} cleared"))
        return out + self._engine_outputs(self.running.engine.result(action.id, True, self.now_ms))

    def _forget_last_failure(self, node: str, rsc: str) -> list[PatchOp]:
        """As Pacemaker's clear_failcount: the failure leaves the history too, so status stops listing it."""
        state = next((n for n in self.cib.status.nodes if n.id == node), None)
        history = next((h for h in state.resources if h.id == rsc), None) if state is not None else None
        op_id = f"{rsc}_last_failure_0"
        if history is None or not any(o.id == op_id for o in history.ops):
            return []
        return [Delete(path=f"/status/nodes/{node}/resources/{rsc}/ops/{op_id}")]

    def _our_keys(self) -> dict[str, int]:
        if self.running is None:
            return {}
        return self.running.by_key

    def _fencing_of(self, running: _Running, target: object) -> int | None:
        """Our running fence action against ``target``: the fencer merges a request for a node it is already
        fencing into the one in progress, whose result carries the first request's key — it answers both."""
        for action in running.engine.running:
            if action.kind == "fence" and action.node == target:
                return action.id
        return None

    def _match_committed(self, patch: Patch) -> list[Command]:
        """Complete running actions whose results this commit recorded."""
        if self.running is None or self.running.engine.finished:
            return []
        running = self.running
        keys = self._our_keys()
        out: list[Command] = []
        for op in patch.ops:
            value = op.value if isinstance(op, (Put, Create)) else None
            if not isinstance(value, dict):
                continue
            key = value.get("transition_key") or value.get("client")
            aid = keys.get(key) if isinstance(key, str) else None
            if aid is None and op.path == "/status/fencing_history":
                aid = self._fencing_of(running, value.get("target"))
            if aid is None or running.engine.state.get(aid) is not ActionState.RUNNING:
                continue
            if str(value.get("id", "")).endswith("_last_failure_0"):
                continue  # the _last_0 record of the same result decides
            ok, reason = _verdict(running.engine_action(aid), value)
            out += self._engine_outputs(running.engine.result(aid, ok, self.now_ms, reason=reason))
            if self.running is not running:
                break
        return out

    def _trigger(self, patch: Patch) -> str | None:
        """Why this commit calls for a new plan, or None when it only recorded what we expected."""
        keys = self._our_keys()
        for op in patch.ops:
            if op.path.startswith("/configuration"):
                return "the configuration changed"
            if isinstance(op, Put) and op.keep_existing:
                continue  # an "ensure": creates containers, changes nothing that matters by itself
            value = op.value if isinstance(op, (Put, Create)) else None
            if isinstance(value, dict) and "transition_key" in value:
                key = value.get("transition_key")
                failed = value.get("rc", 0) != _expected_rc(key) or value.get("op_status", 0) != 0
                if key in keys and not failed and not str(value.get("id", "")).endswith("_last_failure_0"):
                    continue
                what = value.get("operation_key", "an operation")
                return f"{what} on {value.get('on_node', '?')} was unexpected"
            if "/resources" in op.path:
                continue
            return f"status changed ({op.path})"
        return None


def _expected_rc(key: object) -> int | None:
    exp = Expectation.parse(key) if isinstance(key, str) else None
    return None if exp is None else exp.expected_rc


_PROBE_FOUND = {0: "running", 8: "promoted", 190: "running (degraded)", 191: "promoted (degraded)"}


def _verdict(action: GraphAction, value: dict[str, Any]) -> tuple[bool, str]:
    """Did the committed record (an op record or a fence event) fulfil the action?"""
    if action.kind == "fence":
        return value.get("state") == "done", str(value.get("reason") or "")
    rc = int(value.get("rc", -1))
    status = int(value.get("op_status", 0))
    reason = f"rc={rc} status={status}" + (f": {value['exit_reason']}" if value.get("exit_reason") else "")
    if status != 0:
        return False, reason
    if action.task == "monitor" and action.interval_ms == 0 and rc != action.expected_rc:
        # The probe found the resource active (or broken) where the plan assumed it stopped: nothing
        # ordered after the probe may run on that assumption, so the transition stops here and the next
        # plan reads what the probe found.
        return False, f"the probe found it {_PROBE_FOUND.get(rc, 'failed')} ({reason})"
    return rc == action.expected_rc, reason


def _forget_fenced_node(cib: m.Cib, target: str) -> list[PatchOp]:
    """A fenced node runs nothing: its history and transient attributes go, it is expected down."""
    state = next((n for n in cib.status.nodes if n.id == target), None)
    if state is None:
        return []
    changes = {
        "in_ccm": "false",
        "crmd": "offline",
        "join": "down",
        "expected": "down",
        "resources": [],
        "transient_attributes": [],
    }
    return [Modify(path=f"/status/nodes/{target}", changes=changes)]
