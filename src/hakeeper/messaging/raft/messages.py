"""Raft's data: log entries, membership, snapshots, hard state and the wire messages.

Everything is a frozen msgspec Struct so the transport can encode it with msgspec msgpack (no pickle)
and tests can compare values with ``==``. Messages form one tagged union, :data:`Message`; decode with
``msgspec.msgpack.decode(data, type=Message)``.
"""

from __future__ import annotations

import enum

import msgspec

NO_NODE = 0
"""Node ids are positive integers; 0 means "nobody" (no vote cast, no known leader)."""


class EntryKind(enum.IntEnum):
    NORMAL = 0  # application data
    CONFIG = 1  # data is an encoded ConfState: the whole membership after this entry
    EMPTY = 2  # the no-op a new leader appends to commit entries of earlier terms


class Entry(msgspec.Struct, frozen=True, array_like=True):
    term: int
    index: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""


class ConfState(msgspec.Struct, frozen=True, array_like=True):
    """A cluster membership. Voters elect and commit; learners only receive the log. ``witnesses`` are voters
    that only vote: they never lead and receive the log's shape (index, term, kind) without its payloads."""

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()
    witnesses: tuple[int, ...] = ()  # a subset of voters

    def members(self) -> tuple[int, ...]:
        return tuple(sorted({*self.voters, *self.learners}))


class HardState(msgspec.Struct, frozen=True, array_like=True):
    """What must be on disk before any message that depends on it leaves the node."""

    term: int = 0
    vote: int = NO_NODE
    commit: int = 0


class SnapshotMeta(msgspec.Struct, frozen=True, array_like=True):
    index: int = 0
    term: int = 0
    conf: ConfState = ConfState()


class Snapshot(msgspec.Struct, frozen=True, array_like=True):
    """The application's state up to and including ``meta.index`` (opaque ``data``)."""

    meta: SnapshotMeta = SnapshotMeta()
    data: bytes = b""


class ConfChangeKind(enum.IntEnum):
    ADD_VOTER = 0
    REMOVE_NODE = 1
    ADD_LEARNER = 2
    PROMOTE_LEARNER = 3
    ADD_WITNESS = 4


class ConfChange(msgspec.Struct, frozen=True, array_like=True):
    kind: ConfChangeKind
    node_id: int


def encode_conf_state(conf: ConfState) -> bytes:
    return msgspec.msgpack.encode(conf)


def decode_conf_state(data: bytes) -> ConfState:
    return msgspec.msgpack.decode(data, type=ConfState)


# --- wire messages ---


class AppendEntries(msgspec.Struct, frozen=True, tag="app"):
    term: int
    frm: int
    to: int
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    commit: int
    stripped: bool = False  # payloads removed: only a witness may store these entries


class AppendResponse(msgspec.Struct, frozen=True, tag="app_resp"):
    """``index`` is the follower's new match index on success, or the rejected ``prev_index`` on failure;
    ``hint_index``/``hint_term`` let the leader skip back over a whole term of divergent entries."""

    term: int
    frm: int
    to: int
    index: int
    reject: bool = False
    hint_index: int = 0
    hint_term: int = 0


class RequestVote(msgspec.Struct, frozen=True, tag="vote"):
    """A (pre-)vote request. A pre-vote carries the term the candidate *would* use, without adopting it.
    ``transfer`` marks an election started by a leadership transfer, which may break a leader's lease."""

    term: int
    frm: int
    to: int
    last_index: int
    last_term: int
    pre_vote: bool = False
    transfer: bool = False


class VoteResponse(msgspec.Struct, frozen=True, tag="vote_resp"):
    term: int
    frm: int
    to: int
    granted: bool
    pre_vote: bool = False


class Heartbeat(msgspec.Struct, frozen=True, tag="hb"):
    """``read_seq`` is the newest ReadIndex request the leader wants confirmed by this round."""

    term: int
    frm: int
    to: int
    commit: int
    read_seq: int = 0


class HeartbeatResponse(msgspec.Struct, frozen=True, tag="hb_resp"):
    term: int
    frm: int
    to: int
    read_seq: int = 0


class InstallSnapshot(msgspec.Struct, frozen=True, tag="snap"):
    term: int
    frm: int
    to: int
    snapshot: Snapshot
    stripped: bool = False  # application data removed, for a witness


class TimeoutNow(msgspec.Struct, frozen=True, tag="timeout_now"):
    """Sent by a leader handing over leadership: "start an election now"."""

    term: int
    frm: int
    to: int


Message = (
    AppendEntries
    | AppendResponse
    | RequestVote
    | VoteResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | TimeoutNow
)

_ENCODER = msgspec.msgpack.Encoder()
_DECODER: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)


def encode_message(msg: Message) -> bytes:
    return _ENCODER.encode(msg)


def decode_message(data: bytes) -> Message:
    """Decode one message; any bad input raises ``msgspec.DecodeError`` (ValidationError is a subclass)."""
    try:
        return _DECODER.decode(data)
    except UnicodeDecodeError as exc:  # msgspec lets this escape for a tag that is not valid UTF-8
        raise msgspec.DecodeError(f"malformed raft message: {exc}") from exc
