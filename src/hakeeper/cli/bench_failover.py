"""``hakeeper bench failover``: how long a service is gone when the machine running it dies (lab, root).

Three nodes in network namespaces (:class:`~hakeeper.cli.lab.LabCluster`) run a group: a virtual IP and the
demo's HTTP service bound to it. A client in its own namespace starts an HTTP request to the VIP every 5 ms
(each attempt may take up to a second; they overlap). One run: note the time, power off the node serving the
VIP (links down, every process killed), and wait for the first answer through the VIP from another node.
The figure is the time between the two, on one clock (CLOCK_MONOTONIC is shared by all namespaces). The node
is then powered on again and the cluster left to settle before the next run.

Rows: default timers, tuned timers, and both again with fencing on (the lab fence agent, which must succeed
before the group may start elsewhere). Each run also gets a breakdown from the survivors' logs and the
API's events: detection (node left), DC election (when the dead node was the DC), plan, fence, VIP start,
service start, first answer. The table goes to stdout, then the reference figures, then one JSON line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import click
import httpx

from hakeeper.api.client import ApiRequestError
from hakeeper.api.schemas import ClusterView
from hakeeper.cli.lab import CLIENT, LabCluster, LabError, lab_supported, web_group_bootstrap
from hakeeper.cli.localcluster import wait_until

PORT = 8080
POLL_PERIOD_S = 0.005
RECOVERY_LIMIT_S = 60.0
SETTLE_LIMIT_S = 120.0
STABLE_S = 3.0
NODES = ["n1", "n2", "n3"]

DEFAULT_TIMERS: dict[str, str] = {}
TUNED_TIMERS = {"heartbeat_interval": "10ms", "failure_timeout": "60ms", "election_timeout": "150ms"}


@dataclass(frozen=True)
class Row:
    """One configuration measured: its timers, whether fencing is on, and the target for the median."""

    name: str
    timers: Mapping[str, str]
    fencing: bool
    target_s: float


ROWS = (
    Row("default", DEFAULT_TIMERS, False, 1.0),
    Row("tuned", TUNED_TIMERS, False, 0.150),
    Row("default+fencing", DEFAULT_TIMERS, True, 1.2),
    Row("tuned+fencing", TUNED_TIMERS, True, 0.250),
)

REFERENCE = """\
reference (issues 7 and 8, measured on the same kind of lab):
  Pacemaker + Corosync   default 8.0 s, tuned 2.3 s; tuned with fence_dummy 3.3 s
  keepalived (moves only an address, no service)   default 2.8 s, tuned 29 ms"""

# The poller runs inside the client namespace: a new attempt every period, each printing the time of its
# answer when the answering node changes. Overlapping attempts keep the resolution at the period even while
# connections to the dead node hang.
POLLER = r"""
import asyncio, sys, time
host, port, period = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
last = [None]
def report(state):
    if state != last[0]:
        last[0] = state
        print(f"{time.monotonic():.6f} {state}", flush=True)
async def attempt():
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
        writer.write(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 1.0)
        writer.close()
    except ConnectionRefusedError:
        report("!refused")  # the VIP answers (a node holds it) but nothing listens there yet
        return
    except (OSError, asyncio.TimeoutError):
        return
    body = data.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()
    if body:
        report(body)
async def main():
    tasks = set()
    print("ready", flush=True)
    while True:
        if len(tasks) < 400:
            task = asyncio.ensure_future(attempt())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(period)
