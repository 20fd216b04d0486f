"""One simulated node of the CRM: the daemon's glue around the sans-I/O cores, without asyncio.

This mirrors :mod:`hakeeper.daemon.node` step for step — the same cores (``DcCore``, ``MemberCore``, the
LRM's ``LrmCore``, the ``Fencer``) fed the same inputs in the same order — with the simulation (:class:`Env`)
in place of sockets, the Raft service, subprocesses and the worker process. Where the two differ, the
difference is named in a comment. :class:`Glue` can deliberately break the glue, to prove the invariants
catch it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from hakeeper.cib import model as m
from hakeeper.cib.patch import Patch, apply
from hakeeper.controller import messages as cmsg
from hakeeper.controller.dc import (
    RESEND_OP_MS,
    Command,
    DcCore,
    Event,
    Plan,
    Propose,
    RequestFence,
    SendCancel,
    SendOp,
)
from hakeeper.controller.member import Cancel, MemberCore, MemberOutput, Note, SelfFence, SendToDc, Submit
from hakeeper.daemon.cib_state import Applied, LogEntry
from hakeeper.daemon.node import RESEND_S, TICK_S
from hakeeper.fencing.fencer import Fencer, FencingFinished, FencingPlanned, RunDevice
from hakeeper.fencing.fencer import Output as FencerOutput
from hakeeper.lrm.core import Completion, Execute, LrmCore
from hakeeper.lrm.core import Output as LrmOutput

TICK_MS = round(TICK_S * 1000)
RESEND_MS = round(RESEND_S * 1000)


@dataclass(frozen=True)
class Glue:
    """How the glue behaves; the defaults are the daemon's. Anything else is deliberately broken."""

    fence_wait: bool = True
    """False: a fencing request is answered at once as done, without running any device."""
    fence_commit_wait: bool = True
    """False: the DC is told a fencing result is committed as soon as the fencer has it (before the log has
    committed it), so recovery may start before the fencing is on record."""
    barrier: bool = True
    """False: a new leader acts as DC at once, before its barrier entry (and its predecessor's last changes)
    have been applied."""


class Env(Protocol):
    """What a node needs from the simulation around it."""

    now_ms: int

    def send(self, sender: str, to: str, message: cmsg.ControllerMessage) -> None: ...

    def propose(self, node: SimCrmNode, entry: LogEntry) -> None: ...

    def plan_later(self, node: SimCrmNode, cmd: Plan) -> None: ...

    def execute(self, node: SimCrmNode, execute: Execute) -> None: ...

    def run_device(self, node: SimCrmNode, message: cmsg.RunFence) -> None: ...

    def note(self, node: str, text: str) -> None: ...


