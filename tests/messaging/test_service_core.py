"""The sans-I/O parts of the node service: framing, the quorum rule, and NodeCore driven in memory."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.messaging.api import LeaderChanged, NoQuorum, NotLeader, ProposalTooLarge
from hakeeper.messaging.node_core import (
    FRAME_DATA_BYTES,
    NodeCore,
    NodeCoreConfig,
    Part,
    ProposalDone,
    Reassembler,
    _frame_encoder,
    split_message,
)
from hakeeper.messaging.quorum import Quorum, QuorumConfig, QuorumState
from hakeeper.messaging.quorum_rule import FollowQuorum
from hakeeper.messaging.raft.core import RaftConfig, RaftNode, Role, bootstrap
from hakeeper.messaging.raft.quorum_math import VoteResult
from hakeeper.messaging.raft.storage import MemoryStorage
from hakeeper.messaging.service import FramePacer, ServiceConfig

# --- framing --------------------------------------------------------------------------------------


def test_small_messages_are_one_frame_and_big_ones_are_split_and_reassembled() -> None:
    r = Reassembler()
    assert r.feed(0.0, 1, split_message(b"hello", 1)[0]) == b"hello"
    big = random.Random(1).randbytes(3 * FRAME_DATA_BYTES + 5)
    frames = split_message(big, 7)
    assert len(frames) == 4 and all(len(f) < 65_000 - 100 for f in frames)
    random.Random(2).shuffle(frames)  # UDP reorders
    results = [r.feed(0.0, 1, f) for f in frames]
    assert results[:-1] == [None] * 3 and results[-1] == big


def test_reassembly_drops_duplicates_bad_parts_and_stale_or_excess_partials() -> None:
    r = Reassembler(max_partial=2, max_age=1.0)
    big = bytes(2 * FRAME_DATA_BYTES)
    first, _second = split_message(big, 1)
    assert r.feed(0.0, 1, first) is None
    assert r.feed(0.0, 1, first) is None  # a duplicate part
    assert r.counters["dropped_bad_part"] == 1
    assert r.feed(0.0, 1, _frame_encoder.encode(Part(2, 5, 3, b"x"))) is None  # number >= total
    assert r.feed(0.0, 1, b"\xc1garbage") is None
    assert r.counters["dropped_malformed_frame"] == 1
    for msg_id in (3, 4):  # more partial messages than allowed: the oldest goes
        r.feed(0.5, 1, split_message(big, msg_id)[0])
    assert r.counters["dropped_evicted_partial"] == 1
    r.feed(5.0, 1, split_message(big, 9)[0])  # much later: the old partials are stale
    assert r.counters["dropped_stale_partial"] >= 1
    assert r.feed(5.0, 1, split_message(big, 9)[1]) == big


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_fed_to_the_reassembler_never_raise(data: bytes) -> None:
    Reassembler().feed(0.0, 1, data)


# --- the quorum rule ------------------------------------------------------------------------------


def state(quorate: bool, members: set[int]) -> QuorumState:
    return QuorumState(quorate, frozenset(members), len(members), 2, 3)


def test_follow_quorum_is_majority_unless_the_quorum_core_lets_a_lone_node_act() -> None:
    rule = FollowQuorum(1, lone_allowed=True)
    voters = (1, 2)
    assert rule.vote_result(voters, {1: True}) is VoteResult.PENDING
    assert rule.committed_index(voters, {1: 9, 2: 4}) == 4
    assert not rule.has_quorum(voters, [1])
    rule.update(state(True, {1}))  # the witness gave node 1 its vote: it may act alone
    assert rule.vote_result(voters, {1: True}) is VoteResult.WON
    assert rule.committed_index(voters, {1: 9, 2: 4}) == 9
    assert rule.has_quorum(voters, [1])
    assert rule.vote_result((1, 2, 3), {1: True}) is VoteResult.PENDING  # only for two voters
    rule.update(state(True, {1, 2}))  # the peer is back: strict majority again
    assert rule.committed_index(voters, {1: 9, 2: 4}) == 4
    rule.update(state(False, {1}))
    assert not rule.has_quorum(voters, [1])


def test_follow_quorum_without_two_node_or_witness_never_relaxes() -> None:
    rule = FollowQuorum(1, lone_allowed=False)
    rule.update(state(True, {1}))
    assert not rule.alone
    assert rule.vote_result((1, 2), {1: True}) is VoteResult.PENDING


# --- NodeCore in memory ---------------------------------------------------------------------------


class MemNet:
    """Three NodeCores over MemoryStorage; frames are delivered in order, instantly."""

    def __init__(self, size: int = 3, config: NodeCoreConfig | None = None) -> None:
        ids = list(range(1, size + 1))
        self.storages = {n: MemoryStorage() for n in ids}
        self.applied: dict[int, list[tuple[int, bytes]]] = {n: [] for n in ids}
        self.cores: dict[int, NodeCore] = {}
        self.outputs: dict[int, list[object]] = {n: [] for n in ids}
        self.cut: set[int] = set()
        for n in ids:
            hs, entries = bootstrap(ids)
            self.storages[n].save(hs, entries, None)
            rule = FollowQuorum(n, lone_allowed=False)
            raft = RaftNode(RaftConfig(node_id=n), self.storages[n], random.Random(n), quorum=rule)
            quorum = Quorum(n, QuorumConfig({i: 1 for i in ids}), now=0.0)
            self.cores[n] = NodeCore(raft, quorum, rule, config)
            self.cores[n].on_members(0.0, frozenset(ids) - {n})

    def run(self) -> None:
        busy = True
        while busy:
            busy = False
            for n, core in self.cores.items():
                core.flush_proposals()
                while (work := core.next_work(0.0)) is not None:
                    busy = True
                    self.storages[n].save(work.hard_state, work.entries, work.snapshot)
                    for peer, frame in work.early_frames + work.raft_frames:
                        if n not in self.cut and peer not in self.cut:
                            self.cores[peer].on_raft_frame(0.0, n, frame)
                    self.applied[n].extend(work.apply)
                    core.advance(work)
                self.outputs[n].extend(core.take_outputs())

    def elect(self) -> int:
        for _ in range(100):
            for core in self.cores.values():
                core.tick()
            self.run()
            leaders = [n for n, c in self.cores.items() if c.raft.is_leader]
            if leaders:
                return leaders[0]
        raise AssertionError("no leader elected")

    def results(self, n: int) -> dict[int, int | Exception]:
        return {o.token: o.result for o in self.outputs[n] if isinstance(o, ProposalDone)}


def test_a_batch_of_proposals_commits_in_order_and_resolves_each_token() -> None:
    net = MemNet()
    leader = net.elect()
    for token in range(1, 51):
        net.cores[leader].propose(token, f"p{token}".encode())
    net.run()
    results = net.results(leader)
    assert sorted(results) == list(range(1, 51))
    indexes = [results[t] for t in range(1, 51)]
    assert indexes == list(range(indexes[0], indexes[0] + 50))
    for n in net.cores:
        assert [d for _, d in net.applied[n]] == [f"p{t}".encode() for t in range(1, 51)]
    assert any(isinstance(o, LeaderChanged) and o.leader == leader for o in net.outputs[leader])


def test_refusals_not_leader_no_quorum_and_too_large() -> None:
    net = MemNet(config=NodeCoreConfig(max_proposal_bytes=10))
    leader = net.elect()
    follower = next(n for n in net.cores if n != leader)
    net.cores[follower].propose(1, b"x")
    net.cores[leader].propose(2, b"x" * 11)
    net.cores[leader].on_members(1.0, frozenset())  # the failure detector lost both peers
    net.cores[leader].propose(3, b"x")
    net.run()
    refused = net.results(follower)[1]
    assert isinstance(refused, NotLeader) and refused.leader_hint == leader
    assert isinstance(net.results(leader)[2], ProposalTooLarge)
    assert isinstance(net.results(leader)[3], NoQuorum)


def test_a_proposal_overwritten_by_a_new_leader_fails_instead_of_hanging() -> None:
    net = MemNet()
    old = net.elect()
    net.cut.add(old)
    net.cores[old].propose(1, b"lost")  # appended on the isolated leader only
    net.run()
    net.cut.clear()
    others = [n for n in net.cores if n != old]
    for _ in range(100):  # the others elect a new leader without the old one
        for n in others:
            net.cores[n].tick()
        net.cut.add(old)
        net.run()
        net.cut.clear()
        if any(net.cores[n].raft.is_leader for n in others):
            break
    new = next(n for n in others if net.cores[n].raft.is_leader)
    net.cores[new].propose(1, b"kept")
    net.run()  # the old leader rejoins and its entry at that index is replaced
    for _ in range(3):
        net.cores[new].tick()
        net.run()
    lost = net.results(old)[1]
    assert isinstance(lost, NotLeader) and "another term" in str(lost)
    assert [d for _, d in net.applied[old]] == [b"kept"]


@pytest.mark.parametrize("every", [5, 20])
def test_snapshot_due_after_every_n_applied_entries(every: int) -> None:
    net = MemNet(config=NodeCoreConfig(snapshot_every=every, keep_after_snapshot=2))
    leader = net.elect()
    core = net.cores[leader]
    assert core.snapshot_due() is None
    for token in range(every):
        core.propose(token, b"e")
    net.run()
    due = core.snapshot_due()
    assert due is not None and due == core.raft.applied_index
    assert core.snapshot_taken(due) == due - 2
    assert core.snapshot_due() is None


def test_only_a_settled_leaders_replication_may_leave_before_its_ready_is_persisted() -> None:
    net = MemNet()
    leader = net.elect()
    core = net.cores[leader]
    core.propose(1, b"x")
    core.flush_proposals()
    work = core.next_work(0.0)
    assert work is not None and work.entries and work.early_frames and not work.raft_frames
    net.storages[leader].save(work.hard_state, work.entries, work.snapshot)
    follower = next(n for n in net.cores if n != leader)
    for peer, frame in work.early_frames:
        if peer == follower:
            net.cores[follower].on_raft_frame(0.0, leader, frame)
    core.advance(work)
    answer = net.cores[follower].next_work(0.0)
    assert answer is not None and answer.entries and answer.raft_frames and not answer.early_frames
    # A campaigning node's vote requests wait until its Ready is durable.
    candidate = net.cores[follower]
    candidate.advance(answer)
    for _ in range(40):
        candidate.tick()
    campaign = candidate.next_work(0.0)
    assert campaign is not None and campaign.ready.role.value != "leader"
    assert campaign.raft_frames and not campaign.early_frames


def test_service_config_refuses_what_cannot_work(tmp_path: Path) -> None:
    nodes = {1: [("127.0.0.1", 5405)], 2: [("127.0.0.2", 5405)]}
    with pytest.raises(ValueError, match=r"node 3 is not among the configured nodes \[1, 2\]"):
        ServiceConfig(node_id=3, cluster_name="c", cluster_key=bytes(32), nodes=nodes, data_dir=tmp_path)
    with pytest.raises(ValueError, match="at least 50 ms"):
        ServiceConfig(
            node_id=1,
            cluster_name="c",
            cluster_key=bytes(32),
            nodes=nodes,
            data_dir=tmp_path,
            election_timeout=0.01,
        )
    config = ServiceConfig(node_id=1, cluster_name="c", cluster_key=bytes(32), nodes=nodes, data_dir=tmp_path)
    assert config.tick_interval == pytest.approx(0.1)
    assert config.transport_config().peers == {2: [("127.0.0.2", 5405)]}
    assert config.quorum_config().expected == 2


async def test_the_pacer_spreads_big_bursts_and_keeps_order_per_peer() -> None:
    sent: list[tuple[int, bytes]] = []
    pacer = FramePacer(asyncio.get_running_loop(), lambda peer, frame: sent.append((peer, frame)))
    frames = [bytes([i]) * 60_000 for i in range(10)]
    for frame in frames:
        pacer.send(1, frame)
    assert sent == [(1, frames[0]), (1, frames[1])]  # 120 KB leave at once, the rest wait their turn
    pacer.send(2, b"small")
    assert sent[-1] == (2, b"small")  # another peer is not held up
    async with asyncio.timeout(5):
        while pacer.queued(1):
            await asyncio.sleep(0.001)
    assert [f for p, f in sent if p == 1] == frames
    pacer.send(1, b"later")
    assert sent[-1] == (1, b"later") or pacer.queued(1) == 1
    pacer.close()


async def test_the_pacer_drops_frames_beyond_its_queue_limit() -> None:
    sent: list[tuple[int, bytes]] = []
    pacer = FramePacer(asyncio.get_running_loop(), lambda p, f: sent.append((p, f)), max_queued_bytes=150_000)
    for i in range(6):
        pacer.send(1, bytes([i]) * 60_000)
    # Two leave at once, two wait (120 KB queued), the last two would pass the 150 KB limit.
    assert len(sent) == 2 and pacer.queued(1) == 2 and pacer.dropped == 2
    pacer.close()


def test_a_burst_larger_than_the_uncommitted_limit_commits_in_several_rounds() -> None:
    net = MemNet()
    leader = net.elect()
    core = net.cores[leader]
    burst = core.raft.config.max_uncommitted + 500
    for token in range(burst):
        core.propose(token, b"b%d" % token)
    net.run()
    results = net.results(leader)
    assert len(results) == burst and all(isinstance(r, int) for r in results.values())
    assert [d for _, d in net.applied[leader]] == [b"b%d" % t for t in range(burst)]
    assert core.counters["proposal_batches"] >= 2


def test_the_failure_detector_losing_the_leader_elects_a_new_one_without_raft_ticks() -> None:
    net = MemNet()
    leader = net.elect()
    survivors = sorted(set(net.cores) - {leader})
    term = net.cores[survivors[0]].raft.term
    net.cut.add(leader)
    for n in survivors:  # both failure detectors declare the leader gone; no tick passes
        net.cores[n].on_members(1.0, frozenset(set(net.cores) - {leader, n}))
    net.run()
    leaders = [n for n in survivors if net.cores[n].raft.is_leader]
    assert leaders == [survivors[0]], "the lower id campaigns at once and wins"
    assert net.cores[survivors[0]].raft.term == term + 1


def test_a_leader_the_failure_detector_has_not_seen_up_yet_is_not_lost() -> None:
    net = MemNet()
    leader = net.elect()
    follower = next(n for n in net.cores if n != leader)
    core = net.cores[follower]
    core._detector_up = frozenset()  # as just after a restart: the detector has seen nobody up yet
    other = next(n for n in net.cores if n not in (leader, follower))
    core.on_members(1.1, frozenset({other}))  # a peer comes up; the leader is still heard through Raft
    assert core.raft.leader_id == leader and core.raft.role is Role.FOLLOWER
