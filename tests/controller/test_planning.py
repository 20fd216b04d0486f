"""The policy engine's transition becomes an executable graph with agents, parameters and timeouts."""

from __future__ import annotations

import msgspec

from hakeeper.cib import model as m
from hakeeper.controller.planning import plan_transition
from hakeeper.policy.digests import params_digest


def online(node: str, *resources: m.ResourceHistory) -> m.NodeState:
    return m.NodeState(
        id=node,
        uname=node,
        in_ccm="true",
        crmd="online",
        join="member",
        expected="member",
        resources=list(resources),
    )


def cluster(*states: m.NodeState, resources: list[m.Resource]) -> m.Cib:
    return m.Cib(
        configuration=m.Configuration(
            properties=[m.NvSet(id="cib-bootstrap-options", values={"stonith-enabled": "false"})],
            nodes=[m.Node(id="n1", uname="n1"), m.Node(id="n2", uname="n2")],
            resources=resources,
            op_defaults=[m.NvSet(id="opd", values={"timeout": "45s"})],
        ),
        status=m.Status(nodes=list(states)),
    )


WEB = m.Primitive(
    id="web",
    klass="ocf",
    provider="heartbeat",
    type="Dummy",
    instance_attributes=[m.NvSet(id="web-ia", values={"state": "/run/web.state"})],
    meta_attributes=[m.NvSet(id="web-meta", values={"resource-stickiness": "100"})],
    operations=[m.Operation(id="web-start", name="start", timeout=30_000)],
)


def last_op(
    rsc: str,
    operation: str,
    *,
    rc: int = 0,
    node: str | None = None,
    agent_type: str = "Dummy",
    params: dict[str, str] | None = None,
) -> m.ResourceHistory:
    """A history of one operation (``params``: the digest it ran with)."""
    op = m.OpRecord(
        id=f"{rsc}_last_0",
        operation=operation,
        call_id=1,
        rc=rc,
        transition_key=f"1:1:{rc}:x",
        on_node=node,
        op_digest=params_digest(params) if params is not None else None,
    )
    return m.ResourceHistory(id=rsc, klass="ocf", provider="heartbeat", type=agent_type, ops=[op])


def running(rsc: str, node: str) -> m.ResourceHistory:
    return last_op(rsc, "start", node=node)


def test_initial_start_carries_agent_params_and_timeout() -> None:
    graph = plan_transition(cluster(online("n1"), online("n2"), resources=[WEB]), 1_700_000_000, 5)
    starts = [a for a in graph.actions if a.task == "start"]
    assert len(starts) == 1
    start = starts[0]
    assert (start.kind, start.rsc, start.agent) == ("resource", "web", "ocf:heartbeat:Dummy")
    assert start.params == {"state": "/run/web.state"}
    assert start.meta["resource-stickiness"] == "100"
    assert (start.timeout_ms, start.expected_rc) == (30_000, 0)
    assert graph.id == 5


def test_stop_uses_op_defaults_timeout_and_move_is_ordered() -> None:
    cib = cluster(online("n1", running("web", "n1")), online("n2"), resources=[WEB])
    cib = m.Cib(
        configuration=m.Configuration(
            properties=cib.configuration.properties,
            nodes=cib.configuration.nodes,
            resources=cib.configuration.resources,
            op_defaults=cib.configuration.op_defaults,
            constraints=[m.Location(id="ban", rsc="web", node="n1", score=-1_000_000)],
        ),
        status=cib.status,
    )
    graph = plan_transition(cib, 1_700_000_000, 6)
    by_task = {(a.task, a.node): a for a in graph.actions if a.kind == "resource"}
    stop, start = by_task[("stop", "n1")], by_task[("start", "n2")]
    assert stop.timeout_ms == 45_000
    assert stop.id in start.inputs or any(
        stop.id in p.inputs and p.id in start.inputs for p in graph.actions if p.kind == "pseudo"
    ), "the start on n2 waits for the stop on n1"
    graph.validate()


def probed_stopped(rsc: str, node: str) -> m.ResourceHistory:
    op = m.OpRecord(
        id=f"{rsc}_last_0", operation="monitor", call_id=1, rc=7, transition_key="1:1:7:x", on_node=node
    )
    return m.ResourceHistory(id=rsc, klass="ocf", provider="heartbeat", type="Dummy", ops=[op])


def test_nothing_to_do_when_running_where_it_should() -> None:
    states = (online("n1", running("web", "n1")), online("n2", probed_stopped("web", "n2")))
    graph = plan_transition(cluster(*states, resources=[WEB]), 1_700_000_000, 7)
    assert [a for a in graph.actions if a.kind == "resource"] == []


