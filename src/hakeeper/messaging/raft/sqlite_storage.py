"""Durable Raft storage in SQLite (WAL journal, ``synchronous=FULL``), used by the I/O shell.

One ``save`` is one transaction: the Ready's snapshot, entries and hard state become durable together when it
commits, so a vote or an acknowledgement sent after ``save`` returns can never be forgotten.

Torn tail: a crash in the middle of a write leaves the last transaction incomplete in the WAL. SQLite ignores
WAL frames without a valid commit record and checksums at recovery, so the database reopens at the last
committed transaction (the torn tail is dropped, which is safe: nothing depending on it was sent).

Commit index: a Ready that changes nothing but the commit index is not written at once (as etcd-io/raft's
``MustSync``): Raft never needs a durable commit index, since a restarted node learns it again from the
leader, so it waits for the next transaction that must be durable anyway (or ``close``). This saves an fsync
on the path of every proposal, between its commit and its application.

Corruption in the middle: every entry and metadata row carries a CRC32 of its contents, verified when the
store is opened (together with SQLite's ``quick_check`` and a check that the log has no holes) and on every
read. A mismatch raises :class:`StorageCorruptionError` naming the file and index: the node stops instead of
serving bad data.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from hakeeper.messaging.raft.messages import ConfState, Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from hakeeper.messaging.raft.storage import (
    CompactedError,
    StorageCorruptionError,
    StorageError,
    UnavailableError,
)

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind INTEGER NOT NULL, data BLOB NOT NULL,
    crc INTEGER NOT NULL
);
"""


def _entry_crc(index: int, term: int, kind: int, data: bytes) -> int:
    head = index.to_bytes(8, "little") + term.to_bytes(8, "little") + kind.to_bytes(1, "little")
    return zlib.crc32(data, zlib.crc32(head))


def _entry_row(e: Entry) -> tuple[Any, ...]:
    return (e.index, e.term, int(e.kind), e.data, _entry_crc(e.index, e.term, e.kind, e.data))


