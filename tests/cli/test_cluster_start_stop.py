"""``hakeeper cluster start|stop`` with real daemons: start from a configuration file, stop cleanly through
the API (this node, named nodes, all), and the operator's errors in sentences."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hakeeper.cli.cluster_cmd import cluster as cluster_group
from hakeeper.cli.cluster_run import cluster_view
from hakeeper.cli.localcluster import LocalCluster, wait_until
from tests.clusters import DUMMY, NODES, dummy_bootstrap, running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed"),
]


def hakeeper(*args: str) -> Result:
    assert args[0] == "cluster"
    return CliRunner().invoke(cluster_group, list(args[1:]), catch_exceptions=False)


def sock(cluster: LocalCluster, node: str) -> str:
    return str(cluster.node_dir(node) / "api.sock")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path, NODES, dummy_bootstrap("startstop"))
    try:
        yield c
    finally:
        c.stop_all()


def test_stop_a_named_node_moves_its_resource_and_waits_until_it_is_gone(cluster: LocalCluster) -> None:
    cluster.start_all()
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
    (active,) = running(cluster, "web")
    other = next(n for n in NODES if n != active)
    result = hakeeper("cluster", "stop", "--socket", sock(cluster, other), active)
    assert result.exit_code == 0, result.output
    assert f"Asked {active} to shut down" in result.output
    assert f"Stopped: {active}." in result.output
    assert cluster.procs[active].wait(timeout=60) == 0
    cluster.procs.pop(active)
    (now_active,) = running(cluster, "web")
    assert now_active != active
    # asked again, the node is simply not running
    again = hakeeper("cluster", "stop", "--socket", sock(cluster, other), active)
    assert again.exit_code == 0 and f"{active} is not running." in again.output


def test_stop_this_node_and_the_errors(cluster: LocalCluster) -> None:
    cluster.start_all()
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
    unknown = hakeeper("cluster", "stop", "--socket", sock(cluster, "n1"), "n9")
    assert unknown.exit_code != 0 and "no such node: n9" in unknown.output
    both = hakeeper("cluster", "stop", "--socket", sock(cluster, "n1"), "--all", "n2")
    assert both.exit_code != 0 and "either --all or node names" in both.output
    result = hakeeper("cluster", "stop", "--socket", sock(cluster, "n3"))
    assert result.exit_code == 0, result.output
    assert "Stopped: n3." in result.output
    assert cluster.procs.pop("n3").wait(timeout=60) == 0
    gone = hakeeper("cluster", "stop", "--socket", sock(cluster, "n3"))
    assert gone.exit_code != 0 and "the hakeeper daemon is not running on this node" in gone.output


def test_stop_all(cluster: LocalCluster) -> None:
    cluster.start_all()
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
    result = hakeeper("cluster", "stop", "--socket", sock(cluster, "n1"), "--all")
    assert result.exit_code == 0, result.output
    for n in NODES:
        assert f"Asked {n} to shut down" in result.output
    for n in NODES:
        assert cluster.procs.pop(n).wait(timeout=90) == 0, cluster.logs()
    states = [cluster.node_dir(n) / "lrm" / "Dummy-web.state" for n in NODES]
    assert not any(p.exists() for p in states), "a clean stop leaves nothing running"


def _node_config(cluster: LocalCluster, node: str) -> Path:
    """The node's cluster.toml, as LocalCluster would write it (its own data directory)."""
    node_dir = cluster.node_dir(node)
    node_dir.mkdir(parents=True, exist_ok=True)
    path = node_dir / "cluster.toml"
    path.write_text(cluster.config_text.replace("@DATA@", str(node_dir)))
    return path


