"""The CIB state machine: identical entries give identical CIBs and identical refusals on every node."""

from __future__ import annotations

import msgspec
import pytest

from hakeeper.cib import model as m
from hakeeper.cib.patch import Create, Delete, Patch, Version
from hakeeper.daemon.cib_state import CibStateMachine, LogEntry, encode_entry


def add(rid: str, precondition: Version | None = None) -> bytes:
    prim = m.Primitive(id=rid, klass="ocf", provider="heartbeat", type="Dummy")
    patch = Patch(
        ops=[Create(path="/configuration/resources", value=msgspec.to_builtins(prim))],
        precondition=precondition,
    )
    return encode_entry(LogEntry(request_id=f"req-{rid}", patch=patch, actor="root"))


def test_entries_apply_in_order_and_nodes_agree() -> None:
    log = [add("a"), add("b", precondition=Version(0, 1, 0)), add("c", precondition=Version(0, 1, 0))]
    nodes = [CibStateMachine(), CibStateMachine()]
    results = [[sm.apply(i, data) for i, data in enumerate(log, start=1)] for sm in nodes]
    assert nodes[0].cib == nodes[1].cib
    assert [r.id for r in nodes[0].cib.configuration.resources] == ["a", "b"]
    errors = [r.error for r in results[0]]
    assert errors[:2] == [None, None]
    assert errors[2] is not None and "prepared against version 0.1.0, now at 0.2.0" in errors[2]
    assert results[0][2].conflict == (Version(0, 1, 0), Version(0, 2, 0))
    assert errors == [r.error for r in results[1]]
    assert nodes[0].version == (0, 2, 0)


def test_garbage_entries_are_refused_not_fatal() -> None:
    sm = CibStateMachine()
    applied = sm.apply(1, b"\x00garbage")
    assert applied.error is not None and "is not a CIB change" in applied.error
    assert sm.cib == m.Cib() and sm.applied_index == 1


def test_a_bad_patch_is_refused_with_its_reason() -> None:
    sm = CibStateMachine()
    bad = encode_entry(LogEntry(request_id="r", patch=Patch(ops=[Delete(path="/configuration/resources/x")])))
    applied = sm.apply(1, bad)
    assert applied.error is not None and "'x' does not exist" in applied.error
    assert applied.request_id == "r"


def test_snapshot_and_restore() -> None:
    sm = CibStateMachine()
    sm.apply(1, add("a"))
    other = CibStateMachine()
    other.restore(sm.snapshot(), 1)
    assert other.cib == sm.cib and other.applied_index == 1
    with pytest.raises(ValueError, match="already applied"):
        other.apply(1, add("b"))
