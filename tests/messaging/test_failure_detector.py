"""The failure detector in virtual time: detection bound, redundant links, hysteresis, restarts."""

from __future__ import annotations

import heapq
import itertools
import random

import pytest

from hakeeper.messaging.failure_detector import (
    Beat,
    FailureDetector,
    FailureDetectorConfig,
    LinkDown,
    LinkUp,
    MembershipEvent,
    NodeJoined,
    NodeLeft,
    Ping,
    Pong,
    SendPing,
    SendPong,
    link_message_decoder,
    link_message_encoder,
)


class Net:
    """N failure detectors joined by a simulated network with per-link cuts, loss and dead nodes."""

    def __init__(self, nodes: int, links: int = 1, config: FailureDetectorConfig | None = None) -> None:
        self.now = 0.0
        self.delay = 0.001
        ids = range(1, nodes + 1)
        self.boots = dict.fromkeys(ids, 1)
        self.fds = {
            n: FailureDetector({p: range(links) for p in ids if p != n}, config, now=0.0, node_id=n, boot=1)
            for n in ids
        }
        self.events: dict[int, list[MembershipEvent]] = {n: [] for n in ids}
        self.dead: set[int] = set()
        self.cut: set[tuple[int, int]] = set()  # (node, link): everything to or from that node on that link
        self.drop: dict[tuple[int, int, int], float] = {}  # (src, dst, link) -> loss probability
        self.rng = random.Random(7)
        self._queue: list[tuple[float, int, int, int, int, Ping | Pong]] = []
        self._seq = itertools.count()
        self.sent: list[tuple[int, int, Ping | Pong]] = []  # (src, dst, message) of everything sent
        self.timer_pings: list[tuple[int, int]] = []  # (src, dst) of pings sent from tick(), not on a beat
        self.beats: dict[int, list[float]] = {n: [] for n in ids}

    def _handle(self, node: int, outputs: list, by_timer: bool = False) -> None:  # type: ignore[type-arg]
        for out in outputs:
            if isinstance(out, SendPing | SendPong):
                self._send(node, out.node, out.link, out.ping if isinstance(out, SendPing) else out.pong)
                if by_timer and isinstance(out, SendPing):
                    self.timer_pings.append((node, out.node))
            elif isinstance(out, Beat):
                self.beats[node].append(out.at)
            else:
                self.events[node].append(out)

    def _send(self, src: int, dst: int, link: int, msg: Ping | Pong) -> None:
        if src in self.dead:
            return
        self.sent.append((src, dst, msg))
        if (src, link) in self.cut or (dst, link) in self.cut:
            return
        if self.rng.random() < self.drop.get((src, dst, link), 0.0):
            return
        # Encode and decode as the transport does, to check the messages survive the wire.
        wire = link_message_decoder.decode(link_message_encoder.encode(msg))
        heapq.heappush(self._queue, (self.now + self.delay, next(self._seq), src, dst, link, wire))

    def run_until(self, end: float) -> None:
        while True:
            deadlines = [(fd.next_deadline(), n) for n, fd in self.fds.items() if n not in self.dead]
            next_tick, node = min(deadlines)
            next_msg = self._queue[0][0] if self._queue else float("inf")
            t = min(next_tick, next_msg)
            if t > end:
                self.now = end
                return
            self.now = t
            if next_msg <= next_tick:
                _, _, src, dst, link, msg = heapq.heappop(self._queue)
                if dst in self.dead:
                    continue
                fd = self.fds[dst]
                boot = self.boots[src]
                if isinstance(msg, Ping):
                    self._handle(dst, fd.on_ping(t, src, link, msg, boot))
                else:
                    self._handle(dst, fd.on_pong(t, src, link, msg, boot))
            else:
                self._handle(node, self.fds[node].tick(t), by_timer=True)

    def restart(self, node: int, links: int = 1) -> None:
        self.boots[node] += 1
        self.dead.discard(node)
        others = [p for p in self.fds if p != node]
        config = self.fds[node].config
        self.fds[node] = FailureDetector(
            {p: range(links) for p in others}, config, now=self.now, node_id=node, boot=self.boots[node]
        )

    def of(self, node: int, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events[node] if isinstance(e, kind)]


