"""LRM benchmark: many dummy resources with recurring monitors on one node.

``python -m hakeeper.lrm.bench`` (``make bench-lrm``): starts N resources of a real OCF agent
(``ocf:heartbeat:Dummy`` by default), registers a monitor for each, then measures a steady-state window:
the LRM process's own CPU (children excluded), monitor lateness against schedule (when the LRM started a
monitor minus when its schedule said it was due), and RSS. Monitors are spread uniformly over the interval
with start-delay, as they are on a node whose resources started over time. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hakeeper.agents.registry import AgentRegistry
from hakeeper.lrm.messages import OpRequest, OpResult
from hakeeper.lrm.service import LocalResourceManager, LrmConfig

TARGET_CPU_PERCENT = 15.0
TARGET_P99_MS = 200.0


def _percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def _start_all(lrm: LocalResourceManager, args: argparse.Namespace, state_dir: Path) -> int:
    async def start(i: int) -> OpResult:
        params = {"state": str(state_dir / f"r{i}.state")}
        return await lrm.run(
            OpRequest(resource_id=f"r{i}", agent=args.agent, operation="start", params=params)
        )

    results = await asyncio.gather(*(start(i) for i in range(args.resources)))
    return sum(1 for r in results if r.rc != 0)


def _register_monitors(lrm: LocalResourceManager, args: argparse.Namespace, state_dir: Path) -> None:
    interval_ms = int(args.interval * 1000)
    for i in range(args.resources):
        lrm.submit(
            OpRequest(
                resource_id=f"r{i}",
                agent=args.agent,
                operation="monitor",
                interval_ms=interval_ms,
                start_delay_ms=interval_ms * i // args.resources,
                params={"state": str(state_dir / f"r{i}.state")},
            )
        )


async def _bench(args: argparse.Namespace) -> dict[str, object]:
    state_dir = Path(tempfile.mkdtemp(prefix="hakeeper-bench-"))
    config = LrmConfig(node_name="bench", max_parallel=args.parallel, keep_lateness_samples=1_000_000)
    try:
        async with LocalResourceManager(config) as lrm:
            failed_starts = await _start_all(lrm, args, state_dir)
            _register_monitors(lrm, args, state_dir)
            await asyncio.sleep(args.interval)  # warm-up: every monitor has run once
            lrm.lateness_samples.clear()
            _drain(lrm)
            cpu0, child0, t0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.monotonic()
            await asyncio.sleep(args.duration)
            elapsed = time.monotonic() - t0
            cpu = _cpu(resource.RUSAGE_SELF) - cpu0
            children = _cpu(resource.RUSAGE_CHILDREN) - child0
            samples = list(lrm.lateness_samples)
            changes = _drain(lrm)
            failures = sum(
                1 for k in lrm.core.resources() if (h := lrm.core.history(k)) and h.last_failure is not None
            )
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    lateness_ms = [s * 1000 for s in samples]
    cpu_percent = 100 * cpu / elapsed
    p99 = _percentile(lateness_ms, 0.99)
    return {
        "bench": "lrm",
        "agent": args.agent,
        "resources": args.resources,
        "interval_s": args.interval,
        "duration_s": round(elapsed, 1),
        "max_parallel": args.parallel,
        "monitors_run": len(samples),
        "expected_monitors": int(args.resources * elapsed / args.interval),
        "failed_starts": failed_starts,
        "resources_with_failures": failures,
        "reported_changes": changes,
        "lrm_cpu_percent_of_core": round(cpu_percent, 1),
        "agents_cpu_percent_of_core": round(100 * children / elapsed, 1),
        "lateness_ms_p50": round(_percentile(lateness_ms, 0.5), 1),
        "lateness_ms_p99": round(p99, 1),
        "lateness_ms_max": round(max(lateness_ms, default=0.0), 1),
        "rss_mb": round(_rss_mb(), 1),
        "targets": {"lrm_cpu_percent_of_core": TARGET_CPU_PERCENT, "lateness_ms_p99": TARGET_P99_MS},
        "meets_targets": cpu_percent < TARGET_CPU_PERCENT and p99 < TARGET_P99_MS,
    }


def _drain(lrm: LocalResourceManager) -> int:
    """Empty the event queue (the CRM would consume it); returns how many events there were."""
    count = 0
    while not lrm.events.empty():
        lrm.events.get_nowait()
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0, help="monitor interval, seconds")
    parser.add_argument("--duration", type=float, default=60.0, help="measured window, seconds")
    parser.add_argument("--parallel", type=int, default=16, help="the LRM's parallelism cap")
    parser.add_argument("--agent", default="ocf:heartbeat:Dummy")
    args = parser.parse_args(argv)
    try:
        AgentRegistry().resolve(args.agent)
    except ValueError as exc:
        print(json.dumps({"bench": "lrm", "error": str(exc)}))
        return 2
    started = time.monotonic()
    print(f"bench-lrm: {args.resources} x {args.agent}, monitors every {args.interval:g}s, "
          f"measuring {args.duration:g}s after a {args.interval:g}s warm-up", file=sys.stderr)  # fmt: skip
    result = asyncio.run(_bench(args))
    result["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
