"""``hakeeper bench policy``: runs, prints a table, and ends with one JSON object of the figures."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from hakeeper.cib.xml_io import cib_to_xml
from hakeeper.cli import bench_cmd
from hakeeper.sim.synthetic import synthetic_cib

CELL_KEYS = {
    "nodes",
    "resources",
    "scenario",
    "xml_bytes",
    "ours_s",
    "ours_runs",
    "ours_actions",
    "crm_s",
    "crm_runs",
    "crm_status",
    "ratio",
}


def test_quick_without_crm_simulate_ends_with_the_figures_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # as on a machine without Pacemaker
    result = CliRunner().invoke(bench_cmd.bench, ["policy", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "crm_simulate is not installed" in lines[0]
    figures = json.loads(lines[-1])
    assert figures["benchmark"] == "policy"
    assert figures["crm_simulate"] is None
    cells = figures["cells"]
    assert {(c["nodes"], c["resources"]) for c in cells} == {(3, 100), (16, 1000)}
    assert {c["scenario"] for c in cells} == {"initial", "steady", "node-failed"}
    for cell in cells:
        assert set(cell) == CELL_KEYS
        assert cell["ours_s"] > 0 and cell["crm_s"] is None and cell["crm_status"] == "missing"
    steady = [c for c in cells if c["scenario"] == "steady"]
    assert all(c["ours_actions"] == 0 for c in steady)
    assert figures["targets"]["32x5000_under_10s"] is None
    assert len(list(tmp_path.glob("synthetic-*.xml"))) == 6
    assert sum(1 for line in lines if "crm_simulate not installed" in line) == 6


def write_small_cib(tmp_path: Path) -> Path:
    xml = tmp_path / "small.xml"
    xml.write_text(cib_to_xml(synthetic_cib(3, 20, "node-failed", 1)), encoding="utf-8")
    return xml


def fake_binary(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake_crm_simulate"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_crm_simulate_runs_on_the_exported_xml(tmp_path: Path) -> None:
    binary = shutil.which("crm_simulate")
    if binary is None:
        pytest.skip("crm_simulate (pacemaker-cli-utils) is not installed")
    seconds, runs, status = bench_cmd.measure_crm(binary, write_small_cib(tmp_path), tmp_path)
    assert status == "ok"
    assert seconds is not None and seconds > 0 and runs >= 1


def test_a_slow_crm_simulate_is_skipped_and_says_so(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, "exec sleep 30")
    seconds, _runs, status = bench_cmd.measure_crm(binary, write_small_cib(tmp_path), tmp_path, timeout=0.2)
    assert (seconds, status) == (None, "timeout")


def test_a_failing_crm_simulate_is_reported_with_its_message(tmp_path: Path) -> None:
    binary = fake_binary(tmp_path, "echo 'schema validation failed' >&2; exit 3")
    seconds, _runs, status = bench_cmd.measure_crm(binary, write_small_cib(tmp_path), tmp_path)
    assert seconds is None
    assert status == "error: exit 3: schema validation failed"


def test_table_row_names_a_skipped_cell() -> None:
    cell = bench_cmd.Cell(
        nodes=32,
        resources=5000,
        scenario="steady",
        xml_bytes=1,
        ours_s=2.0,
        ours_runs=1,
        ours_actions=0,
        crm_s=None,
        crm_runs=1,
        crm_status="timeout",
    )
    assert "crm_simulate skipped: past 60 s" in bench_cmd.table_row(cell)
    assert cell.ratio is None
    done = bench_cmd.Cell(
        nodes=3,
        resources=100,
        scenario="steady",
        xml_bytes=1,
        ours_s=0.5,
        ours_runs=5,
        ours_actions=0,
        crm_s=2.0,
        crm_runs=5,
        crm_status="ok",
    )
    assert done.ratio == pytest.approx(4.0)
    assert "4.0x" in bench_cmd.table_row(done)
