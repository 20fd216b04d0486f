"""The packet format and the sans-I/O codec that seals and opens packets.

A packet is a cleartext header, authenticated as AEAD associated data, followed by the encrypted envelope::

    magic "HK" (2) | wire version (1) | sender node id (4)      <- the preamble: stable in every version
    cluster id hash (8) | destination node id (4) | boot id (8) | sequence number (8)
    AES-256-GCM( msgpack Envelope(channel, payload) ) + 16-byte tag

The preamble never changes between versions, so a node can always say *which* peer speaks *which*
version. The envelope carries opaque ``bytes`` on a numbered channel; each layer (failure detector, Raft,
node-to-node messages, witness) encodes its own msgspec Structs into that payload. On the ``BUNDLE``
channel the payload is a msgpack array of envelopes: messages for one peer that leave in the same turn of
the event loop (a ping and a Raft heartbeat, a pong and its reply) share one packet, one seal and one
wake-up of the receiver (version 2; version 1 had no bundles).

``WireCodec.open`` never raises on network input: every packet either is delivered or is dropped and
counted by reason, optionally with a rate-limited notice for the operator.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum

import msgspec

from hakeeper.messaging.crypto import (
    TAG_SIZE,
    ReplayVerdict,
    ReplayWindow,
    SenderCipher,
    cluster_id_hash,
)

WIRE_MAGIC = b"HK"
WIRE_VERSION = 2

_PREAMBLE = struct.Struct("!2sBI")
_HEADER = struct.Struct("!2sBI8sIQQ")
HEADER_SIZE = _HEADER.size
OVERHEAD = HEADER_SIZE + TAG_SIZE
"""Bytes a packet adds around its encoded envelope (plus a few bytes of msgpack framing)."""

MAX_UDP_PAYLOAD = 65507
DEFAULT_MAX_PACKET = 65000
"""Largest packet accepted or sent by default: fits one UDP datagram."""

WITNESS_NODE_ID = 0
"""The node id the witness uses on the wire; cluster nodes have ids from 1."""

_NOTICE_INTERVAL = 60.0
_MAX_NOTICE_KEYS = 256


class Channel(IntEnum):
    """Who an envelope's payload is for."""

    LINK = 1  # failure detector pings and pongs
    RAFT = 2  # consensus messages
    MESSAGE = 3  # node-to-node messages outside the log
    WITNESS = 4  # witness reports and replies
    BUNDLE = 5  # several envelopes for one peer in one packet (never nested, never to the witness)


class Envelope(msgspec.Struct, array_like=True, frozen=True):
    channel: int
    payload: bytes


_bundle_encoder = msgspec.msgpack.Encoder()
_bundle_decoder = msgspec.msgpack.Decoder(list[Envelope])


def envelope_size(payload_bytes: int) -> int:
    """Bytes of the msgpack envelope around a payload of this size (channel numbers are below 128)."""
    return 2 + _bin_header(payload_bytes) + payload_bytes


def bundle_size(envelope_bytes: int, count: int) -> int:
    """Bytes of the envelope of a bundle of ``count`` envelopes totalling ``envelope_bytes``."""
    array_header = 1 if count < 16 else 3 if count < 2**16 else 5
    return envelope_size(array_header + envelope_bytes)


def _bin_header(size: int) -> int:
    return 2 if size < 2**8 else 3 if size < 2**16 else 5


def encode_bundle(items: list[tuple[int, bytes]]) -> bytes:
    """The payload of a ``BUNDLE`` envelope carrying these (channel, payload) messages."""
    return _bundle_encoder.encode([Envelope(channel, payload) for channel, payload in items])


def decode_bundle(payload: bytes) -> list[Envelope] | None:
    """The envelopes of a bundle, or None when it is malformed."""
    try:
        return _bundle_decoder.decode(payload)
    except ValueError:  # msgspec's errors, and UnicodeDecodeError for a broken tag
        return None


class DropReason(StrEnum):
    OVERSIZED = "oversized"
    TRUNCATED = "truncated"
    BAD_MAGIC = "bad_magic"
    WRONG_VERSION = "wrong_version"
    WRONG_CLUSTER = "wrong_cluster"
    UNKNOWN_SENDER = "unknown_sender"
    WRONG_DESTINATION = "wrong_destination"
    BAD_SEQUENCE = "bad_sequence"
    OLD_BOOT = "old_boot"
    REPLAYED = "replayed"
    AUTH_FAILED = "auth_failed"
    MALFORMED = "malformed_payload"