class SimCrmNode:
    def __init__(
        self,
        name: str,
        boot: int,
        env: Env,
        *,
        up: set[str],
        cib: m.Cib,
        rng: random.Random,
        glue: Glue,
    ) -> None:
        self.name = name
        self.boot = boot
        self.env = env
        self.glue = glue
        self.dc = DcCore(name, uuid=f"{name}.{boot}.{rng.getrandbits(24):06x}")
        self.dc.cib = cib  # the daemon gets it from the entries replayed at start; see SimCrm._start_node
        self.member = MemberCore(name, boot=self.dc.uuid)
        self.lrm = LrmCore()
        self.up = set(up)
        self.leader: str | None = None
        self.term = 0  # the Raft term this node knows: its proposals carry it
        self.barrier: str | None = None
        self.applied = 0
        self.fencer: Fencer | None = None
        self._fencer_rng = random.Random(rng.getrandbits(64))
        self.tick_origin = env.now_ms + rng.randrange(TICK_MS)
        self.tick_at: int | None = None  # the tick the simulation has scheduled for this node
        self.lrm_at: int | None = None  # the LRM timer the simulation has scheduled

    def fencer_rng_reseed(self, seed: int) -> None:
        """A forked simulation draws its own fencing delays (the fencer keeps the generator it was given)."""
        self._fencer_rng.seed(seed)

    @property
    def now_ms(self) -> int:
        return self.env.now_ms

    @property
    def now_s(self) -> float:
        return self.env.now_ms / 1000.0

    # --- the CIB (node.py: _on_applied) ---------------------------------------------------------------

    def apply(self, applied: Applied) -> None:
        self.applied = applied.index
        self.member.cib_committed(applied.cib)
        if applied.request_id and applied.request_id == self.barrier:
            self.barrier = None
            self.run_dc(self.dc.become_dc(self.now_ms))
            return
        if applied.error is None:
            self.run_dc(self.dc.cib_committed(applied.cib, applied.patch, self.now_ms))

    # --- message layer events (node.py: _on_message_event, _leader_changed) ----------------------------

    def leader_changed(self, leader: str | None, term: int) -> None:
        self.term = term
        if leader == self.leader:
            return
        self.leader = leader
        self.env.note(self.name, f"DC is now {leader}" if leader else "no DC (election running)")
        if leader == self.name:
            self.barrier = f"barrier-{self.name}-{term}"
            if self.glue.barrier:
                entry = LogEntry(request_id=self.barrier, patch=Patch(ops=[]), actor=f"dc:{self.name}")
                self.env.propose(self, entry)
            else:
                self.barrier = None
                self.run_dc(self.dc.become_dc(self.now_ms))
        else:
            self.barrier = None
            self.run_dc(self.dc.lose_dc())
        self.run_member(self.member.dc_changed(leader))

    def membership(self, node: str, joined: bool) -> None:
        if joined:
            self.up.add(node)
        else:
            self.up.discard(node)
        self.run_dc(self.dc.membership(frozenset(self.up), self.now_ms))

    # --- controller messages (node.py: _dispatch) ----------------------------------------------------

    def receive(self, message: cmsg.ControllerMessage) -> None:
        if isinstance(message, cmsg.RunFence):
            if message.dc == self.leader and message.target != self.name:
                self.env.run_device(self, message)
        elif isinstance(message, cmsg.FenceRan):
            if self.leader == self.name:
                self._fence_ran(message)
            elif self.leader is not None:
                self.env.send(self.name, self.leader, message)
        elif isinstance(message, cmsg.OpDone):
            self.run_dc(self.dc.op_result(message.node, message.result, self.now_ms))
        elif isinstance(message, cmsg.Sync):
            self.run_dc(self.dc.member_sync(message, self.now_ms))
        elif isinstance(message, cmsg.AttributeChanged):
            self.run_dc(self.dc.attribute_update(message.update, self.now_ms))
        elif isinstance(message, (cmsg.RunOp, cmsg.CancelOp)):
            self.run_member(self.member.on_message(message))
        # operator submissions (SubmitChange/SubmitAnswer) are not simulated

    # --- executing the cores' outputs (node.py: _run_dc, _run_member) ----------------------------------

    def run_dc(self, commands: list[Command]) -> None:
        for cmd in commands:
            if isinstance(cmd, Propose):
                entry = LogEntry(request_id="", patch=cmd.patch, actor=f"dc:{self.name}", why=cmd.why)
                self.env.propose(self, entry)
            elif isinstance(cmd, Plan):
                self.env.plan_later(self, cmd)
            elif isinstance(cmd, SendOp):
                self.env.send(self.name, cmd.node, cmsg.RunOp(dc=self.name, request=cmd.request))
            elif isinstance(cmd, SendCancel):
                self.env.send(self.name, cmd.node, cmsg.CancelOp(dc=self.name, request=cmd.request))
            elif isinstance(cmd, RequestFence):
                self._fence(cmd)
            elif isinstance(cmd, Event):
                self.env.note(self.name, cmd.text)

    def run_member(self, outputs: list[MemberOutput]) -> None:
        for out in outputs:
            if isinstance(out, Submit):
                self.run_lrm(self.lrm.submit(self.now_s, out.request, self.now_s))
            elif isinstance(out, Cancel):
                self.run_lrm(self.lrm.cancel(self.now_s, out.request, self.now_s))
            elif isinstance(out, SendToDc):
                self.env.send(self.name, out.dc, out.message)
            elif isinstance(out, (SelfFence, Note)):
                self.env.note(self.name, out.reason if isinstance(out, SelfFence) else out.text)

    def plan_ready(self, cmd: Plan, plan: object) -> None:
        from hakeeper.controller.graph import TransitionGraph

        assert isinstance(plan, TransitionGraph)
        self.run_dc(self.dc.plan_ready(plan, self.now_ms))

    def wants_plan(self, cmd: Plan) -> bool:
        """Whether ``plan_ready`` would use the answer (if not, the simulation need not compute it)."""
        return self.dc.is_dc and self.dc.planning == cmd.transition_id

    # --- the LRM (node.py: LocalResourceManager and _lrm_events) ---------------------------------------

    def run_lrm(self, outputs: list[LrmOutput]) -> None:
        for out in outputs:
            if isinstance(out, Execute):
                self.env.execute(self, out)
            else:
                self.run_member(self.member.on_result(out))

    def lrm_done(self, completion: Completion) -> None:
        self.run_lrm(self.lrm.complete(self.now_s, completion))

    # --- fencing (node.py: _the_fencer, _fence, _run_fencer, _fence_ran) -------------------------------

    def _the_fencer(self) -> Fencer:
        # the configuration never changes in the simulation: built once per boot, kept across DC changes
        if self.fencer is None:
            self.fencer, errors = Fencer.from_config(self.dc.cib.configuration, rng=self._fencer_rng)
            for device, why in sorted(errors.items()):
                self.env.note(self.name, f"fencing device {device} cannot be used: {why}")
        return self.fencer

    def _fence(self, cmd: RequestFence) -> None:
        if not self.glue.fence_wait:
            # deliberately broken: claims the node is fenced without running any device
            event = m.FenceEvent(
                target=cmd.target,
                action=cmd.action,
                state="done",
                origin=self.name,
                delegate=self.name,
                device="none",
                client=cmd.key,
                requested=int(self.now_s),
                completed=int(self.now_s),
            )
            self.run_dc(self.dc.fence_result(event, self.now_ms))
            return
        fencer = self._the_fencer()
        outputs = fencer.set_members(sorted(self.up), self.now_s, self.now_s)
        outputs += fencer.request(
            cmd.target, cmd.action, self.name, self.now_s, wall=self.now_s, client=cmd.key
        )
        self.run_fencer(outputs)

    def run_fencer(self, outputs: list[FencerOutput]) -> None:
        for out in outputs:
            if isinstance(out, RunDevice):
                message = cmsg.RunFence.of(self.name, out)
                if out.executor == self.name:
                    self.env.run_device(self, message)
                else:
                    self.env.send(self.name, out.executor, message)
            elif isinstance(out, FencingPlanned):
                self.env.note(self.name, f"fencing {out.target} ({out.action}) in {out.delay_s:.1f} s")
            elif isinstance(out, FencingFinished) and out.event is not None:
                commands = self.dc.fence_result(out.event, self.now_ms)
                if not self.glue.fence_commit_wait:
                    commands += self._pretend_committed(commands)
                self.run_dc(commands)

    def _pretend_committed(self, commands: list[Command]) -> list[Command]:
        """Deliberately broken: hand the DC its own proposals as if already committed."""
        out: list[Command] = []
        for cmd in commands:
            if isinstance(cmd, Propose):
                out += self.dc.cib_committed(apply(self.dc.cib, cmd.patch), cmd.patch, self.now_ms)
        return out

    def device_done(self, attempt_id: int, ok: bool, reason: str) -> None:
        """A device this node ran finished (node.py: the end of _run_device)."""
        self.receive(cmsg.FenceRan(attempt_id=attempt_id, ok=ok, reason=reason))

    def _fence_ran(self, message: cmsg.FenceRan) -> None:
        if self.fencer is None:
            return
        self.run_fencer(
            self.fencer.result(
                message.attempt_id, message.ok, self.now_s, reason=message.reason, wall=self.now_s
            )
        )

    # --- the ticker (node.py: _ticker), run only when it has something to do ----------------------------

    def tick(self) -> None:
        self.run_dc(self.dc.tick(self.now_ms))
        if self.fencer is not None and self.leader == self.name:
            self.run_fencer(self.fencer.tick(self.now_s, self.now_s))
        if (self.now_ms - self.tick_origin) % RESEND_MS == 0:
            self.run_member(self.member.dc_changed(self.leader))

    def lrm_timer(self) -> None:
        """The LRM's own timer (recurring operations), armed at its next wake-up."""
        self.run_lrm(self.lrm.poll(self.now_s))

    def lrm_wake(self) -> int | None:
        wake = self.lrm.next_wakeup()
        return None if wake is None else max(self.now_ms, _ceil(wake * 1000.0))

    def next_tick(self) -> int | None:
        """The first tick of the daemon's 200 ms ticker that would do anything, given the state now.

        Ticks in between change nothing (each core's ``tick`` acts only at its own deadlines; the resend is
        every tenth tick), so the simulation skips them."""
        wants: list[float] = []
        dc = self.dc
        if dc.is_dc and dc.replan_needed and dc.planning is None and dc.membership_pending_until:
            wants.append(dc.membership_pending_until)
        if dc.is_dc and dc.recheck_at_ms:
            wants.append(dc.recheck_at_ms)
        if dc.is_dc and dc.periodic_recheck_at_ms():  # cluster-recheck-interval
            wants.append(dc.periodic_recheck_at_ms())
        if dc.is_dc and dc.unanswered:  # requests sent again until their node answers
            wants.append(min(sent for _, _, sent in dc.unanswered.values()) + RESEND_OP_MS)
        if dc.is_dc and dc.running is not None:
            deadline = dc.running.engine.next_deadline()
            if deadline is not None:
                wants.append(deadline)
        if self.fencer is not None and self.leader == self.name:
            due = self.fencer.next_deadline()
            if due is not None:
                wants.append(due * 1000.0)
        if self.leader is not None:  # the member's periodic resend (a Sync to the DC)
            wants.append(self._next_grid(self.now_ms + 1, RESEND_MS))
        if not wants:
            return None
        return self._next_grid(max(_ceil(min(wants)), self.now_ms + 1), TICK_MS)

    def _next_grid(self, at: int, step: int) -> int:
        """The first time at or after ``at`` on this node's ticker grid of ``step`` ms."""
        return self.tick_origin + -(-(at - self.tick_origin) // step) * step


def _ceil(ms: float) -> int:
    return -int(-ms // 1)
