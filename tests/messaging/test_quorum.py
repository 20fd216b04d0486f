"""Quorum rules: majority, wait_for_all, two_node with fencing, and the witness as tiebreaker."""

from __future__ import annotations

import pytest

from hakeeper.messaging.quorum import (
    Quorum,
    QuorumChanged,
    QuorumConfig,
    QuorumOutput,
    SendWitnessReport,
)
from hakeeper.messaging.witness import WitnessArbiter, WitnessReply, WitnessReport


def changes(outputs: list[QuorumOutput]) -> list[QuorumChanged]:
    return [o for o in outputs if isinstance(o, QuorumChanged)]


def test_majority() -> None:
    q = Quorum(1, QuorumConfig({1: 1, 2: 1, 3: 1}), now=0.0)
    assert not q.state.quorate and q.state.needed == 2
    events = changes(q.set_members(1.0, {1, 2}))
    assert len(events) == 1 and events[0].state.quorate and events[0].at == 1.0
    assert q.set_members(1.5, {2, 1}) == []  # no change, no event
    assert not changes(q.set_members(2.0, {1}))[0].state.quorate
    assert "1 of 3 votes" in q.state.reason


def test_votes_are_weighted() -> None:
    q = Quorum(1, QuorumConfig({1: 3, 2: 1, 3: 1}), now=0.0)
    assert q.state.quorate  # 3 of 5
    q2 = Quorum(2, QuorumConfig({1: 3, 2: 1, 3: 1}), now=0.0)
    q2.set_members(0.0, {2, 3})
    assert not q2.state.quorate  # 2 of 5


def test_expected_votes_override() -> None:
    q = Quorum(1, QuorumConfig({1: 1, 2: 1}, expected_votes=5), now=0.0)
    q.set_members(0.0, {1, 2})
    assert not q.state.quorate and q.state.needed == 3


def test_wait_for_all() -> None:
    q = Quorum(1, QuorumConfig({1: 1, 2: 1, 3: 1}, wait_for_all=True), now=0.0)
    q.set_members(0.0, {1, 2})
    assert not q.state.quorate and q.state.waiting_for_all
    assert "missing: 3" in q.state.reason
    q.set_members(1.0, {1, 2, 3})
    assert q.state.quorate
    q.set_members(2.0, {1, 2})
    assert q.state.quorate  # seen all once: plain majority from now on


def test_two_node_needs_fencing_confirmation() -> None:
    q = Quorum(1, QuorumConfig({1: 1, 2: 1}, two_node=True), now=0.0)
    assert not q.state.quorate and q.state.waiting_for_all  # two_node implies wait_for_all
    assert q.fencing_confirmed(0.5, 2) == []  # wait_for_all is not lifted by fencing
    q.set_members(1.0, {1, 2})
    assert q.state.quorate
    q.set_members(2.0, {1})
    assert not q.state.quorate and q.state.awaiting_fence == {2}
    assert "confirmed fenced" in q.state.reason
    events = changes(q.fencing_confirmed(3.0, 2))
    assert events and events[0].state.quorate and events[0].state.awaiting_fence == frozenset()
    q.set_members(4.0, {1, 2})
    q.set_members(5.0, {1})
    assert not q.state.quorate  # an old confirmation does not cover a new loss
    q.fencing_confirmed(6.0, 2)
    assert q.state.quorate


def test_bad_quorum_configs() -> None:
    with pytest.raises(ValueError, match="exactly two voting nodes"):
        QuorumConfig({1: 1, 2: 1, 3: 1}, two_node=True)
    with pytest.raises(ValueError, match="alternatives"):
        QuorumConfig({1: 1, 2: 1}, two_node=True, witness=True)
    with pytest.raises(ValueError, match="negative"):
        QuorumConfig({1: -1})


# --- with a witness -------------------------------------------------------------------------------


class Cluster:
    """Quorum cores of every node plus one witness arbiter, wired without a network."""

    def __init__(self, nodes: int) -> None:
        votes = dict.fromkeys(range(1, nodes + 1), 1)
        self.config = QuorumConfig(votes, witness=True)
        self.now = 0.0
        self.q = {n: Quorum(n, self.config, now=0.0) for n in votes}
        self.arbiter = WitnessArbiter(report_timeout=0.5)
        self.views = {n: frozenset(votes) for n in votes}
        self.dead: set[int] = set()
        self.witness_cut: set[int] = set()
        self.events: dict[int, list[QuorumChanged]] = {n: [] for n in votes}

    def _feed(self, node: int, outputs: list[QuorumOutput]) -> None:
        for out in outputs:
            if isinstance(out, SendWitnessReport):
                if node in self.witness_cut:
                    continue
                reply = self.arbiter.on_report(self.now, node, out.report.view, out.report.seq)
                self._feed(node, self.q[node].on_witness_reply(self.now, reply))
            else:
                self.events[node].append(out)

    def run(self, seconds: float, step: float = 0.05) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = round(self.now + step, 6)
            for n, q in self.q.items():
                if n not in self.dead:
                    self._feed(n, q.set_members(self.now, self.views[n]))
                    self._feed(n, q.tick(self.now))

    def split(self, *parts: set[int]) -> None:
        for part in parts:
            for n in part:
                self.views[n] = frozenset(part)

    def quorate(self) -> set[int]:
        return {n for n, q in self.q.items() if n not in self.dead and q.state.quorate}


