"""Pacemaker Remote nodes: up while their connection resource runs, shut down when it stops."""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.policy.schedule import schedule
from tests.policy.builders import cib, fencing_device, lines, node_state, op, prim, started

NOW = 1_700_000_000


def _connection(**meta: str) -> m.Primitive:
    sets = [m.NvSet(id="remote1-meta", values=dict(meta))] if meta else []
    return m.Primitive(id="remote1", klass="ocf", provider="pacemaker", type="remote", meta_attributes=sets)


def _connection_started() -> m.ResourceHistory:
    return m.ResourceHistory(
        id="remote1", klass="ocf", provider="pacemaker", type="remote", ops=[op("remote1", "start", 2)]
    )


def _remote_state(*resources: m.ResourceHistory) -> m.NodeState:
    return m.NodeState(id="remote1", uname="remote1", remote_node=True, resources=list(resources))


def _banned(rsc: str, node: str) -> m.Location:
    return m.Location(id=f"{rsc}-not-on-{node}", rsc=rsc, node=node, score=-1_000_000)


def _prefers_remote() -> m.Location:
    return m.Location(id="app-on-remote", rsc="app", node="remote1", score=100)


def test_a_running_connection_brings_its_node_up() -> None:
    config = cib(
        [_connection(), prim("app")],
        [node_state("n1", _connection_started()), _remote_state(started("app"))],
        nodes=["n1"],
        constraints=[_prefers_remote()],
    )
    assert schedule(config, NOW).summary == []


def test_a_connection_that_will_start_lets_resources_move_there() -> None:
    config = cib(
        [_connection(), prim("app")],
        [node_state("n1", started("app")), _remote_state()],
        nodes=["n1"],
        constraints=[_prefers_remote()],
    )
    assert lines(schedule(config, NOW).summary) == {"* Start remote1 (n1)", "* Move app (n1 -> remote1)"}


def test_stopping_the_connection_stops_what_runs_on_the_remote_node() -> None:
    config = cib(
        [_connection(**{"target-role": "Stopped"}), prim("app")],
        [node_state("n1", _connection_started()), _remote_state(started("app"))],
        nodes=["n1"],
        constraints=[_banned("app", "n1")],
    )
    assert lines(schedule(config, NOW).summary) == {
        "* Stop remote1 (n1) due to node availability",
        "* Stop app (remote1) due to node availability",
    }


def test_connections_never_run_on_remote_nodes() -> None:
    second = m.Primitive(id="remote2", klass="ocf", provider="pacemaker", type="remote")
    config = cib(
        [_connection(), second],
        [node_state("n1", _connection_started()), _remote_state()],
        nodes=["n1"],
        constraints=[_banned("remote2", "n1")],
    )
    assert schedule(config, NOW).summary == []


def _failed_connection() -> m.ResourceHistory:
    return m.ResourceHistory(
        id="remote1",
        klass="ocf",
        provider="pacemaker",
        type="remote",
        ops=[
            op("remote1", "start", 2),
            op("remote1", "monitor", 3, rc=1, interval=60000),
        ],
    )


def test_a_failed_connection_fences_its_remote_node_and_reconnects() -> None:
    config = cib(
        [fencing_device(), _connection()],
        [node_state("n1", _failed_connection(), started("fence", 4)), _remote_state()],
        nodes=["n1"],
        stonith=True,
    )
    assert lines(schedule(config, NOW).summary) == {
        "* Fence (reboot) remote1 'remote connection is unrecoverable'",
        "* Recover remote1 (n1)",
    }


def test_a_reconnect_interval_keeps_a_failed_connection_down_until_it_expires() -> None:
    delayed = m.Primitive(
        id="remote1",
        klass="ocf",
        provider="pacemaker",
        type="remote",
        instance_attributes=[m.NvSet(id="r1-params", values={"reconnect_interval": "60s"})],
    )
    config = cib(
        [fencing_device(), delayed],
        [node_state("n1", _failed_connection(), started("fence", 4)), _remote_state()],
        nodes=["n1"],
        stonith=True,
    )
    assert lines(schedule(config, NOW).summary) == {
        "* Fence (reboot) remote1 'remote connection is unrecoverable'",
        "* Stop remote1 (n1) due to node availability",
    }


