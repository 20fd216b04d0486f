"""Benchmark of the message layer on loopback, and the launcher for node processes that tests use too.

``make bench-messaging`` (``python -m hakeeper.messaging.bench``) starts 3 node processes
(:mod:`hakeeper.messaging.node_main`) on 127.0.x.y addresses with default timers and measures: commit
latency p50/p99 (one proposal at a time at the leader), batched throughput (many proposals in flight),
the time until the leader's failure detector declares a killed (SIGKILL) node gone, and idle CPU and RSS
per node. Then it measures idle CPU of the common small cluster too: 2 nodes and a witness. It prints a line
per figure and, last, one JSON object with all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hakeeper.messaging.keys import write_key_file

Record = dict[str, Any]

TARGETS = {"p99_ms": 5.0, "commits_per_second": 5000.0, "detection_ms": 500.0, "idle_cpu_percent": 1.0}


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class ClusterFiles:
    """A cluster.toml (and key file) per node, in ``root``; ``node_configs[name]`` is that node's file."""

    root: Path
    names: list[str]
    node_configs: dict[str, Path] = field(default_factory=dict)
    witness: tuple[str, int] | None = None
    key_file: Path | None = None


def write_cluster(
    root: Path,
    size: int,
    *,
    net: int = 20,
    links: int = 1,
    witness: bool = False,
    two_node: bool = False,
    wrong_key: Sequence[str] = (),
    timers: dict[str, str] | None = None,
) -> ClusterFiles:
    """Configuration for ``size`` nodes named node1..; node n listens on 127.<net+link>.0.<n+10>.
    Nodes in ``wrong_key`` get a key of their own (their packets must be rejected)."""
    root.mkdir(parents=True, exist_ok=True)
    key = root / "cluster.key"
    if not key.exists():
        write_key_file(key)
    names = [f"node{n}" for n in range(1, size + 1)]
    lines = ["[[nodes]]\n" + _node_entry(n, net, links) for n in range(1, size + 1)]
    files = ClusterFiles(root, names, key_file=key)
    quorum = [f"two_node = {'true' if two_node else 'false'}"]
    if witness:
        host = f"127.{net}.0.5"
        files.witness = (host, free_port(host))
        quorum.append(f'witness = "{host}:{files.witness[1]}"')
    timer_lines = [f'{k} = "{v}"' for k, v in (timers or {}).items()]
    for name in names:
        node_key = key
        if name in wrong_key:
            node_key = root / f"{name}.key"
            if not node_key.exists():
                write_key_file(node_key)
        text = (
            f'[cluster]\nname = "bench"\nkey_file = "{node_key}"\ndata_dir = "{root / "data"}"\n\n'
            + "[quorum]\n"
            + "\n".join(quorum)
            + "\n\n[timers]\n"
            + "\n".join(timer_lines)
            + "\n\n"
            + "\n".join(lines)
        )
        path = root / f"{name}.toml"
        path.write_text(text)
        files.node_configs[name] = path
    return files


def _node_entry(n: int, net: int, links: int) -> str:
    addrs = []
    for link in range(links):
        host = f"127.{net + link}.0.{n + 10}"
        addrs.append(f'"{host}:{free_port(host)}"')
    return f'name = "node{n}"\nid = {n}\naddresses = [{", ".join(addrs)}]\n'


