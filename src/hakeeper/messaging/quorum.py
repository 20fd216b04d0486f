"""Quorum (sans-I/O): votes, majority, ``two_node``, ``wait_for_all`` and the witness client.

Rules (votequorum's, see corosync ``votequorum.5``):

* quorate when the votes of the members this node sees (itself included), plus the witness vote if this
  node holds it, reach ``expected // 2 + 1``; ``expected`` is the sum of all node votes (plus the witness
  votes) unless configured;
* ``wait_for_all``: never quorate until every voting node has been seen together at least once;
* ``two_node`` (implies ``wait_for_all``): both nodes together are quorate; a lone survivor is quorate only
  after the CRM confirms its peer was fenced (``fencing_confirmed``), so two halves can never both run
  resources. The confirmation is forgotten when the peer rejoins;
* witness: the node reports its view to the witness every ``witness_report_interval`` (on the failure
  detector's beat once there is one, see :mod:`hakeeper.messaging.cadence`) and on every change;
  the witness vote counts only while its last reply is younger than ``witness_reply_timeout`` and granted
  the vote for exactly the node's current view. Keep ``witness_reply_timeout`` below the witness's
  ``--report-timeout`` (defaults 0.4 s and 0.6 s): that gap is what keeps two sides from counting the
  vote at once when a node loses the witness.

Every change of the resulting ``QuorumState`` is output as a ``QuorumChanged`` event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from hakeeper.messaging.cadence import Cadence
from hakeeper.messaging.witness import WitnessReply, WitnessReport


@dataclass(frozen=True)
class QuorumConfig:
    node_votes: Mapping[int, int]
    expected_votes: int | None = None
    two_node: bool = False
    wait_for_all: bool | None = None  # None: on exactly when two_node is
    witness: bool = False
    witness_votes: int = 1
    witness_report_interval: float = 0.1
    witness_reply_timeout: float = 0.4

    def __post_init__(self) -> None:
        if any(v < 0 for v in self.node_votes.values()):
            raise ValueError("node votes cannot be negative")
        voters = [n for n, v in self.node_votes.items() if v > 0]
        if not voters:
            raise ValueError("quorum needs at least one node with a vote")
        if self.two_node and self.witness:
            raise ValueError("two_node and a witness are alternatives for two-node clusters: configure one")
        if self.two_node and len(voters) != 2:
            raise ValueError(
                f"two_node is only for clusters of exactly two voting nodes, this one has {len(voters)}"
            )
        if self.expected_votes is not None and self.expected_votes < 1:
            raise ValueError(f"expected_votes must be at least 1, not {self.expected_votes}")
        if self.witness and self.witness_votes < 1:
            raise ValueError("a witness needs at least one vote")
        if not 0 < self.witness_report_interval < self.witness_reply_timeout:
            raise ValueError("witness_reply_timeout must be longer than witness_report_interval")

    @property
    def waits_for_all(self) -> bool:
        return self.two_node if self.wait_for_all is None else self.wait_for_all

    @property
    def expected(self) -> int:
        if self.expected_votes is not None:
            return self.expected_votes
        return sum(self.node_votes.values()) + (self.witness_votes if self.witness else 0)


@dataclass(frozen=True)
class QuorumState:
    quorate: bool
    members: frozenset[int]
    votes: int
    needed: int
    expected: int
    witness_vote: bool = False
    awaiting_fence: frozenset[int] = field(default_factory=frozenset)
    waiting_for_all: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class QuorumChanged:
    at: float
    state: QuorumState


@dataclass(frozen=True, slots=True)
class SendWitnessReport:
    report: WitnessReport


QuorumOutput = QuorumChanged | SendWitnessReport


@dataclass
class _WitnessClient:
    reports: Cadence  # the periodic ones; a report on a change of view does not move them
    report_seq: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)  # reports still waiting for an answer
    reply_seq: int = 0
    valid_until: float | None = None  # the answered report's send time + witness_reply_timeout
    reply_view: frozenset[int] = frozenset()
    granted: bool = False


class Quorum:
    """The quorum view of one node."""

    def __init__(self, local: int, config: QuorumConfig, *, now: float) -> None:
        self.local = local
        self.config = config
        self._members = frozenset({local})
        self._seen_all = False
        self._fenced: set[int] = set()
        interval = config.witness_report_interval
        self._witness = _WitnessClient(Cadence(interval, now)) if config.witness else None
        self.state = self._compute(now)

    # --- inputs -----------------------------------------------------------------------------------

    def set_members(self, now: float, members: Iterable[int]) -> list[QuorumOutput]:
        """The nodes the failure detector sees up (this node is always included)."""
        new = frozenset(members) | {self.local}
        if new == self._members:
            return []
        self._fenced -= new  # a peer that is back must be fenced again before anyone acts without it
        self._members = new
        out: list[QuorumOutput] = []
        if self._witness is not None:
            out.append(self._report(now))
        return out + self._update(now)

    def fencing_confirmed(self, now: float, node: int) -> list[QuorumOutput]:
        """The CRM confirms ``node`` was fenced (powered off or cut off) while it was absent."""
        if node in self._members or node == self.local:
            return []
        self._fenced.add(node)
        return self._update(now)

    def on_witness_reply(self, now: float, reply: WitnessReply) -> list[QuorumOutput]:
        """An answer from the witness; stale, duplicate and unsolicited answers are ignored."""
        w = self._witness
        if w is None or reply.seq <= w.reply_seq or reply.seq not in w.sent_at:
            return []
        # Validity counts from when the report was *sent*: the witness forgets a silent node
        # report_timeout after its last report, so a grant here always lapses before the witness could
        # hand the vote to another side (given witness_reply_timeout < the witness's report_timeout).
        w.valid_until = w.sent_at[reply.seq] + self.config.witness_reply_timeout
        w.reply_seq = reply.seq
        w.reply_view = frozenset(reply.view)
        w.granted = reply.granted
        return self._update(now)

    def tick(self, now: float) -> list[QuorumOutput]:
        """Send the periodic witness report and let a silent witness's vote expire."""
        out: list[QuorumOutput] = []
        w = self._witness
        if w is not None:
            if w.valid_until is not None and now >= w.valid_until:
                w.valid_until, w.granted = None, False  # the witness went silent: its vote lapses
            if now >= w.reports.next_at:
                w.reports.ran(now)
                out.append(self._report(now))
        return out + self._update(now)

    def on_beat(self, now: float, beat_interval: float) -> list[QuorumOutput]:
        """The failure detector's beat arrived: the periodic report goes with it when due about now."""
        w = self._witness
        if w is None or not w.reports.on_beat(now, beat_interval):
            return []
        return [self._report(now)]

    def report_from(self, when: float) -> None:
        """Send the periodic reports on the grid that starts at ``when`` (the node's pings')."""
        if self._witness is not None:
            self._witness.reports.next_at = when

    def next_deadline(self) -> float:
        w = self._witness
        if w is None:
            return float("inf")
        return min(w.reports.next_at, w.valid_until if w.valid_until is not None else float("inf"))

    # --- state ------------------------------------------------------------------------------------

    def _report(self, now: float) -> SendWitnessReport:
        w = self._witness
        assert w is not None
        timeout = self.config.witness_reply_timeout
        for seq in [s for s, sent in w.sent_at.items() if now - sent >= timeout]:
            del w.sent_at[seq]  # an answer to it could no longer count anyway
        w.report_seq += 1
        w.sent_at[w.report_seq] = now
        return SendWitnessReport(WitnessReport(sorted(self._members), w.report_seq))

    def _update(self, now: float) -> list[QuorumOutput]:
        state = self._compute(now)
        if state == self.state:
            return []
        self.state = state
        return [QuorumChanged(now, state)]

    def _witness_vote(self, now: float) -> bool:
        w = self._witness
        return (
            w is not None
            and w.valid_until is not None
            and now < w.valid_until
            and w.granted
            and w.reply_view == self._members
        )

    def _compute(self, now: float) -> QuorumState:
        cfg = self.config
        voters = frozenset(n for n, v in cfg.node_votes.items() if v > 0)
        if voters <= self._members:
            self._seen_all = True
        witness = self._witness_vote(now)
        votes = sum(cfg.node_votes.get(n, 0) for n in self._members) + (cfg.witness_votes if witness else 0)
        expected = max(cfg.expected, 1)
        needed = 1 if cfg.two_node else expected // 2 + 1
        base = QuorumState(False, self._members, votes, needed, expected, witness)
        if cfg.waits_for_all and not self._seen_all:
            missing = ", ".join(str(n) for n in sorted(voters - self._members))
            reason = f"waiting to see all nodes together once (missing: {missing})"
            return replace(base, waiting_for_all=True, reason=reason)
        if cfg.two_node:
            return self._two_node(base, voters)
        if votes >= needed:
            return replace(base, quorate=True, reason=f"quorate: {votes} of {expected} votes (need {needed})")
        return replace(base, reason=f"not quorate: {votes} of {expected} votes (need {needed})")

    def _two_node(self, base: QuorumState, voters: frozenset[int]) -> QuorumState:
        absent = voters - self._members
        unfenced = frozenset(absent - self._fenced)
        if not absent:
            return replace(base, quorate=True, reason="quorate: both nodes of the two_node cluster present")
        if unfenced:
            peer = ", ".join(str(n) for n in sorted(unfenced))
            return replace(
                base,
                awaiting_fence=unfenced,
                reason=f"two_node: peer {peer} is gone; quorate again once it is confirmed fenced",
            )
        return replace(base, quorate=True, reason="quorate alone: the two_node peer was confirmed fenced")
