"""Scenario tests of the Raft core on a synchronous in-memory network (no sockets, no sleeps)."""

from __future__ import annotations

import contextlib
import random

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.messaging.raft.core import (
    Accepted,
    RaftConfig,
    RaftNode,
    Rejected,
    RejectReason,
    Role,
    apply_conf_change,
)
from hakeeper.messaging.raft.messages import (
    AppendEntries,
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    Heartbeat,
    InstallSnapshot,
    RequestVote,
    VoteResponse,
    decode_message,
    encode_message,
)
from hakeeper.messaging.raft.quorum_math import Majority, VoteResult
from hakeeper.messaging.raft.storage import MemoryStorage
from hakeeper.sim.raftnet import RaftNet


def accepted(result: object) -> Accepted:
    assert isinstance(result, Accepted), result
    return result


def new_leader(net: RaftNet, old: int) -> int:
    """Let time pass on every live node until someone other than ``old`` leads."""
    for _ in range(100):
        net.tick_all()
        others = [n for n in net.leaders() if n != old]
        if others:
            return others[0]
    raise AssertionError("no new leader was elected")


def three() -> RaftNet:
    net = RaftNet([1, 2, 3])
    net.elect(1)
    assert net.leaders() == [1]
    return net


# ---------------------------------------------------------------- elections and replication
def test_election_makes_one_leader_and_commits_a_noop() -> None:
    net = three()
    leader = net.raft(1)
    assert leader.term == 2
    assert [net.raft(n).role for n in (2, 3)] == [Role.FOLLOWER, Role.FOLLOWER]
    assert all(net.raft(n).leader_id == 1 for n in (1, 2, 3))
    assert leader.commit_index == 2  # the bootstrap config entry and the new leader's no-op


def test_replication_reaches_every_state_machine() -> None:
    net = three()
    for word in (b"a", b"b", b"c"):
        accepted(net.propose(1, word))
    net.tick_all(2)
    assert {n: net.nodes[n].applied for n in (1, 2, 3)} == {n: [b"a", b"b", b"c"] for n in (1, 2, 3)}


def test_follower_refuses_proposals_and_names_the_leader() -> None:
    net = three()
    result = net.propose(2, b"x")
    assert isinstance(result, Rejected)
    assert result.reason is RejectReason.NOT_LEADER and result.leader_id == 1
    assert "node 1" in result.detail


def test_commit_needs_a_majority() -> None:
    net = three()
    net.isolate(2)
    net.isolate(3)
    index = accepted(net.propose(1, b"lonely")).index
    assert net.raft(1).commit_index < index
    net.heal()
    net.tick_all(2)
    assert net.raft(1).commit_index >= index
    assert net.nodes[3].applied == [b"lonely"]


def test_votes_go_to_the_most_up_to_date_log() -> None:
    net = three()
    net.isolate(3)
    accepted(net.propose(1, b"x"))
    net.heal()
    net.crash(1)
    # Node 3 missed an entry: node 2 refuses to vote for it, so only node 2 can win.
    assert new_leader(net, 1) == 2


# ---------------------------------------------------------------- conflicting logs
def test_follower_overwrites_a_divergent_uncommitted_tail() -> None:
    net = three()
    net.isolate(1)
    for word in (b"lost-1", b"lost-2"):
        accepted(net.propose(1, word))  # appended by the old leader only, never committed
    leader = new_leader(net, 1)
    accepted(net.propose(leader, b"kept"))
    node1_terms_before = [e.term for e in net.raft(1).log.slice(3, 10)]
    net.heal()
    net.tick_all(30)
    assert net.leaders() == [leader]
    assert node1_terms_before == [2, 2]
    assert [e.data for e in net.raft(1).log.slice(3, 10) if e.data] == [b"kept"]
    assert net.nodes[1].applied == net.nodes[leader].applied == [b"kept"]


# ---------------------------------------------------------------- snapshots
def test_lagging_follower_gets_a_snapshot_after_compaction() -> None:
    net = three()
    net.crash(3)
    for i in range(20):
        accepted(net.propose(1, f"v{i}".encode()))
    net.compact(1)
    net.compact(2)
    assert net.nodes[1].storage.first_index() > 10
    net.restart(3)
    net.tick_all(3)
    assert any(isinstance(m, InstallSnapshot) and m.to == 3 for m in net.sent)
    assert net.nodes[3].applied == net.nodes[1].applied
    assert net.raft(3).commit_index == net.raft(1).commit_index
    accepted(net.propose(1, b"after"))
    net.tick_all(1)
    assert net.nodes[3].applied[-1] == b"after"


