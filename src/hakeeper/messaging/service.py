"""The asyncio shell of one node's message layer: transport, failure detector, quorum and Raft as one service.

:class:`MessageService` implements :class:`hakeeper.messaging.api.MessageLayer`. It owns the UDP transport
(every packet authenticated and encrypted), the durable Raft storage (SQLite, fsynced per Ready) and one
timer (:class:`hakeeper.messaging.transport.Alarm`) for the failure detector's pings, the Raft tick and the
witness client; the decisions live in the sans-I/O :class:`hakeeper.messaging.node_core.NodeCore`.

Timing: the Raft tick is a tenth of the election timeout. A follower that hears no leader campaigns after a
random 5 to 9 ticks (between half the election timeout and all of it), so with the default 1 s a dead
leader is replaced within about a second; a leader sends heartbeats every other tick and steps down when a
quorum has not answered for 5 ticks (check-quorum). The failure detector (its own heartbeats, per link) drives
membership and quorum; Raft's election timeout stays the consensus timer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hakeeper.messaging.api import (
    NO_LEADER,
    Application,
    Event,
    EventHandler,
    MessageLayer,
    PeerMessage,
    ProposalError,
    ProposalTimeout,
)
from hakeeper.messaging.cadence import Cadence
from hakeeper.messaging.failure_detector import FailureDetectorConfig, MembershipEvent
from hakeeper.messaging.node_core import NodeCore, NodeCoreConfig, ProposalDone, WitnessSend
from hakeeper.messaging.quorum import Quorum, QuorumConfig, QuorumState
from hakeeper.messaging.quorum_rule import FollowQuorum
from hakeeper.messaging.raft.core import RaftConfig, RaftNode, bootstrap
from hakeeper.messaging.raft.sqlite_storage import SqliteStorage
from hakeeper.messaging.transport import Address, Alarm, LinkFilter, Transport, TransportConfig
from hakeeper.messaging.wire import WITNESS_NODE_ID, Channel
from hakeeper.messaging.witness import WitnessReply, witness_decoder, witness_encoder

log = logging.getLogger(__name__)

TICKS_PER_ELECTION_TIMEOUT = 10
ELECTION_TICKS = 5  # the core randomises the follower timeout over [ELECTION_TICKS, 2 * ELECTION_TICKS)
RAFT_HEARTBEAT_TICKS = 2  # 200 ms by default; pre-vote keeps a follower that misses some from disrupting
RAFT_DB = "raft.sqlite"


@dataclass(frozen=True)
class ServiceConfig:
    """Everything one node's message layer needs. ``nodes`` lists every node (this one included) with its
    address on each link; all founding nodes must be started with the same ``nodes``."""

    node_id: int
    cluster_name: str
    cluster_key: bytes = field(repr=False)
    nodes: Mapping[int, Sequence[Address]]
    data_dir: Path
    two_node: bool = False
    wait_for_all: bool | None = None
    witness: Address | None = None
    heartbeat_interval: float = 0.1
    failure_timeout: float = 0.4
    election_timeout: float = 1.0
    core: NodeCoreConfig = field(default_factory=NodeCoreConfig)
    max_entries_per_append: int = 256
    seed: int | None = None  # for the election timer's randomness; None: from the OS

    def __post_init__(self) -> None:
        if self.node_id not in self.nodes:
            raise ValueError(f"node {self.node_id} is not among the configured nodes {sorted(self.nodes)}")
        if not self.election_timeout >= 0.05:
            raise ValueError(
                f"the election timeout must be at least 50 ms (it is {self.election_timeout:g} s): Raft "
                "ticks a tenth of it, and shorter ticks would make elections flap"
            )

    @property
    def tick_interval(self) -> float:
        return self.election_timeout / TICKS_PER_ELECTION_TIMEOUT

    def transport_config(self) -> TransportConfig:
        return TransportConfig(
            node_id=self.node_id,
            cluster_name=self.cluster_name,
            cluster_key=self.cluster_key,
            links=list(self.nodes[self.node_id]),
            peers={n: list(a) for n, a in self.nodes.items() if n != self.node_id},
            failure_detector=FailureDetectorConfig(self.heartbeat_interval, self.failure_timeout),
            witness=self.witness,
        )

    def quorum_config(self) -> QuorumConfig:
        return QuorumConfig(
            {n: 1 for n in self.nodes},
            two_node=self.two_node,
            wait_for_all=self.wait_for_all,
            witness=self.witness is not None,
        )


class FramePacer:
    """Sends frames to each peer at most ``burst`` bytes per ``interval`` and queues the rest (FIFO per
    peer), so a big message (a snapshot split in many frames) does not overflow the receiver's UDP buffer
    (212 KB by default on Linux). Small traffic is never delayed."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[int, bytes], object],
        burst: int = 128 * 1024,
        interval: float = 0.002,
        max_queued_bytes: int = 128 * 1024 * 1024,
    ) -> None:
        self._loop = loop
        self._send = send
        self.burst = burst
        self.interval = interval
        self.max_queued_bytes = max_queued_bytes
        self.dropped = 0  # frames refused because a peer's queue was full (Raft resends what matters)
        self._queued_bytes: dict[int, int] = {}
        self._window: dict[int, tuple[float, int]] = {}  # peer -> (window start, bytes sent in it)
        self._queues: dict[int, deque[bytes]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    def send(self, peer: int, frame: bytes) -> None:
        queue = self._queues.get(peer)
        if not queue and self._room(peer, len(frame)):
            self._send(peer, frame)
            return
        queued = self._queued_bytes.get(peer, 0)
        if queued + len(frame) > self.max_queued_bytes:
            self.dropped += 1  # e.g. a leader re-sending a huge snapshot faster than it drains
            return
        self._queued_bytes[peer] = queued + len(frame)
        if queue:
            queue.append(frame)
        else:
            self._queues[peer] = deque([frame])
            self._timers[peer] = self._loop.call_later(self.interval, self._drain, peer)

    def queued(self, peer: int) -> int:
        return len(self._queues.get(peer, ()))

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._queues.clear()
        self._queued_bytes.clear()

    def _room(self, peer: int, size: int) -> bool:
        now = self._loop.time()
        start, used = self._window.get(peer, (float("-inf"), 0))
        if now - start >= self.interval:
            start, used = now, 0
        if used and used + size > self.burst:
            self._window[peer] = (start, used)
            return False
        self._window[peer] = (start, used + size)
        return True

    def _drain(self, peer: int) -> None:
        queue = self._queues[peer]
        while queue and self._room(peer, len(queue[0])):
            frame = queue.popleft()
            self._queued_bytes[peer] -= len(frame)
            self._send(peer, frame)
        if queue:
            self._timers[peer] = self._loop.call_later(self.interval, self._drain, peer)
        else:
            del self._queues[peer]
            del self._timers[peer]


class ServiceStopped(Exception):
    """The service stopped because of a fatal error (see the log); it must be restarted."""


class MessageService:
    """One node's message layer. ``start()``, then use it; ``close()`` at the end.

    ``applied_index``: how far the application's own (persistent) state already is; 0 when it keeps its
    state in memory only, in which case it is restored from the last snapshot and the log after it replayed.
    """

    def __init__(
        self,
        config: ServiceConfig,
        app: Application,
        on_event: EventHandler | None = None,
        *,
        link_filter: LinkFilter | None = None,
        applied_index: int = 0,
    ) -> None:
        self.config = config
        self.app = app
        self.on_event = on_event
        self._alarm = Alarm()
        self.transport = Transport(config.transport_config(), link_filter=link_filter, alarm=self._alarm)
        self.transport.on_message = self._on_message
        self.transport.on_membership = self._on_membership
        self._applied_hint = applied_index
        self._storage: SqliteStorage | None = None
        self._core: NodeCore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticks = Cadence(config.tick_interval, float("inf"))
        self._futures: dict[int, asyncio.Future[int]] = {}
        self._tokens = itertools.count(1)
        self._pump_scheduled = False
        self._failed: BaseException | None = None
        self._closing: asyncio.Task[None] | None = None
        self._pacer: FramePacer | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        storage = self._storage = SqliteStorage(self.config.data_dir / RAFT_DB)
        try:
            self._core = self._open_core(storage, loop.time())
            await self.transport.start()
        except BaseException:
            storage.close()
            raise
        self._pacer = FramePacer(loop, lambda peer, frame: self.transport.send(peer, Channel.RAFT, frame))
        # Ticks on the pings' grid (same start, same interval by default), and on the beat once the failure
        # detector hears one: one wake-up serves both.
        self._ticks.next_at = self.transport.started_at + self.config.tick_interval
        self._alarm.add(lambda: self._ticks.next_at, self._on_tick, on_beat=self._on_beat)
        if self.config.witness is not None:
            self.core.quorum.report_from(self.transport.started_at)  # the pings' grid too
            self._alarm.add(lambda: self.core.quorum.next_deadline(), self._on_quorum_deadline)
        self._kick()

    def _open_core(self, storage: SqliteStorage, now: float) -> NodeCore:
        if storage.last_index() == 0 and storage.snapshot().meta.index == 0:
            hard_state, entries = bootstrap(sorted(self.config.nodes))
            storage.save(hard_state, entries, None)
        snap = storage.snapshot()
        applied = self._applied_hint
        if snap.meta.index > applied:
            self.app.restore(snap.data)
            applied = snap.meta.index
        rule = FollowQuorum(self.config.node_id, self.config.two_node or self.config.witness is not None)
        raft = RaftNode(
            RaftConfig(
                node_id=self.config.node_id,
                election_ticks=ELECTION_TICKS,
                heartbeat_ticks=RAFT_HEARTBEAT_TICKS,
                max_entries_per_append=self.config.max_entries_per_append,
            ),
            storage,
            random.Random(self.config.seed),
            quorum=rule,
            applied=applied,
        )
        quorum = Quorum(self.config.node_id, self.config.quorum_config(), now=now)
        return NodeCore(raft, quorum, rule, self.config.core, snapshot_index=snap.meta.index)

    async def close(self) -> None:
        self._alarm.close()
        if self._pacer is not None:
            self._pacer.close()
        if self._closing is not None:
            await self._closing
        await self.transport.close()
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(ProposalError("the message layer shut down before the proposal committed"))
        self._futures.clear()
        if self._storage is not None:
            self._storage.close()
            self._storage = None

    async def __aenter__(self) -> MessageService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- queries ----------------------------------------------------------------------------------

    @property
    def node_id(self) -> int:
        return self.config.node_id

    @property
    def core(self) -> NodeCore:
        if self._core is None:
            raise RuntimeError("the message service is not started")
        return self._core

    @property
    def leader(self) -> int:
        return self._core.raft.leader_id if self._core else NO_LEADER

    @property
    def is_leader(self) -> bool:
        return self._core is not None and self._core.raft.is_leader

    @property
    def term(self) -> int:
        return self.core.raft.term

    @property
    def commit_index(self) -> int:
        return self.core.raft.commit_index

    @property
    def applied_index(self) -> int:
        return self.core.raft.applied_index

    @property
    def quorum(self) -> QuorumState:
        return self.core.quorum.state

    @property
    def counters(self) -> dict[str, int]:
        """Transport counters (packets, drops by reason) plus framing and Raft drop counters."""
        out = dict(self.transport.counters)
        if self._core is not None:
            out.update(self._core.counters)
            out.update(self._core.reassembler.counters)
            out["raft_dropped_malformed"] = self._core.raft.dropped_malformed
        if self._pacer is not None:
            out["raft_frames_dropped_queue_full"] = self._pacer.dropped
        return out

    # --- the interface ----------------------------------------------------------------------------

    async def propose(self, data: bytes, timeout: float = 5.0) -> int:
        if self._failed is not None:
            raise ServiceStopped(f"the message layer stopped after a fatal error: {self._failed}")
        loop = asyncio.get_running_loop()
        token = next(self._tokens)
        fut: asyncio.Future[int] = loop.create_future()
        self._futures[token] = fut
        self.core.propose(token, data)
        self._kick()
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise ProposalTimeout(
                f"the proposal was not committed within {timeout:g} s (no quorum reachable?); it may still "
                "commit later"
            ) from None
        finally:
            self._futures.pop(token, None)

    def send(self, node: int, data: bytes) -> bool:
        return self.transport.send(node, Channel.MESSAGE, data)

    def fencing_confirmed(self, node: int) -> None:
        self.core.fencing_confirmed(self._now(), node)
        self._dispatch(self.core.take_outputs())
        self._kick()

    def every(self, interval: float, run: Callable[[float], None]) -> Callable[[], None]:
        """Run ``run(now)`` every ``interval`` seconds from now on, for the layers above: on this node's one
        timer, and on the failure detector's beat once there is one (see :mod:`hakeeper.messaging.cadence`),
        so their periodic work costs no wake-ups of its own. On the beat it runs right after the beat's packet
        is handled and answered, not in the middle of it: the heartbeat path stays short. An exception is
        logged, and the next run comes all the same. Returns what stops it."""
        cadence = Cadence(interval, self._now() + interval)
        beat_interval = self.config.heartbeat_interval
        loop = self._loop
        assert loop is not None, "start the service first"
        stopped = False

        def guarded(now: float) -> None:
            if stopped:  # a run scheduled on a beat just before the stop
                return
            try:
                run(now)
            except Exception:
                log.exception("periodic work %s failed; it runs again in %g s", run, interval)

        def on_deadline(now: float) -> None:
            cadence.ran(now)
            guarded(now)

        def on_beat(now: float) -> None:
            if cadence.on_beat(now, beat_interval):
                loop.call_soon(guarded, now)  # the loop's next turn, at once: after the pong has left

        def stop() -> None:
            nonlocal stopped
            stopped = True
            self._alarm.remove(on_deadline, on_beat=on_beat)

        self._alarm.add(lambda: cadence.next_at, on_deadline, on_beat=on_beat)
        return stop

    # --- inputs -----------------------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_message(self, sender: int, channel: int, payload: bytes) -> None:
        if channel == Channel.RAFT:
            self.core.on_raft_frame(self._now(), sender, payload)
            self._kick()
        elif channel == Channel.MESSAGE and sender in self.config.nodes:  # not from the witness
            self._emit(PeerMessage(sender, payload))
        elif channel == Channel.WITNESS and sender == WITNESS_NODE_ID:
            try:
                reply = witness_decoder.decode(payload)
            except ValueError:  # msgspec's errors, and UnicodeDecodeError for a broken tag
                return
            if isinstance(reply, WitnessReply):
                self.core.on_witness_reply(self._now(), reply)
                self._alarm.wake_by(self.core.quorum.next_deadline())  # the vote may now lapse sooner
                self._dispatch(self.core.take_outputs())
                self._kick()

    def _on_membership(self, event: MembershipEvent) -> None:
        self._emit(event)
        self.core.on_members(self._now(), self.transport.up_nodes())
        self._dispatch(self.core.take_outputs())  # quorum changes are news now, not after the next Ready
        self._kick()

    def _on_tick(self, now: float) -> None:
        self._ticks.ran(now)
        self.core.tick()
        self._pump()

    def _on_beat(self, now: float) -> None:
        beat_interval = self.config.heartbeat_interval
        ticked = self._ticks.on_beat(now, beat_interval)
        if ticked:
            self.core.tick()
        if self.config.witness is not None:
            self.core.quorum_beat(now, beat_interval)
        if ticked or self.config.witness is not None:
            self._pump()

    def _on_quorum_deadline(self, now: float) -> None:
        self.core.quorum_tick(now)
        self._pump()

    # --- the Ready pipeline -----------------------------------------------------------------------

    def _kick(self) -> None:
        """Process soon, once: proposals and messages that arrive in the same turn share one Ready."""
        if not self._pump_scheduled and self._loop is not None:
            self._pump_scheduled = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        if self._failed is not None or self._storage is None:
            return
        try:
            self._run_ready()
            self._maybe_snapshot()
        except Exception as err:  # a storage or application failure: stop rather than diverge
            self._fail(err)
        self._dispatch(self.core.take_outputs())

    def _run_ready(self) -> None:
        core, storage, pacer = self.core, self._storage, self._pacer
        assert storage is not None and pacer is not None
        core.flush_proposals()
        transport = self.transport
        while (work := core.next_work(self._now())) is not None:
            # Frames leave as soon as they may (early ones before the write). On a tick, the transport holds
            # them with the pings due then: flushing sends both as one packet per peer.
            for peer, frame in work.early_frames:
                pacer.send(peer, frame)
            if work.early_frames:
                transport.flush()
            if work.must_persist():
                storage.save(work.hard_state, work.entries, work.snapshot)
            for peer, frame in work.raft_frames:
                pacer.send(peer, frame)
            if work.raft_frames:
                transport.flush()
            if work.snapshot is not None:
                self.app.restore(work.snapshot.data)
            for index, data in work.apply:
                self.app.apply(index, data)
            core.advance(work)
            core.flush_proposals()

    def _maybe_snapshot(self) -> None:
        index = self.core.snapshot_due()
        if index is None or self._storage is None:
            return
        data = self.app.snapshot()
        self._storage.create_snapshot(index, self.core.raft.conf_state_at(index), data)
        compact_to = self.core.snapshot_taken(index)
        if compact_to >= self._storage.first_index():
            self._storage.compact(compact_to)

    def _dispatch(self, outputs: list[Event | ProposalDone | WitnessSend]) -> None:
        for out in outputs:
            if isinstance(out, ProposalDone):
                fut = self._futures.get(out.token)
                if fut is None or fut.done():
                    continue
                if isinstance(out.result, int):
                    fut.set_result(out.result)
                else:
                    fut.set_exception(out.result)
            elif isinstance(out, WitnessSend):
                self.transport.send_witness(witness_encoder.encode(out.report))
            else:
                self._emit(out)

    def _emit(self, event: Event) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("the message layer's event handler failed on %s", event)

    def _fail(self, err: BaseException) -> None:
        log.critical(
            "node %d: the message layer stops: %s. Restart the node once the cause is fixed; it recovers "
            "its state from %s",
            self.config.node_id,
            err,
            self.config.data_dir / RAFT_DB,
            exc_info=err,
        )
        self._failed = err
        self._alarm.close()
        # Leave the network too: a node that answers pings but cannot persist would look alive to its peers.
        if self._loop is not None:
            self._closing = self._loop.create_task(self.transport.close())
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(ServiceStopped(f"the message layer stopped after a fatal error: {err}"))


def as_message_layer(service: MessageService) -> MessageLayer:
    """The service seen through the CRM-facing interface (and a static check that it implements it)."""
    return service
