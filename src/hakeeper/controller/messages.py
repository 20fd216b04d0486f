"""Controller messages between nodes (the node-to-node channel, not the replicated log).

Operation requests go from the DC to a node, results and attribute changes from a node to the DC. They are
msgspec Structs in one tagged union so the transport can encode them without pickle and a receiver can
reject anything else.
"""

from __future__ import annotations

import msgspec

from hakeeper.cib.patch import Patch
from hakeeper.fencing.fencer import RunDevice
from hakeeper.lrm.messages import AttributeUpdate, CancelRequest, OpRequest, OpResult


class RunOp(msgspec.Struct, frozen=True, tag="run-op", tag_field="kind"):
    dc: str
    request: OpRequest


class CancelOp(msgspec.Struct, frozen=True, tag="cancel-op", tag_field="kind"):
    dc: str
    request: CancelRequest


class OpDone(msgspec.Struct, frozen=True, tag="op-done", tag_field="kind"):
    node: str
    result: OpResult


class Sync(msgspec.Struct, frozen=True, tag="sync", tag_field="kind"):
    """A node tells the DC what the DC may not know yet: every result the node has not seen recorded (in the
    order they happened) and how many operations it is still running. Sent to each new DC and periodically;
    a DC plans only once every member is in sync, so it never starts again what a member started for the
    previous DC."""

    node: str
    dc: str
    results: list[OpResult] = []
    in_flight: int = 0
    boot: str = ""
    """Identifies the node's daemon run: a new one knows nothing of what the previous one ran."""


class AttributeChanged(msgspec.Struct, frozen=True, tag="attr", tag_field="kind"):
    update: AttributeUpdate


class SubmitChange(msgspec.Struct, frozen=True, tag="submit", tag_field="kind"):
    """A node forwards an operator's change to the DC, which commits it through the log."""

    request_id: str
    origin: str
    patch: Patch
    actor: str = ""
    why: str = ""


class SubmitAnswer(msgspec.Struct, frozen=True, tag="answer", tag_field="kind"):
    """The DC's answer to ``SubmitChange``. ``outcome``: committed, conflict, invalid, not-leader, no-quorum,
    timeout. For a conflict, ``expected``/``actual`` are the versions (``a.b.c``)."""

    request_id: str
    outcome: str
    index: int = 0
    version: str = ""
    error: str = ""
    expected: str = ""
    actual: str = ""


class RunFence(msgspec.Struct, frozen=True, tag="run-fence", tag_field="kind"):
    """The DC asks a node to run a fencing device against ``target`` (never the target itself)."""

    dc: str
    attempt_id: int
    device: str
    target: str
    action: str
    timeout_s: float

    @classmethod
    def of(cls, dc: str, attempt: RunDevice) -> RunFence:
        """The message for one of the DC's fencer attempts."""
        return cls(
            dc=dc,
            attempt_id=attempt.attempt_id,
            device=attempt.device,
            target=attempt.target,
            action=attempt.action,
            timeout_s=attempt.timeout_s,
        )


class FenceRan(msgspec.Struct, frozen=True, tag="fence-ran", tag_field="kind"):
    attempt_id: int
    ok: bool
    reason: str = ""


ControllerMessage = (
    RunOp | CancelOp | OpDone | Sync | AttributeChanged | SubmitChange | SubmitAnswer | RunFence | FenceRan
)

_DECODER: msgspec.msgpack.Decoder[ControllerMessage] = msgspec.msgpack.Decoder(ControllerMessage)
_ENCODER = msgspec.msgpack.Encoder()


def encode(message: ControllerMessage) -> bytes:
    return _ENCODER.encode(message)


def decode(data: bytes) -> ControllerMessage:
    """Decode one message; raises ``msgspec.DecodeError``/``ValidationError`` on anything malformed."""
    return _DECODER.decode(data)
