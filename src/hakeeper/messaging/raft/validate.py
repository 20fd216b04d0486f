"""Structural checks on messages from peers, before the core acts on them."""

from __future__ import annotations

import msgspec

from hakeeper.messaging.raft.messages import (
    AppendEntries,
    AppendResponse,
    EntryKind,
    Heartbeat,
    InstallSnapshot,
    Message,
    RequestVote,
    decode_conf_state,
)


def well_formed(msg: Message) -> bool:
    """Structural sanity of a peer's message, so that a buggy or confused peer cannot break our invariants."""
    if msg.term < 0 or msg.frm <= 0 or msg.frm == msg.to:
        return False
    if isinstance(msg, AppendEntries):
        if msg.prev_index < 0 or msg.prev_term < 0 or msg.commit < 0 or msg.prev_term > msg.term:
            return False
        expected, last_term = msg.prev_index + 1, msg.prev_term
        for e in msg.entries:
            if e.index != expected or e.term < last_term or e.term > msg.term:
                return False
            if e.kind is EntryKind.CONFIG and not _decodes_as_conf(e.data):
                return False
            expected, last_term = expected + 1, e.term
        return True
    if isinstance(msg, InstallSnapshot):
        meta = msg.snapshot.meta
        return meta.index > 0 and 0 < meta.term <= msg.term
    if isinstance(msg, RequestVote):
        return msg.last_index >= 0 and 0 <= msg.last_term <= msg.term
    if isinstance(msg, Heartbeat | AppendResponse):
        return all(v >= 0 for v in _indexes(msg))
    return True


def _indexes(msg: Heartbeat | AppendResponse) -> tuple[int, ...]:
    if isinstance(msg, Heartbeat):
        return (msg.commit, msg.read_seq)
    return (msg.index, msg.hint_index, msg.hint_term)


def _decodes_as_conf(data: bytes) -> bool:
    try:
        decode_conf_state(data)
    except msgspec.MsgspecError:
        return False
    return True
