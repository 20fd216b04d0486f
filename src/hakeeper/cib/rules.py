"""Rule evaluation: does a ``Rule`` hold for a node, a resource, an operation, at a time?

Semantics follow Pacemaker 2.1 ("Pacemaker Explained", chapter "Rules"), checked against the scheduler
regression corpus (``rule-*`` cases). Evaluation is a pure function of the rule and a ``RuleContext``; the
time is passed in, never read from a clock.

What the caller owns:

- **Rule roles.** A location rule's ``role`` restricts which resource role the constraint applies to; that
  is a property of the constraint, so ``evaluate_rule`` ignores ``Rule.role`` and the caller (the policy
  engine) applies it. ``RuleContext.role`` is carried for callers that want it.
- **Built-in node attributes** (``#uname``, ``#id``, ``#kind``, ``#is_dc``, ``#cluster-name``,
  ``#site-name``, ``#role``) are looked up in ``node_attrs`` like any other; the caller puts them there.
- **Scores.** ``Rule.score``/``score_attribute`` are the caller's business too.

Pacemaker behaviours kept on purpose (operators' configurations depend on them):

- A rule without expressions holds for ``and`` and fails for ``or`` (Pacemaker logs an error but still
  returns that); any ``boolean_op`` other than ``or`` means ``and``.
- Comparisons of type ``string`` ignore letter case (Pacemaker uses ``strcasecmp``).
- Without a ``type``: ``lt``/``lte``/``gt``/``gte`` compare as ``number`` when either side contains a
  ``.`` and as ``integer`` otherwise; ``eq``/``ne`` compare as strings. So ``10 gt 3`` holds, but
  ``3.0 eq 3`` does not.
- ``integer`` and ``number`` read the leading number of a value (``"3.4"`` is the integer 3) and fall back
  to a string comparison when a side has no leading number (``"as2" gt "as10"`` holds).
- A missing value (undefined attribute, or ``value_source`` naming an absent parameter) makes ``eq``
  false, ``ne`` true and the ordering comparisons false.

What we do differently, and why:

- Invalid input (an unknown ``operation``, ``type`` or ``value_source``, an unparsable date, an invalid
  ``date_spec`` range) makes that expression **not match**; validation reports it to the operator.
- Date expressions evaluated without a time (``RuleContext.now is None``) **do not match**: we never guess
  the time.
- ``date_spec``'s ``moon`` field is **ignored** (it constrains nothing): Pacemaker deprecated it in 2.1.6
  and removed it in 3.0, and its nethack-style approximation is not worth reproducing.
- ``date_spec`` fields and dates without a UTC offset use ``RuleContext.utc_offset_s`` (UTC by default);
  Pacemaker uses the host's local zone, which a pure function cannot know.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Final

from hakeeper.cib.model import (
    AttrExpression,
    DateExpression,
    DateSpec,
    Expression,
    OpExpression,
    RscExpression,
    Rule,
)
from hakeeper.cib.values import add_calendar, calendar_fields, compare_versions, parse_datetime

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Everything a rule can look at.

    ``now`` is epoch seconds (``None``: date expressions do not match). ``rsc_*`` describe the resource's
    agent (for ``rsc_expression``), ``op_*`` the operation (for ``op_expression``), ``params``/``meta`` the
    resource's instance and meta attributes (for ``value_source="param"``/``"meta"``). ``role`` is not
    used by ``evaluate_rule`` (see the module docstring). ``utc_offset_s`` is the offset at which
    ``date_spec`` fields are read and dates without an offset are interpreted.
    """

    node_attrs: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    now: int | None = None
    rsc_klass: str | None = None
    rsc_provider: str | None = None
    rsc_type: str | None = None
    op_name: str | None = None
    op_interval_ms: int | None = None
    params: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    meta: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    role: str | None = None
    utc_offset_s: int = 0


# --- rules ------------------------------------------------------------------------------------------


def evaluate_rule(rule: Rule, ctx: RuleContext) -> bool:
    """Whether ``rule`` holds in ``ctx`` (``and``/``or`` of its expressions, short-circuiting)."""
    if rule.boolean_op == "and" or rule.boolean_op.lower() != "or":
        return all(evaluate_expression(e, ctx) for e in rule.expressions)
    return any(evaluate_expression(e, ctx) for e in rule.expressions)


