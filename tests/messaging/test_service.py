"""The message service in one process: several nodes on 127.0.x.y loopback, real UDP and SQLite."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest

from hakeeper.messaging.api import (
    Event,
    LeaderChanged,
    NodeLeft,
    NoQuorum,
    NotLeader,
    PeerMessage,
    ProposalTooLarge,
    QuorumChanged,
)
from hakeeper.messaging.node_core import NodeCoreConfig
from hakeeper.messaging.service import MessageService, ServiceConfig, ServiceStopped
from hakeeper.messaging.transport import Address
from hakeeper.messaging.witness_server import WitnessServer

KEY = bytes(range(32))
FAST = {"heartbeat_interval": 0.05, "failure_timeout": 0.3, "election_timeout": 0.5}


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class ListApp:
    """The state machine: the list of applied entries. Snapshots are the whole list."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, bytes]] = []
        self.restores = 0

    def apply(self, index: int, data: bytes) -> None:
        assert not self.entries or index > self.entries[-1][0], "entries applied out of order or twice"
        self.entries.append((index, data))

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(self.entries)

    def restore(self, data: bytes) -> None:
        self.entries = [tuple(e) for e in msgspec.msgpack.decode(data)]  # type: ignore[misc]
        self.restores += 1

    @property
    def data(self) -> list[bytes]:
        return [d for _, d in self.entries]


class Node:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.app = ListApp()
        self.events: list[Event] = []
        self.service = MessageService(config, self.app, self.events.append)

    async def restart(self, app: ListApp | None = None) -> None:
        self.app = app or ListApp()
        self.service = MessageService(self.config, self.app, self.events.append)
        await self.service.start()


class Cluster:
    def __init__(self, nodes: dict[int, Node]) -> None:
        self.nodes = nodes
        self.down: set[int] = set()

    def live(self) -> list[Node]:
        return [n for i, n in self.nodes.items() if i not in self.down]

    def leader(self) -> Node | None:
        leaders = [n for n in self.live() if n.service.is_leader]
        return leaders[0] if len(leaders) == 1 else None

    async def wait_leader(self) -> Node:
        await wait_for(lambda: self.leader() is not None and self.leader_known())
        leader = self.leader()
        assert leader is not None
        return leader

    def leader_known(self) -> bool:
        leader = self.leader()
        return (
            leader is not None
            and leader.service.quorum.quorate
            and all(n.service.leader == leader.config.node_id for n in self.live())
        )

    async def stop(self, node_id: int) -> None:
        self.down.add(node_id)
        await self.nodes[node_id].service.close()


@asynccontextmanager
async def cluster(
    tmp_path: Path, size: int, net: int = 6, witness: Address | None = None, **options: object
) -> AsyncIterator[Cluster]:
    addrs: dict[int, list[Address]] = {}
    for n in range(1, size + 1):
        host = f"127.0.{net}.{n + 10}"
        addrs[n] = [(host, free_port(host))]
    nodes = {
        n: Node(
            ServiceConfig(
                node_id=n,
                cluster_name="svc",
                cluster_key=KEY,
                nodes=addrs,
                data_dir=tmp_path / f"node{n}",
                witness=witness,
                seed=n,
                **FAST,  # type: ignore[arg-type]
                **options,  # type: ignore[arg-type]
            )
        )
        for n in addrs
    }
    c = Cluster(nodes)
    try:
        for node in nodes.values():
            await node.service.start()
        yield c
    finally:
        for i, node in nodes.items():
            if i not in c.down:
                await node.service.close()


async def test_elect_propose_and_commit_in_order_everywhere(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3) as c:
        leader = await c.wait_leader()
        first = await leader.service.propose(b"one")
        # Many concurrent proposals share Ready batches and still commit in proposal order.
        indexes = await asyncio.gather(*(leader.service.propose(f"x{i}".encode()) for i in range(200)))
        assert indexes == list(range(first + 1, first + 201))
        assert leader.service.counters["proposal_batches"] < 100  # proposals share Raft rounds
        expected = [b"one"] + [f"x{i}".encode() for i in range(200)]
        await wait_for(lambda: all(n.app.data == expected for n in c.nodes.values()))
        for node in c.nodes.values():
            assert [i for i, _ in node.app.entries] == [first, *indexes]
            leaders = [e.leader for e in node.events if isinstance(e, LeaderChanged)]
            assert leaders[-1] == leader.config.node_id
            assert node.service.quorum.quorate
            assert any(isinstance(e, QuorumChanged) and e.state.quorate for e in node.events)


