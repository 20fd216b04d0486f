"""N Raft nodes in one process on a virtual clock, driven by a heap of ``(time, seq, event)``.

A run is a pure function of its seed: the fault profile, the network, the election jitter and the client
all draw from generators seeded from it. Phase 1 injects faults (loss, delay, duplication, partitions,
crashes that lose unsynced writes, paused processes) while clients propose entries, change membership,
transfer leadership and ask for linearizable reads; :class:`SafetyChecker` runs after every step.
Phase 2 heals everything and requires a leader, a fresh commit and full replication within a bound (liveness).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from hakeeper.messaging.raft.core import Accepted, RaftConfig, RaftNode, Ready, Role, bootstrap
from hakeeper.messaging.raft.messages import ConfChange, ConfChangeKind, Entry, EntryKind, Message, Snapshot
from hakeeper.messaging.raft.storage import MemoryStorage
from hakeeper.sim.invariants import InvariantViolation, SafetyChecker
from hakeeper.sim.network import NetworkProfile, SimNetwork
from hakeeper.sim.profile import FaultProfile

NodeFactory = Callable[[RaftConfig, MemoryStorage, random.Random, int], RaftNode]


def default_factory(config: RaftConfig, storage: MemoryStorage, rng: random.Random, applied: int) -> RaftNode:
    return RaftNode(config, storage, rng, applied=applied)


class LivenessViolation(AssertionError):
    """The healed cluster did not elect a leader and replicate within the bound."""


# event kinds
_TICK, _DELIVER, _CHAOS, _HEAL_NET, _RESTART, _RESUME, _CLIENT, _END_FAULTS = range(8)
_EVENT_NAMES = ["tick", "deliver", "chaos", "heal-net", "restart", "resume", "client", "end-faults"]


@dataclass
class SimNode:
    id: int
    storage: MemoryStorage
    raft: RaftNode | None = None
    paused: bool = False
    retired: bool = False  # removed from the cluster and shut down by the operator
    started: bool = False
    witness: bool = False  # a vote-only member: holds no payloads, runs no state machine
    tick_ms: int = 10  # each node's clock runs at its own rate
    incarnation: int = 0  # bumped at each start, so a dead process's pending ticks are ignored
    durable_term_vote: tuple[int, int] = (0, 0)
    backlog: list[Message] = field(default_factory=list)
    applied: int = 0  # state machine: index and running digest
    digest: int = 0
    checked_commit: int = 0
    quorum_checked: int = 0
    leader_term: int = 0
    torn_next_write: bool = False
    reads: dict[bytes, int] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.raft is not None


@dataclass
class SimStats:
    events: int = 0
    commits: int = 0
    elections: int = 0
    crashes: int = 0
    conf_changes: int = 0
    snapshots_sent: int = 0
    reads: int = 0
    time: int = 0
    recovery_time: int = 0  # from the end of the faults until a leader committed a new entry
    replication_time: int = 0  # ... until every member had applied everything


class SimCluster:
    def __init__(
        self,
        seed: int,
        profile: FaultProfile | None = None,
        node_factory: NodeFactory = default_factory,
        trace_limit: int | None = 300,
    ) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self.profile = profile or FaultProfile.random(self._rng)
        self._net = SimNetwork(random.Random(self._rng.getrandbits(64)), self.profile.network)
        self._client_rng = random.Random(self._rng.getrandbits(64))
        self._factory = node_factory
        self.checker = SafetyChecker()
        self.stats = SimStats()
        self.trace: deque[str] = deque(maxlen=trace_limit)
        self._queue: list[tuple[int, int, int, int, object]] = []
        self._seq = 0
        self.now = 0
        self._healing = False
        self._heal_committed = False
        self._next_heal_proposal = 0
        self._heal_started = 0
        self._deadline = 0
        self._replication_deadline = 0
        self._proposals = 0
        self.nodes: dict[int, SimNode] = {}
        p = self.profile
        founders = list(range(1, p.voters + 1))
        witnesses = [p.voters + 1] if p.founding_witness else []
        hs, entries = bootstrap(founders, witnesses)
        for nid in range(1, p.voters + len(witnesses) + p.spare + 1):
            storage = MemoryStorage()
            if nid in founders or nid in witnesses:
                storage.save(hs, entries, None)
                storage.sync()
            drift = self._rng.choice([0, 0, -1, 1, -2, 2])
            self.nodes[nid] = SimNode(nid, storage, witness=nid in witnesses, tick_ms=p.tick_ms + drift)
        for nid in [*founders, *witnesses]:
            self._start(self.nodes[nid])
        self._push(self._exp(p.chaos_mean_ms), _CHAOS, 0, None)
        self._push(self._exp(p.client_mean_ms), _CLIENT, 0, None)
        self._push(p.fault_ms, _END_FAULTS, 0, None)

    # ------------------------------------------------------------------ plumbing
    def _push(self, at: int, kind: int, node: int, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, node, payload))

    def _exp(self, mean: float) -> int:
        return self.now + 1 + int(self._rng.expovariate(1.0 / mean))

    def _config(self, nid: int) -> RaftConfig:
        p = self.profile
        return RaftConfig(
            node_id=nid,
            witness=self.nodes[nid].witness,
            election_ticks=p.election_ticks,
            heartbeat_ticks=p.heartbeat_ticks,
            max_inflight=p.max_inflight,
            max_entries_per_append=p.max_entries,
            max_uncommitted=32,  # a client with bounded outstanding requests keeps catch-up bounded
            pre_vote=p.pre_vote,
            check_quorum=p.check_quorum,
        )

    def _start(self, node: SimNode) -> None:
        snap = node.storage.snapshot()
        node.applied, node.digest = 0, 0
        if snap.data and not node.witness:
            node.applied, node.digest = msgspec.msgpack.decode(snap.data, type=tuple[int, int])
            self.checker.check_restored(node.id, node.applied, node.digest)
        rng = random.Random(self._rng.getrandbits(64))
        node.raft = self._factory(self._config(node.id), node.storage, rng, node.applied)
        node.checked_commit = node.applied
        node.quorum_checked = node.raft.commit_index
        node.paused, node.backlog, node.torn_next_write, node.reads = False, [], False, {}
        node.retired, node.started = False, True
        node.incarnation += 1
        hs = node.storage.initial_state()[0]
        node.durable_term_vote = (hs.term, hs.vote)
        first_tick = self.now + self._rng.randrange(1, self.profile.tick_ms + 1)
        self._push(first_tick, _TICK, node.id, node.incarnation)

    def _crash(self, node: SimNode) -> None:
        node.storage.crash()  # unsynced writes are gone
        node.raft = None
        node.backlog = []
        self.stats.crashes += 1

    def leader(self) -> RaftNode | None:
        best: RaftNode | None = None
        for n in self.nodes.values():
            r = n.raft
            if r is not None and not n.paused and r.is_leader and (best is None or r.term > best.term):
                best = r
        return best

    # ------------------------------------------------------------------ the loop
    def run(self, max_events: int = 2_000_000) -> SimStats:
        while self._queue:
            at, _, kind, nid, payload = heapq.heappop(self._queue)
            self.now = at
            if self._healing and at > self._deadline and not self._heal_committed:
                raise LivenessViolation(self._liveness_report("elected a leader and committed a new entry"))
            if self._healing and at > self._replication_deadline:
                raise LivenessViolation(self._liveness_report("replicated everything to every member"))
            self.stats.events += 1
            if self.stats.events > max_events:
                raise LivenessViolation(f"simulation exceeded {max_events} events")
            self._handle(kind, nid, payload)
            if self._healing and self._is_live():
                self.stats.replication_time = self.now - self._heal_started
                break
        self.stats.time = self.now
        return self.stats

    def _handle(self, kind: int, nid: int, payload: object) -> None:
        if kind == _TICK:
            node = self.nodes[nid]
            if node.raft is None or payload != node.incarnation:
                return  # the tick chain of a crashed process ends; a restart starts a new one
            self._push(self.now + node.tick_ms, _TICK, nid, payload)
            if not node.paused:
                node.raft.tick()
                self._after_step(node, "tick")
        elif kind == _DELIVER:
            node = self.nodes[nid]
            assert isinstance(payload, tuple)
            msg: Message = payload[0]
            if node.raft is None:
                return
            if node.paused:
                node.backlog.append(msg)
                return
            node.raft.step(msg)
            self._after_step(node, type(msg).__name__)
        elif kind == _CHAOS:
            if not self._healing:
                self._chaos()
                self._push(self._exp(self.profile.chaos_mean_ms), _CHAOS, 0, None)
        elif kind == _HEAL_NET:
            self._net.heal()
            self._trace(0, "network healed")
        elif kind == _RESTART:
            node = self.nodes[nid]
            if node.raft is None and not node.retired:
                self._start(node)
                self._after_step(node, "restart")
        elif kind == _RESUME:
            self._resume(self.nodes[nid])
        elif kind == _CLIENT:
            self._client()
            self._push(self._exp(self.profile.client_mean_ms), _CLIENT, 0, None)
        elif kind == _END_FAULTS:
            self._begin_healing()

    def _resume(self, node: SimNode) -> None:
        if not node.paused or node.raft is None:
            return
        node.paused = False
        backlog, node.backlog = node.backlog, []
        for msg in backlog:
            if node.raft is None:
                return
            node.raft.step(msg)
            self._after_step(node, "resume:" + type(msg).__name__)

    # ------------------------------------------------------------------ one node's Ready round
    def _after_step(self, node: SimNode, what: str) -> None:
        raft = node.raft
        assert raft is not None
        if not raft.has_ready():
            # Nothing to persist, send or apply: no role, term or commit change worth checking (fast path
            # for most ticks). A check-quorum step-down sends nothing, but only ever removes a leader.
            if self.trace.maxlen != 0:
                self._trace(node.id, what, raft)
            return
        while raft.has_ready():
            if not self._process_ready(node, raft):
                self._trace(node.id, f"{what}: crashed mid-write")
                return
        self._check_node(node, raft)
        self._trace(node.id, what, raft)

    def _process_ready(self, node: SimNode, raft: RaftNode) -> bool:
        rd = raft.ready()
        early = self._may_send_early(node, rd)
        if early:
            self._send_all(rd.messages)
        if rd.must_persist():
            if rd.entries and not node.witness:
                self.checker.note_persisted(node.id, rd.entries, raft.log.term)
            node.storage.save(rd.hard_state, rd.entries, rd.snapshot)
            if node.torn_next_write:
                self._crash(node)  # the process died before fsync returned: nothing was sent or applied
                return False
            node.storage.sync()
            if rd.hard_state is not None:
                node.durable_term_vote = (rd.hard_state.term, rd.hard_state.vote)
            if raft.is_leader and rd.hard_state is not None and rd.hard_state.commit > node.quorum_checked:
                node.quorum_checked = rd.hard_state.commit
                self.checker.check_commit_quorum(raft, rd.hard_state.commit, self._holds_durably)
        if node.witness:
            self._witness_apply(node, rd.snapshot, rd.committed_entries)
        else:
            self._apply(node, rd.snapshot, rd.committed_entries)
        for e in rd.committed_entries:
            if self._healing and e.data.startswith(b"heal") and not self._heal_committed:
                self._heal_committed = True
                self.stats.recovery_time = self.now - self._heal_started
        self.stats.commits += len(rd.committed_entries)
        for rs in rd.read_states:
            asked = node.reads.pop(rs.ctx, None)
            if asked is not None:
                self.checker.check_read(node.id, rs.index, asked)
                self.stats.reads += 1
        if not early:
            self._send_all(rd.messages)
        raft.advance(rd)
        self._maybe_compact(node, raft)
        return True

    def _may_send_early(self, node: SimNode, rd: Ready) -> bool:
        """Raft thesis §10.2.1, as the message layer's shell does it: a leader whose term and vote are
        already durable may send its replication messages before its own copy is on disk."""
        if not self.profile.leader_sends_early or rd.role is not Role.LEADER or rd.snapshot is not None:
            return False
        hs = rd.hard_state
        return hs is None or (hs.term, hs.vote) == node.durable_term_vote

    def _send_all(self, messages: Sequence[Message]) -> None:
        for m in messages:
            if type(m).__name__ == "InstallSnapshot":
                self.stats.snapshots_sent += 1
            for delay in self._net.arrival_delays(m.frm, m.to):
                self._push(self.now + delay, _DELIVER, m.to, (m,))

    def _apply(self, node: SimNode, snapshot: Snapshot | None, entries: Sequence[Entry]) -> None:
        if snapshot is not None:
            node.applied, node.digest = msgspec.msgpack.decode(snapshot.data, type=tuple[int, int])
            self.checker.check_restored(node.id, node.applied, node.digest)
        for e in entries:
            node.digest = self.checker.note_applied(node.id, e, node.digest)
            node.applied = e.index

    def _witness_apply(self, node: SimNode, snapshot: Snapshot | None, entries: Sequence[Entry]) -> None:
        if snapshot is not None:
            node.applied = snapshot.meta.index
        if any(e.data for e in entries if e.kind is EntryKind.NORMAL):
            raise InvariantViolation(f"witness {node.id} was sent application data")
        if entries:
            node.applied = entries[-1].index

    def _holds_durably(self, nid: int, index: int, term: int) -> bool:
        storage = self.nodes[nid].storage
        if index < storage.durable_first_index():
            return True
        return storage.durable_term(index) == term

    def _maybe_compact(self, node: SimNode, raft: RaftNode) -> None:
        p = self.profile
        first = node.storage.first_index()
        if node.applied - first + 1 < p.compact_every or node.applied <= node.storage.snapshot().meta.index:
            return
        data = b"" if node.witness else msgspec.msgpack.encode((node.applied, node.digest))
        node.storage.create_snapshot(node.applied, raft.conf_state_at(node.applied), data)
        node.storage.compact(max(first - 1, node.applied - p.compact_keep))

    def _check_node(self, node: SimNode, raft: RaftNode) -> None:
        if self.checker.note_role(raft) and node.leader_term != raft.term:
            node.leader_term = raft.term
            self.stats.elections += 1
            self.checker.check_leader_complete(raft)
        if raft.commit_index > node.checked_commit:
            node.checked_commit = self.checker.note_commit(raft, node.checked_commit)

    # ------------------------------------------------------------------ faults
    def _chaos(self) -> None:
        p, rng = self.profile, self._rng
        weights = [p.crash, p.torn_write, p.pause, p.partition, p.one_way]
        if sum(weights) <= 0:
            return
        action = rng.choices(["crash", "torn", "pause", "partition", "one-way"], weights)[0]
        running = [n for n in self.nodes.values() if n.raft is not None]
        if not running:
            return
        victim = rng.choice(running)
        downtime = 1 + int(rng.expovariate(1.0 / (p.election_ticks * p.tick_ms * 2)))
        if action == "crash":
            self._crash(victim)
            self._push(self.now + downtime, _RESTART, victim.id, None)
            self._trace(victim.id, f"crash (restart in {downtime})")
        elif action == "torn":
            victim.torn_next_write = True
            self._push(self.now + downtime, _RESTART, victim.id, None)
            self._trace(victim.id, "will crash during its next write")
        elif action == "pause":
            victim.paused = True
            self._push(self.now + downtime, _RESUME, victim.id, None)
            self._trace(victim.id, f"paused for {downtime}")
        elif action == "partition":
            ids = list(self.nodes)
            rng.shuffle(ids)
            cut = rng.randrange(1, len(ids)) if len(ids) > 1 else 1
            self._net.partition(ids[:cut], ids[cut:])
            self._push(self.now + downtime, _HEAL_NET, 0, None)
            self._trace(0, f"partition {sorted(ids[:cut])} | {sorted(ids[cut:])}")
        else:
            other = rng.choice(list(self.nodes))
            if other != victim.id:
                self._net.cut_one_way(victim.id, other)
                self._push(self.now + downtime, _HEAL_NET, 0, None)
                self._trace(0, f"one-way cut {victim.id}->{other}")

    # ------------------------------------------------------------------ clients
    def _client(self) -> None:
        leader = self.leader()
        p, rng = self.profile, self._client_rng
        if leader is None:
            return
        if self._healing:
            self._start_missing_members(leader)
            self._propose_heal_marker(leader)
            return
        roll = rng.random()
        if roll < p.conf_change:
            self._change_membership(leader, rng)
        elif roll < p.conf_change + p.transfer:
            others = [v for v in leader.voters if v != leader.id]
            if others:
                leader.transfer_leadership(rng.choice(others))
                self._after_step(self.nodes[leader.id], "transfer-leadership")
        elif roll < p.conf_change + p.transfer + p.read:
            ctx = f"read{self._proposals}".encode()
            self._proposals += 1
            if leader.read_index(ctx) is None:
                self.nodes[leader.id].reads[ctx] = self.checker.known_committed
                self._after_step(self.nodes[leader.id], "read-index")
        else:
            self._proposals += 1
            leader.propose(b"op" + str(self._proposals).encode())
            self._after_step(self.nodes[leader.id], "propose")
        self._retire_removed(leader)

    def _start_missing_members(self, leader: RaftNode) -> None:
        """The operator starts any member the leader's configuration lists but that is not running (a node
        retired on one leader's view can come back through an older log that a later leader commits)."""
        for member in leader.conf_state.members():
            node = self.nodes[member]
            if node.raft is None:
                self._start(node)
                self._after_step(node, "started: listed as a member")

    def _propose_heal_marker(self, leader: RaftNode) -> None:
        """After the faults: one marker entry (retried each election timeout), so liveness means "a new entry
        commits and everything replicates", not "the cluster keeps up with an unbounded client"."""
        if self._heal_committed or self.now < self._next_heal_proposal:
            return
        self._next_heal_proposal = self.now + self.profile.election_ticks * self.profile.tick_ms
        self._proposals += 1
        leader.propose(b"heal" + str(self._proposals).encode())
        self._after_step(self.nodes[leader.id], "propose heal marker")

    def _change_membership(self, leader: RaftNode, rng: random.Random) -> None:
        voters, learners = leader.voters, leader.learners
        outsiders = [n for n in self.nodes if n not in voters and n not in learners]
        data_nodes = [n for n in outsiders if not self.nodes[n].witness]
        witness_able = [n for n in outsiders if self.nodes[n].witness or not self.nodes[n].started]
        choices: list[ConfChange] = []
        if data_nodes:
            choices.append(ConfChange(ConfChangeKind.ADD_LEARNER, rng.choice(data_nodes)))
            choices.append(ConfChange(ConfChangeKind.ADD_VOTER, rng.choice(data_nodes)))
        if witness_able:
            choices.append(ConfChange(ConfChangeKind.ADD_WITNESS, rng.choice(witness_able)))
        if learners:
            choices.append(ConfChange(ConfChangeKind.PROMOTE_LEARNER, rng.choice(learners)))
            choices.append(ConfChange(ConfChangeKind.REMOVE_NODE, rng.choice(learners)))
        if len(voters) > 1:
            choices.append(ConfChange(ConfChangeKind.REMOVE_NODE, rng.choice(voters)))
        if not choices:
            return
        change = rng.choice(choices)
        result = leader.propose_conf_change(change)
        if isinstance(result, Accepted):
            self.stats.conf_changes += 1
            joining = self.nodes[change.node_id]
            if change.kind is ConfChangeKind.ADD_WITNESS:
                joining.witness = True
            if joining.raft is None and change.kind is not ConfChangeKind.REMOVE_NODE:
                self._start(joining)
        self._after_step(self.nodes[leader.id], f"conf-change {change.kind.name} {change.node_id}")

    def _retire_removed(self, leader: RaftNode) -> None:
        """An operator shuts down nodes whose removal is committed (a removed node that never learned of its
        removal would otherwise keep campaigning forever, a known Raft nuisance)."""
        if self.nodes[leader.id].raft is not leader:
            return  # the leader crashed while proposing
        committed_conf = leader.conf_state_at(leader.applied_index)  # applied: durable and committed
        latest = leader.conf_state
        for node in self.nodes.values():
            nid = node.id
            gone = nid not in committed_conf.members() and nid not in latest.members()
            if gone and node.raft is not None and nid != leader.id and not node.retired:
                node.raft = None
                node.retired = True
                self._trace(nid, "retired (removed from the cluster)")

    # ------------------------------------------------------------------ healing and liveness
    def _begin_healing(self) -> None:
        self._healing = True
        self._heal_started = self.now
        # Without pre-vote a candidate with a stale configuration keeps bumping terms and can delay an
        # election by a few dozen timeouts (seen in simulation): allow it twice the time.
        slack = 1 if self.profile.pre_vote else 2
        self._deadline = self.now + self.profile.liveness_ms * slack
        self._replication_deadline = self.now + self.profile.replication_ms
        self._net.heal()
        self._net.profile = NetworkProfile(delay_min=1, delay_mean=2.0)
        self._trace(0, "faults end: network healed, every node restarted and resumed")
        for node in self.nodes.values():
            node.torn_next_write = False
            if node.raft is None and not node.retired and node.started:
                self._start(node)
            elif node.paused:
                self._resume(node)

    def _is_live(self) -> bool:
        if not self._heal_committed:
            return False
        leader = self.leader()
        if leader is None or leader.commit_index != leader.log.last_index():
            return False
        for m in leader.conf_state.members():
            r = self.nodes[m].raft
            if r is None or r.applied_index < leader.commit_index:
                return False
        return True

    def _liveness_report(self, goal: str) -> str:
        leader = self.leader()
        states = ", ".join(
            f"n{n.id}:{n.raft.role.value}/t{n.raft.term}/c{n.raft.commit_index}/a{n.raft.applied_index}"
            if n.raft is not None
            else f"n{n.id}:{'retired' if n.retired else 'down'}"
            for n in self.nodes.values()
        )
        who = f"leader {leader.id} (members {leader.conf_state.members()})" if leader else "no leader"
        return (
            f"liveness: {self.now - self._heal_started} time units after the faults healed, the cluster had "
            f"not {goal}: {who}; nodes {states}"
        )

    # ------------------------------------------------------------------ tracing
    def _trace(self, nid: int, what: str, raft: RaftNode | None = None) -> None:
        if self.trace.maxlen == 0:
            return
        if raft is None:
            self.trace.append(f"{self.now:>7} n{nid} {what}")
        else:
            role = "L" if raft.role is Role.LEADER else raft.role.value[0].upper()
            self.trace.append(f"{self.now:>7} n{nid} {what:<24} {role} t{raft.term} c{raft.commit_index}")


def run_seed_checked(seed: int, node_factory: NodeFactory = default_factory) -> SimStats:
    """Run one seed; raises InvariantViolation or LivenessViolation on failure."""
    return SimCluster(seed, node_factory=node_factory, trace_limit=0).run()


__all__ = ["InvariantViolation", "LivenessViolation", "SimCluster", "SimNode", "SimStats", "run_seed_checked"]
