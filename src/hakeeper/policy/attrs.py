"""Name/value sets resolved for the scheduler (meta attributes, parameters, properties, node attributes)."""

from __future__ import annotations

from collections.abc import Sequence

from hakeeper.cib.model import NvSet
from hakeeper.cib.nvsets import resolve_nvsets
from hakeeper.cib.rules import RuleContext


def resolve_sets(sets: Sequence[NvSet], ctx: RuleContext, always_first: str | None = None) -> dict[str, str]:
    """Merge attribute sets the Pacemaker way (score order, rules evaluated in ``ctx``)."""
    if not sets:
        return {}
    return resolve_nvsets(sets, ctx, always_first=always_first)


def is_true(value: str | None, default: bool = False) -> bool:
    """Pacemaker's boolean spelling: true/yes/on/y/1 (any case)."""
    if value is None:
        return default
    return value.strip().lower() in ("true", "yes", "on", "y", "1")


def parse_int_score(value: str | None, default: int = 0) -> int:
    """A score as text: integer, ``INFINITY``/``+INFINITY``/``-INFINITY`` (saturated at ±1,000,000)."""
    from hakeeper.policy.working import INFINITY

    if value is None:
        return default
    text = value.strip().lower()
    if text in ("infinity", "+infinity"):
        return INFINITY
    if text == "-infinity":
        return -INFINITY
    digits = text[1:] if text[:1] in "+-" else text
    end = 0
    while end < len(digits) and digits[end].isdigit():
        end += 1
    if end == 0:
        return default
    number = int(digits[:end]) * (-1 if text.startswith("-") else 1)
    return max(-INFINITY, min(INFINITY, number))


def parse_interval_s(value: str | None) -> int:
    """A duration in seconds from text like ``10``, ``10s``, ``5min``, ``1h``, ``PT10S`` (0 if unreadable)."""
    if value is None:
        return 0
    text = value.strip().lower()
    if not text:
        return 0
    units = {"ms": 0.001, "msec": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix) and text[: -len(suffix)].strip().lstrip("-").isdigit():
            return int(int(text[: -len(suffix)].strip()) * units[suffix])
    if text.lstrip("-").isdigit():
        return int(text)
    if text.startswith("pt") or text.startswith("p"):
        return _iso_duration_s(text.upper())
    return 0


def _iso_duration_s(text: str) -> int:
    total = 0
    number = ""
    in_time = False
    for char in text[1:]:
        if char == "T":
            in_time = True
        elif char.isdigit():
            number += char
        elif number:
            value = int(number)
            number = ""
            if char == "D":
                total += value * 86400
            elif char == "H":
                total += value * 3600
            elif char == "M":
                total += value * (60 if in_time else 30 * 86400)
            elif char == "S":
                total += value
            elif char == "W":
                total += value * 7 * 86400
            elif char == "Y":
                total += value * 365 * 86400
    return total
