"""Sweeps of CRM simulation seeds: the summary behind ``python -m hakeeper.sim crm``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hakeeper.sim.crm import CrmSeedResult, WarmStarts, replay_crm, run_crm_seed
from hakeeper.sim.crm_node import Glue


@dataclass(frozen=True)
class CrmSweepSummary:
    seeds: int
    failures: tuple[CrmSeedResult, ...]
    seconds: float
    events: int
    slowest: tuple[int, int] = (0, -1)  # (ms from the end of the faults to convergence, seed)
    first_failure_trace: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        out = [
            f"simulated {self.seeds} CRM seeds ({self.events} events) in {self.seconds:.1f} s: "
            f"{len(self.failures)} failed; slowest convergence after the faults: "
            f"{self.slowest[0] / 1000:.1f} s (seed {self.slowest[1]})"
        ]
        out += [f"  seed {f.seed}: {f.error}" for f in self.failures]
        if self.failures:
            out.append(
                f"last events of seed {self.failures[0].seed} (ms from the start, node, what happened):"
            )
            out += ["    " + line for line in self.first_failure_trace]
            out.append(
                f"replay it with: python -m hakeeper.sim crm --replay {self.failures[0].seed} (same flags)"
            )
        return out


def sweep_crm(
    seeds: Iterable[int],
    glue: Glue | None = None,
    *,
    daemon_restarts: bool = False,
    cold: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> CrmSweepSummary:
    """Run every seed — most from settled clusters (see ``WarmStarts``) unless ``cold`` — and call
    ``progress(done, failed)`` every 200 seeds so a long sweep shows it is alive."""
    started = time.monotonic()
    warm = None if cold else WarmStarts()
    results: list[CrmSeedResult] = []
    for seed in seeds:
        results.append(run_crm_seed(seed, glue, warm=warm, daemon_restarts=daemon_restarts))
        if progress is not None and len(results) % 200 == 0:
            progress(len(results), sum(1 for r in results if not r.ok))
    failures = tuple(r for r in results if not r.ok)
    trace: tuple[str, ...] = ()
    if failures:
        seed = failures[0].seed
        lines = replay_crm(seed, glue, trace_limit=40, warm=warm, daemon_restarts=daemon_restarts)
        trace = tuple(lines[1:])
    slowest = max(((r.converged_ms, r.seed) for r in results if r.ok), default=(0, -1))
    return CrmSweepSummary(
        len(results), failures, time.monotonic() - started, sum(r.events for r in results), slowest, trace
    )
