"""One node's daemon: the message layer, the CIB, the controller and the LRM wired together (asyncio).

The decisions live in sans-I/O cores (``DcCore``, ``MemberCore``, the policy engine, Raft); this module only
moves their inputs and outputs:

- committed log entries are applied to the CIB state machine; each applied change goes to the DC core (which
  decides what follows) and the member core (which forgets results the CIB now records);
- leadership: the Raft leader is the DC. A new leader first commits an empty barrier entry, so its CIB holds
  every earlier change, and only then starts acting as DC;
- the policy engine runs in a worker process, so heartbeats and elections never wait for it;
- controller messages between nodes travel on the message layer's node-to-node channel; the DC's requests to
  itself and a node's results to itself short-cut the network.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import TypeVar

import msgspec

from hakeeper.agents.registry import AgentRegistry
from hakeeper.api.alerts import AlertQueue, AlertRunner, follow
from hakeeper.api.app import RunningServer, build_app, start_http, start_unix
from hakeeper.api.audit import AUDIT_FILE, AuditLog
from hakeeper.api.auth import TOKENS_FILE, TokenStore
from hakeeper.api.events import EventHub, changes
from hakeeper.api.routing import Services
from hakeeper.cib import model as m
from hakeeper.cib.nvsets import cluster_properties
from hakeeper.cib.patch import Patch, diff
from hakeeper.controller import messages as cmsg
from hakeeper.controller.dc import Command, DcCore, Event, Plan, Propose, RequestFence, SendCancel, SendOp
from hakeeper.controller.member import Cancel, MemberCore, MemberOutput, Note, SelfFence, SendToDc, Submit
from hakeeper.controller.planning import plan_transition
from hakeeper.daemon.cib_state import Applied, CibStateMachine, LogEntry, encode_entry
from hakeeper.daemon.config import DaemonConfig
from hakeeper.daemon.handle import DaemonHandle
from hakeeper.daemon.selffence import SelfFenceError, SelfFencing
from hakeeper.daemon.shutdown import DaemonShutdown, setup_worker
from hakeeper.fencing.agent import AgentRunner
from hakeeper.fencing.devices import devices_from_config
from hakeeper.fencing.fencer import Fencer, FencingFinished, FencingPlanned, RunDevice
from hakeeper.fencing.fencer import Output as FencerOutput
from hakeeper.fencing.requests import new_operator_requests
from hakeeper.fencing.resource import StonithResource
from hakeeper.lrm.messages import AttributeUpdate, OpResult
from hakeeper.lrm.service import LocalResourceManager, LrmConfig
from hakeeper.messaging import api as mapi
from hakeeper.messaging.keys import read_key_file
from hakeeper.messaging.service import MessageService, ServiceConfig
from hakeeper.messaging.transport import Address

log = logging.getLogger("hakeeper.daemon")
T = TypeVar("T")

TICK_S = 0.2
RESEND_S = 2.0
LEADER_POLL_S = 0.05


class _CibApplication:
    """The message layer's ``Application``: the CIB state machine, reporting each applied entry."""

    def __init__(self, on_applied: Callable[[m.Cib, Applied], None]) -> None:
        self.machine = CibStateMachine()
        self.on_applied = on_applied

    def apply(self, index: int, data: bytes) -> None:
        old = self.machine.cib
        self.on_applied(old, self.machine.apply(index, data))

    def snapshot(self) -> bytes:
        return self.machine.snapshot()

    def restore(self, data: bytes) -> None:
        # the layer replays the entries after the snapshot; their indexes only need to keep increasing
        self.machine.restore(data, 0)


