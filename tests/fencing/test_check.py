"""``fence check``: proof that every node can be fenced, and precise messages when it cannot."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hakeeper.cib.model import Cib, FencingLevel, Node
from hakeeper.cib.xml_io import cib_to_xml
from hakeeper.cli.fence_cmd import fence
from hakeeper.fencing.check import LiveFacts, check_fencing, format_report
from tests.fencing.helpers import config, stonith

NODES = ("node1", "node2", "node3")


def lines_of(cfg_report: object) -> str:
    return "\n".join(format_report(cfg_report))  # type: ignore[arg-type]


def test_every_node_covered_by_lists_and_maps_passes() -> None:
    cfg = config(
        stonith("ipmi", agent="fence_ipmilan", pcmk_host_list="node1 node2"),
        stonith("pdu", agent="fence_apc", pcmk_host_map="node3:7"),
        nodes=NODES,
    )
    report = check_fencing(cfg)
    assert report.ok, format_report(report)
    assert [v.fenced_by for v in report.nodes] == [("device ipmi",), ("device ipmi",), ("device pdu",)]
    assert format_report(report)[-1] == "fencing check passed: every node can be fenced"


def test_a_node_no_device_covers_is_named_with_what_to_do() -> None:
    cfg = config(stonith("ipmi", agent="fence_ipmilan", pcmk_host_list="node1 node2"), nodes=NODES)
    report = check_fencing(cfg)
    assert not report.ok
    [bad] = [v for v in report.nodes if not v.proven]
    assert bad.node == "node3"
    assert bad.problems == (
        "no device can fence node3: add node3 to a device's pcmk_host_list or pcmk_host_map, or add a "
        "fencing level for node3. Devices and the nodes they fence: ipmi (node1, node2)",
    )
    text = lines_of(report)
    assert "node3: NOT PROVEN" in text and text.endswith("fencing check FAILED: fix the problems above")


def test_no_devices_at_all() -> None:
    report = check_fencing(config(nodes=("node1",)))
    assert not report.ok
    assert "no fencing device is configured" in report.nodes[0].problems[0]


def test_topology_levels_are_checked_device_by_device() -> None:
    levels = (
        FencingLevel(id="fl-node1-1", index=1, devices=["ipmi", "ghost"], target="node1"),
        FencingLevel(id="fl-node1-2", index=2, devices=["pdu"], target="node1"),
        FencingLevel(id="fl-node2-1", index=1, devices=["pdu"], target="node2"),
    )
    cfg = config(
        stonith("ipmi", agent="fence_ipmilan", pcmk_host_list="node1 node2"),
        stonith("pdu", agent="fence_apc", pcmk_host_map="node2:2"),
        levels=levels,
    )
    report = check_fencing(cfg)
    assert "fencing level fl-node1-1 (for node1) names device ghost, which is not configured" in report.errors
    node1, node2 = report.nodes
    assert not node1.proven
    assert node1.problems == (
        "level 1 (fl-node1-1): device ghost is not configured",
        "level 2 (fl-node1-2): device pdu cannot fence node1 (not in its host list or map)",
        "every fencing level for node1 (selected by node1) is unusable",
    )
    assert node2.proven and node2.fenced_by == ("level 1: pdu",)


def test_topology_by_attribute_uses_node_attributes() -> None:
    levels = (FencingLevel(id="rack1", index=1, devices=["pdu"], target_attribute="rack", target_value="r1"),)
    cfg = config(
        stonith("pdu", agent="fence_apc", pcmk_host_check="none"),
        levels=levels,
        node_attrs={"node1": {"rack": "r1"}},
    )
    report = check_fencing(cfg)
    assert report.ok
    assert report.nodes[0].fenced_by == ("level 1: pdu",)
    assert report.nodes[1].fenced_by == ("device pdu",)


def test_dynamic_list_is_unproven_offline_and_decided_live() -> None:
    virsh = stonith("virsh", agent="fence_virsh", pcmk_host_check="dynamic-list", pcmk_host_map="node2:vm-2")
    offline = check_fencing(config(virsh, nodes=("node2",)))
    assert not offline.ok
    assert offline.nodes[0].problems == (
        "whether device virsh's list includes 'vm-2' is known only by asking the agent "
        "(pcmk_host_check=dynamic-list); run with --live, or set pcmk_host_list/pcmk_host_map on virsh",
    )
    # without an explicit host check, a map alone makes it static-list: proven offline
    mapped = stonith("virsh", agent="fence_virsh", pcmk_host_map="node2:vm-2")
    assert check_fencing(config(mapped, nodes=("node2",))).ok
    listed = config(stonith("virsh", agent="fence_virsh", pcmk_host_check="dynamic-list"), nodes=("node2",))
    live_yes = LiveFacts(
        agent_actions={"fence_virsh": frozenset({"off", "list"})}, lists={"virsh": frozenset({"node2"})}
    )
    assert check_fencing(listed, live_yes).ok
    live_no = LiveFacts(
        agent_actions={"fence_virsh": frozenset({"off", "list"})}, lists={"virsh": frozenset({"x"})}
    )
    assert not check_fencing(listed, live_no).ok


def test_configuration_problems_are_reported() -> None:
    cfg = config(
        stonith("bad", pcmk_delay_max="forever", pcmk_host_list="node1"),
        stonith("stray", pcmk_host_list="node1 node7"),
        levels=(FencingLevel(id="fl-x", index=1, devices=["stray"], target_pattern="node["),),
        props={"stonith-enabled": "false"},
    )
    report = check_fencing(cfg)
    assert (
        "pcmk_delay_max of bad is 'forever', which is not a duration (write e.g. '5s' or '500ms')"
        in report.errors
    )
    assert any("target-pattern 'node['" in e for e in report.errors)
    assert any(w.startswith("stonith-enabled is false") for w in report.warnings)
    assert "device stray lists node7, which is not a configured node" in report.warnings


def test_watchdog_covers_nodes_without_devices() -> None:
    watchdog = {"stonith-watchdog-timeout": "10s", "have-watchdog": "true"}
    report = check_fencing(config(nodes=NODES, props=watchdog))
    assert report.ok and report.warnings == ()
    assert report.nodes[0].fenced_by == ("watchdog self-fencing (stonith-watchdog-timeout)",)
    without = check_fencing(config(nodes=NODES, props={"stonith-watchdog-timeout": "10s"}))
    assert without.ok and any("no resource will start" in w for w in without.warnings)
    two = check_fencing(config(props=watchdog))
    assert any(
        w.startswith("watchdog fencing in a two-node cluster is safe only with a witness")
        for w in two.warnings
    )


def test_remote_nodes_need_fencing_ping_nodes_do_not() -> None:
    cfg = config(stonith("ipmi", pcmk_host_list="node1 node2"))
    cfg = cfg.__class__(
        nodes=[
            *cfg.nodes,
            Node(id="9", uname="quorum-ping", type="ping"),
            Node(id="r", uname="rem", type="remote"),
        ],
        resources=cfg.resources,
    )
    report = check_fencing(cfg)
    assert [v.node for v in report.nodes] == ["node1", "node2", "rem"]
    assert not report.ok


TOML_OK = """
[nodes.node1]
id = "1"