async def test_followers_refuse_with_a_hint_and_limits_are_enforced(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, net=7, core=NodeCoreConfig(max_proposal_bytes=1000)) as c:
        leader = await c.wait_leader()
        follower = next(n for n in c.nodes.values() if n is not leader)
        with pytest.raises(NotLeader) as refused:
            await follower.service.propose(b"nope")
        assert refused.value.leader_hint == leader.config.node_id
        with pytest.raises(ProposalTooLarge, match="exceeds the limit"):
            await leader.service.propose(b"x" * 1001)


async def test_leader_loss_elects_a_new_leader_that_keeps_committing(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, net=8) as c:
        old = await c.wait_leader()
        await old.service.propose(b"before")
        await c.stop(old.config.node_id)
        new = await c.wait_leader()
        assert new is not old and new.service.term > old.service.term
        index = await new.service.propose(b"after")
        await wait_for(lambda: all(n.app.data[-2:] == [b"before", b"after"] for n in c.live()))
        assert all(n.app.entries[-1] == (index, b"after") for n in c.live())
        # Every survivor's failure detector saw the old leader leave.
        await wait_for(
            lambda: all(
                any(isinstance(e, NodeLeft) and e.node == old.config.node_id for e in n.events)
                for n in c.live()
            )
        )


async def test_node_to_node_messages(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, net=9) as c:
        await c.wait_leader()
        await wait_for(lambda: all(n.service.quorum.quorate for n in c.nodes.values()))
        assert c.nodes[1].service.send(3, b"run op 42")
        assert not c.nodes[1].service.send(99, b"nobody")
        await wait_for(lambda: PeerMessage(1, b"run op 42") in c.nodes[3].events)
        assert not any(isinstance(e, PeerMessage) for e in c.nodes[2].events)


async def test_losing_quorum_is_an_event_and_stops_commits(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, net=10) as c:
        leader = await c.wait_leader()
        await wait_for(lambda: leader.service.quorum.quorate)
        for n in list(c.nodes):
            if n != leader.config.node_id:
                await c.stop(n)
        await wait_for(lambda: not leader.service.quorum.quorate)
        lost = [e for e in leader.events if isinstance(e, QuorumChanged) and not e.state.quorate]
        assert lost and lost[-1].state.members == {leader.config.node_id}
        assert lost[-1].state == leader.service.quorum
        with pytest.raises((NoQuorum, NotLeader)):
            await leader.service.propose(b"alone")
        # Check-quorum: the lone leader steps down within an election timeout.
        await wait_for(lambda: not leader.service.is_leader)


async def test_restart_replays_committed_entries_exactly_once(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, net=11) as c:
        leader = await c.wait_leader()
        for i in range(5):
            await leader.service.propose(f"e{i}".encode())
        victim = next(n for n in c.nodes.values() if n is not leader)
        await wait_for(lambda: len(victim.app.data) == 5)
        await victim.service.close()
        for i in range(5, 8):
            await leader.service.propose(f"e{i}".encode())
        await victim.restart()
        await wait_for(lambda: len(victim.app.data) == 8)
        assert victim.app.data == [f"e{i}".encode() for i in range(8)]


async def test_snapshots_compact_the_log_and_catch_up_a_node_far_behind(tmp_path: Path) -> None:
    core = NodeCoreConfig(snapshot_every=50, keep_after_snapshot=10)
    async with cluster(tmp_path, 3, net=12, core=core) as c:
        leader = await c.wait_leader()
        victim = next(n for n in c.nodes.values() if n is not leader)
        await c.stop(victim.config.node_id)
        c.down.discard(victim.config.node_id)
        big = b"y" * 2000  # 120 entries of 2 KB: the snapshot is split over several frames
        for batch in range(3):
            await asyncio.gather(*(leader.service.propose(big + bytes([batch, i])) for i in range(40)))
        assert leader.service.core.last_snapshot_index >= 50
        await victim.restart()
        await wait_for(lambda: len(victim.app.data) == 120)
        assert victim.app.restores >= 1, "a node far behind catches up from a snapshot"
        assert victim.app.data == leader.app.data
        # A restart of the leader's data restores its own snapshot and replays the rest.
        again = ListApp()
        await c.stop(leader.config.node_id)
        await leader.restart(again)
        c.down.discard(leader.config.node_id)
        await wait_for(lambda: again.data == victim.app.data)
        assert again.restores == 1


