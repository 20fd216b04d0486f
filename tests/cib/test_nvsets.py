"""Resolving several attribute sets into one mapping, as Pacemaker does."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from hakeeper.cib.model import AttrExpression, DateExpression, NvSet, OpExpression, Rule
from hakeeper.cib.nvsets import next_nvsets_change, processing_order, resolve_nvsets
from hakeeper.cib.rules import RuleContext

NODE1 = RuleContext(node_attrs={"#uname": "node1"})


def nvset(id: str, score: int | None = None, rule: Rule | None = None, **values: str) -> NvSet:
    return NvSet(id=id, score=score, rule=rule, values=values)


def on(uname: str) -> Rule:
    return Rule(
        id=f"on-{uname}",
        expressions=[AttrExpression(id="e", attribute="#uname", operation="eq", value=uname)],
    )


def test_no_sets_and_one_set() -> None:
    assert resolve_nvsets([], NODE1) == {}
    assert resolve_nvsets([nvset("a", timeout="20s", interval="10s")], NODE1) == {
        "timeout": "20s",
        "interval": "10s",
    }
    assert resolve_nvsets([nvset("a", rule=on("node2"), timeout="20s")], NODE1) == {}


def test_highest_score_wins_and_names_merge() -> None:
    sets = [nvset("low", 10, fake="100", only_low="x"), nvset("high", 20, fake="200")]
    assert resolve_nvsets(sets, NODE1) == {"fake": "200", "only_low": "x"}


def test_sets_whose_rule_fails_are_skipped() -> None:
    # value-source.xml's insane-rsc: score 10 plain, score 20 on rhel7-1, score 20 on rhel7-4.
    sets = [
        nvset("plain", 10, fake="100"),
        nvset("rhel7-1", 20, rule=on("rhel7-1"), fake="200"),
        nvset("rhel7-4", 20, rule=on("rhel7-4"), fake="400"),
    ]
    assert resolve_nvsets(sets, RuleContext(node_attrs={"#uname": "rhel7-1"})) == {"fake": "200"}
    assert resolve_nvsets(sets, RuleContext(node_attrs={"#uname": "rhel7-4"})) == {"fake": "400"}
    assert resolve_nvsets(sets, RuleContext(node_attrs={"#uname": "rhel7-2"})) == {"fake": "100"}


def test_equal_scores_the_last_listed_set_wins() -> None:
    # op-defaults-3: both sets match a 10 s monitor; Pacemaker's expected transition uses 7 s.
    monitor_10s = Rule(id="r1", expressions=[OpExpression(id="o1", name="monitor", interval=10_000)])
    monitor = Rule(id="r2", expressions=[OpExpression(id="o2", name="monitor")])
    sets = [
        nvset("op-10s-monitor-defaults", rule=monitor_10s, timeout="8s"),
        nvset("op-monitor-defaults", rule=monitor, timeout="7s"),
    ]
    assert resolve_nvsets(sets, RuleContext(op_name="monitor", op_interval_ms=10_000)) == {"timeout": "7s"}
    assert resolve_nvsets(sets, RuleContext(op_name="monitor", op_interval_ms=0)) == {"timeout": "7s"}
    assert resolve_nvsets(sets, RuleContext(op_name="start", op_interval_ms=0)) == {}


def test_a_missing_score_is_zero() -> None:
    assert resolve_nvsets([nvset("neg", -1, a="neg"), nvset("none", a="none")], NODE1) == {"a": "none"}
    assert resolve_nvsets([nvset("none", a="none"), nvset("pos", 1, a="pos")], NODE1) == {"a": "pos"}


def test_overwrite_mode() -> None:
    sets = [nvset("first", 5, a="first"), nvset("second", 5, a="second"), nvset("low", 1, a="low", b="low")]
    assert resolve_nvsets(sets, NODE1, first_wins=False) == {"a": "first", "b": "low"}
    assert resolve_nvsets(sets, NODE1) == {"a": "second", "b": "low"}


def test_default_marker_removes_a_value() -> None:
    sets = [nvset("high", 10, a="high"), nvset("mid", 5, a="#default"), nvset("low", 1, a="low", b="low")]
    # first wins: "high" sets a, "mid" removes it, "low" sets it again
    assert resolve_nvsets(sets, NODE1) == {"a": "low", "b": "low"}
    assert resolve_nvsets([nvset("only", a="#DEFAULT", b="1")], NODE1) == {"b": "1"}
    # overwrite: processed low to high, "mid" removes "low"'s value, then "high" sets it
    assert resolve_nvsets(sets, NODE1, first_wins=False) == {"a": "high", "b": "low"}


def test_always_first() -> None:
    sets = [
        nvset("other", 100, stonith_enabled="false"),
        nvset("cib-bootstrap-options", 0, stonith_enabled="true"),
    ]
    assert resolve_nvsets(sets, NODE1, always_first="cib-bootstrap-options") == {"stonith_enabled": "true"}
    assert resolve_nvsets(sets, NODE1) == {"stonith_enabled": "false"}
    assert [s.id for s in processing_order(sets, always_first="cib-bootstrap-options")] == [
        "cib-bootstrap-options",
        "other",
    ]


def test_rules_see_time() -> None:
    window = Rule(
        id="maintenance-window",
        expressions=[
            DateExpression(id="d", start="2019-09-23 18:00:00 -05:00", end="2019-09-23 21:00:00 -05:00")
        ],
    )
    sets = [
        nvset("off", 10, maintenance_mode="false"),
        nvset("window", 100, rule=window, maintenance_mode="true"),
    ]
    inside = int(dt.datetime(2019, 9, 24, 0, 0, tzinfo=dt.UTC).timestamp())
    assert resolve_nvsets(sets, RuleContext(now=inside)) == {"maintenance_mode": "true"}
    assert resolve_nvsets(sets, RuleContext(now=inside + 3 * 3600)) == {"maintenance_mode": "false"}
    assert resolve_nvsets(sets, RuleContext()) == {"maintenance_mode": "false"}  # no time: the window fails
    assert next_nvsets_change(sets, RuleContext(now=inside)) == int(
        dt.datetime(2019, 9, 24, 2, 0, 1, tzinfo=dt.UTC).timestamp()
    )
    assert next_nvsets_change(sets[:1], RuleContext(now=inside)) is None


# --- properties -------------------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c", "d"])
plain_sets = st.lists(
    st.builds(
        lambda score, values: (score, values),
        st.one_of(st.none(), st.integers(-3, 3)),
        st.dictionaries(names, st.sampled_from(["1", "2", "x"]), max_size=3),
    ),
    max_size=6,
).map(
    lambda items: [NvSet(id=f"s{i}", score=score, values=values) for i, (score, values) in enumerate(items)]
)


def reference_resolution(sets: list[NvSet]) -> dict[str, str]:
    """Pacemaker's rule restated: the highest score defining a name wins; among equals, the last listed."""
    result: dict[str, str] = {}
    best: dict[str, tuple[int, int]] = {}
    for index, s in enumerate(sets):
        for name, value in s.values.items():
            rank = (s.score or 0, index)
            if name not in best or rank > best[name]:
                best[name], result[name] = rank, value
    return result


