"""Values that appear in a CIB: scores, durations, ISO 8601 date-times and versions.

Everything here is a pure function of its arguments (no clock, no time zone database): the caller passes
``now`` and, where it matters, the UTC offset. Parsers raise ``ValueError`` with a sentence an operator can
act on; they are cached because the policy engine parses the same few strings over and over.

Semantics follow Pacemaker (2.1, "Pacemaker Explained"), with the deviations documented on each function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Final

# --- scores -----------------------------------------------------------------------------------------

INFINITY: Final = 1_000_000
"""Pacemaker's score infinity: any score at or beyond it means "always" (or "never" when negative)."""

PACEMAKER_HEALTH_COLORS: Final[Mapping[str, int]] = {"red": -INFINITY, "yellow": 0, "green": 0}
"""Pacemaker's default scores for node-health colours (cluster options node-health-red/yellow/green)."""

_SCORE_ALLOWED = "use an integer, INFINITY, +INFINITY or -INFINITY"
_INTEGER_RE: Final = re.compile(r"[+-]?[0-9]+")


def clamp_score(n: int) -> int:
    """Bound an integer to the score range [-INFINITY, INFINITY]."""
    if n >= INFINITY:
        return INFINITY
    if n <= -INFINITY:
        return -INFINITY
    return n


@lru_cache(maxsize=1024)
def _parse_plain_score(text: str) -> int | None:
    word = text.strip()
    upper = word.upper()
    if upper in ("INFINITY", "+INFINITY"):
        return INFINITY
    if upper == "-INFINITY":
        return -INFINITY
    if _INTEGER_RE.fullmatch(word):
        return clamp_score(int(word))
    return None


def parse_score(text: str, *, colors: Mapping[str, int] | None = None) -> int:
    """Parse a score: ``INFINITY``, ``+INFINITY``, ``-INFINITY`` or a signed integer, clamped to ±INFINITY.

    Surrounding whitespace is ignored and the INFINITY words are accepted in any letter case. Pacemaker
    silently reads anything else as 0 (or as the integer prefix of ``"10abc"``); we raise ``ValueError``.

    Node-health colours (``red``, ``yellow``, ``green``) are scores only where the cluster's node-health
    strategy gives them a value, so they are accepted only when ``colors`` maps them (case-insensitively;
    ``PACEMAKER_HEALTH_COLORS`` holds Pacemaker's defaults). Everywhere else they are an error.
    """
    value = _parse_plain_score(text)
    if value is not None:
        return value
    color = text.strip().lower()
    if color in ("red", "yellow", "green"):
        if colors is not None and color in colors:
            return clamp_score(colors[color])
        raise ValueError(f'"{text}" is a node-health colour, not a score here ({_SCORE_ALLOWED})')
    raise ValueError(f'"{text}" is not a score ({_SCORE_ALLOWED})')


def add_scores(a: int, b: int) -> int:
    """Add two scores the way Pacemaker does: saturating at ±INFINITY, and -INFINITY wins.

    ``-INFINITY + INFINITY == -INFINITY``: a ban beats any preference. Inputs beyond the range count as
    infinite. Note that saturation makes addition non-associative (``(INF-1 + 2) - 2 != INF-1``).
    """
    if a <= -INFINITY or b <= -INFINITY:
        return -INFINITY
    if a >= INFINITY or b >= INFINITY:
        return INFINITY
    return clamp_score(a + b)


def format_score(n: int) -> str:
    """Write a score as Pacemaker does: ``INFINITY``, ``-INFINITY`` or the integer (clamped)."""
    n = clamp_score(n)
    if n == INFINITY:
        return "INFINITY"
    if n == -INFINITY:
        return "-INFINITY"
    return str(n)


# --- durations --------------------------------------------------------------------------------------

_DURATION_ALLOWED = "use 10s, 1min or PT10S"

