"""Node states (fencing, standby, quorum), orderings and the summary line format."""

from __future__ import annotations

import pickle

from hakeeper.cib import model as m
from hakeeper.policy.schedule import Transition, schedule
from hakeeper.policy.summary import SummaryLine
from tests.policy.builders import cib, fencing_device, lines, node_state, prim, started

NOW = 1_700_000_000


def test_lost_node_is_fenced_and_its_resource_moves() -> None:
    config = cib(
        [fencing_device(), prim("web")],
        [node_state("n1", started("web"), online=False), node_state("n2", started("fence"))],
        stonith=True,
    )
    assert lines(schedule(config, NOW).summary) == {
        "* Fence (reboot) n1 'peer is no longer part of the cluster'",
        "* Move web (n1 -> n2)",
    }


def test_cleanly_stopped_node_is_not_fenced() -> None:
    config = cib(
        [fencing_device(), prim("web")],
        [node_state("n1", online=False, expected="down"), node_state("n2", started("fence"))],
        stonith=True,
    )
    assert lines(schedule(config, NOW).summary) == {"* Start web (n2)"}


def test_standby_node_gives_up_its_resources() -> None:
    config = cib([prim("web")], [node_state("n1", started("web"), attrs={"standby": "on"}), node_state("n2")])
    assert lines(schedule(config, NOW).summary) == {"* Move web (n1 -> n2)"}


def test_without_quorum_nothing_new_starts() -> None:
    config = cib([prim("web")], [node_state("n1")], quorum=False)
    assert lines(schedule(config, NOW).summary) == {"* Start web (n1) due to no quorum (blocked)"}


def test_no_quorum_policy_ignore_starts_anyway() -> None:
    config = cib([prim("web")], [node_state("n1")], quorum=False, props={"no-quorum-policy": "ignore"})
    assert lines(schedule(config, NOW).summary) == {"* Start web (n1)"}


def test_target_role_stopped_stops_the_resource() -> None:
    config = cib([prim("web", **{"target-role": "Stopped"})], [node_state("n1", started("web"))])
    assert lines(schedule(config, NOW).summary) == {"* Stop web (n1) due to node availability"}


def test_unmanaged_resource_is_left_alone() -> None:
    config = cib(
        [prim("web", **{"is-managed": "false"})],
        [node_state("n1", started("web")), node_state("n2")],
        constraints=[m.Location(id="ban", rsc="web", node="n1", score=-1_000_000)],
    )
    assert schedule(config, NOW).summary == []


def test_mandatory_order_blocks_then_when_first_cannot_start() -> None:
    config = cib(
        [prim("db", **{"target-role": "Stopped"}), prim("app")],
        [node_state("n1")],
        constraints=[m.Order(id="o", first="db", then="app", kind="Mandatory")],
    )
    assert lines(schedule(config, NOW).summary) == {"* Start app (n1) due to unrunnable db start (blocked)"}


def test_restarting_first_restarts_then() -> None:
    failed = m.ResourceHistory(
        id="db",
        klass="ocf",
        provider="heartbeat",
        type="Dummy",
        ops=[
            m.OpRecord(id="db_start_0", operation="start", call_id=2, rc=0, transition_key="1:1:0:x"),
            m.OpRecord(
                id="db_monitor_10000",
                operation="monitor",
                call_id=3,
                rc=7,
                interval=10000,
                transition_key="1:1:0:x",
            ),
        ],
    )
    config = cib(
        [prim("db"), prim("app")],
        [node_state("n1", failed, started("app", 4))],
        constraints=[m.Order(id="o", first="db", then="app", kind="Mandatory")],
    )
    assert lines(schedule(config, NOW).summary) == {
        "* Recover db (n1)",
        "* Restart app (n1) due to required db start",
    }


def test_optional_order_does_not_block() -> None:
    config = cib(
        [prim("db", **{"target-role": "Stopped"}), prim("app")],
        [node_state("n1")],
        constraints=[m.Order(id="o", first="db", then="app", kind="Optional")],
    )
    assert lines(schedule(config, NOW).summary) == {"* Start app (n1)"}


def test_summary_line_shapes() -> None:
    assert SummaryLine("Start", "web", "n1").render() == "* Start      web   ( n1 )"
    assert (
        SummaryLine("Move", "web", "n1 -> n2", "due to x").render(5, 8)
        == "* Move       web     ( n1 -> n2 )  due to x"
    )
    fence = SummaryLine("Fence (reboot)", "n1", "", "peer is lost")
    assert fence.render() == "* Fence (reboot) n1 'peer is lost'"


def test_transition_is_picklable_and_deterministic() -> None:
    config = cib([prim("a"), prim("b")], [node_state("n1"), node_state("n2")])
    first = schedule(config, NOW)
    again = pickle.loads(pickle.dumps(schedule(pickle.loads(pickle.dumps(config)), NOW)))
    assert isinstance(again, Transition)
    assert first == again


def test_symmetrical_order_stops_a_running_then_when_first_cannot_start() -> None:
    config = cib(
        [prim("db", **{"target-role": "Stopped"}), prim("app")],
        [node_state("n1", started("app"))],
        constraints=[m.Order(id="o", first="db", then="app", kind="Mandatory")],
    )
    assert lines(schedule(config, NOW).summary) == {"* Stop app (n1) due to unrunnable db start"}


def test_one_way_order_leaves_a_running_then_alone() -> None:
    # symmetrical=false: only a start still to come waits for "first"; what already runs stays
    config = cib(
        [prim("db", **{"target-role": "Stopped"}), prim("app")],
        [node_state("n1", started("app"))],
        constraints=[m.Order(id="o", first="db", then="app", kind="Mandatory", symmetrical=False)],
    )
    assert schedule(config, NOW).summary == []


def test_one_way_order_still_blocks_a_start() -> None:
    config = cib(
        [prim("db", **{"target-role": "Stopped"}), prim("app")],
        [node_state("n1")],
        constraints=[m.Order(id="o", first="db", then="app", kind="Mandatory", symmetrical=False)],
    )
    assert lines(schedule(config, NOW).summary) == {"* Start app (n1) due to unrunnable db start (blocked)"}


def test_every_start_needing_fencing_waits_for_every_fencing_of_the_transition() -> None:
    # "db" never ran on n1 as far as the CIB knows, yet n1 is unclean: a start its DC never recorded may
    # be running there, so db starts only after n1 is fenced (Pacemaker's requires=fencing); the device not.
    config = cib(
        [fencing_device(), prim("db")], [node_state("n1", online=False), node_state("n2")], stonith=True
    )
    transition = schedule(config, NOW)
    by_id = {a.id: a for a in transition.actions}
    fence = next(a for a in transition.actions if a.task == "stonith")
    starts = {a.rsc: a for a in transition.actions if a.task == "start"}
    after_fence = {by_id[e.then].rsc for e in transition.edges if e.first == fence.id}
    assert "db" in starts and "db" in after_fence
    assert "fence" not in after_fence