def test_nodes_join_after_startup() -> None:
    net = Net(3)
    net.run_until(1.0)
    for n in (1, 2, 3):
        assert net.fds[n].up_nodes() == {1, 2, 3} - {n}
        assert {e.node for e in net.of(n, NodeJoined)} == {1, 2, 3} - {n}
        assert net.of(n, NodeLeft) == []


def test_dead_node_detected_within_timeout() -> None:
    config = FailureDetectorConfig()
    net = Net(3, config=config)
    net.run_until(1.0)
    killed_at = 1.0
    net.dead.add(3)
    net.run_until(3.0)
    for n in (1, 2):
        left = net.of(n, NodeLeft)
        assert [e.node for e in left] == [3]
        assert killed_at < left[0].at <= killed_at + config.link_timeout
        assert net.fds[n].up_nodes() == {1, 2} - {n}


def test_default_detection_is_sub_500ms() -> None:
    config = FailureDetectorConfig()
    assert config.link_timeout < 0.5


def test_custom_timers_bound_detection() -> None:
    config = FailureDetectorConfig(heartbeat_interval=0.05, link_timeout=0.15, pongs_to_up=3)
    net = Net(2, config=config)
    net.run_until(1.0)
    net.dead.add(2)
    net.run_until(2.0)
    left = net.of(1, NodeLeft)
    assert len(left) == 1 and 1.0 < left[0].at <= 1.15


def test_one_of_two_links_cut_keeps_membership() -> None:
    net = Net(2, links=2)
    net.run_until(1.0)
    net.cut.add((2, 1))
    net.run_until(3.0)
    assert net.of(1, NodeLeft) == [] and net.of(2, NodeLeft) == []
    downs = net.of(1, LinkDown)
    assert [(e.node, e.link) for e in downs] == [(2, 1)]
    assert net.fds[1].link_states() == {(2, 0): True, (2, 1): False}
    net.cut.clear()
    net.run_until(4.0)
    assert net.fds[1].link_states() == {(2, 0): True, (2, 1): True}
    assert len(net.of(1, NodeJoined)) == 1  # the node never left


def test_both_links_cut_node_leaves() -> None:
    net = Net(2, links=2)
    net.run_until(1.0)
    net.cut |= {(2, 0), (2, 1)}
    net.run_until(2.0)
    assert [e.node for e in net.of(1, NodeLeft)] == [2]


def test_one_way_cut_counts_as_cut() -> None:
    net = Net(2)
    net.run_until(1.0)
    net.drop[(2, 1, 0)] = 1.0  # node 2 hears node 1 but cannot answer
    net.run_until(2.0)
    assert [e.node for e in net.of(1, NodeLeft)] == [2]
    assert [e.node for e in net.of(2, NodeLeft)] == [1]


def test_flapping_link_never_comes_up() -> None:
    # Every other ping is lost: no two consecutive pongs, so the link must stay down.
    config = FailureDetectorConfig(pongs_to_up=2)
    net = Net(2, config=config)
    lost = itertools.cycle([True, False])
    original = net._send

    def lossy(src: int, dst: int, link: int, msg: Ping | Pong) -> None:
        if isinstance(msg, Ping) and src == 1 and next(lost):
            return
        original(src, dst, link, msg)

    net._send = lossy  # type: ignore[method-assign]
    net.run_until(5.0)
    assert net.of(1, LinkUp) == []
    assert not net.fds[1].is_up(2)


def test_lossy_but_alive_link_does_not_flap() -> None:
    # 10 % loss each way: a round trip fails 19 % of the time, four in a row about once a minute.
    net = Net(2)
    net.run_until(1.0)
    net.drop[(1, 2, 0)] = net.drop[(2, 1, 0)] = 0.1
    net.run_until(20.0)
    assert len(net.of(1, LinkDown)) <= 1
    assert net.fds[1].is_up(2)


def test_restarted_peer_reported_as_left_and_rejoined() -> None:
    net = Net(2)
    net.run_until(1.0)
    net.restart(2)  # faster than the timeout: only the new boot id shows it
    net.run_until(2.0)
    left = net.of(1, NodeLeft)
    assert [(e.node, e.reason) for e in left] == [(2, "restarted (new boot id)")]
    assert len(net.of(1, NodeJoined)) == 2
    assert net.fds[1].is_up(2)