asyncio.run(main())
"""


@dataclass
class Run:
    """One failover: who died, whether it was the DC, the outage in seconds (None: no recovery in time),
    and the breakdown (milestone -> seconds after the kill)."""

    victim: str
    victim_was_dc: bool
    new_node: str | None
    outage_s: float | None
    breakdown: dict[str, float] = field(default_factory=dict)


@dataclass
class RowResult:
    """The runs of one row and their summary."""

    row: Row
    runs: list[Run]
    error: str | None = None
    spurious: list[str] = field(default_factory=list)
    """Nodes found dead that the bench had not powered off (fenced after a false failure detection)."""

    def outages(self) -> list[float]:
        return [r.outage_s for r in self.runs if r.outage_s is not None]

    def figures(self) -> dict[str, float | None]:
        got = self.outages()
        if not got:
            return {"median_s": None, "min_s": None, "max_s": None}
        return {"median_s": statistics.median(got), "min_s": min(got), "max_s": max(got)}

    def met(self) -> bool | None:
        median = self.figures()["median_s"]
        if median is None or len(self.outages()) < len(self.runs):
            return False if self.runs else None
        return median <= self.row.target_s


# --- the cluster under test ------------------------------------------------------------------------------


class Poller:
    """The client namespace's poller process and the answers it reported: (monotonic time, node)."""

    def __init__(self, lab: LabCluster) -> None:
        argv = [sys.executable, "-c", POLLER, lab.vip, str(PORT), str(POLL_PERIOD_S)]
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", lab.namespace(CLIENT), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.answers: list[tuple[float, str]] = []
        self.refused: list[float] = []
        """When connections to the VIP were refused: a node holds the VIP but the service is not up yet."""
        self._partial = b""
        self._ready = False
        self._collect(time.monotonic() + 30.0, until_ready=True)
        if not self._ready:
            self.close()
            raise LabError("the client's HTTP poller did not start")

    def _collect(self, deadline: float, until_ready: bool = False) -> None:
        """Record the poller's lines until ``deadline`` (unbuffered reads: no line waits in a buffer)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while (left := deadline - time.monotonic()) > 0 and not (until_ready and self._ready):
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return  # the poller died; the caller sees no answers
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                self._record(line.decode(errors="replace").strip())

    def _record(self, line: str) -> None:
        if line == "ready":
            self._ready = True
            return
        stamp, _, body = line.partition(" ")
        with contextlib.suppress(ValueError):
            if body == "!refused":
                self.refused.append(float(stamp))
            else:
                self.answers.append((float(stamp), body.removeprefix("hello from ").strip()))

    def first_answer(self, not_node: str | None, after: float, timeout: float) -> float | None:
        """The time of the first answer after ``after`` from a node other than ``not_node``, waiting up
        to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            for at, node in self.answers:
                if at >= after and node != not_node:
                    return at
            if time.monotonic() >= deadline:
                return None
            self._collect(min(deadline, time.monotonic() + 0.2))

    def drain(self, seconds: float) -> None:
        """Record what the poller reports during ``seconds``."""
        self._collect(time.monotonic() + seconds)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


# --- the breakdown: milestones from the survivors' logs and the API's events ------------------------------

_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\S+) \S+ \S+: (.*)$")


def log_milestones(text: str, victim: str, after_wall: float) -> dict[str, float]:
    """Wall times of the first detection, DC change, plan and fencing lines after ``after_wall``."""
    patterns = {
        "detected": re.compile(rf"node {re.escape(victim)} left"),
        "new_dc": re.compile(r"DC is now "),
        "planned": re.compile(r"transition \d+: \d+ actions"),
        "fence_started": re.compile(rf"fencing {re.escape(victim)} "),
        "fenced": re.compile(rf"node {re.escape(victim)} was fenced"),
    }
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if not match:
            continue
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if at < after_wall:
            continue
        for name, pattern in patterns.items():
            if pattern.search(match.group(3)):
                found[name] = min(found.get(name, at), at)
    return found


def event_milestones(lab: LabCluster, node: str, after_wall: float) -> dict[str, float]:
    """Wall times at which the VIP and the service were recorded started on ``node`` after the kill."""
    found: dict[str, float] = {}
    try:
        with lab.api(node) as client:
            events = client.events().events
    except (ApiRequestError, httpx.HTTPError, OSError):
        return found
    for event in events:
        started = event.kind == "resource" and event.task == "start" and event.rc == 0
        if started and event.node == node and event.rsc in ("vip", "web") and event.timestamp >= after_wall:
            key = f"{event.rsc}_started"
            found[key] = min(found.get(key, event.timestamp), event.timestamp)
    return found


def breakdown(lab: LabCluster, victim: str, new_node: str | None, kill_wall: float) -> dict[str, float]:
    """Milestone -> seconds after the kill, in the order they happened."""
    walls: dict[str, float] = {}
    for node in lab.nodes:
        if node == victim:
            continue
        path = lab.node_dir(node) / "daemon.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        for name, at in log_milestones(text, victim, kill_wall).items():
            walls[name] = min(walls.get(name, at), at)
    if new_node is not None:
        walls.update(event_milestones(lab, new_node, kill_wall))
    return {k: round(v - kill_wall, 4) for k, v in sorted(walls.items(), key=lambda kv: kv[1])}


