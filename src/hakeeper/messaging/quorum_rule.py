"""A Raft :class:`QuorumRule` that follows the quorum core (votequorum's view of who may act).

Normally plain majority. In a two-voter cluster run with ``two_node`` or a witness, the quorum core may
declare a lone node quorate (its peer was confirmed fenced, or the witness gave it its vote); while it does,
and only while the peer is absent from its view, that node may win elections and commit alone.

Why this loses nothing: while both nodes are present the rule is strict majority, so every entry committed
then is on both nodes; the survivor therefore holds everything committed before the split. The quorum core
never lets both halves be quorate alone at once, so two lone leaders cannot commit side by side.
Pitfall (inherent to two-node clusters): entries the survivor commits alone exist only on it; if it dies and
the other node later becomes quorate alone, those entries are lost.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from hakeeper.messaging.quorum import QuorumState
from hakeeper.messaging.raft.quorum_math import Majority, VoteResult


class FollowQuorum:
    """Majority, relaxed to "me alone" while the quorum core says this lone node is quorate."""

    def __init__(self, local: int, lone_allowed: bool) -> None:
        """``lone_allowed``: the cluster runs two_node or with a witness (else this is plain majority)."""
        self.local = local
        self.lone_allowed = lone_allowed
        self._majority = Majority()
        self._alone = False

    def update(self, state: QuorumState) -> None:
        """Feed every quorum change in (the shell does this before the next Raft step)."""
        self._alone = self.lone_allowed and state.quorate and state.members == frozenset({self.local})

    @property
    def alone(self) -> bool:
        return self._alone

    def _may_act_alone(self, voters: Collection[int]) -> bool:
        return self._alone and self.local in voters and len(voters) == 2

    def vote_result(self, voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
        result = self._majority.vote_result(voters, votes)
        if result is not VoteResult.WON and self._may_act_alone(voters) and votes.get(self.local) is True:
            return VoteResult.WON
        return result

    def committed_index(self, voters: Collection[int], match: Mapping[int, int]) -> int:
        index = self._majority.committed_index(voters, match)
        if self._may_act_alone(voters):
            return max(index, match.get(self.local, 0))
        return index

    def has_quorum(self, voters: Collection[int], active: Collection[int]) -> bool:
        if self._majority.has_quorum(voters, active):
            return True
        return self._may_act_alone(voters) and self.local in active
