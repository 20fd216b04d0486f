"""Durable storage: SQLite round trip, crash semantics of the in-memory store, corruption detection."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from hakeeper.messaging.raft.core import RaftConfig, RaftNode, bootstrap
from hakeeper.messaging.raft.messages import ConfState, Entry, EntryKind, HardState
from hakeeper.messaging.raft.sqlite_storage import SqliteStorage
from hakeeper.messaging.raft.storage import (
    CompactedError,
    MemoryStorage,
    StorageCorruptionError,
    UnavailableError,
)


def _entries(first: int, last: int, term: int) -> list[Entry]:
    return [Entry(term, i, EntryKind.NORMAL, f"payload-{i}".encode()) for i in range(first, last + 1)]


def test_sqlite_write_reopen_read_back(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    store = SqliteStorage(path)
    store.save(HardState(term=3, vote=2, commit=4), _entries(1, 5, 3), None)
    store.save(None, _entries(4, 6, 4), None)  # overwrites a divergent tail from index 4
    store.close()

    again = SqliteStorage(path)
    assert again.initial_state() == (HardState(term=3, vote=2, commit=4), ConfState())
    assert again.first_index() == 1 and again.last_index() == 6
    assert [e.term for e in again.entries(1, 7)] == [3, 3, 3, 4, 4, 4]
    assert again.entries(6, 7)[0].data == b"payload-6"
    assert again.term(0) == 0
    with pytest.raises(UnavailableError):
        again.term(7)
    # WAL mode with synchronous=FULL, as the Ready contract needs
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sqlite_snapshot_and_compaction_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    store = SqliteStorage(path)
    store.save(HardState(2, 1, 8), _entries(1, 10, 2), None)
    conf = ConfState(voters=(1, 2, 3))
    store.create_snapshot(8, conf, b"state@8")
    store.compact(6)
    store.close()

    again = SqliteStorage(path)
    assert again.first_index() == 7 and again.last_index() == 10
    assert again.snapshot().meta.index == 8 and again.snapshot().meta.conf == conf
    assert again.snapshot().data == b"state@8"
    assert again.term(6) == 2
    with pytest.raises(CompactedError):
        again.entries(5, 8)


def test_sqlite_corrupted_row_stops_the_node_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    store = SqliteStorage(path)
    store.save(HardState(1, 1, 3), _entries(1, 5, 1), None)
    store.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE entries SET data = ? WHERE idx = 3", (b"tampered",))
    db.commit()
    db.close()

    with pytest.raises(StorageCorruptionError, match=r"log entry 3 fails its checksum") as err:
        SqliteStorage(path)
    assert str(path) in str(err.value)
    assert "stops rather than serve bad data" in str(err.value)


def test_sqlite_flipped_byte_in_file_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    store = SqliteStorage(path)
    marker = b"MARKER-" + b"x" * 40
    store.save(
        HardState(1, 1, 2), [Entry(1, 1, EntryKind.NORMAL, b"a"), Entry(1, 2, EntryKind.NORMAL, marker)], None
    )
    store.close()  # the last connection checkpoints the WAL into the main file
    raw = bytearray(path.read_bytes())
    at = raw.find(marker)
    assert at > 0
    raw[at + 10] ^= 0xFF  # a bit rot inside the entry's payload
    path.write_bytes(bytes(raw))

    with pytest.raises(StorageCorruptionError, match="entry 2"):
        SqliteStorage(path)


def test_sqlite_gap_in_log_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    store = SqliteStorage(path)
    store.save(HardState(1, 1, 1), _entries(1, 4, 1), None)
    store.close()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM entries WHERE idx = 2")
    db.commit()
    db.close()
    with pytest.raises(StorageCorruptionError, match="jumps from index 1 to 3"):
        SqliteStorage(path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageCorruptionError, match="SQLite cannot read it"):
        SqliteStorage(path)


def test_raft_node_restarts_from_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "raft.db"
    store = SqliteStorage(path)
    hs, entries = bootstrap([1])
    store.save(hs, entries, None)
    node = RaftNode(RaftConfig(node_id=1), store, random.Random(1))
    for _ in range(30):
        node.tick()
    assert node.is_leader
    node.propose(b"hello")
    rd = node.ready()
    store.save(rd.hard_state, rd.entries, rd.snapshot)
    node.advance(rd)
    store.close()

    reopened = SqliteStorage(path)
    again = RaftNode(RaftConfig(node_id=1), reopened, random.Random(2))
    assert again.term == node.term and again.vote == 1
    assert again.commit_index == node.commit_index == 3
    assert reopened.entries(3, 4)[0].data == b"hello"
    assert again.voters == (1,)


def test_memory_storage_loses_unsynced_writes_at_crash() -> None:
    store = MemoryStorage()
    store.save(HardState(1, 0, 0), _entries(1, 2, 1), None)
    store.sync()
    store.save(HardState(2, 3, 0), _entries(3, 4, 2), None)
    assert store.last_index() == 4  # visible before sync, like a page cache
    store.crash()
    assert store.last_index() == 2
    assert store.initial_state()[0] == HardState(1, 0, 0)


def test_commit_beyond_log_is_reported_as_corruption() -> None:
    store = MemoryStorage()
    store.save(HardState(1, 0, 5), _entries(1, 2, 1), None)
    with pytest.raises(StorageCorruptionError, match="beyond the last stored entry"):
        RaftNode(RaftConfig(node_id=1), store, random.Random(0))
