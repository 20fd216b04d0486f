"""Membership: single-server changes, the founding configuration, and what a witness may store."""

from __future__ import annotations

from collections.abc import Sequence

from hakeeper.messaging.raft.messages import (
    NO_NODE,
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    encode_conf_state,
)


def apply_conf_change(conf: ConfState, change: ConfChange) -> ConfState | str:
    """The membership after ``change``, or a sentence explaining why the change is not allowed."""
    node = change.node_id
    voters, learners, witnesses = set(conf.voters), set(conf.learners), set(conf.witnesses)
    if node <= 0:
        return f"node id must be a positive integer, got {node}"
    if node in witnesses and change.kind is not ConfChangeKind.REMOVE_NODE:
        return f"node {node} is a witness; remove it first (and wipe its data) to give it another role"
    if change.kind in (ConfChangeKind.ADD_VOTER, ConfChangeKind.ADD_WITNESS):
        if node in voters:
            return f"node {node} is already a voter"
        if change.kind is ConfChangeKind.ADD_WITNESS:
            if node in learners:
                return f"node {node} is a learner and holds data; it cannot become a witness"
            witnesses.add(node)
        learners.discard(node)
        voters.add(node)
    elif change.kind is ConfChangeKind.ADD_LEARNER:
        if node in voters:
            return f"node {node} is a voter; remove it before adding it back as a learner"
        if node in learners:
            return f"node {node} is already a learner"
        learners.add(node)
    elif change.kind is ConfChangeKind.PROMOTE_LEARNER:
        if node not in learners:
            return f"node {node} is not a learner, so it cannot be promoted"
        learners.discard(node)
        voters.add(node)
    else:
        if node not in voters and node not in learners:
            return f"node {node} is not a member of the cluster"
        voters.discard(node)
        learners.discard(node)
        witnesses.discard(node)
        if not voters - witnesses:
            return f"node {node} is the last voter that can lead; the cluster cannot remove it"
    problem = _witness_balance_problem(len(voters - witnesses), len(witnesses))
    if problem:
        return problem
    return ConfState(tuple(sorted(voters)), tuple(sorted(learners)), tuple(sorted(witnesses)))


def _witness_balance_problem(data_voters: int, witnesses: int) -> str | None:
    """Witnesses must be fewer than the data-holding voters: then every quorum that commits without the
    leader's own vote includes another copy of the data, and a leader that removes itself never leaves
    committed entries that only it and the witnesses hold (nobody could then lead the cluster)."""
    if witnesses and witnesses >= data_voters:
        return (
            f"this membership would have {witnesses} witness(es) but only {data_voters} voter(s) holding "
            "data; a cluster needs more data-holding voters than witnesses"
        )
    return None


def strip_for_witness(entry: Entry) -> Entry:
    """What a witness stores: the entry's place and kind; membership entries keep their (small) data."""
    if entry.kind is EntryKind.CONFIG or not entry.data:
        return entry
    return Entry(entry.term, entry.index, entry.kind, b"")


def bootstrap(voters: Sequence[int], witnesses: Sequence[int] = ()) -> tuple[HardState, list[Entry]]:
    """The initial state every founding member writes to its empty storage: one committed membership entry.
    ``witnesses`` are extra vote-only members (start their nodes with ``RaftConfig(witness=True)``)."""
    ids = [*voters, *witnesses]
    if not voters or any(v <= 0 for v in ids) or len(set(ids)) != len(ids):
        raise ValueError(
            f"a cluster needs at least one voter and distinct positive ids, got voters {list(voters)} "
            f"and witnesses {list(witnesses)}"
        )
    problem = _witness_balance_problem(len(voters), len(witnesses))
    if problem:
        raise ValueError(problem)
    conf = ConfState(tuple(sorted(ids)), (), tuple(sorted(witnesses)))
    entry = Entry(term=1, index=1, kind=EntryKind.CONFIG, data=encode_conf_state(conf))
    return HardState(term=1, vote=NO_NODE, commit=1), [entry]
