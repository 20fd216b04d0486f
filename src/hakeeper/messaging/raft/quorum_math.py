"""The vote and commit arithmetic, kept pure so other quorum rules can be plugged in.

The core never counts heads itself: it asks a :class:`QuorumRule` whether an election is won and which index a
quorum has stored. :class:`Majority` is plain Raft. A rule with per-node weights, ``two_node`` or a witness's
vote can be added later by implementing the same two methods.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from typing import Protocol


class VoteResult(enum.Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


class QuorumRule(Protocol):
    def vote_result(self, voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
        """Given the voters and the votes received so far (node -> granted), has the election been decided?"""
        ...

    def committed_index(self, voters: Collection[int], match: Mapping[int, int]) -> int:
        """The highest index stored by a quorum of ``voters`` (``match``: node -> highest stored index)."""
        ...

    def has_quorum(self, voters: Collection[int], active: Collection[int]) -> bool:
        """Do the ``active`` nodes form a quorum of ``voters``?"""
        ...


class Majority:
    """More than half of the voters. An empty voter set never wins and commits nothing."""

    def vote_result(self, voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
        if not voters:
            return VoteResult.LOST
        need = len(voters) // 2 + 1
        granted = sum(1 for v in voters if votes.get(v) is True)
        missing = sum(1 for v in voters if v not in votes)
        if granted >= need:
            return VoteResult.WON
        if granted + missing >= need:
            return VoteResult.PENDING
        return VoteResult.LOST

    def committed_index(self, voters: Collection[int], match: Mapping[int, int]) -> int:
        if not voters:
            return 0
        stored = sorted((match.get(v, 0) for v in voters), reverse=True)
        return stored[len(voters) // 2]

    def has_quorum(self, voters: Collection[int], active: Collection[int]) -> bool:
        if not voters:
            return False
        present = set(active)
        return sum(1 for v in voters if v in present) >= len(voters) // 2 + 1
