"""The leader's view of each follower: how far it has replicated, and how much may be in flight to it."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field


class ProgressState(enum.Enum):
    PROBE = "probe"  # finding where the follower's log matches ours: one append at a time
    REPLICATE = "replicate"  # streaming appends optimistically, at most max_inflight batches outstanding
    SNAPSHOT = "snapshot"  # a snapshot is on its way; nothing else until it is acknowledged or times out


@dataclass
class Progress:
    match: int
    next: int
    state: ProgressState = ProgressState.PROBE
    probe_sent: bool = False
    inflight: deque[int] = field(default_factory=deque)  # last index carried by each unacknowledged append
    pending_snapshot: int = 0
    snapshot_elapsed: int = 0
    recent_active: bool = False
    read_ack: int = 0  # the newest ReadIndex sequence this follower has confirmed

    def is_paused(self, max_inflight: int) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= max_inflight
        return True

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflight.clear()

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.inflight.clear()

    def become_snapshot(self, index: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = index
        self.snapshot_elapsed = 0
        self.inflight.clear()

    def sent_entries(self, last: int) -> None:
        if self.state is ProgressState.REPLICATE:
            self.next = last + 1
            self.inflight.append(last)
        else:
            self.probe_sent = True

    def maybe_update(self, index: int) -> bool:
        """A follower acknowledged ``index``; returns whether its match advanced."""
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()
        return updated

    def maybe_decrease_to(self, rejected: int, hint: int) -> bool:
        """A follower rejected an append at ``rejected``; back off. False if the rejection is stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, hint + 1), self.match + 1)
        self.probe_sent = False
        return True
