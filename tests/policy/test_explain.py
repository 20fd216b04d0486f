"""``explain``: the sentences name what decided a resource's placement, and its scores are the scheduler's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hakeeper.cib import model as m
from hakeeper.cib.xml_io import parse_cib_xml
from hakeeper.policy.explain import ExplainError, explain, trace_allocation
from hakeeper.policy.schedule import schedule
from tests.policy.builders import cib, node_state, prim, started

NOW = 1_700_000_000


def text(c: m.Cib, rsc: str) -> str:
    return "\n".join(explain(c, NOW, rsc))


def node_block(c: m.Cib, rsc: str, node: str) -> str:
    """The lines explaining one node's score."""
    lines = explain(c, NOW, rsc)
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{node}:"))
    block = [lines[start].strip()]
    for line in lines[start + 1 :]:
        if not line.strip().startswith("-"):
            break
        block.append(line.strip())
    return "\n".join(block)


def test_location_constraint_is_named_with_its_score() -> None:
    c = cib(
        [prim("web")],
        [node_state("node1"), node_state("node2")],
        constraints=[m.Location(id="web-likes-node2", rsc="web", node="node2", score=50)],
    )
    out = text(c, "web")
    assert "goes to node2 (Started)" in out
    assert "location constraint web-likes-node2: +50" in node_block(c, "web", "node2")
    assert "node2 has the best score among the nodes that can run it (50)" in out
    assert "Transition: * Start" in out


def test_location_rule_is_named_as_a_rule() -> None:
    rule = m.Rule(
        id="r1",
        score=-200,
        expressions=[m.AttrExpression(id="e1", attribute="#uname", operation="eq", value="node1")],
    )
    c = cib(
        [prim("web")],
        [node_state("node1"), node_state("node2")],
        constraints=[m.Location(id="avoid-node1", rsc="web", rules=[rule])],
    )
    assert "rule of location constraint avoid-node1: -200" in node_block(c, "web", "node1")


def test_stickiness_keeps_it_where_it_runs() -> None:
    c = cib(
        [prim("web", **{"resource-stickiness": "100"})],
        [node_state("node1", started("web")), node_state("node2")],
        constraints=[m.Location(id="web-likes-node2", rsc="web", node="node2", score=50)],
    )
    block = node_block(c, "web", "node1")
    assert block.startswith("node1: 100")
    assert "resource-stickiness +100: it is running here now" in block
    assert "goes to node1" in text(c, "web")


def test_migration_threshold_ban_is_explained_with_the_fail_count() -> None:
    attrs = {"fail-count-web#monitor_10000": "3", "last-failure-web#monitor_10000": str(NOW - 10)}
    c = cib(
        [prim("web", **{"migration-threshold": "3"})],
        [node_state("node1", started("web"), attrs=attrs), node_state("node2")],
    )
    block = node_block(c, "web", "node1")
    assert block.startswith("node1: -INFINITY")
    assert "failed 3 time(s) here, reaching migration-threshold 3" in block
    assert "goes to node2" in text(c, "web")


def test_fail_count_below_the_threshold_is_mentioned_as_harmless() -> None:
    attrs = {"fail-count-web#monitor_10000": "1"}
    c = cib([prim("web", **{"migration-threshold": "3"})], [node_state("node1", started("web"), attrs=attrs)])
    assert "failed 1 time(s) here (migration-threshold 3): it may still run here" in text(c, "web")


def test_hard_error_in_history_bans_the_node_with_the_rc_meaning() -> None:
    failed = m.ResourceHistory(
        id="web",
        klass="ocf",
        provider="heartbeat",
        type="Dummy",
        ops=[
            m.OpRecord(
                id="web_last_failure_0", operation="start", call_id=3, rc=5, transition_key="1:1:0:abc"
            )
        ],
    )
    c = cib([prim("web")], [node_state("node1", failed), node_state("node2")])
    block = node_block(c, "web", "node1")
    assert "its operation history bans it here" in block
    assert "rc=5 (the software not being installed)" in block


def test_standby_node_cannot_be_used() -> None:
    c = cib([prim("web")], [node_state("node1", attrs={"standby": "on"}), node_state("node2")])
    assert "(cannot be used: it is in standby)" in node_block(c, "web", "node1")
    assert "goes to node2" in text(c, "web")


def test_mandatory_colocation_names_the_primary_and_where_it_is() -> None:
    c = cib(
        [prim("db"), prim("web")],
        [node_state("node1"), node_state("node2")],
        constraints=[
            m.Location(id="db-on-node2", rsc="db", node="node2", score=100),
            m.Colocation(id="web-with-db", rsc="web", with_rsc="db", score=1_000_000),
        ],
    )
    out = text(c, "web")
    assert "it must run with db, which is placed on node2" in node_block(c, "web", "node1")
    assert "colocation web-with-db: it runs with db (score INFINITY), which is placed on node2" in out
    assert "web-with-db" in text(c, "db")  # the primary is told who pulls it


