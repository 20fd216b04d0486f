"""A seeded, deterministic simulation of the whole CRM: DC, members, LRMs and fencing, on a virtual clock.

Each seed builds a small cluster (:mod:`.crm_scenario`), runs every node's daemon glue
(:class:`~hakeeper.sim.crm_node.SimCrmNode`, the same cores the daemon runs) on a heap of
``(time, seq, event)``, and injects the seed's faults for a while: node crashes (what a crashed node runs
keeps running until it is fenced), the DC crashing mid-transition, the DC deposed without knowing it, lost
and delayed controller messages, fencing devices that fail or hang, start failures, nodes coming back.
Consensus is abstracted (:mod:`.crm_log`). The physical truth and the safety invariants live in
:mod:`.crm_invariants` and are checked after every step. Then the faults stop, every node returns, and the
cluster must converge — every resource running exactly once — within a bound (liveness).

A run is a pure function of its seed and :class:`~hakeeper.sim.crm_node.Glue`: ``replay`` reproduces it.
"""

from __future__ import annotations

import copy
import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hakeeper.controller import messages as cmsg
from hakeeper.controller.dc import Plan
from hakeeper.controller.planning import plan_transition
from hakeeper.daemon.cib_state import Applied, LogEntry
from hakeeper.lrm.core import Completion, Execute
from hakeeper.lrm.messages import OcfRc, OpStatus
from hakeeper.sim.crm_invariants import CrmViolation, Phys, World
from hakeeper.sim.crm_log import SimLog
from hakeeper.sim.crm_node import Glue, SimCrmNode
from hakeeper.sim.crm_scenario import (
    MONITORED,
    START_MS,
    CrmProfile,
    fencing_devices,
    primitive_ids,
    scenario_cib,
)


class CrmLivenessViolation(AssertionError):
    """After the faults stopped and every node returned, the cluster did not converge within the bound."""


@dataclass
class CrmStats:
    events: int = 0
    plans: int = 0
    commits: int = 0
    fenced: int = 0
    crashes: int = 0
    elections: int = 0
    converged_ms: int = 0  # from the end of the faults until everything ran exactly once


