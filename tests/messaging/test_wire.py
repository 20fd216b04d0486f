"""The packet codec: round trip, and every kind of bad packet dropped and counted by reason."""

from __future__ import annotations

import struct

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.messaging.wire import (
    HEADER_SIZE,
    WIRE_MAGIC,
    WIRE_VERSION,
    Channel,
    Delivered,
    DropReason,
    Envelope,
    MessageTooLarge,
    Rejected,
    WireCodec,
    bundle_size,
    decode_bundle,
    encode_bundle,
    envelope_size,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def codec(node: int, boot: int = 1000, *, key: bytes = KEY, cluster: str = "c1", **kw: object) -> WireCodec:
    return WireCodec(node_id=node, cluster_name=cluster, cluster_key=key, boot_id=boot, **kw)  # type: ignore[arg-type]


def rejected(result: Delivered | Rejected) -> DropReason:
    assert isinstance(result, Rejected), result
    return result.reason


def test_round_trip() -> None:
    a, b = codec(1), codec(2)
    packet = a.seal(2, Channel.RAFT, b"payload")
    result = b.open(packet, 0.0)
    assert result == Delivered(sender=1, boot=1000, seq=1, channel=Channel.RAFT, payload=b"payload")
    assert b.counters["delivered"] == 1
    assert a.counters["sent"] == 1


def test_payload_is_encrypted() -> None:
    packet = codec(1).seal(2, Channel.MESSAGE, b"secret-resource-name")
    assert b"secret-resource-name" not in packet


def test_sequence_numbers_count_per_destination() -> None:
    a = codec(1)
    b, c = codec(2), codec(3)
    for expected in (1, 2, 3):
        r = b.open(a.seal(2, Channel.RAFT, b"x"), 0.0)
        assert isinstance(r, Delivered) and r.seq == expected
    r = c.open(a.seal(3, Channel.RAFT, b"x"), 0.0)
    assert isinstance(r, Delivered) and r.seq == 1


def test_every_single_bit_flip_is_dropped() -> None:
    a, b = codec(1), codec(2)
    packet = a.seal(2, Channel.RAFT, b"payload")
    for i in range(len(packet)):
        for bit in (0, 7):
            mutated = bytearray(packet)
            mutated[i] ^= 1 << bit
            assert isinstance(b.open(bytes(mutated), 0.0), Rejected)
    assert b.counters["delivered"] == 0
    assert b.drop_counts()["auth_failed"] > 0
    assert isinstance(b.open(packet, 0.0), Delivered)  # the forgeries did not move the replay window


def test_tamper_dropped_and_counted() -> None:
    a, b = codec(1), codec(2)
    packet = bytearray(a.seal(2, Channel.RAFT, b"payload"))
    packet[-1] ^= 0x55
    assert rejected(b.open(bytes(packet), 0.0)) is DropReason.AUTH_FAILED
    assert b.drop_counts() == {"auth_failed": 1}


def test_replay_dropped() -> None:
    a, b = codec(1), codec(2)
    packet = a.seal(2, Channel.RAFT, b"payload")
    assert isinstance(b.open(packet, 0.0), Delivered)
    assert rejected(b.open(packet, 0.0)) is DropReason.REPLAYED
    assert b.drop_counts() == {"replayed": 1}


def test_reordering_within_window_is_delivered() -> None:
    a, b = codec(1), codec(2)
    packets = [a.seal(2, Channel.RAFT, bytes([i])) for i in range(10)]
    for p in reversed(packets):
        assert isinstance(b.open(p, 0.0), Delivered)


def test_old_boot_dropped_after_restart() -> None:
    old, b = codec(1, boot=1000), codec(2)
    stale = old.seal(2, Channel.RAFT, b"old")
    stale2 = old.seal(2, Channel.RAFT, b"old2")
    assert isinstance(b.open(stale, 0.0), Delivered)
    new = codec(1, boot=2000)
    r = b.open(new.seal(2, Channel.RAFT, b"new"), 1.0)
    assert isinstance(r, Delivered) and r.boot == 2000 and r.seq == 1  # a new boot resets the window
    result = b.open(stale2, 2.0)
    assert rejected(result) is DropReason.OLD_BOOT
    assert isinstance(result, Rejected) and result.notice and "older boot" in result.notice


def test_forged_newer_boot_does_not_reset_window() -> None:
    a, b = codec(1, boot=1000), codec(2)
    assert isinstance(b.open(a.seal(2, Channel.RAFT, b"x"), 0.0), Delivered)
    forged = bytearray(a.seal(2, Channel.RAFT, b"y"))
    struct.pack_into("!Q", forged, 19, 9999)  # boot id field
    assert rejected(b.open(bytes(forged), 0.0)) is DropReason.AUTH_FAILED
    assert isinstance(b.open(a.seal(2, Channel.RAFT, b"z"), 0.0), Delivered)


def test_wrong_key_dropped() -> None:
    intruder, b = codec(1, key=OTHER_KEY), codec(2)
    result = b.open(intruder.seal(2, Channel.RAFT, b"x"), 0.0)
    assert rejected(result) is DropReason.AUTH_FAILED
    assert isinstance(result, Rejected) and result.notice and "cluster key" in result.notice


def test_wrong_cluster_dropped() -> None:
    a, b = codec(1, cluster="other"), codec(2)
    assert rejected(b.open(a.seal(2, Channel.RAFT, b"x"), 0.0)) is DropReason.WRONG_CLUSTER


def test_wrong_destination_dropped() -> None:
    a, b = codec(1), codec(2)
    assert rejected(b.open(a.seal(3, Channel.RAFT, b"x"), 0.0)) is DropReason.WRONG_DESTINATION


def test_unknown_sender_dropped() -> None:
    a, b = codec(7), codec(2, known_senders=frozenset({1, 3}))
    assert rejected(b.open(a.seal(2, Channel.RAFT, b"x"), 0.0)) is DropReason.UNKNOWN_SENDER


def test_wrong_version_counted_and_reported_rate_limited() -> None:
    a, b = codec(1), codec(2)
    packet = bytearray(a.seal(2, Channel.RAFT, b"x"))
    packet[2] = WIRE_VERSION + 1
    first = b.open(bytes(packet), 10.0)
    assert isinstance(first, Rejected) and first.reason is DropReason.WRONG_VERSION
    assert first.sender == 1
    assert first.notice is not None
    assert "node 1" in first.notice and f"version {WIRE_VERSION + 1}" in first.notice
    assert f"version {WIRE_VERSION}" in first.notice
    again = b.open(bytes(packet), 20.0)
    assert isinstance(again, Rejected) and again.notice is None  # rate-limited
    later = b.open(bytes(packet), 80.0)
    assert isinstance(later, Rejected) and later.notice is not None
    assert b.drop_counts() == {"wrong_version": 3}


def test_oversized_dropped_and_refused_on_send() -> None:
    a, b = codec(1, max_packet=1000), codec(2, max_packet=1000)
    with pytest.raises(MessageTooLarge, match="does not fit"):
        a.seal(2, Channel.RAFT, b"x" * 1000)
    big = codec(1).seal(2, Channel.RAFT, b"x" * 2000)
    assert rejected(b.open(big, 0.0)) is DropReason.OVERSIZED


def test_truncated_and_garbage() -> None:
    b = codec(2)
    packet = codec(1).seal(2, Channel.RAFT, b"x")
    assert rejected(b.open(b"", 0.0)) is DropReason.TRUNCATED
    assert rejected(b.open(packet[:HEADER_SIZE], 0.0)) is DropReason.TRUNCATED
    assert rejected(b.open(b"GET / HTTP/1.1\r\n\r\n", 0.0)) is DropReason.BAD_MAGIC
    assert rejected(b.open(packet[:-3], 0.0)) is DropReason.AUTH_FAILED


def test_zero_sequence_refused() -> None:
    b = codec(2)
    packet = bytearray(codec(1).seal(2, Channel.RAFT, b"x"))
    struct.pack_into("!Q", packet, 27, 0)
    assert rejected(b.open(bytes(packet), 0.0)) is DropReason.BAD_SEQUENCE


def test_authentic_but_malformed_envelope_counted() -> None:
    # A peer holding the key but sending a body that is not an Envelope (a bug, not an attack).
    from hakeeper.messaging.crypto import SenderCipher, cluster_id_hash

    header = struct.pack("!2sBI8sIQQ", WIRE_MAGIC, WIRE_VERSION, 1, cluster_id_hash("c1"), 2, 1000, 1)
    body = SenderCipher(KEY, cluster_id_hash("c1"), 1, 1000).seal(2, 1, b"\xc1not msgpack", header)
    b = codec(2)
    assert rejected(b.open(header + body, 0.0)) is DropReason.MALFORMED


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="node id"):
        codec(-1)
    with pytest.raises(ValueError, match="max_packet"):
        codec(1, max_packet=100_000)