class SqliteStorage:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._check_sqlite_integrity()
            self._load()
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(f"SQLite cannot read it ({exc})") from exc

    # ------------------------------------------------------------------ opening
    def _corrupt(self, what: str) -> StorageCorruptionError:
        return StorageCorruptionError(
            f"the raft state in {self.path} is damaged: {what}. This node stops rather than serve bad data; "
            "restore the file from a backup, or remove this node from the cluster, delete the file and "
            "add the node back so it copies the log from the others"
        )

    def _check_sqlite_integrity(self) -> None:
        rows = self._db.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            raise self._corrupt("SQLite's integrity check failed: " + "; ".join(str(r[0]) for r in rows[:3]))

    def _load(self) -> None:
        self._hard_state = self._read_meta("hard_state", HardState, HardState())
        self._hard_state_unsaved = False  # only its commit index can be newer than the stored one
        self._snapshot = self._read_meta("snapshot", Snapshot, Snapshot())
        self._offset, self._offset_term = self._read_meta("offset", tuple[int, int], (0, 0))
        self._terms: list[int] = []
        expected = self._offset + 1
        for idx, term, kind, data, crc in self._db.execute(
            "SELECT idx, term, kind, data, crc FROM entries ORDER BY idx"
        ):
            if idx != expected:
                raise self._corrupt(f"the log jumps from index {expected - 1} to {idx}")
            if _entry_crc(idx, term, kind, data) != crc:
                raise self._corrupt(f"log entry {idx} fails its checksum")
            self._terms.append(term)
            expected += 1
        if self._hard_state.commit > self.last_index():
            raise self._corrupt(
                f"the commit index {self._hard_state.commit} is beyond the last entry {self.last_index()}"
            )

    def _read_meta(self, key: str, kind: type[_T], default: _T) -> _T:
        row = self._db.execute("SELECT value, crc FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        value, crc = row
        if zlib.crc32(value) != crc:
            raise self._corrupt(f"the {key.replace('_', ' ')} record fails its checksum")
        try:
            return msgspec.msgpack.decode(value, type=kind)
        except msgspec.DecodeError as exc:
            raise self._corrupt(f"the {key.replace('_', ' ')} record cannot be decoded ({exc})") from exc

    def close(self) -> None:
        if self._hard_state_unsaved:
            with self._transaction():
                self._put_meta("hard_state", self._hard_state)
            self._hard_state_unsaved = False
        self._db.close()

    # ------------------------------------------------------------------ Storage (read side)
    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.meta.conf

    def first_index(self) -> int:
        return self._offset + 1

    def last_index(self) -> int:
        return self._offset + len(self._terms)

    def term(self, index: int) -> int:
        if index < self._offset:
            raise CompactedError(f"index {index} was compacted (log starts after {self._offset})")
        if index == self._offset:
            return self._offset_term
        if index > self.last_index():
            raise UnavailableError(f"index {index} is beyond the last stored entry {self.last_index()}")
        return self._terms[index - self._offset - 1]

    def entries(self, lo: int, hi: int) -> list[Entry]:
        if lo <= self._offset:
            raise CompactedError(f"index {lo} was compacted (log starts after {self._offset})")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"entries up to {hi - 1} requested; the log ends at {self.last_index()}")
        out: list[Entry] = []
        rows = self._db.execute(
            "SELECT idx, term, kind, data, crc FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (lo, hi)
        )
        for idx, term, kind, data, crc in rows:
            if idx != lo + len(out) or _entry_crc(idx, term, kind, data) != crc:
                raise self._corrupt(f"log entry {lo + len(out)} is missing or fails its checksum")
            out.append(Entry(term, idx, EntryKind(kind), data))
        if len(out) != hi - lo:
            raise self._corrupt(f"log entries {lo}..{hi - 1} are incomplete")
        return out

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # ------------------------------------------------------------------ write side
    def save(self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None) -> None:
        """Persist one Ready atomically and durably (the transaction commits with synchronous=FULL); a Ready
        that only moves the commit index is kept in memory until the next write (see the module notes)."""
        if entries and entries[0].index > self.last_index() + 1 and snapshot is None:
            raise StorageError(f"append at {entries[0].index} leaves a gap after entry {self.last_index()}")
        commit_only = hard_state is not None and snapshot is None and not entries
        if commit_only and hard_state is not None and self._only_commit_moved(hard_state):
            self._hard_state, self._hard_state_unsaved = hard_state, True  # see "Commit index" above
            return
        if hard_state is None and self._hard_state_unsaved:
            hard_state = self._hard_state
        with self._transaction():
            if snapshot is not None and snapshot.meta.index > self._snapshot.meta.index:
                self._db.execute("DELETE FROM entries")
                self._put_meta("snapshot", snapshot)
                self._put_meta("offset", (snapshot.meta.index, snapshot.meta.term))
            if entries:
                offset = snapshot.meta.index if snapshot is not None else self._offset
                fresh = [e for e in entries if e.index > offset]
                if fresh:
                    self._db.execute("DELETE FROM entries WHERE idx >= ?", (fresh[0].index,))
                    self._db.executemany(
                        "INSERT INTO entries (idx, term, kind, data, crc) VALUES (?, ?, ?, ?, ?)",
                        [_entry_row(e) for e in fresh],
                    )
            if hard_state is not None:
                self._put_meta("hard_state", hard_state)
        self._reload_cache(hard_state, entries, snapshot)

    def _reload_cache(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> None:
        if snapshot is not None and snapshot.meta.index > self._snapshot.meta.index:
            self._snapshot = snapshot
            self._offset, self._offset_term, self._terms = snapshot.meta.index, snapshot.meta.term, []
        fresh = [e for e in entries if e.index > self._offset]
        if fresh:
            del self._terms[fresh[0].index - self._offset - 1 :]
            self._terms.extend(e.term for e in fresh)
        if hard_state is not None:
            self._hard_state, self._hard_state_unsaved = hard_state, False

    def _only_commit_moved(self, hard_state: HardState) -> bool:
        return (hard_state.term, hard_state.vote) == (self._hard_state.term, self._hard_state.vote)

    def create_snapshot(self, index: int, conf: ConfState, data: bytes) -> Snapshot:
        if index <= self._snapshot.meta.index:
            return self._snapshot
        snap = Snapshot(SnapshotMeta(index, self.term(index), conf), data)
        with self._transaction():
            self._put_meta("snapshot", snap)
        self._snapshot = snap
        return snap

    def compact(self, index: int) -> None:
        if index <= self._offset:
            return
        if index > self._snapshot.meta.index:
            covered = self._snapshot.meta.index
            raise StorageError(f"cannot compact to {index}: the snapshot covers only up to {covered}")
        term = self.term(index)
        with self._transaction():
            self._db.execute("DELETE FROM entries WHERE idx <= ?", (index,))
            self._put_meta("offset", (index, term))
        del self._terms[: index - self._offset]
        self._offset, self._offset_term = index, term

    def sync(self) -> None:
        """Nothing to do: every transaction is already durable when ``save`` returns."""

    def _put_meta(self, key: str, value: object) -> None:
        blob = msgspec.msgpack.encode(value)
        self._db.execute(
            "INSERT INTO meta (key, value, crc) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, crc = excluded.crc",
            (key, blob, zlib.crc32(blob)),
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
