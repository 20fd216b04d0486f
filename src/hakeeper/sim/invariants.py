"""Safety invariants checked after every simulation step.

The checker keeps a global view built from what nodes do, and raises :class:`InvariantViolation` as soon as:

- two nodes are leader in the same term (election safety);
- two logs hold an entry with the same index and term but different contents or different predecessors
  (log matching: by induction, logs that agree at an index agree on everything before it);
- an entry known to be committed changes, or a node applies something other than the one committed history
  (state-machine safety: every node's applied sequence is a prefix of one history);
- a new leader lacks an entry committed in an earlier term (leader completeness);
- a leader's commit index is not backed by a quorum of durable copies (nothing commits without a quorum);
- a ReadIndex answer is older than an entry already known to be committed when the read was asked.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

from hakeeper.messaging.raft.core import RaftNode
from hakeeper.messaging.raft.messages import Entry
from hakeeper.messaging.raft.quorum_math import Majority


class InvariantViolation(AssertionError):
    """A safety property of Raft was broken: the seed that produced this is a bug report."""


def entry_digest(entry: Entry) -> int:
    return zlib.crc32(entry.data, (entry.term << 2) | int(entry.kind))


def chain(previous: int, entry: Entry) -> int:
    """The running digest of a state machine after applying ``entry``."""
    return zlib.crc32(entry.index.to_bytes(8, "little") + entry.data, previous ^ (entry.term << 3))


class SafetyChecker:
    def __init__(self) -> None:
        self.leader_of_term: dict[int, int] = {}
        self.entry_ids: dict[
            tuple[int, int], tuple[int, int | None]
        ] = {}  # (index, term) -> (digest, prev term)
        self.committed_terms: list[int] = [0]  # committed_terms[i] = term of committed entry i (dense)
        # The term in which each entry was first seen committed: an upper bound of the term that committed it.
        self.commit_seen_in: list[int] = [0]
        self.history: list[int] = [0]  # history[i] = state-machine digest after applying entry i
        self.history_entries: list[Entry | None] = [None]

    # -- election safety --
    def note_role(self, node: RaftNode) -> bool:
        """Record a leader; returns True if it became leader of this term just now."""
        if not node.is_leader:
            return False
        holder = self.leader_of_term.setdefault(node.term, node.id)
        if holder != node.id:
            raise InvariantViolation(f"two leaders in term {node.term}: node {holder} and node {node.id}")
        return True

    # -- log matching --
    def note_persisted(
        self, node_id: int, entries: Sequence[Entry], term_of: Callable[[int], int | None]
    ) -> None:
        for e in entries:
            ident = (entry_digest(e), term_of(e.index - 1))
            seen = self.entry_ids.setdefault((e.index, e.term), ident)
            if seen[0] != ident[0]:
                raise InvariantViolation(
                    f"log matching: node {node_id} stored a different entry at index {e.index} term {e.term}"
                )
            if seen[1] is not None and ident[1] is not None and seen[1] != ident[1]:
                raise InvariantViolation(
                    f"log matching: node {node_id} holds index {e.index} term {e.term} after term "
                    f"{ident[1]}, another node after term {seen[1]}"
                )

    # -- commitment --
    @property
    def known_committed(self) -> int:
        return len(self.committed_terms) - 1

    def note_commit(self, node: RaftNode, from_index: int) -> int:
        """Record entries ``(from_index, commit]`` of ``node`` as committed; returns the new checked index."""
        commit = node.commit_index
        for i in range(from_index + 1, commit + 1):
            term = node.log.term(i)
            if term is None:
                # Compacted into a snapshot (the state-machine check covers its contents): take the term from
                # the applied history, or stop here and look again after someone applies it.
                if i < len(self.committed_terms):
                    continue
                applied = self.history_entries[i] if i < len(self.history_entries) else None
                if applied is None:
                    return i - 1
                term = applied.term
            if i < len(self.committed_terms):
                if self.committed_terms[i] != term:
                    raise InvariantViolation(
                        f"committed entry {i} changed: it had term {self.committed_terms[i]}, node {node.id} "
                        f"holds term {term} there with commit index {commit}"
                    )
            elif i == len(self.committed_terms):
                self.committed_terms.append(term)
                self.commit_seen_in.append(node.term)
            else:
                return i - 1  # beyond the known prefix: look again once the gap is filled
        return max(from_index, commit)

    def check_leader_complete(self, node: RaftNode) -> None:
        """A leader of term T holds every entry committed in an earlier term. (A slow candidate may still
        win an *older* term after later entries commit; those entries are not its business.)"""
        first = max(node.log.first_index(), 1)
        for i in range(self.known_committed, 0, -1):
            if self.commit_seen_in[i] >= node.term:
                continue
            if i >= first and node.log.term(i) != self.committed_terms[i]:
                raise InvariantViolation(
                    f"leader completeness: node {node.id} became leader of term {node.term} without "
                    f"committed entry {i} (term {self.committed_terms[i]}; it holds term {node.log.term(i)})"
                )
            if i < first:
                break  # covered by the leader's snapshot
        return

    def check_commit_quorum(
        self, leader: RaftNode, commit: int, holds_durably: Callable[[int, int, int], bool]
    ) -> None:
        """``holds_durably(node, index, term)``: is that entry (or a snapshot past it) on the node's disk?"""
        want = leader.log.term(commit)
        if want is None:
            return
        holders = [v for v in leader.voters if holds_durably(v, commit, want)]
        if not Majority().has_quorum(leader.voters, holders):
            raise InvariantViolation(
                f"commit without quorum: leader {leader.id} (term {leader.term}) committed {commit} but "
                f"only nodes {holders} of voters {list(leader.voters)} hold it durably"
            )

    # -- state machines --
    def note_applied(self, node_id: int, entry: Entry, digest_before: int) -> int:
        i = entry.index
        digest = chain(digest_before, entry)
        if i < len(self.history):
            if self.history[i] != digest:
                raise InvariantViolation(
                    f"state-machine safety: node {node_id} applied a different history at index {i} "
                    f"(its entry: term {entry.term}, {entry.data[:40]!r}; first: {self.history_entries[i]})"
                )
        elif i == len(self.history):
            if digest_before != self.history[i - 1]:
                raise InvariantViolation(f"state-machine safety: node {node_id} diverged before index {i}")
            self.history.append(digest)
            self.history_entries.append(entry)
        else:
            raise InvariantViolation(
                f"node {node_id} applied index {i}, but the history only reaches {len(self.history) - 1}"
            )
        return digest

    def check_restored(self, node_id: int, index: int, digest: int) -> None:
        if index >= len(self.history) or self.history[index] != digest:
            raise InvariantViolation(
                f"node {node_id} restored a snapshot at index {index} that no committed history matches"
            )

    def check_read(self, node_id: int, read_index: int, committed_when_asked: int) -> None:
        if read_index < committed_when_asked:
            raise InvariantViolation(
                f"linearizability: node {node_id} answered a read at index {read_index}, but index "
                f"{committed_when_asked} was already committed when the read was asked"
            )