# Units in milliseconds as numerator/denominator pairs (microseconds need a divisor).
_UNITS: Final[Mapping[str, tuple[int, int]]] = {
    "": (1000, 1),  # a bare number is seconds (Pacemaker's crm_get_msec)
    "us": (1, 1000),
    "usec": (1, 1000),
    "ms": (1, 1),
    "msec": (1, 1),
    "s": (1000, 1),
    "sec": (1000, 1),
    "secs": (1000, 1),
    "second": (1000, 1),
    "seconds": (1000, 1),
    "m": (60_000, 1),
    "min": (60_000, 1),
    "mins": (60_000, 1),
    "minute": (60_000, 1),
    "minutes": (60_000, 1),
    "h": (3_600_000, 1),
    "hr": (3_600_000, 1),
    "hrs": (3_600_000, 1),
    "hour": (3_600_000, 1),
    "hours": (3_600_000, 1),
}
_PLAIN_DURATION_RE: Final = re.compile(r"\s*(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>[A-Za-z]*)\s*")
_NUM = r"[0-9]+(?:[.,][0-9]+)?"
_ISO_DURATION_RE: Final = re.compile(
    # Pacemaker also reads hours and seconds before the "T" (``P10S`` is ten seconds; ``M`` there is months)
    rf"\s*P(?:(?P<Y>{_NUM})Y)?(?:(?P<M>{_NUM})M)?(?:(?P<W>{_NUM})W)?(?:(?P<D>{_NUM})D)?"
    rf"(?:(?P<H0>{_NUM})H)?(?:(?P<S0>{_NUM})S)?"
    rf"(?:T(?:(?P<h>{_NUM})H)?(?:(?P<m>{_NUM})M)?(?:(?P<s>{_NUM})S)?)?\s*",
    re.IGNORECASE,
)
# Nominal lengths for ISO durations used as plain intervals (a calendar year/month has no fixed length).
_ISO_MS: Final[Mapping[str, int]] = {
    "Y": 365 * 86_400_000,
    "M": 30 * 86_400_000,
    "W": 7 * 86_400_000,
    "D": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "H0": 3_600_000,
    "S0": 1000,
}


def _not_a_duration(text: str) -> ValueError:
    return ValueError(f'"{text}" is not a duration ({_DURATION_ALLOWED})')


def _decimal_ms(number: str, numerator: int, denominator: int) -> int:
    """Exact milliseconds of a decimal number of units, rounded down (no float error)."""
    whole, _, frac = number.replace(",", ".").partition(".")
    scale: int = 10 ** len(frac)
    units_scaled = int(whole or "0") * scale + int(frac or "0")
    return units_scaled * numerator // (denominator * scale)


@lru_cache(maxsize=1024)
def parse_duration_ms(text: str) -> int:
    """Parse a duration into milliseconds.

    Accepted: a number with an optional unit (``500ms``, ``10s``, ``10 sec``, ``1m``/``1min`` minutes,
    ``2h``/``2hr``, ``250us``; a bare number is seconds, as Pacemaker's ``crm_get_msec``), or an ISO 8601
    duration (``PT1M``, ``P1DT2H``, ``PT1.5S``; there a year counts 365 days and a month 30 days).

    Deviations from Pacemaker, on purpose: ``1.5s`` is 1500 ms (Pacemaker truncates it to 1 s); a trailing
    word that is not a unit (``10seconds-ish``) is an error rather than read by its first letter; negative
    durations are errors. Results are rounded down to whole milliseconds.
    """
    plain = _PLAIN_DURATION_RE.fullmatch(text)
    if plain is not None:
        unit = _UNITS.get(plain["unit"].lower())
        if unit is None:
            raise _not_a_duration(text)
        return _decimal_ms(plain["num"], *unit)
    iso = _ISO_DURATION_RE.fullmatch(text)
    if iso is None or not any(iso.groupdict().values()) or text.strip().upper().endswith("T"):
        raise _not_a_duration(text)
    parts: dict[str, str | None] = iso.groupdict()
    return sum(_decimal_ms(v, _ISO_MS[k], 1) for k, v in parts.items() if v is not None)


def format_duration_ms(ms: int) -> str:
    """Write milliseconds in the largest unit that is exact: ``2h``, ``90s``, ``1min``, ``1500ms``, ``0s``."""
    if ms < 0:
        raise ValueError(f"{ms} ms is not a duration: durations cannot be negative")
    if ms == 0:
        return "0s"
    for size, unit in ((3_600_000, "h"), (60_000, "min"), (1000, "s")):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


# --- calendar arithmetic (proleptic Gregorian, epoch seconds) ----------------------------------------

_DAY: Final = 86_400


