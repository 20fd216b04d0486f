"""The message layer as the CRM sees it: a small interface another backend (etcd, say) could also provide.

* ``propose(data)`` -> the committed log index, or one of the rejections below;
* the committed entries, in order, exactly once per process lifetime, through :class:`Application.apply`
  (after a restart the layer restores the application's last snapshot and replays the entries after it);
* events: :class:`LeaderChanged` (the leader is the cluster's DC), membership (:class:`NodeJoined`,
  :class:`NodeLeft`, :class:`LinkUp`, :class:`LinkDown`, each with the time it was observed),
  :class:`QuorumChanged`, and :class:`PeerMessage` (node-to-node traffic that bypasses the log);
* ``send(node, data)`` for that node-to-node traffic, and ``fencing_confirmed(node)`` for ``two_node``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hakeeper.messaging.failure_detector import LinkDown, LinkUp, NodeJoined, NodeLeft
from hakeeper.messaging.quorum import QuorumChanged, QuorumState

NO_LEADER = 0

__all__ = [
    "NO_LEADER",
    "Application",
    "Event",
    "EventHandler",
    "LeaderChanged",
    "LinkDown",
    "LinkUp",
    "MessageLayer",
    "NoQuorum",
    "NodeJoined",
    "NodeLeft",
    "NotLeader",
    "PeerMessage",
    "ProposalError",
    "ProposalTimeout",
    "ProposalTooLarge",
    "QuorumChanged",
    "QuorumState",
]


class ProposalError(Exception):
    """A proposal was not committed; the message says why and what to do."""


class NotLeader(ProposalError):
    """Only the leader takes proposals; ``leader_hint`` is the node to retry at (0: not known yet)."""

    def __init__(self, message: str, leader_hint: int = NO_LEADER) -> None:
        super().__init__(message)
        self.leader_hint = leader_hint


class NoQuorum(ProposalError):
    """This node's partition does not hold quorum, so nothing can be committed here."""


class ProposalTimeout(ProposalError):
    """The proposal was not committed in time; it may still commit later (make changes idempotent)."""


class ProposalTooLarge(ProposalError):
    """The proposal exceeds the layer's size limit."""


@dataclass(frozen=True, slots=True)
class LeaderChanged:
    """``leader`` (NO_LEADER while an election runs) in ``term``, observed at ``at`` (monotonic seconds)."""

    at: float
    leader: int
    term: int


@dataclass(frozen=True, slots=True)
class PeerMessage:
    """A node-to-node message from ``sender`` (authenticated, not ordered with the log, may be lost)."""

    sender: int
    data: bytes


Event = LeaderChanged | NodeJoined | NodeLeft | LinkUp | LinkDown | QuorumChanged | PeerMessage
EventHandler = Callable[[Event], None]


class Application(Protocol):
    """The replicated state machine behind the log (the CIB, for the CRM)."""

    def apply(self, index: int, data: bytes) -> None:
        """Apply committed entry ``index``; called once per entry, in order, never concurrently."""
        ...

    def snapshot(self) -> bytes:
        """The whole state after the last applied entry (the layer compacts its log behind it)."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot (after a restart, or when catching up from far behind)."""
        ...


class MessageLayer(Protocol):
    """What the CRM uses. Implemented by :class:`hakeeper.messaging.service.MessageService`."""

    @property
    def node_id(self) -> int: ...

    @property
    def leader(self) -> int:
        """The current leader (DC) as this node knows it, or NO_LEADER."""
        ...

    @property
    def quorum(self) -> QuorumState: ...

    async def propose(self, data: bytes, timeout: float = 5.0) -> int:
        """Commit ``data``; returns its log index. Raises NotLeader, NoQuorum, ProposalTimeout or
        ProposalTooLarge. Many concurrent proposals are batched into one round of replication."""
        ...

    def send(self, node: int, data: bytes) -> bool:
        """Send a node-to-node message; False if it cannot be sent (unknown node, too large)."""
        ...

    def fencing_confirmed(self, node: int) -> None:
        """Tell the quorum that ``node`` was fenced while absent (``two_node`` survivors need this)."""
        ...
