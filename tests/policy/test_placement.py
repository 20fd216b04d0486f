"""Where resources go: locations, stickiness, bans, fail counts, colocation, groups, clones."""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.policy.schedule import schedule
from tests.policy.builders import cib, history, lines, node_state, op, prim, started

NOW = 1_700_000_000


def test_new_resource_starts_on_the_preferred_node() -> None:
    config = cib(
        [prim("web")],
        [node_state("n1"), node_state("n2")],
        constraints=[m.Location(id="loc", rsc="web", node="n2", score=50)],
    )
    assert lines(schedule(config, NOW).summary) == {"* Start web (n2)"}


def test_ties_break_on_the_lowest_node_name() -> None:
    config = cib([prim("web")], [node_state("n2"), node_state("n1")])
    assert lines(schedule(config, NOW).summary) == {"* Start web (n1)"}


def test_stickiness_keeps_a_running_resource_in_place() -> None:
    config = cib(
        [prim("web", **{"resource-stickiness": "100"})],
        [node_state("n1", started("web")), node_state("n2")],
        constraints=[m.Location(id="loc", rsc="web", node="n2", score=50)],
    )
    assert schedule(config, NOW).summary == []


def test_a_stronger_preference_moves_a_sticky_resource() -> None:
    config = cib(
        [prim("web", **{"resource-stickiness": "100"})],
        [node_state("n1", started("web")), node_state("n2")],
        constraints=[m.Location(id="loc", rsc="web", node="n2", score=200)],
    )
    assert lines(schedule(config, NOW).summary) == {"* Move web (n1 -> n2)"}


def test_minus_infinity_location_stops_the_resource_when_nowhere_else() -> None:
    config = cib(
        [prim("web")],
        [node_state("n1", started("web"))],
        constraints=[m.Location(id="ban", rsc="web", node="n1", score=-1_000_000)],
    )
    assert lines(schedule(config, NOW).summary) == {"* Stop web (n1) due to node availability"}


def test_location_rule_on_a_node_attribute() -> None:
    rule = m.Rule(
        id="r",
        score=100,
        expressions=[m.AttrExpression(id="e", attribute="site", operation="eq", value="east")],
    )
    config = cib(
        [prim("web")],
        [node_state("n1"), node_state("n2")],
        constraints=[m.Location(id="loc", rsc="web", rules=[rule])],
        node_attrs={"n2": {"site": "east"}},
    )
    assert lines(schedule(config, NOW).summary) == {"* Start web (n2)"}


def test_reaching_migration_threshold_moves_the_resource_away() -> None:
    config = cib(
        [prim("web", **{"migration-threshold": "2"})],
        [node_state("n1", started("web"), attrs={"fail-count-web#monitor_10000": "2"}), node_state("n2")],
    )
    assert lines(schedule(config, NOW).summary) == {"* Move web (n1 -> n2)"}


def test_expired_failures_no_longer_count() -> None:
    config = cib(
        [prim("web", **{"migration-threshold": "2", "failure-timeout": "60"})],
        [
            node_state(
                "n1",
                started("web"),
                attrs={"fail-count-web#monitor_10000": "2", "last-failure-web#monitor_10000": str(NOW - 120)},
            ),
            node_state("n2"),
        ],
    )
    assert schedule(config, NOW).summary == []


def test_mandatory_colocation_places_the_dependent_with_its_primary() -> None:
    config = cib(
        [prim("db"), prim("ip")],
        [node_state("n1"), node_state("n2")],
        constraints=[
            m.Location(id="loc", rsc="db", node="n2", score=10),
            m.Colocation(id="col", rsc="ip", with_rsc="db", score=1_000_000),
        ],
    )
    assert lines(schedule(config, NOW).summary) == {"* Start db (n2)", "* Start ip (n2)"}


def test_negative_colocation_keeps_resources_apart() -> None:
    config = cib(
        [prim("a"), prim("b")],
        [node_state("n1"), node_state("n2")],
        constraints=[m.Colocation(id="apart", rsc="b", with_rsc="a", score=-1_000_000)],
    )
    assert lines(schedule(config, NOW).summary) == {"* Start a (n1)", "* Start b (n2)"}


def test_group_members_run_together_and_follow_the_group_location() -> None:
    group = m.Group(id="g", children=[prim("fs"), prim("ip"), prim("app")])
    config = cib(
        [group],
        [node_state("n1"), node_state("n2")],
        constraints=[m.Location(id="loc", rsc="g", node="n2", score=10)],
    )
    assert lines(schedule(config, NOW).summary) == {"* Start fs (n2)", "* Start ip (n2)", "* Start app (n2)"}


