"""The sans-I/O glue of one node's message layer: Raft, quorum, proposals, framing. No sockets, no clock.

The asyncio shell (:mod:`hakeeper.messaging.service`) feeds it inputs (ticks, Raft frames from peers,
membership, witness replies, proposals) and then drains :meth:`NodeCore.next_work` until it returns None.
Each :class:`Work` is one Raft Ready plus what follows from it, and the shell must handle it in this order:

0. send ``early_frames``: a leader's replication messages, which depend on nothing unsaved (Raft thesis
   §10.2.1: the leader may write its log in parallel with its followers; it counts its own copy only
   from the next Ready, after this one is durable);
1. persist ``hard_state``/``entries``/``snapshot`` durably;
2. send ``raft_frames`` (nothing that depends on step 1 may leave earlier);
3. ``restore`` the application from the snapshot if any, then ``apply`` the committed entries in order;
4. call :meth:`NodeCore.advance` with the work.

Everything else the core produces (events, witness reports, proposal results) is collected with
:meth:`NodeCore.take_outputs`, which the shell calls after each pass.

Raft messages larger than one packet (big AppendEntries batches, snapshots) are split into frames here and
reassembled by the receiver; a frame lost on the way loses the whole message, which Raft then retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from hakeeper.messaging.api import (
    NO_LEADER,
    Event,
    LeaderChanged,
    NoQuorum,
    NotLeader,
    ProposalError,
    ProposalTooLarge,
)
from hakeeper.messaging.quorum import Quorum, QuorumChanged, QuorumOutput, SendWitnessReport
from hakeeper.messaging.quorum_rule import FollowQuorum
from hakeeper.messaging.raft.core import Accepted, RaftNode, Ready, RejectReason, Role
from hakeeper.messaging.raft.messages import (
    NO_NODE,
    Entry,
    EntryKind,
    HardState,
    Snapshot,
    decode_message,
    encode_message,
)
from hakeeper.messaging.witness import WitnessReply, WitnessReport

FRAME_DATA_BYTES = 60_000
"""Raft bytes per frame: a frame plus its headers stays below the transport's 65,000-byte packets."""


# --- framing --------------------------------------------------------------------------------------


class Whole(msgspec.Struct, tag="w", array_like=True, frozen=True):
    data: bytes


class Part(msgspec.Struct, tag="p", array_like=True, frozen=True):
    msg_id: int
    number: int
    total: int
    data: bytes


Frame = Whole | Part
_frame_encoder = msgspec.msgpack.Encoder()
_frame_decoder = msgspec.msgpack.Decoder(Frame)