def test_no_notice_for_senders_outside_the_cluster() -> None:
    # Forged ids are counted but never flood the log; configured peers still get their notice.
    b = codec(2, known_senders=frozenset({1}))
    for sender in (1, 5):
        packet = bytearray(codec(sender).seal(2, Channel.RAFT, b"x"))
        packet[2] = WIRE_VERSION + 1
        result = b.open(bytes(packet), 0.0)
        assert isinstance(result, Rejected) and result.reason is DropReason.WRONG_VERSION
        assert (result.notice is not None) == (sender == 1)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_or_deliver(data: bytes) -> None:
    b = codec(2)
    assert isinstance(b.open(data, 0.0), Rejected)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_any_mutation_of_a_real_packet_is_rejected(data: st.DataObject) -> None:
    packet = codec(1).seal(2, Channel.RAFT, b"some raft message")
    index = data.draw(st.integers(min_value=0, max_value=len(packet) - 1))
    value = data.draw(st.integers(min_value=0, max_value=255).filter(lambda v: v != packet[index]))
    mutated = packet[:index] + bytes([value]) + packet[index + 1 :]
    cut = data.draw(st.integers(min_value=0, max_value=len(mutated)))
    assert isinstance(codec(2).open(mutated[:cut], 0.0), Rejected)


@given(
    st.lists(st.tuples(st.sampled_from(list(Channel)), st.binary(max_size=70_000)), min_size=1, max_size=20)
)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_bundle_sizes_are_exact_and_bundles_round_trip(items: list[tuple[Channel, bytes]]) -> None:
    # The transport packs bundles up to the packet limit from these sizes, without encoding twice.
    for channel, payload in items:
        assert envelope_size(len(payload)) == len(msgspec.msgpack.encode(Envelope(channel, payload)))
    bundle = encode_bundle([(int(c), p) for c, p in items])
    inner = sum(envelope_size(len(p)) for _, p in items)
    assert bundle_size(inner, len(items)) == len(msgspec.msgpack.encode(Envelope(Channel.BUNDLE, bundle)))
    assert decode_bundle(bundle) == [Envelope(c, p) for c, p in items]
    assert decode_bundle(b"\x93\x01") is None and decode_bundle(b"") is None
