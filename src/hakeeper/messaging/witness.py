"""The witness arbiter (sans-I/O): a vote-only tiebreaker on a third host, the role of corosync-qnetd.

Each cluster node reports its *view* (the set of nodes it currently sees, itself included) every report
interval and whenever the view changes. The witness holds one vote and gives it to one partition:

* **Stickiness**: the partition holding the vote (the *holder*, a view) keeps it while any node still
  reports exactly that view. Reports older than ``report_timeout`` are forgotten (that node is gone).
* When the holder's view is reported by nobody any more (it split, shrank, grew or died), the vote goes to
  the best partition among the current views: first those sharing a node with the old holder, then the
  largest, then the one with the lowest node id.
* Only nodes whose reported view *equals* the holder get the vote, and every reply names the view it was
  granted for, so two sides of a split can never both count it.

A partition is only considered once all its nodes report it: half-merged, half-split views wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

MAX_VIEW = 256
"""The witness refuses views listing more nodes than this (a bound on memory per report)."""


class WitnessReport(msgspec.Struct, tag="report", array_like=True, frozen=True):
    """Node -> witness: the nodes this node sees, itself included."""

    view: list[int]
    seq: int = 0  # echoed in the reply, so the node knows which report (and when) it answers


class WitnessReply(msgspec.Struct, tag="reply", array_like=True, frozen=True):
    """Witness -> node: whether this node has the witness vote for ``view`` (its view at report time)."""

    view: list[int]
    granted: bool
    holder: list[int]
    seq: int = 0


WitnessMessage = WitnessReport | WitnessReply
witness_encoder = msgspec.msgpack.Encoder()
witness_decoder = msgspec.msgpack.Decoder(WitnessMessage)


@dataclass(frozen=True, slots=True)
class _Report:
    view: frozenset[int]
    at: float


def _best(views: Iterable[frozenset[int]]) -> frozenset[int] | None:
    """The largest view, then the one with the lowest node id (ties then broken by the sorted ids)."""
    return min(views, key=lambda v: (-len(v), min(v), sorted(v)), default=None)


class WitnessArbiter:
    """Decides which partition of one cluster holds the witness vote."""

    def __init__(self, report_timeout: float = 0.6) -> None:
        if report_timeout <= 0:
            raise ValueError(f"report_timeout must be positive, not {report_timeout}")
        self.report_timeout = report_timeout
        self.holder: frozenset[int] | None = None
        self._reports: dict[int, _Report] = {}

    def on_report(self, now: float, node: int, view: Iterable[int], seq: int = 0) -> WitnessReply:
        """Record ``node``'s view and answer whether it holds the vote."""
        seen = frozenset(view) | {node}
        self._reports[node] = _Report(seen, now)
        self._decide(now)
        holder = sorted(self.holder or ())
        return WitnessReply(view=sorted(seen), granted=seen == self.holder, holder=holder, seq=seq)

    def live_views(self, now: float) -> dict[int, frozenset[int]]:
        return {n: r.view for n, r in self._reports.items() if now - r.at < self.report_timeout}

    def _decide(self, now: float) -> None:
        for node in [n for n, r in self._reports.items() if now - r.at >= self.report_timeout]:
            del self._reports[node]
        live = {n: r.view for n, r in self._reports.items()}
        if self.holder is not None and self.holder in live.values():
            return  # sticky: the side holding the vote is still there
        settled = {v for v in live.values() if all(live.get(m) == v for m in v)}
        if self.holder is not None:
            heirs = {v for v in settled if v & self.holder}
            if heirs:
                self.holder = _best(heirs)
                return
            if any(v & self.holder for v in live.values()):
                return  # the holder's side is still reporting but has not settled: nobody gets it yet
        self.holder = _best(settled)