def is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if is_leap_year(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a Gregorian date (any year; no range limit unlike ``datetime``)."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12  # March is 0: the leap day falls at the end of the shifted year
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """The Gregorian ``(year, month, day)`` of a day count since 1970-01-01."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return (yoe + era * 400 + (1 if month <= 2 else 0), month, day)


def iso_weekday(days: int) -> int:
    """ISO day of week (1 = Monday ... 7 = Sunday) of a day count since 1970-01-01 (a Thursday)."""
    return (days + 3) % 7 + 1


def _iso_week1_monday(year: int) -> int:
    jan4 = days_from_civil(year, 1, 4)  # week 1 is the week containing January 4th
    return jan4 - (iso_weekday(jan4) - 1)


def iso_weeks_in_year(year: int) -> int:
    return (_iso_week1_monday(year + 1) - _iso_week1_monday(year)) // 7


def iso_week(days: int) -> tuple[int, int, int]:
    """ISO ``(week-year, week, weekday)`` of a day count since 1970-01-01."""
    weekday = iso_weekday(days)
    thursday = days - weekday + 4  # a week belongs to the year its Thursday is in
    week_year = civil_from_days(thursday)[0]
    week = (thursday - days_from_civil(week_year, 1, 1)) // 7 + 1
    return (week_year, week, weekday)


def add_calendar(
    epoch_s: int,
    *,
    years: int = 0,
    months: int = 0,
    weeks: int = 0,
    days: int = 0,
    hours: int = 0,
    minutes: int = 0,
    seconds: int = 0,
) -> int:
    """Add a duration to a time with calendar semantics, in UTC, in Pacemaker's order.

    Years, then months, move the calendar date and keep the time of day; a day that does not exist in the
    target month becomes the month's last day (2024-01-31 + 1 month = 2024-02-29; 2024-02-29 + 1 year =
    2025-02-28). Weeks, days, hours, minutes and seconds are then fixed lengths. Negative amounts subtract.
    """
    day_count, second_of_day = divmod(epoch_s, _DAY)
    if years or months:
        y, m, d = civil_from_days(day_count)
        for delta in (12 * years, months):  # years first, then months, each clamping the day
            if delta:
                total = y * 12 + (m - 1) + delta
                y, m = divmod(total, 12)
                m += 1
                d = min(d, days_in_month(y, m))
        day_count = days_from_civil(y, m, d)
    return (day_count + 7 * weeks + days) * _DAY + second_of_day + 3600 * hours + 60 * minutes + seconds


def calendar_fields(epoch_s: int) -> dict[str, int]:
    """The calendar fields a ``date_spec`` tests, for a time already shifted to the wanted offset."""
    day_count, second_of_day = divmod(epoch_s, _DAY)
    year, month, day = civil_from_days(day_count)
    week_year, week, weekday = iso_week(day_count)
    return {
        "years": year,
        "months": month,
        "monthdays": day,
        "hours": second_of_day // 3600,
        "minutes": second_of_day // 60 % 60,
        "seconds": second_of_day % 60,
        "yeardays": day_count - days_from_civil(year, 1, 1) + 1,
        "weekyears": week_year,
        "weeks": week,
        "weekdays": weekday,
    }


# --- ISO 8601 date-times ----------------------------------------------------------------------------

_DATETIME_ALLOWED = "use ISO 8601, e.g. 2024-01-31 10:00:00, 2024-01-31T10:00:00Z, 2024-031 or 2024-W05-3"
_DATE = (
    r"(?P<epoch>epoch)"
    r"|(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"|(?P<by>[0-9]{4})(?P<bmo>[0-9]{2})(?P<bd>[0-9]{2})"
    r"|(?P<wy>[0-9]{4})-?W(?P<w>[0-9]{2})(?:-?(?P<wd>[0-9]))?"
    r"|(?P<oy>[0-9]{4})-?(?P<od>[0-9]{3})"
)
_TIME = (
    r"(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2}))?"
    r"|(?P<bH>[0-9]{2})(?:(?P<bM>[0-9]{2})(?P<bS>[0-9]{2})?)?"
)
_OFFSET = r"(?P<z>Z)|(?P<sign>[+-])(?P<oh>[0-9]{2})(?::?(?P<om>[0-9]{2}))?"
_DATETIME_RE: Final = re.compile(
    rf"\s*(?:{_DATE})(?:(?:T|\s+)(?:{_TIME})(?:[.,][0-9]+)?)?(?:\s*(?:{_OFFSET}))?\s*",
    re.IGNORECASE,
)


def _not_a_datetime(text: str, why: str = "") -> ValueError:
    detail = f": {why}" if why else ""
    return ValueError(f'"{text}" is not a date and time{detail} ({_DATETIME_ALLOWED})')


def _date_days(text: str, g: Mapping[str, str | None]) -> int:
    """Day count since the epoch of the date part of a matched date-time; validates ranges."""
    if g["epoch"]:
        return 0
    if g["y"] or g["by"]:
        year = int(g["y"] or g["by"] or 0)
        month = int(g["mo"] or g["bmo"] or 0)
        day = int(g["d"] or g["bd"] or 0)
        if not 1 <= month <= 12:
            raise _not_a_datetime(text, f"month {month} does not exist")
        if not 1 <= day <= days_in_month(year, month):
            raise _not_a_datetime(text, f"{year}-{month:02d} has no day {day}")
        return days_from_civil(year, month, day)
    if g["wy"]:
        year, week, weekday = int(g["wy"]), int(g["w"] or 0), int(g["wd"] or 1)
        if not 1 <= week <= iso_weeks_in_year(year):
            raise _not_a_datetime(text, f"{year} has no ISO week {week}")
        if not 1 <= weekday <= 7:
            raise _not_a_datetime(text, f"weekday {weekday} is not 1 (Monday) to 7 (Sunday)")
        return _iso_week1_monday(year) + 7 * (week - 1) + weekday - 1
    year, yday = int(g["oy"] or 0), int(g["od"] or 0)
    if not 1 <= yday <= (366 if is_leap_year(year) else 365):
        raise _not_a_datetime(text, f"{year} has no day {yday}")
    return days_from_civil(year, 1, 1) + yday - 1


def _time_seconds(text: str, g: Mapping[str, str | None]) -> int:
    hour = int(g["H"] or g["bH"] or 0)
    minute = int(g["M"] or g["bM"] or 0)
    second = int(g["S"] or g["bS"] or 0)
    if hour > 24 or minute > 59 or second > 60 or (hour == 24 and (minute or second)):
        raise _not_a_datetime(text, f"{hour:02d}:{minute:02d}:{second:02d} is not a time of day")
    return 3600 * hour + 60 * minute + second  # 24:00 is next midnight; second 60 a leap second


def _offset_seconds(text: str, g: Mapping[str, str | None], default_offset_s: int) -> int:
    if g["z"]:
        return 0
    if not g["sign"]:
        return default_offset_s
    hours, minutes = int(g["oh"] or 0), int(g["om"] or 0)
    if hours > 23 or minutes > 59:
        raise _not_a_datetime(text, "the UTC offset is out of range")
    offset = 3600 * hours + 60 * minutes
    return -offset if g["sign"] == "-" else offset


@lru_cache(maxsize=4096)
def parse_datetime(text: str, *, default_offset_s: int = 0) -> int:
    """Parse an ISO 8601 date-time as Pacemaker accepts it, into epoch seconds.

    Dates: ``2024-01-31``, ``20240131``, ordinal ``2024-031``, week dates ``2024-W05-3`` (or ``2024-W05``,
    its Monday), or ``epoch``. An optional time follows after ``T`` or spaces: ``10:00``, ``10:00:00``,
    ``100000`` (fractions of a second are dropped), then an optional offset: ``Z``, ``+02``, ``+02:00``,
    ``-0500``, with or without a space before it. Without an offset the time is read at
    ``default_offset_s`` (UTC by default; Pacemaker would use the host's local zone, which a pure function
    cannot know). A time without a date is rejected: Pacemaker would take today's date from the clock.
    """
    m = _DATETIME_RE.fullmatch(text)
    if m is None:
        raise _not_a_datetime(text)
    g = m.groupdict()
    day_seconds = _date_days(text, g) * _DAY
    return day_seconds + _time_seconds(text, g) - _offset_seconds(text, g, default_offset_s)


def format_datetime(epoch_s: int, *, offset_s: int = 0) -> str:
    """Write epoch seconds as ``2024-01-31 10:00:00Z`` (or with the given ``+hh:mm`` offset)."""
    local = epoch_s + offset_s
    day_count, sod = divmod(local, _DAY)
    y, mo, d = civil_from_days(day_count)
    if offset_s == 0:
        zone = "Z"
    else:
        sign = "-" if offset_s < 0 else "+"
        zone = f" {sign}{abs(offset_s) // 3600:02d}:{abs(offset_s) // 60 % 60:02d}"
    return f"{y:04d}-{mo:02d}-{d:02d} {sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}{zone}"


# --- versions ---------------------------------------------------------------------------------------

_LEADING_INT_RE: Final = re.compile(r"\s*([+-]?[0-9]+)")


def _version_part(part: str) -> int:
    m = _LEADING_INT_RE.match(part)
    return int(m.group(1)) if m else 0


def compare_versions(a: str, b: str) -> int:
    """Compare dot-separated versions as Pacemaker does: -1, 0 or 1.

    Each dot-separated field compares as an integer (``1.10 > 1.9``); a missing field counts as 0
    (``1.0 == 1``); a field's non-numeric tail is ignored and a field without digits counts as 0.
    """
    pa = [_version_part(p) for p in a.split(".")]
    pb = [_version_part(p) for p in b.split(".")]
    width = max(len(pa), len(pb))
    pa += [0] * (width - len(pa))
    pb += [0] * (width - len(pb))
    return (pa > pb) - (pa < pb)
