"""The CIB as the replicated log's state machine.

Every committed log entry is a ``LogEntry``: a CIB patch with the id of the request that proposed it. Every
node applies the same entries in the same order, so every node computes the same CIB — including the same
*rejections*: a patch whose precondition no longer holds, or that would make the CIB invalid, is refused
identically everywhere and the proposer is told why. Snapshots are the CIB itself, msgpack-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from hakeeper.cib import model as m
from hakeeper.cib.patch import Patch, PatchConflict, PatchError, Version, apply, version_of


class LogEntry(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    patch: Patch
    actor: str = ""
    why: str = ""


@dataclass(frozen=True)
class Applied:
    index: int
    request_id: str
    cib: m.Cib
    patch: Patch
    error: str | None = None  # set when the patch was refused; the CIB is then unchanged
    conflict: tuple[Version, Version] | None = None  # (prepared against, actual) for a stale precondition


_ENTRY_DECODER: msgspec.msgpack.Decoder[LogEntry] = msgspec.msgpack.Decoder(LogEntry)
_CIB_DECODER: msgspec.msgpack.Decoder[m.Cib] = msgspec.msgpack.Decoder(m.Cib)
_ENCODER = msgspec.msgpack.Encoder()


def encode_entry(entry: LogEntry) -> bytes:
    return _ENCODER.encode(entry)


class CibStateMachine:
    def __init__(self, cib: m.Cib | None = None) -> None:
        self.cib = cib if cib is not None else m.Cib()
        self.applied_index = 0

    def apply(self, index: int, data: bytes) -> Applied:
        """Apply one committed entry. Malformed or refused entries change nothing and say why."""
        if index <= self.applied_index:
            raise ValueError(f"entry {index} was already applied (applied up to {self.applied_index})")
        self.applied_index = index
        try:
            entry = _ENTRY_DECODER.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            return Applied(
                index, "", self.cib, Patch(ops=[]), f"log entry {index} is not a CIB change: {err}"
            )
        try:
            new = apply(self.cib, entry.patch)
        except PatchConflict as err:
            conflict = (err.expected, err.actual)
            return Applied(index, entry.request_id, self.cib, entry.patch, str(err), conflict)
        except PatchError as err:
            return Applied(index, entry.request_id, self.cib, entry.patch, str(err))
        self.cib = new
        return Applied(index, entry.request_id, new, entry.patch)

    def snapshot(self) -> bytes:
        return _ENCODER.encode(self.cib)

    def restore(self, data: bytes, index: int) -> None:
        self.cib = _CIB_DECODER.decode(data)
        self.applied_index = index

    @property
    def version(self) -> tuple[int, int, int]:
        v = version_of(self.cib)
        return (v.admin_epoch, v.epoch, v.num_updates)
