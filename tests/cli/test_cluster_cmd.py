"""config apply, config haresources, simulate --live (real API app, fake cluster) and cluster setup."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from hakeeper.api.client import ApiClient
from hakeeper.api.schemas import LocationAdd
from hakeeper.cib import model as m
from hakeeper.cib.declarative import dump_config
from hakeeper.cli.main import cli
from hakeeper.daemon.config import load_daemon_config
from tests.cli.served import Served, sample_cib, served

__all__ = ["served"]
pytestmark = pytest.mark.timeout(60)


def edited_config(tmp_path: Path, served: Served) -> Path:
    """The running configuration with vip's ip changed and a new resource."""
    cfg = served.fake.cib().configuration
    vip = cfg.resources[0]
    assert isinstance(vip, m.Primitive)
    new_vip = m.Primitive(
        id="vip",
        klass="ocf",
        provider="pacemaker",
        type="Dummy",
        instance_attributes=[m.NvSet(id="vip-ia", values={"ip": "10.0.0.99"})],
        meta_attributes=vip.meta_attributes,
    )
    secret = [m.NvSet(id="extra-ia", values={"password": "hunter2"})]
    extra = m.Primitive(
        id="extra", klass="ocf", provider="pacemaker", type="Dummy", instance_attributes=secret
    )
    new = m.Configuration(
        properties=cfg.properties,
        nodes=cfg.nodes,
        resources=[new_vip, *cfg.resources[1:], extra],
        constraints=cfg.constraints,
    )
    path = tmp_path / "new.toml"
    path.write_text(dump_config(new))
    return path


