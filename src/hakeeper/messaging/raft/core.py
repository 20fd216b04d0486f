"""The Raft consensus core: a sans-I/O state machine in the style of etcd-io/raft's RawNode.

Drive it with :meth:`RaftNode.tick` (abstract time), :meth:`RaftNode.step` (a message from a peer) and the
proposal methods; then collect the work with :meth:`RaftNode.ready` and acknowledge it with
:meth:`RaftNode.advance`. The Ready contract, in this order:

1. persist ``ready.snapshot``, ``ready.entries`` and ``ready.hard_state`` (atomically, and synced to disk);
2. only then send ``ready.messages`` (a vote or an acknowledgement must never leave before it is durable);
3. restore the application from ``ready.snapshot`` if any, then apply ``ready.committed_entries`` in order;
4. call ``advance(ready)``. Call ``ready()`` once per round and do not ``step``/``tick`` in between.

One allowed shortcut (Raft thesis §10.2.1): when ``ready.role`` is LEADER, there is no snapshot and the hard
state's term and vote are already durable, the messages may be sent before step 1. This is safe because the
leader counts its own entries toward a commit only after ``advance`` (once they are durable).

Features: pre-vote, check-quorum (a leader that cannot reach a quorum for an election timeout steps down, and
followers that heard from a live leader ignore disruptive vote requests), leadership transfer, snapshots and
InstallSnapshot, single-server membership changes that take effect when appended (Raft thesis §4.1), learners,
witnesses (vote-only members), ReadIndex, and flow control (at most ``max_inflight`` append batches in flight
per follower). Peers' malformed messages are dropped and counted, never raised.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from hakeeper.messaging.raft.log import RaftLog
from hakeeper.messaging.raft.membership import apply_conf_change as apply_conf_change  # re-exported
from hakeeper.messaging.raft.membership import bootstrap as bootstrap  # re-exported
from hakeeper.messaging.raft.membership import strip_for_witness
from hakeeper.messaging.raft.messages import (
    NO_NODE,
    AppendEntries,
    AppendResponse,
    ConfChange,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    RequestVote,
    Snapshot,
    TimeoutNow,
    VoteResponse,
    decode_conf_state,
    encode_conf_state,
)
from hakeeper.messaging.raft.progress import Progress, ProgressState
from hakeeper.messaging.raft.quorum_math import Majority, QuorumRule, VoteResult
from hakeeper.messaging.raft.storage import CompactedError, Storage, StorageCorruptionError
from hakeeper.messaging.raft.validate import well_formed


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True)
class RaftConfig:
    node_id: int
    election_ticks: int = 10  # followers campaign after a random [election_ticks, 2*election_ticks)
    heartbeat_ticks: int = 1
    max_inflight: int = 8  # append batches in flight per follower
    max_entries_per_append: int = 64
    max_uncommitted: int = 4096  # proposals are refused while this many entries await commit
    max_apply_batch: int = 1024
    pre_vote: bool = True
    check_quorum: bool = True
    witness: bool = False  # this node only votes: it never campaigns and accepts payload-free entries

    def __post_init__(self) -> None:
        if self.node_id <= 0:
            raise ValueError(f"raft node id must be a positive integer, got {self.node_id}")
        if self.heartbeat_ticks < 1 or self.election_ticks <= self.heartbeat_ticks:
            raise ValueError(
                f"raft timing: need 1 <= heartbeat_ticks < election_ticks, got heartbeat_ticks="
                f"{self.heartbeat_ticks}, election_ticks={self.election_ticks}"
            )
        if self.max_inflight < 1 or self.max_entries_per_append < 1:
            raise ValueError("raft flow control: max_inflight and max_entries_per_append must be at least 1")


class RejectReason(enum.Enum):
    NOT_LEADER = "not-leader"
    TRANSFER_IN_PROGRESS = "transfer-in-progress"
    CONF_CHANGE_PENDING = "conf-change-pending"
    TOO_MANY_UNCOMMITTED = "too-many-uncommitted"
    INVALID_CONF_CHANGE = "invalid-conf-change"
    NOT_READY = "not-ready"
    INVALID_TARGET = "invalid-target"


@dataclass(frozen=True)
class Accepted:
    index: int
    term: int


@dataclass(frozen=True)
class Rejected:
    reason: RejectReason
    detail: str
    leader_id: int = NO_NODE  # where to retry, when known


ProposeResult = Accepted | Rejected


@dataclass(frozen=True)
class ReadState:
    """The leader confirmed it was still leader after ``index`` was committed: once the application has
    applied ``index``, a read tagged ``ctx`` sees every write committed before the read was requested."""

    ctx: bytes
    index: int


@dataclass(frozen=True)
class Ready:
    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    messages: tuple[Message, ...]
    committed_entries: tuple[Entry, ...]
    read_states: tuple[ReadState, ...]
    role: Role
    leader_id: int

    def must_persist(self) -> bool:
        return self.hard_state is not None or bool(self.entries) or self.snapshot is not None


@dataclass
class _PendingRead:
    seq: int
    ctx: bytes
    index: int


@dataclass
class _ElectionState:
    votes: dict[int, bool] = field(default_factory=dict)


class RaftNode:
    """One member's Raft state machine. Not thread-safe; drive it from one place."""

    def __init__(
        self,
        config: RaftConfig,
        storage: Storage,
        rng: random.Random,
        quorum: QuorumRule | None = None,
        applied: int = 0,
    ) -> None:
        self.config = config
        self.id = config.node_id
        self._rng = rng
        self._quorum: QuorumRule = quorum or Majority()
        self.log = RaftLog(storage)
        hs, snap_conf = storage.initial_state()
        snap_index = storage.snapshot().meta.index
        if hs.commit > self.log.last_index():
            raise StorageCorruptionError(
                f"raft node {self.id}: the stored commit index {hs.commit} is beyond the last stored entry "
                f"{self.log.last_index()}; the log on disk is incomplete or damaged"
            )
        self.log.committed = max(self.log.committed, snap_index, hs.commit)
        self.log.applied = min(max(snap_index, applied), self.log.committed)
        self._term = hs.term
        self._vote = hs.vote
        self._prev_hard_state = hs
        self._conf_history: list[tuple[int, ConfState]] = [(snap_index, snap_conf)]
        self._load_conf_history(storage, snap_index)
        self.role = Role.FOLLOWER
        self.leader_id = NO_NODE
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._pending_reads: list[_PendingRead] = []
        self._read_seq = 0
        self._progress: dict[int, Progress] = {}
        self._election = _ElectionState()
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = config.election_ticks
        self._transferee = NO_NODE
        self._pending_conf_index = 0
        self._term_start_index = 0
        self.dropped_malformed = 0
        self.refused_stripped = 0
        self._reset_randomized_timeout()

    def _load_conf_history(self, storage: Storage, snap_index: int) -> None:
        lo = max(storage.first_index(), snap_index + 1)
        if lo > storage.last_index():
            return
        for e in storage.entries(lo, storage.last_index() + 1):
            if e.kind is EntryKind.CONFIG:
                self._conf_history.append((e.index, decode_conf_state(e.data)))

    # ------------------------------------------------------------------ observers
    @property
    def term(self) -> int:
        return self._term

    @property
    def vote(self) -> int:
        return self._vote

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def commit_index(self) -> int:
        return self.log.committed

    @property
    def applied_index(self) -> int:
        return self.log.applied

    @property
    def conf_state(self) -> ConfState:
        return self._conf_history[-1][1]

    @property
    def voters(self) -> tuple[int, ...]:
        return self.conf_state.voters

    @property
    def learners(self) -> tuple[int, ...]:
        return self.conf_state.learners

    @property
    def transferee(self) -> int:
        return self._transferee

    def conf_state_at(self, index: int) -> ConfState:
        """The membership in effect at log ``index`` (for snapshots the application takes)."""
        conf = self._conf_history[0][1]
        for at, c in self._conf_history:
            if at > index:
                break
            conf = c
        return conf

    def progress(self, node_id: int) -> Progress | None:
        """The leader's replication progress for a follower (None when not leader or unknown)."""
        return self._progress.get(node_id)

    # ------------------------------------------------------------------ time
    def tick(self) -> None:
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def leader_unreachable(self, delay_ticks: int) -> None:
        """The failure detector says our leader is down: stop honouring its lease and campaign after
        ``delay_ticks`` ticks (0: now) instead of waiting out the election timeout.

        Only liveness changes: the campaign still starts with a pre-vote (when configured), a vote still needs
        a majority, and a peer that still hears the leader keeps refusing (its lease). Survivors get
        different delays from the caller so that they do not split the vote."""
        if self.role is not Role.FOLLOWER or self.leader_id in (NO_NODE, self.id):
            return
        self.leader_id = NO_NODE
        if not self._promotable():
            return
        if delay_ticks <= 0:
            self._election_elapsed = 0
            self._campaign(transfer=False)
        else:
            self._election_elapsed = max(self._election_elapsed, self._randomized_timeout - delay_ticks)

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._promotable() and self._election_elapsed >= self._randomized_timeout:
            self._election_elapsed = 0
            self._campaign(transfer=False)

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self.config.election_ticks:
            self._election_elapsed = 0
            if self.config.check_quorum and not self._quorum_recently_active():
                self._become_follower(self._term, NO_NODE)
                return
            self._transferee = NO_NODE  # a transfer not done within an election timeout is abandoned
        for pr in self._progress.values():
            if pr.state is ProgressState.SNAPSHOT:
                pr.snapshot_elapsed += 1
                if pr.snapshot_elapsed >= self.config.election_ticks:
                    pr.become_probe()  # the snapshot (or its reply) was lost: try again
        if self._heartbeat_elapsed >= self.config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_recently_active(self) -> bool:
        active = [self.id] + [p for p, pr in self._progress.items() if pr.recent_active]
        for pr in self._progress.values():
            pr.recent_active = False
        return self._quorum.has_quorum(self.voters, active)

    def _promotable(self) -> bool:
        # A voter removed by a config entry that is not committed yet may still be needed to commit it, so it
        # keeps campaigning until the removal commits (Raft thesis §4.2.2).
        if self.config.witness:
            return False
        latest, committed = self.conf_state, self.conf_state_at(self.log.committed)
        if self.id in latest.witnesses or self.id in committed.witnesses:
            return False
        return self.id in latest.voters or self.id in committed.voters

    def _reset_randomized_timeout(self) -> None:
        n = self.config.election_ticks
        self._randomized_timeout = n + self._rng.randrange(n)

    # ------------------------------------------------------------------ role changes
    def _reset(self, term: int) -> None:
        if term != self._term:
            self._term = term
            self._vote = NO_NODE
        self.leader_id = NO_NODE
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._reset_randomized_timeout()
        self._transferee = NO_NODE
        self._election = _ElectionState()
        self._progress = {}
        self._pending_reads = []

    def _become_follower(self, term: int, leader: int) -> None:
        self._reset(term)
        self.role = Role.FOLLOWER
        self.leader_id = leader

    def _become_pre_candidate(self) -> None:
        # Pre-vote changes neither term nor vote, so a node cut off from the cluster cannot inflate its term.
        self.role = Role.PRE_CANDIDATE
        self.leader_id = NO_NODE
        self._election = _ElectionState()

    def _become_candidate(self) -> None:
        self._reset(self._term + 1)
        self._vote = self.id
        self.role = Role.CANDIDATE

    def _become_leader(self) -> None:
        self._reset(self._term)
        self.role = Role.LEADER
        self.leader_id = self.id
        last = self.log.last_index()
        for member in self.conf_state.members():
            if member != self.id:
                self._progress[member] = Progress(match=0, next=last + 1)
        # Raft §8 / thesis §4.1 fix: commit an entry of our own term before anything else (config changes,
        # reads) relies on knowing what is committed.
        self._term_start_index = last + 1
        self._pending_conf_index = max((i for i, _ in self._conf_history), default=0)
        self._append_local(EntryKind.EMPTY, b"")

    def _campaign(self, transfer: bool) -> None:
        if self.config.pre_vote and not transfer:
            self._become_pre_candidate()
            pre_vote, vote_term = True, self._term + 1
        else:
            self._become_candidate()
            pre_vote, vote_term = False, self._term
        if self._record_vote(self.id, True, pre_vote):
            return
        last_index, last_term = self.log.last_index(), self.log.last_term()
        for voter in self.voters:
            if voter != self.id:
                self._send(RequestVote(vote_term, self.id, voter, last_index, last_term, pre_vote, transfer))

    def _record_vote(self, voter: int, granted: bool, pre_vote: bool) -> bool:
        """Count a vote; returns True once the election is decided."""
        self._election.votes[voter] = granted
        result = self._quorum.vote_result(self.voters, self._election.votes)
        if result is VoteResult.WON:
            if pre_vote:
                self._start_real_election()
            else:
                self._become_leader()
            return True
        if result is VoteResult.LOST:
            self._become_follower(self._term, NO_NODE)
            return True
        return False

    def _start_real_election(self) -> None:
        self._become_candidate()
        if self._record_vote(self.id, True, pre_vote=False):
            return
        last_index, last_term = self.log.last_index(), self.log.last_term()
        for voter in self.voters:
            if voter != self.id:
                self._send(RequestVote(self._term, self.id, voter, last_index, last_term, False, False))

    # ------------------------------------------------------------------ messages in
    def step(self, msg: Message) -> None:
        """Handle one message from a peer. Messages not addressed to us, stale or malformed are dropped
        (malformed ones are counted in ``dropped_malformed``); bad input never raises."""
        if msg.to != self.id:
            return
        if not well_formed(msg):
            self.dropped_malformed += 1
            return
        if msg.term > self._term:
            if not self._adopt_higher_term(msg):
                return
        elif msg.term < self._term:
            self._answer_stale(msg)
            return
        self._dispatch(msg)

    def _adopt_higher_term(self, msg: Message) -> bool:
        """Handle a message from a higher term; returns False if it should be ignored."""
        if isinstance(msg, RequestVote):
            in_lease = (
                self.config.check_quorum
                and self.leader_id != NO_NODE
                and self._election_elapsed < self.config.election_ticks
            )
            if in_lease and not msg.transfer:
                return False  # we heard from a live leader recently: don't let a disruptive node depose it
            if msg.pre_vote:
                return True  # a pre-vote does not change our term
        if isinstance(msg, VoteResponse) and msg.pre_vote and msg.granted:
            return True  # granted pre-votes carry the term we will campaign in
        leader = msg.frm if isinstance(msg, AppendEntries | Heartbeat | InstallSnapshot) else NO_NODE
        timer = (self._election_elapsed, self._randomized_timeout)
        self._become_follower(msg.term, leader)
        if isinstance(msg, RequestVote):
            # Raft §5.2: only hearing from a leader or granting a vote restarts the election timer.
            # Otherwise a candidate with a stale log (and a fast clock) keeps resetting the up-to-date
            # nodes, which then never time out, and no one can win (seen in simulation without pre-vote).
            self._election_elapsed, self._randomized_timeout = timer
        return True

    def _answer_stale(self, msg: Message) -> None:
        if isinstance(msg, AppendEntries | Heartbeat):
            # Raft §5.1: answer a stale leader with our term. It would never learn of the new term otherwise:
            # our vote requests may be ignored by its followers' leases, and we may not campaign at all (a
            # learner in our own view of the configuration: simulator seed 2039833 stayed split forever).
            self._send(AppendResponse(self._term, self.id, msg.frm, index=0, reject=False))
        elif isinstance(msg, RequestVote):
            # Refuse with our term (Raft §5.1), so a candidate stuck in an old term catches up; if nobody
            # answered it, a candidate holding the only complete log could stay behind forever.
            self._send(VoteResponse(self._term, self.id, msg.frm, granted=False, pre_vote=msg.pre_vote))

    def _dispatch(self, msg: Message) -> None:
        if isinstance(msg, RequestVote):
            self._handle_vote_request(msg)
        elif isinstance(msg, VoteResponse):
            self._handle_vote_response(msg)
        elif isinstance(msg, AppendEntries | Heartbeat | InstallSnapshot):
            if self.role is Role.LEADER:
                return  # impossible for a correct peer: two leaders in one term
            if isinstance(msg, AppendEntries | InstallSnapshot) and msg.stripped and not self.config.witness:
                # The leader thinks we are a witness but we hold application data: storing payload-free
                # entries would corrupt our state machine, so refuse (a membership misconfiguration).
                self.refused_stripped += 1
                return
            if self.role is not Role.FOLLOWER:
                self._become_follower(self._term, msg.frm)
            self.leader_id = msg.frm
            self._election_elapsed = 0
            if isinstance(msg, AppendEntries):
                self._handle_append(msg)
            elif isinstance(msg, Heartbeat):
                self._handle_heartbeat(msg)
            else:
                self._handle_snapshot(msg)
        elif isinstance(msg, AppendResponse):
            if self.role is Role.LEADER:
                self._handle_append_response(msg)
        elif isinstance(msg, HeartbeatResponse):
            if self.role is Role.LEADER:
                self._handle_heartbeat_response(msg)
        elif isinstance(msg, TimeoutNow) and self.role is Role.FOLLOWER and self._promotable():
            self._campaign(transfer=True)

    # -- elections --
    def _handle_vote_request(self, msg: RequestVote) -> None:
        can_vote = (
            self._vote == msg.frm
            or (self._vote == NO_NODE and self.leader_id == NO_NODE)
            or (msg.pre_vote and msg.term > self._term)
        )
        if can_vote and self.log.is_up_to_date(msg.last_index, msg.last_term):
            self._send(VoteResponse(msg.term, self.id, msg.frm, granted=True, pre_vote=msg.pre_vote))
            if not msg.pre_vote:
                self._election_elapsed = 0
                self._vote = msg.frm
        else:
            self._send(VoteResponse(self._term, self.id, msg.frm, granted=False, pre_vote=msg.pre_vote))

    def _handle_vote_response(self, msg: VoteResponse) -> None:
        if msg.pre_vote:
            if self.role is not Role.PRE_CANDIDATE:
                return
            if msg.granted and msg.term != self._term + 1:
                return  # a grant left over from an earlier campaign
        elif self.role is not Role.CANDIDATE:
            return
        self._record_vote(msg.frm, msg.granted, msg.pre_vote)

    # -- follower side of replication --
    def _handle_append(self, msg: AppendEntries) -> None:
        if msg.prev_index < self.log.committed:
            self._send(AppendResponse(self._term, self.id, msg.frm, index=self.log.committed))
            return
        result = self.log.maybe_append(msg.prev_index, msg.prev_term, msg.commit, msg.entries)
        if result is None:
            hint_index, hint_term = self.log.find_conflict_by_term(
                min(msg.prev_index, self.log.last_index()), msg.prev_term
            )
            self._send(
                AppendResponse(
                    self._term,
                    self.id,
                    msg.frm,
                    index=msg.prev_index,
                    reject=True,
                    hint_index=hint_index,
                    hint_term=hint_term,
                )
            )
            return
        last_new, written = result
        self._note_written(written)
        self._send(AppendResponse(self._term, self.id, msg.frm, index=last_new))

    def _handle_heartbeat(self, msg: Heartbeat) -> None:
        self.log.commit_to(min(msg.commit, self.log.last_index()))
        self._send(HeartbeatResponse(self._term, self.id, msg.frm, read_seq=msg.read_seq))

    def _handle_snapshot(self, msg: InstallSnapshot) -> None:
        meta = msg.snapshot.meta
        if meta.index <= self.log.committed:
            self._send(AppendResponse(self._term, self.id, msg.frm, index=self.log.committed))
            return
        if self.log.match_term(meta.index, meta.term):
            self.log.commit_to(meta.index)  # we already hold this prefix: just learn that it is committed
            self._send(AppendResponse(self._term, self.id, msg.frm, index=self.log.committed))
            return
        self.log.restore(msg.snapshot)
        self._conf_history = [(meta.index, meta.conf)]
        self._send(AppendResponse(self._term, self.id, msg.frm, index=self.log.last_index()))

    def _note_written(self, written: Sequence[Entry]) -> None:
        """Keep the membership in step with the log: configs take effect when appended, and a truncated
        config entry takes its membership with it."""
        if not written:
            return
        first = written[0].index
        while len(self._conf_history) > 1 and self._conf_history[-1][0] >= first:
            self._conf_history.pop()
        changed = False
        for e in written:
            if e.kind is EntryKind.CONFIG:
                self._conf_history.append((e.index, decode_conf_state(e.data)))
                changed = True
        if changed and self.role is Role.LEADER:
            self._sync_progress_with_conf()

    # -- leader side of replication --
    def _handle_append_response(self, msg: AppendResponse) -> None:
        pr = self._progress.get(msg.frm)
        if pr is None:
            return
        pr.recent_active = True
        if msg.reject:
            hint = msg.hint_index
            if msg.hint_term > 0:
                hint, _ = self.log.find_conflict_by_term(msg.hint_index, msg.hint_term)
            if pr.maybe_decrease_to(msg.index, hint):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(msg.frm)
            return
        was_paused = pr.is_paused(self.config.max_inflight)
        if pr.maybe_update(msg.index):
            if pr.state is ProgressState.PROBE:
                pr.become_replicate()
            elif pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
                pr.become_probe()
                pr.become_replicate()
            if self._maybe_commit():
                self._broadcast_append()
            elif was_paused:
                self._send_append(msg.frm)
            while (
                self.role is Role.LEADER and msg.frm in self._progress and self._send_append(msg.frm, False)
            ):
                pass
            if msg.frm == self._transferee and pr.match == self.log.last_index():
                self._send(TimeoutNow(self._term, self.id, msg.frm))

    def _handle_heartbeat_response(self, msg: HeartbeatResponse) -> None:
        pr = self._progress.get(msg.frm)
        if pr is None:
            return
        pr.recent_active = True
        pr.probe_sent = False
        if pr.state is ProgressState.REPLICATE and len(pr.inflight) >= self.config.max_inflight:
            pr.inflight.popleft()  # an acknowledgement was probably lost: let one more batch go
        if pr.match < self.log.last_index():
            self._send_append(msg.frm)
        if msg.read_seq > pr.read_ack:
            pr.read_ack = msg.read_seq
            self._release_reads()

    def _send_append(self, to: int, send_if_empty: bool = True) -> bool:
        pr = self._progress[to]
        if pr.is_paused(self.config.max_inflight):
            return False
        prev = pr.next - 1
        prev_term = self.log.term(prev)
        if prev_term is None:
            return self._send_snapshot(to, pr)
        try:
            entries = self.log.slice(pr.next, self.log.last_index() + 1, self.config.max_entries_per_append)
        except CompactedError:
            return self._send_snapshot(to, pr)
        if not entries and not send_if_empty:
            return False
        witness = to in self.conf_state.witnesses
        if witness:
            entries = [strip_for_witness(e) for e in entries]
        self._send(
            AppendEntries(
                self._term, self.id, to, prev, prev_term, tuple(entries), self.log.committed, witness
            )
        )
        pr.sent_entries(entries[-1].index if entries else prev)
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        snap = self.log.snapshot()
        witness = to in self.conf_state.witnesses
        if witness:
            snap = Snapshot(snap.meta, b"")
        self._send(InstallSnapshot(self._term, self.id, to, snap, witness))
        pr.become_snapshot(snap.meta.index)
        return True

    def _broadcast_append(self) -> None:
        for peer in list(self._progress):
            self._send_append(peer)

    def _broadcast_heartbeat(self) -> None:
        for peer, pr in self._progress.items():
            commit = min(pr.match, self.log.committed)
            self._send(Heartbeat(self._term, self.id, peer, commit, self._read_seq))

    def _maybe_commit(self) -> bool:
        match = {p: pr.match for p, pr in self._progress.items()}
        # Our own copy counts only once it is durable (after advance): a shell may send this Ready's appends
        # before persisting them (Raft thesis §10.2.1), and must never announce a commit that a crash of this
        # node could still take back (a single voter would otherwise commit what it has not yet written).
        match[self.id] = min(self.log.unstable.offset - 1, self.log.last_index())
        index = self._quorum.committed_index(self.voters, match)
        # Only entries of the current term are committed by counting replicas (Raft §5.4.2).
        if index > self.log.committed and self.log.term(index) == self._term:
            self.log.commit_to(index)
            self._after_commit()
            return True
        return False

    def _after_commit(self) -> None:
        self._release_reads()
        self._maybe_hand_over()

    def _leaving(self) -> bool:
        """We lead a membership that no longer includes us (Raft thesis §4.2.2)."""
        return self.role is Role.LEADER and self.id not in self.voters

    def _maybe_hand_over(self) -> None:
        """Once our removal is committed, step down and tell a remaining voter that holds our whole log to
        campaign at once (TimeoutNow), so the cluster does not wait an election timeout for a new leader.
        Proposals are refused from the moment the removal is appended, so the committed removal is our last
        entry and a quorum of the new membership, which always includes a data voter, already holds it."""
        if not self._leaving() or self._conf_history[-1][0] > self.log.committed:
            return
        last, witnesses = self.log.last_index(), self.conf_state.witnesses
        for voter in self.voters:
            pr = self._progress.get(voter)
            if voter not in witnesses and pr is not None and pr.match == last:
                self._send(TimeoutNow(self._term, self.id, voter))
                break
        self._become_follower(self._term, NO_NODE)

    def _sync_progress_with_conf(self) -> None:
        members = set(self.conf_state.members()) - {self.id}
        for gone in set(self._progress) - members:
            del self._progress[gone]
        for new in members - set(self._progress):
            self._progress[new] = Progress(match=0, next=self.log.last_index() + 1)
        if self._transferee not in members:
            self._transferee = NO_NODE
        if self._maybe_commit():
            self._broadcast_append()

    # ------------------------------------------------------------------ proposals
    def propose(self, data: bytes) -> ProposeResult:
        """Append ``data`` to the log if we are leader; never raises for an ordinary refusal."""
        refusal = self._check_can_propose()
        if refusal is not None:
            return refusal
        return self._append_local(EntryKind.NORMAL, data)

    def propose_conf_change(self, change: ConfChange) -> ProposeResult:
        """Propose one membership change. One at a time: the previous one must be committed first."""
        refusal = self._check_can_propose()
        if refusal is not None:
            return refusal
        if self._pending_conf_index > self.log.committed:
            return Rejected(
                RejectReason.CONF_CHANGE_PENDING,
                f"membership change at index {self._pending_conf_index} is not committed yet; retry later",
                self.id,
            )
        if self.log.committed < self._term_start_index:
            return Rejected(
                RejectReason.NOT_READY,
                "the new leader has not committed an entry of its term yet; retry shortly",
                self.id,
            )
        conf_or_error = apply_conf_change(self.conf_state, change)
        if isinstance(conf_or_error, str):
            return Rejected(RejectReason.INVALID_CONF_CHANGE, conf_or_error, self.id)
        result = self._append_local(EntryKind.CONFIG, encode_conf_state(conf_or_error))
        self._pending_conf_index = result.index
        return result

    def _check_can_propose(self) -> Rejected | None:
        if self.role is not Role.LEADER:
            where = f"node {self.leader_id} is" if self.leader_id != NO_NODE else "no leader is known"
            return Rejected(
                RejectReason.NOT_LEADER, f"node {self.id} is not the leader ({where})", self.leader_id
            )
        if self._leaving():
            # An entry appended after our own removal can end up held only by a witness once we step down;
            # the witness may not lead and refuses every shorter log, so no election could ever succeed
            # again (simulator seed 1070251). Leave with the removal as our last entry.
            return Rejected(
                RejectReason.NOT_LEADER,
                f"node {self.id} has been removed from the cluster and is handing leadership to a remaining "
                "voter; retry there shortly",
            )
        if self._transferee != NO_NODE:
            return Rejected(
                RejectReason.TRANSFER_IN_PROGRESS,
                f"leadership is being handed to node {self._transferee}; retry there",
                self._transferee,
            )
        if self.log.last_index() - self.log.committed >= self.config.max_uncommitted:
            return Rejected(
                RejectReason.TOO_MANY_UNCOMMITTED,
                f"{self.config.max_uncommitted} entries are waiting for a quorum; retry when they commit",
                self.id,
            )
        return None

    def propose_many(self, items: Sequence[bytes]) -> ProposeResult:
        """Append several entries at once (one batch of appends to each follower): the throughput path.
        Returns the last entry's index, or a rejection that applies to the whole batch."""
        refusal = self._check_can_propose()
        if refusal is not None:
            return refusal
        if not items:
            return Accepted(self.log.last_index(), self._term)
        if self.log.last_index() + len(items) - self.log.committed > self.config.max_uncommitted:
            return Rejected(
                RejectReason.TOO_MANY_UNCOMMITTED,
                f"a batch of {len(items)} would exceed {self.config.max_uncommitted} entries awaiting quorum",
                self.id,
            )
        first = self.log.last_index() + 1
        return self._append_local_many([(EntryKind.NORMAL, data) for data in items], first)

    def _append_local(self, kind: EntryKind, data: bytes) -> Accepted:
        return self._append_local_many([(kind, data)], self.log.last_index() + 1)

    def _append_local_many(self, items: Sequence[tuple[EntryKind, bytes]], first: int) -> Accepted:
        entries = [Entry(self._term, first + i, kind, data) for i, (kind, data) in enumerate(items)]
        self.log.append(entries)
        self._note_written(entries)
        if self.role is Role.LEADER:
            self._maybe_commit()
        if self.role is Role.LEADER:
            for peer in list(self._progress):
                while self._send_append(peer, send_if_empty=False):
                    pass
        return Accepted(entries[-1].index, self._term)

    def transfer_leadership(self, target: int) -> Rejected | None:
        """Hand leadership to ``target`` once it has our whole log. Proposals are refused meanwhile; the
        attempt is abandoned after an election timeout."""
        if self.role is not Role.LEADER:
            return Rejected(RejectReason.NOT_LEADER, f"node {self.id} is not the leader", self.leader_id)
        if target == self.id or target not in self.voters or target in self.conf_state.witnesses:
            return Rejected(
                RejectReason.INVALID_TARGET,
                f"node {target} is not another voting member of this cluster that can lead",
                self.id,
            )
        if self._transferee == target:
            return None
        self._transferee = target
        self._election_elapsed = 0
        pr = self._progress[target]
        if pr.match == self.log.last_index():
            self._send(TimeoutNow(self._term, self.id, target))
        else:
            self._send_append(target)
        return None

    def read_index(self, ctx: bytes) -> Rejected | None:
        """Ask for a linearizable read point; the answer arrives as a ReadState in a later Ready."""
        if self.role is not Role.LEADER:
            return Rejected(RejectReason.NOT_LEADER, f"node {self.id} is not the leader", self.leader_id)
        if self.log.term(self.log.committed) != self._term:
            return Rejected(
                RejectReason.NOT_READY,
                "the new leader has not committed an entry of its term yet; retry shortly",
                self.id,
            )
        self._read_seq += 1
        self._pending_reads.append(_PendingRead(self._read_seq, ctx, self.log.committed))
        self._release_reads()
        if self._pending_reads:
            self._broadcast_heartbeat()
        return None

    def _release_reads(self) -> None:
        while self._pending_reads:
            read = self._pending_reads[0]
            confirmed = [self.id] + [p for p, pr in self._progress.items() if pr.read_ack >= read.seq]
            if not self._quorum.has_quorum(self.voters, confirmed):
                return
            self._pending_reads.pop(0)
            self._read_states.append(ReadState(read.ctx, read.index))

    # ------------------------------------------------------------------ Ready / Advance
    def _send(self, msg: Message) -> None:
        self._msgs.append(msg)

    def _hard_state(self) -> HardState:
        return HardState(self._term, self._vote, self.log.committed)

    def has_ready(self) -> bool:
        u = self.log.unstable
        return bool(
            self._msgs
            or u.entries
            or u.snapshot is not None
            or self._read_states
            or self._hard_state() != self._prev_hard_state
            or self.log.committed > self.log.applied
        )

    def ready(self) -> Ready:
        hs = self._hard_state()
        u = self.log.unstable
        rd = Ready(
            hard_state=hs if hs != self._prev_hard_state else None,
            entries=tuple(u.entries),
            snapshot=u.snapshot,
            messages=tuple(self._msgs),
            committed_entries=tuple(self.log.entries_to_apply(self.config.max_apply_batch)),
            read_states=tuple(self._read_states),
            role=self.role,
            leader_id=self.leader_id,
        )
        self._msgs = []
        self._read_states = []
        return rd

    def advance(self, rd: Ready) -> None:
        if rd.hard_state is not None:
            self._prev_hard_state = rd.hard_state
        if rd.snapshot is not None:
            self.log.stable_snapshot_to(rd.snapshot.meta.index)
            self.log.applied = max(self.log.applied, rd.snapshot.meta.index)
        if rd.entries:
            last = rd.entries[-1]
            self.log.unstable.stable_to(last.index, last.term)
            if self.role is Role.LEADER and self._maybe_commit():
                self._broadcast_append()  # our own write completed a quorum: tell the followers
        if rd.committed_entries:
            self.log.applied = max(self.log.applied, rd.committed_entries[-1].index)
