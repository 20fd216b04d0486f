"""``hakeeper constraint ...`` and ``hakeeper node ...`` against the real API app on a Unix socket."""

from __future__ import annotations

import pytest

from hakeeper.cib import model as m
from tests.cli.served import Served, served

__all__ = ["served"]
pytestmark = pytest.mark.timeout(60)


def constraints(served: Served) -> dict[str, m.Constraint]:
    return {c.id: c for c in served.fake.cib().configuration.constraints}


def node_attrs(served: Served, name: str) -> dict[str, str]:
    node = next(n for n in served.fake.cib().configuration.nodes if n.uname == name)
    return {k: v for s in node.instance_attributes for k, v in s.values.items()}


def test_location_add_list_remove(served: Served) -> None:
    result = served.run("constraint", "location", "add", "vip", "n2", "200", "--id", "vip-likes-n2")
    assert result.exit_code == 0, result.output
    assert "Committed" in result.output
    c = constraints(served)["vip-likes-n2"]
    assert isinstance(c, m.Location) and c.node == "n2" and c.score == 200
    avoid = served.run("constraint", "location", "add", "vip", "n3", "--", "-INFINITY")
    assert avoid.exit_code == 0, avoid.output
    listed = served.run("constraint", "location", "list").output
    assert "vip-likes-n2: location vip on n2 score 200" in listed
    assert "location vip on n3 score -INFINITY" in listed
    assert served.run("constraint", "colocation", "list").output.strip() == "No colocation constraints."
    assert served.run("constraint", "location", "remove", "vip-likes-n2").exit_code == 0
    assert "vip-likes-n2" not in constraints(served)


def test_colocation_and_order(served: Served) -> None:
    assert served.run("constraint", "colocation", "add", "web", "vip", "--id", "web-with-vip").exit_code == 0
    col = constraints(served)["web-with-vip"]
    assert isinstance(col, m.Colocation) and col.with_rsc == "vip" and col.score == 1_000_000
    result = served.run(
        "constraint", "order", "add", "vip", "web", "--kind", "Optional", "--id", "vip-then-web"
    )
    assert result.exit_code == 0, result.output
    order = constraints(served)["vip-then-web"]
    assert isinstance(order, m.Order) and (order.first, order.then, order.kind) == ("vip", "web", "Optional")
    everything = served.run("constraint", "list").output
    assert "web-with-vip: colocation web with vip score INFINITY" in everything
    assert "vip-then-web: order start vip then start web (Optional)" in everything
    assert served.run("constraint", "remove", "web-with-vip").exit_code == 0
    assert "web-with-vip" not in constraints(served)


def test_constraint_errors_are_sentences(served: Served) -> None:
    bad_score = served.run("constraint", "location", "add", "vip", "n2", "lots")
    assert bad_score.exit_code == 1 and "lots" in bad_score.output and "Traceback" not in bad_score.output
    unknown = served.run("constraint", "colocation", "add", "nothing", "vip")
    assert unknown.exit_code == 1 and "nothing" in unknown.output
    gone = served.run("constraint", "remove", "no-such-constraint")
    assert gone.exit_code == 1 and "no-such-constraint" in gone.output


def test_node_standby_unstandby(served: Served) -> None:
    result = served.run("node", "standby", "n1")
    assert result.exit_code == 0 and "Committed" in result.output
    assert node_attrs(served, "n1")["standby"] == "on"
    assert "n1: standby (DC)" in served.run("status").output
    assert served.run("node", "unstandby", "n1").exit_code == 0
    assert "standby" not in node_attrs(served, "n1")
    again = served.run("node", "unstandby", "n1")
    assert again.exit_code == 0 and "Nothing to change" in again.output


def test_node_maintenance(served: Served) -> None:
    assert served.run("node", "maintenance", "n2").exit_code == 0
    assert node_attrs(served, "n2")["maintenance"] == "on"
    assert "n2: maintenance" in served.run("status").output
    assert served.run("node", "maintenance", "n2", "off").exit_code == 0
    assert "maintenance" not in node_attrs(served, "n2")


def test_node_attribute_set_show_delete(served: Served) -> None:
    assert served.run("node", "attribute", "n3", "rack=r7").exit_code == 0
    assert node_attrs(served, "n3")["rack"] == "r7"
    assert "rack=r7" in served.run("node", "attribute", "n3").output
    assert served.run("node", "attribute", "n3", "rack", "--delete").exit_code == 0
    assert "rack" not in node_attrs(served, "n3")
    unclear = served.run("node", "attribute", "n3", "rack")
    assert unclear.exit_code == 2 and "ATTR=VALUE" in unclear.output
    missing = served.run("node", "standby", "n9")
    assert missing.exit_code == 1 and "n9" in missing.output
    no_node = served.run("node", "attribute", "n9")
    assert no_node.exit_code == 1 and "no node 'n9'" in no_node.output
