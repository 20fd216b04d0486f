"""The asyncio UDP shell around the wire codec and the failure detector: one socket per link.

Link ``i`` of this node talks to link ``i`` of every peer (one network per link, as knet does). The
transport pings every peer with a higher id on every link shared with it (see the failure detector), answers
pings, reports membership events,
and hands every other authentic packet to ``on_message(sender, channel, payload)``. Application traffic
goes out on the lowest-numbered link that is up to that peer (the first shared link while none is).

Messages to peers wait in an outbox while the transport handles a received packet or the node's
:class:`Alarm` runs its jobs, and those for the same peer and link then leave as one packet (a ``BUNDLE``):
a ping and a Raft heartbeat due at the same tick, or a pong and the reply to the heartbeat it came with,
cost one seal, one ``sendto`` and one wake-up of the receiver instead of two. A message sent at any other
time leaves at once (taking along whatever waits for its peer), so nothing waits on the commit path.
Order per peer and link is kept.

Nothing received from the network can raise into the caller: bad packets are dropped and counted
(``counters``), and notices about misconfigured peers are logged at most once a minute per peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

import msgspec

from hakeeper.messaging.failure_detector import (
    MAX_LINKS,
    Beat,
    FailureDetector,
    FailureDetectorConfig,
    MembershipEvent,
    Output,
    Ping,
    SendPing,
    SendPong,
    link_message_decoder,
    link_message_encoder,
)
from hakeeper.messaging.wire import (
    DEFAULT_MAX_PACKET,
    OVERHEAD,
    WITNESS_NODE_ID,
    Channel,
    Delivered,
    MessageTooLarge,
    WireCodec,
    bundle_size,
    decode_bundle,
    encode_bundle,
    envelope_size,
)

log = logging.getLogger(__name__)

Address = tuple[str, int]
Direction = Literal["in", "out"]
MessageHandler = Callable[[int, int, bytes], None]
MembershipHandler = Callable[[MembershipEvent], None]
LinkFilter = Callable[[Direction, int, Address], bool]
"""``(direction, link, remote address) -> keep?``: lets tests cut a link without root."""

_RECEIVE_BUFFER = 4 * 1024 * 1024


class TransportError(Exception):
    """The transport cannot start (bad configuration or an address it cannot bind)."""


Deadline = Callable[[], float]
Job = Callable[[float], None]
BeatHandler = Callable[[float], None]


class Alarm:
    """One asyncio timer for all of a node's deadline-driven work (failure detector, Raft tick, quorum).

    A job is ``deadline()`` (when it next has work; ``inf``: none) and ``run(now)``. The timer wakes at the
    earliest deadline and runs, in the order they were added, every job due by then with the same ``now``:
    work that falls due together (pings and a Raft tick on the same 100 ms grid) costs one wake-up instead
    of one each. At about 170 us per wake-up on a small VM, wake-ups are most of an idle node's CPU.

    A job may also follow the failure detector's beat (``on_beat``, see :mod:`hakeeper.messaging.cadence`):
    the transport calls :meth:`beat` while it handles the beat's packet, the job runs then if its cadence
    says so, and the timer is set again to the exact next deadline, so that work moved onto the beat does
    not also wake the node at its old time.
    """

    def __init__(self) -> None:
        self._jobs: list[tuple[Deadline, Job]] = []
        self._beat_handlers: list[BeatHandler] = []
        self._after: list[Callable[[], None]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._closed = False
        self.firing = False  # running jobs now: what they send can wait for the after-hooks

    @property
    def next_wake(self) -> float:
        """When the timer fires next (loop time; ``inf``: not set)."""
        return self._handle.when() if self._handle is not None else float("inf")

    def after_jobs(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` after the due jobs of every wake-up (the transport sends what they queued)."""
        self._after.append(hook)

    def add(self, deadline: Deadline, run: Job, on_beat: BeatHandler | None = None) -> None:
        self._jobs.append((deadline, run))
        if on_beat is not None:
            self._beat_handlers.append(on_beat)
        self.wake_by(deadline())

    def remove(
        self, run: Job, after: Callable[[], None] | None = None, on_beat: BeatHandler | None = None
    ) -> None:
        self._jobs = [job for job in self._jobs if job[1] != run]
        self._after = [hook for hook in self._after if hook != after]
        self._beat_handlers = [handler for handler in self._beat_handlers if handler != on_beat]

    def beat(self, now: float) -> None:
        """The beat arrived (the caller holds what the handlers send and flushes it afterwards)."""
        for handler in list(self._beat_handlers):
            try:
                handler(now)
            except Exception:  # as in _fire: one job's bug must not stop the rest
                log.exception("a beat handler failed (%s); the others go on", handler)
        self._rearm()

    def wake_by(self, when: float) -> None:
        """Fire no later than ``when``: call it when a job's deadline may have moved closer."""
        handle = self._handle
        if self._closed or when == float("inf") or (handle is not None and handle.when() <= when):
            return  # an earlier wake-up finds nothing due at worst, and re-arms
        if handle is not None:
            handle.cancel()
        self._handle = asyncio.get_running_loop().call_at(when, self._fire)

    def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        now = asyncio.get_running_loop().time()
        self.firing = True
        for deadline, run in list(self._jobs):
            if deadline() <= now:
                try:
                    run(now)
                except Exception:  # a bug in one job must not stop the others or the timer
                    log.exception("a timer job failed (%s); the others go on", run)
        self.firing = False
        for hook in list(self._after):
            hook()
        self.wake_by(self._soonest())

    def _soonest(self) -> float:
        soonest = float("inf")
        for deadline, _ in self._jobs:
            due = deadline()
            if due < soonest:
                soonest = due
        return soonest

    def _rearm(self) -> None:
        """Set the timer to the soonest deadline, later or earlier than it was."""
        soonest, handle = self._soonest(), self._handle
        if handle is not None and handle.when() == soonest:
            return
        if handle is not None:
            handle.cancel()
            self._handle = None
        self.wake_by(soonest)


