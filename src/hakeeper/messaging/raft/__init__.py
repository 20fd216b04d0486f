"""Raft consensus for hakeeper's message layer.

- :mod:`.core` — :class:`RaftNode`, the sans-I/O state machine (RawNode style: ``tick``, ``step``,
  ``propose``/``propose_many``/``propose_conf_change``, ``transfer_leadership``, ``read_index``, ``ready``,
  ``advance``), with pre-vote, check-quorum, snapshots, single-server membership changes, learners, witnesses
  and ReadIndex.
- :mod:`.messages` — msgspec Structs: entries, membership, snapshots and the tagged union :data:`Message`.
- :mod:`.storage` (read-only interface + in-memory store) and :mod:`.sqlite_storage` (durable store).
- :mod:`.driver` — :func:`process_ready`, the Ready contract for I/O shells.
- :mod:`.quorum_math` — the pluggable vote/commit arithmetic.
"""

from hakeeper.messaging.raft.core import (
    Accepted,
    ProposeResult,
    RaftConfig,
    RaftNode,
    ReadState,
    Ready,
    Rejected,
    RejectReason,
    Role,
    apply_conf_change,
    bootstrap,
)
from hakeeper.messaging.raft.driver import StateMachine, process_ready
from hakeeper.messaging.raft.messages import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Message,
    Snapshot,
    SnapshotMeta,
    decode_message,
    encode_message,
)
from hakeeper.messaging.raft.sqlite_storage import SqliteStorage
from hakeeper.messaging.raft.storage import MemoryStorage, Storage, StorageCorruptionError, WritableStorage

__all__ = [
    "Accepted",
    "ConfChange",
    "ConfChangeKind",
    "ConfState",
    "Entry",
    "EntryKind",
    "HardState",
    "MemoryStorage",
    "Message",
    "ProposeResult",
    "RaftConfig",
    "RaftNode",
    "ReadState",
    "Ready",
    "RejectReason",
    "Rejected",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "SqliteStorage",
    "StateMachine",
    "Storage",
    "StorageCorruptionError",
    "WritableStorage",
    "apply_conf_change",
    "bootstrap",
    "decode_message",
    "encode_message",
    "process_ready",
]