class NodeProc:
    """One node_main process: send commands, read replies and events."""

    def __init__(self, name: str, config: Path, *, commit_events: bool = True) -> None:
        self.name = name
        self.id = int(name.removeprefix("node"))
        self.config = config
        self.commit_events = commit_events
        self.events: list[Record] = []
        self.stderr = b""
        self._proc: asyncio.subprocess.Process | None = None
        self._replies: asyncio.Queue[Record] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._err_reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        cmd = [sys.executable, "-m", "hakeeper.messaging.node_main", "--config", str(self.config)]
        cmd += ["--node", self.name] + ([] if self.commit_events else ["--no-commit-events"])
        self.events, self._replies = [], asyncio.Queue()
        self._proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            limit=2**24,
        )
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read())
        self._err_reader = loop.create_task(self._read_stderr())
        await self.wait_event(lambda e: e.get("event") == "started", timeout=30)

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            record = json.loads(line)
            if "reply" in record:
                self._replies.put_nowait(record)
            else:
                self.events.append(record)

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(65536):
            self.stderr = (self.stderr + chunk)[-65536:]  # keep the tail for error messages

    async def command(self, line: str, timeout: float = 30.0) -> Record:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(line.encode() + b"\n")
        await self._proc.stdin.drain()
        async with asyncio.timeout(timeout):
            return await self._replies.get()

    async def status(self) -> Record:
        return await self.command("status")

    async def wait_event(self, pred: Callable[[Record], bool], timeout: float = 15.0) -> Record:
        async with asyncio.timeout(timeout):
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                if not self.running and self._reader is not None and self._reader.done():
                    raise RuntimeError(f"{self.name} exited: {self.stderr.decode(errors='replace')[-2000:]}")
                await asyncio.sleep(0.01)

    def commits(self) -> list[Record]:
        return [e for e in self.events if e.get("event") == "commit"]

    async def kill(self) -> float:
        """SIGKILL; returns the monotonic time of the kill."""
        assert self._proc is not None
        at = time.monotonic()
        self._proc.send_signal(signal.SIGKILL)
        await self._proc.wait()
        await self._finish()
        return at

    async def stop(self) -> None:
        if self._proc is None or self._proc.returncode is not None:
            await self._finish()
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await self._proc.wait()
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        await self._finish()

    async def _finish(self) -> None:
        for task in (self._reader, self._err_reader):
            if task is not None:
                try:
                    async with asyncio.timeout(5):
                        await task
                except TimeoutError:
                    task.cancel()


async def find_leader(nodes: Sequence[NodeProc], timeout: float = 15.0) -> NodeProc:
    """The node every running node agrees is the leader."""
    async with asyncio.timeout(timeout):
        while True:
            live = [n for n in nodes if n.running]
            statuses = [await n.status() for n in live]
            leaders = {s["leader"] for s in statuses}
            if len(leaders) == 1 and (lid := leaders.pop()) in {n.id for n in live}:
                return next(n for n in live if n.id == lid)
            await asyncio.sleep(0.05)