class CrmSim:
    def __init__(
        self,
        seed: int,
        glue: Glue | None = None,
        trace_limit: int | None = 0,
        *,
        daemon_restarts: bool = False,
        profile: CrmProfile | None = None,
    ) -> None:
        self.seed = seed
        rng = random.Random(seed)
        drawn = CrmProfile.random(rng, daemon_restarts=daemon_restarts)
        self.profile = profile or drawn
        self.glue = glue or Glue()
        self._rng = {k: random.Random(rng.getrandbits(64)) for k in ("net", "fault", "op", "node", "log")}
        self.names = [f"n{i}" for i in range(1, self.profile.nodes + 1)]
        cib = scenario_cib(self.names, self.profile.device_delay_max_ms)
        self.log = SimLog(cib)
        self.world = World(primitive_ids(cib), tuple(self.names), fencing_devices(cib))
        self.nodes: dict[str, SimCrmNode | None] = {n: None for n in self.names}
        self.boots = {n: 0 for n in self.names}
        self.frozen: dict[str, list[tuple[Callable[..., None], tuple[object, ...]]]] = {}  # node -> backlog
        self.power = {n: 0 for n in self.names}  # bumped when a device powers a node off
        self.stats = CrmStats()
        self.trace: deque[str] = deque(maxlen=trace_limit)
        self._tracing = trace_limit != 0
        self.now_ms = START_MS
        self._queue: list[tuple[int, int, Callable[..., None], tuple[object, ...]]] = []
        self._seq = 0
        self._channel: dict[str, int] = {n: 0 for n in self.names}  # per-node ordered message-layer events
        self._commit_at = 0
        self._faulty = True
        self._healed_at = 0
        self._dc_crash_armed = 0
        self._failed_once: set[str] = set()
        self._start_failures = self.profile.start_failures
        self._returning: set[str] = set()
        self._touched: set[str] = set()  # nodes an event reached: their timers may have moved

    def fork(self, seed: int, profile: CrmProfile, trace_limit: int | None = 0) -> CrmSim:
        """A copy of this (settled) run that continues as ``seed`` with ``profile``'s faults."""
        immutable: dict[int, object] = {id(a): a for a in self.log.entries}
        immutable.update({id(a.cib): a.cib for a in self.log.entries})
        sim = copy.deepcopy(self, immutable)
        rng = random.Random(seed)
        CrmProfile.random(rng)  # the same draws as a cold run of this seed, so the streams below differ
        sim.seed, sim.profile = seed, profile
        sim._rng = {k: random.Random(rng.getrandbits(64)) for k in sim._rng}
        for node in sim.nodes.values():
            if node is not None:
                node.fencer_rng_reseed(rng.getrandbits(64))
        sim.stats = CrmStats()
        sim._faulty, sim._failed_once = True, set()
        sim._start_failures = profile.start_failures
        sim.trace, sim._tracing = deque(maxlen=trace_limit), trace_limit != 0
        return sim

    def run_warm(self) -> CrmStats:
        """Continue a forked run: the faults begin now."""
        return self._run_faults()

    # --- the event queue -----------------------------------------------------------------------------

    def _at(self, when: int, fn: Callable[..., None], *args: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, fn, args))

    def _later(self, lo: int, hi: int, fn: Callable[..., None], *args: object) -> None:
        self._at(self.now_ms + self._rng["net"].randint(lo, hi), fn, *args)

    def _layer(self, node: str, delay: int, fn: Callable[..., None], *args: object) -> None:
        """A message-layer event for ``node`` (commit, leader, membership): these arrive in order."""
        when = max(self.now_ms + delay, self._channel[node])
        self._channel[node] = when
        self._at(when, self._on_node, node, self.boots[node], fn, *args)

    def _on_node(self, node: str, boot: int, fn: Callable[..., None], *args: object) -> None:
        sim_node = self._node(node, boot, (self._on_node, (node, boot, fn, *args)))
        if sim_node is not None:
            fn(sim_node, *args)

    def _node(
        self, name: str, boot: int, backlog: tuple[Callable[..., None], tuple[object, ...]] | None = None
    ) -> SimCrmNode | None:
        """The node an event is for, if it still runs that boot. A frozen node gets it later (``backlog``)
        or never (messages: a frozen process's socket buffer overflows)."""
        node = self.nodes[name]
        if node is None or node.boot != boot:
            return None
        if name in self.frozen:
            if backlog is not None:
                self.frozen[name].append(backlog)
            return None
        self._touched.add(name)
        return node

    def note(self, node: str, text: str) -> None:
        if self._tracing:
            self.trace.append(f"{self.now_ms - START_MS:>8} {node}: {text}")

    # --- running -------------------------------------------------------------------------------------

    def run(self) -> CrmStats:
        """From a cold start: every node boots, a DC is elected and the faults begin at once."""
        for name in self.names:
            self._start(name)
        self._at(self.now_ms + self._rng["fault"].randint(100, 600), self._elect)
        return self._run_faults()

    def _run_faults(self) -> CrmStats:
        p = self.profile
        begin = self.now_ms
        self._plan_faults(begin)
        self._at(begin + p.fault_ms, self._heal)
        deadline = begin + p.fault_ms + p.liveness_ms
        while self._queue:
            when, _seq, fn, args = heapq.heappop(self._queue)
            if when > deadline:
                break
            self.now_ms = when
            self.stats.events += 1
            fn(*args)
            self.world.check()
            self._crash_dc_mid_transition()
            self._reschedule_timers()
            if not self._faulty and self._converged():
                self.stats.converged_ms = self.now_ms - self._healed_at
                return self.stats
        problems = "; ".join(self.world.unconverged()) or self._idle_problem() or "the run ran out of events"
        raise CrmLivenessViolation(
            f"not converged {p.liveness_ms // 1000} s after the faults stopped: {problems}"
        )

    def _plan_faults(self, begin: int) -> None:
        p, rng = self.profile, self._rng["fault"]

        def some_time() -> int:
            return begin + rng.randint(500, p.fault_ms)

        for _ in range(p.crashes):
            self._at(some_time(), self._freeze_some_node)
        for _ in range(p.dc_crashes):
            self._at(some_time(), self._arm_dc_crash)
        for _ in range(p.deposals):
            self._at(some_time(), self._depose)
        for _ in range(p.deaths):
            self._at(some_time(), self._kill_monitored)

    def _heal(self) -> None:
        self._faulty = False
        self._healed_at = self.now_ms
        self.note("sim", "faults stop; every node returns")
        for name in self.names:
            if self.nodes[name] is None or name in self.frozen:
                self._later(0, 500, self._return, name)

    def _converged(self) -> bool:
        return not self.world.unconverged() and not self._idle_problem()

    def _idle_problem(self) -> str:
        """Why the cluster is not settled yet (empty when it is)."""
        if len(self._alive()) < len(self.names):
            return "a node is still down"
        dc = self.nodes[self.log.leader] if self.log.leader else None
        if dc is None or not dc.dc.is_dc:
            return "no DC"
        core = dc.dc
        if core.planning is not None or core.replan_needed:
            return "the DC is planning"
        if core.running is not None and not core.running.engine.finished:
            return "a transition is running"
        if dc.fencer is not None and dc.fencer.next_deadline() is not None:
            return "fencing is in progress"
        if self.log.pending or any(n.applied < self.log.last_index for n in self.nodes.values() if n):
            return "changes are not applied everywhere"
        return ""

    def _reschedule_timers(self) -> None:
        for name in sorted(self._touched):
            node = self.nodes[name]
            if node is None or name in self.frozen:
                continue
            tick = node.next_tick()
            if tick is not None and tick != node.tick_at:
                node.tick_at = tick
                self._at(tick, self._tick, node.name, node.boot, tick)
            wake = node.lrm_wake()
            if wake is not None and wake != node.lrm_at:
                node.lrm_at = wake
                self._at(wake, self._lrm_timer, node.name, node.boot, wake)
        self._touched.clear()

    def _tick(self, name: str, boot: int, when: int) -> None:
        node = self._node(name, boot)
        if node is not None and node.tick_at == when:
            node.tick_at = None
            node.tick()

    def _lrm_timer(self, name: str, boot: int, when: int) -> None:
        node = self._node(name, boot)
        if node is not None and node.lrm_at == when:
            node.lrm_at = None
            node.lrm_timer()

    # --- nodes ---------------------------------------------------------------------------------------

    def _present(self) -> list[str]:
        """Nodes with a daemon, running or frozen (frozen ones see their message-layer events on resume)."""
        return [n for n in self.names if self.nodes[n] is not None]

    def _alive(self) -> list[str]:
        """Nodes whose daemon runs: what the others' failure detectors see as up."""
        return [n for n in self._present() if n not in self.frozen]

    def _start(self, name: str) -> None:
        self.boots[name] += 1
        node = SimCrmNode(
            name, self.boots[name], self, up={name}, cib=self.log.cib, rng=self._rng["node"], glue=self.glue
        )
        # The daemon replays the committed log at start; every entry reaches a fresh, non-DC core that only
        # keeps the CIB and has no results waiting, so the last CIB is all that remains of the replay.
        node.applied = self.log.last_index
        self.nodes[name] = node
        self._touched.add(name)
        self.note(name, f"starts (boot {node.boot})")
        self._announce(name)
        if self.log.leader is not None:
            leader, term = self.log.leader, self.log.term
            self._layer(name, self._rng["net"].randint(20, 300), SimCrmNode.leader_changed, leader, term)

    def _announce(self, name: str) -> None:
        """``name`` is up (again): it and the others' failure detectors find each other."""
        for other in self._alive():
            if other != name:
                self._layer(name, self._rng["net"].randint(50, 400), SimCrmNode.membership, other, True)
        for other in self._present():
            if other != name:
                self._layer(other, self._rng["net"].randint(50, 400), SimCrmNode.membership, name, True)

    def _freeze(self, name: str) -> None:
        """``name`` stops responding (its daemon crashed or hangs): what it runs keeps running, operations
        in flight finish unseen, and the others can only tell it is gone."""
        if self.nodes[name] is None or name in self.frozen:
            return
        self.stats.crashes += 1
        self.frozen[name] = []
        self.note(name, "stops responding")
        self.world.node_lost(name, self.now_ms)
        for other in self._present():
            if other != name:
                self._layer(other, self._rng["net"].randint(100, 600), SimCrmNode.membership, name, False)
        if self.log.leader == name:
            self._leader_lost()
        self._schedule_return(name)

    def _return(self, name: str) -> None:
        """A lost node is back: rebooted if it was powered off, else it resumes where it stopped (or, with
        ``daemon_restarts``, its daemon restarts while what it ran keeps running)."""
        self._returning.discard(name)
        if self.nodes[name] is None:
            self._start(name)
            return
        backlog = self.frozen.pop(name, None)
        if backlog is None:
            return
        if self.profile.daemon_restarts:
            self.nodes[name] = None
            self._start(name)
            return
        self.note(name, "responds again")
        self._touched.add(name)
        for fn, args in backlog:
            fn(*args)
        self._announce(name)

    def _schedule_return(self, name: str) -> None:
        lo, hi = self.profile.away_ms
        if name in self._returning:
            return
        if not self._faulty:
            self._later(0, 500, self._return, name)
        elif lo < 10**9:
            self._returning.add(name)
            self._at(self.now_ms + self._rng["fault"].randint(lo, hi), self._return, name)

    def _freeze_some_node(self) -> None:
        alive = self._alive()
        if (len(alive) - 1) * 2 <= len(self.names):
            return  # keep a majority: consensus is abstracted, not the loss of quorum
        self._freeze(self._rng["fault"].choice(alive))

    def _kill_monitored(self) -> None:
        """The monitored resource's process dies where it runs (its monitor will find it gone)."""
        for name in self._alive():
            if self.world.phys(name, MONITORED) is Phys.RUNNING:
                self.note("sim", f"{MONITORED} dies on {name}")
                self.world.set(name, MONITORED, None)

    def _arm_dc_crash(self) -> None:
        self._dc_crash_armed += 1

    def _crash_dc_mid_transition(self) -> None:
        leader = self.log.leader
        if not self._dc_crash_armed or not self._faulty or leader is None or leader in self.frozen:
            return
        dc = self.nodes[leader]
        running = dc.dc.running if dc is not None else None
        if running is not None and running.engine.running and (len(self._alive()) - 1) * 2 > len(self.names):
            self._dc_crash_armed -= 1
            self.note("sim", "the DC crashes in the middle of its transition")
            self._freeze(leader)

    # --- consensus -----------------------------------------------------------------------------------

    def _leader_lost(self) -> None:
        self._deliver(self.log.change_leader(None, self._rng["log"]))
        for other in self._present():
            self._layer(
                other, self._rng["net"].randint(100, 500), SimCrmNode.leader_changed, None, self.log.term
            )
        self._later(600, 1_500, self._elect)

    def _depose(self) -> None:
        """The DC loses leadership (a stall, a partition that heals) and hears of it late."""
        leader = self.log.leader
        if leader is None:
            return
        self.note("sim", f"{leader} is deposed")
        self._deliver(self.log.change_leader(None, self._rng["log"]))
        for other in self._present():
            late = 300 if other == leader else 100
            self._layer(
                other, self._rng["net"].randint(late, 1_000), SimCrmNode.leader_changed, None, self.log.term
            )
        self._later(400, 1_200, self._elect)

    def _elect(self) -> None:
        alive = self._alive()
        if self.log.leader is not None and self.log.term > 0:
            return
        if len(alive) * 2 <= len(self.names):
            self._later(500, 1_000, self._elect)
            return
        leader = self._rng["log"].choice(alive)
        self.stats.elections += 1
        self._deliver(self.log.change_leader(leader, self._rng["log"]))
        self._layer(leader, 0, SimCrmNode.leader_changed, leader, self.log.term)
        for other in self._present():
            if other != leader:
                self._layer(
                    other, self._rng["net"].randint(1, 50), SimCrmNode.leader_changed, leader, self.log.term
                )

    def propose(self, node: SimCrmNode, entry: LogEntry) -> None:
        if not self.log.propose(node.name, node.term, entry):
            self.note(node.name, f"proposal lost: {entry.why or entry.request_id}")
            return
        self._commit_at = max(self._commit_at, self.now_ms + self._rng["log"].randint(2, 30))
        self._at(self._commit_at, self._commit, self.log.term)

    def _commit(self, term: int) -> None:
        applied = self.log.commit_next(term)
        if applied is not None:
            self._deliver([applied])

    def _deliver(self, entries: list[Applied]) -> None:
        for applied in entries:
            self.stats.commits += 1
            if self._tracing:
                why = self.log.whys[applied.index - 1]
                refused = f" REFUSED: {applied.error}" if applied.error else ""
                self.note("log", f"#{applied.index} committed: {why}{refused}")
            if applied.error is None:
                self._note_fencing(applied)
            for name in self._present():
                self._layer(name, self._rng["net"].randint(1, 20), self._apply_up_to, applied.index)

    def _apply_up_to(self, node: SimCrmNode, index: int) -> None:
        while node.applied < index:
            node.apply(self.log.entries[node.applied])

    def _note_fencing(self, applied: Applied) -> None:
        for op in applied.patch.ops:
            value = getattr(op, "value", None)
            if (
                op.path == "/status/fencing_history"
                and isinstance(value, dict)
                and value.get("state") == "done"
            ):
                self.world.fence_committed(str(value.get("target")), self.now_ms)

    # --- the node-to-node channel --------------------------------------------------------------------

    def send(self, sender: str, to: str, message: cmsg.ControllerMessage) -> None:
        if to == sender:
            self._at(self.now_ms, self._receive, to, message)
            return
        net = self._rng["net"]
        if self._faulty and net.random() < self.profile.loss:
            return
        top = self.profile.max_delay_ms if self._faulty else 5
        self._at(self.now_ms + net.randint(1, top), self._receive, to, message)

    def _receive(self, to: str, message: cmsg.ControllerMessage) -> None:
        node = self._node(to, self.boots[to])
        if node is not None:
            node.receive(message)

    # --- the policy engine ---------------------------------------------------------------------------

    def plan_later(self, node: SimCrmNode, cmd: Plan) -> None:
        self._later(5, 80, self._plan_done, node.name, node.boot, cmd)

    def _plan_done(self, name: str, boot: int, cmd: Plan) -> None:
        node = self._node(name, boot, (self._plan_done, (name, boot, cmd)))
        if node is None or not node.wants_plan(cmd):
            return  # the daemon's answer would be ignored: no need to compute it
        self.stats.plans += 1
        node.plan_ready(cmd, plan_transition(cmd.cib, cmd.now_s, cmd.transition_id))

    # --- the LRM's agents ----------------------------------------------------------------------------

    def execute(self, node: SimCrmNode, execute: Execute) -> None:
        req = execute.request
        rsc, name = req.resource_id, node.name
        self.note(name, f"runs {req.key} ({req.transition_key or 'local'})")
        if req.operation == "start" and rsc in self.world.resources:
            self.world.start_begins(name, rsc, self.now_ms)
        elif req.operation == "stop" and self.world.phys(name, rsc) is not None:
            self.world.set(name, rsc, Phys.STOPPING)
        when = self.now_ms + self._rng["op"].randint(5, 400)
        self._at(when, self._agent_done, name, node.boot, self.power[name], execute)

    def _agent_done(self, name: str, boot: int, power: int, execute: Execute) -> None:
        """The agent finished (whatever became of the daemon that ran it); the LRM hears of it if it can."""
        if power != self.power[name]:
            return  # the node was powered off meanwhile: nothing of this survived
        req = execute.request
        rc = self._agent_effect(name, req.resource_id, req.operation)
        self._lrm_hears(name, boot, execute, rc)

    def _lrm_hears(self, name: str, boot: int, execute: Execute, rc: int) -> None:
        node = self._node(name, boot, (self._lrm_hears, (name, boot, execute, rc)))
        if node is None:
            return
        self.note(name, f"{execute.request.key} rc={rc}")
        done = Completion(
            exec_id=execute.exec_id, rc=rc, op_status=OpStatus.DONE, finished_wall=self.now_ms / 1000
        )
        node.lrm_done(done)

    def _agent_effect(self, node: str, rsc: str, operation: str) -> int:
        """What the simulated agent did and its exit code."""
        phys = self.world.phys(node, rsc)
        if operation == "start":
            if self._should_fail_start(rsc):
                self.world.set(node, rsc, Phys.FAILED)
                return OcfRc.ERR_GENERIC
            self.world.set(node, rsc, Phys.RUNNING)
            return OcfRc.SUCCESS
        if operation == "stop":
            self.world.set(node, rsc, None)
            return OcfRc.SUCCESS
        if operation == "monitor":
            if phys is None:
                self.world.seen_not_running(node, rsc)
                return OcfRc.NOT_RUNNING
            return OcfRc.SUCCESS if phys is Phys.RUNNING else OcfRc.ERR_GENERIC
        return OcfRc.ERR_UNIMPLEMENTED

    def _should_fail_start(self, rsc: str) -> bool:
        if not self._faulty or not self._start_failures or rsc in self._failed_once:
            return False
        if self._rng["op"].random() >= 0.2:
            return False
        self._start_failures -= 1
        self._failed_once.add(rsc)
        return True

    # --- fencing devices -----------------------------------------------------------------------------

    def run_device(self, node: SimCrmNode, message: cmsg.RunFence) -> None:
        rng, p = self._rng["fault"], self.profile
        target, attempt = message.target, message.attempt_id
        power_off = message.action in ("off", "reboot")
        roll = rng.random() if self._faulty else 1.0
        if roll < p.device_fail:
            self._later(20, 500, self._device_done, node.name, node.boot, attempt, False, "device failed")
        elif roll < p.device_fail + p.device_slow:
            timeout = round(message.timeout_s * 1000)
            self._at(
                self.now_ms + timeout, self._device_done, node.name, node.boot, attempt, False, "timed out"
            )
            if power_off and rng.random() < 0.5:
                self._at(self.now_ms + rng.randint(timeout // 2, timeout * 2), self._late_power_off, target)
        else:
            when = self.now_ms + self._rng["op"].randint(50, 1_500)
            if power_off:
                self._at(when, self._power_off, target)
            self._at(when, self._device_done, node.name, node.boot, attempt, True, "")

    def _device_done(self, name: str, boot: int, attempt_id: int, ok: bool, reason: str) -> None:
        node = self._node(name, boot, (self._device_done, (name, boot, attempt_id, ok, reason)))
        if node is not None:
            node.device_done(attempt_id, ok, reason)

    def _late_power_off(self, target: str) -> None:
        """A hung device that still cuts the power — a fault, so not once the faults have stopped."""
        if self._faulty:
            self._power_off(target)

    def _power_off(self, target: str) -> None:
        """A fencing device powered ``target`` off: its daemon and everything it ran are gone."""
        self.stats.fenced += 1
        self.note("sim", f"{target} is powered off by its fencing device")
        self.world.powered_off(target, self.now_ms)
        self.power[target] += 1
        if self.nodes[target] is not None and target not in self.frozen:
            self._freeze(target)  # the others notice it is gone, as with any crash
        self.frozen.pop(target, None)
        self.nodes[target] = None
        self._schedule_return(target)


@dataclass(frozen=True)
class CrmSeedResult:
    seed: int
    error: str | None
    events: int
    converged_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


COLD_EVERY = 8
"""With warm starts, one seed in this many still starts cold (faults during the cluster's bootstrap)."""


def _prepare(
    seed: int, glue: Glue | None, warm: WarmStarts | None, daemon_restarts: bool, trace_limit: int | None = 0
) -> tuple[CrmSim, Callable[[], CrmStats]]:
    """The simulation of ``seed`` and how to run it: forked from a settled cluster when ``warm`` is given
    (and the glue is the daemon's), except every ``COLD_EVERY``-th seed."""
    if warm is not None and (glue is None or glue == Glue()) and seed % COLD_EVERY:
        sim = warm.sim(seed, daemon_restarts=daemon_restarts, trace_limit=trace_limit)
        return sim, sim.run_warm
    sim = CrmSim(seed, glue, trace_limit=trace_limit, daemon_restarts=daemon_restarts)
    return sim, sim.run


def run_crm_seed(
    seed: int, glue: Glue | None = None, *, warm: WarmStarts | None = None, daemon_restarts: bool = False
) -> CrmSeedResult:
    sim, run = _prepare(seed, glue, warm, daemon_restarts)
    try:
        stats = run()
    except (CrmViolation, CrmLivenessViolation) as exc:
        return CrmSeedResult(seed, f"{type(exc).__name__}: {exc}", sim.stats.events)
    return CrmSeedResult(seed, None, stats.events, stats.converged_ms)


def replay_crm(
    seed: int,
    glue: Glue | None = None,
    trace_limit: int | None = None,
    *,
    warm: WarmStarts | None = None,
    daemon_restarts: bool = False,
) -> list[str]:
    """Run ``seed`` again with its trace (time in ms from the start, node, what happened); the last line says
    how it ended. Runs are deterministic, so this reproduces a failure from a sweep exactly (pass a
    ``WarmStarts`` if the sweep had one)."""
    sim, run = _prepare(seed, glue, warm, daemon_restarts, trace_limit)
    lines = [f"seed {seed}: {sim.profile}"]
    try:
        stats = run()
        outcome = (
            f"seed {seed}: passed ({stats.events} events, {stats.plans} plans, {stats.fenced} fenced, "
            f"converged {stats.converged_ms} ms after the faults)"
        )
    except (CrmViolation, CrmLivenessViolation) as exc:
        outcome = f"seed {seed}: FAILED: {type(exc).__name__}: {exc}"
    return [*lines, *sim.trace, outcome]


# --- warm starts ---------------------------------------------------------------------------------------

WarmKey = tuple[int, int]  # (nodes, device delay max)
SETTLE_SEED = 0
"""The seed of every settled cluster: a warm seed's run must not depend on which seed came first."""


class WarmStarts:
    """Settled clusters to start seeds from, so most seeds spend their time on faults, not on bootstrap.

    For each cluster shape, one fault-free run (a fixed seed) is taken to the point where every resource runs
    once and the DC is idle; a seed copies it and draws its own randomness and faults from there. The
    copies are made once per sweep and kept here; a run stays a pure function of its seed."""

    def __init__(self) -> None:
        self._settled: dict[WarmKey, CrmSim] = {}

    def sim(self, seed: int, *, daemon_restarts: bool = False, trace_limit: int | None = 0) -> CrmSim:
        profile = CrmProfile.random(random.Random(seed), daemon_restarts=daemon_restarts)
        key = (profile.nodes, profile.device_delay_max_ms)
        base = self._settled.get(key)
        if base is None:
            base = self._settle(key)
            self._settled[key] = base
        return base.fork(seed, profile, trace_limit)

    @staticmethod
    def _settle(key: WarmKey) -> CrmSim:
        """A fault-free run of one cluster shape, from a fixed seed, until everything runs once."""
        nodes, delay_max_ms = key
        profile = CrmProfile(
            nodes=nodes,
            fault_ms=0,
            crashes=0,
            dc_crashes=0,
            deposals=0,
            loss=0.0,
            max_delay_ms=5,
            device_fail=0.0,
            device_slow=0.0,
            device_delay_max_ms=delay_max_ms,
            start_failures=0,
            away_ms=(10**9, 10**9),
            liveness_ms=300_000,
        )
        sim = CrmSim(SETTLE_SEED, profile=profile)
        sim.run()
        return sim