def test_events_carry_times_in_order() -> None:
    net = Net(2)
    net.run_until(1.0)
    net.dead.add(2)
    net.run_until(2.0)
    times = [e.at for e in net.events[1]]
    assert times == sorted(times)
    kinds = [type(e) for e in net.events[1]]
    assert kinds == [LinkUp, NodeJoined, LinkDown, NodeLeft]


def test_unknown_peer_and_link_ignored() -> None:
    fd = FailureDetector({2: [0]}, now=0.0)
    assert fd.on_ping(0.0, 9, 0, Ping(1), boot=1) == []
    assert fd.on_ping(0.0, 2, 5, Ping(1), boot=1) == []
    assert fd.on_pong(0.0, 2, 0, Pong(99), boot=1) == []  # we never sent ping 99


def test_bad_config_refused() -> None:
    with pytest.raises(ValueError, match="longer than heartbeat_interval"):
        FailureDetectorConfig(heartbeat_interval=0.5, link_timeout=0.4)
    with pytest.raises(ValueError, match="between 1 and 8 links"):
        FailureDetector({2: range(9)}, now=0.0)


def test_one_round_trip_per_pair_and_interval() -> None:
    """Only the lower id of each pair pings (the other answers): half the packets of pinging both ways,
    which is most of an idle node's work."""
    config = FailureDetectorConfig()
    net = Net(3, config=config)
    net.run_until(1.0)
    net.sent.clear()  # from now on every link is up: steady state
    net.run_until(3.0)
    pings = [(src, dst) for src, dst, msg in net.sent if isinstance(msg, Ping)]
    pongs = [(src, dst) for src, dst, msg in net.sent if isinstance(msg, Pong)]
    assert all(src < dst for src, dst in pings) and all(src > dst for src, dst in pongs)
    pairs, intervals = 3, 2.0 / config.heartbeat_interval
    assert pairs * (intervals - 1) <= len(pings) <= pairs * (intervals + 1)
    assert len(pongs) >= len(pings) - pairs  # the last pings may still be on their way


def test_an_answerer_knocks_while_its_side_is_down() -> None:
    """A node that only answers still sends pings while its link is down, so a peer that cannot hear its
    answers (a wrong key, a one-way cut) gets packets to reject and report."""
    net = Net(2)
    net.drop[(1, 2, 0)] = 1.0  # node 2 never hears node 1
    net.run_until(1.0)
    assert sum(1 for src, _, msg in net.sent if src == 2 and isinstance(msg, Ping)) >= 9
    assert not net.fds[1].is_up(2) and not net.fds[2].is_up(1)  # its own round trips do not bring it up
    net.drop.clear()
    net.run_until(2.0)
    assert net.fds[1].is_up(2) and net.fds[2].is_up(1)
    net.sent.clear()
    net.run_until(3.0)
    assert not any(src == 2 and isinstance(msg, Ping) for src, _, msg in net.sent)


def test_answerer_detects_a_dead_pinger_within_the_timeout() -> None:
    config = FailureDetectorConfig()
    net = Net(2, config=config)
    net.run_until(1.0)
    net.dead.add(1)  # node 2 only answers: it must notice the pings stopped
    net.run_until(2.0)
    left = net.of(2, NodeLeft)
    assert [e.node for e in left] == [1]
    assert 1.0 < left[0].at <= 1.0 + config.link_timeout + net.delay  # timeout after the last ping arrived
    assert left[0].reason == "no answer on any link"


def test_answerer_follows_the_pingers_verdict_on_a_cut_it_cannot_see() -> None:
    """Node 2's pongs are lost: node 2 still receives pings, but the pinger's verdict tells it the link
    is down (one ping after the pinger noticed)."""
    config = FailureDetectorConfig()
    net = Net(2, config=config)
    net.run_until(1.0)
    net.drop[(2, 1, 0)] = 1.0
    net.run_until(2.0)
    [down] = net.of(2, LinkDown)
    assert "gets no answers" in down.reason
    assert down.at <= 1.0 + config.link_timeout + config.heartbeat_interval + 2 * net.delay
    net.drop.clear()
    net.run_until(3.0)
    assert net.fds[2].is_up(1) and net.fds[1].is_up(2)