def test_witness_two_node_split_goes_to_lowest_id() -> None:
    c = Cluster(2)
    c.run(1.0)
    assert c.quorate() == {1, 2}
    c.split({1}, {2})
    c.run(1.0)
    assert c.quorate() == {1}
    assert c.q[1].state.witness_vote and c.q[1].state.votes == 2


@pytest.mark.parametrize("victim", [1, 2])
def test_witness_two_node_either_node_killed(victim: int) -> None:
    c = Cluster(2)
    c.run(1.0)
    survivor = 3 - victim
    c.dead.add(victim)
    c.split({survivor})
    c.run(1.5)
    assert c.quorate() == {survivor}
    # The interruption is bounded: the survivor regained quorum within one report timeout plus a report.
    regained = [e.at for e in c.events[survivor] if e.state.quorate]
    assert regained[-1] <= 1.0 + 0.5 + 0.2


def test_witness_four_node_even_split() -> None:
    c = Cluster(4)
    c.run(1.0)
    assert c.quorate() == {1, 2, 3, 4}
    c.split({1, 2}, {3, 4})
    c.run(1.0)
    assert c.quorate() == {1, 2}
    assert c.q[3].state.votes == 2 and c.q[3].state.needed == 3


def test_witness_four_node_uneven_split() -> None:
    c = Cluster(4)
    c.run(1.0)
    c.split({1}, {2, 3, 4})
    c.run(1.0)
    assert c.quorate() == {2, 3, 4}
    assert c.q[2].state.witness_vote


def test_witness_stickiness_no_flapping() -> None:
    c = Cluster(2)
    c.run(1.0)
    c.dead.add(1)
    c.split({2})
    c.run(1.5)
    assert c.quorate() == {2}
    # Node 1 comes back but cannot reach node 2: same size, lower id, yet node 2 keeps the vote.
    c.dead.discard(1)
    c.views[1] = frozenset({1})
    before = len(c.events[2])
    c.run(3.0)
    assert c.quorate() == {2}
    assert len(c.events[2]) == before  # node 2's quorum never wavered
    c.split({1, 2})
    c.run(1.0)
    assert c.quorate() == {1, 2}


def test_witness_vote_lapses_when_witness_unreachable() -> None:
    c = Cluster(2)
    c.run(1.0)
    c.split({1}, {2})
    c.run(1.0)
    assert c.quorate() == {1}
    c.witness_cut.add(1)
    c.run(1.0)
    # Node 1's grant expired on its side; the witness forgot node 1 and gave the vote to node 2.
    assert c.quorate() == {2}
    assert not c.q[1].state.witness_vote


def reports(outputs: list[QuorumOutput]) -> list[WitnessReport]:
    return [o.report for o in outputs if isinstance(o, SendWitnessReport)]


def test_witness_replies_count_only_for_the_current_view_and_in_time() -> None:
    q = Quorum(1, QuorumConfig({1: 1, 2: 1}, witness=True, witness_reply_timeout=0.4), now=0.0)
    [r1] = reports(q.tick(0.0))
    q.on_witness_reply(0.01, WitnessReply(view=[1, 2], granted=True, holder=[1, 2], seq=r1.seq))
    assert not q.state.witness_vote  # granted for a view this node does not have
    [r2] = reports(q.tick(0.1))
    q.on_witness_reply(0.11, WitnessReply(view=[1], granted=True, holder=[1], seq=r2.seq))
    assert q.state.witness_vote and q.state.quorate
    assert q.on_witness_reply(0.12, WitnessReply(view=[1], granted=False, holder=[2], seq=r1.seq)) == []
    assert q.on_witness_reply(0.12, WitnessReply(view=[1], granted=False, holder=[2], seq=99)) == []
    assert q.state.witness_vote  # stale and unsolicited answers changed nothing
    q.tick(0.49)
    assert q.state.witness_vote
    events = changes(q.tick(0.5))  # 0.4 s after report 2 was *sent*, with no newer answer
    assert events and not events[0].state.quorate and not q.state.witness_vote


def test_report_sent_on_view_change_and_periodically() -> None:
    q = Quorum(1, QuorumConfig({1: 1, 2: 1}, witness=True, witness_report_interval=0.1), now=0.0)
    first = q.tick(0.0)
    assert [type(o) for o in first] == [SendWitnessReport]
    assert q.tick(0.05) == []
    assert q.next_deadline() == pytest.approx(0.1)
    reports = [o for o in q.set_members(0.06, {1, 2}) if isinstance(o, SendWitnessReport)]
    assert reports and reports[0].report.view == [1, 2]
    assert q.next_deadline() == pytest.approx(0.1)  # a report on a change keeps the periodic grid


def test_periodic_reports_follow_the_beat() -> None:
    """A node that hears the beat sends its periodic report in that wake-up, not on a timer of its own."""
    q = Quorum(2, QuorumConfig({1: 1, 2: 1}, witness=True, witness_report_interval=0.1), now=0.0)
    q.report_from(0.03)
    assert q.next_deadline() == pytest.approx(0.03)
    assert reports(q.on_beat(0.01, 0.1)) != []  # due within half a beat: it goes with this one
    beats = [0.11, 0.21, 0.31]
    assert all(len(reports(q.on_beat(at, 0.1))) == 1 for at in beats)
    assert 0.31 < q.next_deadline() < 0.31 + 0.15  # the timer waits just past the next beat
    assert reports(q.tick(0.35)) == []  # nothing due between beats
    quiet = Quorum(2, QuorumConfig({1: 1, 2: 1}), now=0.0)
    assert quiet.on_beat(0.0, 0.1) == []  # no witness: nothing to report
