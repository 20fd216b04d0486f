"""The witness arbiter alone: who gets the vote, and stickiness."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hakeeper.messaging.witness import (
    WitnessArbiter,
    WitnessReply,
    WitnessReport,
    witness_decoder,
    witness_encoder,
)


def granted(arbiter: WitnessArbiter, now: float, node: int, view: set[int]) -> bool:
    return arbiter.on_report(now, node, view).granted


def test_messages_round_trip() -> None:
    for msg in (WitnessReport([1, 2]), WitnessReply([1], True, [1])):
        assert witness_decoder.decode(witness_encoder.encode(msg)) == msg


def test_whole_cluster_holds_the_vote() -> None:
    w = WitnessArbiter()
    assert granted(w, 0.0, 1, {1, 2}) is False  # node 2 has not confirmed this view yet
    assert granted(w, 0.0, 2, {1, 2}) is True
    assert granted(w, 0.1, 1, {1, 2}) is True


def test_even_split_goes_to_lowest_node_id() -> None:
    w = WitnessArbiter()
    w.on_report(0.0, 1, {1, 2})
    w.on_report(0.0, 2, {1, 2})
    # Node 2 notices the split first: while node 1 still reports the old view, nobody new gets the vote.
    assert granted(w, 0.1, 2, {2}) is False
    assert granted(w, 0.15, 1, {1}) is True
    assert granted(w, 0.2, 2, {2}) is False
    assert w.holder == {1}


def test_largest_partition_wins() -> None:
    w = WitnessArbiter()
    for n in (1, 2, 3, 4):
        w.on_report(0.0, n, {1, 2, 3, 4})
    w.on_report(0.1, 1, {1})
    for n in (2, 3, 4):
        w.on_report(0.1, n, {2, 3, 4})
    assert w.holder == {2, 3, 4}
    assert granted(w, 0.2, 1, {1}) is False
    assert granted(w, 0.2, 3, {2, 3, 4}) is True


def test_dead_side_loses_the_vote_after_report_timeout() -> None:
    w = WitnessArbiter(report_timeout=0.5)
    w.on_report(0.0, 1, {1, 2})
    w.on_report(0.0, 2, {1, 2})
    # Node 1 dies; its last report keeps the old view alive until it expires.
    assert granted(w, 0.4, 2, {2}) is False
    assert granted(w, 0.5, 2, {2}) is True
    assert w.holder == {2}


def test_sticky_holder_keeps_vote_against_a_lower_id() -> None:
    w = WitnessArbiter(report_timeout=0.5)
    w.on_report(0.0, 2, {2})
    assert w.holder == {2}
    # Node 1 appears alone (partitioned from node 2): lower id, same size, but node 2 keeps the vote.
    for t in (0.1, 0.2, 0.3):
        assert granted(w, t, 1, {1}) is False
        assert granted(w, t, 2, {2}) is True
    # They merge: the vote follows the holder into the merged view, without a gap for node 2.
    assert granted(w, 0.4, 1, {1, 2}) is False
    assert granted(w, 0.4, 2, {1, 2}) is True
    assert granted(w, 0.45, 1, {1, 2}) is True


def test_view_always_contains_the_reporter() -> None:
    w = WitnessArbiter()
    reply = w.on_report(0.0, 3, set())
    assert reply.view == [3] and reply.granted


def test_bad_timeout_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        WitnessArbiter(report_timeout=0)


# --- safety: two different partitions never count the vote at the same time ----------------------

REPORT_TIMEOUT = 0.6
REPLY_TIMEOUT = 0.4  # the nodes' witness_reply_timeout, below the witness's report timeout

step = st.tuples(
    st.floats(min_value=0.0, max_value=0.3),  # time passing before this report
    st.integers(min_value=1, max_value=4),  # reporting node
    st.frozensets(st.integers(min_value=1, max_value=4)),  # its view (itself added)
    st.booleans(),  # the reply is lost
    st.floats(min_value=0.0, max_value=0.05),  # network delay to the witness
)


Step = tuple[float, int, frozenset[int], bool, float]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=60))
@example(  # node 1 holds the vote then falls silent; node 2 takes it over once node 1's report expires
    [
        (0.0, 1, frozenset({1}), False, 0.0),
        (0.3, 2, frozenset({2}), False, 0.0),
        (0.3, 2, frozenset({2}), False, 0.0),
    ]
)
def test_never_two_partitions_with_the_vote(steps: list[Step]) -> None:
    w = WitnessArbiter(report_timeout=REPORT_TIMEOUT)
    now = witness_now = 0.0
    current: dict[int, frozenset[int]] = {}
    grant: dict[int, tuple[float, frozenset[int], bool]] = {}  # node -> (report sent at, view, granted)
    for dt, node, view, lost, delay in steps:
        now += dt
        witness_now = max(witness_now, now + delay)
        current[node] = view | {node}
        reply = w.on_report(witness_now, node, current[node])
        if not lost:
            grant[node] = (now, frozenset(reply.view), reply.granted)
        counted = {
            v for n, (sent, v, ok) in grant.items() if ok and v == current[n] and now < sent + REPLY_TIMEOUT
        }
        assert len(counted) <= 1, (now, counted)
