"""Probes: what a node runs is found out before anything is placed on it (Pacemaker's semantics)."""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.policy.schedule import GraphAction, Transition, schedule
from tests.policy.builders import cib, history, lines, node_state, op, prim, started

NOW = 1_700_000_000


def probes(t: Transition) -> set[tuple[str, str]]:
    return {(a.rsc or "", a.node or "") for a in t.actions if a.task == "monitor" and a.interval_ms == 0}


def find(t: Transition, task: str, rsc: str, node: str) -> GraphAction:
    (action,) = [a for a in t.actions if (a.task, a.rsc, a.node) == (task, rsc, node)]
    return action


def waits_for(t: Transition, then: GraphAction) -> set[int]:
    return {e.first for e in t.edges if e.then == then.id}


def stopped(rsc_id: str) -> m.ResourceHistory:
    """A probe found the resource not running there."""
    return history(rsc_id, op(rsc_id, "monitor", 1, rc=7, expected=7))


def test_every_online_node_without_history_is_probed_before_the_start() -> None:
    t = schedule(cib([prim("web")], [node_state("n1"), node_state("n2"), node_state("n3")]), NOW)
    assert probes(t) == {("web", "n1"), ("web", "n2"), ("web", "n3")}
    start = next(a for a in t.actions if a.task == "start" and a.rsc == "web")
    probe_ids = {a.id for a in t.actions if a.task == "monitor" and a.interval_ms == 0}
    assert probe_ids <= waits_for(t, start)


def test_probes_never_show_in_the_summary() -> None:
    t = schedule(cib([prim("web")], [node_state("n1"), node_state("n2")]), NOW)
    assert lines(t.summary) == {"* Start web (n1)"}


def test_known_state_is_not_probed_again() -> None:
    states = [node_state("n1", started("web")), node_state("n2", stopped("web")), node_state("n3")]
    t = schedule(cib([prim("web")], states), NOW)
    assert probes(t) == {("web", "n3")}
    assert t.summary == []  # a probe alone changes nothing the operator must see


def test_offline_unclean_and_maintenance_nodes_are_not_probed() -> None:
    states = [
        node_state("n1"),
        node_state("n2", online=False, expected="down"),
        node_state("n3", attrs={"maintenance": "true"}),
        node_state("n4", attrs={"shutdown": "1700000000"}),
    ]
    t = schedule(cib([prim("web")], states), NOW)
    assert probes(t) == {("web", "n1")}


def test_a_joining_node_is_probed_before_a_resource_moves_there() -> None:
    states = [node_state("n1", started("web")), node_state("n2")]
    config = cib([prim("web")], states, constraints=[m.Location(id="pref", rsc="web", node="n2", score=100)])
    t = schedule(config, NOW)
    probe = find(t, "monitor", "web", "n2")
    assert probe.id in waits_for(t, find(t, "start", "web", "n2"))


def test_a_group_member_probe_holds_up_every_start_of_the_group() -> None:
    group = m.Group(id="svc", children=[prim("ip"), prim("app")])
    t = schedule(cib([group], [node_state("n1")]), NOW)
    assert probes(t) == {("ip", "n1"), ("app", "n1")}
    app_probe = find(t, "monitor", "app", "n1")
    ip_start = find(t, "start", "ip", "n1")
    assert app_probe.id in waits_for(t, ip_start)


def test_an_anonymous_clone_is_probed_once_per_node() -> None:
    clone = m.Clone(id="pings", child=prim("ping"))
    t = schedule(cib([clone], [node_state("n1"), node_state("n2")]), NOW)
    probed = probes(t)
    assert {node for _, node in probed} == {"n1", "n2"}
    assert len(probed) == 2
    assert all(rsc.startswith("ping:") for rsc, _ in probed)


def test_resource_discovery_never_skips_the_node() -> None:
    loc = m.Location(id="nd", rsc="web", node="n2", score=0, resource_discovery="never")
    t = schedule(cib([prim("web")], [node_state("n1"), node_state("n2")], constraints=[loc]), NOW)
    assert probes(t) == {("web", "n1")}


def test_resource_discovery_exclusive_probes_only_the_named_nodes() -> None:
    loc = m.Location(id="ex", rsc="web", node="n2", score=0, resource_discovery="exclusive")
    states = [node_state("n1"), node_state("n2"), node_state("n3")]
    t = schedule(cib([prim("web")], states, constraints=[loc]), NOW)
    assert probes(t) == {("web", "n2")}


def test_orphans_are_not_probed() -> None:
    states = [node_state("n1", started("gone")), node_state("n2")]
    t = schedule(cib([], states), NOW)
    assert probes(t) == set()


def test_a_probe_that_found_it_running_makes_it_active_there() -> None:
    found = history("web", op("web", "monitor", 1, rc=0, expected=7))
    states = [node_state("n1", stopped("web")), node_state("n2", found)]
    t = schedule(cib([prim("web")], states), NOW)
    assert t.summary == []  # already running on n2: nothing to start anywhere
    assert not [a for a in t.actions if a.task == "start"]


def test_found_running_twice_is_resolved_as_multiple_active() -> None:
    found = history("web", op("web", "monitor", 1, rc=0, expected=7))
    states = [node_state("n1", started("web")), node_state("n2", found)]
    t = schedule(cib([prim("web")], states), NOW)
    stops = {a.node for a in t.actions if a.task == "stop" and a.rsc == "web"}
    assert stops == {"n1", "n2"}  # stop_start: stop everywhere, start once


def test_a_failed_probe_counts_as_a_failed_resource_there() -> None:
    failed = history("web", op("web", "monitor", 1, rc=1, expected=7))
    states = [node_state("n1", failed), node_state("n2", stopped("web"))]
    t = schedule(cib([prim("web")], states), NOW)
    assert lines(t.summary) == {"* Recover web (n1)"}  # it may be half-running: stop it first
    assert find(t, "stop", "web", "n1")


def test_resource_discovery_by_pattern() -> None:
    loc = m.Location(id="nd", rsc_pattern="^web", node="n2", score=0, resource_discovery="never")
    states = [node_state("n1"), node_state("n2")]
    t = schedule(cib([prim("web1"), prim("db")], states, constraints=[loc]), NOW)
    assert probes(t) == {("web1", "n1"), ("db", "n1"), ("db", "n2")}
