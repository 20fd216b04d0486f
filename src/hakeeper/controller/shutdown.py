"""A node's clean shutdown, sans-I/O: move or stop its resources through the DC, then leave.

As Pacemaker does, the node asks for its transient ``shutdown`` attribute (the time of the request) to be
set; the policy engine then treats the node as unable to run anything, so the DC moves what can move and
stops the rest. The node leaves once the committed CIB shows nothing active on it and its own LRM is idle.
If that takes longer than the shutdown timeout (or the cluster cannot act: no quorum, or never a DC), it stops
what still runs locally and leaves anyway, and says so.

The same attribute is how other nodes ask this one to shut down (``hakeeper cluster stop NODE``): a request
committed after this daemon started is honoured; an older one (replayed from the log on restart) is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hakeeper.cib import model as m
from hakeeper.controller.member import SendToDc
from hakeeper.controller.messages import AttributeChanged
from hakeeper.lrm.messages import AttributeUpdate, OpStatus

SHUTDOWN_ATTRIBUTE = "shutdown"
RESEND_MS = 2_000
LOCAL_STOP_GRACE_MS = 30_000
"""After the timeout, how long the local stops may take before the daemon leaves regardless."""


class Phase(Enum):
    RUNNING = "running"  # no shutdown asked
    THROUGH_DC = "through-dc"  # waiting for the DC to move or stop everything here
    LOCAL = "local"  # stopping what is left here, without the cluster
    DONE = "done"


@dataclass(frozen=True)
class StopLocally:
    """Stop every resource this node still runs, here, without the DC (the member core knows them)."""

    reason: str


@dataclass(frozen=True)
class Leave:
    """The daemon may exit now."""

    reason: str


@dataclass(frozen=True)
class Say:
    text: str
    warning: bool = False


ShutdownOutput = SendToDc | StopLocally | Leave | Say


@dataclass(frozen=True)
class Situation:
    """What the shutdown core looks at on every step (the daemon fills it in)."""

    now_ms: int
    cib: m.Cib
    dc: str | None
    quorate: bool
    lrm_busy: bool
    active_here: frozenset[str]
    """Resources the member core knows to be running here (from its own LRM's results)."""


def requested_at(cib: m.Cib, node: str) -> int | None:
    """The time (epoch seconds) of the shutdown request the CIB records for ``node``, if any."""
    state = next((n for n in cib.status.nodes if n.id == node), None)
    if state is None:
        return None
    for s in state.transient_attributes:
        value = s.values.get(SHUTDOWN_ATTRIBUTE)
        if value is not None and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return None


def active_in_cib(cib: m.Cib, node: str) -> list[str]:
    """Resources whose recorded history says they may be active on ``node`` (conservatively)."""
    state = next((n for n in cib.status.nodes if n.id == node), None)
    if state is None:
        return []
    return sorted(h.id for h in state.resources if _may_be_active(h))


def _may_be_active(history: m.ResourceHistory) -> bool:
    last = next((o for o in history.ops if o.id == f"{history.id}_last_0"), None)
    if last is None:
        return False
    if last.op_status == OpStatus.NOT_INSTALLED:
        return False
    if last.operation == "stop":
        return not (last.rc == 0 and last.op_status == OpStatus.DONE)  # a failed stop leaves it unknown
    if last.operation == "monitor" and last.interval == 0:
        return last.rc != 7
    return True


class ShutdownCore:
    def __init__(self, node: str, timeout_ms: int, started_at_s: int) -> None:
        self.node = node
        self.timeout_ms = timeout_ms
        self.started_at_s = started_at_s
        self.phase = Phase.RUNNING
        self.deadline_ms = 0
        self.value = ""
        self.last_sent_ms: int | None = None

    def request(self, now_ms: int, why: str) -> list[ShutdownOutput]:
        """Begin a clean shutdown (SIGTERM, or an operator's request seen in the CIB)."""
        if self.phase is not Phase.RUNNING:
            return []
        self.phase = Phase.THROUGH_DC
        self.deadline_ms = now_ms + self.timeout_ms
        self.value = str(max(now_ms // 1000, 1))
        seconds = self.timeout_ms / 1000
        return [
            Say(
                f"{self.node} is shutting down ({why}): moving or stopping its resources through the DC, "
                f"for at most {seconds:g} s"
            )
        ]

    def cib_committed(self, cib: m.Cib, now_ms: int) -> list[ShutdownOutput]:
        """Honour a shutdown request for this node that someone else committed after this daemon started."""
        if self.phase is not Phase.RUNNING:
            return []
        when = requested_at(cib, self.node)
        if when is None or when < self.started_at_s:
            return []
        out = self.request(now_ms, "an operator asked for it through the cluster")
        self.value = str(when)
        return out

    def step(self, s: Situation) -> list[ShutdownOutput]:
        if self.phase is Phase.THROUGH_DC:
            return self._through_dc(s)
        if self.phase is Phase.LOCAL:
            return self._local(s)
        return []

    def _through_dc(self, s: Situation) -> list[ShutdownOutput]:
        recorded = requested_at(s.cib, self.node) is not None
        left = active_in_cib(s.cib, self.node)
        if recorded and not left and not s.active_here and not s.lrm_busy:
            self.phase = Phase.DONE
            return [Leave(f"{self.node}: nothing runs here any more; leaving the cluster")]
        if not s.quorate:
            return self._go_local(s, "the cluster has no quorum, so it cannot move anything")
        if s.now_ms >= self.deadline_ms:
            still = ", ".join(sorted(set(left) | s.active_here)) or "operations in progress"
            return self._go_local(
                s, f"the shutdown timeout ({self.timeout_ms / 1000:g} s) passed with {still} still here"
            )
        due = self.last_sent_ms is None or s.now_ms - self.last_sent_ms >= RESEND_MS
        if recorded or s.dc is None or not due:
            return []
        self.last_sent_ms = s.now_ms
        update = AttributeUpdate(node=self.node, name=SHUTDOWN_ATTRIBUTE, value=self.value)
        return [SendToDc(s.dc, AttributeChanged(update))]

    def _go_local(self, s: Situation, why: str) -> list[ShutdownOutput]:
        self.phase = Phase.LOCAL
        self.deadline_ms = s.now_ms + LOCAL_STOP_GRACE_MS
        return [
            Say(f"{self.node}: {why}; stopping what still runs here locally", warning=True),
            StopLocally(why),
            *self._local(s),
        ]

    def _local(self, s: Situation) -> list[ShutdownOutput]:
        if not s.active_here and not s.lrm_busy:
            self.phase = Phase.DONE
            return [Leave(f"{self.node}: stopped its resources locally; leaving the cluster")]
        if s.now_ms >= self.deadline_ms:
            self.phase = Phase.DONE
            still = ", ".join(sorted(s.active_here)) or "operations in progress"
            return [
                Say(f"{self.node}: the local stops did not finish ({still}); leaving anyway", warning=True),
                Leave(f"{self.node}: leaving with {still} possibly still running"),
            ]
        return []
