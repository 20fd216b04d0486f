"""``hakeeper resource ...`` against the real API app on a Unix socket (fake cluster)."""

from __future__ import annotations

import json

import click
import pytest

from hakeeper.api import schemas as s
from hakeeper.cib import model as m
from hakeeper.cib.operator import OperationSpec, find_resource
from hakeeper.cli.resource_cmd import parse_settings
from tests.cli.served import Served, served

__all__ = ["served"]
pytestmark = pytest.mark.timeout(60)


def constraint_ids(served: Served) -> set[str]:
    return {c.id for c in served.fake.cib().configuration.constraints}


def test_parse_settings_pcs_style() -> None:
    line = "configfile=/etc/a.conf op monitor interval=10s timeout=20s op start timeout=1min"
    got = parse_settings([*line.split(), "meta", "target-role=Stopped", "resource-stickiness=100"])
    assert got.params == {"configfile": "/etc/a.conf"}
    assert got.operations == [
        OperationSpec(name="monitor", interval_ms=10_000, timeout_ms=20_000),
        OperationSpec(name="start", interval_ms=0, timeout_ms=60_000),
    ]
    assert got.meta == {"target-role": "Stopped", "resource-stickiness": "100"}


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["noequals"], "is not name=value"),
        (["op"], "must be followed by the operation's name"),
        (["op", "interval=10s"], "must be followed by the operation's name"),
        (["op", "monitor", "interval=soon"], "op monitor interval"),
        (["op", "monitor", "depth=3"], "depth not understood"),
        (["=x"], "is not name=value"),
        (["a=1", "--grop", "websvc"], "no such option: --grop"),
    ],
)
def test_parse_settings_refuses_bad_words(words: list[str], message: str) -> None:
    with pytest.raises(click.UsageError, match=message):
        parse_settings(words)


def test_create_in_a_group_and_show_the_committed_version(served: Served) -> None:
    result = served.run(
        "resource", "create", "apache", "ocf:heartbeat:apache", "configfile=/etc/apache2/apache2.conf",
        "op", "monitor", "interval=10s", "--group", "websvc",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Committed: CIB version 0.7.2 -> 0.8.0" in result.output
    assert "apache (ocf:heartbeat:apache)" in result.output and "in: websvc" in result.output
    found = find_resource(served.fake.cib(), "apache")
    assert isinstance(found.resource, m.Primitive)
    assert found.parent is not None and found.parent.id == "websvc"
    assert [(o.name, o.interval) for o in found.resource.operations] == [("monitor", 10_000)]
    assert found.resource.instance_attributes[0].values == {"configfile": "/etc/apache2/apache2.conf"}


def test_create_refused_says_why(served: Served) -> None:
    result = served.run("resource", "create", "vip", "ocf:heartbeat:IPaddr2")
    assert result.exit_code == 1
    assert "vip" in result.output and "Traceback" not in result.output
    bad = served.run("resource", "create", "x", "nonsense")
    assert bad.exit_code == 1 and "class:provider:type" in bad.output


def test_update_sets_and_removes(served: Served) -> None:
    result = served.run("resource", "update", "vip", "ip=10.0.0.11", "meta", "migration-threshold=")
    assert result.exit_code == 0, result.output
    assert "ip=10.0.0.11" in result.output
    view = served.run("resource", "show", "vip", "--json").output
    doc = json.loads(view)
    assert doc["params"]["ip"] == "10.0.0.11" and "migration-threshold" not in doc["meta"]


def test_move_ban_clear(served: Served) -> None:
    assert served.run("resource", "move", "vip", "n2", "--lifetime", "1h").exit_code == 0
    assert any(i.startswith("cli-prefer-vip") for i in constraint_ids(served))
    assert served.run("resource", "ban", "vip", "n3").exit_code == 0
    assert any(i.startswith("cli-ban-vip") for i in constraint_ids(served))
    result = served.run("resource", "clear", "vip")
    assert result.exit_code == 0 and "Committed" in result.output
    assert not any(i.startswith("cli-") for i in constraint_ids(served))
    again = served.run("resource", "clear", "vip")
    assert again.exit_code == 0 and "Nothing to change" in again.output


def test_move_to_an_unknown_node(served: Served) -> None:
    result = served.run("resource", "move", "vip", "nowhere")
    assert result.exit_code == 1 and "nowhere" in result.output


def test_disable_enable_delete(served: Served) -> None:
    assert served.run("resource", "disable", "web").exit_code == 0
    assert "target-role=Stopped" in served.run("resource", "show", "web").output
    assert served.run("resource", "enable", "web").exit_code == 0
    assert served.run("resource", "delete", "httpd").exit_code == 0
    missing = served.run("resource", "show", "httpd")
    assert missing.exit_code == 1 and "httpd" in missing.output


def test_cleanup_forgets_failures(served: Served) -> None:
    assert "1/3 failures" in served.run("status").output
    result = served.run("resource", "cleanup", "vip", "--node", "n1")
    assert result.exit_code == 0, result.output
    assert "failures" not in served.run("status").output


def test_list_nests_and_explain_answers(served: Served) -> None:
    out = served.run("resource", "list").output
    assert "* web [group]: Started on n1" in out and "    * httpd" in out
    explained = served.run("resource", "explain", "vip")
    assert explained.exit_code == 0, explained.output
    assert explained.output.startswith("vip (ocf:pacemaker:Dummy)")


def test_create_a_promotable_clone(served: Served) -> None:
    result = served.run(
        "resource", "create", "db", "ocf:pacemaker:Stateful", "--promotable", "--clone-meta", "promoted-max=1"
    )
    assert result.exit_code == 0, result.output
    clone = next(r for r in served.fake.cib().configuration.resources if r.id.startswith("db"))
    assert isinstance(clone, m.Clone) and clone.child.id == "db"
    meta = {k: v for s in clone.meta_attributes for k, v in s.values.items()}
    assert meta["promoted-max"] == "1" and meta.get("promotable") == "true"
    alone = served.run("resource", "create", "x", "ocf:pacemaker:Dummy", "--clone-meta", "clone-max=2")
    assert alone.exit_code == 2 and "--clone-meta goes with --clone" in alone.output


def test_clone_roles_read_like_crm_mon() -> None:
    from hakeeper.api.schemas import ResourceView
    from hakeeper.cli.status_cmd import resource_lines

    clone = ResourceView(
        id="db-clone",
        kind="clone",
        role="Promoted",
        nodes=["n1", "n2", "n3"],
        promoted_on=["n2"],
        members=["db"],
    )
    child = ResourceView(id="db", kind="primitive", agent="ocf:pacemaker:Stateful", parent="db-clone",
                         role="Promoted", nodes=["n1", "n2", "n3"], promoted_on=["n2"])  # fmt: skip
    lines = [line.text for line in resource_lines(s.ResourceList(resources=[clone, child]))]
    assert lines[1] == "  * db-clone [clone]: Promoted: [ n2 ]  Unpromoted: [ n1 n3 ]"
    assert lines[2].startswith("    * db (ocf:pacemaker:Stateful)")