def test_resources_on_a_down_remote_node_wait_for_the_connection_to_come_back() -> None:
    # the connection is stopped, not failed: it starts again, so the node is not fenced and app stays
    config = cib(
        [fencing_device(), _connection(), prim("app")],
        [node_state("n1", started("fence", 4)), _remote_state(started("app"))],
        nodes=["n1"],
        stonith=True,
        constraints=[_prefers_remote()],
    )
    assert lines(schedule(config, NOW).summary) == {"* Start remote1 (n1)"}


def test_a_connection_stuck_on_a_lost_host_fences_the_remote_node_to_stop_its_resources() -> None:
    # remote1's connection ran on n1, which is lost; it may run nowhere else, and app must move away
    states = [
        node_state("n1", _connection_started(), online=False),
        node_state("n2", started("fence", 4)),
        _remote_state(started("app")),
    ]
    config = cib(
        [fencing_device(), _connection(), prim("app")],
        states,
        nodes=["n1", "n2"],
        stonith=True,
        constraints=[_banned("remote1", "n2")],
    )
    summary = lines(schedule(config, NOW).summary)
    assert "* Fence (reboot) remote1 'resources are active but connection is unrecoverable'" in summary
    assert "* Move app (remote1 -> n2)" in summary


def _vm(**meta: str) -> m.Primitive:
    values = {"remote-node": "guest1", **meta}
    return m.Primitive(
        id="vm",
        klass="ocf",
        provider="heartbeat",
        type="VirtualDomain",
        meta_attributes=[m.NvSet(id="vm-meta", values=values)],
    )


def _guest_connection_started() -> m.ResourceHistory:
    return m.ResourceHistory(
        id="guest1", klass="ocf", provider="pacemaker", type="remote", ops=[op("guest1", "start", 3)]
    )


def _guest_state(*resources: m.ResourceHistory) -> m.NodeState:
    return m.NodeState(id="guest1", uname="guest1", remote_node=True, resources=list(resources))


def test_a_vm_with_remote_node_hosts_a_guest_node_once_it_runs() -> None:
    # the connection to guest1 is implicit: it starts after the VM, where the VM runs
    on_guest = m.Location(id="app-on-guest", rsc="app", node="guest1", score=100)
    config = cib(
        [_vm(), prim("app")], [node_state("n1"), _guest_state()], nodes=["n1"], constraints=[on_guest]
    )
    assert lines(schedule(config, NOW).summary) == {
        "* Start vm (n1)",
        "* Start guest1 (n1)",
        "* Start app (guest1)",
    }


def test_stopping_the_vm_stops_its_guest_node_and_what_runs_there() -> None:
    states = [node_state("n1", started("vm"), _guest_connection_started()), _guest_state(started("app"))]
    config = cib(
        [_vm(**{"target-role": "Stopped"}), prim("app")],
        states,
        nodes=["n1"],
        constraints=[_banned("app", "n1")],
    )
    assert lines(schedule(config, NOW).summary) == {
        "* Stop vm (n1) due to node availability",
        "* Stop guest1 (n1) due to node availability",
        "* Stop app (guest1) due to node availability",
    }


def test_a_failed_vm_is_recovered_and_that_fences_its_guest() -> None:
    failed_vm = m.ResourceHistory(
        id="vm",
        klass="ocf",
        provider="heartbeat",
        type="VirtualDomain",
        ops=[op("vm", "start", 2), op("vm", "monitor", 5, rc=1, interval=10000)],
    )
    states = [
        node_state("n1", failed_vm, _guest_connection_started(), started("fence", 6)),
        _guest_state(started("app")),
    ]
    on_guest = m.Location(id="app-on-guest", rsc="app", node="guest1", score=100)
    config = cib(
        [fencing_device(), _vm(), prim("app")], states, nodes=["n1"], constraints=[on_guest], stonith=True
    )
    assert lines(schedule(config, NOW).summary) == {
        "* Fence (reboot) guest1 (resource: vm) 'guest is unclean'",
        "* Recover vm (n1)",
        "* Restart guest1 (n1) due to required vm start",
        "* Recover app (guest1)",
    }
