"""Patches: apply, versions, preconditions, diff round trips."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.cib import model as m
from hakeeper.cib.patch import (
    Create,
    Delete,
    Modify,
    Patch,
    PatchConflict,
    PatchError,
    Put,
    Version,
    apply,
    config_digest,
    diff,
    version_of,
)


def dummy(rid: str, **meta: str) -> m.Primitive:
    sets = [m.NvSet(id=f"{rid}-meta", values=dict(meta))] if meta else []
    return m.Primitive(id=rid, klass="ocf", provider="heartbeat", type="Dummy", meta_attributes=sets)


def create(rsc: m.Resource, index: int | None = None) -> Patch:
    return Patch(ops=[Create(path="/configuration/resources", value=msgspec.to_builtins(rsc), index=index)])


def cib_with(*resources: m.Resource, epoch: int = 5) -> m.Cib:
    return m.Cib(epoch=epoch, configuration=m.Configuration(resources=list(resources)))


def test_create_appends_a_resource_and_bumps_epoch() -> None:
    cib = cib_with(dummy("a"), epoch=7)
    new = apply(cib, create(dummy("b")))
    assert [r.id for r in new.configuration.resources] == ["a", "b"]
    assert (new.epoch, new.num_updates) == (8, 0)
    assert cib.configuration.resources == [dummy("a")], "the input CIB is never modified"


def test_create_into_an_empty_configuration() -> None:
    new = apply(m.Cib(), create(dummy("x")))
    assert new.configuration.resources == [dummy("x")]


def test_create_at_position() -> None:
    cib = cib_with(dummy("a"), dummy("c"))
    new = apply(cib, create(dummy("b"), index=1))
    assert [r.id for r in new.configuration.resources] == ["a", "b", "c"]


def test_create_refuses_a_duplicate_id() -> None:
    cib = cib_with(dummy("a"))
    with pytest.raises(PatchError, match="already exists"):
        apply(cib, create(dummy("a")))


def test_modify_sets_and_clears_fields() -> None:
    cib = cib_with(m.Primitive(id="a", klass="ocf", provider="heartbeat", type="Dummy", description="old"))
    change = Modify(path="/configuration/resources/a", changes={"type": "Stateful", "description": None})
    new = apply(cib, Patch(ops=[change]))
    res = new.configuration.resources[0]
    assert isinstance(res, m.Primitive)
    assert (res.type, res.description) == ("Stateful", None)


META = "/configuration/resources/a/meta_attributes/a-meta/values"


def test_set_a_mapping_key() -> None:
    cib = cib_with(dummy("a", **{"target-role": "Started"}))
    new = apply(cib, Patch(ops=[Create(path=META, key="target-role", value="Stopped")]))
    res = new.configuration.resources[0]
    assert isinstance(res, m.Primitive)
    assert res.meta_attributes[0].values == {"target-role": "Stopped"}


def test_delete_nested_element() -> None:
    group = m.Group(id="g", children=[dummy("a"), dummy("b")])
    new = apply(cib_with(group), Patch(ops=[Delete(path="/configuration/resources/g/children/a")]))
    g = new.configuration.resources[0]
    assert isinstance(g, m.Group)
    assert [c.id for c in g.children] == ["b"]


def test_status_change_bumps_num_updates_only() -> None:
    cib = cib_with(dummy("a"), epoch=3)
    state = m.NodeState(id="n1", uname="n1", crmd="online")
    new = apply(cib, Patch(ops=[Create(path="/status/nodes", value=msgspec.to_builtins(state))]))
    assert version_of(new) == Version(0, 3, 1)
    assert new.status.nodes == [state]


def test_put_replaces_or_appends_by_id_and_can_keep_existing() -> None:
    first = m.NodeState(id="n1", uname="n1", crmd="online")
    cib = apply(m.Cib(), Patch(ops=[Put(path="/status/nodes", value=msgspec.to_builtins(first))]))
    assert cib.status.nodes == [first]
    changed = m.NodeState(id="n1", uname="n1", crmd="offline")
    kept = apply(
        cib, Patch(ops=[Put(path="/status/nodes", value=msgspec.to_builtins(changed), keep_existing=True)])
    )
    assert kept.status.nodes == [first]
    replaced = apply(cib, Patch(ops=[Put(path="/status/nodes", value=msgspec.to_builtins(changed))]))
    assert replaced.status.nodes == [changed]
    with pytest.raises(PatchError, match="needs an element with an id"):
        apply(cib, Patch(ops=[Put(path="/status/nodes", value={"uname": "x"})]))


def test_stale_precondition_is_a_conflict() -> None:
    cib = cib_with(dummy("a"), epoch=3)
    patch = Patch(ops=[Delete(path="/configuration/resources/a")], precondition=Version(0, 2, 0))
    with pytest.raises(PatchConflict, match=r"prepared against version 0\.2\.0, now at 0\.3\.0"):
        apply(cib, patch)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/configuration/resources/nope", "no element with id 'nope'"),
        ("/configuration/resources/#9", "no element at position 9"),
        ("/configuration/resources/#x", "is not a list position"),
        ("configuration", "must start with '/'"),
    ],
)
def test_bad_paths_are_clear_errors(path: str, message: str) -> None:
    with pytest.raises(PatchError, match=message):
        apply(cib_with(dummy("a")), Patch(ops=[Delete(path=path)]))


def test_a_change_that_breaks_the_schema_is_refused() -> None:
    with pytest.raises(PatchError, match="would make the CIB invalid"):
        change = Modify(path="/configuration/resources/a", changes={"bogus": 1})
        apply(cib_with(dummy("a")), Patch(ops=[change]))


def test_digest_depends_only_on_configuration() -> None:
    a = cib_with(dummy("a"), epoch=1)
    b = msgspec.structs.replace(cib_with(dummy("a"), epoch=9), status=m.Status(nodes=[m.NodeState(id="n")]))
    assert config_digest(a.configuration) == config_digest(b.configuration)
    assert config_digest(a.configuration) != config_digest(cib_with(dummy("b")).configuration)


# --- property: diff then apply gives back the target -------------------------------------------------------

ids = st.sampled_from(["a", "b", "c", "d", "e"])
meta_values = st.dictionaries(
    st.sampled_from(["target-role", "resource-stickiness", "priority"]),
    st.sampled_from(["1", "2", "Started"]),
    max_size=2,
)


@st.composite
def primitives(draw: st.DrawFn, rid: str) -> m.Primitive:
    meta = draw(meta_values)
    return m.Primitive(
        id=rid,
        klass="ocf",
        provider=draw(st.sampled_from(["heartbeat", "pacemaker"])),
        type=draw(st.sampled_from(["Dummy", "Stateful"])),
        meta_attributes=[m.NvSet(id=f"{rid}-meta", values=meta)] if meta else [],
    )


@st.composite
def configurations(draw: st.DrawFn) -> m.Configuration:
    chosen = draw(st.lists(ids, unique=True, max_size=5))
    prims = [draw(primitives(r)) for r in chosen]
    resources: list[m.Resource] = []
    if len(prims) >= 2 and draw(st.booleans()):
        resources.append(m.Group(id="g", children=prims[:2]))
        prims = prims[2:]
    if prims and draw(st.booleans()):
        resources.append(m.Clone(id=f"{prims[0].id}-clone", child=prims[0]))
        prims = prims[1:]
    resources.extend(prims)
    resources = draw(st.permutations(resources))
    cons: list[m.Constraint] = []
    for i, r in enumerate(draw(st.lists(st.sampled_from(chosen), max_size=3)) if chosen else []):
        node = draw(st.sampled_from(["n1", "n2"]))
        score = draw(st.integers(-1_000_000, 1_000_000))
        cons.append(m.Location(id=f"loc-{i}", rsc=r, node=node, score=score))
    props = draw(meta_values)
    return m.Configuration(
        resources=list(resources),
        constraints=cons,
        properties=[m.NvSet(id="opts", values=props)] if props else [],
    )


@settings(max_examples=150, deadline=None)
@given(configurations(), configurations())
def test_diff_then_apply_reaches_the_target(a: m.Configuration, b: m.Configuration) -> None:
    old = m.Cib(epoch=4, configuration=a)
    new = m.Cib(epoch=4, configuration=b)
    patch = diff(old, new)
    result = apply(old, patch)
    assert result.configuration == b
    assert (result.epoch == old.epoch + 1) == bool(patch.ops)
    # the patch survives the wire (what the replicated log carries)
    wire = msgspec.msgpack.decode(msgspec.msgpack.encode(patch), type=Patch)
    assert apply(old, wire).configuration == b


@settings(max_examples=50, deadline=None)
@given(configurations())
def test_diff_of_equal_cibs_is_empty(a: m.Configuration) -> None:
    cib = m.Cib(configuration=a)
    assert diff(cib, cib).ops == []
    assert apply(cib, diff(cib, cib)) == cib
