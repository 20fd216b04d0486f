"""Rule evaluation: attribute, date, op and rsc expressions, and/or, nesting, next change time."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.cib.model import (
    AttrExpression,
    DateExpression,
    DateSpec,
    Expression,
    OpExpression,
    RscExpression,
    Rule,
)
from hakeeper.cib.rules import (
    RuleContext,
    date_spec_matches,
    evaluate_expression,
    evaluate_rule,
    next_rule_change,
    parse_range,
    rule_problems,
)


def epoch(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp())  # type: ignore[misc]


def attr(attribute: str, operation: str, value: str | None = None, **kw: str) -> AttrExpression:
    return AttrExpression(id="e", attribute=attribute, operation=operation, value=value, **kw)


def rule(*expressions: Expression, boolean_op: str = "and") -> Rule:
    return Rule(id="r", boolean_op=boolean_op, expressions=list(expressions))


def on_node(**attrs: str) -> RuleContext:
    return RuleContext(node_attrs=attrs)


def holds(expr: Expression, ctx: RuleContext) -> bool:
    return evaluate_rule(rule(expr), ctx)


# --- attribute expressions: Pacemaker's scheduler corpus cases --------------------------------------

# (case name, node's test_val, operation, type, rule value, does the rule match?) -- from the rule-dbl-*
# and rule-int-* inputs and their expected transitions (a match bans the resource from the node).
CORPUS = [
    ("rule-dbl-as-auto-number-match", "10.4", "gt", None, "3.4", True),
    ("rule-dbl-as-auto-number-no-match", "3.4", "gt", None, "10.6", False),
    ("rule-dbl-as-integer-no-match", "3.4", "eq", "integer", "4.6", False),
    ("rule-dbl-as-number-match", "3.4", "eq", "number", "3.4", True),
    ("rule-dbl-as-number-no-match", "3.4", "eq", "number", "3.6", False),
    ("rule-dbl-parse-fail-default-str-match", "as2.0", "gt", "number", "as10.0", True),
    ("rule-dbl-parse-fail-default-str-no-match", "as10.0", "gt", "number", "as2.0", False),
    ("rule-int-as-auto-integer-match", "10", "gt", None, "3", True),
    ("rule-int-as-auto-integer-no-match", "3", "gt", None, "10", False),
    ("rule-int-as-number-match", "3", "eq", "number", "3", True),
    ("rule-int-as-number-no-match", "3", "eq", "number", "3.6", False),
    ("rule-int-parse-fail-default-str-match", "as2", "gt", "integer", "as10", True),
    ("rule-int-parse-fail-default-str-no-match", "as10", "gt", "integer", "as2", False),
]


@pytest.mark.parametrize(
    ("case", "actual", "op", "kind", "value", "expected"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_pacemaker_corpus_comparisons(
    case: str, actual: str, op: str, kind: str | None, value: str, expected: bool
) -> None:
    assert (
        holds(attr("test_val", op, value, **({"type": kind} if kind else {})), on_node(test_val=actual))
        is expected
    )


@pytest.mark.parametrize(
    ("actual", "op", "kind", "value", "expected"),
    [
        # auto type: eq/ne are string comparisons, orderings numeric
        ("3.0", "eq", None, "3", False),
        ("3.0", "gte", None, "3", True),
        ("10", "gt", None, "9", True),
        ("10", "gt", "string", "9", False),
        # strings ignore letter case, as Pacemaker's strcasecmp
        ("Node1", "eq", None, "node1", True),
        ("abc", "lt", "string", "ABD", True),
        # integer reads the leading integer; number reads floats and exponents
        ("3.9", "eq", "integer", "3", True),
        ("  42", "eq", "integer", "42", True),
        ("1e3", "eq", "number", "1000", True),
        ("-0.5", "lt", "number", "0", True),
        ("007", "eq", "integer", "7", True),
        ("007", "eq", "string", "7", False),
        # version
        ("1.10", "gt", "version", "1.9", True),
        ("2.0", "eq", "version", "2", True),
        ("1.2.3", "lte", "version", "1.2.3", True),
        # case-insensitive operation and type names
        ("5", "GT", "Integer", "4", True),
        # unknown type or operation: not matching (validation reports them)
        ("5", "gt", "float", "4", False),
        ("5", "bigger", None, "4", False),
    ],
)
def test_attribute_comparisons(actual: str, op: str, kind: str | None, value: str, expected: bool) -> None:
    assert holds(attr("a", op, value, **({"type": kind} if kind else {})), on_node(a=actual)) is expected


@pytest.mark.parametrize(
    ("op", "expected"),
    [("eq", False), ("ne", True), ("lt", False), ("lte", False), ("gt", False), ("gte", False)],
)
def test_missing_attribute(op: str, expected: bool) -> None:
    assert holds(attr("absent", op, "1"), on_node(other="1")) is expected


def test_defined_and_not_defined() -> None:
    ctx = on_node(**{"#uname": "node1", "empty": ""})
    assert holds(attr("#uname", "defined"), ctx)
    assert holds(attr("empty", "defined"), ctx)  # an empty value is still defined
    assert not holds(attr("gpu", "defined"), ctx)
    assert holds(attr("gpu", "not_defined"), ctx)


def test_value_source_param_and_meta() -> None:
    ctx = RuleContext(node_attrs={"fake": "200", "site": "b"}, params={"fake": "100"}, meta={"home": "b"})
    assert holds(attr("fake", "gt", "fake", value_source="param"), ctx)  # 200 > 100
    assert not holds(attr("fake", "lt", "fake", value_source="param"), ctx)
    assert holds(attr("site", "eq", "home", value_source="meta"), ctx)
    # A parameter the resource does not have: only "ne" holds.
    assert not holds(attr("fake", "eq", "nothing", value_source="param"), ctx)
    assert holds(attr("fake", "ne", "nothing", value_source="param"), ctx)
    assert not holds(attr("fake", "eq", "fake", value_source="bogus"), ctx)


# --- and / or / nesting -----------------------------------------------------------------------------


def test_and_or_and_nesting() -> None:
    ctx = on_node(**{"#uname": "n1", "rack": "2"})
    yes, no = attr("#uname", "eq", "n1"), attr("rack", "eq", "3")
    assert evaluate_rule(rule(yes, yes), ctx)
    assert not evaluate_rule(rule(yes, no), ctx)
    assert evaluate_rule(rule(no, yes, boolean_op="or"), ctx)
    assert not evaluate_rule(rule(no, no, boolean_op="or"), ctx)
    assert evaluate_rule(rule(yes, rule(no, yes, boolean_op="or")), ctx)
    assert not evaluate_rule(rule(yes, rule(no, rule(no), boolean_op="or")), ctx)
    assert evaluate_rule(rule(no, yes, boolean_op="OR"), ctx)  # case-insensitive
    assert not evaluate_rule(rule(no, yes, boolean_op="xor"), ctx)  # anything but "or" is "and"


def test_empty_rules_hold_for_and_fail_for_or() -> None:
    assert evaluate_rule(rule(), RuleContext())
    assert not evaluate_rule(rule(boolean_op="or"), RuleContext())


def test_rule_role_is_left_to_the_caller() -> None:
    r = Rule(id="r", role="Promoted", expressions=[attr("x", "defined")])
    assert evaluate_rule(r, RuleContext(node_attrs={"x": "1"}, role="Unpromoted"))


# --- op and rsc expressions -------------------------------------------------------------------------


def test_op_expression() -> None:
    monitor = OpExpression(id="o", name="monitor")
    monitor_10s = OpExpression(id="o", name="monitor", interval=10_000)
    ctx = RuleContext(op_name="monitor", op_interval_ms=10_000)
    assert holds(monitor, ctx)
    assert holds(monitor_10s, ctx)
    assert not holds(monitor_10s, RuleContext(op_name="monitor", op_interval_ms=0))
    assert not holds(monitor, RuleContext(op_name="start", op_interval_ms=0))
    assert not holds(monitor, RuleContext())  # no operation in context


def test_rsc_expression() -> None:
    ctx = RuleContext(rsc_klass="ocf", rsc_provider="pacemaker", rsc_type="Dummy")
    assert holds(RscExpression(id="x", klass="ocf", provider="pacemaker", type="Dummy"), ctx)
    assert holds(RscExpression(id="x", klass="ocf", type="Dummy"), ctx)
    assert holds(RscExpression(id="x"), ctx)  # constrains nothing
    assert not holds(RscExpression(id="x", klass="ocf", provider="heartbeat"), ctx)
    assert not holds(RscExpression(id="x", klass="systemd"), ctx)
    assert not holds(RscExpression(id="x", klass="ocf"), RuleContext())  # no resource in context


# --- date expressions -------------------------------------------------------------------------------


def date(operation: str = "in_range", **kw: object) -> DateExpression:
    return DateExpression(id="d", operation=operation, **kw)  # type: ignore[arg-type]


def at(*when: int) -> RuleContext:
    return RuleContext(now=epoch(*when))


def test_in_range_start_and_end_are_inclusive() -> None:
    window = date(start="2024-01-31 10:00:00Z", end="2024-01-31 12:00:00Z")
    assert not holds(window, at(2024, 1, 31, 9, 59, 59))
    assert holds(window, at(2024, 1, 31, 10))
    assert holds(window, at(2024, 1, 31, 12))
    assert not holds(window, at(2024, 1, 31, 12, 0, 1))


def test_in_range_open_ended() -> None:
    assert holds(date(end="2005-001"), at(2004, 6, 1))
    assert not holds(date(end="2005-001"), at(2005, 1, 1, 0, 0, 1))
    assert holds(date(start="2005-001"), at(2030, 1, 1))


def test_in_range_with_a_duration_uses_calendar_months() -> None:
    month = date(start="2024-01-31", duration=DateSpec(fields={"months": "1"}))
    assert holds(month, at(2024, 2, 29))  # 2024-01-31 + 1 month = 2024-02-29 (month end)
    assert not holds(month, at(2024, 2, 29, 0, 0, 1))
    both = date(start="2024-01-01", end="2024-01-02", duration=DateSpec(fields={"years": "1"}))
    assert not holds(both, at(2024, 6, 1))  # an explicit end wins over the duration


def test_gt_and_lt_are_strict() -> None:
    start = "2019-09-23 09:00:00 -05:00"
    assert not holds(date("gt", start=start), at(2019, 9, 23, 14))
    assert holds(date("gt", start=start), at(2019, 9, 23, 14, 0, 1))
    assert holds(date("lt", end=start), at(2019, 9, 23, 13, 59, 59))
    assert not holds(date("lt", end=start), at(2019, 9, 23, 14))


def test_dates_without_offset_use_the_context_offset() -> None:
    window = date(start="2024-01-31 10:00", end="2024-01-31 11:00")
    assert holds(window, RuleContext(now=epoch(2024, 1, 31, 9, 30), utc_offset_s=3600))
    assert not holds(window, RuleContext(now=epoch(2024, 1, 31, 9, 30)))


@pytest.mark.parametrize(
    "expr",
    [
        date(start="yesterday", end="2030-01-01"),
        date("gt"),
        date("lt", start="2020-01-01"),
        date(),
        date("between", start="2020-01-01"),
        date(start="2020-01-01", duration=DateSpec(fields={"days": "many"})),
        date("date_spec"),
    ],
)
def test_invalid_date_expressions_do_not_match(expr: DateExpression) -> None:
    assert not holds(expr, at(2024, 1, 1))


def test_date_expressions_without_a_time_do_not_match() -> None:
    assert not holds(date(start="2000-01-01"), RuleContext())
    assert not holds(date("date_spec", spec=DateSpec(fields={})), RuleContext())


def spec(**fields: str) -> DateExpression:
    return date("date_spec", spec=DateSpec(fields=fields))


def test_date_spec_office_hours() -> None:
    office = spec(hours="9-16", weekdays="1-5")
    assert holds(office, at(2024, 1, 31, 9))  # a Wednesday
    assert holds(office, at(2024, 1, 31, 16, 59, 59))  # hours="9-16" includes all of 16:xx
    assert not holds(office, at(2024, 1, 31, 17))
    assert not holds(office, at(2024, 1, 31, 8, 59, 59))
    assert not holds(office, at(2024, 2, 3, 10))  # Saturday


@pytest.mark.parametrize(
    ("fields", "when", "expected"),
    [
        ({"years": "2024"}, (2024, 6, 1), True),
        ({"years": "2020-2023"}, (2024, 6, 1), False),
        ({"years": "2025-"}, (2024, 6, 1), False),
        ({"years": "-2024"}, (2024, 6, 1), True),
        ({"months": "12", "monthdays": "24-26"}, (2024, 12, 25), True),
        ({"months": "12", "monthdays": "24-26"}, (2024, 12, 27), False),
        ({"yeardays": "366"}, (2024, 12, 31), True),
        ({"yeardays": "366"}, (2023, 12, 31), False),
        ({"weeks": "1", "weekyears": "2025"}, (2024, 12, 30), True),  # ISO week 1 of 2025 starts in 2024
        ({"weekdays": "6-7"}, (2024, 2, 4), True),  # Sunday
        ({"minutes": "0-14", "seconds": "30"}, (2024, 2, 4, 3, 14, 30), True),
        ({"minutes": "0-14", "seconds": "30"}, (2024, 2, 4, 3, 15, 30), False),
        ({"moon": "4"}, (2024, 2, 4), True),  # moon is ignored
        ({"hours": "nine"}, (2024, 2, 4), False),  # an invalid range never matches
        ({}, (2024, 2, 4), True),
    ],
)
def test_date_spec_fields(fields: dict[str, str], when: tuple[int, ...], expected: bool) -> None:
    assert holds(spec(**fields), at(*when)) is expected


def test_date_spec_reads_fields_at_the_context_offset() -> None:
    noon = DateSpec(fields={"hours": "12"})
    assert date_spec_matches(noon, epoch(2024, 1, 1, 12))
    assert date_spec_matches(noon, epoch(2024, 1, 1, 17), utc_offset_s=-5 * 3600)


@pytest.mark.parametrize(
    ("text", "bounds"),
    [("9", (9, 9)), ("9-16", (9, 16)), ("9-", (9, None)), ("-16", (None, 16)), (" 1 - 5 ", (1, 5))],
)
def test_parse_range(text: str, bounds: tuple[int | None, int | None]) -> None:
    assert parse_range(text) == bounds


@pytest.mark.parametrize("text", ["", "-", "a-b", "1-2-3", "1,3", "1 2"])
def test_parse_range_rejects(text: str) -> None:
    assert parse_range(text) is None


# --- next_rule_change -------------------------------------------------------------------------------


def test_next_change_of_ranges() -> None:
    window = rule(date(start="2024-01-31 10:00:00Z", end="2024-01-31 12:00:00Z"))
    assert next_rule_change(window, at(2024, 1, 31, 9)) == epoch(2024, 1, 31, 10)
    assert next_rule_change(window, at(2024, 1, 31, 11)) == epoch(2024, 1, 31, 12, 0, 1)
    assert next_rule_change(window, at(2024, 1, 31, 13)) is None
    gt = rule(date("gt", start="2024-01-31Z"))
    assert next_rule_change(gt, at(2024, 1, 30)) == epoch(2024, 1, 31, 0, 0, 1)
    lt = rule(date("lt", end="2024-01-31Z"))
    assert next_rule_change(lt, at(2024, 1, 30)) == epoch(2024, 1, 31)
    assert next_rule_change(lt, at(2024, 2, 1)) is None


def test_next_change_takes_the_earliest_of_nested_dates_and_ignores_attributes() -> None:
    r = rule(
        attr("#uname", "eq", "n1"),
        rule(date("gt", start="2024-03-01Z"), date("lt", end="2024-02-01Z"), boolean_op="or"),
    )
    assert next_rule_change(r, at(2024, 1, 1)) == epoch(2024, 2, 1)
    assert next_rule_change(rule(attr("a", "defined")), at(2024, 1, 1)) is None
    assert next_rule_change(r, RuleContext()) is None


def test_next_change_of_date_specs() -> None:
    office = rule(spec(hours="9-16", weekdays="1-5"))
    assert next_rule_change(office, at(2024, 1, 31, 10, 30)) == epoch(2024, 1, 31, 17)
    assert next_rule_change(office, at(2024, 2, 2, 17)) == epoch(2024, 2, 5, 9)  # Friday evening → Monday
    december = rule(spec(months="12"))
    assert next_rule_change(december, at(2024, 6, 15)) == epoch(2024, 12, 1)
    assert next_rule_change(december, at(2024, 12, 15)) == epoch(2025, 1, 1)
    assert next_rule_change(rule(spec(moon="1")), at(2024, 1, 1)) is None


# --- properties -------------------------------------------------------------------------------------

values = st.one_of(st.integers(-1000, 1000).map(str), st.sampled_from(["", "a", "B", "1.5", "x1", "-0"]))
node_attrs = st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3)
ops = st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte", "defined", "not_defined"])
types = st.sampled_from([None, "string", "integer", "number", "version"])


@st.composite
def attr_expressions(draw: st.DrawFn) -> AttrExpression:
    kind = draw(types)
    return attr(
        draw(st.sampled_from(["a", "b", "c"])), draw(ops), draw(values), **({"type": kind} if kind else {})
    )


@given(st.lists(attr_expressions(), max_size=5), node_attrs)
def test_and_is_all_and_or_is_any(exprs: list[AttrExpression], attrs: dict[str, str]) -> None:
    ctx = RuleContext(node_attrs=attrs)
    results = [evaluate_expression(e, ctx) for e in exprs]
    assert evaluate_rule(rule(*exprs), ctx) is all(results)
    assert evaluate_rule(rule(*exprs, boolean_op="or"), ctx) is any(results)


@given(st.lists(attr_expressions(), min_size=1, max_size=4), node_attrs)
def test_nesting_a_rule_does_not_change_its_result(
    exprs: list[AttrExpression], attrs: dict[str, str]
) -> None:
    ctx = RuleContext(node_attrs=attrs)
    for op in ("and", "or"):
        inner = rule(*exprs, boolean_op=op)
        assert evaluate_rule(rule(inner), ctx) is evaluate_rule(inner, ctx)


numbers = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
)


@given(numbers, numbers, st.sampled_from([None, "number"]))
def test_lt_and_gte_are_complements_for_numbers(actual: str, value: str, kind: str | None) -> None:
    ctx = on_node(a=actual)
    extra = {"type": kind} if kind else {}
    assert holds(attr("a", "lt", value, **extra), ctx) is not holds(attr("a", "gte", value, **extra), ctx)
    assert holds(attr("a", "gt", value, **extra), ctx) is not holds(attr("a", "lte", value, **extra), ctx)


@given(st.integers(-(10**12), 10**12), st.integers(-(10**12), 10**12))
def test_integer_comparisons_agree_with_python(x: int, y: int) -> None:
    ctx = on_node(a=str(x))
    for op, expected in (("lt", x < y), ("lte", x <= y), ("gt", x > y), ("gte", x >= y), ("eq", x == y)):
        assert holds(attr("a", op, str(y), type="integer"), ctx) is expected


@given(node_attrs, st.sampled_from(["a", "b", "c"]))
def test_defined_and_not_defined_are_complements(attrs: dict[str, str], name: str) -> None:
    ctx = RuleContext(node_attrs=attrs)
    assert holds(attr(name, "defined"), ctx) is not holds(attr(name, "not_defined"), ctx)


@given(attr_expressions(), node_attrs)
def test_eq_and_ne_are_complements(expr: AttrExpression, attrs: dict[str, str]) -> None:
    ctx = RuleContext(node_attrs=attrs)
    eq = AttrExpression(id="e", attribute=expr.attribute, operation="eq", value=expr.value, type=expr.type)
    ne = AttrExpression(id="e", attribute=expr.attribute, operation="ne", value=expr.value, type=expr.type)
    assert holds(eq, ctx) is not holds(ne, ctx)


# Times from 2023 to 2026, and date expressions around them.
times = st.integers(epoch(2023, 1, 1), epoch(2026, 1, 1))
spec_fields = st.dictionaries(
    st.sampled_from(["years", "months", "monthdays", "hours", "minutes", "weekdays", "yeardays", "weeks"]),
    st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda r: f"{min(r)}-{max(r)}"),
    min_size=1,
    max_size=3,
)
iso = st.integers(epoch(2023, 1, 1), epoch(2026, 1, 1)).map(
    lambda t: dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
)
date_exprs = st.one_of(
    st.builds(lambda s, e: date(start=s, end=e), iso, iso),
    st.builds(lambda s: date(start=s), iso),
    st.builds(lambda e: date(end=e), iso),
    st.builds(lambda s: date("gt", start=s), iso),
    st.builds(lambda e: date("lt", end=e), iso),
    st.builds(
        lambda s, d: date(start=s, duration=DateSpec(fields={"days": str(d)})), iso, st.integers(0, 90)
    ),
    st.builds(lambda f: date("date_spec", spec=DateSpec(fields=f)), spec_fields),
)


@settings(max_examples=150)
@given(date_exprs, times, st.data())
def test_a_date_rule_does_not_change_before_its_next_change(
    expr: DateExpression, now: int, data: st.DataObject
) -> None:
    r = rule(expr)
    result = evaluate_rule(r, RuleContext(now=now))
    change = next_rule_change(r, RuleContext(now=now))
    if change is None:
        later = data.draw(st.integers(now, now + 10 * 366 * 86_400), label="later")
        assert evaluate_rule(r, RuleContext(now=later)) is result
        return
    assert change > now
    before = data.draw(st.integers(now, change - 1), label="before")
    assert evaluate_rule(r, RuleContext(now=before)) is result
    if expr.operation != "date_spec":
        assert evaluate_rule(r, RuleContext(now=change)) is not result  # exact for ranges


# --- rule_problems ----------------------------------------------------------------------------------


def test_a_sound_rule_has_no_problems() -> None:
    r = rule(
        attr("#uname", "eq", "n1"),
        attr("gpu", "defined"),
        rule(
            spec(hours="9-16", weekdays="1-5"),
            date(start="2024-01-01", duration=DateSpec(fields={"months": "1"})),
        ),
        OpExpression(id="o", name="monitor"),
        RscExpression(id="x", klass="ocf"),
    )
    assert rule_problems(r) == []


@pytest.mark.parametrize(
    ("expr", "place", "message"),
    [
        (
            attr("a", "bigger", "1"),
            "expressions[0].operation",
            '"bigger" is not a comparison (use lt, gt, lte',
        ),
        (attr("a", "eq"), "expressions[0].value", '"eq" needs a value to compare a with'),
        (
            attr("a", "eq", "1", type="float"),
            "expressions[0].type",
            '"float" is not a type (use string, integer',
        ),
        (
            attr("a", "eq", "1", value_source="env"),
            "expressions[0].value_source",
            '"env" is not a value source',
        ),
        (
            date(start="2024-02-30"),
            "expressions[0].start",
            '"2024-02-30" is not a date and time: 2024-02 has no',
        ),
        (date("gt"), "expressions[0].start", "gt needs a start date"),
        (date("lt", start="2024-01-01"), "expressions[0].end", "lt needs an end date"),
        (date(), "expressions[0]", "in_range needs a start, an end, or a start and a duration"),
        (date("before", end="2024-01-01"), "expressions[0].operation", '"before" is not a date operation'),
        (date("date_spec"), "expressions[0].spec", "a date_spec expression needs a date_spec"),
        (
            spec(hours="9 to 5"),
            "expressions[0].spec.hours",
            '"9 to 5" is not a range (use a number such as 9',
        ),
        (spec(moon="1"), "expressions[0].spec.moon", "moon phases are not supported"),
        (spec(hours="17-9"), "expressions[0].spec.hours", '"17-9" is an empty range, never true'),
        (spec(fortnights="1"), "expressions[0].spec.fortnights", '"fortnights" is not a date_spec field'),
        (
            date(start="2024-01-01", duration=DateSpec(fields={"days": "1.5"})),
            "expressions[0].duration.days",
            '"1.5" is not a whole number of days',
        ),
        (OpExpression(id="o", name=""), "expressions[0].name", "an op expression needs an operation name"),
        (
            rule(attr("a", "eq", "1"), boolean_op="xor"),
            "expressions[0].boolean_op",
            '"xor" is not a boolean operator',
        ),
        (rule(), "expressions[0]", "a rule needs at least one expression"),
    ],
)
def test_rule_problems_name_the_place_and_say_what_to_do(expr: Expression, place: str, message: str) -> None:
    problems = rule_problems(rule(expr))
    assert len(problems) == 1, problems
    assert problems[0][0] == place
    assert problems[0][1].startswith(message)
