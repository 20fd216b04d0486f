"""Run simulation seeds and summarise: the sweep behind ``python -m hakeeper.sim`` and ``make soak``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hakeeper.sim.cluster import LivenessViolation, NodeFactory, SimCluster, default_factory
from hakeeper.sim.invariants import InvariantViolation


@dataclass(frozen=True)
class SeedResult:
    seed: int
    error: str | None  # None: the run passed
    events: int
    recovery: float = 0.0  # election timeouts from the end of the faults to a new commit

    @property
    def ok(self) -> bool:
        return self.error is None


def run_seed(seed: int, node_factory: NodeFactory = default_factory) -> SeedResult:
    cluster = SimCluster(seed, node_factory=node_factory, trace_limit=0)
    try:
        stats = cluster.run()
    except (InvariantViolation, LivenessViolation) as exc:
        return SeedResult(seed, f"{type(exc).__name__}: {exc}", cluster.stats.events)
    p = cluster.profile
    return SeedResult(seed, None, stats.events, stats.recovery_time / (p.election_ticks * p.tick_ms))


def replay(
    seed: int, node_factory: NodeFactory = default_factory, trace_limit: int | None = None
) -> list[str]:
    """Run ``seed`` again with a per-event trace (node, event, role, term, commit); the last line says how it
    ended. Runs are deterministic, so this reproduces a failure from the sweep exactly."""
    cluster = SimCluster(seed, node_factory=node_factory, trace_limit=trace_limit)
    lines = [f"seed {seed}: {cluster.profile}"]
    try:
        stats = cluster.run()
        outcome = f"seed {seed}: passed ({stats.events} events, {stats.elections} elections)"
    except (InvariantViolation, LivenessViolation) as exc:
        outcome = f"seed {seed}: FAILED: {type(exc).__name__}: {exc}"
    return [*lines, *cluster.trace, outcome]


@dataclass(frozen=True)
class SweepSummary:
    seeds: int
    failures: tuple[SeedResult, ...]
    seconds: float
    events: int
    first_failure_trace: tuple[str, ...] = ()  # the end of the first failing seed's per-event trace
    worst_recovery: tuple[float, int] = (0.0, -1)  # (election timeouts, seed)

    def lines(self) -> list[str]:
        out = [
            f"simulated {self.seeds} seeds ({self.events} events) in {self.seconds:.1f} s: "
            f"{len(self.failures)} failed; slowest recovery after the faults: "
            f"{self.worst_recovery[0]:.1f} election timeouts (seed {self.worst_recovery[1]})"
        ]
        for f in self.failures:
            out.append(f"  seed {f.seed}: {f.error}")
        if self.failures:
            out.append(
                f"last events of seed {self.failures[0].seed} (time, node, event, role, term, commit):"
            )
            out.extend("    " + line for line in self.first_failure_trace)
            out.append(f"replay it with: python -m hakeeper.sim --replay {self.failures[0].seed}")
        return out


def sweep(
    seeds: Iterable[int],
    node_factory: NodeFactory = default_factory,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SweepSummary:
    """Run every seed (in ``jobs`` processes when > 1, with the default core); ``progress(done, failed)`` is
    called every few hundred seeds so a long soak shows it is alive."""
    started = time.monotonic()
    seed_list = list(seeds)
    results: list[SeedResult] = []
    failed = 0
    if jobs > 1:
        import multiprocessing

        with multiprocessing.Pool(jobs) as pool:
            for r in pool.imap(run_seed, seed_list, chunksize=32):
                failed += _collect(results, r, progress, failed)
    else:
        for s in seed_list:
            failed += _collect(results, run_seed(s, node_factory), progress, failed)
    failures = tuple(r for r in results if not r.ok)
    trace = tuple(replay(failures[0].seed, node_factory, trace_limit=40)[1:]) if failures else ()
    elapsed = time.monotonic() - started
    worst = max(((r.recovery, r.seed) for r in results if r.ok), default=(0.0, -1))
    return SweepSummary(len(results), failures, elapsed, sum(r.events for r in results), trace, worst)


def _collect(
    results: list[SeedResult], r: SeedResult, progress: Callable[[int, int], None] | None, failed: int
) -> int:
    results.append(r)
    if progress is not None and len(results) % 500 == 0:
        progress(len(results), failed + (0 if r.ok else 1))
    return 0 if r.ok else 1
