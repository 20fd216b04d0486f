"""Consensus, abstracted for the CRM simulation: one ordered log of CIB changes with a leader (the DC).

Raft itself is simulated elsewhere (:mod:`hakeeper.sim.cluster`); here only what the CRM relies on matters:

- a proposal commits only if its proposer is the leader of the current term *and knows it* (a deposed leader
  that has not heard of the new term appends to a log that will be overwritten: its proposal is lost);
- one leader's entries commit in the order it proposed them;
- when leadership changes, a prefix of the old leader's uncommitted entries may still commit (they reached a
  majority before it fell), and the rest are lost — as in Raft;
- every node applies the same entries in the same order (the simulation delivers them with delays).

The CIB state machine is applied once per entry here (every node would compute the same result): each node
is handed the same :class:`~hakeeper.daemon.cib_state.Applied`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hakeeper.cib import model as m
from hakeeper.daemon.cib_state import Applied, CibStateMachine, LogEntry, encode_entry


@dataclass(frozen=True)
class Pending:
    term: int
    proposer: str
    entry: LogEntry


class SimLog:
    def __init__(self, cib: m.Cib) -> None:
        self.machine = CibStateMachine(cib)
        self.initial = cib
        self.entries: list[Applied] = []  # entries[i] is log index i + 1
        self.leader: str | None = None
        self.term = 0
        self.pending: list[Pending] = []
        self.whys: list[str] = []  # why each entry was proposed (for traces)

    @property
    def cib(self) -> m.Cib:
        return self.machine.cib

    @property
    def last_index(self) -> int:
        return len(self.entries)

    def accepts(self, proposer: str, proposer_term: int) -> bool:
        return proposer == self.leader and proposer_term == self.term

    def propose(self, proposer: str, proposer_term: int, entry: LogEntry) -> bool:
        """Queue ``entry`` for commit; False when it is lost (the proposer is not the current leader)."""
        if not self.accepts(proposer, proposer_term):
            return False
        self.pending.append(Pending(self.term, proposer, entry))
        return True

    def commit_next(self, term: int) -> Applied | None:
        """Commit the oldest pending entry of ``term`` (None if leadership changed meanwhile)."""
        if not self.pending or self.pending[0].term != term:
            return None
        return self._commit(self.pending.pop(0))

    def change_leader(self, leader: str | None, rng: random.Random) -> list[Applied]:
        """A new term with ``leader`` (None: an election is running). A random prefix of the old term's
        uncommitted entries commits first; the rest is lost."""
        keep = rng.randint(0, len(self.pending)) if self.pending else 0
        committed = [self._commit(p) for p in self.pending[:keep]]
        self.pending = []
        self.term += 1
        self.leader = leader
        return committed

    def _commit(self, pending: Pending) -> Applied:
        applied = self.machine.apply(self.last_index + 1, encode_entry(pending.entry))
        self.entries.append(applied)
        self.whys.append(pending.entry.why or pending.entry.request_id)
        return applied