def test_restart_recovers_state_from_snapshot_and_log() -> None:
    net = three()
    for i in range(5):
        accepted(net.propose(1, f"v{i}".encode()))
    net.compact(2)
    accepted(net.propose(1, b"v5"))
    net.tick_all(1)
    before = list(net.nodes[2].applied)
    net.crash(2)
    net.restart(2)
    net.tick_all(2)
    assert net.nodes[2].applied == before


# ---------------------------------------------------------------- membership
def test_add_learner_then_promote_then_remove() -> None:
    net = three()
    accepted(net.propose(1, b"before"))
    net.add_empty_node(4)
    accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 4)))
    net.tick_all(3)
    assert net.raft(1).learners == (4,)
    assert net.nodes[4].applied == [b"before"]  # learners receive the log
    assert net.raft(4).learners == (4,)

    # a learner does not count for commit: with two voters down nothing commits
    net.isolate(2)
    net.isolate(3)
    index = accepted(net.propose(1, b"needs-a-voter")).index
    net.tick(1)
    net.settle()
    assert net.raft(1).commit_index < index
    net.heal()
    net.tick_all(3)

    accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.PROMOTE_LEARNER, 4)))
    net.tick_all(3)
    assert net.raft(1).voters == (1, 2, 3, 4) and net.raft(4).voters == (1, 2, 3, 4)

    accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.REMOVE_NODE, 2)))
    net.tick_all(3)
    assert net.raft(1).voters == (1, 3, 4)
    net.crash(2)
    net.isolate(3)  # 1 and 4 are a majority of {1, 3, 4}
    index = accepted(net.propose(1, b"three-voters")).index
    net.tick_all(1)
    assert net.raft(1).commit_index >= index


def test_one_membership_change_at_a_time() -> None:
    net = three()
    net.isolate(2)
    net.isolate(3)
    accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 4)))
    second = net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 5))
    assert isinstance(second, Rejected) and second.reason is RejectReason.CONF_CHANGE_PENDING


def test_config_takes_effect_when_appended_and_reverts_when_truncated() -> None:
    net = three()
    net.isolate(1)
    accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 9)))
    assert net.raft(1).learners == (9,)  # in effect before commit
    accepted(net.propose(new_leader(net, 1), b"x"))
    net.heal()
    net.tick_all(30)
    assert net.raft(1).learners == ()  # the uncommitted config entry was overwritten


def test_leader_that_removes_itself_steps_down_after_commit() -> None:
    net = three()
    accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.REMOVE_NODE, 1)))
    net.settle()
    assert net.raft(1).role is Role.FOLLOWER
    assert net.raft(2).voters == (2, 3)
    for _ in range(40):
        net.tick(2)
        net.tick(3)
        net.settle()
    assert net.leaders() in ([2], [3])
    net.tick_all(40)
    assert 1 not in net.leaders()  # a removed node does not campaign


def test_invalid_membership_changes_are_explained() -> None:
    conf = ConfState(voters=(1,), learners=(2,))
    assert "last voter" in str(apply_conf_change(conf, ConfChange(ConfChangeKind.REMOVE_NODE, 1)))
    assert "not a learner" in str(apply_conf_change(conf, ConfChange(ConfChangeKind.PROMOTE_LEARNER, 1)))
    assert "already a learner" in str(apply_conf_change(conf, ConfChange(ConfChangeKind.ADD_LEARNER, 2)))
    assert "not a member" in str(apply_conf_change(conf, ConfChange(ConfChangeKind.REMOVE_NODE, 7)))
    assert apply_conf_change(conf, ConfChange(ConfChangeKind.ADD_VOTER, 2)) == ConfState((1, 2), ())


def test_learner_never_campaigns() -> None:
    net = three()
    net.add_empty_node(4)
    accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 4)))
    net.tick_all(3)
    net.isolate(4)
    net.tick(4, 200)
    assert net.raft(4).role is Role.FOLLOWER
    assert not [m for m in net.take_ready(4).messages if isinstance(m, RequestVote)]


