"""A seeded simulated network: per-packet loss, delay (which also reorders), duplication, and partitions.

Modelled on TigerBeetle's packet simulator: a delay is ``delay_min`` plus an exponential tail with mean
``delay_mean``; partitions are sets of blocked *directed* links, so a one-way (asymmetric) cut is as easy as a
symmetric one. Nothing here knows about Raft: it only decides when (and how many times) a packet arrives.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class NetworkProfile:
    loss: float = 0.0  # probability a packet is dropped
    duplicate: float = 0.0  # probability a packet is delivered twice
    delay_min: int = 1  # time units
    delay_mean: float = 1.0  # mean of the exponential extra delay


PERFECT = NetworkProfile()


class SimNetwork:
    def __init__(self, rng: random.Random, profile: NetworkProfile) -> None:
        self._rng = rng
        self.profile = profile
        self._blocked: set[tuple[int, int]] = set()
        self.dropped = 0
        self.duplicated = 0

    def arrival_delays(self, frm: int, to: int) -> list[int]:
        """Delays after which copies of one packet from ``frm`` arrive at ``to`` (empty: lost)."""
        if (frm, to) in self._blocked:
            self.dropped += 1
            return []
        p = self.profile
        rng = self._rng
        if p.loss and rng.random() < p.loss:
            self.dropped += 1
            return []
        delays = [p.delay_min + int(rng.expovariate(1.0 / p.delay_mean))]
        if p.duplicate and rng.random() < p.duplicate:
            self.duplicated += 1
            delays.append(p.delay_min + int(rng.expovariate(1.0 / p.delay_mean)))
        return delays

    def blocked(self, frm: int, to: int) -> bool:
        return (frm, to) in self._blocked

    def partition(self, side_a: Iterable[int], side_b: Iterable[int]) -> None:
        """Cut every link between the two sides, both ways."""
        b = list(side_b)
        for x in side_a:
            for y in b:
                self._blocked |= {(x, y), (y, x)}

    def cut_one_way(self, frm: int, to: int) -> None:
        """An asymmetric fault: ``frm`` can no longer reach ``to``, but ``to`` still reaches ``frm``."""
        self._blocked.add((frm, to))

    def heal(self) -> None:
        self._blocked.clear()

    def describe_cuts(self) -> str:
        return ",".join(f"{a}->{b}" for a, b in sorted(self._blocked)) or "none"
