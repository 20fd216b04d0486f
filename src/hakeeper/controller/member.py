"""Every node's controller duties, sans-I/O (the DC is also a member).

- Runs what the DC asks on the local LRM, and reports results and attribute changes to the DC. A result is
  kept until it is seen committed in the CIB and sent again to each new DC (and periodically) in a ``Sync``
  that also says how many operations still run here: a DC plans only once every member is in sync, so a DC
  change loses nothing and no new DC starts again what a member started for its predecessor.
- Never starts a resource twice: a new DC may ask again for a start whose result it has not seen yet (the old
  DC died before recording it). A start of a resource that runs here, or is being started here, is answered
  with that start's result under the new request's transition key instead of running the agent again.
- Stops a resource with the agent and parameters it was started with, so a restart after a definition change
  stops what actually runs.
- Knows what runs locally (from its own LRM's results) so that, when this node loses quorum, it can apply
  ``no-quorum-policy`` to itself: ``stop`` (default) stops everything, ``demote`` demotes promoted instances
  and stops the rest, ``freeze`` and ``ignore`` leave things running, ``suicide`` asks to fence itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from hakeeper.cib import model as m
from hakeeper.controller.messages import AttributeChanged, CancelOp, ControllerMessage, OpDone, RunOp, Sync
from hakeeper.lrm.messages import AttributeUpdate, CancelRequest, OpRequest, OpResult, OpStatus


@dataclass(frozen=True)
class Submit:
    """Run this operation on the local LRM."""

    request: OpRequest


@dataclass(frozen=True)
class Cancel:
    request: CancelRequest


@dataclass(frozen=True)
class SendToDc:
    dc: str
    message: ControllerMessage


@dataclass(frozen=True)
class SelfFence:
    reason: str


@dataclass(frozen=True)
class Note:
    text: str


MemberOutput = Submit | Cancel | SendToDc | SelfFence | Note


@dataclass(frozen=True)
class _Active:
    request: OpRequest  # the start (or promote) that made it active: agent and parameters to stop it
    promoted: bool


KNOWN_REQUESTS = 4096
"""How many recent requests a member remembers by transition key, to recognise the DC's resends."""


def _is_start(operation: str, interval_ms: int) -> bool:
    return operation == "start" and interval_ms == 0


def _ends_activity(result: OpResult) -> bool:
    stopped = result.operation in ("stop", "migrate_to") and result.rc == 0
    return stopped or (result.operation == "monitor" and result.rc == 7)


def _probe_found_active(result: OpResult) -> bool:
    return result.operation == "monitor" and result.interval_ms == 0 and result.rc in (0, 8)