def test_group_member_follows_the_previous_member() -> None:
    group = m.Group(id="websvc", children=[prim("ip"), prim("web")])
    c = cib([group], [node_state("node1", started("ip")), node_state("node2")])
    out = text(c, "web")
    assert "member 2 of group websvc: it runs with and starts after ip (node1)" in out
    assert "group websvc: it must run with ip, which is placed on node1" in node_block(c, "web", "node2")
    assert "first member of group websvc" in text(c, "websvc")


def test_order_constraint_is_listed_both_ways() -> None:
    c = cib(
        [prim("db"), prim("web")],
        [node_state("node1")],
        constraints=[m.Order(id="db-then-web", first="db", then="web")],
    )
    assert "order db-then-web (Mandatory): its start waits for start of db (placed on node1)" in text(
        c, "web"
    )
    assert "order db-then-web (Mandatory): web start waits for its start" in text(c, "db")


def test_revoked_ticket_stops_it_and_says_so() -> None:
    c = cib(
        [prim("web")],
        [node_state("node1", started("web"))],
        constraints=[m.Ticket(id="web-needs-t", ticket="T", rsc="web")],
    )
    out = text(c, "web")
    assert "will not run anywhere" in out
    assert "ticket T is not granted (constraint web-needs-t, loss-policy=stop): -INFINITY" in out
    assert "every node is unavailable or has a negative score" in out


def test_disabled_resource_says_target_role() -> None:
    c = cib([prim("web", **{"target-role": "Stopped"})], [node_state("node1", started("web"))])
    out = text(c, "web")
    assert "Its target-role is Stopped (it is disabled)." in out
    assert "will not run anywhere" in out
    assert "Transition: * Stop" in out


def test_fencing_enabled_without_a_device_is_called_out() -> None:
    c = cib([prim("web")], [node_state("node1")], stonith=True)
    assert "no fencing device is configured" in text(c, "web")


def test_promotable_clone_instance_tells_its_promotion_score() -> None:
    clone = m.Clone(
        id="db-clone", child=prim("db"), meta_attributes=[m.NvSet(id="cm", values={"promotable": "true"})]
    )
    states = [
        node_state("node1", started("db"), attrs={"master-db": "10"}),
        node_state("node2", attrs={"master-db": "5"}),
    ]
    c = cib([clone], states)
    out = text(c, "db")  # the primitive's id: every instance is explained
    assert "db:0:" in out and "db:1:" in out
    assert "instance of promotable clone db-clone (clone-max 2, clone-node-max 1)" in out
    assert "it is Promoted on node1: promotion score 10 there" in out


def test_unknown_resource_is_refused_with_the_known_ones() -> None:
    c = cib([prim("web")], [node_state("node1")])
    with pytest.raises(ExplainError, match=r"no resource 'nope'.*web"):
        explain(c, NOW, "nope")


def test_traced_scores_are_the_schedulers_own() -> None:
    c = cib(
        [prim("db"), m.Group(id="g", children=[prim("ip"), prim("web", **{"resource-stickiness": "10"})])],
        [
            node_state("node1", started("web"), attrs={"fail-count-db#start_0": "INFINITY"}),
            node_state("node2"),
        ],
        constraints=[
            m.Location(id="l1", rsc="g", node="node1", score=20),
            m.Colocation(id="c1", rsc="g", with_rsc="db", score=-50),
        ],
    )
    assert trace_allocation(c, NOW).score_lines() == schedule(c, NOW).scores


def _corpus() -> Path | None:
    override = os.environ.get("HAKEEPER_SCHEDULER_CORPUS")
    root = (
        Path(override)
        if override
        else Path(__file__).resolve().parents[2].parent / "shared" / "pacemaker-scheduler"
    )
    xml = root / "dev" / "xml"
    return xml if xml.is_dir() else None


CORPUS_SAMPLE = [
    "coloc-dependee-should-move",
    "failcount",
    "group-fail",
    "promoted-0",
    "ticket-clone-10",
    "obsolete-lrm-resource",
    "colocation-influence",
    "utilization-complex",
    "per-op-failcount",
]


@pytest.mark.parametrize("case", CORPUS_SAMPLE)
def test_traced_scores_match_the_scheduler_on_corpus_cases(case: str) -> None:
    corpus = _corpus()
    if corpus is None or not (corpus / f"{case}.xml").is_file():
        pytest.skip("the Pacemaker scheduler corpus is not available")
    c = parse_cib_xml((corpus / f"{case}.xml").read_bytes()).cib
    now = c.execution_date or NOW
    transition = schedule(c, now)
    assert trace_allocation(c, now).score_lines() == transition.scores
    for res in c.configuration.resources:
        assert explain(c, now, res.id, transition)[0].startswith(res.id)


def test_order_on_a_stopped_resource_blocks_the_start_and_says_why() -> None:
    c = cib(
        [prim("db", **{"target-role": "Stopped"}), prim("web")],
        [node_state("node1")],
        constraints=[m.Order(id="db-then-web", first="db", then="web")],
    )
    web = text(c, "web")
    assert "web: is stopped now and is placed on node1 but cannot start there." in web
    assert "Its start on node1 cannot run (unrunnable db start)." in web
    assert "its start waits for start of db (not placed anywhere)" in web
    db = text(c, "db")
    assert "its target-role is Stopped, so every node is banned" in db
    assert "It does not run anywhere because its target-role is Stopped." in db