[nodes.node2]
id = "2"

[resources.ipmi-1]
agent = "stonith:fence_ipmilan"
params = { ip = "10.0.0.1", pcmk_host_list = "node1 node2" }

[[fencing.levels]]
target = "node1"
index = 1
devices = ["ipmi-1"]
"""


def test_cli_check_toml_ok(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(TOML_OK)
    result = CliRunner().invoke(fence, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert "node1: OK, fenced by level 1: ipmi-1" in result.output
    assert "node2: OK, fenced by device ipmi-1" in result.output


def test_cli_check_xml_missing_device_exits_1(tmp_path: Path) -> None:
    cfg = config(stonith("ipmi", agent="fence_ipmilan", pcmk_host_list="node1"), nodes=("node1", "node2"))
    path = tmp_path / "cib.xml"
    path.write_text(cib_to_xml(Cib(configuration=cfg)))
    result = CliRunner().invoke(fence, ["check", str(path)])
    assert result.exit_code == 1
    assert "node2: NOT PROVEN\n  - no device can fence node2" in result.output


def test_cli_bad_files_are_clear_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(fence, ["check", str(tmp_path / "nope.toml")])
    assert missing.exit_code != 0 and "cannot read" in missing.output
    broken = tmp_path / "broken.xml"
    broken.write_text("<cib><configuration>")
    result = runner.invoke(fence, ["check", str(broken)])
    assert result.exit_code != 0 and "is not a usable CIB" in result.output
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[nodes.node1\n")
    result = runner.invoke(fence, ["check", str(bad_toml)])
    assert result.exit_code != 0 and "is not a valid configuration" in result.output
    assert "Traceback" not in result.output


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("fence_dummy", path="/usr/sbin:/sbin") is None, reason="fence_dummy missing")
def test_cli_live_asks_the_agents(tmp_path: Path) -> None:
    cfg = config(stonith("dummy", status_file=str(tmp_path / "power")), nodes=("node1", "node2"))
    path = tmp_path / "cib.xml"
    path.write_text(cib_to_xml(Cib(configuration=cfg)))
    offline = CliRunner().invoke(fence, ["check", str(path)])
    assert offline.exit_code == 1
    assert "is known only by asking the agent (pcmk_host_check=dynamic-list)" in offline.output
    live = CliRunner().invoke(fence, ["check", "--live", str(path)])
    # fence_dummy has no list action but answers status: the check becomes "status", and it answers
    assert live.exit_code == 0, live.output
    assert "node1: OK, fenced by device dummy" in live.output


def test_live_facts_missing_parameters_are_errors() -> None:
    cfg = config(stonith("ipmi", agent="fence_ipmilan", pcmk_host_list="node1 node2"))
    live = LiveFacts(missing_params={"ipmi": ["ip", "username"]}, monitor={"ipmi": "login refused"})
    report = check_fencing(cfg, live)
    assert not report.ok
    assert (
        "device ipmi lacks required parameter(s) ip, username of its agent (see its metadata)"
        in report.errors
    )
    assert "device ipmi failed its monitor: login refused" in report.warnings


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("fence_virsh", path="/usr/sbin:/sbin") is None, reason="fence_virsh missing")
def test_cli_live_names_missing_agent_parameters(tmp_path: Path) -> None:
    cfg = config(stonith("virsh", agent="fence_virsh"), nodes=("node1",))
    path = tmp_path / "cib.xml"
    path.write_text(cib_to_xml(Cib(configuration=cfg)))
    result = CliRunner().invoke(fence, ["check", "--live", "--timeout", "10", str(path)])
    assert result.exit_code == 1
    assert "ERROR: device virsh lacks required parameter(s) ip, username of its agent" in result.output
    assert "device virsh could not be asked (list failed with exit code 1" in result.output


def test_levels_and_nodes_relying_on_an_invalid_device_say_so() -> None:
    levels = (FencingLevel(id="fl-node1-1", index=1, devices=["old"], target="node1"),)
    report = check_fencing(config(stonith("old", agent="external/ipmi"), levels=levels))
    assert report.errors[0].startswith("fencing device old uses 'external/ipmi', a cluster-glue")
    node1, node2 = report.nodes
    assert node1.problems[0] == (
        "level 1 (fl-node1-1): device old is configured but cannot be used (its configuration is invalid)"
    )
    assert node2.problems == (
        "no device can fence node2: no configured fencing device is usable (old: see the errors above)",
    )