# ---------------------------------------------------------------- pre-vote and check-quorum
def test_prevote_partitioned_node_rejoining_does_not_disrupt() -> None:
    net = three()
    net.isolate(3)
    net.tick(3, 100)  # many election timeouts alone
    assert net.raft(3).term == 2  # pre-vote never succeeds, so the term does not grow
    net.heal()
    net.tick_all(5)
    assert net.leaders() == [1] and net.raft(1).term == 2


def test_without_prevote_a_rejoining_node_forces_a_new_term() -> None:
    net = RaftNet([1, 2, 3], pre_vote=False, check_quorum=False)
    net.elect(1)
    net.isolate(3)
    net.tick(3, 100)
    assert net.raft(3).term > 2  # the node kept incrementing its term
    net.heal()
    net.tick_all(30)
    assert net.raft(1).term > 2  # and deposed the leader when it came back: what pre-vote prevents


def test_check_quorum_leader_steps_down_when_cut_off() -> None:
    net = three()
    net.isolate(1)
    net.tick(1, net.raft(1).config.election_ticks * 2)
    net.settle()
    assert net.raft(1).role is Role.FOLLOWER
    result = net.raft(1).propose(b"x")
    assert isinstance(result, Rejected) and result.reason is RejectReason.NOT_LEADER


def test_follower_in_lease_ignores_vote_requests() -> None:
    net = three()
    node = net.raft(2)
    node.step(RequestVote(term=9, frm=3, to=2, last_index=99, last_term=9))
    assert node.term == 2  # heard from the leader recently: the request is ignored
    assert not node.ready().messages


# ---------------------------------------------------------------- leadership transfer
def test_leadership_transfer_to_an_up_to_date_follower() -> None:
    net = three()
    assert net.raft(1).transfer_leadership(2) is None
    net.settle()
    assert net.leaders() == [2]
    assert net.raft(2).term == 3


def test_transfer_waits_for_a_lagging_target_and_blocks_proposals() -> None:
    net = three()
    net.cut.add((1, 3))
    accepted(net.propose(1, b"x"))
    assert net.raft(1).transfer_leadership(3) is None
    refused = net.raft(1).propose(b"y")
    assert isinstance(refused, Rejected) and refused.reason is RejectReason.TRANSFER_IN_PROGRESS
    net.heal()
    net.tick(1)
    net.settle()
    assert net.leaders() == [3]
    assert net.nodes[3].applied == [b"x"]


def test_transfer_to_a_stranger_is_refused() -> None:
    net = three()
    result = net.raft(1).transfer_leadership(7)
    assert isinstance(result, Rejected) and result.reason is RejectReason.INVALID_TARGET


def test_transfer_is_abandoned_after_an_election_timeout() -> None:
    net = three()
    net.isolate(3)
    assert net.raft(1).transfer_leadership(3) is None
    for _ in range(net.raft(1).config.election_ticks):
        net.tick(1)
        net.tick(2)
        net.settle()
    assert net.raft(1).is_leader and net.raft(1).transferee == 0
    accepted(net.raft(1).propose(b"again"))


# ---------------------------------------------------------------- read index
def test_read_index_confirms_leadership_with_a_quorum() -> None:
    net = three()
    accepted(net.propose(1, b"w"))
    assert net.raft(1).read_index(b"r1") is None
    net.settle()
    [state] = net.nodes[1].read_states
    assert state.ctx == b"r1" and state.index == net.raft(1).commit_index


def test_read_index_on_a_cut_off_leader_never_answers() -> None:
    net = three()
    net.isolate(1)
    assert net.raft(1).read_index(b"stale?") is None
    net.settle()
    net.tick(1)
    net.settle()
    assert net.nodes[1].read_states == []


def test_read_index_on_a_follower_is_refused() -> None:
    net = three()
    result = net.raft(2).read_index(b"r")
    assert isinstance(result, Rejected) and result.leader_id == 1


# ---------------------------------------------------------------- flow control and the Ready contract
def test_inflight_appends_are_bounded_per_follower() -> None:
    net = RaftNet([1, 2], max_inflight=2, max_entries_per_append=1)
    net.elect(1)
    net.cut.add((2, 1))  # node 2 receives but its acknowledgements are lost
    net.cut.add((1, 2))
    leader = net.raft(1)
    leader.ready()  # drop whatever was pending
    net.cut.clear()
    net.cut.add((2, 1))
    for i in range(10):
        accepted(leader.propose(f"e{i}".encode()))
    appends = [m for m in net.take_ready(1).messages if isinstance(m, AppendEntries) and m.entries]
    assert len(appends) == 2