def test_anonymous_clone_runs_one_instance_per_node() -> None:
    clone = m.Clone(id="c", child=prim("agent"))
    config = cib([clone], [node_state("n1", started("agent")), node_state("n2"), node_state("n3")])
    assert lines(schedule(config, NOW).summary) == {"* Start agent:1 (n2)", "* Start agent:2 (n3)"}


def test_promotable_clone_promotes_the_highest_promotion_score() -> None:
    clone = m.Clone(
        id="ms",
        child=prim("db"),
        meta_attributes=[m.NvSet(id="ms-meta", values={"promotable": "true", "promoted-max": "1"})],
    )
    config = cib(
        [clone],
        [
            node_state("n1", started("db"), attrs={"master-db": "5"}),
            node_state("n2", started("db", 3), attrs={"master-db": "10"}),
        ],
    )
    assert lines(schedule(config, NOW).summary) == {"* Promote db:1 (Unpromoted -> Promoted n2)"}


def test_failed_monitor_recovers_in_place() -> None:
    failed = history("web", op("web", "start", 2), op("web", "monitor", 3, rc=7, interval=10000))
    config = cib([prim("web")], [node_state("n1", failed), node_state("n2")])
    assert lines(schedule(config, NOW).summary) == {"* Recover web (n1)"}


def test_failed_start_with_infinite_fail_count_moves_the_resource() -> None:
    failed = history("web", op("web", "start", 2, rc=1))
    config = cib(
        [prim("web")],
        [node_state("n1", failed, attrs={"fail-count-web#start_0": "INFINITY"}), node_state("n2")],
    )
    assert lines(schedule(config, NOW).summary) == {"* Recover web (n1 -> n2)"}


def test_exclusive_discovery_confines_a_resource_to_the_constraints_nodes() -> None:
    # resource-discovery=exclusive: nodes the constraint does not name are off limits, even at score 0
    only_n2 = m.Location(id="web-where", rsc="web", node="n2", score=0, resource_discovery="exclusive")
    away_from_n2 = m.Location(id="web-prefers-n1", rsc="web", node="n1", score=100)
    config = cib([prim("web")], [node_state("n1"), node_state("n2")], constraints=[only_n2, away_from_n2])
    assert lines(schedule(config, 1_700_000_000).summary) == {"* Start web (n2)"}


def test_a_failed_resource_inside_a_container_restarts_the_container() -> None:
    # container meta: rsc runs inside box, and its failure is repaired by restarting box (then rsc)
    box = prim("box")
    inner = prim("inner", container="box")
    failed_inner = history("inner", op("inner", "start", 3), op("inner", "monitor", 4, rc=1, interval=10000))
    config = cib(
        [box, inner],
        [node_state("n1", started("box", 2), failed_inner), node_state("n2")],
        constraints=[m.Location(id="box-likes-n1", rsc="box", node="n1", score=100)],
    )
    assert lines(schedule(config, 1_700_000_000).summary) == {
        "* Restart box (n1)",
        "* Recover inner (n1)",
    }


def test_failures_inside_a_container_count_towards_its_migration_threshold() -> None:
    box = prim("box", **{"migration-threshold": "3"})
    inner = prim("inner", container="box")
    states = [
        node_state(
            "n1",
            started("box", 2),
            started("inner", 3),
            attrs={"fail-count-inner": "2", "fail-count-box": "1"},
        ),
        node_state("n2"),
    ]
    config = cib([box, inner], states)
    assert lines(schedule(config, 1_700_000_000).summary) == {
        "* Move box (n1 -> n2)",
        "* Move inner (n1 -> n2)",
    }


def test_no_quorum_policy_demote_demotes_but_keeps_instances_running() -> None:
    clone = m.Clone(
        id="ms",
        child=prim("db"),
        meta_attributes=[m.NvSet(id="ms-meta", values={"promotable": "true", "promoted-max": "1"})],
    )
    promoted = history("db", op("db", "start", 2), op("db", "promote", 3))
    config = cib(
        [clone],
        [node_state("n1", promoted, attrs={"master-db": "10"}), node_state("n2")],
        nodes=["n1", "n2"],
        quorum=False,
        props={"no-quorum-policy": "demote"},
    )
    assert lines(schedule(config, NOW).summary) == {
        "* Demote db:0 (Promoted -> Unpromoted n1)",
        "* Start db:1 (n2) due to no quorum (blocked)",  # nothing new starts without quorum
    }
