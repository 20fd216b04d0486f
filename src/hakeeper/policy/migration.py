"""What a recorded live migration (``migrate_to`` on the source, ``migrate_from`` on the target) says about
where a resource is now.

A migration is complete when both steps succeeded: the resource runs on the target and only a clean-up
stop is owed on the source (a "dangling" migration). When only ``migrate_to`` is recorded the migration is
partial: the resource may be active on both nodes and the next transition may finish the migration. A
failed step leaves the resource possibly active on both nodes, to be recovered. Any newer operation on a
node (a start, stop or migration, or a probe finding it stopped) means the migration no longer matters
there.
"""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.policy.working import NodeInfo, Role, Rsc

RC_OK, RC_NOT_RUNNING = 0, 7
ST_PENDING, ST_DONE = -1, 0
_STATE_CHANGING = ("start", "stop", "migrate_to", "migrate_from")


def _newer(a: m.OpRecord, b: m.OpRecord, same_node: bool) -> bool:
    """Is ``a`` more recent than ``b``? Call ids order one node's operations; otherwise rc-change times."""
    if a.on_node is not None and b.on_node is not None:
        same_node = a.on_node == b.on_node
    if a.call_id < 0 or b.call_id < 0:
        return a.call_id < 0 <= b.call_id  # a pending operation is the newest
    if same_node and a.call_id != b.call_id:
        return a.call_id > b.call_id
    a_time = a.last_rc_change if a.last_rc_change is not None else -1
    b_time = b.last_rc_change if b.last_rc_change is not None else -1
    return b_time >= 0 and a_time > b_time


