"""What the API needs from the node daemon: the interface the daemon implements (``ClusterHandle``).

The API never reaches into the daemon's internals. It reads the latest committed CIB, the live cluster state
(membership, quorum, DC, links) and the event stream; it submits changes as patches, which the daemon sends
through the DC and the replicated log and answers once they are committed. Tests and the demo use the
in-memory ``FakeCluster`` (``hakeeper.api.fake``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal, Protocol

import msgspec

from hakeeper.cib.model import Cib
from hakeeper.cib.patch import Patch
from hakeeper.policy.schedule import Transition


class Committed(msgspec.Struct, frozen=True, kw_only=True):
    """A change is committed: the CIB version it produced and its index in the replicated log."""

    version: str  # admin_epoch.epoch.num_updates
    index: int


class SubmitError(Exception):
    """A change could not be committed; the message says why and what the operator can do."""


class NotLeader(SubmitError):
    """This node could not reach the DC to forward the change (an election may be running)."""

    def __init__(self, leader: str | None = None) -> None:
        where = f"the DC is {leader}" if leader else "there is no DC right now (an election may be running)"
        super().__init__(f"the change could not be forwarded to the DC: {where}; try again in a moment")
        self.leader = leader


class NoQuorum(SubmitError):
    """The cluster partition this node is in has no quorum: nothing can be committed."""

    def __init__(self) -> None:
        super().__init__(
            "this node's partition has no quorum, so no change can be committed; "
            "bring enough nodes back (or check the links) and try again"
        )


class CommitTimeout(SubmitError):
    """The change was sent but not seen committed in time; it may still commit."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the change was not confirmed as committed within {seconds:g} s; it may still "
            "commit: read the configuration before trying again"
        )
        self.seconds = seconds


class LinkState(msgspec.Struct, frozen=True, kw_only=True):
    node: str
    link: int
    up: bool


class MemberState(msgspec.Struct, frozen=True, kw_only=True):
    """What membership says of one node (the CIB says the rest: standby, maintenance, attributes)."""

    name: str
    online: bool
    unclean: bool = False
    fenced_at: float | None = None  # epoch seconds of the last confirmed fencing


class ClusterState(msgspec.Struct, frozen=True, kw_only=True):
    cluster_name: str
    local_node: str
    members: list[MemberState] = []
    quorate: bool = False
    dc: str | None = None
    links: list[LinkState] = []


EventKind = Literal["node", "resource", "fencing", "attribute", "cluster"]


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One cluster event, in commit order. ``id`` grows by one per event and is never reused.

    The fields are those Pacemaker hands to alert agents (``CRM_alert_*``), so alerts are a projection of
    the same stream the API and the dashboard show.
    """

    id: int
    timestamp: float  # epoch seconds (with microseconds)
    kind: EventKind
    desc: str
    node: str | None = None
    nodeid: str | None = None
    rsc: str | None = None
    task: str | None = None
    interval_ms: int | None = None
    rc: int | None = None
    target_rc: int | None = None
    status: int | None = None
    attribute_name: str | None = None
    attribute_value: str | None = None


class ClusterHandle(Protocol):
    """The daemon as the API sees it. Everything but ``submit``/``simulate`` answers at once, from memory."""

    def cib(self) -> Cib:
        """The latest CIB committed on this node."""
        ...

    async def submit(self, patch: Patch, *, actor: str) -> Committed:
        """Commit ``patch`` through the DC; raises ``PatchConflict``/``PatchError`` or a ``SubmitError``."""
        ...

    def cluster_state(self) -> ClusterState: ...

    def events(self, since: int = 0, limit: int = 1000) -> list[Event]:
        """Recent events with ``id > since``, oldest first (at most ``limit``, the newest ones)."""
        ...

    def subscribe(self, since: int = 0) -> AsyncIterator[Event]:
        """Events with ``id > since``: those kept in memory, then live ones as they happen."""
        ...

    async def simulate(self, cib: Cib) -> Transition:
        """What the policy engine would do with ``cib`` now (run off the event loop by the daemon)."""
        ...

    def now(self) -> float:
        """Wall-clock epoch seconds (for countdowns); a parameter so tests control time."""
        ...

    def shutdown_here(self, why: str) -> None:
        """Begin this node's clean shutdown (resources moved or stopped first, then the daemon exits). It
        needs no commit first, so it works without quorum too (the node then stops its resources itself)."""
        ...
