"""What-if injections for ``hakeeper simulate``: pure CIB edits, checked through the policy engine."""

from __future__ import annotations

import pytest

from hakeeper.cib import model as m
from hakeeper.cib.values import parse_datetime
from hakeeper.cli.simulate_inject import (
    InjectionError,
    Injections,
    OpSpec,
    apply_injections,
    node_down,
    node_fail,
    node_up,
    op_fail,
    parse_op_spec,
    parse_time,
    ticket_grant,
    ticket_revoke,
)
from hakeeper.policy.schedule import schedule
from tests.policy.builders import cib, fencing_device, lines, node_state, prim, started

NOW = 1_700_000_000


def two_nodes(**web_meta: str) -> m.Cib:
    return cib(
        [fencing_device(), prim("web", **web_meta)],
        [node_state("node1", started("web"), started("fence")), node_state("node2")],
        stonith=True,
    )


def transient(state: m.NodeState) -> dict[str, str]:
    return {k: v for s in state.transient_attributes for k, v in s.values.items()}


def state_of(c: m.Cib, node: str) -> m.NodeState:
    return next(s for s in c.status.nodes if s.uname == node)


# --- parsing ---------------------------------------------------------------------------------------------


def test_op_spec_is_split_on_the_last_underscores() -> None:
    assert parse_op_spec("my_web_monitor_10000@node1=7") == OpSpec("my_web", "monitor", 10000, "node1", 7)
    assert parse_op_spec("vm_migrate_to_0@n2=1") == OpSpec("vm", "migrate_to", 0, "n2", 1)


@pytest.mark.parametrize(
    "text",
    ["web_monitor@node1=7", "web@node1=7", "web_monitor_10000@node1", "web_monitor_10000=7", "x_y_1@n=300"],
)
def test_bad_op_specs_are_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(InjectionError, match=r"RESOURCE_OPERATION_INTERVAL@NODE=RC|interval|exit code"):
        parse_op_spec(text)


def test_time_is_epoch_seconds_or_iso_8601() -> None:
    assert parse_time("1700000000") == 1_700_000_000
    assert parse_time("2024-05-01T10:00:00Z") == parse_datetime("2024-05-01T10:00:00Z")
    with pytest.raises(InjectionError, match="not a time"):
        parse_time("next tuesday")


# --- nodes -----------------------------------------------------------------------------------------------


def test_node_fail_leads_to_fencing_and_recovery_elsewhere() -> None:
    summary = lines(schedule(node_fail(two_nodes(), "node1"), NOW).summary)
    assert "* Fence (reboot) node1 'peer is no longer part of the cluster'" in summary
    assert any(line.startswith("* Move web (node1 -> node2)") for line in summary)


def test_node_down_is_clean_no_fencing_and_forgets_its_history() -> None:
    changed = node_down(two_nodes(), "node1")
    state = state_of(changed, "node1")
    assert (state.in_ccm, state.crmd, state.join, state.expected) == ("false", "offline", "down", "down")
    assert state.resources == []
    summary = lines(schedule(changed, NOW).summary)
    assert not any("Fence" in line for line in summary)
    assert any(line.startswith("* Start web (node2)") for line in summary)


def test_node_up_lets_a_node_without_status_run_resources() -> None:
    base = cib([prim("web")], [node_state("node1", online=False)], nodes=["node1", "node2"])
    assert lines(schedule(base, NOW).summary) == set()
    changed = node_up(base, "node2")
    assert state_of(changed, "node2").crmd == "online"
    assert "* Start web (node2)" in lines(schedule(changed, NOW).summary)


def test_node_injection_uses_the_status_entry_keyed_by_node_id() -> None:
    base = two_nodes()
    config = m.Configuration(
        properties=base.configuration.properties,
        nodes=[m.Node(id="1", uname="node1"), m.Node(id="2", uname="node2")],
        resources=base.configuration.resources,
    )
    states = [
        m.NodeState(id="1", uname="node1", in_ccm="true", crmd="online", join="member", expected="member")
    ]
    changed = node_fail(m.Cib(configuration=config, status=m.Status(nodes=states)), "node1")
    assert [(s.id, s.in_ccm) for s in changed.status.nodes] == [("1", "false")]


def test_unknown_node_is_refused_naming_the_configured_ones() -> None:
    with pytest.raises(InjectionError, match=r"no node 'node9'.*node1, node2"):
        node_up(two_nodes(), "node9")


# --- operation results ------------------------------------------------------------------------------------


def test_failed_monitor_is_recorded_with_its_fail_count_and_recovered() -> None:
    sticky = two_nodes(**{"resource-stickiness": "100"})
    changed = op_fail(sticky, parse_op_spec("web_monitor_10000@node1=7"), NOW)
    state = state_of(changed, "node1")
    web = next(h for h in state.resources if h.id == "web")
    assert {o.id for o in web.ops} >= {"web_monitor_10000", "web_last_failure_0"}
    attrs = transient(state)
    assert attrs["fail-count-web#monitor_10000"] == "1"
    assert attrs["last-failure-web#monitor_10000"] == str(NOW)
    assert "* Recover web (node1)" in lines(schedule(changed, NOW).summary)


def test_failed_monitor_past_migration_threshold_moves_the_resource() -> None:
    sticky = two_nodes(**{"resource-stickiness": "100", "migration-threshold": "1"})
    changed = op_fail(sticky, parse_op_spec("web_monitor_10000@node1=7"), NOW)
    assert "* Recover web (node1 -> node2)" in lines(schedule(changed, NOW).summary)


def test_failed_start_is_fatal_for_the_node() -> None:
    changed = op_fail(two_nodes(), parse_op_spec("web_start_0@node1=1"), NOW)
    assert transient(state_of(changed, "node1"))["fail-count-web#start_0"] == "INFINITY"


def test_successful_result_raises_no_fail_count() -> None:
    changed = op_fail(two_nodes(), parse_op_spec("web_monitor_10000@node1=0"), NOW)
    assert not any(k.startswith("fail-count") for k in transient(state_of(changed, "node1")))


def test_unknown_resource_is_refused_naming_the_primitives() -> None:
    with pytest.raises(InjectionError, match=r"no primitive resource 'nope'.*fence, web"):
        op_fail(two_nodes(), parse_op_spec("nope_monitor_10000@node1=7"), NOW)


# --- tickets ----------------------------------------------------------------------------------------------


def ticketed() -> m.Cib:
    return cib(
        [prim("web")],
        [node_state("node1", started("web"))],
        constraints=[m.Ticket(id="web-needs-t", ticket="T", rsc="web")],
    )


def test_revoking_a_ticket_stops_what_needs_it_and_granting_starts_it() -> None:
    granted = ticket_grant(ticketed(), "T", NOW)
    assert [(t.id, t.granted, t.last_granted) for t in granted.status.tickets] == [("T", True, NOW)]
    assert lines(schedule(granted, NOW).summary) == set()
    revoked = ticket_revoke(granted, "T", NOW)
    assert [(t.id, t.granted) for t in revoked.status.tickets] == [("T", False)]
    assert any(line.startswith("* Stop web (node1)") for line in lines(schedule(revoked, NOW).summary))


def test_injections_apply_in_order_and_describe_themselves() -> None:
    injections = Injections(node_down=("node2",), node_fail=("node1",), ticket_grant=("T",))
    changed = apply_injections(two_nodes(), injections, NOW)
    assert state_of(changed, "node1").expected == "member"
    assert state_of(changed, "node2").expected == "down"
    assert injections.describe() == ["Taking node node2 offline", "Failing node node1", "Granting ticket T"]
    assert not Injections()
