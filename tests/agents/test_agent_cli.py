"""``hakeeper agent list|describe|run``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from hakeeper.cli.agent_cmd import agent

needs_agents = pytest.mark.skipif(
    not os.access("/usr/lib/ocf/resource.d/heartbeat/Dummy", os.X_OK),
    reason="resource-agents is not installed",
)


def test_list_builtin_provider() -> None:
    result = CliRunner().invoke(agent, ["list", "ocf:hakeeper"])
    assert result.exit_code == 0
    assert result.output.split() == ["ocf:hakeeper:dummy", "ocf:hakeeper:process", "ocf:hakeeper:vip"]


def test_list_rejects_unknown_class() -> None:
    result = CliRunner().invoke(agent, ["list", "upstart"])
    assert result.exit_code == 2 and "unknown agent class" in result.output


@needs_agents
def test_describe_ipaddr2() -> None:
    result = CliRunner().invoke(agent, ["describe", "ocf:heartbeat:IPaddr2"])
    assert result.exit_code == 0, result.output
    assert "ip (string, required" in result.output and "start timeout=20s" in result.output
    as_json = CliRunner().invoke(agent, ["describe", "--json", "ocf:heartbeat:IPaddr2"])
    assert json.loads(as_json.output)["name"] == "IPaddr2"


def test_describe_missing_agent_is_a_sentence() -> None:
    result = CliRunner().invoke(agent, ["describe", "ocf:nobody:nothing"])
    assert result.exit_code == 1 and "is not installed on this node" in result.output


@needs_agents
def test_run_dummy_start_then_monitor(tmp_path: Path) -> None:
    state = tmp_path / "d"
    start = CliRunner().invoke(agent, ["run", "ocf:heartbeat:Dummy", "start", "--param", f"state={state}"])
    assert start.exit_code == 0, start.output
    assert "rc=0" in start.output and state.exists()
    monitor = CliRunner().invoke(
        agent, ["run", "ocf:heartbeat:Dummy", "monitor", "-p", f"state={tmp_path / 'x'}", "--json"]
    )
    assert monitor.exit_code == 7
    assert json.loads(monitor.output)["result"]["rc"] == 7


def test_run_with_promotion_reports_attributes(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        agent, ["run", "ocf:hakeeper:dummy", "start", "-p", f"state={tmp_path / 's'}", "--node", "n1"]
    )
    assert result.exit_code == 0 and "rc=0 (done, ok)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(["-p", "novalue"], "must look like NAME=VALUE"), (["--timeout", "soon"], "is not a duration")],
)
def test_run_bad_arguments(args: list[str], message: str) -> None:
    result = CliRunner().invoke(agent, ["run", "ocf:hakeeper:dummy", "start", *args])
    assert result.exit_code == 2 and message in result.output
