"""``hakeeper simulate FILE`` with --explain, injections and --run, through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from hakeeper.cib import model as m
from hakeeper.cib.xml_io import cib_to_xml
from hakeeper.cli.main import _register, cli
from hakeeper.cli.simulate_inject import parse_op_spec
from hakeeper.cli.simulate_run import run_transition, status_lines
from tests.policy.builders import cib, fencing_device, node_state, prim, started

NOW = 1_700_000_000
_register()  # the command families, as the hakeeper entry point registers them


def cluster() -> m.Cib:
    """Three nodes; web prefers node1 where it runs, db runs on node2; a fencing device."""
    monitored = m.Primitive(
        id="web",
        klass="ocf",
        provider="heartbeat",
        type="Dummy",
        operations=[m.Operation(id="web-mon", name="monitor", interval=10_000)],
        meta_attributes=[m.NvSet(id="web-meta", values={"resource-stickiness": "100"})],
    )
    return cib(
        [fencing_device(), monitored, prim("db")],
        [
            node_state("node1", started("web"), started("fence")),
            node_state("node2", started("db")),
            node_state("node3"),
        ],
        constraints=[m.Location(id="web-prefers-node1", rsc="web", node="node1", score=50)],
        stonith=True,
    )


@pytest.fixture
def cib_file(tmp_path: Path) -> Path:
    path = tmp_path / "cib.xml"
    path.write_text(cib_to_xml(cluster()), encoding="utf-8")
    return path


def simulate(path: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["simulate", str(path), "--at", str(NOW), *args])
    assert result.exit_code == 0, result.output
    return result.output


def summary(output: str) -> list[str]:
    """The Transition Summary lines, whitespace collapsed."""
    lines = output.split("Transition Summary:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [" ".join(line.split()).replace("( ", "(").replace(" )", ")") for line in lines if line.strip()]


def test_plain_call_keeps_its_format(cib_file: Path) -> None:
    out = simulate(cib_file)
    assert out == "Current cluster status:\n  * Nodes: node1, node2, node3\n\nTransition Summary:\n"


# --- explain -----------------------------------------------------------------------------------------------


def test_explain_names_the_deciding_constraint_and_stickiness(cib_file: Path) -> None:
    out = simulate(cib_file, "--explain", "web")
    why = out.split("Why web goes where it goes:", 1)[1]
    assert "goes to node1 (Started)" in why
    assert "location constraint web-prefers-node1: +50" in why
    assert "resource-stickiness +100: it is running here now" in why
    assert "node1 has the best score among the nodes that can run it (150)" in why


def test_explain_after_an_injection_tells_the_fail_count_ban(tmp_path: Path) -> None:
    c = cluster()
    meta = m.NvSet(id="web-meta", values={"resource-stickiness": "100", "migration-threshold": "1"})
    resources = [
        msgspec.structs.replace(r, meta_attributes=[meta])
        if isinstance(r, m.Primitive) and r.id == "web"
        else r
        for r in c.configuration.resources
    ]
    c = msgspec.structs.replace(
        c, configuration=msgspec.structs.replace(c.configuration, resources=resources)
    )
    path = tmp_path / "threshold.xml"
    path.write_text(cib_to_xml(c), encoding="utf-8")
    out = simulate(path, "--op-fail", "web_monitor_10000@node1=7", "--explain", "web")
    assert any(line.startswith("* Recover web (node1 -> ") for line in summary(out))
    assert "failed 1 time(s) here, reaching migration-threshold 1" in out


def test_explain_of_an_unknown_resource_is_a_usage_error(cib_file: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", str(cib_file), "--explain", "nope"])
    assert result.exit_code == 2
    assert "no resource 'nope'" in result.output


# --- injections --------------------------------------------------------------------------------------------


def test_node_fail_fences_and_recovers(cib_file: Path) -> None:
    out = simulate(cib_file, "--node-fail", "node1")
    assert "Performing Requested Modifications:\n  * Failing node node1\n" in out
    lines = summary(out)
    assert "* Fence (reboot) node1 'peer is no longer part of the cluster'" in lines
    assert any(line.startswith("* Move web (node1 -> ") for line in lines)


def test_node_down_moves_without_fencing(cib_file: Path) -> None:
    lines = summary(simulate(cib_file, "--node-down", "node2"))
    assert not any("Fence" in line for line in lines)
    assert any(line.startswith("* Start db (") for line in lines)


def test_node_up_of_a_node_never_seen(tmp_path: Path) -> None:
    c = cib([prim("web")], [node_state("node1", online=False)], nodes=["node1", "node2"])
    path = tmp_path / "down.xml"
    path.write_text(cib_to_xml(c), encoding="utf-8")
    assert summary(simulate(path)) == []
    assert summary(simulate(path, "--node-up", "node2")) == ["* Start web (node2)"]


def test_op_fail_recovers_in_place_with_stickiness(cib_file: Path) -> None:
    out = simulate(cib_file, "--op-fail", "web_monitor_10000@node1=7")
    assert "* Recover web (node1)" in summary(out)


def test_ticket_revoke_and_grant(tmp_path: Path) -> None:
    c = cib(
        [prim("web")],
        [node_state("node1", started("web"))],
        constraints=[m.Ticket(id="web-needs-t", ticket="T", rsc="web")],
    )
    path = tmp_path / "ticket.xml"
    path.write_text(cib_to_xml(c), encoding="utf-8")
    assert summary(simulate(path, "--ticket-grant", "T")) == []
    assert summary(simulate(path, "--ticket-grant", "T", "--ticket-revoke", "T"))[0].startswith("* Stop web")


def test_at_accepts_iso_8601_and_refuses_nonsense(cib_file: Path) -> None:
    ok = CliRunner().invoke(cli, ["simulate", str(cib_file), "--at", "2023-11-14T22:13:20Z"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(cli, ["simulate", str(cib_file), "--at", "soon"])
    assert bad.exit_code == 2
    assert "'soon' is not a time" in bad.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--node-fail", "node9"], "no node 'node9'"),
        (["--op-fail", "web_monitor@node1=7"], "must end with the interval"),
        (["--op-fail", "nope_monitor_10000@node1=7"], "no primitive resource 'nope'"),
        (["--op-fail", "web_monitor_10000@node1=999"], "between 0 and 255"),
        (["--run-fail", "web_start_0@node1=1"], "--run-fail goes with --run"),
    ],
)
def test_bad_injections_are_refused_clearly(cib_file: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", str(cib_file), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_toml_configuration_can_be_simulated(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(
        '[cluster]\nname = "t"\n\n[properties]\nstonith-enabled = false\n\n'
        '[nodes.node1]\n\n[resources.web]\nagent = "ocf:heartbeat:Dummy"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["simulate", str(path), "--node-up", "node1"])
    assert result.exit_code == 0, result.output
    assert summary(result.output) == ["* Start web (node1)"]


# --- run -------------------------------------------------------------------------------------------------


def test_run_shows_actions_and_revised_status(cib_file: Path) -> None:
    out = simulate(cib_file, "--node-fail", "node1", "--run")
    executing = out.split("Executing Cluster Transition:\n", 1)[1].split("\n\n", 1)[0]
    assert "* Fencing node1 (reboot)" in executing
    assert "start on" in executing
    revised = out.split("Revised Cluster Status:\n", 1)[1]
    assert "* OFFLINE: [ node1 ]" in revised
    assert "* Online: [ node2 node3 ]" in revised
    assert "Started node1" not in revised
    current = out.split("Current cluster status:\n", 1)[1].split("Performing", 1)[0]
    assert "* web\t(ocf:heartbeat:Dummy):\t Started node1" in current


def test_run_failure_marks_the_resource_failed_and_stops_what_follows(cib_file: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            str(cib_file),
            "--at",
            str(NOW),
            "--node-down",
            "node1",
            "--run",
            "--run-fail",
            "web_start_0@node3=1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "start on node3 (fails with rc=1)" in result.output
    revised = result.output.split("Revised Cluster Status:\n", 1)[1]
    assert "web\t(ocf:heartbeat:Dummy):\t FAILED node3" in revised
    assert "web_start_0 on node3 failed with rc=1" in result.output


def test_run_records_results_so_a_second_plan_has_nothing_left_to_do() -> None:
    from hakeeper.cli.simulate_inject import node_fail
    from hakeeper.policy.schedule import schedule

    failed = node_fail(cluster(), "node1")
    after = run_transition(failed, NOW).cib
    assert schedule(after, NOW).summary == []
    assert "* web\t(ocf:heartbeat:Dummy):\t Started node3" in "\n".join(status_lines(after, NOW))
    web_ops = [op.id for s in after.status.nodes for h in s.resources if h.id == "web" for op in h.ops]
    assert "web_last_0" in web_ops and "web_monitor_10000" in web_ops


def test_failed_recurring_monitor_during_run_raises_the_fail_count() -> None:
    from hakeeper.cli.simulate_inject import node_down

    moved = node_down(cluster(), "node1")  # web starts elsewhere, then its monitor is started
    result = run_transition(moved, NOW, (parse_op_spec("web_monitor_10000@node3=7"),))
    assert "web_monitor_10000 on node3 failed with rc=7" in result.failed
    node3 = next(s for s in result.cib.status.nodes if s.uname == "node3")
    attrs = {k: v for t in node3.transient_attributes for k, v in t.values.items()}
    assert attrs["fail-count-web#monitor_10000"] == "1"


def test_status_view_lists_clones_and_groups() -> None:
    clone = m.Clone(id="ping-clone", child=prim("ping"))
    group = m.Group(id="websvc", children=[prim("ip"), prim("www")])
    c = cib(
        [clone, group],
        [
            node_state("node1", started("ping"), started("ip"), started("www")),
            node_state("node2", started("ping")),
            node_state("node3", online=False),
        ],
    )
    lines = [line.strip() for line in status_lines(c, NOW)]
    assert "* Online: [ node1 node2 ]" in lines
    assert "* OFFLINE: [ node3 ]" in lines
    assert "* Clone Set: ping-clone [ping]:" in lines
    assert "* Started: [ node1 node2 ]" in lines
    assert "* Stopped: [ node3 ]" in lines
    assert "* Resource Group: websvc:" in lines
    assert "* www\t(ocf:heartbeat:Dummy):\t Started node1" in lines


def test_run_updates_an_instance_recorded_with_its_number() -> None:
    clone = m.Clone(
        id="ping-clone",
        child=prim("ping"),
        meta_attributes=[m.NvSet(id="pc-meta", values={"target-role": "Stopped"})],
    )
    c = cib([clone], [node_state("node1", started("ping:0"))])
    after = run_transition(c, NOW).cib
    shown = "\n".join(status_lines(after, NOW))
    assert "ORPHANED" not in shown
    assert "Started" not in shown
    ids = [h.id for s in after.status.nodes for h in s.resources]
    assert ids == ["ping:0"]


@pytest.mark.parametrize(
    "args", [["--node-fail", "n1"], ["--explain", "web"], ["--run"], ["--op-fail", "web_monitor_0@n1=1"]]
)
def test_what_if_options_for_a_saved_cib_are_refused_with_live(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--live", *args])
    assert result.exit_code == 2
    assert "only for a saved CIB (FILE), not with --live" in result.output
    assert args[0] in result.output
