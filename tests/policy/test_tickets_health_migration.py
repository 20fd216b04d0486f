"""Tickets, node health and live migration."""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.policy.schedule import schedule
from tests.policy.builders import cib, lines, node_state, prim, started

NOW = 1_700_000_000


def _with_ticket(granted: bool, loss_policy: str = "stop") -> m.Cib:
    config = cib(
        [prim("db")],
        [node_state("n1", started("db"))],
        constraints=[m.Ticket(id="t", ticket="site-a", rsc="db", loss_policy=loss_policy)],
    )
    tickets = [m.TicketState(id="site-a", granted=granted)]
    status = m.Status(nodes=config.status.nodes, tickets=tickets)
    return m.Cib(configuration=config.configuration, status=status)


def test_granted_ticket_lets_the_resource_run() -> None:
    assert schedule(_with_ticket(granted=True), NOW).summary == []


def test_revoked_ticket_stops_the_resource() -> None:
    assert lines(schedule(_with_ticket(granted=False), NOW).summary) == {
        "* Stop db (n1) due to node availability"
    }


def test_revoked_ticket_with_freeze_leaves_the_resource_alone() -> None:
    assert schedule(_with_ticket(granted=False, loss_policy="freeze"), NOW).summary == []


def test_red_node_health_moves_resources_away() -> None:
    config = cib(
        [prim("web")],
        [node_state("n1", started("web"), attrs={"#health-disk": "red"}), node_state("n2")],
        props={"node-health-strategy": "migrate-on-red"},
    )
    assert lines(schedule(config, NOW).summary) == {"* Move web (n1 -> n2)"}


def test_yellow_health_only_matters_for_only_green() -> None:
    states = [node_state("n1", started("web"), attrs={"#health-disk": "yellow"}), node_state("n2")]
    relaxed = cib([prim("web")], states, props={"node-health-strategy": "migrate-on-red"})
    strict = cib([prim("web")], states, props={"node-health-strategy": "only-green"})
    assert schedule(relaxed, NOW).summary == []
    assert lines(schedule(strict, NOW).summary) == {"* Move web (n1 -> n2)"}


def test_allow_migrate_turns_a_move_into_a_live_migration() -> None:
    config = cib(
        [prim("vm", **{"allow-migrate": "true"})],
        [node_state("n1", started("vm")), node_state("n2")],
        constraints=[m.Location(id="away", rsc="vm", node="n1", score=-1_000_000)],
    )
    assert lines(schedule(config, NOW).summary) == {"* Migrate vm (n1 -> n2)"}


def test_utilization_strategy_keeps_resources_off_full_nodes() -> None:
    big = m.Primitive(
        id="big",
        klass="ocf",
        provider="heartbeat",
        type="Dummy",
        utilization=[m.NvSet(id="big-u", values={"cpu": "4"})],
    )
    config = cib([big], [node_state("n1"), node_state("n2")], props={"placement-strategy": "utilization"})
    nodes = [
        m.Node(id="n1", uname="n1", utilization=[m.NvSet(id="n1-u", values={"cpu": "2"})]),
        m.Node(id="n2", uname="n2", utilization=[m.NvSet(id="n2-u", values={"cpu": "8"})]),
    ]
    sized = m.Cib(
        configuration=m.Configuration(
            properties=config.configuration.properties, nodes=nodes, resources=config.configuration.resources
        ),
        status=config.status,
    )
    assert lines(schedule(sized, NOW).summary) == {"* Start big (n2)"}