def evaluate_expression(expr: Expression, ctx: RuleContext) -> bool:
    """Whether one expression (or nested rule) holds in ``ctx``."""
    if isinstance(expr, AttrExpression):
        return _eval_attr(expr, ctx)
    if isinstance(expr, Rule):
        return evaluate_rule(expr, ctx)
    if isinstance(expr, DateExpression):
        return _eval_date(expr, ctx)
    if isinstance(expr, OpExpression):
        return _eval_op(expr, ctx)
    if isinstance(expr, RscExpression):
        return _eval_rsc(expr, ctx)
    return False


# --- attribute expressions --------------------------------------------------------------------------

_ORDERINGS: Final = frozenset({"lt", "lte", "gt", "gte"})
_COMPARISONS: Final = _ORDERINGS | {"eq", "ne"}
_TYPES: Final = frozenset({"string", "integer", "number", "version"})
# strtoll/strtod-like prefixes: leading blanks, a sign, digits (and for numbers a fraction and exponent).
_INT_PREFIX_RE: Final = re.compile(r"\s*[+-]?[0-9]+")
_NUM_PREFIX_RE: Final = re.compile(
    r"\s*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)", re.IGNORECASE
)
_INT64_MAX: Final = 2**63 - 1


@lru_cache(maxsize=4096)
def _leading_int(text: str) -> int | None:
    m = _INT_PREFIX_RE.match(text)
    if m is None:
        return None
    n = int(m.group())
    return n if -_INT64_MAX - 1 <= n <= _INT64_MAX else None  # overflow: compared as strings


@lru_cache(maxsize=4096)
def _leading_number(text: str) -> float | None:
    m = _NUM_PREFIX_RE.match(text)
    return float(m.group()) if m else None


def _cmp_strings(a: str, b: str) -> int:
    la, lb = a.lower(), b.lower()
    return (la > lb) - (la < lb)


def _compare(actual: str, reference: str, kind: str) -> int:
    if kind == "integer":
        ia, ib = _leading_int(actual), _leading_int(reference)
        if ia is not None and ib is not None:
            return (ia > ib) - (ia < ib)
    elif kind == "number":
        fa, fb = _leading_number(actual), _leading_number(reference)
        if fa is not None and fb is not None:
            return (fa > fb) - (fa < fb)
    elif kind == "version":
        return compare_versions(actual, reference)
    return _cmp_strings(actual, reference)


def _comparison_type(declared: str | None, op: str, actual: str, reference: str) -> str | None:
    if declared is not None:
        kind = declared.lower()
        return kind if kind in _TYPES else None
    if op in _ORDERINGS:
        return "number" if "." in actual or "." in reference else "integer"
    return "string"


def _reference_value(expr: AttrExpression, ctx: RuleContext) -> tuple[bool, str | None]:
    """``(valid, value)``: the value to compare with, looked up per ``value_source``."""
    source = expr.value_source.lower()
    if source == "literal":
        return True, expr.value
    if source in ("param", "meta"):
        table = ctx.params if source == "param" else ctx.meta
        return True, None if expr.value is None else table.get(expr.value)
    return False, None


def _eval_attr(expr: AttrExpression, ctx: RuleContext) -> bool:
    op = expr.operation.lower()
    actual = ctx.node_attrs.get(expr.attribute)
    if op == "defined":
        return actual is not None
    if op == "not_defined":
        return actual is None
    if op not in _COMPARISONS:
        return False
    valid, reference = _reference_value(expr, ctx)
    if not valid:
        return False
    if actual is None or reference is None:
        # Pacemaker orders "no value" below any value: only "ne" can hold (and "eq" when both lack one).
        both_missing = actual is None and reference is None
        return (op == "eq" and both_missing) or (op == "ne" and not both_missing)
    kind = _comparison_type(expr.type, op, actual, reference)
    if kind is None:
        return False
    cmp = _compare(actual, reference, kind)
    return cmp in _ACCEPTED[op]


# Which comparison results (-1, 0, 1) satisfy each operation.
_ACCEPTED: Final[dict[str, frozenset[int]]] = {
    "eq": frozenset({0}),
    "ne": frozenset({-1, 1}),
    "lt": frozenset({-1}),
    "lte": frozenset({-1, 0}),
    "gt": frozenset({1}),
    "gte": frozenset({0, 1}),
}


# --- op and rsc expressions -------------------------------------------------------------------------


def _eval_op(expr: OpExpression, ctx: RuleContext) -> bool:
    if ctx.op_name is None or expr.name != ctx.op_name:
        return False
    return expr.interval is None or expr.interval == ctx.op_interval_ms