def test_ready_contract_vote_is_persisted_with_its_response() -> None:
    storage = MemoryStorage()
    from hakeeper.messaging.raft.core import bootstrap

    hs, entries = bootstrap([1, 2, 3])
    storage.save(hs, entries, None)
    node = RaftNode(RaftConfig(node_id=2), storage, random.Random(0))
    node.step(RequestVote(term=5, frm=1, to=2, last_index=1, last_term=1))
    rd = node.ready()
    assert rd.hard_state is not None and rd.hard_state.vote == 1 and rd.hard_state.term == 5
    assert [type(m).__name__ for m in rd.messages] == ["VoteResponse"]


def test_stale_leader_learns_the_new_term_from_a_reply() -> None:
    net = three()
    net.isolate(1)
    leader = new_leader(net, 1)
    follower = net.raft(6 - 1 - leader)
    follower.step(Heartbeat(term=2, frm=1, to=follower.id, commit=0))
    [reply] = follower.ready().messages
    assert reply.to == 1 and reply.term == follower.term > 2
    net.raft(1).step(reply)
    assert net.raft(1).role is Role.FOLLOWER and net.raft(1).term == follower.term


@pytest.mark.parametrize("options", [{}, {"pre_vote": False, "check_quorum": False}])
def test_a_node_at_a_higher_term_always_tells_a_stale_leader(options: dict[str, bool]) -> None:
    """Raft §5.1 whatever the options: the higher-term node may never campaign itself (a learner in its own
    view of the configuration), so its answer is the only way the stale leader learns (soak seed 2039833)."""
    net = RaftNet([1, 2, 3], **options)
    net.elect(1)
    follower = net.raft(2)
    follower.step(Heartbeat(term=follower.term + 5, frm=3, to=2, commit=0))  # a newer term from elsewhere
    follower.ready()
    follower.step(Heartbeat(term=net.raft(1).term, frm=1, to=2, commit=0))
    [reply] = follower.ready().messages
    assert reply.to == 1 and reply.term == follower.term
    net.raft(1).step(reply)
    assert net.raft(1).role is Role.FOLLOWER and net.raft(1).term == follower.term


# ---------------------------------------------------------------- small pieces
def test_messages_round_trip_through_msgpack() -> None:
    msg = AppendEntries(3, 1, 2, 5, 2, (Entry(3, 6, data=b"x"),), 5)
    assert decode_message(encode_message(msg)) == msg
    with pytest.raises(msgspec.DecodeError):
        decode_message(b"\x93garbage")


def test_majority_arithmetic() -> None:
    q = Majority()
    assert q.committed_index([1, 2, 3], {1: 5, 2: 3, 3: 9}) == 5
    assert q.committed_index([1, 2, 3, 4], {1: 5, 2: 3, 3: 9, 4: 1}) == 3
    assert q.vote_result([1, 2, 3], {1: True}) is VoteResult.PENDING
    assert q.vote_result([1, 2, 3], {1: True, 2: True}) is VoteResult.WON
    assert q.vote_result([1, 2, 3], {1: True, 2: False, 3: False}) is VoteResult.LOST
    assert q.vote_result([], {}) is VoteResult.LOST
    assert q.has_quorum([1, 2, 3, 4, 5], [1, 2, 3]) and not q.has_quorum([1, 2, 3, 4], [1, 2])


def test_bad_config_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        RaftConfig(node_id=0)
    with pytest.raises(ValueError, match="heartbeat_ticks < election_ticks"):
        RaftConfig(node_id=1, election_ticks=2, heartbeat_ticks=2)


def test_single_node_cluster_commits_alone() -> None:
    net = RaftNet([1])
    net.elect(1)
    index = accepted(net.propose(1, b"solo")).index
    assert net.raft(1).commit_index == index and net.nodes[1].applied == [b"solo"]


