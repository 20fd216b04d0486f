"""The operator's edits: each makes the Pacemaker-shaped change and refuses clearly what cannot be done."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.cib import model as m
from hakeeper.cib import operator as op
from hakeeper.cib.patch import Patch, apply
from hakeeper.cib.validate import errors, validate
from hakeeper.cib.values import INFINITY
from hakeeper.policy.schedule import schedule

NOW = 1_700_000_000


def node(name: str) -> m.Node:
    return m.Node(id=name, uname=name)


def dummy(rid: str) -> m.Primitive:
    return m.Primitive(id=rid, klass="ocf", provider="pacemaker", type="Dummy")


def base_cib() -> m.Cib:
    cfg = m.Configuration(
        properties=[m.NvSet(id="cib-bootstrap-options", values={"stonith-enabled": "false"})],
        nodes=[node("n1"), node("n2"), node("n3")],
        resources=[
            dummy("vip"),
            m.Group(id="web", children=[dummy("fs"), dummy("httpd")]),
            m.Clone(id="ping-clone", child=dummy("ping")),
        ],
        constraints=[m.Order(id="o1", first="vip", then="web")],
    )
    return m.Cib(epoch=3, configuration=cfg)


def constraint(cib: m.Cib, cid: str) -> m.Constraint:
    return next(c for c in cib.configuration.constraints if c.id == cid)


def failed_history_cib() -> m.Cib:
    ops = [
        m.OpRecord(id="vip_last_0", operation="start", call_id=3, rc=1),
        m.OpRecord(id="vip_last_failure_0", operation="start", call_id=3, rc=1),
    ]
    state = m.NodeState(
        id="n1",
        uname="n1",
        resources=[
            m.ResourceHistory(id="vip", klass="ocf", provider="pacemaker", type="Dummy", ops=ops),
            m.ResourceHistory(id="fs", klass="ocf", provider="pacemaker", type="Dummy"),
        ],
        transient_attributes=[
            m.NvSet(
                id="status-n1",
                values={
                    "fail-count-vip#start_0": "INFINITY",
                    "last-failure-vip#start_0": "1699999999",
                    "other": "x",
                },
            )
        ],
    )
    other = m.NodeState(
        id="n2",
        uname="n2",
        resources=[m.ResourceHistory(id="vip", klass="ocf", provider="pacemaker", type="Dummy")],
    )
    return msgspec.structs.replace(base_cib(), status=m.Status(nodes=[state, other]))


# --- resources ----------------------------------------------------------------------------------


def test_create_a_primitive_with_params_meta_and_operations() -> None:
    spec = op.ResourceSpec(
        id="db",
        agent="ocf:heartbeat:pgsql",
        params={"pgdata": "/srv"},
        meta={"resource-stickiness": "100"},
        operations=[op.OperationSpec(name="monitor", interval_ms=10_000, timeout_ms=20_000)],
    )
    new = apply(base_cib(), op.resource_create(base_cib(), spec))
    rsc = op.find_resource(new, "db").resource
    assert isinstance(rsc, m.Primitive)
    assert (rsc.klass, rsc.provider, rsc.type) == ("ocf", "heartbeat", "pgsql")
    assert rsc.instance_attributes[0].values == {"pgdata": "/srv"}
    assert rsc.meta_attributes[0].values == {"resource-stickiness": "100"}
    assert rsc.operations[0].interval == 10_000 and rsc.operations[0].timeout == 20_000
    assert new.epoch == 4


def test_create_in_a_new_group_and_into_an_existing_group() -> None:
    cib = base_cib()
    new = apply(cib, op.resource_create(cib, op.ResourceSpec(id="a", agent="systemd:nginx", group="g")))
    grp = op.find_resource(new, "g").resource
    assert isinstance(grp, m.Group) and [c.id for c in grp.children] == ["a"]
    assert grp.children[0].klass == "systemd" and grp.children[0].provider is None
    spec = op.ResourceSpec(id="b", agent="ocf:pacemaker:Dummy", group="web")
    new = apply(cib, op.resource_create(cib, spec))
    web = op.find_resource(new, "web").resource
    assert isinstance(web, m.Group) and [c.id for c in web.children] == ["fs", "httpd", "b"]


def test_create_a_promotable_clone() -> None:
    cib = base_cib()
    spec = op.ResourceSpec(
        id="st", agent="ocf:pacemaker:Stateful", promotable=True, clone_meta={"promoted-max": "1"}
    )
    clone = op.find_resource(apply(cib, op.resource_create(cib, spec)), "st-clone").resource
    assert isinstance(clone, m.Clone) and clone.child.id == "st"
    assert clone.meta_attributes[0].values == {"promoted-max": "1", "promotable": "true"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (op.ResourceSpec(id="vip", agent="ocf:pacemaker:Dummy"), "already used"),
        (op.ResourceSpec(id="httpd", agent="ocf:pacemaker:Dummy"), "already used"),
        (op.ResourceSpec(id="x", agent="Dummy"), "is not understood"),
        (op.ResourceSpec(id="x", agent="ocf:Dummy"), "is not understood"),
        (op.ResourceSpec(id="has space", agent="ocf:pacemaker:Dummy"), "not usable"),
        (op.ResourceSpec(id="x", agent="ocf:pacemaker:Dummy", group="vip"), "not a group"),
        (op.ResourceSpec(id="x", agent="ocf:pacemaker:Dummy", group="x"), "both a resource and its group"),
        (
            op.ResourceSpec(id="x", agent="ocf:pacemaker:Dummy", group="g", clone=True),
            "cannot also be cloned",
        ),
        (op.ResourceSpec(id="x", agent="ocf:pacemaker:Dummy", params={"a b": "1"}), "not usable"),
    ],
)
def test_create_refuses_clearly(spec: op.ResourceSpec, message: str) -> None:
    with pytest.raises(op.OperatorError, match=message):
        op.resource_create(base_cib(), spec)


def test_update_sets_and_removes_params_and_meta() -> None:
    cib = base_cib()
    new = apply(cib, op.resource_update(cib, "httpd", params={"port": "80"}, meta={"is-managed": "false"}))
    rsc = op.find_resource(new, "httpd").resource
    assert isinstance(rsc, m.Primitive)
    assert rsc.instance_attributes[0].values == {"port": "80"}
    assert rsc.meta_attributes[0].values == {"is-managed": "false"}
    again = apply(new, op.resource_update(new, "httpd", params={"port": None, "root": "/srv"}))
    rsc = op.find_resource(again, "httpd").resource
    assert isinstance(rsc, m.Primitive) and rsc.instance_attributes[0].values == {"root": "/srv"}


def test_update_refuses_unknown_resources_and_params_on_groups() -> None:
    with pytest.raises(op.OperatorError, match="there is no resource 'nope'"):
        op.resource_update(base_cib(), "nope", meta={"a": "b"})
    with pytest.raises(op.OperatorError, match="not a primitive"):
        op.resource_update(base_cib(), "web", params={"a": "b"})
    with pytest.raises(op.OperatorError, match="nothing to change"):
        op.resource_update(base_cib(), "vip")


def test_delete_removes_the_resource_and_its_constraints() -> None:
    cib = base_cib()
    new = apply(cib, op.resource_delete(cib, "vip"))
    assert "vip" not in {f.resource.id for f in op.all_resources(new)}
    assert new.configuration.constraints == []


def test_delete_a_group_member_keeps_the_group_until_the_last_one() -> None:
    cib = apply(base_cib(), op.resource_delete(base_cib(), "fs"))
    web = op.find_resource(cib, "web").resource
    assert isinstance(web, m.Group) and [c.id for c in web.children] == ["httpd"]
    cib = apply(cib, op.resource_delete(cib, "httpd"))
    assert "web" not in {f.resource.id for f in op.all_resources(cib)}
    assert constraint_ids(cib) == []  # the order naming web went with it


def test_delete_a_clone_child_deletes_the_clone() -> None:
    cib = apply(base_cib(), op.resource_delete(base_cib(), "ping"))
    assert "ping-clone" not in {f.resource.id for f in op.all_resources(cib)}


def constraint_ids(cib: m.Cib) -> list[str]:
    return [c.id for c in cib.configuration.constraints]


def meta_of(cib: m.Cib, rid: str) -> dict[str, str]:
    rsc = op.find_resource(cib, rid).resource
    assert not isinstance(rsc, m.Bundle)
    out: dict[str, str] = {}
    for s in rsc.meta_attributes:
        out.update(s.values)
    return out


def test_enable_and_disable_set_target_role() -> None:
    cib = apply(base_cib(), op.disable(base_cib(), "web"))
    assert meta_of(cib, "web") == {"target-role": "Stopped"}
    assert any("Stop" in line for line in schedule(with_running_web(cib), NOW).summary)
    cib = apply(cib, op.enable(cib, "web"))
    assert meta_of(cib, "web") == {"target-role": "Started"}


def with_running_web(cib: m.Cib) -> m.Cib:
    hist = [
        m.ResourceHistory(
            id=r,
            klass="ocf",
            provider="pacemaker",
            type="Dummy",
            ops=[m.OpRecord(id=f"{r}_last_0", operation="start", call_id=i, rc=0, on_node="n1")],
        )
        for i, r in enumerate(["fs", "httpd"], start=1)
    ]
    return msgspec.structs.replace(
        cib,
        status=m.Status(
            nodes=[
                m.NodeState(
                    id="n1",
                    uname="n1",
                    in_ccm="true",
                    crmd="online",
                    join="member",
                    expected="member",
                    resources=hist,
                )
            ]
        ),
    )


def test_restart_is_disable_then_the_previous_target_role() -> None:
    cib = base_cib()
    stop, start = op.restart_steps(cib, "vip")
    stopped = apply(cib, stop)
    assert meta_of(stopped, "vip") == {"target-role": "Stopped"}
    assert meta_of(apply(stopped, start), "vip") == {}
    cib = apply(cib, op.enable(cib, "vip"))
    stop, start = op.restart_steps(cib, "vip")
    assert meta_of(apply(apply(cib, stop), start), "vip") == {"target-role": "Started"}


def test_restart_of_a_disabled_resource_is_refused() -> None:
    cib = apply(base_cib(), op.disable(base_cib(), "vip"))
    with pytest.raises(op.OperatorError, match="enable it instead"):
        op.restart_steps(cib, "vip")


def test_is_stopped_everywhere_reads_the_history() -> None:
    running = with_running_web(base_cib())
    assert not op.is_stopped_everywhere(running, "web")
    assert op.is_stopped_everywhere(running, "vip")


# --- move, ban, clear ----------------------------------------------------------------------------------


def test_move_prefers_the_node_with_infinity_and_replaces_an_earlier_move() -> None:
    cib = base_cib()
    cib = apply(cib, op.move(cib, "vip", "n2"))
    cib = apply(cib, op.move(cib, "vip", "n3"))
    loc = constraint(cib, "cli-prefer-vip")
    assert isinstance(loc, m.Location) and (loc.rsc, loc.node, loc.score) == ("vip", "n3", INFINITY)
    assert constraint_ids(cib).count("cli-prefer-vip") == 1
    online = msgspec.structs.replace(
        cib,
        status=m.Status(
            nodes=[
                m.NodeState(id=n, uname=n, in_ccm="true", crmd="online", join="member", expected="member")
                for n in ("n1", "n2", "n3")
            ]
        ),
    )
    assert any("vip" in line and "n3" in line for line in schedule(online, NOW).summary)


def test_move_with_a_lifetime_is_a_rule_that_ends() -> None:
    cib = base_cib()
    loc = constraint(apply(cib, op.move(cib, "vip", "n2", lifetime_s=3600, now=NOW)), "cli-prefer-vip")
    assert isinstance(loc, m.Location) and loc.node is None
    rule = loc.rules[0]
    assert rule.score == INFINITY
    kinds = [type(e) for e in rule.expressions]
    assert kinds == [m.AttrExpression, m.DateExpression]
    end = rule.expressions[1]
    assert isinstance(end, m.DateExpression) and end.operation == "lt" and end.end == "2023-11-14 23:13:20Z"
    with pytest.raises(op.OperatorError, match="positive"):
        op.move(cib, "vip", "n2", lifetime_s=0, now=NOW)


def test_ban_and_clear() -> None:
    cib = base_cib()
    cib = apply(cib, op.ban(cib, "web", "n1"))
    cib = apply(cib, op.ban(cib, "web", "n2"))
    cib = apply(cib, op.move(cib, "web", "n3"))
    ban = constraint(cib, "cli-ban-web-on-n1")
    assert isinstance(ban, m.Location) and ban.score == -INFINITY and ban.node == "n1"
    only_n1 = apply(cib, op.clear(cib, "web", "n1"))
    assert constraint_ids(only_n1) == ["o1", "cli-ban-web-on-n2", "cli-prefer-web"]
    assert constraint_ids(apply(cib, op.clear(cib, "web"))) == ["o1"]
    assert op.clear(base_cib(), "web").ops == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: op.move(c, "nope", "n1"), "no resource 'nope'"),
        (lambda c: op.move(c, "vip", "n9"), "no node 'n9'"),
        (lambda c: op.move(c, "httpd", "n1"), "move web instead"),
        (lambda c: op.ban(c, "ping", "n1"), "ban ping-clone instead"),
        (lambda c: op.ban(c, "vip", "n9"), "no node 'n9'"),
        (lambda c: op.clear(c, "nope"), "no resource"),
    ],
)
def test_move_ban_clear_errors(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(op.OperatorError, match=message):
        call(base_cib())


# --- cleanup ----------------------------------------------------------------------------------


def test_cleanup_forgets_history_and_fail_counts_everywhere() -> None:
    cib = failed_history_cib()
    new = apply(cib, op.cleanup(cib, "vip"))
    n1, n2 = new.status.nodes
    assert [h.id for h in n1.resources] == ["fs"]
    assert n2.resources == []
    assert n1.transient_attributes[0].values == {"other": "x"}
    assert new.epoch == cib.epoch and new.num_updates == cib.num_updates + 1


def test_cleanup_on_one_node_and_of_a_group() -> None:
    cib = failed_history_cib()
    new = apply(cib, op.cleanup(cib, "vip", "n2"))
    assert [h.id for h in new.status.nodes[0].resources] == ["vip", "fs"]
    assert new.status.nodes[1].resources == []
    grp = apply(cib, op.cleanup(cib, "web"))
    assert [h.id for h in grp.status.nodes[0].resources] == ["vip"]


def test_cleanup_errors() -> None:
    with pytest.raises(op.OperatorError, match="no resource 'nope'"):
        op.cleanup(failed_history_cib(), "nope")
    with pytest.raises(op.OperatorError, match="no node 'n7'"):
        op.cleanup(failed_history_cib(), "vip", "n7")


def test_cleanup_of_an_orphan_with_history_is_allowed() -> None:
    cib = failed_history_cib()
    orphaned = apply(cib, op.resource_delete(cib, "vip"))
    new = apply(orphaned, op.cleanup(orphaned, "vip"))
    assert all(h.id != "vip" for s in new.status.nodes for h in s.resources)


# --- constraints ----------------------------------------------------------------------------------


def test_constraints_add_and_remove() -> None:
    cib = base_cib()
    cib = apply(cib, op.location_add(cib, "vip", "n1", 50))
    cib = apply(cib, op.colocation_add(cib, "web", "vip"))
    cib = apply(cib, op.order_add(cib, "ping-clone", "vip", kind="Optional", constraint_id="my-order"))
    assert constraint_ids(cib) == ["o1", "location-vip-n1-50", "colocation-web-vip-INFINITY", "my-order"]
    col = constraint(cib, "colocation-web-vip-INFINITY")
    assert isinstance(col, m.Colocation) and (col.rsc, col.with_rsc, col.score) == ("web", "vip", INFINITY)
    cib = apply(cib, op.location_add(cib, "vip", "n1", 50))
    assert "location-vip-n1-50-2" in constraint_ids(cib)
    cib = apply(cib, op.constraint_remove(cib, "my-order"))
    assert "my-order" not in constraint_ids(cib)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: op.location_add(c, "nope", "n1", 5), "no resource 'nope'"),
        (lambda c: op.location_add(c, "vip", "zz", 5), "no node 'zz'"),
        (lambda c: op.location_add(c, "vip", "n1", 5_000_000), "outside"),
        (lambda c: op.colocation_add(c, "vip", "vip"), "itself"),
        (lambda c: op.colocation_add(c, "vip", "nope"), "no resource 'nope'"),
        (lambda c: op.order_add(c, "vip", "web", kind="Sometimes"), "not one of"),
        (lambda c: op.order_add(c, "vip", "web", constraint_id="o1"), "already used"),
        (lambda c: op.constraint_remove(c, "nope"), "no constraint 'nope'"),
    ],
)
def test_constraint_errors(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(op.OperatorError, match=message):
        call(base_cib())


# --- nodes, cluster ----------------------------------------------------------------------------------


def node_attrs(cib: m.Cib, name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in op.find_node(cib, name).instance_attributes:
        out.update(s.values)
    return out


def test_standby_and_unstandby() -> None:
    cib = apply(base_cib(), op.standby(base_cib(), "n2"))
    assert node_attrs(cib, "n2") == {"standby": "on"}
    cib = apply(cib, op.standby(cib, "n2", on=False))
    assert node_attrs(cib, "n2") == {}
    assert op.standby(cib, "n2", on=False).ops == []
    with pytest.raises(op.OperatorError, match="no node 'n5'"):
        op.standby(cib, "n5")


def test_node_maintenance_and_attributes() -> None:
    cib = apply(base_cib(), op.node_maintenance(base_cib(), "n1"))
    cib = apply(cib, op.node_attribute(cib, "n1", "rack", "r7"))
    assert node_attrs(cib, "n1") == {"maintenance": "on", "rack": "r7"}
    cib = apply(cib, op.node_attribute(cib, "n1", "rack", None))
    cib = apply(cib, op.node_maintenance(cib, "n1", on=False))
    assert node_attrs(cib, "n1") == {}
    with pytest.raises(op.OperatorError, match="has no attribute 'rack'"):
        op.node_attribute(cib, "n1", "rack", None)
    with pytest.raises(op.OperatorError, match="not usable"):
        op.node_attribute(cib, "n1", "a/b", "1")


def test_cluster_maintenance_mode() -> None:
    cib = apply(base_cib(), op.maintenance(base_cib(), True))
    props = cib.configuration.properties[0].values
    assert props == {"stonith-enabled": "false", "maintenance-mode": "true"}
    cib = apply(cib, op.maintenance(cib, False))
    assert cib.configuration.properties[0].values["maintenance-mode"] == "false"
    empty = m.Cib(configuration=m.Configuration(nodes=[node("n1")]))
    created = apply(empty, op.maintenance(empty, True))
    assert created.configuration.properties[0].id == "cib-bootstrap-options"


# --- any sequence of operator commands keeps the CIB applicable and valid ---------------------------------

NAMES = ["vip", "web", "fs", "httpd", "ping", "ping-clone", "new1", "new2", "grp", "nope"]
NODES = ["n1", "n2", "n3", "n9"]


Command = tuple[str, tuple[object, ...]]


def commands() -> st.SearchStrategy[Command]:
    name, node = st.sampled_from(NAMES), st.sampled_from(NODES)
    maybe_node = st.none() | node
    score = st.sampled_from([0, 5, -5, INFINITY, -INFINITY])
    return st.one_of(
        st.tuples(
            st.just("create"),
            st.tuples(name, st.none() | st.sampled_from(["grp", "web", "vip"]), st.booleans()),
        ),
        st.tuples(st.just("update"), st.tuples(name, st.sampled_from(["a", "b"]), st.none() | st.just("1"))),
        st.tuples(st.just("delete"), st.tuples(name)),
        st.tuples(st.just("move"), st.tuples(name, node)),
        st.tuples(st.just("ban"), st.tuples(name, node)),
        st.tuples(st.just("clear"), st.tuples(name, maybe_node)),
        st.tuples(st.just("cleanup"), st.tuples(name, maybe_node)),
        st.tuples(st.just("enable"), st.tuples(name)),
        st.tuples(st.just("disable"), st.tuples(name)),
        st.tuples(st.just("location"), st.tuples(name, node, score)),
        st.tuples(st.just("colocation"), st.tuples(name, name, score)),
        st.tuples(st.just("order"), st.tuples(name, name)),
        st.tuples(st.just("standby"), st.tuples(node, st.booleans())),
        st.tuples(
            st.just("attribute"),
            st.tuples(node, st.sampled_from(["rack", "zone"]), st.none() | st.just("r1")),
        ),
        st.tuples(st.just("maintenance"), st.tuples(st.booleans())),
    )


def run_command(cib: m.Cib, cmd: str, args: tuple[object, ...]) -> Patch:
    a = args
    table = {
        "create": lambda: op.resource_create(
            cib,
            op.ResourceSpec(
                id=str(a[0]),
                agent="ocf:pacemaker:Dummy",
                group=a[1] if isinstance(a[1], str) else None,
                clone=bool(a[2]) and a[1] is None,
            ),
        ),
        "update": lambda: op.resource_update(cib, str(a[0]), meta={str(a[1]): a[2]}),  # type: ignore[dict-item]
        "delete": lambda: op.resource_delete(cib, str(a[0])),
        "move": lambda: op.move(cib, str(a[0]), str(a[1])),
        "ban": lambda: op.ban(cib, str(a[0]), str(a[1])),
        "clear": lambda: op.clear(cib, str(a[0]), a[1]),  # type: ignore[arg-type]
        "cleanup": lambda: op.cleanup(cib, str(a[0]), a[1]),  # type: ignore[arg-type]
        "enable": lambda: op.enable(cib, str(a[0])),
        "disable": lambda: op.disable(cib, str(a[0])),
        "location": lambda: op.location_add(cib, str(a[0]), str(a[1]), int(a[2])),  # type: ignore[call-overload]
        "colocation": lambda: op.colocation_add(cib, str(a[0]), str(a[1]), int(a[2])),  # type: ignore[call-overload]
        "order": lambda: op.order_add(cib, str(a[0]), str(a[1])),
        "standby": lambda: op.standby(cib, str(a[0]), bool(a[1])),
        "attribute": lambda: op.node_attribute(cib, str(a[0]), str(a[1]), a[2]),  # type: ignore[arg-type]
        "maintenance": lambda: op.maintenance(cib, bool(a[0])),
    }
    return table[cmd]()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands(), max_size=12))
def test_any_command_sequence_applies_cleanly_and_stays_valid(cmds: list[Command]) -> None:
    cib = failed_history_cib()
    for cmd, args in cmds:
        try:
            patch = op.validated(cib, run_command(cib, cmd, args))
        except op.OperatorError as err:
            assert str(err)  # refused, with a message
            continue
        cib = apply(cib, patch)  # never a PatchError: the functions only make patches that fit
        problems = [p for p in errors(validate(cib.configuration))]
        assert problems == [], (cmd, args, [str(p) for p in problems])


def test_a_long_seeded_sequence_both_applies_and_refuses() -> None:
    rng = random.Random(7)
    pools: dict[str, list[tuple[object, ...]]] = {
        "create": [(n, g, c) for n in NAMES for g in (None, "grp", "web") for c in (False, True)],
        "delete": [(n,) for n in NAMES],
        "move": [(n, d) for n in NAMES for d in NODES],
        "ban": [(n, d) for n in NAMES for d in NODES],
        "cleanup": [(n, None) for n in NAMES],
        "disable": [(n,) for n in NAMES],
        "colocation": [(a, b, 5) for a in NAMES for b in NAMES],
        "order": [(a, b) for a in NAMES for b in NAMES],
        "standby": [(d, True) for d in NODES],
    }
    cib, applied, refused = failed_history_cib(), 0, 0
    for _ in range(400):
        cmd = rng.choice(sorted(pools))
        try:
            patch = op.validated(cib, run_command(cib, cmd, rng.choice(pools[cmd])))
        except op.OperatorError:
            refused += 1
            continue
        cib = apply(cib, patch)
        applied += 1
        assert errors(validate(cib.configuration)) == []
    assert applied > 100 and refused > 100


def test_a_change_that_would_make_the_configuration_invalid_is_refused() -> None:
    cib = apply(base_cib(), op.order_add(base_cib(), "web", "ping-clone"))
    cycle = op.order_add(cib, "ping-clone", "vip")  # vip -> web -> ping-clone -> vip
    with pytest.raises(op.OperatorError, match=r"would make the configuration invalid: .*cycle"):
        op.validated(cib, cycle)
    harmless = op.standby(cib, "n1")
    assert op.validated(cib, harmless) is harmless


def test_haresources_line_makes_a_group_and_a_preference() -> None:
    cib = base_cib()
    line = "n2 IPaddr::10.0.0.10/24/eth0 Filesystem::/dev/sdb1::/srv::ext4 apache"
    new = apply(cib, op.haresources(cib, line))
    grp = op.find_resource(new, "group_IPaddr_10_0_0_10").resource
    assert isinstance(grp, m.Group)
    ip, fs, svc = grp.children
    assert ip.agent == "ocf:heartbeat:IPaddr2"
    assert ip.instance_attributes[0].values == {"ip": "10.0.0.10", "cidr_netmask": "24", "nic": "eth0"}
    assert fs.agent == "ocf:heartbeat:Filesystem"
    assert fs.instance_attributes[0].values == {"device": "/dev/sdb1", "directory": "/srv", "fstype": "ext4"}
    assert (svc.id, svc.agent) == ("apache", "lsb:apache")
    loc = constraint(new, "group_IPaddr_10_0_0_10-prefers-n2")
    assert isinstance(loc, m.Location) and (loc.node, loc.score) == ("n2", 100)
    assert loc.rsc == "group_IPaddr_10_0_0_10"
    assert errors(validate(new.configuration)) == []
    systemd = op.haresources(cib, "n1 nginx", service_class="systemd")
    assert op.find_resource(apply(cib, systemd), "nginx").resource.agent == "systemd:nginx"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("n1", "NODE RESOURCE"),
        ("n9 httpd", "no node 'n9'"),
        ("n1 IPaddr", "takes ip"),
        ("n1 IPaddr::1.2.3.4/24/eth0/1.2.3.255/extra", "takes ip"),
        ("n1 apache::/etc/apache.conf", "only IPaddr"),
        ("n1 apache apache", "twice"),
        ("n1 vip", "already used"),
        ("n1 ::x", "no resource name"),
    ],
)
def test_haresources_errors(line: str, message: str) -> None:
    with pytest.raises(op.OperatorError, match=message):
        op.haresources(base_cib(), line)