def test_apply_dry_run_shows_diff_and_prediction_and_changes_nothing(tmp_path: Path, served: Served) -> None:
    path = edited_config(tmp_path, served)
    result = served.run("config", "apply", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    out = result.output
    assert '-    { id = "vip-ia", values = { ip = "10.0.0.10" } },' in out
    assert '+    { id = "vip-ia", values = { ip = "10.0.0.99" } },' in out
    assert "+[resources.extra]" in out
    assert "hunter2" not in out and 'password = "***"' in out  # secrets never shown, even the new ones
    assert "Predicted transition:" in out and "extra" in out.split("Predicted transition:")[1]
    assert "Dry run: nothing was applied." in out
    assert served.fake.submitted == []


def test_apply_asks_then_commits(tmp_path: Path, served: Served) -> None:
    path = edited_config(tmp_path, served)
    refused = served.run("config", "apply", str(path), input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert served.fake.submitted == []
    result = served.run("config", "apply", str(path), input="y\n")
    assert result.exit_code == 0, result.output
    assert "Committed: CIB version 0.7.2 -> 0.8.0" in result.output
    assert any(r.id == "extra" for r in served.fake.cib().configuration.resources)
    again = served.run("config", "apply", str(path), "--yes")
    assert again.exit_code == 0 and "Nothing to change" in again.output


class ChangeWhileAsking(io.BytesIO):
    """Operator input that, as it is read, lets another operator commit a change first."""

    def __init__(self, socket: Path, token: str | None) -> None:
        super().__init__(b"y\n")
        self.socket, self.token, self.done = socket, token, False

    def _interfere(self, size: int | None) -> None:
        if not self.done and size != 0:  # click probes the stream with read(0)
            self.done = True
            with ApiClient(socket_path=self.socket, token=self.token) as other:
                other.add_location(LocationAdd(rsc="vip", node="n3", score=-100))

    def read1(self, size: int | None = -1) -> bytes:
        self._interfere(size)
        return super().read1(size)

    def read(self, size: int | None = -1) -> bytes:
        self._interfere(size)
        return super().read(size)


def test_apply_after_someone_else_changed_the_cluster_is_refused(tmp_path: Path, served: Served) -> None:
    path = edited_config(tmp_path, served)
    runner = CliRunner()
    env = {"HAKEEPER_SOCKET": str(served.socket), "HAKEEPER_TOKEN": served.token}
    stdin = ChangeWhileAsking(served.socket, served.token)
    result = runner.invoke(cli, ["config", "apply", str(path)], input=stdin, env=env)
    assert stdin.done
    assert result.exit_code == 1, result.output
    assert "changed by someone else after it was read" in result.output
    assert "nothing was applied" in result.output
    assert not any(r.id == "extra" for r in served.fake.cib().configuration.resources)


def test_apply_an_invalid_file_lists_the_problems(tmp_path: Path, served: Served) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[resources.x]\nagent = "ocf:heartbeat:Dummy"\nbogus = 1\n')
    result = served.run("config", "apply", str(path), "--dry-run")
    assert result.exit_code == 1
    assert "bogus" in result.output and "Traceback" not in result.output


def test_haresources_creates_the_group(served: Served) -> None:
    result = served.run("config", "haresources", "n2 IPaddr::10.0.0.20/24 httpd2")
    assert result.exit_code == 0, result.output
    assert "Committed" in result.output
    cfg = served.fake.cib().configuration
    group = next(r for r in cfg.resources if isinstance(r, m.Group) and r.id.startswith("group_IPaddr"))
    assert [c.id for c in group.children][1:] == ["httpd2"]
    assert any(isinstance(c, m.Location) and c.node == "n2" for c in cfg.constraints)
    bad = served.run("config", "haresources", "nowhere httpd3")
    assert bad.exit_code == 1 and "nowhere" in bad.output


def test_simulate_live_as_is_and_with_changes(tmp_path: Path, served: Served) -> None:
    result = served.run("simulate", "--live")
    assert result.exit_code == 0, result.output
    assert "The running cluster (CIB version 0.7.2) as it is would do:" in result.output
    ops = tmp_path / "ops.json"
    ops.write_text(
        json.dumps(
            [
                {
                    "op": "create",
                    "path": "/configuration/nodes/n1/instance_attributes",
                    "value": {"id": "n1-standby", "values": {"standby": "on"}},
                }
            ]
        )
    )
    moved = served.run("simulate", "--live", "--ops", str(ops))
    assert moved.exit_code == 0, moved.output
    assert "with the changes" in moved.output
    assert "Move" in moved.output and "vip" in moved.output
    as_json = json.loads(served.run("simulate", "--live", "--ops", str(ops), "--json").output)
    assert as_json["version"] == "0.7.2" and as_json["summary"]
    assert served.fake.submitted == []


def test_simulate_live_what_ifs(served: Served) -> None:
    standby = served.run("simulate", "--live", "--standby", "n1")
    assert standby.exit_code == 0, standby.output
    assert "with the changes" in standby.output
    assert "Move       vip      ( n1 -> " in standby.output and "fs" in standby.output
    moved = served.run("simulate", "--live", "--move", "web", "n3", "--disable", "vip")
    assert moved.exit_code == 0, moved.output
    assert "Move       fs       ( n1 -> n3 )" in moved.output
    assert "Stop       vip      (       n1 )" in moved.output
    unknown = served.run("simulate", "--live", "--move", "web", "n9")
    assert unknown.exit_code == 1 and "cannot simulate that" in unknown.output and "n9" in unknown.output
    assert served.fake.submitted == []


def test_simulate_live_refuses_bad_input(tmp_path: Path, served: Served) -> None:
    bad = tmp_path / "ops.json"
    bad.write_text('{"op": "nothing"}')
    result = served.run("simulate", "--live", "--ops", str(bad))
    assert result.exit_code == 1 and "JSON list of patch operations" in result.output
    neither = served.run("simulate")
    assert neither.exit_code == 2 and "--live" in neither.output


def test_simulate_a_saved_cib_still_works(tmp_path: Path) -> None:
    from hakeeper.cib.xml_io import cib_to_xml
    from hakeeper.cli.main import _register

    if "status" not in cli.commands:
        _register()
    path = tmp_path / "cib.xml"
    path.write_text(cib_to_xml(sample_cib()))
    result = CliRunner().invoke(cli, ["simulate", str(path), "--at", "1700000000"])
    assert result.exit_code == 0, result.output
    assert "Transition Summary:" in result.output
    mixed = CliRunner().invoke(cli, ["simulate", str(path), "--live"])
    assert mixed.exit_code == 2


def test_cluster_setup_writes_configs_and_a_private_key(tmp_path: Path) -> None:
    from hakeeper.cli.main import _register

    if "status" not in cli.commands:
        _register()
    out = tmp_path / "setup"
    args = ["cluster", "setup", "--name", "prod", "a=10.0.0.1,192.168.0.1", "b=10.0.0.2,192.168.0.2:5406"]
    result = CliRunner().invoke(cli, [*args, "b2=10.0.0.3,fe80::3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    key = out / "cluster.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_size > 0
    texts = {n: (out / n / "cluster.toml").read_text() for n in ("a", "b", "b2")}
    assert len(set(texts.values())) == 1
    cfg = load_daemon_config(texts["a"])
    assert cfg.cluster_name == "prod" and [n.name for n in cfg.nodes] == ["a", "b", "b2"]
    assert [str(a) for a in cfg.nodes[1].links] == ["10.0.0.2:5405", "192.168.0.2:5406"]
    assert str(cfg.nodes[2].links[1]) == "[fe80::3]:5405"
    assert not cfg.two_node
    again = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (["a"], "is not NODE=ADDRESS"),
        (["a=host.example"], "not an IP address"),
        (["a=10.0.0.1", "a=10.0.0.2"], "used twice"),
        (["a=10.0.0.1", "b=10.0.0.2,10.0.1.2"], "same number of links"),
    ],
)
def test_cluster_setup_refuses_bad_nodes(tmp_path: Path, nodes: list[str], message: str) -> None:
    from hakeeper.cli.main import _register

    if "status" not in cli.commands:
        _register()
    result = CliRunner().invoke(
        cli, ["cluster", "setup", "--name", "x", *nodes, "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "o" / "cluster.key").exists()


def test_apply_a_pacemaker_xml_of_the_same_configuration_changes_nothing(
    tmp_path: Path, served: Served
) -> None:
    from hakeeper.cib.xml_io import cib_to_xml

    path = tmp_path / "cib.xml"
    path.write_text(cib_to_xml(served.fake.cib()))
    result = served.run("config", "apply", str(path), "--yes")
    assert result.exit_code == 0, result.output
    assert "Nothing to change: the cluster already runs this configuration" in result.output
    assert served.fake.submitted == []


def test_cluster_setup_of_two_nodes_sets_two_node_quorum(tmp_path: Path) -> None:
    from hakeeper.cli.main import _register

    if "status" not in cli.commands:
        _register()
    out = tmp_path / "two"
    result = CliRunner().invoke(
        cli, ["cluster", "setup", "--name", "pair", "a=10.0.0.1", "b=10.0.0.2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    cfg = load_daemon_config((out / "a" / "cluster.toml").read_text())
    assert cfg.two_node and cfg.wait_for_all
