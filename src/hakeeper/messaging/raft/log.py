"""The core's view of the log: stable entries (in Storage) plus the unstable tail not yet persisted."""

from __future__ import annotations

from collections.abc import Sequence

from hakeeper.messaging.raft.messages import Entry, Snapshot
from hakeeper.messaging.raft.storage import CompactedError, Storage, StorageError


class Unstable:
    """Entries (and possibly a snapshot) the shell has not persisted yet. ``offset`` is the index of
    ``entries[0]``."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.entries: list[Entry] = []
        self.snapshot: Snapshot | None = None

    def last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.meta.index
        return None

    def term(self, index: int) -> int | None:
        if index < self.offset:
            snap = self.snapshot
            if snap is not None and snap.meta.index == index:
                return snap.meta.term
            return None
        last = self.last_index()
        if last is None or index > last:
            return None
        return self.entries[index - self.offset].term

    def truncate_and_append(self, entries: Sequence[Entry]) -> None:
        first = entries[0].index
        if first == self.offset + len(self.entries):
            self.entries.extend(entries)
        elif first <= self.offset:
            # Replaces everything unstable; the stable log beyond first - 1 is overwritten once persisted.
            self.offset = first
            self.entries = list(entries)
        else:
            del self.entries[first - self.offset :]
            self.entries.extend(entries)

    def stable_to(self, index: int, term: int) -> None:
        if self.term(index) != term or index < self.offset:
            return  # replaced since the Ready was taken; the new entries are still to be persisted
        del self.entries[: index + 1 - self.offset]
        self.offset = index + 1

    def restore(self, snap: Snapshot) -> None:
        self.offset = snap.meta.index + 1
        self.entries = []
        self.snapshot = snap


class RaftLog:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.unstable = Unstable(storage.last_index() + 1)
        first = storage.first_index()
        self.committed = first - 1
        self.applied = first - 1

    # -- indexes and terms --
    def first_index(self) -> int:
        snap = self.unstable.snapshot
        if snap is not None:
            return snap.meta.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        last = self.unstable.last_index()
        return last if last is not None else self.storage.last_index()

    def term(self, index: int) -> int | None:
        """The term at ``index``, or None if compacted away or beyond the end."""
        if index < self.first_index() - 1 or index > self.last_index():
            return None
        term = self.unstable.term(index)
        if term is not None:
            return term
        try:
            return self.storage.term(index)
        except StorageError:
            return None

    def last_term(self) -> int:
        term = self.term(self.last_index())
        assert term is not None, "the last entry's term is always known"
        return term

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Is a candidate's log at least as up to date as ours (Raft §5.4.1)?"""
        mine = self.last_term()
        return last_term > mine or (last_term == mine and last_index >= self.last_index())

    # -- reading entries --
    def slice(self, lo: int, hi: int, max_entries: int | None = None) -> list[Entry]:
        """Entries ``[lo, hi)``; raises CompactedError if ``lo`` was compacted."""
        if lo < self.first_index():
            raise CompactedError(f"index {lo} was compacted")
        hi = min(hi, self.last_index() + 1)
        if max_entries is not None:
            hi = min(hi, lo + max_entries)
        if lo >= hi:
            return []
        out: list[Entry] = []
        u = self.unstable.offset
        if lo < u:
            out.extend(self.storage.entries(lo, min(hi, u)))
        if hi > u:
            out.extend(self.unstable.entries[max(lo, u) - u : hi - u])
        return out

    def entries_to_apply(self, max_entries: int) -> list[Entry]:
        lo = max(self.applied + 1, self.first_index())
        return self.slice(lo, self.committed + 1, max_entries) if self.committed >= lo else []

    # -- changing the log --
    def append(self, entries: Sequence[Entry]) -> int:
        if entries:
            assert entries[0].index > self.committed, "never overwrite a committed entry"
            self.unstable.truncate_and_append(entries)
        return self.last_index()

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """The index of the first entry that is new or disagrees with ours, or 0 if all are present."""
        for e in entries:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def maybe_append(
        self, prev_index: int, prev_term: int, commit: int, entries: Sequence[Entry]
    ) -> tuple[int, Sequence[Entry]] | None:
        """Append a leader's entries if our log matches at ``prev_index``.

        Returns the last index the leader vouched for and the entries actually written (new or replacing a
        divergent tail), or None when our log does not match."""
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        written: Sequence[Entry] = ()
        conflict = self.find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise AssertionError(
                    f"entry {conflict} conflicts with a committed entry (commit {self.committed})"
                )
            written = entries[conflict - entries[0].index :]
            self.append(written)
        self.commit_to(min(commit, last_new))
        return last_new, written

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            assert index <= self.last_index(), f"commit {index} is beyond the last index {self.last_index()}"
            self.committed = index

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= ``index`` whose term is <= ``term`` (with its term): a rejection hint."""
        index = min(index, self.last_index())
        while index > 0:
            t = self.term(index)
            if t is None:
                break  # compacted: let the other side probe from here
            if t <= term:
                return index, t
            index -= 1
        return index, self.term(index) or 0

    def restore(self, snap: Snapshot) -> None:
        self.committed = snap.meta.index
        self.unstable.restore(snap)

    def snapshot(self) -> Snapshot:
        pending = self.unstable.snapshot
        return pending if pending is not None else self.storage.snapshot()

    def stable_snapshot_to(self, index: int) -> None:
        snap = self.unstable.snapshot
        if snap is not None and snap.meta.index == index:
            self.unstable.snapshot = None
