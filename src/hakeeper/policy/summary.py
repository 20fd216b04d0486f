"""The transition summary in crm_simulate's line format (``* Start rsc ( node )`` and friends)."""

from __future__ import annotations

from dataclasses import dataclass

from hakeeper.policy.working import Action, NodeInfo, Role, Rsc


@dataclass(frozen=True)
class SummaryLine:
    """One line: what changes for a resource (or node), and why."""

    change: str
    rsc: str
    details: str
    reason: str = ""

    def render(self, rsc_width: int = 0, detail_width: int = 0) -> str:
        if self.change.startswith("Fence") or self.change == "Shutdown":
            return f"* {self.change} {self.rsc} '{self.reason}'"
        tail = f"  {self.reason}" if self.reason else ""
        return f"* {self.change:<8}   {self.rsc:<{rsc_width}}   ( {self.details:>{detail_width}} ){tail}"


def render_lines(lines: list[SummaryLine]) -> list[str]:
    rsc_width = max([len(line.rsc) for line in lines if not line.change.startswith("Fence")] or [0])
    detail_width = max([len(line.details) for line in lines] or [0])
    return [line.render(rsc_width, detail_width) for line in lines]


def _item(
    change: str,
    rsc: Rsc,
    origin: NodeInfo | None,
    dest: NodeInfo | None,
    action: Action,
    source: Action | None = None,
) -> SummaryLine:
    source = source or action
    need_role = rsc.role > Role.STARTED or rsc.next_role > Role.UNPROMOTED
    same_host = origin is not None and dest is not None and origin is dest
    same_role = rsc.role == rsc.next_role
    if need_role and origin is None:
        assert dest is not None
        details = f"{rsc.role.text} -> {rsc.next_role.text} {dest.name}"
    elif origin is None:
        assert dest is not None
        details = dest.name
    elif need_role and dest is None:
        details = f"{rsc.role.text} {origin.name}"
    elif dest is None:
        details = origin.name
    elif need_role and same_role and same_host:
        details = f"{rsc.role.text} {origin.name}"
    elif same_role and same_host:
        details = origin.name
    elif need_role and same_role:
        details = f"{origin.name} -> {dest.name} {rsc.role.text}"
    elif same_role:
        details = f"{origin.name} -> {dest.name}"
    elif same_host:
        details = f"{rsc.role.text} -> {rsc.next_role.text} {origin.name}"
    else:
        details = f"{rsc.role.text} {origin.name} -> {rsc.next_role.text} {dest.name}"
    if source.reason and not action.runnable:
        reason = f"due to {source.reason} (blocked)"
    elif source.reason:
        reason = f"due to {source.reason}"
    elif not action.runnable:
        reason = "blocked"
    else:
        reason = ""
    return SummaryLine(change, rsc.id, details, reason)


def _first(actions: list[Action]) -> Action | None:
    return actions[0] if actions else None


def _find(rsc: Rsc, task: str, node: NodeInfo | None) -> list[Action]:
    found = [a for a in rsc.actions if a.task == task and (node is None or a.node is node)]
    if task == "stop":  # a clean-up stop where a finished migration left off is not a change to report
        found = [a for a in found if a.node in rsc.running_on]
    return found


def resource_lines(rsc: Rsc) -> list[SummaryLine]:
    """What crm_simulate would print for one primitive."""
    current = rsc.current_node()
    nxt = rsc.assigned
    if not rsc.managed or (current is None and nxt is None):
        return []
    moving = current is not None and nxt is not None and current is not nxt
    start = _first(_find(rsc, "start", nxt)) if nxt is not None else None
    start_node = current if start is not None and start.runnable else None
    stop = _first(_find(rsc, "stop", start_node))
    promote = _first(_find(rsc, "promote", nxt)) if nxt is not None else None
    demote = _first(_find(rsc, "demote", nxt)) if nxt is not None else None
    if nxt is None:
        promote = demote = None
    if rsc.role == rsc.next_role:
        if nxt is None:
            return []
        migrate = _first(_find(rsc, "migrate_from", nxt))
        if migrate is not None and current is not None and migrate.runnable:
            return [_item("Migrate", rsc, current, nxt, start or migrate)]
        if rsc.reload and start is not None:
            return [_item("Reload", rsc, current, nxt, start)]
        if start is None or start.optional:
            if demote is not None and promote is not None and not demote.optional and not promote.optional:
                return [_item("Re-promote", rsc, current, nxt, promote, demote)]
            return []
        if not start.runnable:
            if current is None:
                return []
            act = stop or start
            src = stop if stop is not None and stop.reason else start
            return [_item("Stop", rsc, current, None, act, src)]
        if moving and current is not None:
            return [_item("Recover" if rsc.failed else "Move", rsc, current, nxt, stop or start)]
        if rsc.failed:
            return [_item("Recover", rsc, current, None, stop or start)]
        return [_item("Restart", rsc, current, nxt, start)]
    if stop is not None and (rsc.next_role == Role.STOPPED or (start is not None and not start.runnable)):
        out: list[SummaryLine] = []
        for node in rsc.running_on:
            stop_op = _first(_find(rsc, "stop", node))
            shown = stop_op or start or stop
            why = stop_op if stop_op is not None and stop_op.reason else start
            out.append(_item("Stop", rsc, node, None, shown, why))
        return out
    if stop is not None and rsc.failed and rsc.stop_needed:
        return [_item("Recover", rsc, current, nxt, stop, start)]
    if moving:
        assert stop is not None or start is not None
        return [_item("Move", rsc, current, nxt, stop or start)]  # type: ignore[arg-type]
    if rsc.reload and start is not None:
        return [_item("Reload", rsc, current, nxt, start)]
    if stop is not None and not stop.optional:
        assert start is not None or stop is not None
        return [_item("Restart", rsc, current, nxt, start or stop)]
    if rsc.role == Role.PROMOTED and demote is not None:
        return [_item("Demote", rsc, current, nxt, demote)]
    if rsc.next_role == Role.PROMOTED and promote is not None:
        return [_item("Promote", rsc, current, nxt, promote)]
    if rsc.role == Role.STOPPED and rsc.next_role > Role.STOPPED and start is not None:
        return [_item("Start", rsc, current, nxt, start)]
    return []
