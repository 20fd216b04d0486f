"""A small synchronous in-memory network of Raft nodes for readable scenario tests (as h11's
ConnectionPair).

Nothing is random except the election jitter (seeded), and nothing moves unless the test says so: ``tick`` a
node, then ``settle`` delivers every message (honouring cut links and crashed nodes) until the network is
quiet.
Each node's state machine is the list of applied NORMAL entries' data, so tests can compare them directly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import msgspec

from hakeeper.messaging.raft.core import (
    ProposeResult,
    RaftConfig,
    RaftNode,
    ReadState,
    Ready,
    Rejected,
    Role,
    bootstrap,
)
from hakeeper.messaging.raft.driver import process_ready
from hakeeper.messaging.raft.messages import Entry, EntryKind, Message, Snapshot
from hakeeper.messaging.raft.storage import MemoryStorage


@dataclass
class NetNode:
    raft: RaftNode
    storage: MemoryStorage
    applied: list[bytes] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    up: bool = True


class RaftNet:
    def __init__(
        self, voters: list[int], *, witnesses: list[int] | None = None, seed: int = 0, **config: int | bool
    ) -> None:
        self._seed = seed
        self._config = config
        self.witnesses = set(witnesses or [])
        self.nodes: dict[int, NetNode] = {}
        self.cut: set[tuple[int, int]] = set()  # directed links that drop everything
        self.sent: list[Message] = []  # every message delivered, for assertions
        hs, entries = bootstrap(voters, sorted(self.witnesses))
        for nid in [*voters, *sorted(self.witnesses)]:
            storage = MemoryStorage()
            storage.save(hs, entries, None)
            storage.sync()
            self.nodes[nid] = NetNode(self._make(nid, storage), storage)
        self.settle()

    def _make(self, nid: int, storage: MemoryStorage, applied: int = 0) -> RaftNode:
        cfg = RaftConfig(node_id=nid, witness=nid in self.witnesses, **self._config)  # type: ignore[arg-type]
        return RaftNode(cfg, storage, random.Random(self._seed * 1000 + nid), applied=applied)

    def add_empty_node(self, nid: int, witness: bool = False) -> NetNode:
        """A brand-new machine: empty storage, knows nothing until a leader contacts it."""
        if witness:
            self.witnesses.add(nid)
        storage = MemoryStorage()
        node = NetNode(self._make(nid, storage), storage)
        self.nodes[nid] = node
        return node

    def raft(self, nid: int) -> RaftNode:
        return self.nodes[nid].raft

    # -- driving --
    def tick(self, nid: int, times: int = 1) -> None:
        for _ in range(times):
            self.nodes[nid].raft.tick()

    def tick_all(self, times: int = 1) -> None:
        for _ in range(times):
            for node in self.nodes.values():
                if node.up:
                    node.raft.tick()
            self.settle()

    def elect(self, nid: int) -> None:
        """Make ``nid`` time out and run its election to completion."""
        node = self.nodes[nid].raft
        for _ in range(node.config.election_ticks * 2):
            node.tick()
            if node.role is not Role.FOLLOWER:
                break
        self.settle()

    def propose(self, nid: int, data: bytes) -> ProposeResult:
        result = self.nodes[nid].raft.propose(data)
        self.settle()
        return result

    def settle(self, max_rounds: int = 10_000) -> None:
        for _ in range(max_rounds):
            moved = False
            for nid, node in self.nodes.items():
                if node.up and node.raft.has_ready():
                    moved = True
                    self._handle_ready(nid, node)
            if not moved:
                return
        raise RuntimeError("the network did not settle")

    def _handle_ready(self, nid: int, node: NetNode) -> None:
        outbox: list[Message] = []
        process_ready(node.raft, node.storage, outbox.append, _ListMachine(node), node.read_states.append)
        for msg in outbox:
            self._route(msg)

    def _route(self, msg: Message) -> None:
        target = self.nodes.get(msg.to)
        if target is None or not target.up or (msg.frm, msg.to) in self.cut:
            return
        self.sent.append(msg)
        target.raft.step(msg)

    def take_ready(self, nid: int) -> Ready:
        """For tests that want to look at one Ready without the network acting on it."""
        return self.nodes[nid].raft.ready()

    # -- faults --
    def isolate(self, nid: int) -> None:
        for other in self.nodes:
            if other != nid:
                self.cut |= {(nid, other), (other, nid)}

    def heal(self) -> None:
        self.cut.clear()

    def crash(self, nid: int) -> None:
        node = self.nodes[nid]
        node.up = False
        node.storage.crash()

    def restart(self, nid: int) -> None:
        node = self.nodes[nid]
        snap = node.storage.snapshot()
        node.applied = msgspec.msgpack.decode(snap.data, type=list[bytes]) if snap.data else []
        node.raft = self._make(nid, node.storage)
        node.up = True

    def compact(self, nid: int) -> None:
        """Take an application snapshot of ``nid`` at its applied index and drop the log before it."""
        node = self.nodes[nid]
        index = node.raft.applied_index
        data = msgspec.msgpack.encode(node.applied)
        node.storage.create_snapshot(index, node.raft.conf_state_at(index), data)
        node.storage.compact(index)
        node.storage.sync()

    def leaders(self) -> list[int]:
        return [nid for nid, n in self.nodes.items() if n.up and n.raft.is_leader]


class _ListMachine:
    """The test state machine: the list of applied NORMAL payloads."""

    def __init__(self, node: NetNode) -> None:
        self._node = node

    def restore(self, snapshot: Snapshot) -> None:
        data = snapshot.data
        self._node.applied = msgspec.msgpack.decode(data, type=list[bytes]) if data else []

    def apply(self, entry: Entry) -> None:
        if entry.kind is EntryKind.NORMAL:
            self._node.applied.append(entry.data)


def rejected(result: ProposeResult) -> bool:
    return isinstance(result, Rejected)
