"""``hakeeper bench policy``: time our policy engine against Pacemaker's ``crm_simulate`` on synthetic CIBs.

For every cell (nodes x resources x scenario) the generator in ``hakeeper.sim.synthetic`` makes one CIB;
it is exported to Pacemaker XML, and in the same run we time:

* ours: ``schedule(cib, execution_date)`` in this process, on the in-memory CIB, after the engine's modules
  are loaded (warm). Small cells are repeated and the best run is kept. Parsing XML is not included: the
  controller holds the CIB as objects (and our XML import is far slower than the scheduler on big files).
* crm_simulate: ``crm_simulate -R -x FILE``. ``-R`` (``--run``) runs Pacemaker's scheduler exactly once on
  the file: it loads and schema-checks the XML, computes the transition and prints its summary. ``-S`` would
  also replay the transition in the simulator and print the revised status, work our figure does not do.
  The wall time therefore includes process start, XML parsing and validation, which our figure does not;
  those are part of what Pacemaker's scheduler must do on every transition, as our controller must not.
  ``CIB_shadow_dir`` points at a temporary folder because ``-x`` writes a shadow copy of its input there.
  A run past 60 s is stopped and the cell says so.

The table goes to stdout; the very last line is one JSON object with every figure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from hakeeper.cib.xml_io import cib_to_xml
from hakeeper.cli.bench_failover import failover
from hakeeper.policy.schedule import schedule
from hakeeper.sim.synthetic import SCENARIOS, Scenario, synthetic_cib

NODES = (3, 16, 32)
RESOURCES = (100, 1000, 5000)
QUICK_CELLS = ((3, 100), (16, 1000))
SEED = 1
CRM_TIMEOUT_S = 60.0
REPEAT_BUDGET_S = 3.0  # repeat a cell while the runs so far took less than this (best of up to MAX_RUNS)
MAX_RUNS = 5
TARGET_BIG_S = 10.0


@dataclass
class Cell:
    """The figures of one benchmark cell; ``None`` where a figure could not be taken (see the status)."""

    nodes: int
    resources: int
    scenario: str
    xml_bytes: int
    ours_s: float
    ours_runs: int
    ours_actions: int
    crm_s: float | None
    crm_runs: int
    crm_status: str  # ok, timeout (past 60 s), missing (not installed), error: ...

    @property
    def ratio(self) -> float | None:
        """crm_simulate's time divided by ours: above 1 means we are faster."""
        if self.crm_s is None or self.ours_s <= 0:
            return None
        return self.crm_s / self.ours_s


def best_of(run: Callable[[], object]) -> tuple[float, int]:
    """The fastest wall time of ``run``, repeated while cheap (up to MAX_RUNS or REPEAT_BUDGET_S)."""
    times: list[float] = []
    while len(times) < MAX_RUNS and sum(times) < REPEAT_BUDGET_S:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times), len(times)


class CrmFailed(Exception):
    """crm_simulate did not finish normally; the message says why, in a few words."""


def run_crm_simulate(binary: str, xml: Path, shadow_dir: Path, timeout: float = CRM_TIMEOUT_S) -> None:
    # A folder per run: crm_simulate leaves its shadow copy (as big as the input) behind.
    with tempfile.TemporaryDirectory(dir=shadow_dir) as shadow:
        env = dict(os.environ, CIB_shadow_dir=shadow, LC_ALL="C")
        try:
            done = subprocess.run(
                [binary, "-R", "-x", str(xml)], env=env, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise CrmFailed("timeout") from err
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise CrmFailed(f"error: exit {done.returncode}: {tail[0][:200]}")


def measure_crm(
    binary: str | None, xml: Path, shadow_dir: Path, timeout: float = CRM_TIMEOUT_S
) -> tuple[float | None, int, str]:
    """Best wall time of ``crm_simulate -R -x xml``, its number of runs, and ok/missing/timeout/error."""
    if binary is None:
        return None, 0, "missing"
    try:
        best, runs = best_of(lambda: run_crm_simulate(binary, xml, shadow_dir, timeout))
    except CrmFailed as err:
        return None, 1, str(err)
    return best, runs, "ok"


def write_xml(path: Path, xml: str) -> None:
    try:
        path.write_text(xml, encoding="utf-8")
    except OSError as err:
        raise click.ClickException(f"cannot write the synthetic CIB {path}: {err.strerror or err}") from err


def measure_cell(
    nodes: int,
    resources: int,
    scenario: Scenario,
    out: Path,
    crm: str | None,
    shadow_dir: Path,
    keep: bool = True,
) -> Cell:
    """Generate, export and time one cell; without ``keep`` the XML file is removed afterwards."""
    cib = synthetic_cib(nodes, resources, scenario, SEED)
    xml = cib_to_xml(cib)
    path = out / f"synthetic-{nodes}x{resources}-{scenario}.xml"
    write_xml(path, xml)
    now = cib.execution_date or 0
    actions = len(schedule(cib, now).actions)  # also warms the engine up for this cell's shape
    ours, ours_runs = best_of(lambda: schedule(cib, now))
    crm_s, crm_runs, status = measure_crm(crm, path, shadow_dir)
    if not keep:
        path.unlink(missing_ok=True)  # the big cells are ~100 MB each
    return Cell(
        nodes=nodes,
        resources=resources,
        scenario=scenario,
        xml_bytes=len(xml.encode()),
        ours_s=ours,
        ours_runs=ours_runs,
        ours_actions=actions,
        crm_s=crm_s,
        crm_runs=crm_runs,
        crm_status=status,
    )


def cells(quick: bool) -> Iterator[tuple[int, int, Scenario]]:
    sizes = QUICK_CELLS if quick else tuple((n, r) for n in NODES for r in RESOURCES)
    for nodes, resources in sizes:
        for scenario in SCENARIOS:
            yield nodes, resources, scenario


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}"