def new_boot_id() -> int:
    """A boot id larger than any earlier boot of this node, never reused.

    The wall clock in nanoseconds with its low 16 bits replaced by random bits: a restart takes far longer
    than 65 microseconds, so ids grow from boot to boot, and the random bits keep two nodes (or a clock
    that repeats a value) from producing the same id. Pitfall: if the clock is set back across a restart,
    peers refuse the new boot as "old_boot" (and log why) until the clock passes the old value.
    """
    return (time.time_ns() & ~0xFFFF) | secrets.randbits(16)


def parse_address(text: str) -> Address:
    """``host:port`` or ``[v6-host]:port`` -> (host, port), with an error an operator can act on."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not an address: write HOST:PORT, for example 192.0.2.10:5405")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class TransportConfig:
    """``links[i]`` is this node's address on link i; ``peers[n][i]`` is node n's address on link i."""

    node_id: int
    cluster_name: str
    cluster_key: bytes = field(repr=False)
    links: Sequence[Address]
    peers: Mapping[int, Sequence[Address]]
    failure_detector: FailureDetectorConfig = field(default_factory=FailureDetectorConfig)
    witness: Address | None = None
    max_packet: int = DEFAULT_MAX_PACKET

    def __post_init__(self) -> None:
        if self.node_id <= WITNESS_NODE_ID:
            raise ValueError(f"node ids start at 1, not {self.node_id} (0 is the witness)")
        if not 1 <= len(self.links) <= MAX_LINKS:
            raise ValueError(f"a node needs between 1 and {MAX_LINKS} links, not {len(self.links)}")
        for node, addresses in self.peers.items():
            if node == self.node_id or node <= WITNESS_NODE_ID:
                raise ValueError(f"peer id {node} is not valid (it is this node's id, or below 1)")
            if not addresses:
                raise ValueError(f"peer {node} has no address")

    def shared_links(self, node: int) -> range:
        return range(min(len(self.links), len(self.peers[node])))


@dataclass
class _Outgoing:
    """Messages waiting for the end of the turn, for one peer on one link."""

    items: list[tuple[int, bytes]] = field(default_factory=list)  # (channel, payload)
    size: int = 0  # their envelopes' bytes


class _LinkSocket(asyncio.DatagramProtocol):
    def __init__(self, owner: Transport, link: int) -> None:
        self.owner = owner
        self.link = link
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # selector transports don't subclass it

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.owner._received(self.link, data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.owner._count("socket_errors")


class Transport:
    """One node's endpoint on every link."""

    def __init__(
        self,
        config: TransportConfig,
        *,
        on_message: MessageHandler | None = None,
        on_membership: MembershipHandler | None = None,
        link_filter: LinkFilter | None = None,
        boot_id: int | None = None,
        alarm: Alarm | None = None,
    ) -> None:
        """``alarm``: the node's shared timer, when the transport's pings should share wake-ups with other
        periodic work (the message service's Raft tick); by default the transport has its own."""
        self.config = config
        self.boot_id = new_boot_id() if boot_id is None else boot_id
        known = frozenset(config.peers) | ({WITNESS_NODE_ID} if config.witness else frozenset())
        self.codec = WireCodec(
            node_id=config.node_id,
            cluster_name=config.cluster_name,
            cluster_key=config.cluster_key,
            boot_id=self.boot_id,
            known_senders=known,
            max_packet=config.max_packet,
        )
        self.on_message = on_message
        self.on_membership = on_membership
        self.link_filter = link_filter
        self._fd: FailureDetector | None = None
        self._sockets: list[_LinkSocket] = []
        self._alarm = alarm or Alarm()
        self._own_alarm = alarm is None
        self.started_at = 0.0  # loop time at start: the phase of the node's own timers until it hears a beat
        self._loop: asyncio.AbstractEventLoop | None = None
        self._counters: dict[str, int] = {}
        self._outbox: dict[tuple[int, int], _Outgoing] = {}  # (peer, link) -> messages for it
        self._flush_soon: asyncio.Handle | None = None
        self._receiving = False  # in a packet's handler: the flush waits for everything it caused
        self._handed_up = False  # that packet carried a message for on_message

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        try:
            for link, address in enumerate(self.config.links):
                sock = bind_udp(address, f"link {link}")
                proto = _LinkSocket(self, link)
                await loop.create_datagram_endpoint(lambda p=proto: p, sock=sock)  # type: ignore[misc]
                self._sockets.append(proto)
        except BaseException:
            await self.close()
            raise
        peers = {n: self.config.shared_links(n) for n in self.config.peers}
        fd_config, node_id = self.config.failure_detector, self.config.node_id
        now = self.started_at = loop.time()
        self._fd = FailureDetector(peers, fd_config, now=now, node_id=node_id, boot=self.boot_id)
        self._on_fd_deadline(now)
        self._alarm.add(self._fd_deadline, self._on_fd_deadline)
        self._alarm.after_jobs(self.flush)

    async def close(self) -> None:
        self.flush()
        if self._own_alarm:
            self._alarm.close()
        else:
            self._alarm.remove(self._on_fd_deadline, self.flush)
        for s in self._sockets:
            if s.transport is not None:
                s.transport.close()
        if self._sockets:
            await asyncio.sleep(0)  # asyncio closes the sockets on the next turn: free the ports now
        self._sockets = []

    async def __aenter__(self) -> Transport:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- queries ----------------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        """Packets sent, received, delivered and dropped (``dropped_<reason>``), and shell-level events."""
        merged = dict(self.codec.counters)
        for key, value in self._counters.items():
            merged[key] = merged.get(key, 0) + value
        return merged

    def up_nodes(self) -> frozenset[int]:
        return self._fd.up_nodes() if self._fd else frozenset()

    def link_states(self) -> dict[tuple[int, int], bool]:
        return self._fd.link_states() if self._fd else {}

    @property
    def local_addresses(self) -> list[Address]:
        out: list[Address] = []
        for s in self._sockets:
            assert s.transport is not None
            host, port = s.transport.get_extra_info("sockname")[:2]
            out.append((str(host), int(port)))
        return out

    # --- sending ----------------------------------------------------------------------------------

    def send(self, node: int, channel: int, payload: bytes) -> bool:
        """Send one message to a peer (see the module docstring for when it leaves); False (and counted)
        if the peer is unknown or the message too large for a packet."""
        if node not in self.config.peers or not self._sockets:
            self._count("send_no_route")
            return False
        return self._send_on(self._best_link(node), node, channel, payload)

    def flush(self) -> None:
        """Send every queued message now, one packet per peer and link."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        if not self._outbox:
            return
        outbox, self._outbox = self._outbox, {}
        if not self._sockets:  # closed meanwhile
            self._counters["send_no_route"] = self._counters.get("send_no_route", 0) + len(outbox)
            return
        for (node, link), out in outbox.items():
            self._send_packet(link, node, out)

    def send_witness(self, payload: bytes) -> bool:
        """Send a witness-channel message to the configured witness (over link 0)."""
        if self.config.witness is None or not self._sockets:
            self._count("send_no_route")
            return False
        return self._send_to(0, self.config.witness, WITNESS_NODE_ID, Channel.WITNESS, payload)

    def _best_link(self, node: int) -> int:
        shared = self.config.shared_links(node)
        fd = self._fd
        if fd is None:
            return shared[0]
        return next((i for i in shared if fd.is_link_up(node, i)), shared[0])

    def _send_on(self, link: int, node: int, channel: int, payload: bytes) -> bool:
        """Send or hold a message for a peer on a link (see the module docstring)."""
        size = envelope_size(len(payload))
        room = self.config.max_packet - OVERHEAD
        if size > room:
            self._count("send_oversized")
            log.warning(
                "a %d-byte message for node %d does not fit in one packet (limit %d bytes)",
                len(payload),
                node,
                self.config.max_packet,
            )
            return False
        holding = self._receiving or self._alarm.firing
        if not holding and not self._outbox:  # the commit path: straight out, nothing to bundle with
            return self._send_to(link, self.config.peers[node][link], node, channel, payload)
        key = (node, link)
        out = self._outbox.get(key)
        if out is None:
            out = self._outbox[key] = _Outgoing()
        elif bundle_size(out.size + size, len(out.items) + 1) > room:
            self._send_packet(link, node, out)  # full: this one starts the next packet
            out = self._outbox[key] = _Outgoing()
        out.items.append((channel, payload))
        out.size += size
        if not holding:
            self.flush()  # nothing else is due with it: no reason to wait (it takes along what waits)
        return True

    def _send_packet(self, link: int, node: int, out: _Outgoing) -> None:
        if len(out.items) == 1:
            channel, payload = out.items[0]
        else:
            channel, payload = Channel.BUNDLE, encode_bundle(out.items)
        self._send_to(link, self.config.peers[node][link], node, channel, payload)

    def _send_to(self, link: int, address: Address, node: int, channel: int, payload: bytes) -> bool:
        try:
            packet = self.codec.seal(node, channel, payload)
        except MessageTooLarge as err:
            self._count("send_oversized")
            log.warning("%s", err)
            return False
        if self.link_filter is not None and not self.link_filter("out", link, address):
            self._count("filtered_out")
            return True  # lost on the way, as far as the sender can tell
        sock = self._sockets[link].transport
        if sock is None or sock.is_closing():
            self._count("send_no_route")
            return False
        sock.sendto(packet, address)
        return True

    # --- receiving --------------------------------------------------------------------------------

    def _received(self, link: int, data: bytes, addr: Address) -> None:
        if self.link_filter is not None and not self.link_filter("in", link, addr):
            self._count("filtered_in")
            return
        assert self._loop is not None
        now = self._loop.time()
        result = self.codec.open(data, now)
        if not isinstance(result, Delivered):
            if result.notice:
                log.warning("link %d from %s:%d: %s", link, addr[0], addr[1], result.notice)
            return
        self._receiving, self._handed_up = True, False
        try:
            if result.channel == Channel.BUNDLE:
                self._unbundle(now, link, result)
            else:
                self._dispatch(now, link, result)
        finally:
            self._receiving = False
        if self._outbox and self._flush_soon is None:
            if self._handed_up:
                # After the handlers it scheduled (the message service's Ready): their reply joins ours.
                self._flush_soon = self._loop.call_soon(self.flush)
            else:
                self.flush()  # only pings and pongs: nothing else answers this packet

    def _unbundle(self, now: float, link: int, bundle: Delivered) -> None:
        envelopes = decode_bundle(bundle.payload)
        if envelopes is None:
            self._count("dropped_malformed_bundle")
            return
        for env in envelopes:
            if env.channel == Channel.BUNDLE:
                self._count("dropped_nested_bundle")
                continue
            self._dispatch(
                now, link, Delivered(bundle.sender, bundle.boot, bundle.seq, env.channel, env.payload)
            )

    def _dispatch(self, now: float, link: int, packet: Delivered) -> None:
        if packet.channel == Channel.LINK:
            self._link_message(now, link, packet)
        elif packet.channel in (Channel.RAFT, Channel.MESSAGE, Channel.WITNESS):
            self._deliver(packet)
        else:
            self._count("dropped_unknown_channel")

    def _link_message(self, now: float, link: int, packet: Delivered) -> None:
        if self._fd is None:  # a ping that arrived while the transport starts or closes
            self._count("dropped_not_running")
            return
        try:
            msg = link_message_decoder.decode(packet.payload)
        except msgspec.DecodeError:
            self._count("dropped_malformed_link_message")
            return
        if isinstance(msg, Ping):
            self._apply(self._fd.on_ping(now, packet.sender, link, msg, packet.boot))
        else:
            self._apply(self._fd.on_pong(now, packet.sender, link, msg, packet.boot))
        # A ping can bring the detector's deadline closer (an answering node's link just came up).
        self._alarm.wake_by(self._fd.next_deadline())

    def _deliver(self, packet: Delivered) -> None:
        if self.on_message is None:
            return
        self._handed_up = True
        try:
            self.on_message(packet.sender, packet.channel, packet.payload)
        except Exception:
            self._count("callback_errors")
            log.exception("the message handler failed on a message from node %d", packet.sender)

    # --- failure detector -------------------------------------------------------------------------

    def _fd_deadline(self) -> float:
        if self._fd is None or not self._sockets:
            return float("inf")  # not started, or closed
        return self._fd.next_deadline()

    def _on_fd_deadline(self, now: float) -> None:
        if self._fd is not None and self._sockets:
            self._apply(self._fd.tick(now))

    def _apply(self, outputs: list[Output]) -> None:
        for out in outputs:
            if isinstance(out, SendPing):
                self._send_on(out.link, out.node, Channel.LINK, link_message_encoder.encode(out.ping))
            elif isinstance(out, SendPong):
                self._send_on(out.link, out.node, Channel.LINK, link_message_encoder.encode(out.pong))
            elif isinstance(out, Beat):
                self._alarm.beat(out.at)
            else:
                log.info("membership: %s", out)
                if self.on_membership is not None:
                    try:
                        self.on_membership(out)
                    except Exception:
                        self._count("callback_errors")
                        log.exception("the membership handler failed on %s", out)

    def _count(self, key: str) -> None:
        self._counters[key] = self._counters.get(key, 0) + 1


def bind_udp(address: Address, purpose: str) -> socket.socket:
    """A non-blocking UDP socket bound to ``address``, with a large receive buffer against bursts."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        with contextlib.suppress(OSError):  # the kernel may cap it; a smaller buffer still works
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        sock.bind(address)
        sock.setblocking(False)
    except OSError as err:
        sock.close()
        raise TransportError(
            f"cannot listen on {purpose} address {address[0]}:{address[1]}: {err.strerror}; "
            "check that the address belongs to this host and no other process uses the port"
        ) from None
    return sock