def _random_message(rng: random.Random, to: int) -> object:
    def n() -> int:
        return rng.randint(-2, 12)

    def entries() -> tuple[Entry, ...]:
        start = n()
        return tuple(Entry(n(), start + i, data=b"z") for i in range(rng.randint(0, 3)))

    kind = rng.randrange(6)
    frm = rng.choice([1, 2, 3, 0, -1])
    if kind == 0:
        return AppendEntries(n(), frm, to, n(), n(), entries(), n())
    if kind == 1:
        return RequestVote(n(), frm, to, n(), n(), rng.random() < 0.5, rng.random() < 0.2)
    if kind == 2:
        return Heartbeat(n(), frm, to, n(), n())
    if kind == 3:
        from hakeeper.messaging.raft.messages import AppendResponse

        return AppendResponse(n(), frm, to, n(), rng.random() < 0.5, n(), n())
    if kind == 4:
        from hakeeper.messaging.raft.messages import Snapshot, SnapshotMeta

        return InstallSnapshot(n(), frm, to, Snapshot(SnapshotMeta(n(), n(), ConfState((1, 2, 3))), b"s"))
    from hakeeper.messaging.raft.messages import VoteResponse

    return VoteResponse(n(), frm, to, rng.random() < 0.5, rng.random() < 0.5)


def test_garbage_messages_never_raise() -> None:
    rng = random.Random(42)
    for round_ in range(10):
        net = three()
        for _ in range(200):
            target = rng.choice([1, 2, 3])
            node = net.raft(target)
            node.step(_random_message(rng, target))  # type: ignore[arg-type]
            if rng.random() < 0.1:
                node.tick()
            rd = node.ready()
            net.nodes[target].storage.save(rd.hard_state, rd.entries, rd.snapshot)
            node.advance(rd)
            assert node.commit_index <= node.log.last_index(), round_


# ---------------------------------------------------------------- witness (vote-only member)
def two_plus_witness() -> RaftNet:
    net = RaftNet([1, 2], witnesses=[3])
    net.elect(1)
    assert net.leaders() == [1]
    return net


def test_witness_counts_for_commit_but_holds_no_payloads() -> None:
    net = two_plus_witness()
    net.isolate(2)
    index = accepted(net.propose(1, b"secret-payload")).index
    net.tick_all(1)
    assert net.raft(1).commit_index >= index  # leader + witness are a majority of three
    stored = net.nodes[3].storage.entries(index, index + 1)[0]
    assert stored.term == net.raft(1).term and stored.data == b""
    assert net.raft(3).voters == (1, 2, 3) and net.raft(3).conf_state.witnesses == (3,)


def test_two_nodes_and_a_witness_survive_losing_either_node() -> None:
    for lost in (1, 2):
        net = two_plus_witness()
        accepted(net.propose(1, b"before"))
        survivor = 3 - lost
        net.crash(lost)
        if survivor != 1:
            assert new_leader(net, lost) == survivor
        index = accepted(net.propose(survivor, b"after")).index
        net.tick_all(1)
        assert net.raft(survivor).commit_index >= index
        assert net.nodes[survivor].applied == [b"before", b"after"]


def test_witness_never_campaigns_and_cannot_be_handed_leadership() -> None:
    net = two_plus_witness()
    net.isolate(3)
    net.tick(3, 200)
    assert net.raft(3).role is Role.FOLLOWER
    result = net.raft(1).transfer_leadership(3)
    assert isinstance(result, Rejected) and result.reason is RejectReason.INVALID_TARGET


def test_a_data_node_refuses_to_be_treated_as_a_witness() -> None:
    net = three()
    follower = net.raft(2)
    follower.step(AppendEntries(2, 1, 2, 2, 2, (Entry(2, 3, data=b""),), 2, stripped=True))
    assert follower.refused_stripped == 1
    assert follower.log.last_index() == 2


def test_add_witness_by_membership_change() -> None:
    net = RaftNet([1, 2])
    net.elect(1)
    net.add_empty_node(3, witness=True)
    accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_WITNESS, 3)))
    net.tick_all(3)
    assert net.raft(1).conf_state.witnesses == (3,)
    promote = apply_conf_change(net.raft(1).conf_state, ConfChange(ConfChangeKind.PROMOTE_LEARNER, 3))
    assert "witness" in str(promote)
    net.crash(2)
    index = accepted(net.propose(1, b"with-witness")).index
    net.tick_all(1)
    assert net.raft(1).commit_index >= index


