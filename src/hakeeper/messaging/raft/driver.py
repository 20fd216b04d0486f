"""The Ready contract as one function, for I/O shells: persist, then send, then apply, then advance.

A shell calls :func:`process_ready` after every ``tick``/``step``/``propose`` (until it returns False). It is
synchronous and does no I/O of its own: ``storage`` writes durably, ``send`` hands a message to the transport
(which may queue it), and the state machine applies committed entries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from hakeeper.messaging.raft.core import RaftNode, ReadState
from hakeeper.messaging.raft.messages import Entry, Message, Snapshot
from hakeeper.messaging.raft.storage import WritableStorage


class StateMachine(Protocol):
    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole state with the snapshot's (a follower that fell too far behind)."""
        ...

    def apply(self, entry: Entry) -> None:
        """Apply one committed entry (NORMAL, CONFIG or EMPTY; most applications ignore all but NORMAL)."""
        ...


def process_ready(
    node: RaftNode,
    storage: WritableStorage,
    send: Callable[[Message], None],
    state_machine: StateMachine,
    on_read: Callable[[ReadState], None] | None = None,
) -> bool:
    """Run one Ready round; returns False when the node had nothing to do."""
    if not node.has_ready():
        return False
    rd = node.ready()
    if rd.must_persist():
        storage.save(rd.hard_state, rd.entries, rd.snapshot)
        storage.sync()  # durable before any message that depends on it leaves
    for msg in rd.messages:
        send(msg)
    if rd.snapshot is not None:
        state_machine.restore(rd.snapshot)
    for entry in rd.committed_entries:
        state_machine.apply(entry)
    if on_read is not None:
        for read in rd.read_states:
            on_read(read)
    node.advance(rd)
    return True
