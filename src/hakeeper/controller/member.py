"""Every node's controller duties, sans-I/O (the DC is also a member).

- Runs what the DC asks on the local LRM, and reports results and attribute changes to the DC. A result is
  kept until it is seen committed in the CIB and sent again to each new DC, so a DC change loses nothing.
- Knows what runs locally (from its own LRM's results) so that, when this node loses quorum, it can apply
  ``no-quorum-policy`` to itself: ``stop`` (default) stops everything, ``demote`` demotes promoted instances
  and stops the rest, ``freeze`` and ``ignore`` leave things running, ``suicide`` asks to fence itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from hakeeper.cib import model as m
from hakeeper.controller.messages import AttributeChanged, CancelOp, ControllerMessage, OpDone, RunOp
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


def _ends_activity(result: OpResult) -> bool:
    stopped = result.operation in ("stop", "migrate_to") and result.rc == 0
    return stopped or (result.operation == "monitor" and result.rc == 7)


class MemberCore:
    def __init__(self, node: str) -> None:
        self.node = node
        self.dc: str | None = None
        self.quorate = True
        self.active: dict[str, _Active] = {}
        self.unconfirmed: dict[str, OpResult] = {}  # op key -> latest result not yet seen in the CIB
        self.last_requests: dict[str, OpRequest] = {}

    # -- from the DC ---------------------------------------------------------------------------------

    def on_message(self, message: ControllerMessage) -> list[MemberOutput]:
        if isinstance(message, RunOp):
            if message.dc != self.dc:
                return [
                    Note(f"ignored {message.request.key} from {message.dc}, which is not the DC ({self.dc})")
                ]
            self.last_requests[message.request.resource_id] = message.request
            return [Submit(message.request)]
        if isinstance(message, CancelOp):
            if message.dc != self.dc:
                return []
            return [Cancel(message.request)]
        return [Note(f"a {type(message).__name__} message is for the DC, not for {self.node}")]

    def dc_changed(self, dc: str | None) -> list[MemberOutput]:
        self.dc = dc
        if dc is None:
            return []
        return [SendToDc(dc, OpDone(self.node, r)) for _, r in sorted(self.unconfirmed.items())]

    # -- from the local LRM --------------------------------------------------------------------------

    def on_result(self, result: OpResult) -> list[MemberOutput]:
        self._track(result)
        self.unconfirmed[result.key] = result
        if self.dc is None:
            return []
        return [SendToDc(self.dc, OpDone(self.node, result))]

    def on_attribute(self, update: AttributeUpdate) -> list[MemberOutput]:
        if self.dc is None:
            return [Note(f"attribute {update.name} not sent: there is no DC")]
        return [SendToDc(self.dc, AttributeChanged(update))]

    def _track(self, result: OpResult) -> None:
        if result.op_status != OpStatus.DONE or result.interval_ms:
            return
        rid = result.resource_id
        request = self.last_requests.get(rid)
        if (
            result.operation in ("start", "promote", "migrate_from")
            and result.rc == 0
            and request is not None
        ):
            base = self.active.get(rid)
            start_request = base.request if base is not None and result.operation == "promote" else request
            self.active[rid] = _Active(start_request, promoted=result.operation == "promote")
        elif result.operation == "demote" and result.rc == 0 and rid in self.active:
            self.active[rid] = _Active(self.active[rid].request, promoted=False)
        elif _ends_activity(result):
            self.active.pop(rid, None)

    # -- from the CIB and the message layer ----------------------------------------------------------

    def cib_committed(self, cib: m.Cib) -> None:
        """Forget results the CIB now records (matched by call id)."""
        state = next((n for n in cib.status.nodes if n.id == self.node), None)
        if state is None or not self.unconfirmed:
            return
        recorded = {(h.id, o.call_id) for h in state.resources for o in h.ops}
        for key, res in list(self.unconfirmed.items()):
            if (res.resource_id, res.call_id) in recorded:
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
        for _, act in sorted(self.active.items()):
            if policy == "demote" and act.promoted:
                out.append(Submit(self._local(act.request, "demote")))
            elif policy == "stop" or (policy == "demote" and not act.promoted):
                if act.promoted:
                    out.append(Submit(self._local(act.request, "demote")))
                out.append(Submit(self._local(act.request, "stop")))
        return out

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
