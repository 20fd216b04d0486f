"""Multi-link failure detector (sans-I/O): heartbeats per link, link and node up/down, membership events.

Every link (up to 8 per node, as knet allows) is probed on its own: this node sends a ``Ping`` every
``heartbeat_interval`` and the peer answers with a ``Pong`` on the same link, so a link is judged on round
trips and a one-way cut counts as a cut. Hysteresis:

* a link goes **up** after ``pongs_to_up`` pongs answering consecutive pings (no ping lost in between);
* a link goes **down** when no pong has arrived for ``link_timeout``.

A node is up while any of its links is up. A peer that comes back with a newer boot id has restarted:
it is reported as having left (its state was lost) and joins again through the normal hysteresis.

Drive it with ``tick(now)`` at ``next_deadline()`` and feed it pings and pongs as they arrive; it returns
the pings and pongs to send and the membership events, each stamped with the time it was observed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import msgspec

MAX_LINKS = 8


class Ping(msgspec.Struct, tag="ping", array_like=True, frozen=True):
    seq: int


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


MembershipEvent = LinkUp | LinkDown | NodeJoined | NodeLeft
Output = SendPing | SendPong | MembershipEvent


# --- state ----------------------------------------------------------------------------------------


@dataclass
class _Link:
    next_ping_at: float
    up: bool = False
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
    ) -> None:
        """``peers`` maps each peer node id to the link numbers (0-7) it shares with this node."""
        self.config = config or FailureDetectorConfig()
        self._peers: dict[int, _Peer] = {}
        for node, links in peers.items():
            ids = sorted(set(links))
            if not ids or ids[0] < 0 or ids[-1] >= MAX_LINKS:
                raise ValueError(
                    f"node {node} needs between 1 and {MAX_LINKS} links numbered 0-{MAX_LINKS - 1}"
                )
            self._peers[node] = _Peer({i: _Link(next_ping_at=now) for i in ids})

    # --- queries ----------------------------------------------------------------------------------

    def up_nodes(self) -> frozenset[int]:
        return frozenset(n for n, p in self._peers.items() if p.up)

    def is_up(self, node: int) -> bool:
        peer = self._peers.get(node)
        return peer is not None and peer.up

    def link_states(self) -> dict[tuple[int, int], bool]:
        return {(n, i): link.up for n, p in self._peers.items() for i, link in p.links.items()}

    def next_deadline(self) -> float:
        """The next time ``tick`` has something to do."""
        timeout = self.config.link_timeout
        deadlines = [
            min(link.next_ping_at, link.last_pong_at + timeout) if link.up else link.next_ping_at
            for p in self._peers.values()
            for link in p.links.values()
        ]
        return min(deadlines, default=float("inf"))

    # --- inputs -----------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Output]:
        """Send due pings and declare links whose pongs stopped arriving down."""
        out: list[Output] = []
        for node, peer in self._peers.items():
            was_up = peer.up
            for number, link in peer.links.items():
                self._expire(node, number, link, now, out)
                self._maybe_ping(node, number, link, now, out)
            if was_up and not peer.up:
                out.append(NodeLeft(node, now, "no answer on any link"))
        return out

    def on_ping(self, now: float, node: int, link: int, ping: Ping, boot: int) -> list[Output]:
        """A peer's ping arrived on ``link``: answer it on the same link."""
        peer = self._peers.get(node)
        if peer is None or link not in peer.links:
            return []
        out = self._check_boot(now, node, peer, boot)
        out.append(SendPong(node, link, Pong(ping.seq)))
        return out

    def on_pong(self, now: float, node: int, link: int, pong: Pong, boot: int) -> list[Output]:
        """A peer answered one of our pings on ``link``."""
        peer = self._peers.get(node)
        if peer is None or link not in peer.links:
            return []
        out = self._check_boot(now, node, peer, boot)
        state = peer.links[link]
        if state.sent_at.pop(pong.seq, None) is None:
            return out  # an answer to a ping we never sent or gave up on: no evidence of anything
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

    def _maybe_ping(self, node: int, number: int, link: _Link, now: float, out: list[Output]) -> None:
        if now < link.next_ping_at:
            return
        link.ping_seq += 1
        link.sent_at[link.ping_seq] = now
        interval = self.config.heartbeat_interval
        # Keep the cadence, but after a stall (a paused process) restart it rather than send a burst.
        link.next_ping_at = max(link.next_ping_at + interval, now + interval / 2)
        out.append(SendPing(node, number, Ping(link.ping_seq)))

    def _expire(self, node: int, number: int, link: _Link, now: float, out: list[Output]) -> None:
        timeout = self.config.link_timeout
        for seq in [s for s, sent in link.sent_at.items() if now - sent >= timeout]:
            del link.sent_at[seq]
        if link.up and now >= link.last_pong_at + timeout:  # the same sum as next_deadline: no FP gap
            link.up = False
            link.streak = 0
            out.append(LinkDown(node, number, now, f"no pong for {timeout:g} s"))

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