@given(plain_sets)
def test_resolution_matches_the_stated_rule(sets: list[NvSet]) -> None:
    assert resolve_nvsets(sets, NODE1) == reference_resolution(sets)


@given(plain_sets)
def test_every_value_comes_from_some_set(sets: list[NvSet]) -> None:
    merged = resolve_nvsets(sets, NODE1)
    assert set(merged) == {name for s in sets for name in s.values}
    for name, value in merged.items():
        assert any(s.values.get(name) == value for s in sets)


@given(plain_sets)
def test_a_set_whose_rule_fails_changes_nothing(sets: list[NvSet]) -> None:
    never = Rule(id="never", boolean_op="or")  # an empty "or" rule never holds
    blocked = [*sets, NvSet(id="blocked", score=1000, rule=never, values={"a": "blocked", "z": "blocked"})]
    assert resolve_nvsets(blocked, NODE1) == resolve_nvsets(sets, NODE1)


@given(plain_sets)
def test_both_modes_agree_when_scores_are_distinct(sets: list[NvSet]) -> None:
    distinct = [NvSet(id=s.id, score=i * 10 - 25, values=s.values) for i, s in enumerate(sets)]
    assert resolve_nvsets(distinct, NODE1) == resolve_nvsets(distinct, NODE1, first_wins=False)


def test_pacemaker_nvpair_date_rules_case() -> None:
    """The sets of the corpus case nvpair-date-rules-1, evaluated at its execution date (noon at -05:00)."""
    noon = RuleContext(now=1569258000)

    def when(*exprs: DateExpression, boolean_op: str = "and") -> Rule:
        return Rule(id="r", boolean_op=boolean_op, expressions=list(exprs))

    def gt(start: str) -> DateExpression:
        return DateExpression(id="d", operation="gt", start=f"2019-09-23 {start} -05:00")

    def lt(end: str) -> DateExpression:
        return DateExpression(id="d", operation="lt", end=f"2019-09-23 {end} -05:00")

    node1_utilization = [
        nvset("nodes-1-utilization", 10, capacity="10"),
        nvset("nodes-1-utilization-rule", 100, rule=when(gt("09:00:00"), lt("17:00:00")), capacity="5"),
    ]
    node3_attributes = [
        nvset("nodes-3", 2, standby="off"),
        nvset("nodes-3-2", 20, rule=when(lt("12:30:00")), standby="on"),
    ]
    rsc2_meta = [
        nvset("rsc2-meta_attributes", 10, target_role="Stopped"),
        nvset("rsc2-meta_attributes-rule", 100, rule=when(gt("05:00:00")), target_role="Started"),
    ]
    rsc_defaults = [
        nvset(
            "rsc_defaults-options",
            rule=when(lt("01:00:00"), gt("22:00:00"), boolean_op="or"),
            is_managed="false",
        )
    ]
    assert resolve_nvsets(node1_utilization, noon) == {"capacity": "5"}
    assert resolve_nvsets(node3_attributes, noon) == {"standby": "on"}  # so rsc3 cannot run on rhel7-3
    assert resolve_nvsets(rsc2_meta, noon) == {"target_role": "Started"}  # so rsc2 starts
    assert resolve_nvsets(rsc_defaults, noon) == {}
    # The cluster must look again when rhel7-3 leaves standby at 12:30 -05:00 (17:30 UTC).
    assert next_nvsets_change(node3_attributes, noon) == 1569258000 + 30 * 60
