"""Multi-link failure detector (sans-I/O): heartbeats per link, link and node up/down, membership events.

Every link (up to 8 per node, as knet allows) is probed on its own. Of each pair of nodes, the one with the
lower id (the *pinger*) sends a ``Ping`` every ``heartbeat_interval`` and the other (the *answerer*) answers
with a ``Pong`` on the same link, so a link is judged on round trips and a one-way cut counts as a cut.
One round trip per pair and interval, not one each way: half the packets, which is most of an idle node's
CPU. Hysteresis, at the pinger:

* a link goes **up** after ``pongs_to_up`` pongs answering consecutive pings (no ping lost in between);
* a link goes **down** when no pong has arrived for ``link_timeout``.

Each ping carries the pinger's verdict (the answerer's boot id while the link is up, else 0), and the
answerer follows it: its side of the link is up while the verdict names its own boot and pings keep arriving,
and down when the verdict says so or no ping came for ``link_timeout``. Both ends therefore detect a dead
peer within ``link_timeout``; the answerer learns of a cut in its own sending direction one ping later.
While its side of a link is down, the answerer pings too (its pongs change nothing), so a peer that cannot
hear it, for instance because of a wrong cluster key, still receives its packets and reports them.
A detector built without its node id pings every peer (both ends then ping, as two pingers).

A node is up while any of its links is up. A peer that comes back with a newer boot id has restarted:
it is reported as having left (its state was lost) and joins again through the normal hysteresis.

Pings keep to one phase cluster-wide (see :mod:`hakeeper.messaging.cadence`): the lowest-id node that is up
pings on its own timer, and every other node sends its pings when that node's ping (the *beat*) arrives,
so a node wakes up about once per peer and interval rather than also on timers of its own. Each beat is
reported (``Beat``) for the node's other periodic work to follow.

Drive it with ``tick(now)`` at ``next_deadline()`` and feed it pings and pongs as they arrive; it returns
the pings and pongs to send and the membership events, each stamped with the time it was observed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import msgspec

from hakeeper.messaging.cadence import Cadence

MAX_LINKS = 8


class Ping(msgspec.Struct, tag="ping", array_like=True, frozen=True):
    seq: int
    up_for: int = 0  # the pinger sees the link up with this boot of the answerer; 0: down


class Pong(msgspec.Struct, tag="pong", array_like=True, frozen=True):
    seq: int


LinkMessage = Ping | Pong
link_message_encoder = msgspec.msgpack.Encoder()
link_message_decoder = msgspec.msgpack.Decoder(LinkMessage)


@dataclass(frozen=True)
class FailureDetectorConfig:
    """Timers in seconds. Defaults declare a dead node within 400 ms of its last answer."""

    heartbeat_interval: float = 0.1
    link_timeout: float = 0.4
    pongs_to_up: int = 2

    def __post_init__(self) -> None:
        if not self.heartbeat_interval > 0:
            raise ValueError(f"heartbeat_interval must be positive, not {self.heartbeat_interval}")
        if not self.link_timeout > self.heartbeat_interval:
            raise ValueError(
                f"link_timeout ({self.link_timeout} s) must be longer than heartbeat_interval "
                f"({self.heartbeat_interval} s), or every link would flap"
            )
        if self.pongs_to_up < 1:
            raise ValueError(f"pongs_to_up must be at least 1, not {self.pongs_to_up}")


# --- outputs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendPing:
    node: int
    link: int
    ping: Ping


@dataclass(frozen=True, slots=True)
class SendPong:
    node: int
    link: int
    pong: Pong


@dataclass(frozen=True, slots=True)
class LinkUp:
    node: int
    link: int
    at: float


@dataclass(frozen=True, slots=True)
class LinkDown:
    node: int
    link: int
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class NodeJoined:
    node: int
    at: float


@dataclass(frozen=True, slots=True)
class NodeLeft:
    node: int
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Beat:
    """The beat (a ping from the lowest-id peer that is up) arrived: periodic work may run now."""

    at: float


MembershipEvent = LinkUp | LinkDown | NodeJoined | NodeLeft
Output = SendPing | SendPong | Beat | MembershipEvent


# --- state ----------------------------------------------------------------------------------------


@dataclass
class _Link:
    pings: Cadence
    pinger: bool  # this end pings; otherwise it answers and follows the pinger's verdict
    up: bool = False
    last_ping_at: float = 0.0  # answerer: when the last ping arrived
    ping_seq: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)  # outstanding pings younger than the timeout
    last_pong_at: float = 0.0
    last_pong_seq: int = 0
    streak: int = 0


@dataclass
class _Peer:
    links: dict[int, _Link]
    boot: int | None = None

    @property
    def up(self) -> bool:
        return any(link.up for link in self.links.values())


class FailureDetector:
    """Heartbeats and membership for all peers of one node."""

    def __init__(
        self,
        peers: Mapping[int, Iterable[int]],
        config: FailureDetectorConfig | None = None,
        *,
        now: float,
        node_id: int = 0,
        boot: int = 0,
    ) -> None:
        """``peers`` maps each peer node id to the link numbers (0-7) it shares with this node. ``node_id``
        and ``boot`` are this node's own: they decide which end of each pair pings (the lower id) and let
        an answerer tell that a pinger's verdict is about this boot, not an earlier one."""
        self.config = config or FailureDetectorConfig()
        self._boot = boot
        self._peers: dict[int, _Peer] = {}
        for node, links in peers.items():
            ids = sorted(set(links))
            if not ids or ids[0] < 0 or ids[-1] >= MAX_LINKS:
                raise ValueError(
                    f"node {node} needs between 1 and {MAX_LINKS} links numbered 0-{MAX_LINKS - 1}"
                )
            pinger = node_id < node
            interval = self.config.heartbeat_interval
            self._peers[node] = _Peer({i: _Link(Cadence(interval, now), pinger=pinger) for i in ids})
        self._lower = sorted(n for n in self._peers if n < node_id)  # the candidates for the beat
        self._last_beat = float("-inf")

    # --- queries ----------------------------------------------------------------------------------

    def up_nodes(self) -> frozenset[int]:
        return frozenset(n for n, p in self._peers.items() if p.up)

    def is_up(self, node: int) -> bool:
        peer = self._peers.get(node)
        return peer is not None and peer.up

    def is_link_up(self, node: int, link: int) -> bool:
        peer = self._peers.get(node)
        state = peer.links.get(link) if peer is not None else None
        return state is not None and state.up

    def link_states(self) -> dict[tuple[int, int], bool]:
        return {(n, i): link.up for n, p in self._peers.items() for i, link in p.links.items()}

    def next_deadline(self) -> float:
        """The next time ``tick`` has something to do."""
        # Asked after every packet and at every wake-up: plain loops, no lists or calls per link.
        timeout = self.config.link_timeout
        soonest = float("inf")
        for peer in self._peers.values():
            for link in peer.links.values():
                if not link.up:
                    due = link.pings.next_at
                elif not link.pinger:
                    due = link.last_ping_at + timeout
                else:
                    expiry = link.last_pong_at + timeout
                    next_ping = link.pings.next_at
                    due = next_ping if next_ping < expiry else expiry
                if due < soonest:
                    soonest = due
        return soonest

    # --- inputs -----------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Output]:
        """Send due pings and declare links whose pongs stopped arriving down."""
        out: list[Output] = []
        for node, peer in self._peers.items():
            was_up = peer.up
            for number, link in peer.links.items():
                if link.pinger:
                    self._expire(node, number, link, now, out)
                    self._maybe_ping(node, peer, number, link, now, out)
                else:
                    self._answerer_tick(node, peer, number, link, now, out)
            if was_up and not peer.up:
                out.append(NodeLeft(node, now, "no answer on any link"))
        return out

    def on_ping(self, now: float, node: int, link: int, ping: Ping, boot: int) -> list[Output]:
        """A peer's ping arrived on ``link``: answer it on the same link (and follow its verdict)."""
        peer = self._peers.get(node)
        if peer is None or link not in peer.links:
            return []
        out = self._check_boot(now, node, peer, boot)
        out.append(SendPong(node, link, Pong(ping.seq)))
        state = peer.links[link]
        if state.pinger:
            return out  # a knock from the answerer (or a peer built without its id): we judge by our pongs
        state.last_ping_at = now
        was_up = peer.up
        if ping.up_for == self._boot and not state.up:
            state.up = True
            out.append(LinkUp(node, link, now))
            if not was_up:
                out.append(NodeJoined(node, now))
        elif ping.up_for != self._boot and state.up:
            self._link_down(node, link, state, now, f"node {node} gets no answers on it", out)
            if not peer.up:
                out.append(NodeLeft(node, now, "no answer on any link"))
        if (
            peer.up
            and node == self.beat_source()
            and now - self._last_beat >= self.config.heartbeat_interval / 2
        ):
            self._follow_beat(now, out)  # once per beat: its pings on the other links are the same beat
        return out

    def beat_source(self) -> int | None:
        """The peer whose pings this node's periodic work follows: the lowest-id one that is up, if its id
        is below ours (otherwise this node keeps time itself)."""
        for node in self._lower:
            if self._peers[node].up:
                return node
        return None

    def on_pong(self, now: float, node: int, link: int, pong: Pong, boot: int) -> list[Output]:
        """A peer answered one of our pings on ``link``."""
        peer = self._peers.get(node)
        if peer is None or link not in peer.links:
            return []
        out = self._check_boot(now, node, peer, boot)
        state = peer.links[link]
        if state.sent_at.pop(pong.seq, None) is None or not state.pinger:
            return out  # not a ping we sent and still wait for, or an answerer's knock: changes nothing
        state.last_pong_at = now
        state.streak = state.streak + 1 if pong.seq == state.last_pong_seq + 1 else 1
        state.last_pong_seq = max(state.last_pong_seq, pong.seq)
        if not state.up and state.streak >= self.config.pongs_to_up:
            was_up = peer.up
            state.up = True
            out.append(LinkUp(node, link, now))
            if not was_up:
                out.append(NodeJoined(node, now))
        return out

    # --- helpers ----------------------------------------------------------------------------------

    def _follow_beat(self, now: float, out: list[Output]) -> None:
        self._last_beat = now
        out.append(Beat(now))
        interval = self.config.heartbeat_interval
        for node, peer in self._peers.items():
            for number, link in peer.links.items():
                # Our pings, and our knocks on links whose other end does not hear us (see tick).
                if (link.pinger or not link.up) and link.pings.on_beat(now, interval):
                    self._ping(node, peer, number, link, now, out)

    def _maybe_ping(
        self, node: int, peer: _Peer, number: int, link: _Link, now: float, out: list[Output]
    ) -> None:
        if now < link.pings.next_at:
            return
        link.pings.ran(now)
        self._ping(node, peer, number, link, now, out)

    def _ping(self, node: int, peer: _Peer, number: int, link: _Link, now: float, out: list[Output]) -> None:
        self._forget_old_pings(link, now)  # a pong later than the timeout counts for nothing
        link.ping_seq += 1
        link.sent_at[link.ping_seq] = now
        verdict = peer.boot if link.up and peer.boot is not None else 0
        out.append(SendPing(node, number, Ping(link.ping_seq, verdict)))

    def _answerer_tick(
        self, node: int, peer: _Peer, number: int, link: _Link, now: float, out: list[Output]
    ) -> None:
        timeout = self.config.link_timeout
        if link.up:
            if now >= link.last_ping_at + timeout:
                self._link_down(node, number, link, now, f"no ping for {timeout:g} s", out)
            return
        self._maybe_ping(node, peer, number, link, now, out)  # knock until the pinger brings the link up

    def _forget_old_pings(self, link: _Link, now: float) -> None:
        timeout = self.config.link_timeout
        for seq in [s for s, sent in link.sent_at.items() if now - sent >= timeout]:
            del link.sent_at[seq]

    def _expire(self, node: int, number: int, link: _Link, now: float, out: list[Output]) -> None:
        timeout = self.config.link_timeout
        if link.up and now >= link.last_pong_at + timeout:  # the same sum as next_deadline: no FP gap
            self._link_down(node, number, link, now, f"no pong for {timeout:g} s", out)

    @staticmethod
    def _link_down(node: int, number: int, link: _Link, now: float, reason: str, out: list[Output]) -> None:
        link.up = False
        link.streak = 0
        out.append(LinkDown(node, number, now, reason))

    def _check_boot(self, now: float, node: int, peer: _Peer, boot: int) -> list[Output]:
        if peer.boot is None or boot <= peer.boot:
            peer.boot = boot if peer.boot is None else peer.boot
            return []
        peer.boot = boot
        out: list[Output] = []
        was_up = peer.up
        for number, link in peer.links.items():
            link.streak = 0
            if link.up:
                link.up = False
                out.append(LinkDown(node, number, now, "peer restarted"))
        if was_up:
            out.append(NodeLeft(node, now, "restarted (new boot id)"))
        return out
