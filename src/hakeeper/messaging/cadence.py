"""A periodic deadline that can follow a beat (sans-I/O): how a node's own periodic work shares the wake-ups
that the packets it must receive anyway cost.

On an idle cluster a node's CPU is mostly wake-ups: about 100 us of kernel and 70 us of event loop each on a
small VM, whatever little work they do. Every node has to receive its peers' heartbeats every interval, so
those wake-ups are paid in any case. Its own periodic work (pinging its higher-id peers, the Raft tick) on a
phase of its own costs one more wake-up each time. So that work follows the **beat**: the pings of the
lowest-id peer that is up, which every other node receives. The lowest-id node keeps its own timer, and
every other node's work lands in the wake-up that the beat's ping causes.

The deadline stays the backstop: work that finds no beat runs on time all the same, and one that has
locked on waits only a little longer than an interval (``BEAT_LAG``) for the next beat before running
alone. Locking on costs at most one early run (by up to half a beat) or one late run (by up to half a beat
and the lag); after that the work runs once every beat (or every n-th beat for an interval of n beats).
Work whose interval is not a whole number of beats keeps to its own timer: following the beat would round
its interval. Beats that come faster than expected (a peer configured with a shorter heartbeat interval)
cannot hold the work off: it is moved at most once between two runs.
"""

from __future__ import annotations

from dataclasses import dataclass

BEAT_LAG = 0.25
"""How long after the expected beat the deadline falls, as a share of the beat interval: a beat that is a
little late (a busy sender, a timer that fires late) still finds the work waiting for it."""


@dataclass
class Cadence:
    """When a periodic job next runs (``next_at``), every ``interval`` seconds."""

    interval: float
    next_at: float
    postponed: bool = False  # since the job last ran: once only, or beats faster than ours would starve it

    def ran(self, now: float) -> None:
        """The job ran at its deadline. Keep the cadence, but after a stall (a paused process) restart it
        rather than run in a burst."""
        self.next_at = max(self.next_at + self.interval, now + self.interval / 2)
        self.postponed = False

    def on_beat(self, now: float, beat_interval: float) -> bool:
        """A beat arrived at ``now``: True when the job should run now (its deadline is then moved to just
        after the beat one interval on). A deadline that would otherwise fall between this beat and the
        next is moved to just after the next one, which the job then runs with."""
        beats = self.interval / beat_interval
        if round(beats) < 1 or abs(beats - round(beats)) > 0.05:
            return False  # not a whole number of beats: on the beat, it would run too often or too rarely
        lead = self.next_at - now
        if lead <= beat_interval / 2:
            self.next_at = now + self.interval + beat_interval * BEAT_LAG
            self.postponed = False
            return True
        if lead < beat_interval and not self.postponed:
            self.next_at = now + beat_interval * (1 + BEAT_LAG)
            self.postponed = True
        return False