class MigrationHistory:
    """Reads migrations across nodes: each node's recorded operations per resource, as the CIB lists them."""

    def __init__(self, cib: m.Cib, nodes: dict[str, NodeInfo]) -> None:
        self.cib = cib
        self.nodes = nodes
        self._index: dict[tuple[str, str], list[m.OpRecord]] | None = None

    # --- queries over the recorded history -------------------------------------------------------------

    def _ops(self, node: str, rsc_id: str) -> list[m.OpRecord]:
        """The recorded operations, in the CIB's order (indexed on first use: migrations are rare)."""
        if self._index is None:
            self._index = {
                (state.uname or state.id, hist.id): hist.ops
                for state in self.cib.status.nodes
                for hist in state.resources
            }
        return self._index.get((node, rsc_id), [])

    def _find(self, rsc_id: str, task: str, node: str, source: str | None = None) -> m.OpRecord | None:
        """The first recorded ``task`` for the resource on ``node`` (of a migration from ``source``)."""
        for op in self._ops(node, rsc_id):
            if op.operation != task:
                continue
            if source is not None and task == "migrate_from" and op.migrate_source != source:
                continue
            if source is not None and task == "migrate_to" and op.migrate_target != source:
                continue
            return op
        return None

    def _unknown_on(self, rsc_id: str, node: str) -> bool:
        return not self._ops(node, rsc_id)

    def _non_monitor_after(self, rsc_id: str, node: str, op: m.OpRecord, same_node: bool) -> bool:
        return any(
            other is not op and other.operation in _STATE_CHANGING and _newer(other, op, same_node)
            for other in self._ops(node, rsc_id)
        )

    def _stopped_after(self, rsc_id: str, node: str, op: m.OpRecord, same_node: bool) -> bool:
        monitor = self._find(rsc_id, "monitor", node)
        if monitor is None or monitor.rc != RC_NOT_RUNNING or monitor.op_status != ST_DONE:
            return False
        return _newer(monitor, op, same_node)

    def _newer_state(
        self, rsc_id: str, node: str, migrate_to: m.OpRecord | None, migrate_from: m.OpRecord | None
    ) -> bool:
        """Has the resource a newer state on ``node`` than the migration (compared on that node if we can)?"""
        ref = migrate_from or migrate_to
        assert ref is not None
        same_node = False
        if node == ref.migrate_target:
            ref, same_node = (migrate_from, True) if migrate_from is not None else (ref, False)
        elif node == ref.migrate_source:
            ref, same_node = (migrate_to, True) if migrate_to is not None else (ref, False)
        assert ref is not None
        return self._non_monitor_after(rsc_id, node, ref, same_node) or self._stopped_after(
            rsc_id, node, ref, same_node
        )

    # --- what each recorded step means ------------------------------------------------------------------

    def _online(self, name: str | None) -> NodeInfo | None:
        node = self.nodes.get(name or "")
        return node if node is not None and node.online else None

    def migrate_to_done(self, rsc: Rsc, rsc_id: str, source: NodeInfo, op: m.OpRecord) -> None:
        """``migrate_to`` succeeded on ``source``."""
        target = op.migrate_target
        if target is None or op.migrate_source != source.name:
            return
        source_moved_on = self._non_monitor_after(rsc_id, source.name, op, True)
        migrate_from = self._find(rsc_id, "migrate_from", target, source.name)
        if source_moved_on and migrate_from is not None:
            return
        target_moved_on = self._newer_state(rsc_id, target, op, migrate_from)
        if source_moved_on and target_moved_on:
            return
        rsc.role = Role.STARTED
        target_node = self._online(target)
        if migrate_from is not None and migrate_from.rc == RC_OK and migrate_from.op_status == ST_DONE:
            rsc.role = Role.STOPPED  # complete: only a clean-up stop is owed here
            rsc.dangling_migrations.append(source)
        elif migrate_from is not None and migrate_from.op_status != ST_PENDING:
            if not target_moved_on and target_node is not None:
                add_running(rsc, target_node)
            else:
                _must_recover(rsc)
        elif not target_moved_on and target_node is not None:
            add_running(rsc, target_node)
            if source.online:
                rsc.partial_migration_source = source
                rsc.partial_migration_target = target_node
        elif not source_moved_on:
            _must_recover(rsc)

    def migrate_to_failed(self, rsc: Rsc, rsc_id: str, source: NodeInfo, op: m.OpRecord) -> None:
        """``migrate_to`` failed on ``source``: the resource may be active on both nodes."""
        target = op.migrate_target
        if target is None or op.migrate_source != source.name:
            return
        rsc.role = Role.STARTED
        migrate_from = self._find(rsc_id, "migrate_from", target, source.name)
        if migrate_from is not None and (migrate_from.rc != RC_OK or migrate_from.op_status != ST_DONE):
            migrate_from = None
        if not self._unknown_on(rsc_id, target) and not self._newer_state(rsc_id, target, op, migrate_from):
            target_node = self._online(target)
            if target_node is not None:
                add_running(rsc, target_node)
        elif not self._non_monitor_after(rsc_id, source.name, op, True):
            rsc.dangling_migrations.append(source)

    def migrate_from_failed(self, rsc: Rsc, rsc_id: str, target: NodeInfo, op: m.OpRecord) -> None:
        """``migrate_from`` failed on ``target``: the resource may still be active on the source."""
        source = op.migrate_source
        if source is None or op.migrate_target != target.name:
            return
        rsc.role = Role.STARTED
        migrate_to = self._find(rsc_id, "migrate_to", source, target.name)
        if migrate_to is not None and (migrate_to.rc != RC_OK or migrate_to.op_status != ST_DONE):
            migrate_to = None
        if not self._unknown_on(rsc_id, source) and not self._newer_state(rsc_id, source, migrate_to, op):
            source_node = self._online(source)
            if source_node is not None:
                add_running(rsc, source_node)


def _must_recover(rsc: Rsc) -> None:
    rsc.failed = True
    rsc.stop_needed = True
    rsc.allow_migrate = False


def add_running(rsc: Rsc, node: NodeInfo) -> None:
    """Record that ``rsc`` (and each enclosing collective) is active on ``node``."""
    walker: Rsc | None = rsc
    while walker is not None:
        if node not in walker.running_on:
            walker.running_on.append(node)
        walker = walker.parent
