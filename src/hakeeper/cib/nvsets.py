"""Resolve several name/value sets (instance, meta, utilization attributes, properties, defaults) into one.

Pacemaker semantics, including the surprising parts, because configurations depend on them:

- Sets are processed by ``score``, highest first (a missing score is 0). Sets whose ``rule`` fails are
  skipped. With ``first_wins`` (Pacemaker's normal mode, used for properties, meta and instance attributes,
  node attributes, defaults) the first processed set that defines a name wins.
- **Equal scores: the set listed last wins.** Pacemaker collects the sets in reverse document order and
  sorts them stably, so among equal scores the last one in the document is processed first. The scheduler
  corpus shows it: in ``op-defaults-3`` two ``op_defaults`` sets with no score both match a 10 s monitor,
  and the expected transition uses the second set's timeout.
- With ``first_wins=False`` (Pacemaker's "overwrite" mode) later-processed sets overwrite earlier ones; the
  processing order is reversed (lowest score first), so the highest score still wins, but among equal
  scores the set listed **first** wins.
- A value of ``#default`` (any case) removes the name from the result when it is processed, letting a
  later-processed set (or the built-in default) supply it.
- ``always_first`` names a set id that is processed before all others whatever its score (Pacemaker does
  this for ``cib-bootstrap-options`` among cluster property sets).
"""

from __future__ import annotations

from collections.abc import Sequence

from hakeeper.cib.model import NvSet
from hakeeper.cib.rules import RuleContext, evaluate_rule, next_rule_change

_DEFAULT_MARK = "#default"


def processing_order(
    sets: Sequence[NvSet], *, first_wins: bool = True, always_first: str | None = None
) -> list[NvSet]:
    """The order in which Pacemaker applies ``sets`` (see the module docstring)."""
    sign = -1 if first_wins else 1

    def key(indexed: tuple[int, NvSet]) -> tuple[int, int, int]:
        index, nvset = indexed
        special = 0 if always_first is not None and nvset.id.lower() == always_first.lower() else 1
        return (special, sign * (nvset.score or 0), -index)

    return [nvset for _, nvset in sorted(enumerate(sets), key=key)]


def resolve_nvsets(
    sets: Sequence[NvSet],
    ctx: RuleContext,
    *,
    first_wins: bool = True,
    always_first: str | None = None,
) -> dict[str, str]:
    """Merge ``sets`` into one mapping for the situation ``ctx`` describes (node, time, resource, op)."""
    if len(sets) == 1 and always_first is None:
        only = sets[0]
        if only.rule is not None and not evaluate_rule(only.rule, ctx):
            return {}
        if not any(v.lower() == _DEFAULT_MARK for v in only.values.values()):
            return dict(only.values)  # the common case: one set, nothing to merge
    result: dict[str, str] = {}
    for nvset in processing_order(sets, first_wins=first_wins, always_first=always_first):
        if nvset.rule is not None and not evaluate_rule(nvset.rule, ctx):
            continue
        for name, value in nvset.values.items():
            if value.lower() == _DEFAULT_MARK:
                result.pop(name, None)
            elif first_wins:
                result.setdefault(name, value)
            else:
                result[name] = value
    return result


def next_nvsets_change(sets: Sequence[NvSet], ctx: RuleContext) -> int | None:
    """The next epoch second at which the rules of ``sets`` may change the result (``next_rule_change``)."""
    times = [t for s in sets if s.rule is not None and (t := next_rule_change(s.rule, ctx)) is not None]
    return min(times, default=None)


BOOTSTRAP_SET = "cib-bootstrap-options"


def cluster_properties(properties: Sequence[NvSet], now: int | None) -> dict[str, str]:
    """Cluster options as Pacemaker reads them: ``cib-bootstrap-options`` first, rules at ``now``."""
    return resolve_nvsets(properties, RuleContext(node_attrs={}, now=now), always_first=BOOTSTRAP_SET)
