"""Real node processes on loopback (python -m hakeeper.messaging.node_main), one 127.x.0.y address each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from hakeeper.messaging.bench import ClusterFiles, NodeProc, find_leader, start_witness, write_cluster

pytestmark = pytest.mark.integration

TIMERS = {"heartbeat_interval": "100ms", "failure_timeout": "500ms", "election_timeout": "1s"}


@asynccontextmanager
async def processes(files: ClusterFiles) -> AsyncIterator[list[NodeProc]]:
    nodes = [NodeProc(name, files.node_configs[name]) for name in files.names]
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        yield nodes
    finally:
        for n in nodes:
            await n.stop()


async def propose(node: NodeProc, text: str, timeout: float = 10.0) -> int:
    """Propose, retrying while the node reports it has no quorum yet (its failure detector, or the
    witness vote, is a moment behind the Raft election)."""
    async with asyncio.timeout(timeout):
        while True:
            reply = await node.command(f"propose {text}")
            if reply["ok"]:
                return int(reply["index"])
            assert reply["error"] == "NoQuorum", reply
            await asyncio.sleep(0.05)


async def wait_committed(nodes: list[NodeProc], texts: list[str], timeout: float = 15.0) -> None:
    """Every node applied exactly ``texts``, in this order (and nothing else)."""
    async with asyncio.timeout(timeout):
        while any([c["data"] for c in n.commits()] != texts for n in nodes):
            await asyncio.sleep(0.02)


def events(node: NodeProc, kind: str) -> list[dict[str, object]]:
    return [e for e in node.events if e.get("event") == kind]


async def test_five_nodes_survive_the_leader_killed_and_it_catches_up(tmp_path: Path) -> None:
    files = write_cluster(tmp_path, 5, net=40, timers=TIMERS)
    async with processes(files) as nodes:
        leader = await find_leader(nodes)
        await propose(leader, "a")
        await propose(leader, "b")
        await wait_committed(nodes, ["a", "b"])
        await leader.kill()
        survivors = [n for n in nodes if n is not leader]
        new = await find_leader(survivors)
        assert new is not leader
        for text in ("c", "d", "e"):
            await propose(new, text)
        await wait_committed(survivors, ["a", "b", "c", "d", "e"])
        await asyncio.gather(*(n.wait_event(lambda e: e.get("event") == "left") for n in survivors))
        # The old leader comes back from its own disk and catches up, replaying every entry once.
        await leader.start()
        await wait_committed(nodes, ["a", "b", "c", "d", "e"])
        await propose(new, "f")
        await wait_committed(nodes, ["a", "b", "c", "d", "e", "f"])
        statuses = [await n.status() for n in nodes]
        assert len({(s["count"], s["digest"], s["leader"]) for s in statuses}) == 1


async def test_cutting_one_of_two_links_changes_no_membership(tmp_path: Path) -> None:
    files = write_cluster(tmp_path, 3, net=42, links=2, timers=TIMERS)
    async with processes(files) as nodes:
        leader = await find_leader(nodes)

        async def all_links_up() -> bool:
            statuses = [await n.status() for n in nodes]
            return all(all(s["links"].values()) for s in statuses)

        async with asyncio.timeout(10):
            while not await all_links_up():
                await asyncio.sleep(0.05)
        cut = nodes[0]
        assert (await cut.command("link down 1"))["ok"]
        others = [n for n in nodes if n is not cut]
        for other in others:
            await other.wait_event(lambda e: e.get("event") == "link_down" and e["node"] == cut.id)
        await propose(leader, "still-here")
        await wait_committed(nodes, ["still-here"])
        for node in nodes:
            assert events(node, "left") == []
            assert (await node.status())["up"] == sorted(n.id for n in nodes if n is not node)
        down = [e for n in others for e in events(n, "link_down")]
        assert {e["link"] for e in down} == {1}


async def test_a_node_with_the_wrong_key_is_rejected_and_counted(tmp_path: Path) -> None:
    files = write_cluster(tmp_path, 3, net=44, wrong_key=["node3"], timers=TIMERS)
    async with processes(files) as nodes:
        good = nodes[:2]
        leader = await find_leader(good)
        await propose(leader, "x")
        await wait_committed(good, ["x"])
        for node in good:
            status = await node.status()
            assert status["up"] == [n.id for n in good if n is not node]
            assert status["counters"].get("dropped_auth_failed", 0) > 0
        intruder = await nodes[2].status()
        assert intruder["up"] == [] and intruder["count"] == 0 and intruder["leader"] != 3
        assert intruder["counters"].get("dropped_auth_failed", 0) > 0


async def test_two_nodes_and_a_witness_survive_either_node_killed(tmp_path: Path) -> None:
    files = write_cluster(tmp_path, 2, net=46, witness=True, timers=TIMERS)
    witness = await start_witness(files)
    try:
        async with processes(files) as nodes:
            expected: list[str] = []
            for a, b in (nodes, nodes[::-1]):
                await a.wait_event(lambda e, other=b.id: e.get("event") == "joined" and e["node"] == other)
            for round_, victim in enumerate(nodes):
                leader = await find_leader(nodes)
                expected.append(f"both-{round_}")
                await propose(leader, expected[-1])
                await wait_committed(nodes, expected)
                await victim.kill()
                survivor = next(n for n in nodes if n is not victim)
                await survivor.wait_event(lambda e, v=victim.id: e.get("event") == "left" and e["node"] == v)
                # Alone, it is quorate again once the witness gives it its vote; then it leads alone.
                await find_leader([survivor])
                expected.append(f"alone-{round_}")
                await propose(survivor, expected[-1])
                assert (await survivor.status())["quorate"]
                await victim.start()
                await wait_committed(nodes, expected)
                await victim.wait_event(
                    lambda e, s=survivor.id: e.get("event") == "joined" and e["node"] == s
                )
    finally:
        witness.terminate()
        await witness.wait()
