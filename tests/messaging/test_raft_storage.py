"""Durable storage: SQLite round trip, crash semantics of the in-memory store, corruption detection."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from pathlib import Path

import msgspec
import pytest

from hakeeper.messaging.raft.core import Accepted, RaftConfig, RaftNode, bootstrap
from hakeeper.messaging.raft.driver import process_ready
from hakeeper.messaging.raft.messages import ConfState, Entry, EntryKind, HardState, Message, Snapshot
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
    while node.has_ready():  # a single voter commits once its own write is durable: two rounds
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


class _Applied:
    def __init__(self) -> None:
        self.items: list[bytes] = []

    def restore(self, snapshot: Snapshot) -> None:
        self.items = snapshot.data.split(b",") if snapshot.data else []

    def apply(self, entry: Entry) -> None:
        if entry.kind is EntryKind.NORMAL:
            self.items.append(entry.data)


class _SqliteCluster:
    """Three nodes on SQLite files driven through process_ready, with restarts that reopen the files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stores: dict[int, SqliteStorage] = {}
        self.nodes: dict[int, RaftNode] = {}
        self.machines = {n: _Applied() for n in (1, 2, 3)}
        hs, entries = bootstrap([1, 2, 3])
        for n in (1, 2, 3):
            store = SqliteStorage(root / f"node{n}.db")
            store.save(hs, entries, None)
            store.close()
            self.open(n)

    def open(self, n: int) -> None:
        self.stores[n] = SqliteStorage(self.root / f"node{n}.db")
        self.machines[n] = _Applied()
        self.nodes[n] = RaftNode(RaftConfig(node_id=n), self.stores[n], random.Random(n))

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            for node in self.nodes.values():
                node.tick()
            self.settle()

    def settle(self) -> None:
        moved = True
        while moved:
            moved = False
            for n, node in self.nodes.items():
                outbox: list[Message] = []
                if process_ready(node, self.stores[n], outbox.append, self.machines[n]):
                    moved = True
                for msg in outbox:
                    self.nodes[msg.to].step(msg)

    def leader(self) -> RaftNode:
        [leader] = [n for n in self.nodes.values() if n.is_leader]
        return leader


def test_three_nodes_on_sqlite_restart_from_their_files(tmp_path: Path) -> None:
    cluster = _SqliteCluster(tmp_path)
    cluster.run(40)
    leader = cluster.leader()
    for word in (b"a", b"b", b"c"):
        assert isinstance(leader.propose(word), Accepted)
    cluster.settle()
    cluster.run(2)
    for n in (1, 2, 3):
        cluster.stores[n].close()
        cluster.open(n)  # every node restarts from its file; state machines start empty
    cluster.run(60)
    leader = cluster.leader()
    assert isinstance(leader.propose(b"d"), Accepted)
    cluster.settle()
    cluster.run(2)
    assert all(m.items == [b"a", b"b", b"c", b"d"] for m in cluster.machines.values())
    assert leader.term > 2  # a new election happened after the restart, from the persisted terms


@pytest.mark.parametrize("cut", [1, 100, 1000, 4000])
def test_sqlite_torn_tail_reopens_at_the_last_whole_transaction(tmp_path: Path, cut: int) -> None:
    """A crash in the middle of the last transaction leaves a torn WAL tail; SQLite's recovery ignores
    frames without a valid commit record, so the store reopens at the previous transaction."""
    live = tmp_path / "live"
    live.mkdir()
    store = SqliteStorage(live / "raft.db")
    store.save(HardState(1, 1, 2), _entries(1, 2, 1), None)
    big = [Entry(1, i, EntryKind.NORMAL, bytes(500)) for i in range(3, 13)]
    store.save(HardState(1, 1, 12), big, None)
    # Copy the files as a crash would leave them: the database and a WAL cut short inside the last write.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    (crashed / "raft.db").write_bytes((live / "raft.db").read_bytes())
    wal = (live / "raft.db-wal").read_bytes()
    assert len(wal) > cut
    (crashed / "raft.db-wal").write_bytes(wal[: len(wal) - cut])
    store.close()

    reopened = SqliteStorage(crashed / "raft.db")
    assert reopened.last_index() == 2  # the torn last transaction is dropped whole
    hs = reopened.initial_state()[0]
    assert hs.commit == reopened.last_index()  # hard state and entries were written in one transaction
    assert [e.index for e in reopened.entries(1, reopened.last_index() + 1)] == list(
        range(1, reopened.last_index() + 1)
    )


def _stored_hard_state(path: Path) -> HardState:
    """What another process would read from the file right now."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'hard_state'").fetchone()
    return msgspec.msgpack.decode(row[0], type=HardState)


def test_sqlite_defers_a_commit_only_hard_state_but_never_term_or_vote(tmp_path: Path) -> None:
    """No fsync just to move the commit index (a restarted node learns it from the leader again); a new
    term or vote, and anything saved with entries, is written at once."""
    path = tmp_path / "raft.db"
    store = SqliteStorage(path)
    store.save(HardState(1, 1, 0), _entries(1, 3, 1), None)
    store.save(HardState(1, 1, 2), [], None)  # commit only
    assert _stored_hard_state(path) == HardState(1, 1, 0)
    assert store.initial_state()[0] == HardState(1, 1, 2)
    store.save(None, _entries(4, 4, 1), None)  # the next durable write carries the newer commit along
    assert _stored_hard_state(path) == HardState(1, 1, 2)
    store.save(HardState(2, 0, 2), [], None)  # a new term must be durable before anything is sent
    assert _stored_hard_state(path) == HardState(2, 0, 2)
    store.save(HardState(2, 0, 4), [], None)
    store.close()  # a clean shutdown writes what was deferred
    assert SqliteStorage(path).initial_state()[0] == HardState(2, 0, 4)