async def test_two_nodes_and_a_witness_keep_committing_after_either_loss(tmp_path: Path) -> None:
    witness_addr: Address = ("127.0.13.1", free_port("127.0.13.1"))
    server = WitnessServer(witness_addr, cluster_key=KEY, cluster_name="svc")
    await server.start()
    try:
        async with cluster(tmp_path, 2, net=13, witness=witness_addr) as c:
            leader = await c.wait_leader()
            await leader.service.propose(b"both")
            await c.stop(leader.config.node_id)
            survivor = c.live()[0]
            await wait_for(lambda: survivor.service.quorum.quorate and survivor.service.is_leader)
            assert survivor.service.quorum.witness_vote
            await survivor.service.propose(b"alone")
            assert survivor.app.data == [b"both", b"alone"]
    finally:
        await server.close()


async def test_two_node_survivor_commits_alone_only_after_its_peer_is_fenced(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2, net=14, two_node=True) as c:
        await wait_for(lambda: all(n.service.quorum.quorate for n in c.nodes.values()))
        leader = await c.wait_leader()
        await leader.service.propose(b"together")
        victim = next(n for n in c.nodes.values() if n is not leader)
        await c.stop(victim.config.node_id)
        survivor = leader
        await wait_for(lambda: survivor.service.quorum.awaiting_fence == {victim.config.node_id})
        assert not survivor.service.quorum.quorate
        with pytest.raises((NoQuorum, NotLeader)):
            await survivor.service.propose(b"too early")
        survivor.service.fencing_confirmed(victim.config.node_id)
        assert survivor.service.quorum.quorate
        await wait_for(lambda: survivor.service.is_leader)
        await survivor.service.propose(b"alone")
        assert survivor.app.data[-1] == b"alone" and b"too early" not in survivor.app.data


async def test_proposals_bigger_than_a_packet_replicate(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, net=15) as c:
        leader = await c.wait_leader()
        blobs = [bytes([i]) * 150_000 for i in range(4)]  # one AppendEntries batch of ~600 KB
        await asyncio.gather(*(leader.service.propose(b) for b in blobs))
        await wait_for(lambda: all(n.app.data == blobs for n in c.nodes.values()))


class BrokenApp(ListApp):
    def apply(self, index: int, data: bytes) -> None:
        if data == b"poison":
            raise RuntimeError("the application cannot apply this entry")
        super().apply(index, data)


async def test_a_failing_application_stops_the_node_instead_of_diverging(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3, net=16) as c:
        leader = await c.wait_leader()
        victim = next(n for n in c.nodes.values() if n is not leader)
        await c.stop(victim.config.node_id)
        c.down.discard(victim.config.node_id)
        await victim.restart(BrokenApp())
        await wait_for(lambda: all(n.service.quorum.members == frozenset(c.nodes) for n in c.live()))
        leader = await c.wait_leader()
        await leader.service.propose(b"fine")
        await leader.service.propose(b"poison")
        await wait_for(lambda: victim.service.transport.local_addresses == [])  # it left the network
        assert victim.app.data == [b"fine"]
        with pytest.raises(ServiceStopped, match="cannot apply this entry"):
            await victim.service.propose(b"more")


async def test_periodic_work_of_the_layers_above(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``every``: the CRM's periodic work on the message layer's timer and beat; a failing run is logged
    and the next one comes, and the function it returns stops it."""
    async with cluster(tmp_path, 3, net=12) as c:
        await c.wait_leader()
        runs: dict[int, list[float]] = {1: [], 3: []}  # node 1 keeps time, node 3 follows its beat

        def work(node: int) -> Callable[[float], None]:
            def run(now: float) -> None:
                runs[node].append(now)
                if len(runs[node]) == 2:
                    raise RuntimeError("a failing periodic job")

            return run

        stops = [c.nodes[n].service.every(0.1, work(n)) for n in runs]
        await wait_for(lambda: all(len(r) >= 5 for r in runs.values()))
        assert "a failing periodic job" in caplog.text
        for stop in stops:
            stop()
        counts = {n: len(r) for n, r in runs.items()}
        await asyncio.sleep(0.3)
        assert {n: len(r) for n, r in runs.items()} == counts