def _eval_rsc(expr: RscExpression, ctx: RuleContext) -> bool:
    return (
        (expr.klass is None or expr.klass == ctx.rsc_klass)
        and (expr.provider is None or expr.provider == ctx.rsc_provider)
        and (expr.type is None or expr.type == ctx.rsc_type)
    )


# --- date expressions -------------------------------------------------------------------------------

_DURATION_FIELDS: Final = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")
_SPEC_FIELDS: Final = (
    "years",
    "months",
    "monthdays",
    "hours",
    "minutes",
    "seconds",
    "yeardays",
    "weekyears",
    "weeks",
    "weekdays",
)
_RANGE_RE: Final = re.compile(r"\s*([0-9]+)?\s*(-)?\s*([0-9]+)?\s*")
_WHOLE_RE: Final = re.compile(r"\s*[+-]?[0-9]+\s*")


def _time_or_none(text: str | None, offset: int) -> int | None:
    if text is None:
        return None
    try:
        return parse_datetime(text, default_offset_s=offset)
    except ValueError:
        return None


def _duration_end(start: int, duration: DateSpec) -> int | None:
    amounts: dict[str, int] = {}
    for name in _DURATION_FIELDS:
        text = duration.fields.get(name)
        if text is not None:
            if not _WHOLE_RE.fullmatch(text):
                return None
            amounts[name] = int(text)
    return add_calendar(start, **amounts)


def date_bounds(expr: DateExpression, utc_offset_s: int = 0) -> tuple[bool, int | None, int | None]:
    """``(valid, start, end)`` of a date expression in epoch seconds, ``end`` inclusive.

    ``end`` comes from ``end`` or else from ``start`` plus ``duration``. ``valid`` is false when a given
    date does not parse, when the duration is invalid, or when the operation lacks the bound it needs.
    """
    start = _time_or_none(expr.start, utc_offset_s)
    end = _time_or_none(expr.end, utc_offset_s)
    if (expr.start is not None and start is None) or (expr.end is not None and end is None):
        return False, None, None
    if end is None and start is not None and expr.duration is not None:
        end = _duration_end(start, expr.duration)
        if end is None:
            return False, None, None
    op = expr.operation.lower()
    needed = {
        "in_range": start is not None or end is not None,
        "gt": start is not None,
        "lt": end is not None,
    }
    return needed.get(op, False), start, end


def _eval_date(expr: DateExpression, ctx: RuleContext) -> bool:
    now = ctx.now
    if now is None:
        return False
    op = expr.operation.lower()
    if op == "date_spec":
        return expr.spec is not None and date_spec_matches(expr.spec, now, ctx.utc_offset_s)
    valid, start, end = date_bounds(expr, ctx.utc_offset_s)
    if not valid:
        return False
    if op == "gt":
        return start is not None and now > start
    if op == "lt":
        return end is not None and now < end
    return (start is None or now >= start) and (end is None or now <= end)


@lru_cache(maxsize=1024)
def parse_range(text: str) -> tuple[int | None, int | None] | None:
    """A ``date_spec`` range: ``"9"``, ``"9-16"``, ``"9-"`` or ``"-16"`` (inclusive); ``None`` if invalid."""
    m = _RANGE_RE.fullmatch(text)
    if m is None or (m[1] is None and m[3] is None):
        return None
    low = int(m[1]) if m[1] is not None else None
    high = int(m[3]) if m[3] is not None else None
    if m[2] is None:  # a single value
        return (low, low) if m[3] is None else None
    return (low, high)


@lru_cache(maxsize=4096)
def _fields_at(local_epoch_s: int) -> Mapping[str, int]:
    return calendar_fields(local_epoch_s)


def date_spec_matches(spec: DateSpec, now: int, utc_offset_s: int = 0) -> bool:
    """Whether every field of ``spec`` holds at ``now``; an invalid range makes the spec not match.

    Absent fields, unknown names and ``moon`` constrain nothing.
    """
    fields = _fields_at(now + utc_offset_s)
    for name, text in spec.fields.items():
        value = fields.get(name)
        if value is None:
            continue  # "moon" and unknown names: see the module docstring
        bounds = parse_range(text)
        if bounds is None:
            return False
        low, high = bounds
        if (low is not None and value < low) or (high is not None and value > high):
            return False
    return True