class MemberCore:
    def __init__(self, node: str, boot: str = "") -> None:
        self.node = node
        self.boot = boot  # this daemon run (the DC forgets what an earlier run of this node reported)
        self.dc: str | None = None
        self.quorate = True
        self.active: dict[str, _Active] = {}
        self.unconfirmed: dict[str, OpResult] = {}  # op key -> latest result not yet seen in the CIB
        self.last_requests: dict[str, OpRequest] = {}
        self.started: dict[str, OpResult] = {}  # resource -> the successful start that made it active
        self.busy: dict[str, int] = {}  # resource -> one-shot operations submitted and not finished
        self.starting: dict[str, list[OpRequest]] = {}  # resource -> repeated starts awaiting the one running
        # transition key -> its result once known (None while it runs): a request the DC sends again (it
        # resends what it has no answer for) is answered, never run twice. Bounded: oldest keys forgotten.
        self.by_transition_key: dict[str, OpResult | None] = {}

    # -- from the DC ---------------------------------------------------------------------------------

    def on_message(self, message: ControllerMessage) -> list[MemberOutput]:
        if isinstance(message, RunOp):
            if message.dc != self.dc:
                return [
                    Note(f"ignored {message.request.key} from {message.dc}, which is not the DC ({self.dc})")
                ]
            return self._run_once(message.request)
        if isinstance(message, CancelOp):
            if message.dc != self.dc:
                return []
            return [Cancel(message.request)]
        return [Note(f"a {type(message).__name__} message is for the DC, not for {self.node}")]

    def _run_once(self, request: OpRequest) -> list[MemberOutput]:
        key = request.transition_key
        if key and key in self.by_transition_key:
            known = self.by_transition_key[key]
            if known is None:
                return []
            return self._report(known)
        if key:
            self.by_transition_key[key] = None
            while len(self.by_transition_key) > KNOWN_REQUESTS:
                del self.by_transition_key[next(iter(self.by_transition_key))]
        return self._run(request)

    def _run(self, request: OpRequest) -> list[MemberOutput]:
        rid = request.resource_id
        request = self._as_started(request)
        if _is_start(request.operation, request.interval_ms):
            key = request.transition_key
            if rid in self.starting:
                self.starting[rid].append(request)
                return [Note(f"{rid} is being started here already; that start answers {key}")]
            done = self.started.get(rid)
            if done is not None and rid in self.active and not self.busy.get(rid):
                note = Note(f"{rid} runs here already; its start answers {key}")
                return [note, *self._report(msgspec.structs.replace(done, transition_key=key))]
            self.starting[rid] = []
        out: list[MemberOutput] = []
        if request.interval_ms == 0:
            self.busy[rid] = self.busy.get(rid, 0) + 1
            if not _is_start(request.operation, 0):
                # another action came in between: the repeated starts are no longer the same start
                held = self.starting.pop(rid, [])
                self.busy[rid] += len(held)
                out += [Submit(r) for r in held]
        self.last_requests[rid] = request
        return [Submit(request), *out]

    def _as_started(self, request: OpRequest) -> OpRequest:
        """A stop runs with the agent and parameters the resource was started with, as Pacemaker's controller
        does: after a definition change (the reason for a restart) the new ones may not find what runs (a
        different state file, address or agent)."""
        act = self.active.get(request.resource_id)
        if request.operation != "stop" or act is None:
            return request
        started = act.request
        if (started.agent, started.params) == (request.agent, request.params):
            return request
        return msgspec.structs.replace(request, agent=started.agent, params=started.params)

    def dc_changed(self, dc: str | None) -> list[MemberOutput]:
        self.dc = dc
        if dc is None:
            return []
        results = sorted(self.unconfirmed.values(), key=lambda r: (r.call_id, r.key))
        return [
            SendToDc(
                dc,
                Sync(
                    node=self.node, dc=dc, results=results, in_flight=sum(self.busy.values()), boot=self.boot
                ),
            )
        ]

    # -- from the local LRM --------------------------------------------------------------------------

    def on_result(self, result: OpResult) -> list[MemberOutput]:
        self._track(result)
        out = self._report(result)
        if _is_start(result.operation, result.interval_ms) and result.op_status != OpStatus.PENDING:
            for again in self.starting.pop(result.resource_id, []):
                out += self._report(msgspec.structs.replace(result, transition_key=again.transition_key))
        return out

    def _report(self, result: OpResult) -> list[MemberOutput]:
        if result.transition_key in self.by_transition_key and result.op_status != OpStatus.PENDING:
            self.by_transition_key[result.transition_key] = result
        self.unconfirmed[result.key] = result
        return [] if self.dc is None else [SendToDc(self.dc, OpDone(self.node, result))]

    def on_attribute(self, update: AttributeUpdate) -> list[MemberOutput]:
        if self.dc is None:
            return [Note(f"attribute {update.name} not sent: there is no DC")]
        return [SendToDc(self.dc, AttributeChanged(update))]

    def _track(self, result: OpResult) -> None:
        rid = result.resource_id
        if result.interval_ms == 0 and result.op_status != OpStatus.PENDING and self.busy.get(rid):
            self.busy[rid] -= 1
        if result.op_status != OpStatus.DONE or result.interval_ms:
            return
        request = self.last_requests.get(rid)
        if (
            result.operation in ("start", "promote", "migrate_from")
            and result.rc == 0
            and request is not None
        ):
            base = self.active.get(rid)
            start_request = base.request if base is not None and result.operation == "promote" else request
            self.active[rid] = _Active(start_request, promoted=result.operation == "promote")
            if result.operation == "start":
                self.started[rid] = result
        elif _probe_found_active(result) and request is not None:
            # found running by a probe (started outside the cluster): ours to stop if quorum is lost
            self.active[rid] = _Active(request, promoted=result.rc == 8)
        elif result.operation == "demote" and result.rc == 0 and rid in self.active:
            self.active[rid] = _Active(self.active[rid].request, promoted=False)
        elif _ends_activity(result):
            self.active.pop(rid, None)
            self.started.pop(rid, None)

    # -- from the CIB and the message layer ----------------------------------------------------------

    def cib_committed(self, cib: m.Cib) -> None:
        """Forget results the CIB now records (matched by call id, and by outcome: every run of a recurring
        operation has the same call id, so an earlier run's record does not confirm a new result)."""
        state = next((n for n in cib.status.nodes if n.id == self.node), None)
        if state is None or not self.unconfirmed:
            return
        recorded = {(h.id, o.call_id, o.rc, o.op_status) for h in state.resources for o in h.ops}
        for key, res in list(self.unconfirmed.items()):
            if (res.resource_id, res.call_id, res.rc, int(res.op_status)) in recorded:
                del self.unconfirmed[key]

    def quorum_changed(self, quorate: bool, policy: str) -> list[MemberOutput]:
        """Apply ``no-quorum-policy`` to this node when it loses quorum."""
        was = self.quorate
        self.quorate = quorate
        if quorate or not was:
            return []
        policy = policy.lower() or "stop"
        if policy in ("freeze", "ignore"):
            return [Note(f"{self.node} lost quorum; no-quorum-policy={policy}: resources keep running")]
        if policy == "suicide":
            return [SelfFence(f"{self.node} lost quorum and no-quorum-policy=suicide")]
        out: list[MemberOutput] = [Note(f"{self.node} lost quorum; no-quorum-policy={policy}")]
        return out + self._stop_local(policy)

    def stop_everything(self) -> list[MemberOutput]:
        """Stop (demoting first) every resource running here, without the DC: a shutdown that timed out."""
        return self._stop_local("stop")

    def _stop_local(self, policy: str) -> list[MemberOutput]:
        out: list[MemberOutput] = []
        for _, act in sorted(self.active.items()):
            if policy == "demote" and act.promoted:
                out += self._run_local(act.request, "demote")
            elif policy == "stop" or (policy == "demote" and not act.promoted):
                if act.promoted:
                    out += self._run_local(act.request, "demote")
                out += self._run_local(act.request, "stop")
        return out

    def _run_local(self, request: OpRequest, operation: str) -> list[MemberOutput]:
        local = self._local(request, operation)
        self.busy[local.resource_id] = self.busy.get(local.resource_id, 0) + 1
        return [Submit(local)]

    @staticmethod
    def _local(request: OpRequest, operation: str) -> OpRequest:
        return OpRequest(
            resource_id=request.resource_id,
            agent=request.agent,
            operation=operation,
            timeout_ms=request.timeout_ms,
            params=request.params,
            meta=request.meta,
            transition_key="",
        )
