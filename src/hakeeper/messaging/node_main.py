"""Run one node's message layer as a process, driven by a line protocol (for tests and benchmarks).

    python -m hakeeper.messaging.node_main --config cluster.toml --node node1 [--data-dir DIR]

It reads the daemon's ``cluster.toml`` (the sections the message layer needs; other settings are ignored).
Commands, one per line on stdin; each gets one JSON reply line ``{"reply": COMMAND, "ok": ..., ...}``::

    propose TEXT            commit TEXT; replies with its index or the rejection
    send NODE TEXT          a node-to-node message
    status                  leader, term, indexes, quorum, up nodes, links and counters
    link down|up N          cut or restore link N (both directions, through the transport's link filter)
    fenced NODE             confirm NODE was fenced (two_node)
    bench-latency N         N proposals one after another: latency percentiles (ms)
    bench-throughput N C    N proposals, C in flight at once: commits per second

Events are JSON lines too: ``{"event": "leader"|"joined"|"left"|"link_up"|"link_down"|"quorum"|"message"|
"commit"|"started"|"stopped", ...}`` with times in monotonic seconds (comparable between processes on one
host). The state machine counts entries and chains a CRC over them; ``--no-commit-events`` silences the
per-entry lines (benchmarks). SIGTERM or end of input stops the node cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
import tomllib
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from hakeeper.cib.values import parse_duration_ms
from hakeeper.messaging.api import (
    Event,
    LeaderChanged,
    LinkDown,
    LinkUp,
    NodeJoined,
    NodeLeft,
    NotLeader,
    PeerMessage,
    ProposalError,
    QuorumChanged,
)
from hakeeper.messaging.keys import KeyFileError, read_key_file
from hakeeper.messaging.raft.storage import StorageCorruptionError
from hakeeper.messaging.service import MessageService, ServiceConfig
from hakeeper.messaging.transport import Address, Direction, TransportError, parse_address


class _Cluster(msgspec.Struct, frozen=True):
    name: str
    key_file: str
    data_dir: str = "/var/lib/hakeeper"


class _Quorum(msgspec.Struct, frozen=True):
    two_node: bool = False
    wait_for_all: bool | None = None
    witness: str | None = None


class _Timers(msgspec.Struct, frozen=True):
    heartbeat_interval: str = "100ms"
    failure_timeout: str = "400ms"
    election_timeout: str = "1s"


class _Node(msgspec.Struct, frozen=True):
    name: str
    id: int
    addresses: list[str]


class _File(msgspec.Struct, frozen=True):
    cluster: _Cluster
    nodes: list[_Node]
    quorum: _Quorum = _Quorum()
    timers: _Timers = _Timers()


class SetupError(Exception):
    """The node cannot start; the message is for the operator."""


def load_service_config(path: Path, node_name: str, data_dir: Path | None) -> ServiceConfig:
    """The message layer's settings for ``node_name`` from a cluster.toml (the daemon's format)."""
    try:
        doc = msgspec.convert(tomllib.loads(path.read_text()), _File)
        node = next((n for n in doc.nodes if n.name == node_name), None)
        if node is None:
            names = ", ".join(n.name for n in doc.nodes)
            raise SetupError(f"{path}: node {node_name!r} is not in the configuration (nodes: {names})")
        t = doc.timers
        key_file = Path(doc.cluster.key_file)
        if not key_file.is_absolute():
            key_file = path.parent / key_file
        config = ServiceConfig(
            node_id=node.id,
            cluster_name=doc.cluster.name,
            cluster_key=read_key_file(key_file),
            nodes={n.id: [parse_address(a) for a in n.addresses] for n in doc.nodes},
            data_dir=data_dir or Path(doc.cluster.data_dir) / node_name,
            two_node=doc.quorum.two_node,
            wait_for_all=doc.quorum.wait_for_all,
            witness=parse_address(doc.quorum.witness) if doc.quorum.witness else None,
            heartbeat_interval=parse_duration_ms(t.heartbeat_interval) / 1000,
            failure_timeout=parse_duration_ms(t.failure_timeout) / 1000,
            election_timeout=parse_duration_ms(t.election_timeout) / 1000,
        )
        config.transport_config()  # checks links, peers and timers
        config.quorum_config()  # checks the quorum options
        return config
    except OSError as err:
        raise SetupError(f"cannot read {path}: {err.strerror}") from None
    except (tomllib.TOMLDecodeError, msgspec.ValidationError, ValueError, KeyFileError) as err:
        raise SetupError(f"{path}: {err}") from None


class CountingApp:
    """The benchmark state machine: a count of entries and a CRC chained over them."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.count = 0
        self.digest = 0

    def apply(self, index: int, data: bytes) -> None:
        self.count += 1
        self.digest = zlib.crc32(data, self.digest)
        self.node.committed(index, data)

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode((self.count, self.digest))

    def restore(self, data: bytes) -> None:
        self.count, self.digest = msgspec.msgpack.decode(data, type=tuple[int, int])


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def event_record(event: Event) -> dict[str, Any]:
    if isinstance(event, LeaderChanged):
        return {"event": "leader", "leader": event.leader, "term": event.term, "at": event.at}
    if isinstance(event, NodeJoined):
        return {"event": "joined", "node": event.node, "at": event.at}
    if isinstance(event, NodeLeft):
        return {"event": "left", "node": event.node, "at": event.at, "reason": event.reason}
    if isinstance(event, LinkUp):
        return {"event": "link_up", "node": event.node, "link": event.link, "at": event.at}
    if isinstance(event, LinkDown):
        return {"event": "link_down", "node": event.node, "link": event.link, "at": event.at}
    if isinstance(event, QuorumChanged):
        s = event.state
        return {"event": "quorum", "quorate": s.quorate, "members": sorted(s.members), "at": event.at}
    assert isinstance(event, PeerMessage)
    return {"event": "message", "from": event.sender, "data": event.data.decode(errors="replace")}


