"""Fuzz a live transport over loopback UDP: 100,000 random and mutated packets, while real heartbeats flow."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Callable

from hakeeper.messaging.crypto import cluster_id_hash
from hakeeper.messaging.failure_detector import MembershipEvent, NodeLeft
from hakeeper.messaging.transport import Address, Transport, TransportConfig
from hakeeper.messaging.wire import HEADER_SIZE, WIRE_MAGIC, WIRE_VERSION, Channel

KEY = bytes(range(32))
PACKETS = 100_000
BATCH = 200


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def drained(victim: Transport, target: int) -> None:
    """Let the victim read what was sent (asyncio reads one datagram per loop turn), within a bound."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.5
    while victim.codec.counters["received"] < target - 10 and loop.time() < deadline:
        await asyncio.sleep(0)


def mutate(rng: random.Random, packet: bytes, others: list[bytes]) -> bytes:
    """One damaged copy of a real packet, never identical to it."""
    data = bytearray(packet)
    kind = rng.randrange(9)
    if kind == 0:  # flip bits anywhere
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncate
        data = data[: rng.randrange(len(data))]
    elif kind == 2:  # extend
        data += rng.randbytes(rng.randint(1, 64))
    elif kind == 3:  # another wire version
        data[2] = rng.choice([0, WIRE_VERSION + 1, 255])
    elif kind == 4:  # a newer boot id (a forged restart)
        struct.pack_into("!Q", data, 19, rng.getrandbits(63) | 1 << 62)
    elif kind == 5:  # another sequence number
        struct.pack_into("!Q", data, 27, rng.getrandbits(64))
    elif kind == 6:  # another cluster
        data[7:15] = rng.randbytes(8)
    elif kind == 7:  # header of one packet, body of another
        other = rng.choice(others)
        data = data[:HEADER_SIZE] + other[HEADER_SIZE:]
    else:  # random body behind a valid header
        data = data[:HEADER_SIZE] + rng.randbytes(rng.randint(0, 200))
    out = bytes(data)
    return out if out != packet else out + b"\0"


def random_packet(rng: random.Random, victim_cluster: bytes) -> bytes:
    if rng.random() < 0.01:
        return rng.randbytes(rng.randint(65001, 65400))  # oversized (rare: each fills 64 KiB of buffer)
    kind = rng.randrange(3)
    if kind == 0:  # pure noise
        return rng.randbytes(rng.randint(0, 600))
    if kind == 1:  # noise with our magic and version
        return WIRE_MAGIC + bytes([WIRE_VERSION]) + rng.randbytes(rng.randint(0, 300))
    # a plausible header from a random sender of this cluster, random body
    header = struct.pack(
        "!2sBI8sIQQ",
        WIRE_MAGIC,
        WIRE_VERSION,
        rng.randint(0, 5),
        victim_cluster,
        1,
        rng.getrandbits(64),
        rng.getrandbits(64),
    )
    return header + rng.randbytes(rng.randint(0, 300))


async def test_fuzz_live_transport_keeps_working() -> None:
    rng = random.Random(20261125)
    hosts = {1: "127.0.3.11", 2: "127.0.3.12"}
    addrs: dict[int, Address] = {n: (h, free_port(h)) for n, h in hosts.items()}
    events: list[MembershipEvent] = []
    received: list[bytes] = []
    transports = {
        n: Transport(
            TransportConfig(
                node_id=n,
                cluster_name="fuzz",
                cluster_key=KEY,
                links=[addrs[n]],
                peers={p: [a] for p, a in addrs.items() if p != n},
            )
        )
        for n in addrs
    }
    victim, peer = transports[1], transports[2]
    victim.on_membership = events.append
    victim.on_message = lambda s, c, p: received.append(p)
    captured: list[bytes] = []
    seal = peer.codec.seal

    def recording_seal(dest: int, channel: int, payload: bytes) -> bytes:
        packet = seal(dest, channel, payload)
        captured.append(packet)
        return packet

    peer.codec.seal = recording_seal  # type: ignore[method-assign]
    try:
        for t in transports.values():
            await t.start()
        await wait_for(lambda: victim.up_nodes() == {2} and peer.up_nodes() == {1})
        for i in range(20):
            peer.send(1, Channel.MESSAGE, b"real message %d" % i)
        await wait_for(lambda: len(received) == 20)
        seeds = list(captured)  # all delivered already: replaying them must be refused
        before = victim.counters
        delivered_before = before["delivered"]
        fuzzer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cluster = cluster_id_hash("fuzz")
        for start in range(0, PACKETS, BATCH):
            for _ in range(BATCH):
                roll = rng.random()
                if roll < 0.45:
                    packet = mutate(rng, rng.choice(seeds), seeds)
                elif roll < 0.55:
                    packet = rng.choice(seeds)  # exact replay
                else:
                    packet = random_packet(rng, cluster)
                fuzzer.sendto(packet, addrs[1])
            await drained(victim, before["received"] + start + BATCH)
        fuzzer.close()
        await asyncio.sleep(0.3)
        after = victim.counters
        drops = {k: after.get(k, 0) - before.get(k, 0) for k in after if k.startswith("dropped_")}
        # The kernel may drop a few datagrams when the socket buffer fills; nearly all must arrive.
        assert sum(drops.values()) >= 0.9 * PACKETS, drops
        for reason in (
            "bad_magic",
            "truncated",
            "oversized",
            "wrong_version",
            "wrong_cluster",
            "auth_failed",
            "replayed",
            "unknown_sender",
        ):
            assert drops.get(f"dropped_{reason}", 0) > 0, (reason, drops)
        # Real traffic kept flowing: the peer never left, heartbeats were delivered during the fuzz,
        # and a message sent afterwards arrives.
        assert not [e for e in events if isinstance(e, NodeLeft)]
        assert victim.up_nodes() == {2} and peer.up_nodes() == {1}
        assert after["delivered"] > delivered_before
        peer.send(1, Channel.MESSAGE, b"after the storm")
        await wait_for(lambda: received[-1:] == [b"after the storm"])
    finally:
        for t in transports.values():
            await t.close()