# --- when may a rule's result change? ---------------------------------------------------------------

_SPEC_STEP_LIMIT: Final = 800


def next_rule_change(rule: Rule, ctx: RuleContext) -> int | None:
    """The next epoch second after ``ctx.now`` at which ``rule``'s result may change, or ``None``.

    Best effort and safe: the answer is never later than the first real change of any date expression in
    the rule, but may be earlier (a re-check then finds nothing new). Only time makes a rule change here;
    attribute changes are events the caller sees anyway. ``None`` when ``ctx.now`` is ``None`` or no date
    expression will change again (e.g. a range already over). All date expressions count, even those a
    short-circuit would skip. As Pacemaker: ``in_range`` changes at ``start`` and at ``end + 1``, ``gt`` at
    ``start + 1``, ``lt`` at ``end``. A ``date_spec`` is stepped over the boundaries of its finest field
    (second, minute, hour, day, month or year) until its result flips, up to 800 steps (then that step is
    returned, which is still safe).
    """
    now = ctx.now
    if now is None:
        return None
    candidates = [t for e in _date_expressions(rule) if (t := _next_date_change(e, now, ctx)) is not None]
    return min(candidates, default=None)


def _date_expressions(rule: Rule) -> Iterator[DateExpression]:
    for expr in rule.expressions:
        if isinstance(expr, DateExpression):
            yield expr
        elif isinstance(expr, Rule):
            yield from _date_expressions(expr)


def _next_date_change(expr: DateExpression, now: int, ctx: RuleContext) -> int | None:
    op = expr.operation.lower()
    if op == "date_spec":
        if expr.spec is None:
            return None
        return _next_spec_change(expr.spec, now, ctx.utc_offset_s)
    valid, start, end = date_bounds(expr, ctx.utc_offset_s)
    if not valid:
        return None
    if op == "gt":
        changes = [start + 1] if start is not None else []
    elif op == "lt":
        changes = [end] if end is not None else []
    elif start is not None and end is not None and end < start:
        changes = []  # an empty range never holds
    else:
        changes = [t for t in (start, None if end is None else end + 1) if t is not None]
    return min((t for t in changes if t > now), default=None)


def _spec_granularity(spec: DateSpec) -> str | None:
    """The finest unit any constraining field of ``spec`` depends on."""
    names = {n for n in spec.fields if n in _SPEC_FIELDS}
    for unit, fields in (
        ("second", {"seconds"}),
        ("minute", {"minutes"}),
        ("hour", {"hours"}),
        ("day", {"monthdays", "yeardays", "weekdays", "weeks", "weekyears"}),
        ("month", {"months"}),
        ("year", {"years"}),
    ):
        if names & fields:
            return unit
    return None