async def wait_quorate(nodes: Sequence[NodeProc], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not all([(await n.status())["quorate"] for n in nodes if n.running]):
            await asyncio.sleep(0.05)


async def wait_all_up(nodes: Sequence[NodeProc], timeout: float = 15.0) -> None:
    """Until every running node's failure detector sees all the others up."""
    ids = {n.id for n in nodes if n.running}
    async with asyncio.timeout(timeout):
        while not all([set((await n.status())["up"]) == ids - {n.id} for n in nodes if n.running]):
            await asyncio.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """CPU time of all the process's threads: from the scheduler's nanosecond counters where the kernel
    keeps them, else from utime + stime (10 ms clock ticks)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return sum(int((t / "schedstat").read_text().split()[0]) for t in tasks) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle_cpu(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Percent of a core each process uses over ``seconds`` of doing nothing asked of it."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    return {name: 100 * (cpu_seconds(pid) - before[name]) / elapsed for name, pid in pids.items()}


async def start_witness(files: ClusterFiles) -> asyncio.subprocess.Process:
    """``hakeeper witness`` for the cluster in ``files``, returned once it listens."""
    assert files.witness is not None and files.key_file is not None
    host, port = files.witness
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from hakeeper.cli.main import main; main()",
        "witness",
        "--listen",
        f"{host}:{port}",
        "--key",
        str(files.key_file),
        "--cluster",
        "bench",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
    except TimeoutError:
        line = b""
    if b"listening" not in line:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise RuntimeError(f"the witness did not start (it said {line!r})")
    return proc


async def run_witness_idle(root: Path, idle_s: float) -> dict[str, float]:
    """Idle CPU of 2 nodes and a witness, each a process of its own."""
    files = write_cluster(root, 2, net=34, witness=True)
    witness = await start_witness(files)
    nodes = [NodeProc(n, files.node_configs[n], commit_events=False) for n in files.names]
    try:
        for node in nodes:
            await node.start()
        await find_leader(nodes)
        await wait_quorate(nodes)
        await asyncio.sleep(1.0)
        return await idle_cpu({n.name: n.pid for n in nodes} | {"witness": witness.pid}, idle_s)
    finally:
        for node in nodes:
            await node.stop()
        witness.terminate()
        await witness.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run_bench(root: Path, latency_n: int, throughput_n: int, inflight: int, idle_s: float) -> Record:
    files = write_cluster(root, 3, net=30)
    nodes = [NodeProc(n, files.node_configs[n], commit_events=False) for n in files.names]
    try:
        for node in nodes:
            await node.start()
        leader = await find_leader(nodes)
        await wait_quorate(nodes)  # a leader refuses proposals until its failure detector sees a quorum
        await leader.command("bench-latency 50")  # warm-up
        lat = _checked(await leader.command(f"bench-latency {latency_n}", timeout=120))
        print(f"commit latency: p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms ({latency_n} commits)")
        tput = _checked(await leader.command(f"bench-throughput {throughput_n} {inflight}", timeout=300))
        print(
            f"throughput: {tput['per_second']:.0f} commits/s ({throughput_n} commits, {inflight} in flight)"
        )
        await asyncio.sleep(1.0)  # let the followers settle after the burst
        idle = await idle_cpu({n.name: n.pid for n in nodes}, idle_s)
        rss = {n.name: rss_mb(n.pid) for n in nodes}
        print("idle CPU (% of a core): " + ", ".join(f"{k} {v:.2f}" for k, v in idle.items()))
        print("RSS (MB): " + ", ".join(f"{k} {v:.1f}" for k, v in rss.items()))
        victim = next(n for n in nodes if n is not leader)
        killed_at = await victim.kill()
        left = await leader.wait_event(lambda e: e.get("event") == "left" and e["node"] == victim.id)
        detection_ms = (left["at"] - killed_at) * 1000
        print(f"detection of a killed node: {detection_ms:.0f} ms (default timers: 100 ms pings, 400 ms)")
        failover_ms = await measure_failover(nodes, victim, leader)
        print(f"a new leader after the leader was killed: {failover_ms:.0f} ms (election timeout 1 s)")
        return {
            "p50_ms": round(lat["p50_ms"], 3),
            "p99_ms": round(lat["p99_ms"], 3),
            "commits_per_second": round(tput["per_second"]),
            "detection_ms": round(detection_ms, 1),
            "failover_ms": round(failover_ms, 1),
            "idle_cpu_percent": {k: round(v, 2) for k, v in idle.items()},
            "rss_mb": {k: round(v, 1) for k, v in rss.items()},
            "nodes": 3,
            "latency_commits": latency_n,
            "throughput_commits": throughput_n,
            "in_flight": inflight,
        }
    finally:
        for node in nodes:
            await node.stop()


def _checked(reply: Record) -> Record:
    if not reply.get("ok"):
        raise RuntimeError(f"the benchmark run failed on the leader: {reply.get('message', reply)}")
    return reply


async def measure_failover(nodes: Sequence[NodeProc], stopped: NodeProc, leader: NodeProc) -> float:
    """Bring ``stopped`` back, then SIGKILL the leader: milliseconds until a survivor knows a new leader.

    The kill waits until every node's failure detector sees every other node up: a node that restarted
    moments ago and has not yet seen the leader up gets no verdict that it went down, and keeps refusing
    votes until its own election timeout (correct, but not the steady-state failover measured here)."""
    await stopped.start()
    await find_leader(nodes)
    await wait_all_up(nodes)
    survivors = [n for n in nodes if n is not leader]
    killed_at = await leader.kill()

    def new_leader(e: Record) -> bool:
        return e.get("event") == "leader" and e["leader"] not in (0, leader.id) and e["at"] > killed_at

    seen = await asyncio.gather(*(n.wait_event(new_leader, timeout=30) for n in survivors))
    return (min(float(e["at"]) for e in seen) - killed_at) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hakeeper.messaging.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--latency-commits", type=int, default=2000)
    parser.add_argument("--throughput-commits", type=int, default=50000)
    parser.add_argument("--in-flight", type=int, default=500)
    # Where the kernel keeps no per-thread schedstat, CPU time is counted in 10 ms clock ticks: 10 s then
    # resolves idle CPU to 0.1 % of a core.
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hakeeper-bench-") as tmp:
        result = asyncio.run(
            run_bench(
                Path(tmp), args.latency_commits, args.throughput_commits, args.in_flight, args.idle_seconds
            )
        )
        small = asyncio.run(run_witness_idle(Path(tmp) / "witness", args.idle_seconds))
    print("idle CPU, 2 nodes + witness (% of a core): " + ", ".join(f"{k} {v:.2f}" for k, v in small.items()))
    result["idle_cpu_percent_two_nodes_and_witness"] = {k: round(v, 2) for k, v in small.items()}
    result["targets"] = TARGETS
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
