"""The read-only storage interface the core uses, and an in-memory implementation for tests and simulation.

As in etcd-io/raft, the core only *reads* storage; the I/O shell writes what each ``Ready`` asks it to (see
:func:`hakeeper.messaging.raft.core.RaftNode.ready`). A storage holds: the hard state, the snapshot (the
application state up to some index, plus the membership at that index), and the log entries after the
compaction point. ``first_index()`` is the first entry still held; ``term(first_index() - 1)`` is always
known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hakeeper.messaging.raft.messages import ConfState, Entry, HardState, Snapshot, SnapshotMeta


class StorageError(Exception):
    """Base class of storage errors."""


class CompactedError(StorageError):
    """The requested index was compacted away into the snapshot."""


class UnavailableError(StorageError):
    """The requested index is beyond the last stored entry."""


class StorageCorruptionError(StorageError):
    """Persisted raft state is damaged; the node must stop instead of serving bad data."""


class Storage(Protocol):
    """What the core may read. Writes happen through the concrete class, driven by the I/O shell."""

    def initial_state(self) -> tuple[HardState, ConfState]:
        """The hard state and the membership recorded in the snapshot."""
        ...

    def entries(self, lo: int, hi: int) -> list[Entry]:
        """Entries ``[lo, hi)``; raises CompactedError / UnavailableError when out of range."""
        ...

    def term(self, index: int) -> int:
        """Term of the entry at ``index``, for ``first_index()-1 <= index <= last_index()``."""
        ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot: ...


class WritableStorage(Storage, Protocol):
    """The write side the shell uses: one ``save`` per Ready, then ``sync`` before sending messages."""

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> None: ...

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        """Record the application's state at ``index`` (<= the last applied entry) as the current snapshot."""
        ...

    def compact(self, index: int) -> None:
        """Drop entries up to ``index`` (which must be covered by the snapshot)."""
        ...

    def sync(self) -> None: ...


@dataclass
class _LogState:
    """A copyable image of everything a storage holds."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot = field(default_factory=Snapshot)
    offset: int = 0  # index of the entry before entries[0]
    offset_term: int = 0
    entries: list[Entry] = field(default_factory=list)

    def copy(self) -> _LogState:
        return _LogState(self.hard_state, self.snapshot, self.offset, self.offset_term, list(self.entries))

    def last_index(self) -> int:
        return self.offset + len(self.entries)

    def term(self, index: int) -> int:
        if index < self.offset:
            raise CompactedError(f"index {index} was compacted (log starts after {self.offset})")
        if index == self.offset:
            return self.offset_term
        if index > self.last_index():
            raise UnavailableError(f"index {index} is beyond the last stored entry {self.last_index()}")
        return self.entries[index - self.offset - 1].term

    def append(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        first = entries[0].index
        if first > self.last_index() + 1:
            raise StorageError(f"append at {first} leaves a gap after the last entry {self.last_index()}")
        fresh = [e for e in entries if e.index > self.offset]
        if not fresh:
            return
        del self.entries[fresh[0].index - self.offset - 1 :]
        self.entries.extend(fresh)

    def apply_snapshot(self, snap: Snapshot) -> None:
        if snap.meta.index <= self.snapshot.meta.index and self.snapshot.meta.index > 0:
            return
        self.snapshot = snap
        self.offset, self.offset_term, self.entries = snap.meta.index, snap.meta.term, []

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        if index <= self.snapshot.meta.index:
            return self.snapshot
        if index > self.last_index():
            raise UnavailableError(f"cannot snapshot at {index}: the log ends at {self.last_index()}")
        self.snapshot = Snapshot(SnapshotMeta(index, self.term(index), conf), data)
        return self.snapshot

    def compact(self, index: int) -> None:
        if index <= self.offset:
            return
        if index > self.snapshot.meta.index:
            raise StorageError(
                f"cannot compact to {index}: the snapshot only covers up to {self.snapshot.meta.index}"
            )
        term = self.term(index)
        del self.entries[: index - self.offset]
        self.offset, self.offset_term = index, term


class MemoryStorage:
    """Storage in memory. Writes are visible at once but only survive :meth:`crash` after :meth:`sync`,
    which models an OS page cache that loses unsynced writes when the machine dies."""

    def __init__(self) -> None:
        self._visible = _LogState()
        self._durable = _LogState()
        self._pending: list[tuple[str, tuple[object, ...]]] = []

    # -- read side (Storage) --
    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._visible.hard_state, self._visible.snapshot.meta.conf

    def entries(self, lo: int, hi: int) -> list[Entry]:
        s = self._visible
        if lo <= s.offset:
            raise CompactedError(f"index {lo} was compacted (log starts after {s.offset})")
        if hi > s.last_index() + 1:
            raise UnavailableError(f"entries up to {hi - 1} requested; the log ends at {s.last_index()}")
        return s.entries[lo - s.offset - 1 : hi - s.offset - 1]

    def term(self, index: int) -> int:
        return self._visible.term(index)

    def first_index(self) -> int:
        return self._visible.offset + 1

    def last_index(self) -> int:
        return self._visible.last_index()

    def snapshot(self) -> Snapshot:
        return self._visible.snapshot

    # -- write side --
    def save(self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None) -> None:
        if snapshot is not None:
            self._do("apply_snapshot", snapshot)
        if entries:
            self._do("append", list(entries))
        if hard_state is not None:
            self._do("set_hard_state", hard_state)

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        snap = self._visible.create_snapshot(index, conf, data)
        self._pending.append(("apply_snapshot_keep_log", (snap,)))
        return snap

    def compact(self, index: int) -> None:
        self._do("compact", index)

    def sync(self) -> None:
        for op, args in self._pending:
            _apply(self._durable, op, args)
        self._pending.clear()

    def crash(self) -> None:
        """Forget every write not yet synced."""
        self._pending.clear()
        self._visible = self._durable.copy()

    def durable_term(self, index: int) -> int | None:
        """The term at ``index`` in synced state, or None if not held (for simulation checks)."""
        try:
            return self._durable.term(index)
        except StorageError:
            return None

    def durable_last_index(self) -> int:
        return self._durable.last_index()

    def durable_first_index(self) -> int:
        return self._durable.offset + 1

    def _do(self, op: str, *args: object) -> None:
        _apply(self._visible, op, args)
        self._pending.append((op, args))


def _apply(state: _LogState, op: str, args: tuple[object, ...]) -> None:
    (arg,) = args
    if op == "append":
        assert isinstance(arg, list)
        state.append(arg)
    elif op == "set_hard_state":
        assert isinstance(arg, HardState)
        state.hard_state = arg
    elif op == "apply_snapshot":
        assert isinstance(arg, Snapshot)
        state.apply_snapshot(arg)
    elif op == "apply_snapshot_keep_log":
        assert isinstance(arg, Snapshot)
        if arg.meta.index > state.snapshot.meta.index:
            state.snapshot = arg
    elif op == "compact":
        assert isinstance(arg, int)
        state.compact(arg)
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown storage operation {op!r}")
