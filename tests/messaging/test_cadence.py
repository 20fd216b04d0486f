"""A periodic job that follows a beat: it locks on from any phase, keeps its rate, falls back on its timer."""

from __future__ import annotations

import itertools
import random

import pytest

from hakeeper.messaging.cadence import BEAT_LAG, Cadence

BEAT = 0.1


def drive(cadence: Cadence, beats: list[float], end: float) -> tuple[list[float], list[float]]:
    """Run the job's timer and the beats in time order: (times it ran on a beat, on its timer)."""
    on_beat: list[float] = []
    on_timer: list[float] = []
    pending = sorted(beats)
    while True:
        beat = pending[0] if pending else float("inf")
        if min(beat, cadence.next_at) > end:
            return on_beat, on_timer
        if cadence.next_at < beat:
            on_timer.append(cadence.next_at)
            cadence.ran(cadence.next_at)
        else:
            pending.pop(0)
            if cadence.on_beat(beat, BEAT):
                on_beat.append(beat)


@pytest.mark.parametrize("phase", [0.0, 0.01, 0.049, 0.05, 0.051, 0.07, 0.099])
def test_locks_onto_the_beat_from_any_phase(phase: float) -> None:
    cadence = Cadence(BEAT, phase)
    beats = [0.1 * k + 0.0005 for k in range(1, 50)]
    on_beat, on_timer = drive(cadence, beats, 5.0)
    assert len(on_timer) <= 2  # before the first beat, and at most once more on its own phase
    assert len(on_beat) >= len(beats) - 2
    runs = sorted(on_beat + on_timer)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert min(gaps) >= BEAT / 2 - 1e-9  # locking on runs early by at most half a beat, once
    assert max(gaps) <= BEAT * (1.5 + BEAT_LAG) + 1e-9  # or late by at most half a beat and the lag


@pytest.mark.parametrize(("jitter", "least_rate", "most_on_timer"), [(0.005, 0.98, 2), (0.02, 0.85, 20)])
def test_keeps_its_rate_under_jitter(jitter: float, least_rate: float, most_on_timer: int) -> None:
    """Beats early or late by a little (a busy sender) or by a lot: the job runs about once per interval,
    never twice within half a beat, and never waits much longer than an interval."""
    rng = random.Random(5)
    cadence = Cadence(BEAT, 0.03)
    beats = [0.1 * k + rng.uniform(-jitter, jitter) for k in range(1, 101)]
    on_beat, on_timer = drive(cadence, beats, 10.0)
    assert 100 * least_rate <= len(on_beat) + len(on_timer) <= 101
    assert len(on_timer) <= most_on_timer
    runs = sorted(on_beat + on_timer)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert min(gaps) >= BEAT / 2 - 1e-9 and max(gaps) <= BEAT * (1.5 + BEAT_LAG) + 2 * jitter


def test_without_beats_it_keeps_its_cadence() -> None:
    cadence = Cadence(BEAT, 0.05)
    _, on_timer = drive(cadence, [], 1.0)
    assert on_timer == pytest.approx([0.05 + 0.1 * k for k in range(10)])


def test_after_the_beat_stops_it_runs_alone_at_once() -> None:
    cadence = Cadence(BEAT, 0.0)
    on_beat, on_timer = drive(cadence, [0.1 * k for k in range(1, 11)], 2.0)
    assert on_timer[0] == 0.0 and on_beat[-1] == pytest.approx(1.0)
    assert on_timer[1] == pytest.approx(1.0 + BEAT * (1 + BEAT_LAG))  # the first missed beat, plus the lag
    assert len(on_timer) == 1 + 9


def test_a_longer_interval_runs_on_every_other_beat() -> None:
    cadence = Cadence(2 * BEAT, 0.0)
    on_beat, on_timer = drive(cadence, [0.1 * k + 0.001 for k in range(1, 41)], 4.0)
    assert 19 <= len(on_beat) <= 21 and len(on_timer) <= 1


def test_a_stall_restarts_the_cadence_instead_of_a_burst() -> None:
    cadence = Cadence(BEAT, 0.1)
    cadence.ran(5.0)  # the process was paused for five seconds
    assert cadence.next_at == pytest.approx(5.05)


def test_beats_faster_than_ours_cannot_starve_the_job() -> None:
    """A peer with a heartbeat interval half ours: the job is moved at most once between runs."""
    cadence = Cadence(BEAT, 0.0)
    on_beat, on_timer = drive(cadence, [0.05 * k + 0.001 for k in range(1, 200)], 10.0)
    runs = sorted(on_beat + on_timer)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert len(runs) >= 10.0 / (2 * BEAT) and max(gaps) <= 2 * BEAT + 1e-9


@pytest.mark.parametrize("interval", [0.15, 0.25, 0.05])
def test_an_interval_that_is_not_a_whole_number_of_beats_keeps_its_own_timer(interval: float) -> None:
    """Following the beat would round the interval (a Raft tick of 15 ms on 10 ms beats would come every
    20 ms, and elections take a third longer): such a job keeps its own rate on its timer."""
    cadence = Cadence(interval, 0.003)
    on_beat, on_timer = drive(cadence, [0.1 * k + 0.0003 for k in range(1, 100)], 10.0)
    assert on_beat == [] and len(on_timer) == pytest.approx(10.0 / interval, abs=1)
