"""The failover benchmark's pure parts: milestones from daemon logs, row figures and targets, the table.

These need no root: the lab itself is exercised by test_lab_cluster.py and by running the benchmark.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest
from click.testing import CliRunner

from hakeeper.cli.bench_cmd import bench
from hakeeper.cli.bench_failover import ROWS, Row, RowResult, Run, log_milestones, summary, table

LOG = """\
2026-11-25 10:56:44,700 n2 hakeeper.daemon INFO: n2: transition 9: 3 actions
2026-11-25 10:56:44,762 n2 hakeeper.daemon INFO: n2: node n3 left
2026-11-25 10:56:44,827 n2 hakeeper.daemon INFO: n2: DC is now n2
2026-11-25 10:56:45,732 n2 hakeeper.daemon INFO: n2: transition 1: 11 actions
2026-11-25 10:56:45,732 n2 hakeeper.daemon WARNING: n2: fencing n3 (reboot) in 0.0 s
2026-11-25 10:56:46,163 n2 hakeeper.daemon INFO: n2: node n3 was fenced (reboot) by n2
2026-11-25 10:56:47,709 n2 hakeeper.daemon INFO: n2: transition 2: 4 actions
not a log line
"""


def wall(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def test_log_milestones_are_the_first_lines_after_the_kill() -> None:
    kill = wall("2026-11-25 10:56:44,750")
    found = log_milestones(LOG, "n3", kill)
    assert found == {
        "detected": wall("2026-11-25 10:56:44,762"),
        "new_dc": wall("2026-11-25 10:56:44,827"),
        "planned": wall("2026-11-25 10:56:45,732"),  # the plan before the kill does not count
        "fence_started": wall("2026-11-25 10:56:45,732"),
        "fenced": wall("2026-11-25 10:56:46,163"),
    }


def test_log_milestones_ignore_other_nodes() -> None:
    assert "detected" not in log_milestones(LOG, "n1", 0.0)
    assert "fenced" not in log_milestones(LOG, "n1", 0.0)


def test_a_row_meets_its_target_only_when_every_run_recovered() -> None:
    row = Row("tuned", {}, False, 0.150)
    runs = [Run("n1", False, "n2", 0.1), Run("n2", True, "n3", 0.14), Run("n3", False, "n1", 0.2)]
    good = RowResult(row, runs)
    assert good.figures() == {"median_s": 0.14, "min_s": 0.1, "max_s": 0.2}
    assert good.met() is True
    missed = RowResult(row, [*good.runs, Run("n1", False, None, None)])
    assert missed.met() is False  # a run without recovery fails the row, whatever the median
    assert "1 without recovery" in table([missed])[1]
    assert RowResult(row, []).met() is None


def test_the_summary_is_one_json_object_with_every_row() -> None:
    results = [RowResult(r, [Run("n1", False, "n2", r.target_s / 2)]) for r in ROWS]
    data = json.loads(json.dumps(summary(results)))
    assert set(data["rows"]) == {"default", "tuned", "default+fencing", "tuned+fencing"}
    assert all(row["met"] for row in data["rows"].values())
    assert data["rows"]["tuned+fencing"]["target_s"] == 0.25


def test_the_command_is_registered_under_bench() -> None:
    result = CliRunner().invoke(bench, ["failover", "--help"])
    assert result.exit_code == 0
    assert "--runs" in result.output


def test_without_root_the_lab_commands_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from hakeeper.cli.demo_cmd import demo

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(bench, ["failover", "--runs", "1"])
    assert result.exit_code == 1
    assert "needs root" in result.output
    result = CliRunner().invoke(demo, ["--lab", "--auto"])
    assert result.exit_code == 1
    assert "demo --lab runs the nodes in network namespaces: the lab needs root" in result.output