def test_propose_many_batches_appends() -> None:
    net = RaftNet([1, 2, 3], max_inflight=2, max_entries_per_append=64)
    net.elect(1)
    batch = [f"e{i}".encode() for i in range(100)]
    result = accepted(net.raft(1).propose_many(batch))
    rd = net.take_ready(1)
    appends = [m for m in rd.messages if isinstance(m, AppendEntries) and m.to == 2]
    assert len(appends) == 2 and sum(len(m.entries) for m in appends) == 100  # 64 + 36 in two batches
    net.nodes[1].storage.save(rd.hard_state, rd.entries, rd.snapshot)
    net.raft(1).advance(rd)
    for m in rd.messages:
        net.raft(m.to).step(m)
    net.settle()
    assert net.raft(1).commit_index == result.index
    assert net.nodes[3].applied == batch


def test_propose_many_respects_the_uncommitted_limit() -> None:
    net = RaftNet([1, 2, 3], max_uncommitted=10)
    net.elect(1)
    result = net.raft(1).propose_many([b"x"] * 11)
    assert isinstance(result, Rejected) and result.reason is RejectReason.TOO_MANY_UNCOMMITTED


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.integers(1, 9), st.integers(0, 50), min_size=1, max_size=9))
def test_committed_index_is_the_highest_index_a_majority_holds(match: dict[int, int]) -> None:
    voters = list(match)
    index = Majority().committed_index(voters, match)
    need = len(voters) // 2 + 1
    assert sum(1 for v in voters if match[v] >= index) >= need
    assert sum(1 for v in voters if match[v] >= index + 1) < need


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.integers(1, 9), st.booleans(), max_size=9), st.integers(1, 9))
def test_vote_result_agrees_with_counting(votes: dict[int, bool], size: int) -> None:
    voters = list(range(1, size + 1))
    result = Majority().vote_result(voters, votes)
    granted = sum(1 for v in voters if votes.get(v) is True)
    denied = sum(1 for v in voters if votes.get(v) is False)
    need = size // 2 + 1
    expected = (
        VoteResult.WON if granted >= need else VoteResult.LOST if size - denied < need else VoteResult.PENDING
    )
    assert result is expected


def test_mutated_packets_only_ever_raise_decode_error() -> None:
    rng = random.Random(5)
    base = encode_message(AppendEntries(3, 1, 2, 5, 2, (Entry(3, 6, data=b"x"),), 5))
    for _ in range(20_000):
        packet = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            packet[rng.randrange(len(packet))] = rng.randrange(256)
        with contextlib.suppress(msgspec.DecodeError):  # anything else escapes and fails the test
            decode_message(bytes(packet))


def test_leader_counts_its_own_entry_only_once_durable() -> None:
    """Regression (found by the simulator with appends sent before the leader's own write): a single voter
    must not announce a commit of an entry it has not persisted: a crash could rewrite a committed index."""
    net = RaftNet([1])
    net.elect(1)
    net.add_empty_node(2)
    accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 2)))
    net.tick_all(3)
    index = accepted(net.raft(1).propose(b"x")).index
    rd = net.take_ready(1)
    assert rd.entries and rd.entries[-1].index == index
    assert all(m.commit < index for m in rd.messages if isinstance(m, AppendEntries | Heartbeat))
    assert rd.hard_state is None or rd.hard_state.commit < index
    assert net.raft(1).commit_index < index
    net.nodes[1].storage.save(rd.hard_state, rd.entries, rd.snapshot)
    net.raft(1).advance(rd)  # now durable: the single voter commits it
    assert net.raft(1).commit_index == index


def test_rejecting_a_stale_candidate_does_not_restart_the_election_timer() -> None:
    net = RaftNet([1, 2, 3], pre_vote=False, check_quorum=False)
    net.elect(1)
    accepted(net.propose(1, b"x"))
    net.crash(1)
    node = net.raft(2)
    node.tick()
    node.tick()
    node.step(RequestVote(term=9, frm=3, to=2, last_index=1, last_term=1))  # 3's log is behind
    assert node.term == 9 and node.vote == 0
    assert node._election_elapsed == 2  # still counting toward its own campaign
    node.step(RequestVote(term=10, frm=3, to=2, last_index=99, last_term=9))  # up to date: granted
    assert node.vote == 3 and node._election_elapsed == 0