def test_a_node_without_history_gets_a_probe_expecting_not_running() -> None:
    graph = plan_transition(
        cluster(online("n1", running("web", "n1")), online("n2"), resources=[WEB]), 1_700_000_000, 8
    )
    (probe,) = [a for a in graph.actions if a.kind == "resource"]
    assert (probe.task, probe.node, probe.interval_ms, probe.expected_rc) == ("monitor", "n2", 0, 7)
    assert (probe.agent, probe.params) == ("ocf:heartbeat:Dummy", {"state": "/run/web.state"})


def test_the_first_start_waits_for_every_probe() -> None:
    graph = plan_transition(cluster(online("n1"), online("n2"), resources=[WEB]), 1_700_000_000, 9)
    probes = {a.id for a in graph.actions if a.task == "monitor" and a.interval_ms == 0}
    (start,) = [a for a in graph.actions if a.task == "start"]
    assert len(probes) == 2
    assert probes <= set(start.inputs)


def test_params_inherited_from_the_group_and_the_operation_reach_the_agent() -> None:
    member = m.Primitive(
        id="db",
        klass="ocf",
        provider="heartbeat",
        type="Dummy",
        instance_attributes=[m.NvSet(id="db-ia", values={"state": "/run/db.state"})],
        operations=[
            m.Operation(
                id="db-mon",
                name="monitor",
                interval=10_000,
                instance_attributes=[m.NvSet(id="db-mon-ia", values={"OCF_CHECK_LEVEL": "10"})],
            )
        ],
    )
    group = m.Group(
        id="g", children=[member], instance_attributes=[m.NvSet(id="g-ia", values={"fake": "shared"})]
    )
    graph = plan_transition(cluster(online("n1"), online("n2"), resources=[group]), 1_700_000_000, 5)
    start = next(a for a in graph.actions if a.task == "start")
    monitor = next(a for a in graph.actions if a.task == "monitor" and a.interval_ms == 10_000)
    assert start.params == {"fake": "shared", "state": "/run/db.state"}
    assert monitor.params == {"fake": "shared", "state": "/run/db.state", "OCF_CHECK_LEVEL": "10"}


def test_a_started_resource_whose_parameters_changed_is_restarted_once() -> None:
    def history(params: dict[str, str]) -> m.ResourceHistory:
        return last_op("web", "start", node="n1", params=params)

    n2 = online("n2", last_op("web", "monitor", rc=7))
    same = plan_transition(
        cluster(online("n1", history({"state": "/run/web.state"})), n2, resources=[WEB]), 0, 5
    )
    assert [a.task for a in same.actions if a.kind == "resource" and a.interval_ms == 0] == []
    changed = plan_transition(cluster(online("n1", history({"state": "/old"})), n2, resources=[WEB]), 0, 5)
    tasks = [(a.task, a.node) for a in changed.actions if a.kind == "resource" and a.interval_ms == 0]
    assert tasks == [("stop", "n1"), ("start", "n1")]


def test_parameters_with_node_attribute_rules_are_resolved_for_the_node_the_action_runs_on() -> None:
    def on(node: str) -> m.Rule:
        expr = m.AttrExpression(id=f"on-{node}-e", attribute="#uname", operation="eq", value=node)
        return m.Rule(id=f"on-{node}", expressions=[expr])

    vip = m.Primitive(
        id="vip",
        klass="ocf",
        provider="heartbeat",
        type="IPaddr2",
        instance_attributes=[
            m.NvSet(id="vip-base", values={"ip": "10.0.0.10"}),
            m.NvSet(id="vip-n1", values={"nic": "eth0"}, rule=on("n1"), score=2),
            m.NvSet(id="vip-n2", values={"nic": "ens3"}, rule=on("n2"), score=1),
        ],
        meta_attributes=[m.NvSet(id="vip-meta", values={"target-role": "Started"})],
    )
    location = m.Location(id="prefer-n2", rsc="vip", node="n2", score=100)
    cib = cluster(online("n1"), online("n2"), resources=[vip])
    cib = msgspec.structs.replace(
        cib, configuration=msgspec.structs.replace(cib.configuration, constraints=[location])
    )
    graph = plan_transition(cib, 1_700_000_000, 5)
    start = next(a for a in graph.actions if a.task == "start")
    assert start.node == "n2"
    assert start.params == {"ip": "10.0.0.10", "nic": "ens3"}
    # running there with exactly those parameters: nothing to restart (the digest is compared per node too)
    history = last_op(
        "vip", "start", node="n2", agent_type="IPaddr2", params={"ip": "10.0.0.10", "nic": "ens3"}
    )
    probed = last_op("vip", "monitor", rc=7, agent_type="IPaddr2")
    states = [online("n1", probed), online("n2", history)]
    running = msgspec.structs.replace(cib, status=m.Status(nodes=states))
    again = plan_transition(running, 1_700_000_000, 6)
    assert [a.task for a in again.actions if a.kind == "resource" and a.interval_ms == 0] == []
