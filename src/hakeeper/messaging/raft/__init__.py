"""Raft consensus: a sans-I/O core (:mod:`.core`), its storage (:mod:`.storage`, :mod:`.sqlite_storage`) and
the vote/commit arithmetic (:mod:`.quorum_math`)."""

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
)
from hakeeper.messaging.raft.storage import MemoryStorage, Storage, StorageCorruptionError

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
    "Storage",
    "StorageCorruptionError",
    "apply_conf_change",
    "bootstrap",
]
