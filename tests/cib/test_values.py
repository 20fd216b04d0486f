"""Scores, durations, ISO 8601 date-times and versions."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.cib.values import (
    INFINITY,
    PACEMAKER_HEALTH_COLORS,
    add_calendar,
    add_scores,
    calendar_fields,
    civil_from_days,
    clamp_score,
    compare_versions,
    days_from_civil,
    format_datetime,
    format_duration_ms,
    format_score,
    iso_week,
    iso_weeks_in_year,
    parse_datetime,
    parse_duration_ms,
    parse_score,
)

UTC = dt.UTC


def epoch(*args: int, tz: dt.tzinfo = UTC) -> int:
    return int(dt.datetime(*args, tzinfo=tz).timestamp())  # type: ignore[misc]


# --- scores -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("INFINITY", INFINITY),
        ("+INFINITY", INFINITY),
        ("-INFINITY", -INFINITY),
        ("infinity", INFINITY),
        ("  -INFINITY\n", -INFINITY),
        ("0", 0),
        ("42", 42),
        ("+42", 42),
        ("-42", -42),
        (" 7 ", 7),
        ("999999", 999_999),
        ("1000000", INFINITY),
        ("5000000", INFINITY),
        ("-5000000", -INFINITY),
        ("99999999999999999999999", INFINITY),
    ],
)
def test_parse_score(text: str, expected: int) -> None:
    assert parse_score(text) == expected


@pytest.mark.parametrize("text", ["", " ", "10abc", "1.5", "INF", "++1", "1_000", "one", "- 5", "0x10"])
def test_parse_score_rejects_junk_with_a_helpful_message(text: str) -> None:
    with pytest.raises(
        ValueError, match=r"is not a score \(use an integer, INFINITY, \+INFINITY or -INFINITY\)"
    ):
        parse_score(text)


def test_health_colours_are_scores_only_when_the_cluster_gives_them_a_value() -> None:
    with pytest.raises(ValueError, match='"red" is a node-health colour, not a score here'):
        parse_score("red")
    assert parse_score("red", colors=PACEMAKER_HEALTH_COLORS) == -INFINITY
    assert parse_score("Yellow", colors={"yellow": -50}) == -50
    assert parse_score("green", colors={"green": 5_000_000}) == INFINITY  # clamped like any score
    assert parse_score("17", colors=PACEMAKER_HEALTH_COLORS) == 17


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (-INFINITY, INFINITY, -INFINITY),
        (INFINITY, -INFINITY, -INFINITY),
        (INFINITY, INFINITY, INFINITY),
        (INFINITY, -5, INFINITY),
        (-INFINITY, 999_999, -INFINITY),
        (600_000, 600_000, INFINITY),
        (-600_000, -600_000, -INFINITY),
        (600_000, -600_000, 0),
        (3, 4, 7),
        (2 * INFINITY, -1, INFINITY),  # beyond the range counts as infinite
    ],
)
def test_add_scores(a: int, b: int, expected: int) -> None:
    assert add_scores(a, b) == expected


def test_format_score() -> None:
    assert [format_score(n) for n in (INFINITY, -INFINITY, 42, 0, -7, 3 * INFINITY)] == [
        "INFINITY",
        "-INFINITY",
        "42",
        "0",
        "-7",
        "INFINITY",
    ]


scores = st.one_of(
    st.integers(min_value=-2 * INFINITY, max_value=2 * INFINITY),
    st.sampled_from([INFINITY, -INFINITY, 0, INFINITY - 1, -INFINITY + 1]),
)


@given(scores, scores)
def test_score_addition_is_commutative_and_bounded(a: int, b: int) -> None:
    total = add_scores(a, b)
    assert total == add_scores(b, a)
    assert -INFINITY <= total <= INFINITY


@given(scores)
def test_minus_infinity_absorbs_everything(a: int) -> None:
    assert add_scores(-INFINITY, a) == -INFINITY
    assert add_scores(a, -INFINITY) == -INFINITY


@given(scores)
def test_plus_infinity_absorbs_everything_but_minus_infinity(a: int) -> None:
    assert add_scores(INFINITY, a) == (-INFINITY if a <= -INFINITY else INFINITY)


@given(scores)
def test_zero_is_neutral_within_range(a: int) -> None:
    assert add_scores(a, 0) == clamp_score(a)


@given(scores, scores, scores)
def test_score_addition_is_monotonic(a: int, b: int, c: int) -> None:
    low, high = sorted((b, c))
    assert add_scores(a, low) <= add_scores(a, high)


@given(st.integers(min_value=-3 * INFINITY, max_value=3 * INFINITY))
def test_score_format_parse_round_trip(n: int) -> None:
    assert parse_score(format_score(n)) == clamp_score(n)


# --- durations --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("10s", 10_000),
        ("1min", 60_000),
        ("1m", 60_000),  # Pacemaker: m is minutes, not months or metres
        ("500ms", 500),
        ("2h", 7_200_000),
        ("2hr", 7_200_000),
        ("10", 10_000),  # a bare number is seconds
        ("0", 0),
        ("1500us", 1),
        ("999us", 0),
        ("3 sec", 3000),
        (" 20s ", 20_000),
        ("1.5s", 1500),
        ("90 minutes", 5_400_000),
        ("10S", 10_000),
        ("PT1M", 60_000),
        ("PT10S", 10_000),
        ("P1DT2H", 26 * 3_600_000),
        ("PT1.5S", 1500),
        ("P1W", 7 * 86_400_000),
        ("pt30s", 30_000),
        ("P1Y", 365 * 86_400_000),
        ("P1M", 30 * 86_400_000),
        ("PT1H30M", 5_400_000),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(
    "text", ["10x", "", "s", "-5s", "P", "PT", "P1DT", "1d", "ten", "10 s s", "PT1H1H", "1e3"]
)
def test_parse_duration_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_duration_ms(text)
    assert str(err.value) == f'"{text}" is not a duration (use 10s, 1min or PT10S)'


def test_the_documented_error_message() -> None:
    with pytest.raises(ValueError, match=r'^"10x" is not a duration \(use 10s, 1min or PT10S\)$'):
        parse_duration_ms("10x")


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (500, "500ms"),
        (1500, "1500ms"),
        (10_000, "10s"),
        (60_000, "1min"),
        (90_000, "90s"),
        (7_200_000, "2h"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration_ms(ms) == text


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        format_duration_ms(-1)


@given(st.integers(min_value=0, max_value=10**12))
def test_duration_format_parse_round_trip(ms: int) -> None:
    assert parse_duration_ms(format_duration_ms(ms)) == ms


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(
        [("ms", 1), ("s", 1000), ("sec", 1000), ("m", 60_000), ("min", 60_000), ("h", 3_600_000)]
    ),
    st.sampled_from(["", " ", "  "]),
)
def test_every_unit_spelling_scales(n: int, unit: tuple[str, int], space: str) -> None:
    name, factor = unit
    assert parse_duration_ms(f"{n}{space}{name}") == n * factor


@given(st.integers(0, 30), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_iso_duration_adds_up(d: int, h: int, m: int, s: int) -> None:
    assert parse_duration_ms(f"P{d}DT{h}H{m}M{s}S") == ((d * 24 + h) * 60 + m) * 60_000 + s * 1000


# --- calendar ---------------------------------------------------------------------------------------


@given(st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)))
def test_civil_day_arithmetic_agrees_with_datetime(date: dt.date) -> None:
    days = date.toordinal() - dt.date(1970, 1, 1).toordinal()
    assert days_from_civil(date.year, date.month, date.day) == days
    assert civil_from_days(days) == (date.year, date.month, date.day)
    assert iso_week(days) == tuple(date.isocalendar())


def test_weeks_in_year() -> None:
    assert [iso_weeks_in_year(y) for y in (2015, 2020, 2024, 2026)] == [53, 53, 52, 53]


def test_calendar_fields() -> None:
    fields = calendar_fields(epoch(2024, 12, 30, 13, 45, 7))  # a Monday in ISO week 1 of 2025
    assert fields == {
        "years": 2024,
        "months": 12,
        "monthdays": 30,
        "hours": 13,
        "minutes": 45,
        "seconds": 7,
        "yeardays": 365,
        "weekyears": 2025,
        "weeks": 1,
        "weekdays": 1,
    }


@pytest.mark.parametrize(
    ("start", "amounts", "end"),
    [
        ((2024, 1, 31), {"months": 1}, (2024, 2, 29)),  # month end clamps (leap year)
        ((2023, 1, 31), {"months": 1}, (2023, 2, 28)),
        ((2024, 3, 31), {"months": 1}, (2024, 4, 30)),
        ((2024, 2, 29), {"years": 1}, (2025, 2, 28)),
        ((2024, 2, 29), {"years": 4}, (2028, 2, 29)),
        ((2024, 11, 30), {"months": 3}, (2025, 2, 28)),
        ((2024, 1, 31), {"months": -2}, (2023, 11, 30)),
        ((2023, 1, 31), {"years": 1, "months": 1}, (2024, 2, 29)),  # years first, then months
        ((2024, 12, 31), {"days": 1}, (2025, 1, 1)),
        ((2024, 2, 28), {"weeks": 1, "days": 1}, (2024, 3, 7)),
    ],
)
def test_add_calendar_month_end(
    start: tuple[int, int, int], amounts: dict[str, int], end: tuple[int, int, int]
) -> None:
    assert add_calendar(epoch(*start, 10, 30), **amounts) == epoch(*end, 10, 30)


def test_add_calendar_time_units() -> None:
    start = epoch(2024, 1, 31, 23, 0)
    assert add_calendar(start, hours=2, minutes=30, seconds=5) == epoch(2024, 2, 1, 1, 30, 5)


# --- ISO 8601 date-times ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-31 10:00:00", epoch(2024, 1, 31, 10)),
        ("2024-01-31T10:00:00Z", epoch(2024, 1, 31, 10)),
        ("2024-01-31t10:00:00z", epoch(2024, 1, 31, 10)),
        ("2024-01-31T10:00:00+02:00", epoch(2024, 1, 31, 8)),
        ("2024-01-31T10:00:00-0530", epoch(2024, 1, 31, 15, 30)),
        ("2024-01-31T10:00+01", epoch(2024, 1, 31, 9)),
        ("2019-09-23 18:00:00 -05:00", epoch(2019, 9, 23, 23)),  # as in the Pacemaker corpus
        ("2024-01-31", epoch(2024, 1, 31)),
        ("20240131", epoch(2024, 1, 31)),
        ("20240131T101500Z", epoch(2024, 1, 31, 10, 15)),
        ("2024-1-5 9:05", epoch(2024, 1, 5, 9, 5)),
        ("2024-031", epoch(2024, 1, 31)),
        ("2024-366", epoch(2024, 12, 31)),
        ("2005-001", epoch(2005, 1, 1)),
        ("2024-W05-3", epoch(2024, 1, 31)),
        ("2024W053", epoch(2024, 1, 31)),
        ("2024-W05", epoch(2024, 1, 29)),
        ("2025-W01-1", epoch(2024, 12, 30)),  # week 1 of 2025 starts in 2024
        ("2020-W53-7", epoch(2021, 1, 3)),
        ("2024-01-31 10:00:00.750", epoch(2024, 1, 31, 10)),
        ("2024-01-31 24:00", epoch(2024, 2, 1)),
        ("  2024-01-31   10:00:00  ", epoch(2024, 1, 31, 10)),
        ("epoch", 0),
    ],
)
def test_parse_datetime(text: str, expected: int) -> None:
    assert parse_datetime(text) == expected


def test_default_offset_applies_only_without_an_explicit_one() -> None:
    assert parse_datetime("2024-01-31 10:00", default_offset_s=3600) == epoch(2024, 1, 31, 9)
    assert parse_datetime("2024-01-31 10:00Z", default_offset_s=3600) == epoch(2024, 1, 31, 10)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2023-02-29", "2023-02 has no day 29"),
        ("2024-13-01", "month 13 does not exist"),
        ("2024-367", "2024 has no day 367"),
        ("2023-366", "2023 has no day 366"),
        ("2024-W53-1", "2024 has no ISO week 53"),
        ("2024-W05-8", "weekday 8 is not 1 (Monday) to 7 (Sunday)"),
        ("2024-01-31 25:00", "25:00:00 is not a time of day"),
        ("2024-01-31 10:61", "10:61:00 is not a time of day"),
        ("2024-01-31 24:01", "24:01:00 is not a time of day"),
        ("2024-01-31 10:00+25:00", "the UTC offset is out of range"),
    ],
)
def test_parse_datetime_rejects_impossible_dates(text: str, why: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_datetime(text)
    assert str(err.value).startswith(f'"{text}" is not a date and time: {why} (use ISO 8601')


@pytest.mark.parametrize(
    "text", ["", "yesterday", "10:00:00", "T10:00", "2024-05", "2024/01/31", "2024-01-31X"]
)
def test_parse_datetime_rejects_junk(text: str) -> None:
    with pytest.raises(
        ValueError, match=r"is not a date and time \(use ISO 8601, e\.g\. 2024-01-31 10:00:00"
    ):
        parse_datetime(text)


@given(st.integers(min_value=-(10**10), max_value=10**11), st.sampled_from([0, 3600, -18000, 19800]))
def test_datetime_format_parse_round_trip(t: int, offset: int) -> None:
    assert parse_datetime(format_datetime(t, offset_s=offset)) == t


# --- versions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.10", "1.9", 1),
        ("1.9", "1.10", -1),
        ("1.0", "1", 0),
        ("1.0.0", "1", 0),
        ("2", "10", -1),
        ("3.0.1", "3.0", 1),
        ("1.2.3", "1.2.3", 0),
        ("1.2rc1", "1.2", 0),  # a non-numeric tail is ignored
        ("x", "0", 0),  # a field without digits counts as 0
        ("", "0", 0),
    ],
)
def test_compare_versions(a: str, b: str, expected: int) -> None:
    assert compare_versions(a, b) == expected


versions = st.lists(st.integers(0, 300), min_size=1, max_size=5).map(lambda parts: ".".join(map(str, parts)))


@given(versions, versions)
def test_version_comparison_is_antisymmetric(a: str, b: str) -> None:
    assert compare_versions(a, b) == -compare_versions(b, a)


@given(versions, versions, versions)
def test_version_comparison_is_transitive(a: str, b: str, c: str) -> None:
    if compare_versions(a, b) <= 0 and compare_versions(b, c) <= 0:
        assert compare_versions(a, c) <= 0


def test_seconds_and_hours_before_the_t_as_pacemaker_reads_them() -> None:
    # seen in Pacemaker's own regression inputs (migrate-fencing: interval="P10S" runs every 10 s)
    assert parse_duration_ms("P10S") == 10_000
    assert parse_duration_ms("P1H") == 3_600_000
    assert parse_duration_ms("P1M") == 30 * 86_400_000, "before the T, M is months"
