"""Per-seed fault profiles ("swarm testing", as TigerBeetle's VOPR does): each seed draws its own mix of
faults, so some runs hammer one kind of fault while others switch it off entirely."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hakeeper.sim.network import NetworkProfile


@dataclass(frozen=True)
class FaultProfile:
    voters: int  # founding voters
    founding_witness: bool  # plus one vote-only member (e.g. two nodes and a witness)
    spare: int  # extra node ids that membership changes may add
    election_ticks: int
    heartbeat_ticks: int
    tick_ms: int
    max_inflight: int
    pre_vote: bool
    leader_sends_early: bool  # the leader sends appends before its own write is durable (thesis §10.2.1)
    check_quorum: bool
    max_entries: int
    network: NetworkProfile
    chaos_mean_ms: float  # mean time between faults
    crash: float  # relative weights of the faults
    torn_write: float
    pause: float
    partition: float
    one_way: float
    client_mean_ms: float  # mean time between client actions
    conf_change: float  # chance a client action is a membership change (else transfer/read/propose)
    transfer: float
    read: float
    compact_every: int  # a node snapshots once this many applied entries sit in its log
    compact_keep: int  # entries kept behind the snapshot for slow followers
    fault_ms: int  # length of the fault phase
    liveness_ms: int  # once faults heal: bound for electing a leader and committing a new entry
    replication_ms: int  # ... and for every member to catch up (a backlog may need many round trips)

    @staticmethod
    def random(rng: random.Random, fault_ms: int = 2000) -> FaultProfile:
        def sometimes(p_on: float, lo: float, hi: float) -> float:
            return rng.uniform(lo, hi) if rng.random() < p_on else 0.0

        election_ticks = rng.choice([6, 8, 10, 12])
        tick_ms = 10
        network = NetworkProfile(
            loss=sometimes(0.6, 0.0, 0.25),
            duplicate=sometimes(0.4, 0.0, 0.15),
            delay_min=1,
            delay_mean=rng.choice([0.5, 2.0, 5.0, 15.0]),
        )
        voters = rng.choice([1, 2, 3, 3, 3, 4, 5, 5])
        return FaultProfile(
            voters=voters,
            founding_witness=voters >= 2 and rng.random() < 0.3,
            spare=rng.choice([0, 1, 2]),
            election_ticks=election_ticks,
            heartbeat_ticks=rng.choice([1, 1, 2]),
            tick_ms=tick_ms,
            max_inflight=rng.choice([1, 2, 4, 8]),
            pre_vote=rng.random() < 0.85,
            leader_sends_early=rng.random() < 0.5,
            check_quorum=rng.random() < 0.85,
            max_entries=rng.choice([1, 3, 16, 64]),
            network=network,
            chaos_mean_ms=rng.choice([60.0, 150.0, 400.0]),
            crash=sometimes(0.7, 0.2, 1.0),
            torn_write=sometimes(0.5, 0.1, 0.6),
            pause=sometimes(0.5, 0.1, 0.6),
            partition=sometimes(0.7, 0.2, 1.0),
            one_way=sometimes(0.5, 0.1, 0.6),
            client_mean_ms=rng.choice([5.0, 20.0, 60.0]),
            conf_change=sometimes(0.6, 0.02, 0.15),
            transfer=sometimes(0.5, 0.01, 0.05),
            read=sometimes(0.5, 0.02, 0.2),
            compact_every=rng.choice([4, 12, 40, 10_000]),
            compact_keep=rng.choice([0, 2, 8]),
            fault_ms=fault_ms,
            liveness_ms=20 * election_ticks * tick_ms,
            replication_ms=100 * election_ticks * tick_ms,
        )