class NodeDaemon:
    def __init__(
        self,
        config: DaemonConfig,
        node_name: str,
        *,
        bootstrap: m.Configuration | None = None,
        lrm_env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.me = config.node(node_name)
        self.name = node_name
        self.names = {n.id: n.name for n in config.nodes}
        self.ids = {n.name: n.id for n in config.nodes}
        self.bootstrap = bootstrap
        self.hub = EventHub()
        self._answers: dict[str, asyncio.Future[cmsg.SubmitAnswer]] = {}
        self.app = _CibApplication(self._on_applied)
        self.dc = DcCore(node_name, uuid=uuid.uuid4().hex[:12])
        self.member = MemberCore(node_name, boot=self.dc.uuid)
        self.up: set[str] = {node_name}
        self.leader: str | None = None
        self._barrier: str | None = None
        self._pending: dict[str, asyncio.Future[Applied]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lrm_env = dict(lrm_env or {})
        self.service: MessageService | None = None
        self.lrm: LocalResourceManager | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.fencer: Fencer | None = None
        self._fence_runner = AgentRunner()
        self._fencer_epoch: tuple[int, int] | None = None
        self.shutdown = DaemonShutdown(self)
        self.selffence = SelfFencing(config, node_name, lambda: len(self.member.active))
        self._unrecorded_fences: list[m.FenceEvent] = []  # fenced without a quorate DC: recorded later
        self._was_quorate = False
        self._last_resend = 0.0  # when the member last re-sent what the DC has not answered

    # --- lifecycle ------------------------------------------------------------------------------------

    @property
    def cib(self) -> m.Cib:
        return self.app.machine.cib

    def _service_config(self) -> ServiceConfig:
        cfg = self.config
        nodes: dict[int, list[Address]] = {n.id: [(a.host, a.port) for a in n.links] for n in cfg.nodes}
        witness: Address | None = (cfg.witness.host, cfg.witness.port) if cfg.witness else None
        return ServiceConfig(
            node_id=self.me.id,
            cluster_name=cfg.cluster_name,
            cluster_key=read_key_file(cfg.key_file),
            nodes=nodes,
            data_dir=cfg.data_dir / "raft",
            two_node=cfg.two_node,
            wait_for_all=cfg.wait_for_all,
            witness=witness,
            heartbeat_interval=cfg.heartbeat_interval_ms / 1000,
            failure_timeout=cfg.failure_timeout_ms / 1000,
            election_timeout=cfg.election_timeout_ms / 1000,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        self.loop = asyncio.get_running_loop()
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.selffence.open()  # before anything runs: from now on a hang or a crash resets the node
        except SelfFenceError as err:
            raise SystemExit(f"{self.name}: {err}") from err
        ctx = multiprocessing.get_context("spawn")
        self.shutdown.attach(stop)
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=ctx, initializer=setup_worker, initargs=(os.getpid(),)
        )
        # pre-warm: spawn the worker and import the policy engine now (an empty plan), on every node, so a
        # node that becomes DC after a failure plans at once instead of paying ~0.5 s of process start-up
        self._pool.submit(plan_transition, m.Cib(), 0, 0)
        lrm_dir = self.config.data_dir / "lrm"
        lrm_dir.mkdir(parents=True, exist_ok=True)
        # agents keep state under the node's own directory; HA_NODENAME tells services which node they are on
        env = {
            "HA_VARRUN": str(lrm_dir),
            "HA_RSCTMP": str(lrm_dir),
            "HA_NODENAME": self.name,
            **self._lrm_env,
        }
        registry = AgentRegistry(extra_classes={"stonith": StonithResource})
        lrm_config = LrmConfig(node_name=self.name, run_dir=str(lrm_dir / "run"), extra_env=env)
        self.lrm = LocalResourceManager(lrm_config, registry)
        self.service = MessageService(self._service_config(), self.app, self._on_message_event)
        api: list[RunningServer] = []
        stop_ticks: Callable[[], None] | None = None
        try:
            async with self.lrm:
                await self.service.start()
                api = await self._start_api()
                log.info("%s started (node id %d)", self.name, self.me.id)
                self._spawn(self._lrm_events())
                self._last_resend = time.monotonic()
                stop_ticks = self.service.every(TICK_S, self._tick)  # on the message layer's beat
                self._spawn(self.selffence.run())
                await stop.wait()
        finally:
            if stop_ticks is not None:
                stop_ticks()
            if stop.is_set():
                self.selffence.close()  # a clean stop; a crash leaves the watchdog armed, and it resets us
            for server in api:
                await server.stop()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.service.close()
            self._pool.shutdown(cancel_futures=True)

    async def _start_api(self) -> list[RunningServer]:
        """The API on the local socket, and on the loopback HTTP listener (the dashboard) if configured."""
        data = self.config.data_dir
        queue = AlertQueue()
        runner = AlertRunner(queue)
        handle = DaemonHandle(self)
        services = Services(handle, TokenStore(data / TOKENS_FILE), AuditLog(data / AUDIT_FILE), alerts=queue)
        self._spawn(runner.run())
        self._spawn(follow(handle, runner))
        app = build_app(services)
        servers = [await start_unix(app, self.config.api_socket)]
        http = self.config.http_listen
        if http is not None:
            try:
                servers.append(await start_http(app, http.host, http.port))
            except OSError as err:
                # the cluster matters more than its dashboard: say why, and run without it
                log.error("%s: cannot serve the dashboard on http://%s/: %s", self.name, http, err)
            else:
                log.info("%s: dashboard at http://%s/ (token required)", self.name, http)
        return servers

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        assert self.loop is not None
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: internal task failed: %r", self.name, task.exception())

    @staticmethod
    def _now_ms() -> int:
        return int(time.time() * 1000)

    # --- proposals ------------------------------------------------------------------------------------

    async def submit(
        self,
        patch: Patch,
        *,
        actor: str = "",
        why: str = "",
        timeout: float = 10.0,
        request_id: str | None = None,
    ) -> Applied:
        """Commit a change through the log (this node must be the leader) and wait until it is applied.
        ``request_id``: the one the change came with from another node, which watches for it too."""
        assert self.service is not None and self.loop is not None
        request_id = request_id or uuid.uuid4().hex
        fut: asyncio.Future[Applied] = self.loop.create_future()
        self._pending[request_id] = fut
        try:
            entry = LogEntry(request_id=request_id, patch=patch, actor=actor, why=why)
            await self.service.propose(encode_entry(entry), timeout=timeout)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(request_id, None)

    def _propose(self, patch: Patch, why: str) -> None:
        async def go() -> None:
            try:
                applied = await self.submit(patch, actor=f"dc:{self.name}", why=why)
            except mapi.ProposalError as err:
                log.info("%s: not recorded (%s): %s", self.name, why, err)
                if self.dc.is_dc and self.leader == self.name and self._barrier is None:
                    # The DC's own view (membership, fencing, results) already counts this change: take
                    # over again from the log alone rather than act on a CIB that lacks it.
                    self._renew_dc()
                return
            if applied.error:
                log.warning("%s: change refused (%s): %s", self.name, why, applied.error)

        self._spawn(go())

    async def submit_anywhere(
        self, patch: Patch, *, actor: str, why: str, timeout: float = 10.0
    ) -> cmsg.SubmitAnswer:
        """Commit an operator's change from any node: locally on the DC, otherwise forwarded to it.

        A refusal because the DC is changing (nothing was appended) is retried until ``timeout``, so an
        operator's command rides over an election instead of failing in the middle of it."""
        assert self.loop is not None
        deadline = self.loop.time() + timeout
        while True:
            answer = await self._submit_once(patch, actor, why, deadline)
            if answer.outcome != "not-leader" or self.loop.time() + LEADER_POLL_S >= deadline:
                return answer
            await asyncio.sleep(LEADER_POLL_S)

    async def _submit_once(self, patch: Patch, actor: str, why: str, deadline: float) -> cmsg.SubmitAnswer:
        assert self.loop is not None
        request_id = uuid.uuid4().hex
        change = cmsg.SubmitChange(request_id=request_id, origin=self.name, patch=patch, actor=actor, why=why)
        leader = await self._live_leader(deadline)
        if leader is None:
            return cmsg.SubmitAnswer(request_id=request_id, outcome="not-leader", error="there is no DC")
        if leader == self.name:
            return await self._commit(change, max(0.1, deadline - self.loop.time()))
        answered: asyncio.Future[cmsg.SubmitAnswer] = self.loop.create_future()
        # The DC's log entry carries our request id: if the DC commits it and dies before it answers, the
        # entry still reaches this node's log, and that is the answer.
        applied: asyncio.Future[Applied] = self.loop.create_future()
        self._answers[request_id] = answered
        self._pending[request_id] = applied
        try:
            self._send(leader, change)
            done, _ = await asyncio.wait(
                (answered, applied),
                timeout=max(0.1, deadline - self.loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if answered in done:
                return answered.result()
            if applied in done:
                return _answer(request_id, applied.result())
            return cmsg.SubmitAnswer(request_id=request_id, outcome="timeout")
        finally:
            self._answers.pop(request_id, None)
            self._pending.pop(request_id, None)

    async def _live_leader(self, deadline: float) -> str | None:
        """The DC, waiting until ``deadline`` while there is none or the one known has left the membership.

        Right after the DC's node dies, the others still name it until their election timers fire;
        forwarding a change to it then only times out, so wait for the election instead.
        """
        assert self.loop is not None
        while True:
            leader = self.leader
            if leader is not None and (leader == self.name or leader in self.up):
                return leader
            if self.loop.time() >= deadline:
                return None
            await asyncio.sleep(LEADER_POLL_S)

    async def _commit(self, change: cmsg.SubmitChange, timeout: float) -> cmsg.SubmitAnswer:
        rid = change.request_id
        try:
            applied = await self.submit(
                change.patch, actor=change.actor, why=change.why, timeout=timeout, request_id=rid
            )
        except mapi.NotLeader as err:
            return cmsg.SubmitAnswer(request_id=rid, outcome="not-leader", error=str(err))
        except mapi.NoQuorum as err:
            return cmsg.SubmitAnswer(request_id=rid, outcome="no-quorum", error=str(err))
        except (mapi.ProposalError, TimeoutError) as err:
            return cmsg.SubmitAnswer(request_id=rid, outcome="timeout", error=str(err))
        return _answer(rid, applied)

    async def _commit_for(self, change: cmsg.SubmitChange) -> None:
        """The DC commits a change another node forwarded, and answers it."""
        if self.leader != self.name:
            answer = cmsg.SubmitAnswer(request_id=change.request_id, outcome="not-leader", error="not the DC")
        else:
            answer = await self._commit(change, 10.0)
        self._send(change.origin, answer)

    async def run_policy(self, fn: Callable[..., T], *args: object) -> T:
        """Run a policy-engine call in the worker process (never on the event loop)."""
        assert self.loop is not None and self._pool is not None
        return await self.loop.run_in_executor(self._pool, fn, *args)

    # --- the CIB --------------------------------------------------------------------------------------

    def _on_applied(self, old: m.Cib, applied: Applied) -> None:
        if applied.error is None:
            self.hub.record(changes(old, applied.cib), time.time())
        fut = self._pending.get(applied.request_id)
        if fut is not None and not fut.done():
            fut.set_result(applied)
        self.member.cib_committed(applied.cib)
        if applied.request_id and applied.request_id == self._barrier:
            self._barrier = None
            self._run_dc(self.dc.become_dc(self._now_ms()))
            self._record_fences()
            self._bootstrap_if_empty()
            return
        if applied.error is None:
            self._run_dc(self.dc.cib_committed(applied.cib, applied.patch, self._now_ms()))
            self.shutdown.cib_committed(applied.cib)
            self._operator_fencing(old, applied.cib)

    def _bootstrap_if_empty(self) -> None:
        if self.bootstrap is None or self.cib.configuration.resources or self.cib.configuration.nodes:
            return
        target = msgspec.structs.replace(self.cib, configuration=self.bootstrap)
        # no version precondition: the DC's own status writes may commit first, and they do not conflict
        self._propose(Patch(ops=diff(self.cib, target).ops), "initial configuration")

    # --- message layer events -------------------------------------------------------------------------

    def _on_message_event(self, event: mapi.Event) -> None:
        if isinstance(event, mapi.LeaderChanged):
            self._leader_changed(event)
        elif isinstance(event, mapi.NodeJoined | mapi.NodeLeft):
            name = self.names.get(event.node)
            if name is None:
                return
            if isinstance(event, mapi.NodeJoined):
                self.up.add(name)
            else:
                self.up.discard(name)
            log.info(
                "%s: node %s %s", self.name, name, "joined" if isinstance(event, mapi.NodeJoined) else "left"
            )
            self._run_dc(self.dc.membership(frozenset(self.up), self._now_ms()))
        elif isinstance(event, mapi.QuorumChanged):
            state = event.state
            log.info(
                "%s: quorum: %s (%s)", self.name, "quorate" if state.quorate else "NOT quorate", state.reason
            )
            policy = self._property("no-quorum-policy", "stop")
            policy = policy if state.quorate else self.selffence.no_quorum_policy(policy)
            self._run_member(self.member.quorum_changed(state.quorate, policy))
            self.selffence.quorum_changed(state.quorate, self._property("stonith-watchdog-timeout", ""))
            if self.fencer is not None:  # watchdog fencing counts only time spent with quorum
                self._run_fencer(self.fencer.set_quorate(state.quorate, time.monotonic(), time.time()))
            self._fence_race([self.names[n] for n in sorted(state.awaiting_fence) if n in self.names])
            # Only quorum *regained* means proposals were lost; a quorate change of votes (3 -> 2 nodes)
            # must not make the DC step down and wait for a barrier and every member's sync again.
            regained = state.quorate and not self._was_quorate
            self._was_quorate = state.quorate
            if regained and self.leader == self.name:
                self._renew_dc()
        elif isinstance(event, mapi.PeerMessage):
            self._peer_message(event)

    def _leader_changed(self, event: mapi.LeaderChanged) -> None:
        name = self.names.get(event.leader) if event.leader != mapi.NO_LEADER else None
        if name == self.leader:
            return
        self.leader = name
        log.info("%s: %s", self.name, f"DC is now {name}" if name else "no DC (election running)")
        if name == self.name:
            self._barrier = f"barrier-{self.name}-{event.term}-{uuid.uuid4().hex[:6]}"
            self._spawn(self._commit_barrier(self._barrier))
        else:
            self._barrier = None
            self._run_dc(self.dc.lose_dc())
        self._run_member(self.member.dc_changed(name))

    def _renew_dc(self) -> None:
        """Quorum is back while this node was the DC: what it proposed without quorum (membership,
        fencing results) was lost, and the log may have moved to a new term without another leader ever
        being named. Act again only after a new barrier has committed, as a new DC does."""
        self._run_dc(self.dc.lose_dc())
        self._barrier = f"barrier-{self.name}-renew-{uuid.uuid4().hex[:6]}"
        self._spawn(self._commit_barrier(self._barrier))

    async def _commit_barrier(self, request_id: str) -> None:
        assert self.service is not None and self.loop is not None
        entry = LogEntry(
            request_id=request_id, patch=Patch(ops=[]), actor=f"dc:{self.name}", why="DC barrier"
        )
        deadline = self.loop.time() + 10.0
        while True:
            try:
                await self.service.propose(encode_entry(entry), timeout=10.0)
                return
            except mapi.ProposalError as err:
                # right after quorum returns, the log may still be electing this very node again
                retry = self._barrier == request_id and self.loop.time() < deadline
                if not retry or not isinstance(err, mapi.NotLeader):
                    log.info("%s: DC barrier not committed: %s", self.name, err)
                    return
            await asyncio.sleep(0.1)

    def _peer_message(self, event: mapi.PeerMessage) -> None:
        sender = self.names.get(event.sender, str(event.sender))
        try:
            message = cmsg.decode(event.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            log.warning("%s: dropped a malformed controller message from %s: %s", self.name, sender, err)
            return
        self._dispatch(message)

    def _dispatch(self, message: cmsg.ControllerMessage) -> None:
        now = self._now_ms()
        if isinstance(message, cmsg.SubmitChange):
            self._spawn(self._commit_for(message))
        elif isinstance(message, cmsg.SubmitAnswer):
            fut = self._answers.get(message.request_id)
            if fut is not None and not fut.done():
                fut.set_result(message)
        elif isinstance(message, cmsg.RunFence):
            if message.dc == self.leader and message.target != self.name:
                self._spawn(
                    self._run_device(
                        message.attempt_id, message.device, message.target, message.action, message.timeout_s
                    )
                )
        elif isinstance(message, cmsg.FenceRan):
            if self.leader == self.name:
                self._fence_ran(message)
            elif self.leader is not None:
                self._send(self.leader, message)
        elif isinstance(message, cmsg.OpDone):
            self._run_dc(self.dc.op_result(message.node, message.result, now))
        elif isinstance(message, cmsg.Sync):
            self._run_dc(self.dc.member_sync(message, now))
        elif isinstance(message, cmsg.AttributeChanged):
            self._run_dc(self.dc.attribute_update(message.update, now))
        else:
            self._run_member(self.member.on_message(message))

    # --- executing the cores' outputs -----------------------------------------------------------------

    def _run_dc(self, commands: list[Command]) -> None:
        for cmd in commands:
            if isinstance(cmd, Propose):
                self._propose(cmd.patch, cmd.why)
            elif isinstance(cmd, Plan):
                self._spawn(self._plan(cmd))
            elif isinstance(cmd, SendOp):
                self._send(cmd.node, cmsg.RunOp(dc=self.name, request=cmd.request))
            elif isinstance(cmd, SendCancel):
                self._send(cmd.node, cmsg.CancelOp(dc=self.name, request=cmd.request))
            elif isinstance(cmd, RequestFence):
                self._fence(cmd)
            elif isinstance(cmd, Event):
                log.info("%s: %s", self.name, cmd.text)

    def _run_member(self, outputs: list[MemberOutput]) -> None:
        assert self.lrm is not None
        for out in outputs:
            if isinstance(out, Submit):
                self.lrm.submit(out.request)
            elif isinstance(out, Cancel):
                self.lrm.cancel(out.request)
            elif isinstance(out, SendToDc):
                self._send(out.dc, out.message)
            elif isinstance(out, SelfFence):
                log.critical("%s: %s; stopping the daemon", self.name, out.reason)
                os._exit(1)
            elif isinstance(out, Note):
                log.info("%s: %s", self.name, out.text)

    def _send(self, node: str, message: cmsg.ControllerMessage) -> None:
        if node == self.name:
            assert self.loop is not None
            self.loop.call_soon(self._dispatch, message)
            return
        node_id = self.ids.get(node)
        if node_id is None or self.service is None or not self.service.send(node_id, cmsg.encode(message)):
            log.warning("%s: could not send %s to %s", self.name, type(message).__name__, node)

    async def _plan(self, cmd: Plan) -> None:
        try:
            graph = await self.run_policy(plan_transition, cmd.cib, cmd.now_s, cmd.transition_id)
        except Exception as err:  # the policy engine must never take the daemon down
            log.error("%s: the policy engine failed on transition %d: %r", self.name, cmd.transition_id, err)
            return
        self._run_dc(self.dc.plan_ready(graph, self._now_ms()))

    # --- fencing --------------------------------------------------------------------------------------

    def _the_fencer(self) -> Fencer:
        """The DC's fencer, rebuilt when the configuration changes (requests in progress keep their plan)."""
        version = (self.cib.admin_epoch, self.cib.epoch)
        if self.fencer is None:
            self.fencer, errors = Fencer.from_config(self.cib.configuration, rng=random.Random())
            if self.service is not None:
                self.fencer.set_quorate(self.service.quorum.quorate, time.monotonic(), time.time())
        elif version != self._fencer_epoch:
            errors = self.fencer.reconfigure_from(self.cib.configuration)
        else:
            errors = {}
        self._fencer_epoch = version
        for device, why in sorted(errors.items()):
            log.error("%s: fencing device %s cannot be used: %s", self.name, device, why)
        return self.fencer

    def _fence(self, cmd: RequestFence) -> None:
        fencer = self._the_fencer()
        now, wall = time.monotonic(), time.time()
        outputs = fencer.set_members(sorted(self.up), now, wall)
        outputs += fencer.request(cmd.target, cmd.action, self.name, now, wall=wall, client=cmd.key)
        self._run_fencer(outputs)

    def _operator_fencing(self, old: m.Cib, new: m.Cib) -> None:
        """The DC acts on operator requests committed to the fencing history (``hakeeper fence``)."""
        if not self.dc.is_dc:
            return
        for req in new_operator_requests(old.status.fencing_history, new.status.fencing_history):
            if req.confirm:
                fencer, now, wall = self._the_fencer(), time.monotonic(), time.time()
                self._run_fencer(fencer.confirm(req.target, req.origin, now, wall=wall, client=req.client))
            else:
                self._fence(RequestFence(req.target, req.action, "requested by an operator", req.client))

    def _record_fences(self) -> None:
        """Commit fencing results once this node is a DC with quorum: a two_node survivor fences first."""
        quorate = self.service is not None and self.service.quorum.quorate
        if not (self._unrecorded_fences and self.dc.is_dc and quorate):
            return
        events, self._unrecorded_fences = self._unrecorded_fences, []
        for event in events:
            self._run_dc(self.dc.fence_result(event, self._now_ms()))

    def _fence_race(self, peers: list[str]) -> None:
        """A two_node survivor fences its lost peer itself: without quorum there is no DC to ask, and
        quorum comes back only once the peer is confirmed fenced. The device delays decide the race."""
        if not peers or self._property("stonith-enabled", "true").lower() not in ("true", "yes", "on", "1"):
            return
        fencer, now, wall = self._the_fencer(), time.monotonic(), time.time()
        outputs = fencer.set_members([self.name], now, wall)
        for peer in peers:
            log.warning("%s: two_node: %s is gone; fencing it before going on alone", self.name, peer)
            action = self._property("stonith-action", "reboot")
            outputs += fencer.request(peer, action, self.name, now, wall=wall, client="two_node")
        self._run_fencer(outputs)

    def _run_fencer(self, outputs: list[FencerOutput]) -> None:
        for out in outputs:
            if isinstance(out, RunDevice):
                if out.executor == self.name:
                    self._spawn(
                        self._run_device(
                            out.attempt_id, out.device, out.target, out.action, out.timeout_s, local=True
                        )
                    )
                else:
                    self._send(out.executor, cmsg.RunFence.of(self.name, out))
            elif isinstance(out, FencingPlanned):
                log.warning("%s: fencing %s (%s) in %.1f s", self.name, out.target, out.action, out.delay_s)
            elif isinstance(out, FencingFinished):
                if out.ok:
                    node_id = self.ids.get(out.target)
                    if node_id is not None and self.service is not None:
                        self.service.fencing_confirmed(node_id)
                if out.event is not None:
                    self._unrecorded_fences.append(out.event)
                self._record_fences()

    async def _run_device(
        self,
        attempt_id: int,
        device_id: str,
        target: str,
        action: str,
        timeout_s: float,
        *,
        local: bool = False,
    ) -> None:
        """Run one fencing device here; report to this node's fencer (``local``) or to the DC."""
        devices = devices_from_config(self.cib.configuration)
        device = devices.devices.get(device_id)
        if device is None:
            ok, reason = False, devices.errors.get(device_id, f"device {device_id} is not configured here")
        else:
            result = await self._fence_runner.run(device, action, target, timeout_s=timeout_s)
            ok, reason = result.ok, result.reason
        ran = cmsg.FenceRan(attempt_id=attempt_id, ok=ok, reason=reason)
        if local:
            self._fence_ran(ran)
        else:
            self._dispatch(ran)

    def _fence_ran(self, message: cmsg.FenceRan) -> None:
        if self.fencer is None:
            return
        self._run_fencer(
            self.fencer.result(
                message.attempt_id, message.ok, time.monotonic(), reason=message.reason, wall=time.time()
            )
        )

    # --- loops ----------------------------------------------------------------------------------------

    async def _lrm_events(self) -> None:
        assert self.lrm is not None
        while True:
            event = await self.lrm.events.get()
            if isinstance(event, OpResult):
                self._run_member(self.member.on_result(event))
            elif isinstance(event, AttributeUpdate):
                self._run_member(self.member.on_attribute(event))

    def _tick(self, _now: float) -> None:
        self._run_dc(self.dc.tick(self._now_ms()))
        self.shutdown.tick()
        if self.fencer is not None and self.leader == self.name:
            self._run_fencer(self.fencer.tick(time.monotonic(), time.time()))
        if time.monotonic() - self._last_resend >= RESEND_S:
            self._last_resend = time.monotonic()
            self._run_member(self.member.dc_changed(self.leader))

    def _property(self, name: str, default: str) -> str:
        props = cluster_properties(self.cib.configuration.properties, int(time.time()))
        return props.get(name, default)


def _answer(request_id: str, applied: Applied) -> cmsg.SubmitAnswer:
    """What an operator's change came to, once the log has applied it."""
    if applied.conflict is not None:
        expected, actual = applied.conflict
        return cmsg.SubmitAnswer(
            request_id=request_id,
            outcome="conflict",
            error=applied.error or "",
            expected=str(expected),
            actual=str(actual),
        )
    if applied.error is not None:
        return cmsg.SubmitAnswer(request_id=request_id, outcome="invalid", error=applied.error)
    v = applied.cib
    version = f"{v.admin_epoch}.{v.epoch}.{v.num_updates}"
    return cmsg.SubmitAnswer(request_id=request_id, outcome="committed", index=applied.index, version=version)


def run_daemon(config: DaemonConfig, node: str, bootstrap: m.Configuration | None = None) -> None:
    """Run the daemon in the foreground until it has shut down cleanly after SIGTERM or SIGINT (a second
    signal stops it at once)."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        daemon = NodeDaemon(config, node, bootstrap=bootstrap)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, daemon.shutdown.request, f"{signal.Signals(sig).name} received")
        await daemon.run(stop)

    asyncio.run(main())