@dataclass(frozen=True, slots=True)
class Delivered:
    """An authentic, fresh packet."""

    sender: int
    boot: int
    seq: int
    channel: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Rejected:
    """A dropped packet; ``notice`` is a sentence for the log, at most once a minute per (reason, peer)."""

    reason: DropReason
    sender: int | None = None
    notice: str | None = None


class MessageTooLarge(ValueError):
    """A local caller tried to send more than fits in one packet."""


class WireCodec:
    """Seals outgoing envelopes and opens incoming packets for one node (sans-I/O; the caller passes ``now``).

    ``boot_id`` must be larger on every restart of the node (peers refuse older boots) and never reused.
    ``known_senders`` limits which node ids are accepted (None: any, as the witness does).
    """

    def __init__(
        self,
        *,
        node_id: int,
        cluster_name: str,
        cluster_key: bytes,
        boot_id: int,
        known_senders: frozenset[int] | None = None,
        max_packet: int = DEFAULT_MAX_PACKET,
        replay_window: int = 4096,  # generous: links of different latency interleave one sequence
    ) -> None:
        if not 0 <= node_id < 2**32:
            raise ValueError(f"node id {node_id} is out of range (0 to 4294967295)")
        if not 0 <= boot_id < 2**64:
            raise ValueError(f"boot id {boot_id} is out of range (a 64-bit unsigned number)")
        if not OVERHEAD < max_packet <= MAX_UDP_PAYLOAD:
            raise ValueError(
                f"max_packet must be between {OVERHEAD + 1} and {MAX_UDP_PAYLOAD} bytes, not {max_packet}"
            )
        self.node_id = node_id
        self.boot_id = boot_id
        self.max_packet = max_packet
        self._key = cluster_key
        self._cluster = cluster_id_hash(cluster_name)
        self._known = known_senders
        self._window_size = replay_window
        self._own_cipher = SenderCipher(cluster_key, self._cluster, node_id, boot_id)
        self._next_seq: dict[int, int] = {}
        self._windows: dict[int, ReplayWindow] = {}
        self._ciphers: dict[int, tuple[int, SenderCipher]] = {}  # sender -> (boot, cipher), authentic only
        self._last_notice: dict[tuple[DropReason, int], float] = {}
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(Envelope)
        self.counters: dict[str, int] = {"sent": 0, "received": 0, "delivered": 0}

    # --- sending ----------------------------------------------------------------------------------

    def seal(self, dest: int, channel: int, payload: bytes) -> bytes:
        """One packet for ``dest``; raises MessageTooLarge if it would exceed ``max_packet``."""
        body = self._encoder.encode(Envelope(int(channel), payload))
        if len(body) + OVERHEAD > self.max_packet:
            raise MessageTooLarge(
                f"a {len(payload)}-byte message for node {dest} does not fit in one packet "
                f"(limit {self.max_packet} bytes)"
            )
        seq = self._next_seq.get(dest, 0) + 1
        self._next_seq[dest] = seq
        header = _HEADER.pack(WIRE_MAGIC, WIRE_VERSION, self.node_id, self._cluster, dest, self.boot_id, seq)
        self.counters["sent"] += 1
        return header + self._own_cipher.seal(dest, seq, body, header)

    # --- receiving --------------------------------------------------------------------------------

    def open(self, packet: bytes, now: float) -> Delivered | Rejected:
        """Authenticate, check freshness and decode one packet; never raises on bad input."""
        self.counters["received"] += 1
        result = self._open(packet, now)
        if isinstance(result, Rejected):
            key = f"dropped_{result.reason.value}"
            self.counters[key] = self.counters.get(key, 0) + 1
        else:
            self.counters["delivered"] += 1
        return result

    def drop_counts(self) -> dict[str, int]:
        """Dropped packets by reason (only reasons that occurred)."""
        return {k.removeprefix("dropped_"): v for k, v in self.counters.items() if k.startswith("dropped_")}

    def _open(self, packet: bytes, now: float) -> Delivered | Rejected:
        if len(packet) > self.max_packet:
            return Rejected(DropReason.OVERSIZED)
        if len(packet) < _PREAMBLE.size:
            return Rejected(DropReason.TRUNCATED)
        magic, version, sender = _PREAMBLE.unpack_from(packet)
        if magic != WIRE_MAGIC:
            return Rejected(DropReason.BAD_MAGIC)
        if version != WIRE_VERSION:
            return self._reject(DropReason.WRONG_VERSION, sender, now, version)
        if len(packet) < OVERHEAD:
            return Rejected(DropReason.TRUNCATED, sender)
        _, _, _, cluster, dest, boot, seq = _HEADER.unpack_from(packet)
        early = self._check_header(sender, cluster, dest, seq, now)
        if early is not None:
            return early
        window = self._windows.get(sender)
        verdict = window.check(boot, seq) if window is not None else ReplayVerdict.NEW_BOOT
        if verdict is ReplayVerdict.OLD_BOOT:
            return self._reject(DropReason.OLD_BOOT, sender, now)
        if verdict is ReplayVerdict.REPLAYED:
            return Rejected(DropReason.REPLAYED, sender)
        cipher = self._cipher_for(sender, boot)
        body = cipher.open(dest, seq, packet[HEADER_SIZE:], packet[:HEADER_SIZE])
        if body is None:
            return self._reject(DropReason.AUTH_FAILED, sender, now)
        self._remember(sender, boot, seq, cipher)
        try:
            envelope = self._decoder.decode(body)
        except msgspec.DecodeError:
            return Rejected(DropReason.MALFORMED, sender)
        return Delivered(sender, boot, seq, envelope.channel, envelope.payload)

    def _check_header(self, sender: int, cluster: bytes, dest: int, seq: int, now: float) -> Rejected | None:
        if cluster != self._cluster:
            return self._reject(DropReason.WRONG_CLUSTER, sender, now)
        if self._known is not None and sender not in self._known:
            return Rejected(DropReason.UNKNOWN_SENDER, sender)
        if dest != self.node_id:
            return Rejected(DropReason.WRONG_DESTINATION, sender)
        if seq == 0:
            return Rejected(DropReason.BAD_SEQUENCE, sender)
        return None

    def _cipher_for(self, sender: int, boot: int) -> SenderCipher:
        cached = self._ciphers.get(sender)
        if cached is not None and cached[0] == boot:
            return cached[1]
        # Not cached until the packet authenticates, so forged boots cannot grow this table.
        return SenderCipher(self._key, self._cluster, sender, boot)

    def _remember(self, sender: int, boot: int, seq: int, cipher: SenderCipher) -> None:
        window = self._windows.get(sender)
        if window is None:
            window = self._windows[sender] = ReplayWindow(self._window_size)
        window.accept(boot, seq)
        self._ciphers[sender] = (boot, cipher)

    # --- operator notices -------------------------------------------------------------------------

    def _reject(self, reason: DropReason, sender: int, now: float, version: int = WIRE_VERSION) -> Rejected:
        return Rejected(reason, sender, self._notice(reason, sender, now, version))

    def _notice(self, reason: DropReason, sender: int, now: float, version: int) -> str | None:
        if self._known is not None and sender not in self._known:
            return None  # forged or stray ids: counted, but not worth a log line each
        key = (reason, sender)
        last = self._last_notice.get(key)
        if last is not None and now - last < _NOTICE_INTERVAL:
            return None
        if last is None and len(self._last_notice) >= _MAX_NOTICE_KEYS:
            return None  # a flood of forged sender ids must not grow this table
        self._last_notice[key] = now
        return _NOTICE_TEXT[reason].format(peer=sender, theirs=version, ours=WIRE_VERSION)


_NOTICE_TEXT = {
    DropReason.WRONG_VERSION: (
        "node {peer} speaks wire protocol version {theirs} but this node speaks version {ours}: "
        "its packets are ignored until both run compatible hakeeper versions"
    ),
    DropReason.WRONG_CLUSTER: (
        "a packet claiming to be from node {peer} belongs to another cluster (different cluster name): "
        "check that every node of this cluster is configured with the same cluster name"
    ),
    DropReason.AUTH_FAILED: (
        "packets claiming to be from node {peer} fail authentication: check that node {peer} uses the "
        "same cluster key file as this node (or someone is forging packets)"
    ),
    DropReason.OLD_BOOT: (
        "node {peer} sends packets from an older boot than one already seen: either old packets are being "
        "replayed, or its clock went backwards across a restart (restart it once the clock is right)"
    ),
}