def test_a_candidate_in_an_old_term_is_told_the_current_term() -> None:
    net = three()
    node = net.raft(2)
    node.step(RequestVote(term=1, frm=3, to=2, last_index=9, last_term=1))
    [reply] = node.ready().messages
    assert isinstance(reply, VoteResponse) and not reply.granted and reply.term == 2


def test_a_leader_that_removed_itself_appends_nothing_a_witness_alone_could_hold() -> None:
    """Simulator seed 1070251: the leader removed itself, then appended one more entry that only the witness
    got, and stepped down when the removal committed. The witness then held the longest log but may not
    lead, so it refused every remaining voter forever: no leader again. A leader that removed itself must
    refuse proposals, so the removal is its last entry and the remaining voters can elect a leader."""
    net = RaftNet([1, 2, 4], witnesses=[3], max_entries_per_append=1, max_inflight=1)
    net.elect(1)
    net.crash(4)  # the remaining quorum is node 2 plus the witness
    net.cut.add((1, 2))
    removal = accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.REMOVE_NODE, 1))).index
    late = net.propose(1, b"after-removal")
    assert isinstance(late, Rejected) and late.reason is RejectReason.NOT_LEADER
    assert "removed" in late.detail
    assert net.nodes[3].storage.last_index() == removal and net.raft(2).log.last_index() < removal
    net.heal()
    for _ in range(20):
        net.tick(1)
        net.settle()
    assert net.raft(1).role is Role.FOLLOWER
    assert new_leader(net, 1) == 2
    index = accepted(net.propose(2, b"next")).index
    net.tick_all(2)
    assert net.raft(2).commit_index >= index
    assert net.nodes[2].applied[-1:] == [b"next"]


def test_a_leader_that_removed_itself_hands_over_at_once() -> None:
    net = three()
    accepted(net.raft(1).propose_conf_change(ConfChange(ConfChangeKind.REMOVE_NODE, 1)))
    net.settle()  # no ticks: the removed leader tells an up-to-date voter to campaign now (TimeoutNow)
    assert net.raft(1).role is Role.FOLLOWER
    assert net.leaders() in ([2], [3])


# ---------------------------------------------------------------- the failure detector's verdict
def leader_lost_net() -> RaftNet:
    net = RaftNet([1, 2, 3], pre_vote=True, check_quorum=True)
    net.elect(1)
    net.crash(1)
    return net


def test_a_leader_the_failure_detector_declares_down_is_replaced_without_waiting_out_the_timeout() -> None:
    net = leader_lost_net()
    net.raft(3).leader_unreachable(delay_ticks=1)  # the second survivor waits a tick
    net.raft(2).leader_unreachable(delay_ticks=0)  # the first campaigns at once
    net.settle()
    assert net.leaders() == [2]
    assert net.raft(3).leader_id == 2


def test_a_peer_that_still_hears_the_leader_refuses_a_premature_campaign() -> None:
    net = RaftNet([1, 2, 3], pre_vote=True, check_quorum=True)
    net.elect(1)
    term = net.raft(1).term
    net.raft(2).leader_unreachable(delay_ticks=0)  # a false detection on node 2 only
    net.settle()
    assert net.leaders() == [1] and net.raft(1).term == term, "the leader's lease on node 3 protects it"


def test_a_later_survivor_campaigns_after_its_delay_when_the_first_could_not_win() -> None:
    net = leader_lost_net()
    net.raft(2).leader_unreachable(delay_ticks=0)  # node 3 has not noticed yet: refuses (its lease)
    net.settle()
    assert net.leaders() == []
    net.raft(3).leader_unreachable(delay_ticks=1)
    net.tick(3)
    net.settle()
    assert net.leaders() == [3]


def test_only_a_follower_with_a_known_leader_reacts() -> None:
    net = three()
    leader = net.raft(1)
    leader.leader_unreachable(delay_ticks=0)
    assert leader.is_leader
    term = leader.term
    follower = net.raft(2)
    follower.leader_unreachable(delay_ticks=0)
    assert follower.role is Role.PRE_CANDIDATE and follower.leader_id == 0
    follower.leader_unreachable(delay_ticks=0)  # a second verdict while it campaigns changes nothing
    assert follower.role is Role.PRE_CANDIDATE
    net.tick(1, times=2)  # the leader's next heartbeat brings it back
    net.settle()
    assert net.leaders() == [1] and leader.term == term and follower.leader_id == 1