def test_start_from_a_config_file_reports_quorum_and_refuses_a_second_start(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, NODES, dummy_bootstrap("started"))
    pids: list[int] = []
    try:
        for n in NODES:
            result = hakeeper(
                "cluster",
                "start",
                "--config",
                str(_node_config(cluster, n)),
                "--node",
                n,
                "--bootstrap",
                str(tmp_path / "bootstrap.toml"),
                "--no-systemd",
            )
            assert result.exit_code == 0, result.output + cluster.logs()
            found = re.search(rf"{n} is running \(pid (\d+)\)", result.output)
            assert found, result.output
            pids.append(int(found.group(1)))
        assert "has quorum" in result.output or wait_until(
            lambda: (v := cluster_view(cluster.node_dir("n3") / "api.sock")) is not None and v.quorate, 30
        )
        states = [cluster.node_dir(n) / "lrm" / "Dummy-web.state" for n in NODES]
        assert wait_until(lambda: sum(p.exists() for p in states) == 1, 90), cluster.logs()
        assert (cluster.node_dir("n1") / "daemon.log").stat().st_size > 0
        twice = hakeeper(
            "cluster",
            "start",
            "--config",
            str(cluster.node_dir("n1") / "cluster.toml"),
            "--node",
            "n1",
            "--no-systemd",
        )
        assert twice.exit_code != 0 and "already running on this node" in twice.output
        stopped = hakeeper("cluster", "stop", "--socket", sock(cluster, "n1"), "--all")
        assert stopped.exit_code == 0, stopped.output
        sockets = [cluster.node_dir(n) / "api.sock" for n in NODES]
        assert wait_until(lambda: all(cluster_view(path) is None for path in sockets), 90)
    finally:
        for pid in pids:  # only what this test started, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def test_start_errors_are_sentences(tmp_path: Path) -> None:
    missing = hakeeper("cluster", "start", "--config", str(tmp_path / "nope.toml"), "--node", "n1")
    assert missing.exit_code != 0 and "cannot read" in missing.output
    cluster = LocalCluster(tmp_path, NODES, dummy_bootstrap("errors"))
    config = _node_config(cluster, "n1")
    wrong = hakeeper("cluster", "start", "--config", str(config), "--node", "n7", "--no-systemd")
    assert wrong.exit_code != 0 and "there is no node 'n7'" in wrong.output
    guess = hakeeper("cluster", "start", "--config", str(config), "--no-systemd")
    assert guess.exit_code != 0 and "--node NAME" in guess.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster]\nname = 1\n")
    broken = hakeeper("cluster", "start", "--config", str(bad), "--node", "n1")
    assert broken.exit_code != 0 and str(bad) in broken.output


def test_start_all_runs_the_other_nodes_over_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--all: this node locally, every other node with 'ssh HOST hakeeper cluster start --node NAME'."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "ssh-calls"
    fake_ssh = bin_dir / "ssh"
    fake_ssh.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "started over ssh"\n')
    fake_ssh.chmod(fake_ssh.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cluster = LocalCluster(tmp_path / "c", NODES, dummy_bootstrap("all"))
    config = _node_config(cluster, "n1")
    pid = 0
    try:
        result = hakeeper(
            "cluster",
            "start",
            "--config",
            str(config),
            "--node",
            "n1",
            "--all",
            "--no-systemd",
            "--timeout",
            "60",
        )
        found = re.search(r"n1 is running \(pid (\d+)\)", result.output)
        pid = int(found.group(1)) if found else 0
        assert result.exit_code == 0, result.output
        lines = calls.read_text().splitlines()
        assert [line.split()[2] for line in lines] == [cluster.addresses["n2"], cluster.addresses["n3"]]
        assert all("hakeeper cluster start" in line and "--node" in line for line in lines)
        assert "n2: started over ssh" in result.output
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def test_the_last_node_stops_without_quorum_and_stops_its_resources(cluster: LocalCluster) -> None:
    cluster.start_all()
    assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
    (active,) = running(cluster, "web")
    others = [n for n in NODES if n != active]
    result = hakeeper("cluster", "stop", "--socket", sock(cluster, active), *others)
    assert result.exit_code == 0, result.output
    for n in others:
        assert cluster.procs.pop(n).wait(timeout=60) == 0
    # alone, the node has no quorum: nothing can be committed, yet it stops cleanly when asked
    last = hakeeper("cluster", "stop", "--socket", sock(cluster, active))
    assert last.exit_code == 0, last.output
    assert cluster.procs.pop(active).wait(timeout=90) == 0, cluster.logs()
    assert not (cluster.node_dir(active) / "lrm" / "Dummy-web.state").exists()