def split_message(data: bytes, msg_id: int, frame_bytes: int = FRAME_DATA_BYTES) -> list[bytes]:
    """One encoded frame if ``data`` fits, else numbered parts sharing ``msg_id``."""
    if len(data) <= frame_bytes:
        return [_frame_encoder.encode(Whole(data))]
    total = -(-len(data) // frame_bytes)
    return [
        _frame_encoder.encode(Part(msg_id, i, total, data[i * frame_bytes : (i + 1) * frame_bytes]))
        for i in range(total)
    ]


@dataclass
class _Partial:
    total: int
    started: float
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    """Puts split messages back together, with bounded memory: per sender at most ``max_partial`` messages
    in progress and ``max_bytes`` per message; unfinished messages older than ``max_age`` are dropped."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_partial: int = 4, max_age: float = 5.0) -> None:
        self.max_bytes = max_bytes
        self.max_partial = max_partial
        self.max_age = max_age
        self._partial: dict[int, dict[int, _Partial]] = {}
        self.counters: dict[str, int] = {}

    def feed(self, now: float, sender: int, payload: bytes) -> bytes | None:
        """The complete message this frame finishes, if any; bad frames are counted and dropped."""
        try:
            frame = _frame_decoder.decode(payload)
        except ValueError:  # msgspec's errors, and UnicodeDecodeError for a broken tag
            self._count("dropped_malformed_frame")
            return None
        if isinstance(frame, Whole):
            return frame.data
        return self._part(now, sender, frame)

    def _part(self, now: float, sender: int, part: Part) -> bytes | None:
        limit = -(-self.max_bytes // FRAME_DATA_BYTES)
        if not 0 <= part.number < part.total <= limit or len(part.data) > FRAME_DATA_BYTES:
            self._count("dropped_bad_part")
            return None
        mine = self._partial.setdefault(sender, {})
        for msg_id in [m for m, p in mine.items() if now - p.started > self.max_age]:
            del mine[msg_id]
            self._count("dropped_stale_partial")
        partial = mine.get(part.msg_id)
        if partial is None:
            if len(mine) >= self.max_partial:
                del mine[min(mine, key=lambda m: mine[m].started)]
                self._count("dropped_evicted_partial")
            partial = mine[part.msg_id] = _Partial(part.total, now)
        if partial.total != part.total or part.number in partial.parts:
            self._count("dropped_bad_part")
            return None
        partial.parts[part.number] = part.data
        partial.size += len(part.data)
        if len(partial.parts) < partial.total:
            return None
        del mine[part.msg_id]
        return b"".join(partial.parts[i] for i in range(partial.total))

    def _count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1


# --- work and outputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Work:
    """One Raft Ready, translated for the shell (see the module docstring for the order)."""

    ready: Ready
    early_frames: list[tuple[int, bytes]]  # (peer, frame), may leave before the Ready is persisted
    raft_frames: list[tuple[int, bytes]]  # (peer, frame), only after it is persisted
    apply: list[tuple[int, bytes]]  # committed application entries (index, data)

    @property
    def hard_state(self) -> HardState | None:
        return self.ready.hard_state

    @property
    def entries(self) -> tuple[Entry, ...]:
        return self.ready.entries

    @property
    def snapshot(self) -> Snapshot | None:
        return self.ready.snapshot

    def must_persist(self) -> bool:
        return self.ready.must_persist()


@dataclass(frozen=True, slots=True)
class ProposalDone:
    """The result of proposal ``token``: its committed index, or why it failed."""

    token: int
    result: int | ProposalError


@dataclass(frozen=True, slots=True)
class WitnessSend:
    report: WitnessReport


Output = Event | ProposalDone | WitnessSend


@dataclass(frozen=True)
class NodeCoreConfig:
    max_proposal_bytes: int = 256 * 1024
    max_message_bytes: int = 64 * 1024 * 1024  # the largest Raft message (append batch, snapshot) accepted
    snapshot_every: int = 10_000  # applied entries between application snapshots (log compaction)
    keep_after_snapshot: int = 1_000  # entries kept behind a snapshot for followers slightly behind


@dataclass(frozen=True, slots=True)
class _Pending:
    token: int
    term: int


class NodeCore:
    """One node's message layer logic. Drive it from one place (the shell's event loop)."""

    def __init__(
        self,
        raft: RaftNode,
        quorum: Quorum,
        rule: FollowQuorum,
        config: NodeCoreConfig | None = None,
        snapshot_index: int = 0,
    ) -> None:
        self.raft = raft
        self.quorum = quorum
        self.rule = rule
        self.config = config or NodeCoreConfig()
        self.reassembler = Reassembler(max_bytes=self.config.max_message_bytes)
        self.last_snapshot_index = snapshot_index
        self.counters: dict[str, int] = {}
        self._queue: list[tuple[int, bytes]] = []
        self._pending: dict[int, _Pending] = {}
        self._outputs: list[Output] = []
        self._msg_id = 0
        self._leader = (NO_LEADER, raft.term)
        self._durable_term_vote = (raft.term, raft.vote)  # the core starts from what storage holds
        self._detector_up: frozenset[int] = frozenset()  # the failure detector's last verdict: peers up
        rule.update(quorum.state)

    # --- inputs -----------------------------------------------------------------------------------

    def propose(self, token: int, data: bytes) -> None:
        """Queue a proposal; it joins the next batch (see :meth:`flush_proposals`)."""
        refusal = self._refusal(len(data))
        if refusal is not None:
            self._outputs.append(ProposalDone(token, refusal))
        else:
            self._queue.append((token, data))

    def flush_proposals(self) -> None:
        """Hand every queued proposal to Raft as one batch (one round of appends to each follower)."""
        if not self._queue:
            return
        refusal = self._refusal(0)
        if refusal is not None:
            self._outputs.extend(ProposalDone(token, refusal) for token, _ in self._queue)
            self._queue = []
            return
        # Back-pressure: Raft holds at most max_uncommitted entries awaiting commit; the rest of the queue
        # waits for the next pass (every acknowledgement triggers one).
        raft = self.raft
        room = raft.config.max_uncommitted - (raft.log.last_index() - raft.commit_index)
        batch, self._queue = self._queue[: max(room, 0)], self._queue[max(room, 0) :]
        if not batch:
            self._count("proposals_deferred")
            return
        result = raft.propose_many([data for _, data in batch])
        if isinstance(result, Accepted):
            self._count("proposal_batches")
            first = result.index - len(batch) + 1
            for offset, (token, _) in enumerate(batch):
                self._pending[first + offset] = _Pending(token, result.term)
        elif result.reason is RejectReason.TOO_MANY_UNCOMMITTED:
            self._queue = batch + self._queue
            self._count("proposals_deferred")
        else:
            error = NotLeader(result.detail, result.leader_id)
            self._outputs.extend(ProposalDone(token, error) for token, _ in batch)

    def tick(self) -> None:
        self.raft.tick()

    def on_raft_frame(self, now: float, sender: int, payload: bytes) -> None:
        data = self.reassembler.feed(now, sender, payload)
        if data is None:
            return
        try:
            msg = decode_message(data)
        except ValueError:  # msgspec's errors, and UnicodeDecodeError for a broken tag
            self._count("dropped_malformed_raft")
            return
        if msg.frm != sender:
            # Authenticated as one node but claiming to be another: a bug or a compromised peer.
            self._count("dropped_spoofed_raft")
            return
        self.raft.step(msg)

    def on_members(self, now: float, up: frozenset[int]) -> None:
        self._quorum_outputs(self.quorum.set_members(now, up))
        was_up, self._detector_up = self._detector_up, up
        self._leader_lost_if_down(was_up, up)

    def _leader_lost_if_down(self, was_up: frozenset[int], up: frozenset[int]) -> None:
        """A leader the failure detector declares down (it is faster than Raft's election timeout) is
        replaced at once: the surviving voters campaign one tick apart, in node id order. Only the verdict
        counts (up, then down): a leader the detector has not seen up yet (this node just started) is
        heard through Raft, not lost."""
        raft = self.raft
        leader = raft.leader_id
        if leader in (NO_NODE, raft.id) or leader in up or leader not in was_up:
            return
        survivors = sorted(v for v in raft.conf_state.voters if v in up or v == raft.id)
        rank = survivors.index(raft.id) if raft.id in survivors else len(survivors)
        raft.leader_unreachable(delay_ticks=rank)

    def on_witness_reply(self, now: float, reply: WitnessReply) -> None:
        self._quorum_outputs(self.quorum.on_witness_reply(now, reply))

    def quorum_tick(self, now: float) -> None:
        self._quorum_outputs(self.quorum.tick(now))

    def quorum_beat(self, now: float, beat_interval: float) -> None:
        self._quorum_outputs(self.quorum.on_beat(now, beat_interval))

    def fencing_confirmed(self, now: float, node: int) -> None:
        self._quorum_outputs(self.quorum.fencing_confirmed(now, node))

    # --- the Ready pipeline -----------------------------------------------------------------------

    def next_work(self, now: float) -> Work | None:
        if not self.raft.has_ready():
            return None
        rd = self.raft.ready()
        frames: list[tuple[int, bytes]] = []
        for msg in rd.messages:
            self._msg_id += 1
            data = encode_message(msg)
            if len(data) > self.config.max_message_bytes:
                # Its receiver would drop it; counted so an operator sees why a follower never catches up.
                self._count("send_message_too_large")
                continue
            frames.extend((msg.to, f) for f in split_message(data, self._msg_id))
        apply = [(e.index, e.data) for e in rd.committed_entries if e.kind is EntryKind.NORMAL]
        self._note_leader(now, rd)
        if self._may_send_early(rd):
            return Work(rd, frames, [], apply)
        return Work(rd, [], frames, apply)

    def _may_send_early(self, rd: Ready) -> bool:
        # Only a leader whose term and vote are already on disk: then its messages promise nothing that a
        # crash before this Ready is persisted could take back (a follower persists what it acknowledges).
        if rd.role is not Role.LEADER or rd.snapshot is not None:
            return False
        hs = rd.hard_state
        return hs is None or (hs.term, hs.vote) == self._durable_term_vote

    def advance(self, work: Work) -> None:
        rd = work.ready
        if rd.hard_state is not None:
            self._durable_term_vote = (rd.hard_state.term, rd.hard_state.vote)
        if rd.snapshot is not None:
            self.last_snapshot_index = max(self.last_snapshot_index, rd.snapshot.meta.index)
            self._fail_pending_up_to(rd.snapshot.meta.index)
        for e in rd.committed_entries:
            self._settle(e)
        self.raft.advance(rd)

    def snapshot_due(self) -> int | None:
        """The applied index to snapshot the application at, when enough entries were applied since."""
        applied = self.raft.applied_index
        if applied - self.last_snapshot_index >= self.config.snapshot_every:
            return applied
        return None

    def snapshot_taken(self, index: int) -> int:
        """Record a snapshot at ``index``; returns the index to compact the stored log to."""
        self.last_snapshot_index = index
        return max(0, index - self.config.keep_after_snapshot)

    def take_outputs(self) -> list[Output]:
        out, self._outputs = self._outputs, []
        return out

    # --- helpers ----------------------------------------------------------------------------------

    def _count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    def _refusal(self, size: int) -> ProposalError | None:
        if size > self.config.max_proposal_bytes:
            return ProposalTooLarge(
                f"a proposal of {size} bytes exceeds the limit of {self.config.max_proposal_bytes} bytes; "
                "split the change or store large data outside the log"
            )
        if not self.raft.is_leader:
            leader = self.raft.leader_id
            where = f"node {leader} is the leader" if leader != NO_LEADER else "no leader is elected yet"
            return NotLeader(f"node {self.raft.id} is not the leader ({where}); retry there", leader)
        if not self.quorum.state.quorate:
            return NoQuorum(f"node {self.raft.id} has no quorum: {self.quorum.state.reason}")
        return None

    def _settle(self, entry: Entry) -> None:
        pending = self._pending.pop(entry.index, None)
        if pending is None:
            return
        if pending.term == entry.term:
            self._outputs.append(ProposalDone(pending.token, entry.index))
        else:
            lost = NotLeader(
                f"leadership changed before the proposal committed (log index {entry.index} now holds an "
                "entry of another term); retry at the new leader",
                self.raft.leader_id,
            )
            self._outputs.append(ProposalDone(pending.token, lost))

    def _fail_pending_up_to(self, index: int) -> None:
        # A snapshot from the leader replaced our log: we cannot tell which of our proposals survived.
        for i in [i for i in self._pending if i <= index]:
            pending = self._pending.pop(i)
            unknown = NotLeader(
                "this node lost leadership and caught up from a snapshot; the proposal may or may not "
                "have committed",
                self.raft.leader_id,
            )
            self._outputs.append(ProposalDone(pending.token, unknown))

    def _note_leader(self, now: float, rd: Ready) -> None:
        current = (rd.leader_id, self.raft.term)
        if current[0] != self._leader[0]:
            self._outputs.append(LeaderChanged(now, rd.leader_id, self.raft.term))
        self._leader = current

    def _quorum_outputs(self, outputs: Sequence[QuorumOutput]) -> None:
        for out in outputs:
            if isinstance(out, SendWitnessReport):
                self._outputs.append(WitnessSend(out.report))
            elif isinstance(out, QuorumChanged):
                self.rule.update(out.state)
                self._outputs.append(out)
