"""An in-memory ``ClusterHandle``: patches commit at once, time is settable.

Used by the API's tests and by demos without a cluster. As the daemon does, it derives events from each CIB
change (``hakeeper.api.events``); tests can also publish events directly. It runs the real policy engine
for ``simulate`` and can be told to refuse the next submit (no quorum, no DC) to exercise error answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec

from hakeeper.api.events import Draft, EventHub, changes
from hakeeper.api.handle import ClusterState, Committed, Event, EventKind, MemberState, SubmitError
from hakeeper.cib.model import Cib, FenceEvent
from hakeeper.cib.patch import Create, Patch, apply, version_of
from hakeeper.fencing.requests import new_operator_requests
from hakeeper.policy.schedule import Transition, schedule


class FakeCluster:
    """A cluster of one CIB in memory. ``members`` default to the configured nodes, all online."""

    def __init__(
        self,
        cib: Cib,
        *,
        cluster_name: str = "fake",
        local_node: str | None = None,
        now: float = 1_700_000_000.0,
        max_events: int = 10_000,
    ) -> None:
        self._cib = cib
        self._now = now
        self._index = 0
        self._hub = EventHub(max_events)
        names = [n.uname for n in cib.configuration.nodes]
        self.members = {name: MemberState(name=name, online=True) for name in names}
        self.local_node = local_node or (names[0] if names else "local")
        self.cluster_name = cluster_name
        self.quorate = True
        self.dc: str | None = names[0] if names else None
        self.refuse_next: SubmitError | None = None
        self.submitted: list[tuple[str, Patch]] = []
        self.shutdowns: list[str] = []  # why this node was asked to shut down, in order
        self.fence_outcome: Literal["done", "failed"] | None = "done"
        """How the fake DC answers operator fencing requests (None: never, as a DC that went away)."""

    # --- the ClusterHandle interface -------------------------------------------------------------------

    def cib(self) -> Cib:
        return self._cib

    async def submit(self, patch: Patch, *, actor: str) -> Committed:
        if self.refuse_next is not None:
            err, self.refuse_next = self.refuse_next, None
            raise err
        old = self._cib
        self._advance(apply(self._cib, patch))
        self._index += 1
        self.submitted.append((actor, patch))
        committed = Committed(version=str(version_of(self._cib)), index=self._index)
        self._answer_fencing(old)
        return committed

    def cluster_state(self) -> ClusterState:
        return ClusterState(
            cluster_name=self.cluster_name,
            local_node=self.local_node,
            members=list(self.members.values()),
            quorate=self.quorate,
            dc=self.dc,
        )

    def events(self, since: int = 0, limit: int = 1000) -> list[Event]:
        return self._hub.log.since(since, limit)

    def subscribe(self, since: int = 0) -> AsyncIterator[Event]:
        return self._hub.subscribe(since)

    async def simulate(self, cib: Cib) -> Transition:
        return schedule(cib, int(self._now))

    def now(self) -> float:
        return self._now

    def shutdown_here(self, why: str) -> None:
        self.shutdowns.append(why)

    def _answer_fencing(self, old: Cib) -> None:
        """Answer operator fencing requests the last commit added, as the DC's fencer would."""
        history = self._cib.status.fencing_history
        for req in new_operator_requests(old.status.fencing_history, history):
            if self.fence_outcome is None:
                continue
            answer = FenceEvent(
                target=req.target,
                action=req.action,
                state=self.fence_outcome,
                origin=req.origin,
                delegate=self.dc,
                device="manual" if req.confirm else "fake",
                client=req.client,
                requested=int(self._now),
                completed=int(self._now),
                reason="confirmed by an operator" if req.confirm else None,
            )
            op = Create(path="/status/fencing_history", value=msgspec.to_builtins(answer))
            self._advance(apply(self._cib, Patch(ops=[op])))

    # --- test controls -----------------------------------------------------------------------------------

    def set_now(self, now: float) -> None:
        self._now = now

    def set_cib(self, cib: Cib) -> None:
        """Replace the CIB as if the cluster had committed it (status updates from the LRMs, say)."""
        self._advance(cib)

    def _advance(self, cib: Cib) -> None:
        old, self._cib = self._cib, cib
        self._hub.record(changes(old, cib), self._now)

    def set_member(
        self, name: str, *, online: bool, unclean: bool = False, fenced_at: float | None = None
    ) -> None:
        self.members[name] = MemberState(name=name, online=online, unclean=unclean, fenced_at=fenced_at)

    def publish(self, kind: EventKind, desc: str, **fields: Any) -> Event:
        """Record an event (as the daemon does when it commits one) and hand it to every subscriber."""
        draft = msgspec.convert({"kind": kind, "desc": desc, **fields}, Draft)
        [event] = self._hub.record([draft], self._now)
        return event
