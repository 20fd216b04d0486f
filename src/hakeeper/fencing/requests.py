"""Operator fencing requests carried by the CIB: ``hakeeper fence NODE`` and ``hakeeper fence confirm NODE``.

An operator may talk to any node, but only the DC runs the fencer. The request therefore travels the way
every operator change does: the API commits a ``pending`` record to the fencing history (through the DC and
the replicated log), and the DC, seeing it committed, acts on it. Its ``client`` says what is asked
(:data:`FENCE_CLIENT` or :data:`CONFIRM_CLIENT`, then who asked and a request id); the final record the DC
commits carries the same ``client``, so the API can wait for exactly that answer. A request that is not
answered (the DC changed meanwhile) is not retried by the next DC: the operator sees a timeout and asks again.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from hakeeper.cib.model import FenceEvent

FENCE_CLIENT = "operator-fence:"
CONFIRM_CLIENT = "operator-confirm:"
ACTIONS = ("off", "reboot")


class OperatorRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A committed operator request the DC must act on."""

    target: str
    action: str
    origin: str
    client: str
    confirm: bool


def request_event(
    target: str, action: str, *, origin: str, actor: str, request_id: str, now: int, confirm: bool = False
) -> FenceEvent:
    """The ``pending`` record asking the DC to fence ``target`` (or to record an operator's confirmation)."""
    kind = CONFIRM_CLIENT if confirm else FENCE_CLIENT
    what = "confirmation that it is down" if confirm else action
    return FenceEvent(
        target=target,
        action="off" if confirm else action,
        state="pending",
        origin=origin,
        device="manual" if confirm else None,
        client=f"{kind}{actor}:{request_id}",
        requested=now,
        reason=f"{what} requested by {actor}",
    )


def is_operator_client(client: str | None) -> bool:
    return client is not None and client.startswith((FENCE_CLIENT, CONFIRM_CLIENT))


def new_operator_requests(old: Sequence[FenceEvent], new: Sequence[FenceEvent]) -> list[OperatorRequest]:
    """The operator requests a commit added to the fencing history (append-only), in order."""
    seen = {msgspec.json.encode(e) for e in old}
    out = []
    for event in new:
        if event.state != "pending" or not is_operator_client(event.client) or event.client is None:
            continue
        if msgspec.json.encode(event) in seen:
            continue
        out.append(
            OperatorRequest(
                target=event.target,
                action=event.action,
                origin=event.origin or "",
                client=event.client,
                confirm=event.client.startswith(CONFIRM_CLIENT),
            )
        )
    return out


def answer_to(history: Sequence[FenceEvent], client: str) -> FenceEvent | None:
    """The final record answering request ``client`` once committed: the DC's record with that client, or
    (when the fencer merged the request into one already running for the same target) the first final
    record about the target committed after the request."""
    start = next((i for i, e in enumerate(history) if e.client == client and e.state == "pending"), None)
    if start is None:
        return None
    target = history[start].target
    later = [e for e in history[start + 1 :] if e.state != "pending"]
    exact = next((e for e in later if e.client == client), None)
    return exact or next((e for e in later if e.target == target), None)
