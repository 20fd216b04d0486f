"""hakeeper.sim: deterministic simulation of many nodes' sans-I/O cores in one process.

- :mod:`.cluster` — :class:`~hakeeper.sim.cluster.SimCluster`: Raft nodes on a virtual clock with a seeded
  network (:mod:`.network`), crashes that lose unsynced writes, pauses, partitions, clients, membership
  changes and snapshots; safety invariants (:mod:`.invariants`) after every step, then a liveness phase.
- :mod:`.profile` — per-seed fault profiles (swarm testing).
- :mod:`.runner` and ``python -m hakeeper.sim`` — seed sweeps and replays (``make soak`` runs 100,000 seeds).
- :mod:`.raftnet` — a small synchronous network for readable scenario and transcript tests.
"""
