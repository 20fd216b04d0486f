"""Where a resource is after a recorded live migration (migrate_to on the source, migrate_from on the
target)."""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.policy.schedule import schedule
from tests.policy.builders import cib, history, lines, node_state, prim

NOW = 1_700_000_000


def _op(task: str, call_id: int, rc: int = 0, source: str = "n1", target: str = "n2") -> m.OpRecord:
    migrating = task in ("migrate_to", "migrate_from")
    return m.OpRecord(
        id=f"vm_{task}_0",
        operation=task,
        call_id=call_id,
        rc=rc,
        transition_key="1:1:0:abc",
        migrate_source=source if migrating else None,
        migrate_target=target if migrating else None,
    )


def _vm() -> m.Primitive:
    return prim("vm", **{"allow-migrate": "true"})


def _plan(source_ops: list[m.OpRecord], target_ops: list[m.OpRecord], **kwargs: list[m.Constraint]) -> m.Cib:
    states = [node_state("n1", history("vm", *source_ops)), node_state("n2", history("vm", *target_ops))]
    return cib([_vm()], states, constraints=kwargs.get("constraints"))


def test_a_finished_migration_leaves_the_resource_on_the_target() -> None:
    config = _plan(
        [_op("start", 2), _op("migrate_to", 3)],
        [_op("migrate_from", 4)],
        constraints=[m.Location(id="here", rsc="vm", node="n2", score=100)],
    )
    transition = schedule(config, NOW)
    assert transition.summary == []
    # the source still owes a clean-up stop, which is an action but not a change to report
    stops = [a.node for a in transition.actions if a.rsc == "vm" and a.task == "stop"]
    assert stops == ["n1"]


def test_a_failed_migrate_from_recovers_the_resource() -> None:
    # the resource may be active on both nodes: it is recovered where it is wanted
    config = _plan(
        [_op("start", 2), _op("migrate_to", 3)],
        [_op("migrate_from", 4, rc=1)],
        constraints=[m.Location(id="here", rsc="vm", node="n2", score=100)],
    )
    assert lines(schedule(config, NOW).summary) == {"* Recover vm (n2)"}


def test_a_half_done_migration_is_finished() -> None:
    # migrate_to succeeded, the target has not recorded migrate_from yet: carry on to the target
    config = _plan(
        [_op("start", 2), _op("migrate_to", 3)],
        [],
        constraints=[m.Location(id="there", rsc="vm", node="n2", score=100)],
    )
    assert lines(schedule(config, NOW).summary) == {"* Migrate vm (n1 -> n2)"}