def test_answerer_ignores_a_verdict_about_its_previous_boot() -> None:
    fd = FailureDetector({1: [0]}, now=0.0, node_id=2, boot=5)
    out = fd.on_ping(0.0, 1, 0, Ping(1, up_for=4), boot=9)
    assert [type(o) for o in out] == [SendPong]
    assert not fd.is_up(1)
    out = fd.on_ping(0.1, 1, 0, Ping(2, up_for=5), boot=9)
    assert [type(o) for o in out] == [SendPong, LinkUp, NodeJoined, Beat]  # node 1 now gives the beat


def test_a_ping_without_a_verdict_still_decodes() -> None:
    """A ping from a build before verdicts (one field) decodes with the link reported down."""
    old = link_message_encoder.encode(Pong(3)).replace(b"pong", b"ping")
    assert link_message_decoder.decode(old) == Ping(3, 0)


def test_pings_follow_the_lowest_node_s_beat() -> None:
    """Only the lowest-id node pings on its own timer; the others send their pings when its ping arrives,
    so a node wakes up for its peers' packets and not also for timers of its own."""
    config = FailureDetectorConfig()
    net = Net(5, links=2, config=config)
    net.run_until(1.0)
    net.timer_pings.clear()
    net.sent.clear()
    net.run_until(3.0)
    assert {src for src, _ in net.timer_pings} == {1}
    pings = [(src, dst) for src, dst, msg in net.sent if isinstance(msg, Ping)]
    intervals = 2.0 / config.heartbeat_interval
    for src, dst in itertools.combinations(range(1, 6), 2):  # each pair and link, once per interval
        assert 2 * (intervals - 1) <= pings.count((src, dst)) <= 2 * (intervals + 1)
    for node in range(2, 6):  # one beat per interval (the second link's ping is the same beat)
        beats = [at for at in net.beats[node] if at >= 1.0]
        assert intervals - 1 <= len(beats) <= intervals + 1


def test_the_next_node_keeps_time_when_the_lowest_dies() -> None:
    config = FailureDetectorConfig()
    net = Net(4, config=config)
    net.run_until(1.0)
    net.dead.add(1)
    net.run_until(1.0 + config.link_timeout + 0.1)  # everyone has seen node 1 leave
    assert all(not net.fds[n].is_up(1) for n in (2, 3, 4))
    net.timer_pings.clear()
    for events in net.events.values():
        events.clear()
    net.run_until(3.0)
    assert {src for src, _ in net.timer_pings} == {2}  # knocks on node 1 included
    assert net.fds[3].beat_source() == 2 and net.fds[4].beat_source() == 2
    assert not any(net.of(n, LinkDown) for n in (2, 3, 4))  # no link flapped on the hand-over


def test_beat_keeps_detection_bounds_under_jitter() -> None:
    """With packet delays that vary by more than the beat's lag, nodes fall back on their timers now and
    then; no link flaps, and a dead node is still declared within the timeout."""
    config = FailureDetectorConfig()
    net = Net(3, config=config)
    rng = random.Random(3)
    jittery = net._send

    def send(src: int, dst: int, link: int, msg: Ping | Pong) -> None:
        net.delay = 0.001 + rng.random() * 0.03
        jittery(src, dst, link, msg)

    net._send = send  # type: ignore[method-assign]
    net.run_until(5.0)
    assert not any(net.of(n, LinkDown) for n in (1, 2, 3))
    net.dead.add(2)
    net.run_until(6.0)
    for n in (1, 3):
        [left] = net.of(n, NodeLeft)
        assert left.at <= 5.0 + config.link_timeout + 0.04


def test_pings_to_a_dead_node_are_not_remembered_forever() -> None:
    """Pings and knocks on the beat still forget the unanswered ones older than the timeout."""
    config = FailureDetectorConfig()
    net = Net(4, config=config)
    net.run_until(1.0)
    net.dead.add(3)
    net.run_until(60.0)
    bound = config.link_timeout / config.heartbeat_interval + 1
    for node in (1, 2, 4):
        fd = net.fds[node]
        assert not fd.is_up(3)
        assert len(fd._peers[3].links[0].sent_at) <= bound  # white box: the memory a dead peer costs