# --- one row ---------------------------------------------------------------------------------------------


def web_spawned(lab: LabCluster, node: str, after: float) -> float | None:
    """When the web service's process on ``node`` was created (monotonic, 10 ms resolution), from its pid
    file and /proc; None when it cannot be read or is older than ``after``."""
    pidfile = lab.node_dir(node) / "lrm" / "hakeeper-process-web.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError, IndexError):
        return None
    ticks = int(stat.rpartition(")")[2].split()[19])  # field 22: starttime, in clock ticks after boot
    boot_to_monotonic = time.clock_gettime(time.CLOCK_BOOTTIME) - time.monotonic()
    at = ticks / os.sysconf("SC_CLK_TCK") - boot_to_monotonic
    return at if at >= after else None


def cluster_view(lab: LabCluster) -> ClusterView | None:
    """The cluster as the first live node's API describes it (None when no API answers)."""
    for node in lab.nodes:
        if not lab.alive(node):
            continue
        try:
            with lab.api(node) as client:
                return client.cluster()
        except (ApiRequestError, httpx.HTTPError, OSError):
            continue
    return None


def all_online(lab: LabCluster) -> bool:
    view = cluster_view(lab)
    return view is not None and view.quorate and all(n.online for n in view.nodes)


def settle(lab: LabCluster, poller: Poller, spurious: list[str]) -> str:
    """Wait until every node is online and the service has answered from one live node without a change
    for STABLE_S (a returning node may still make the cluster move things); that node. A node whose
    daemon died meanwhile was fenced by its peers: it is noted in ``spurious`` and powered on again."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    while time.monotonic() < deadline:
        for node in lab.nodes:
            if not lab.alive(node):
                spurious.append(node)
                lab.power_on(node)
        if not all_online(lab):
            poller.drain(0.5)
            continue
        seen = len(poller.answers)
        poller.drain(STABLE_S)
        if not poller.answers or len(poller.answers) != seen:
            continue
        node = poller.answers[-1][1]
        if lab.alive(node) and lab.client_get(f"http://{lab.vip}:{PORT}/") == f"hello from {node}":
            return node
    raise LabError(f"the service did not settle within {SETTLE_LIMIT_S:.0f} s (logs under {lab.root})")


def one_run(lab: LabCluster, poller: Poller, spurious: list[str]) -> Run:
    """Power off the serving node; time until another node answers through the VIP; power it on."""
    victim = settle(lab, poller, spurious)
    view = cluster_view(lab)
    was_dc = view is not None and view.dc == victim
    kill_wall, kill_at = time.time(), time.monotonic()
    lab.power_off(victim)
    answered = poller.first_answer(victim, kill_at, RECOVERY_LIMIT_S)
    new_node = next((n for at, n in poller.answers if answered is not None and at == answered), None)
    run = Run(victim, was_dc, new_node, None if answered is None else answered - kill_at)
    run.breakdown = breakdown(lab, victim, new_node, kill_wall)
    refused = [t for t in poller.refused if t >= kill_at and (answered is None or t <= answered)]
    if refused:
        run.breakdown["vip_reachable"] = round(refused[0] - kill_at, 4)
    if new_node is not None:
        spawned = web_spawned(lab, new_node, kill_at)
        if spawned is not None:
            run.breakdown["web_spawned"] = round(spawned - kill_at, 4)
    if answered is not None:
        run.breakdown["answered"] = round(answered - kill_at, 4)
    run.breakdown = dict(sorted(run.breakdown.items(), key=lambda kv: kv[1]))
    lab.power_on(victim)
    wait_until(lambda: lab.alive(victim), 30)
    return run


@contextlib.contextmanager
def lab_for(row: Row, root: Path) -> Iterator[LabCluster]:
    lab = LabCluster(root, NODES, timers=row.timers, cluster_name="bench")
    lab.bootstrap = web_group_bootstrap(lab, fencing=row.fencing, port=PORT)
    with lab:
        lab.start_all()
        yield lab


def measure_row(row: Row, runs: int, root: Path, echo: bool) -> RowResult:
    result = RowResult(row, [])
    try:
        with lab_for(row, root) as lab:
            poller = Poller(lab)
            try:
                for i in range(runs):
                    run = one_run(lab, poller, result.spurious)
                    result.runs.append(run)
                    if echo:
                        click.echo(f"  {row.name} run {i + 1}: {describe(run)}")
            finally:
                poller.close()
    except LabError as err:
        result.error = str(err)
    return result


def describe(run: Run) -> str:
    outage = "no recovery" if run.outage_s is None else f"{run.outage_s * 1000:.0f} ms"
    dc = " (it was the DC)" if run.victim_was_dc else ""
    steps = ", ".join(f"{k} {v * 1000:.0f}" for k, v in run.breakdown.items())
    return f"{run.victim}{dc} -> {run.new_node}: {outage}  [ms after the kill: {steps}]"


# --- output ----------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def table(results: list[RowResult]) -> list[str]:
    lines = [f"{'row':<17} {'median':>9} {'min':>9} {'max':>9} {'target':>9}  {'met':<4} runs"]
    for res in results:
        fig = res.figures()
        met = {True: "yes", False: "NO", None: "-"}[res.met()]
        note = f"  error: {res.error}" if res.error else ""
        if res.spurious:
            note += f"  {len(res.spurious)} node(s) fenced after a false detection: {', '.join(res.spurious)}"
        failed = len(res.runs) - len(res.outages())
        runs = f"{len(res.outages())}/{len(res.runs)}" + (f" ({failed} without recovery)" if failed else "")
        figures = f"{_ms(fig['median_s']):>9} {_ms(fig['min_s']):>9} {_ms(fig['max_s']):>9}"
        lines.append(f"{res.row.name:<17} {figures} {_ms(res.row.target_s):>9}  {met:<4} {runs}{note}")
    return lines


def timers_text(timers: Mapping[str, str]) -> str:
    given = ", ".join(f"{k} {v}" for k, v in timers.items())
    return given or "defaults (heartbeat_interval 100ms, failure_timeout 400ms, election_timeout 1s)"


def summary(results: list[RowResult]) -> dict[str, object]:
    return {
        "benchmark": "failover",
        "note": "figures from the machine the bench ran on; a loaded machine inflates them",
        "poll_period_s": POLL_PERIOD_S,
        "rows": {
            res.row.name: {
                **res.figures(),
                "target_s": res.row.target_s,
                "met": res.met(),
                "fencing": res.row.fencing,
                "timers": dict(res.row.timers),
                "error": res.error,
                "spurious_fences": res.spurious,
                "runs": [asdict(r) for r in res.runs],
            }
            for res in results
        },
        "reference": {
            "pacemaker_corosync": {"default_s": 8.0, "tuned_s": 2.3, "tuned_fence_dummy_s": 3.3},
            "keepalived": {"default_s": 2.8, "tuned_s": 0.029},
        },
    }


@click.command("failover")
@click.option("--runs", type=click.IntRange(1, 50), default=5, show_default=True, help="Failovers per row.")
@click.option(
    "--row",
    "rows",
    multiple=True,
    type=click.Choice([r.name for r in ROWS]),
    help="Measure only this row (repeatable; default: all four).",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the nodes' directories and logs here (default: a temporary folder, removed).",
)
def failover(runs: int, rows: tuple[str, ...], keep: Path | None) -> None:
    """Kill the machine serving a VIP + HTTP group; time until another node answers (lab: root only)."""
    why = lab_supported()
    if why is not None:
        raise click.ClickException(f"bench failover runs a lab cluster in network namespaces: {why}")
    if shutil.which("ip") is None:
        raise click.ClickException("bench failover needs iproute2's 'ip'")
    chosen = [r for r in ROWS if not rows or r.name in rows]
    click.echo(f"3 nodes in network namespaces; a client polls the VIP every {POLL_PERIOD_S * 1000:g} ms")
    for row in chosen:
        fencing = "on (lab agent)" if row.fencing else "off"
        click.echo(f"  {row.name}: timers {timers_text(row.timers)}; fencing {fencing}")
    results: list[RowResult] = []
    base = keep or Path(tempfile.mkdtemp(prefix="hakeeper-failover-"))
    try:
        for row in chosen:
            results.append(measure_row(row, runs, base / row.name.replace("+", "-"), echo=True))
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)
    for line in table(results):
        click.echo(line)
    click.echo(REFERENCE)
    click.echo(f"(machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)")
    click.echo(json.dumps(summary(results), sort_keys=True))