HEADER = f"{'cell':<26} {'ours s':>8} {'crm_simulate s':>15} {'ratio':>7}  note"


def table_row(cell: Cell) -> str:
    name = f"{cell.nodes}x{cell.resources} {cell.scenario}"
    ratio = "-" if cell.ratio is None else f"{cell.ratio:.1f}x"
    note = (
        ""
        if cell.crm_status == "ok"
        else {
            "timeout": f"crm_simulate skipped: past {CRM_TIMEOUT_S:.0f} s",
            "missing": "crm_simulate not installed",
        }.get(cell.crm_status, f"crm_simulate failed ({cell.crm_status})")
    )
    figures = f"{_fmt(cell.ours_s):>8} {_fmt(cell.crm_s):>15} {ratio:>7}"
    return f"{name:<26} {figures}  {note}"


def summary(results: list[Cell], crm: str | None) -> dict[str, object]:
    finished = [c for c in results if c.crm_s is not None]
    big = [c for c in results if (c.nodes, c.resources) == (32, 5000)]
    return {
        "benchmark": "policy",
        "seed": SEED,
        "crm_simulate": crm,
        "crm_timeout_s": CRM_TIMEOUT_S,
        "cells": [asdict(c) | {"ratio": c.ratio} for c in results],
        "targets": {
            "ours_not_slower_on_every_finished_cell": all(c.ours_s <= (c.crm_s or 0) for c in finished)
            if finished
            else None,
            "32x5000_under_10s": all(c.ours_s < TARGET_BIG_S for c in big) if big else None,
        },
    }


@contextmanager
def _folder(out: Path | None) -> Iterator[Path]:
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            reason = err.strerror or err
            raise click.ClickException(f"cannot create the output folder {out}: {reason}") from err
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="hakeeper-bench-") as tmp:
        yield Path(tmp)


@click.group("bench")
def bench() -> None:
    """Benchmarks of hakeeper's components (figures on stdout, last line JSON)."""


@bench.command("policy")
@click.option("--quick", is_flag=True, help="Only the 3x100 and 16x1000 cells (for a test).")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the generated CIB XML files in this folder (default: a temporary one).",
)
def policy(quick: bool, out: Path | None) -> None:
    """Time our policy engine and crm_simulate on synthetic clusters (nodes x resources x scenario)."""
    crm = shutil.which("crm_simulate")
    if crm is None:
        click.echo("crm_simulate is not installed: timing our engine only.")
    results: list[Cell] = []
    with _folder(out) as folder, tempfile.TemporaryDirectory(prefix="hakeeper-shadow-") as shadow:
        click.echo(HEADER)
        for nodes, resources, scenario in cells(quick):
            cell = measure_cell(nodes, resources, scenario, folder, crm, Path(shadow), keep=out is not None)
            results.append(cell)
            click.echo(table_row(cell))
    click.echo("ratio = crm_simulate time / our time (above 1: we are faster).")
    click.echo(json.dumps(summary(results, crm), sort_keys=True))


bench.add_command(failover)