def _next_boundary(local: int, unit: str) -> int:
    """The first second after ``local`` (already offset) that starts a new ``unit``."""
    fixed = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
    if unit in fixed:
        size = fixed[unit]
        return (local // size + 1) * size
    day_start = local - local % 86_400
    fields = _fields_at(day_start)
    first_of_month = day_start - (fields["monthdays"] - 1) * 86_400
    if unit == "month":
        return add_calendar(first_of_month, months=1)
    first_of_year = day_start - (fields["yeardays"] - 1) * 86_400
    return add_calendar(first_of_year, years=1)


def _next_spec_change(spec: DateSpec, now: int, utc_offset_s: int) -> int | None:
    unit = _spec_granularity(spec)
    if unit is None:
        return None  # constrains nothing: never changes
    current = date_spec_matches(spec, now, utc_offset_s)
    local = now + utc_offset_s
    for _ in range(_SPEC_STEP_LIMIT):
        local = _next_boundary(local, unit)
        if date_spec_matches(spec, local - utc_offset_s, utc_offset_s) != current:
            break
    return local - utc_offset_s


# --- checking a rule for the operator ---------------------------------------------------------------

_OPERATIONS_HELP: Final = "use lt, gt, lte, gte, eq, ne, defined or not_defined"
_DATE_OPERATIONS: Final = ("in_range", "gt", "lt", "date_spec")


def rule_problems(rule: Rule) -> list[tuple[str, str]]:
    """What is wrong with ``rule``, as ``(place, message)`` pairs; empty when nothing is.

    ``place`` is relative to the rule (``""`` for the rule itself, ``"expressions[1].value"``...), so a
    validator can prefix it with where the rule lives. Everything reported here makes ``evaluate_rule``
    treat the expression as not matching, which is rarely what the operator meant.
    """
    problems: list[tuple[str, str]] = []
    _check_rule(rule, "", problems)
    return problems


def _check_rule(rule: Rule, place: str, problems: list[tuple[str, str]]) -> None:
    if rule.boolean_op.lower() not in ("and", "or"):
        problems.append(
            (_join(place, "boolean_op"), f'"{rule.boolean_op}" is not a boolean operator (use and or or)')
        )
    if not rule.expressions:
        problems.append(
            (place, "a rule needs at least one expression (an empty rule is always true for and)")
        )
    for index, expr in enumerate(rule.expressions):
        where = _join(place, f"expressions[{index}]")
        if isinstance(expr, Rule):
            _check_rule(expr, where, problems)
        elif isinstance(expr, AttrExpression):
            problems.extend((_join(where, key), msg) for key, msg in _attr_problems(expr))
        elif isinstance(expr, DateExpression):
            problems.extend((_join(where, key), msg) for key, msg in _date_problems(expr))
        elif isinstance(expr, OpExpression) and not expr.name:
            problems.append((_join(where, "name"), "an op expression needs an operation name (e.g. monitor)"))


def _join(place: str, key: str) -> str:
    return f"{place}.{key}" if place and key else place or key


def _attr_problems(expr: AttrExpression) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    op = expr.operation.lower()
    if op not in _COMPARISONS and op not in ("defined", "not_defined"):
        problems.append(("operation", f'"{expr.operation}" is not a comparison ({_OPERATIONS_HELP})'))
    elif op in _COMPARISONS and expr.value is None:
        problems.append(("value", f'"{expr.operation}" needs a value to compare {expr.attribute} with'))
    if expr.type is not None and expr.type.lower() not in _TYPES:
        problems.append(("type", f'"{expr.type}" is not a type (use string, integer, number or version)'))
    if expr.value_source.lower() not in ("literal", "param", "meta"):
        problems.append(
            ("value_source", f'"{expr.value_source}" is not a value source (use literal, param or meta)')
        )
    return problems


def _date_problems(expr: DateExpression) -> list[tuple[str, str]]:
    op = expr.operation.lower()
    if op not in _DATE_OPERATIONS:
        return [
            ("operation", f'"{expr.operation}" is not a date operation (use in_range, gt, lt or date_spec)')
        ]
    if op == "date_spec":
        if expr.spec is None:
            return [("spec", "a date_spec expression needs a date_spec (e.g. hours=9-16 weekdays=1-5)")]
        return [(f"spec.{name}", msg) for name, msg in _spec_problems(expr.spec)]
    problems: list[tuple[str, str]] = []
    for key, text in (("start", expr.start), ("end", expr.end)):
        if text is not None:
            try:
                parse_datetime(text)
            except ValueError as err:
                problems.append((key, str(err)))
    if expr.duration is not None:
        problems.extend((f"duration.{name}", msg) for name, msg in _duration_problems(expr.duration))
    if op == "gt" and expr.start is None:
        problems.append(("start", "gt needs a start date (the rule holds after it)"))
    elif op == "lt" and expr.end is None:
        problems.append(("end", "lt needs an end date (the rule holds before it)"))
    elif op == "in_range" and expr.start is None and expr.end is None:
        problems.append(("", "in_range needs a start, an end, or a start and a duration"))
    return problems


def _duration_problems(duration: DateSpec) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name, text in duration.fields.items():
        if name not in _DURATION_FIELDS:
            problems.append((name, f'"{name}" is not a duration field (use {", ".join(_DURATION_FIELDS)})'))
        elif not _WHOLE_RE.fullmatch(text):
            problems.append((name, f'"{text}" is not a whole number of {name}'))
    return problems


def _spec_problems(spec: DateSpec) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name, text in spec.fields.items():
        if name == "moon":
            problems.append((name, "moon phases are not supported (Pacemaker deprecated them): remove moon"))
        elif name not in _SPEC_FIELDS:
            problems.append((name, f'"{name}" is not a date_spec field (use {", ".join(_SPEC_FIELDS)})'))
        elif (bounds := parse_range(text)) is None:
            problems.append(
                (name, f'"{text}" is not a range (use a number such as 9, or a range such as 9-16)')
            )
        elif bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
            problems.append(
                (name, f'"{text}" is an empty range, never true (write the smaller number first)')
            )
    return problems
