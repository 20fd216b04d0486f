"""The witness server: in-process with real transports and quorum cores, and as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hakeeper.messaging.keys import write_key_file
from hakeeper.messaging.quorum import Quorum, QuorumConfig, SendWitnessReport
from hakeeper.messaging.transport import Address, Transport, TransportConfig
from hakeeper.messaging.wire import WITNESS_NODE_ID, Channel, Delivered, WireCodec
from hakeeper.messaging.witness import WitnessReply, WitnessReport, witness_decoder, witness_encoder
from hakeeper.messaging.witness_server import WitnessServer

KEY = bytes(range(32))


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


class QuorumNode:
    """A transport plus a quorum core, glued the way a daemon would glue them."""

    def __init__(self, transport: Transport, quorum: Quorum) -> None:
        self.transport = transport
        self.quorum = quorum
        loop = asyncio.get_running_loop()
        transport.on_membership = lambda event: self._apply(
            quorum.set_members(loop.time(), transport.up_nodes())
        )
        transport.on_message = self._message
        self._task = loop.create_task(self._ticker())

    def _apply(self, outputs: list) -> None:  # type: ignore[type-arg]
        for out in outputs:
            if isinstance(out, SendWitnessReport):
                self.transport.send_witness(witness_encoder.encode(out.report))

    def _message(self, sender: int, channel: int, payload: bytes) -> None:
        if sender == WITNESS_NODE_ID and channel == Channel.WITNESS:
            reply = witness_decoder.decode(payload)
            if isinstance(reply, WitnessReply):
                self._apply(self.quorum.on_witness_reply(asyncio.get_running_loop().time(), reply))

    async def _ticker(self) -> None:
        while True:
            self._apply(self.quorum.tick(asyncio.get_running_loop().time()))
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self._task.cancel()
        await self.transport.close()


async def test_two_nodes_and_witness_survive_either_loss() -> None:
    witness_addr: Address = ("127.0.4.1", free_port("127.0.4.1"))
    server = WitnessServer(witness_addr, cluster_key=KEY, cluster_name="w")
    await server.start()
    addrs = {n: (f"127.0.4.{n + 10}", free_port(f"127.0.4.{n + 10}")) for n in (1, 2)}
    config = QuorumConfig({1: 1, 2: 1}, witness=True)
    nodes: dict[int, QuorumNode] = {}
    try:
        for n in (1, 2):
            transport = Transport(
                TransportConfig(
                    node_id=n,
                    cluster_name="w",
                    cluster_key=KEY,
                    links=[addrs[n]],
                    peers={p: [a] for p, a in addrs.items() if p != n},
                    witness=witness_addr,
                )
            )
            await transport.start()
            nodes[n] = QuorumNode(transport, Quorum(n, config, now=asyncio.get_running_loop().time()))
        await wait_for(
            lambda: all(n.quorum.state.quorate and n.quorum.state.votes == 3 for n in nodes.values())
        )
        await nodes[2].close()
        # Node 1 alone: 1 node vote + the witness vote = 2 of 3.
        await wait_for(lambda: nodes[1].quorum.state.members == {1} and nodes[1].quorum.state.quorate)
        assert nodes[1].quorum.state.witness_vote and nodes[1].quorum.state.votes == 2
        assert server.arbiter.holder == {1}
        assert server.counters["replies"] > 0
    finally:
        for node in nodes.values():
            await node.close()
        await server.close()


# --- the real `hakeeper witness` process ----------------------------------------------------------


def hakeeper() -> list[str]:
    return [sys.executable, "-c", "from hakeeper.cli.main import main; main()"]


def ask(sock: socket.socket, codec: WireCodec, address: Address, view: list[int]) -> WitnessReply | None:
    sock.sendto(
        codec.seal(WITNESS_NODE_ID, Channel.WITNESS, witness_encoder.encode(WitnessReport(view))), address
    )
    try:
        data = sock.recv(65535)
    except TimeoutError:
        return None
    result = codec.open(data, time.monotonic())
    assert isinstance(result, Delivered) and result.sender == WITNESS_NODE_ID
    reply = witness_decoder.decode(result.payload)
    assert isinstance(reply, WitnessReply)
    return reply


def test_witness_process_answers_authenticated_requests(tmp_path: Path) -> None:
    key_file = tmp_path / "authkey"
    write_key_file(key_file)
    key = key_file.read_bytes()
    host = "127.0.5.1"
    port = free_port(host)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [*hakeeper(), "witness", "--listen", f"{host}:{port}", "--key", str(key_file), "--cluster", "prod"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"listening on {host}:{port}" in first and "'prod'" in first
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.5.2", 0))
            sock.settimeout(2.0)
            sock.sendto(b"garbage", (host, port))
            node1 = WireCodec(node_id=1, cluster_name="prod", cluster_key=key, boot_id=7)
            reply = ask(sock, node1, (host, port), [1])
            assert reply == WitnessReply(view=[1], granted=True, holder=[1])
            # A node with another key gets no answer at all.
            intruder = WireCodec(node_id=2, cluster_name="prod", cluster_key=bytes(32), boot_id=7)
            sock.settimeout(0.5)
            assert ask(sock, intruder, (host, port), [2]) is None
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "stopped" in out and "'dropped_bad_magic': 1" in out and "'dropped_auth_failed': 1" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_witness_cli_errors(tmp_path: Path) -> None:
    bad_listen = subprocess.run(
        [*hakeeper(), "witness", "--listen", "nowhere", "--key", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad_listen.returncode == 2 and "HOST:PORT" in bad_listen.stderr
    no_key = subprocess.run(
        [*hakeeper(), "witness", "--listen", "127.0.0.1:5403", "--key", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert no_key.returncode == 1 and "does not exist" in no_key.stderr and "hakeeper keygen" in no_key.stderr


def test_witness_port_in_use(tmp_path: Path) -> None:
    key_file = tmp_path / "authkey"
    write_key_file(key_file)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.5.3", 0))
        port = s.getsockname()[1]
        result = subprocess.run(
            [*hakeeper(), "witness", "--listen", f"127.0.5.3:{port}", "--key", str(key_file)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1 and "cannot listen on witness address" in result.stderr
