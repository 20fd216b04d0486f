"""The UDP transport on loopback: heartbeats, membership, messages, a wrong key, a cut link."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from hakeeper.messaging.failure_detector import LinkDown, MembershipEvent, NodeJoined, NodeLeft
from hakeeper.messaging.transport import (
    Address,
    Alarm,
    LinkFilter,
    Transport,
    TransportConfig,
    TransportError,
    parse_address,
)
from hakeeper.messaging.wire import WIRE_VERSION, Channel, WireCodec, encode_bundle

KEY = bytes(range(32))
WRONG_KEY = bytes(32)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def addresses(nodes: int, links: int = 1) -> dict[int, list[Address]]:
    # Node n uses 127.0.<link>.<n+10>: every node and link has its own loopback address.
    out: dict[int, list[Address]] = {}
    for n in range(1, nodes + 1):
        hosts = [f"127.0.{link}.{n + 10}" for link in range(links)]
        out[n] = [(h, free_port(h)) for h in hosts]
    return out


class Node:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.events: list[MembershipEvent] = []
        self.messages: list[tuple[int, int, bytes]] = []


@asynccontextmanager
async def cluster(
    nodes: int,
    *,
    links: int = 1,
    keys: dict[int, bytes] | None = None,
    filters: dict[int, LinkFilter] | None = None,
    alarms: dict[int, Alarm] | None = None,
) -> AsyncIterator[dict[int, Node]]:
    addrs = addresses(nodes, links)
    out: dict[int, Node] = {}
    for n in addrs:
        config = TransportConfig(
            node_id=n,
            cluster_name="loop",
            cluster_key=(keys or {}).get(n, KEY),
            links=addrs[n],
            peers={p: a for p, a in addrs.items() if p != n},
        )
        transport = Transport(config, link_filter=(filters or {}).get(n), alarm=(alarms or {}).get(n))
        node = out[n] = Node(transport)
        node.transport.on_membership = node.events.append
        node.transport.on_message = lambda s, c, p, node=node: node.messages.append((s, c, p))
    try:
        for node in out.values():
            await node.transport.start()
        yield out
    finally:
        for node in out.values():
            await node.transport.close()


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until ``condition`` holds; a generous bound so a loaded CI machine does not flake."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_three_nodes_see_each_other_and_a_killed_node_leaves() -> None:
    async with cluster(3) as nodes:
        await wait_for(lambda: all(n.transport.up_nodes() == {1, 2, 3} - {i} for i, n in nodes.items()))
        await nodes[3].transport.close()
        await wait_for(lambda: all(3 not in nodes[i].transport.up_nodes() for i in (1, 2)))
        for i in (1, 2):
            left = [e for e in nodes[i].events if isinstance(e, NodeLeft)]
            assert [e.node for e in left] == [3]
            assert 3 not in nodes[i].transport.up_nodes() and nodes[i].transport.up_nodes() == {1, 2} - {i}


async def test_messages_are_delivered_with_sender_and_channel() -> None:
    async with cluster(2) as nodes:
        assert nodes[1].transport.send(2, Channel.RAFT, b"append-entries")
        assert nodes[1].transport.send(2, Channel.MESSAGE, b"start rsc1")
        await wait_for(lambda: len(nodes[2].messages) == 2)
        expected = [(1, Channel.RAFT, b"append-entries"), (1, Channel.MESSAGE, b"start rsc1")]
        assert nodes[2].messages == expected
        assert not nodes[1].transport.send(9, Channel.RAFT, b"x")  # unknown peer
        assert not nodes[1].transport.send(2, Channel.RAFT, b"x" * 70000)  # too large for one packet
        assert nodes[1].transport.counters["send_no_route"] == 1
        assert nodes[1].transport.counters["send_oversized"] == 1


async def test_messages_sent_by_timer_jobs_share_a_packet_per_peer_in_order() -> None:
    alarm = Alarm()
    async with cluster(2, alarms={1: alarm}) as nodes:
        one = nodes[1].transport
        small = [b"small %d" % i for i in range(20)]
        big = [bytes([i]) * 25_000 for i in range(5)]  # two fit in a packet of 65,000 bytes: three packets
        due = {"at": asyncio.get_running_loop().time()}
        sent: list[int] = []

        def job(now: float) -> None:
            due["at"] = float("inf")
            sent.append(one.counters["sent"])
            for payload in small:
                assert one.send(2, Channel.MESSAGE, payload)
            for payload in big:
                assert one.send(2, Channel.RAFT, payload)
            sent.append(one.counters["sent"])

        def after_jobs() -> None:
            if len(sent) == 2 and not after:
                after.append(one.counters["sent"])

        after: list[int] = []
        alarm.add(lambda: due["at"], job)
        alarm.after_jobs(after_jobs)  # runs after the transport's own hook, which sends what waits
        await wait_for(lambda: len(nodes[2].messages) == 25)
        assert sent[1] - sent[0] == 2  # while the jobs run, only full packets leave: small + 2 big, 2 big
        assert after[0] - sent[0] == 3  # and the last big one once they are done
        assert nodes[2].messages == [(1, Channel.MESSAGE, p) for p in small] + [
            (1, Channel.RAFT, p) for p in big
        ]
        assert nodes[2].transport.counters.get("dropped_malformed_bundle", 0) == 0


async def test_a_message_sent_outside_packet_handlers_and_timer_jobs_leaves_at_once() -> None:
    async with cluster(2) as nodes:
        before = nodes[1].transport.counters["sent"]
        assert nodes[1].transport.send(2, Channel.MESSAGE, b"no flush called")
        assert nodes[1].transport.counters["sent"] == before + 1
        await wait_for(lambda: nodes[2].messages == [(1, Channel.MESSAGE, b"no flush called")])


async def test_bad_bundles_are_dropped_and_counted() -> None:
    async with cluster(2) as nodes:
        await nodes[2].transport.close()
        target = nodes[1].transport.local_addresses[0]
        boot = nodes[2].transport.boot_id + 1  # node 2 restarted, as far as node 1 can tell
        impostor = WireCodec(node_id=2, cluster_name="loop", cluster_key=KEY, boot_id=boot)
        nested = encode_bundle([(Channel.MESSAGE, b"inner")])
        packets = [
            impostor.seal(1, Channel.BUNDLE, b"\xc1 not msgpack"),
            impostor.seal(
                1, Channel.BUNDLE, encode_bundle([(Channel.BUNDLE, nested), (Channel.MESSAGE, b"ok")])
            ),
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for packet in packets:
                s.sendto(packet, target)
        await wait_for(lambda: nodes[1].messages == [(2, Channel.MESSAGE, b"ok")])
        counters = nodes[1].transport.counters
        assert counters["dropped_malformed_bundle"] == 1 and counters["dropped_nested_bundle"] == 1


async def test_alarm_runs_jobs_due_together_in_one_wake_up_in_order(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    alarm = Alarm()
    soon = loop.time() + 0.05
    due = {"a": soon, "b": soon, "later": soon + 60}
    runs: list[tuple[str, float]] = []
    flushed: list[int] = []

    def job(name: str) -> Callable[[float], None]:
        def run(now: float) -> None:
            runs.append((name, now))
            due[name] = float("inf")
            if name == "a":
                raise RuntimeError("a failing job")

        return run

    try:
        for name in due:
            alarm.add(lambda name=name: due[name], job(name))  # type: ignore[misc]
        alarm.after_jobs(lambda: flushed.append(len(runs)))
        await wait_for(lambda: len(runs) == 2)
        assert [name for name, _ in runs] == ["a", "b"] and runs[0][1] == runs[1][1]  # one wake-up
        assert flushed == [2]  # after both jobs, although the first one failed
        assert "a timer job failed" in caplog.text
        due["b"] = loop.time() + 0.01  # a deadline moved closer: the alarm must hear of it
        alarm.wake_by(due["b"])
        await wait_for(lambda: len(runs) == 3)
        assert runs[2][0] == "b"
    finally:
        alarm.close()


async def test_alarm_follows_the_beat_and_drops_the_wake_up_it_no_longer_needs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    alarm = Alarm()
    start = loop.time()
    due = {"tick": start + 30, "other": start + 60}
    runs: list[tuple[str, float]] = []

    def on_beat(now: float) -> None:  # runs on the beat and moves its deadline one interval on
        runs.append(("tick", now))
        due["tick"] = now + 45

    def broken(now: float) -> None:
        raise RuntimeError("a failing beat handler")

    try:
        alarm.add(lambda: due["tick"], lambda now: runs.append(("timer", now)), on_beat=on_beat)
        alarm.add(lambda: due["other"], lambda now: None, on_beat=broken)
        assert alarm.next_wake == start + 30
        alarm.beat(start + 1)
        assert runs == [("tick", start + 1)]
        assert alarm.next_wake == start + 46  # later than before: the old wake-up is gone
        assert "a beat handler failed" in caplog.text  # and did not stop the re-arming
    finally:
        alarm.close()
    assert alarm.next_wake == float("inf")


async def test_node_with_wrong_key_is_rejected_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hakeeper.messaging.transport")
    async with cluster(3, keys={3: WRONG_KEY}) as nodes:
        await wait_for(lambda: nodes[1].transport.up_nodes() == {2} and nodes[2].transport.up_nodes() == {1})
        await wait_for(lambda: nodes[1].transport.counters.get("dropped_auth_failed", 0) >= 5)
        await asyncio.sleep(0.5)
        for i in (1, 2):
            assert 3 not in nodes[i].transport.up_nodes()
            assert not any(isinstance(e, NodeJoined) and e.node == 3 for e in nodes[i].events)
        assert nodes[3].transport.up_nodes() == frozenset()
        assert nodes[3].transport.counters.get("dropped_auth_failed", 0) > 0
    notices = [r.getMessage() for r in caplog.records if "fail authentication" in r.getMessage()]
    assert any("node 3" in m and "cluster key" in m for m in notices)


async def test_one_of_two_links_cut_no_membership_change() -> None:
    cut = {"on": False}

    def drop_link_1(direction: str, link: int, remote: Address) -> bool:
        return not (cut["on"] and link == 1)

    async with cluster(2, links=2, filters={1: drop_link_1}) as nodes:
        # Node 2 only answers pings: its links come up one ping after node 1's.
        await wait_for(lambda: all(all(nodes[i].transport.link_states().values()) for i in (1, 2)))
        cut["on"] = True
        await wait_for(lambda: nodes[2].transport.link_states() == {(1, 0): True, (1, 1): False})
        await wait_for(lambda: nodes[1].transport.link_states() == {(2, 0): True, (2, 1): False})
        assert nodes[1].transport.send(2, Channel.MESSAGE, b"still here")
        await wait_for(lambda: nodes[2].messages == [(1, Channel.MESSAGE, b"still here")])
        for i, peer in ((1, 2), (2, 1)):
            assert nodes[i].transport.up_nodes() == {peer}
            assert not any(isinstance(e, NodeLeft) for e in nodes[i].events)
            assert [e.link for e in nodes[i].events if isinstance(e, LinkDown)] == [1]
        assert nodes[1].transport.counters["filtered_in"] > 0


async def test_wrong_wire_version_is_counted_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hakeeper.messaging.transport")
    async with cluster(2) as nodes:
        await nodes[2].transport.close()
        target = nodes[1].transport.local_addresses[0]
        future = WireCodec(node_id=2, cluster_name="loop", cluster_key=KEY, boot_id=1)
        packet = bytearray(future.seal(1, Channel.RAFT, b"hello from the future"))
        packet[2] = WIRE_VERSION + 1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(bytes(packet), target)
            s.sendto(bytes(packet), target)
        await wait_for(lambda: nodes[1].transport.counters.get("dropped_wrong_version", 0) == 2)
    notices = [r.getMessage() for r in caplog.records if "wire protocol version" in r.getMessage()]
    assert len(notices) == 1  # rate-limited: one notice for two packets
    assert f"node 2 speaks wire protocol version {WIRE_VERSION + 1}" in notices[0]
    assert f"this node speaks version {WIRE_VERSION}" in notices[0]


async def test_handler_errors_do_not_break_the_transport() -> None:
    async with cluster(2) as nodes:

        def explode(sender: int, channel: int, payload: bytes) -> None:
            raise RuntimeError("bug in a handler")

        nodes[2].transport.on_message = explode
        nodes[1].transport.send(2, Channel.MESSAGE, b"x")
        await wait_for(lambda: nodes[2].transport.counters.get("callback_errors", 0) == 1)
        await wait_for(lambda: nodes[2].transport.up_nodes() == {1})


async def test_bind_failure_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        config = TransportConfig(
            node_id=1,
            cluster_name="c",
            cluster_key=KEY,
            links=[busy.getsockname()],
            peers={2: [("127.0.0.1", 9)]},
        )
        with pytest.raises(TransportError, match="cannot listen on link 0"):
            await Transport(config).start()


def test_config_and_address_errors() -> None:
    with pytest.raises(ValueError, match="node ids start at 1"):
        TransportConfig(node_id=0, cluster_name="c", cluster_key=KEY, links=[("127.0.0.1", 1)], peers={})
    assert parse_address("10.0.0.1:5405") == ("10.0.0.1", 5405)
    assert parse_address("[::1]:5403") == ("::1", 5403)
    for bad in ("10.0.0.1", "host:port", ":5405", "h:70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_address(bad)


def test_boot_ids_grow() -> None:
    from hakeeper.messaging.transport import new_boot_id

    first = new_boot_id()
    assert 0 < first < 2**64
    assert struct.pack("!Q", first)  # fits the header field


async def test_fast_restart_is_reported_by_boot_id() -> None:
    async with cluster(2) as nodes:
        await wait_for(lambda: nodes[1].transport.up_nodes() == {2})
        old = nodes[2].transport
        await old.close()
        # Back within the failure timeout: only the new boot id tells node 1 that node 2 lost its state.
        reborn = Transport(old.config)
        assert reborn.boot_id > old.boot_id
        nodes[2].transport = reborn
        await reborn.start()
        await wait_for(lambda: any(isinstance(e, NodeLeft) for e in nodes[1].events))
        await wait_for(lambda: nodes[1].transport.up_nodes() == {2})
        left = [e for e in nodes[1].events if isinstance(e, NodeLeft)]
        assert [(e.node, e.reason) for e in left] == [(2, "restarted (new boot id)")]
        assert [e.node for e in nodes[1].events if isinstance(e, NodeJoined)] == [2, 2]