class NodeProcess:
    def __init__(self, config: ServiceConfig, commit_events: bool) -> None:
        self.commit_events = commit_events
        self.cut_links: set[int] = set()
        self.app = CountingApp(self)
        self.service = MessageService(
            config, self.app, lambda e: emit(event_record(e)), link_filter=self._keep
        )

    def _keep(self, direction: Direction, link: int, address: Address) -> bool:
        return link not in self.cut_links

    def committed(self, index: int, data: bytes) -> None:
        if self.commit_events:
            emit({"event": "commit", "index": index, "data": data.decode(errors="replace")})

    async def command(self, line: str) -> dict[str, Any]:
        words = line.split(maxsplit=1)
        name, rest = (words[0], words[1] if len(words) > 1 else "") if words else ("", "")
        try:
            return {"reply": name, **await self._run(name, rest)}
        except (ValueError, IndexError):
            return {"reply": name, "ok": False, "error": "usage", "message": f"cannot understand {line!r}"}

    async def _run(self, name: str, rest: str) -> dict[str, Any]:
        svc = self.service
        if name == "propose":
            return await self._propose(rest.encode())
        if name == "send":
            node, text = rest.split(maxsplit=1)
            return {"ok": svc.send(int(node), text.encode())}
        if name == "status":
            return {"ok": True, **self.status()}
        if name == "link":
            action, number = rest.split()
            (self.cut_links.add if action == "down" else self.cut_links.discard)(int(number))
            return {"ok": action in ("down", "up")}
        if name == "fenced":
            svc.fencing_confirmed(int(rest))
            return {"ok": True}
        if name in ("bench-latency", "bench-throughput"):
            try:
                if name == "bench-latency":
                    return await self._bench_latency(int(rest))
                total, inflight = (int(w) for w in rest.split())
                return await self._bench_throughput(total, inflight)
            except ProposalError as err:  # e.g. leadership moved on a loaded machine: say so, don't hang
                return {"ok": False, "error": type(err).__name__, "message": str(err)}
        raise ValueError(name)

    async def _propose(self, data: bytes) -> dict[str, Any]:
        try:
            return {"ok": True, "index": await self.service.propose(data)}
        except ProposalError as err:
            hint = err.leader_hint if isinstance(err, NotLeader) else 0
            return {"ok": False, "error": type(err).__name__, "leader": hint, "message": str(err)}

    def status(self) -> dict[str, Any]:
        svc = self.service
        q = svc.quorum
        return {
            "node": svc.node_id,
            "leader": svc.leader,
            "term": svc.term,
            "commit": svc.commit_index,
            "applied": svc.applied_index,
            "count": self.app.count,
            "digest": self.app.digest,
            "quorate": q.quorate,
            "members": sorted(q.members),
            "up": sorted(svc.transport.up_nodes()),
            "links": {f"{n}/{i}": up for (n, i), up in svc.transport.link_states().items()},
            "counters": svc.counters,
        }

    async def _bench_latency(self, n: int) -> dict[str, Any]:
        samples: list[float] = []
        for i in range(n):
            start = time.perf_counter()
            await self.service.propose(b"lat-%d" % i)
            samples.append((time.perf_counter() - start) * 1000)
        samples.sort()
        return {"ok": True, "p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99)}

    async def _bench_throughput(self, total: int, inflight: int) -> dict[str, Any]:
        counter = iter(range(total))

        async def worker() -> None:
            for i in counter:
                await self.service.propose(b"tput-%d" % i)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        elapsed = time.perf_counter() - start
        return {"ok": True, "commits": total, "seconds": elapsed, "per_second": total / elapsed}


def percentile(sorted_samples: Sequence[float], p: float) -> float:
    if not sorted_samples:
        return 0.0
    rank = min(len(sorted_samples) - 1, max(0, round(p / 100 * len(sorted_samples)) - 1))
    return sorted_samples[rank]


async def serve(node: NodeProcess) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await node.service.start()
    emit({"event": "started", "node": node.service.node_id, "at": loop.time()})
    commands: set[asyncio.Task[None]] = set()

    async def run(line: str) -> None:
        emit(await node.command(line))

    async def read_commands() -> None:
        while line := (await reader.readline()).decode(errors="replace").strip():
            task = loop.create_task(run(line))
            commands.add(task)
            task.add_done_callback(commands.discard)
        stop.set()

    reading = loop.create_task(read_commands())
    await stop.wait()
    reading.cancel()
    for task in list(commands):
        task.cancel()
    counters = node.service.counters
    await node.service.close()
    emit({"event": "stopped", "node": node.service.node_id, "counters": counters})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hakeeper.messaging.node_main", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", type=Path, required=True, help="the cluster.toml to read")
    parser.add_argument("--node", required=True, help="this node's name in the configuration")
    parser.add_argument("--data-dir", type=Path, help="where Raft state lives (default: <data_dir>/<node>)")
    parser.add_argument("--no-commit-events", action="store_true", help="do not print a line per commit")
    parser.add_argument("--log-level", default="WARNING", help="Python log level on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s: %(message)s")
    try:
        config = load_service_config(args.config, args.node, args.data_dir)
        asyncio.run(serve(NodeProcess(config, commit_events=not args.no_commit_events)))
    except (SetupError, TransportError, StorageCorruptionError) as err:
        print(f"node_main: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the data directory cannot be created or written
        print(
            f"node_main: cannot use {err.filename or 'the data directory'}: {err.strerror}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
