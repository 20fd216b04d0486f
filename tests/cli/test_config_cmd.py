"""``hakeeper config validate|show|import|export`` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hakeeper.cib.declarative import load_config
from hakeeper.cib.xml_io import parse_cib_xml
from hakeeper.cli.config_cmd import summary
from hakeeper.cli.main import _register, cli
from tests.cib.test_declarative import CASES, corpus_configuration, needs_corpus
from tests.conftest import PROJECT_ROOT

EXAMPLES = sorted((PROJECT_ROOT / "examples").glob("*.toml"))
BROKEN = PROJECT_ROOT / "tests" / "cib" / "data" / "broken.toml"

SMALL_CIB = """<cib admin_epoch="0" epoch="1" num_updates="0">
  <configuration>
    <crm_config><cluster_property_set id="cib-bootstrap-options">
      <nvpair id="p1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
    <nodes><node id="1" uname="node1"/></nodes>
    <resources>
      <primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
        <instance_attributes id="vip-instance_attributes">
          <nvpair id="vip-ip" name="ip" value="10.0.0.10"/>
        </instance_attributes>
        <frobnicate/>
      </primitive>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>
"""


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    _register()
    return CliRunner()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_validate_accepts_every_shipped_example(runner: CliRunner, path: Path) -> None:
    result = runner.invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path} is valid\n"


def test_validate_rejects_the_broken_example_with_its_errors(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["config", "validate", str(BROKEN)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert 'error: resources.web: unknown key "agnet" (did you mean "agent"?)' in result.stderr
    assert (
        'error: resources.web.ops[1].interval: "10x" is not a duration (use 10s, 1min or PT10S)'
        in result.stderr
    )
    assert f"{BROKEN} is not valid: 2 errors" in result.stderr


def test_validate_reports_semantic_errors_and_warnings(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[resources.web]\nagent = "systemd:httpd"\n'
        '[constraints.c]\ntype = "colocation"\nresource = "web"\nwith = "db"\nscore = 10\n'
    )
    result = runner.invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith('error: constraints.c.with: no resource, template or tag is named "db"')
    assert lines[1].startswith("warning: properties.stonith-enabled: fencing is enabled")
    assert lines[-1] == f"{path} is not valid: 1 error"


def test_validate_prints_warnings_but_passes(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text("[properties]\nstonith-enabled = false\nstonith-enable = true\n")
    result = runner.invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 0
    assert "warning: properties.stonith-enable: is not a cluster option" in result.stderr
    assert result.stdout == f"{path} is valid (1 warning)\n"


def test_validate_reads_xml_and_shows_import_warnings(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "cib.xml"
    path.write_text(SMALL_CIB)
    result = runner.invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: import: <frobnicate>" in result.stderr
    assert "is not supported; ignored" in result.stderr


def test_validate_missing_file_says_so(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["config", "validate", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert "cannot read" in result.stderr and "nope.toml" in result.stderr


def test_validate_binary_garbage_is_an_error_not_a_crash(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    result = runner.invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 1
    assert "is not UTF-8 text" in result.stderr
    bad_xml = tmp_path / "bad.xml"
    bad_xml.write_text("<cib><configuration>")
    result = runner.invoke(cli, ["config", "validate", str(bad_xml)])
    assert result.exit_code == 1
    assert "is not a usable Pacemaker CIB" in result.stderr


def test_show_prints_nodes_resource_tree_and_constraints(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["config", "show", str(PROJECT_ROOT / "examples" / "active-passive.toml")])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0] == "Cluster web-ha"
    assert "Nodes (2)" in out and "  node1" in out
    assert "  websvc  (group)" in out
    assert any(line.startswith("      vip  ocf:heartbeat:IPaddr2  ip=10.0.0.10") for line in out)
    assert "  websvc-prefers-node1: location websvc on node1 score 50" in out
    assert "  node1 level 1: fence-node1" in out


def test_show_marks_promotable_clones(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["config", "show", str(PROJECT_ROOT / "examples" / "promotable.toml")])
    assert result.exit_code == 0
    assert any(line.startswith("  db-clone  (promotable clone)") for line in result.stdout.splitlines())
    assert "  promote-then-vip: order promote db-clone then start db-vip (Mandatory)" in result.stdout


def test_import_writes_toml_that_loads_to_the_same_model(runner: CliRunner, tmp_path: Path) -> None:
    xml = tmp_path / "cib.xml"
    xml.write_text(SMALL_CIB)
    out = tmp_path / "out.toml"
    result = runner.invoke(cli, ["config", "import", str(xml), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "warning: <frobnicate>" in result.stderr
    assert load_config(out.read_text()) == parse_cib_xml(SMALL_CIB).cib.configuration
    assert '[resources.vip]\nagent = "ocf:heartbeat:IPaddr2"' in out.read_text()


def test_import_to_stdout(runner: CliRunner, tmp_path: Path) -> None:
    xml = tmp_path / "cib.xml"
    xml.write_text(SMALL_CIB)
    result = runner.invoke(cli, ["config", "import", str(xml)])
    assert result.exit_code == 0
    assert result.stdout.startswith("# hakeeper cluster configuration, imported from cib.xml")
    assert load_config(result.stdout) == parse_cib_xml(SMALL_CIB).cib.configuration


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_export_gives_xml_with_the_same_configuration(runner: CliRunner, path: Path, tmp_path: Path) -> None:
    out = tmp_path / "cib.xml"
    result = runner.invoke(cli, ["config", "export", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    imported = parse_cib_xml(out.read_bytes())
    assert imported.warnings == []
    assert imported.cib.configuration == load_config(path.read_text())


def test_export_refuses_an_invalid_configuration_unless_forced(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[resources.web]\nagent = "ocff:heartbeat:apache"\n')
    result = runner.invoke(cli, ["config", "export", str(path)])
    assert result.exit_code == 1
    assert 'error: resources.web.agent: "ocff" is not an agent class (did you mean "ocf"?)' in result.stderr
    forced = runner.invoke(cli, ["config", "export", "--force", str(path)])
    assert forced.exit_code == 0
    assert 'class="ocff"' in forced.stdout


def test_export_of_a_broken_file_lists_load_errors(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["config", "export", str(BROKEN)])
    assert result.exit_code == 1
    assert '"10x" is not a duration' in result.stderr


@needs_corpus
def test_show_summarises_every_corpus_configuration() -> None:
    for path in CASES:
        cfg = corpus_configuration(path)
        lines = summary(cfg, path.name)
        assert f"Resources ({len(cfg.resources)})" in lines
        assert f"Constraints ({len(cfg.constraints)})" in lines


def test_import_of_a_cib_with_a_reused_id_explains_why_it_cannot(runner: CliRunner, tmp_path: Path) -> None:
    xml = tmp_path / "dup.xml"
    xml.write_text(
        "<cib><configuration><crm_config/><nodes/><resources>"
        '<primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/>'
        '<group id="g"><primitive id="a" class="ocf" provider="heartbeat" type="Dummy"/></group>'
        "</resources><constraints/></configuration></cib>"
    )
    result = runner.invoke(cli, ["config", "import", str(xml)])
    assert result.exit_code == 1
    assert 'cannot be written as TOML: two resources share the id "a"' in result.stderr
    result = runner.invoke(cli, ["config", "validate", str(xml)])
    assert result.exit_code == 1
    assert "error: resources.a: is defined more than once; ids must be unique" in result.stderr
