"""``hakeeper status``: the crm_mon view of the running cluster, once or live (``--watch``).

The view is built as styled lines by pure functions of the API's answers (``status_lines``), then either
printed once (colours on a terminal, plain text otherwise), refreshed in place with rich's ``Live``, or
dumped as JSON for scripts.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import click
import httpx
import msgspec
from rich.console import Console
from rich.live import Live
from rich.text import Text

from hakeeper.agents.results import OcfRc, OpStatus
from hakeeper.api import schemas as s
from hakeeper.api.client import ApiClient, ApiRequestError
from hakeeper.api.handle import Event
from hakeeper.cib import model as m
from hakeeper.cli.connect import Target, api_options, connected, explain_failure

RECENT_EVENTS = 10
RECONNECT_S = 3.0


class Line(NamedTuple):
    text: str
    style: str = ""


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the status view shows, as read from the API at one moment (also the ``--json`` output)."""

    cluster: s.ClusterView
    resources: s.ResourceList
    events: list[Event]
    fencing: list[m.FenceEvent] = []


def read_snapshot(client: ApiClient, events: int = RECENT_EVENTS) -> Snapshot:
    recent = client.events(limit=events).events if events > 0 else []
    fencing = msgspec.json.decode(client.request("GET", "/v1/fencing"), type=s.FencingList).history
    return Snapshot(cluster=client.cluster(), resources=client.resources(), events=recent, fencing=fencing)


# --- rendering (pure) ------------------------------------------------------------------------------------


def _node_state(node: s.NodeView) -> tuple[str, str]:
    if node.unclean:
        return "UNCLEAN", "bold red"
    if not node.online:
        return "OFFLINE", "red"
    if node.maintenance:
        return "maintenance", "yellow"
    if node.standby:
        return "standby", "yellow"
    return "online", "green"


def node_lines(cluster: s.ClusterView) -> list[Line]:
    out = [Line(f"Node List ({len(cluster.nodes)} configured):", "bold")]
    for node in cluster.nodes:
        state, style = _node_state(node)
        extras = [" (DC)" if node.is_dc else ""]
        if node.fenced_at is not None:
            extras.append(f" fenced at {_clock(node.fenced_at)}")
        out.append(Line(f"  * {node.name}: {state}{''.join(extras)}", style))
    return out


def _role_text(rsc: s.ResourceView) -> str:
    if rsc.kind == "primitive" or rsc.kind == "group":
        if not rsc.nodes:
            return "Stopped" + (" (disabled)" if rsc.target_role == "Stopped" else "")
        return f"{rsc.role} on {', '.join(rsc.nodes)}"
    parts = []
    if rsc.promoted_on:
        parts.append(f"Promoted: [ {' '.join(rsc.promoted_on)} ]")
    others = [n for n in rsc.nodes if n not in rsc.promoted_on]
    if others:
        label = "Unpromoted" if rsc.promoted_on or rsc.role == "Unpromoted" else "Started"
        parts.append(f"{label}: [ {' '.join(others)} ]")
    return "  ".join(parts) or "Stopped"


def _resource_style(rsc: s.ResourceView) -> str:
    if rsc.failed:
        return "bold red"
    if not rsc.nodes:
        return "yellow" if rsc.target_role == "Stopped" else "red"
    return "green"


def _resource_line(rsc: s.ResourceView, depth: int) -> Line:
    pad = "  " * (depth + 1)
    kind = f" ({rsc.agent})" if rsc.agent else f" [{rsc.kind}]"
    flags = ("" if rsc.managed else " (unmanaged)") + (" FAILED" if rsc.failed else "")
    return Line(f"{pad}* {rsc.id}{kind}: {_role_text(rsc)}{flags}", _resource_style(rsc))


def resource_lines(resources: s.ResourceList) -> list[Line]:
    by_id = {r.id: r for r in resources.resources}
    out = [Line(f"Full List of Resources ({len(resources.resources)}):", "bold")]

    def walk(rsc: s.ResourceView, depth: int) -> None:
        out.append(_resource_line(rsc, depth))
        for member in rsc.members:
            if member in by_id:
                walk(by_id[member], depth + 1)

    for rsc in resources.resources:
        if rsc.parent is None or rsc.parent not in by_id:
            walk(rsc, 0)
    if len(out) == 1:
        out.append(Line("  No resources"))
    return out


def failed_action_lines(resources: s.ResourceList) -> list[Line]:
    if not resources.failed_actions:
        return []
    out = [Line("Failed Resource Actions:", "bold")]
    for fa in resources.failed_actions:
        interval = f" (every {fa.interval_ms // 1000}s)" if fa.interval_ms else ""
        reason = f" '{fa.exit_reason}'" if fa.exit_reason else ""
        when = f" at {_clock(fa.last_rc_change)}" if fa.last_rc_change else ""
        result = _result_text(fa.rc, fa.op_status)
        out.append(Line(f"  * {fa.rsc} {fa.operation}{interval} on {fa.node}: {result}{reason}{when}", "red"))
    return out


def _result_text(rc: int, op_status: int) -> str:
    """``rc=7 (not running)``, or the executor's status when the agent did not answer (timed out, ...)."""
    if op_status not in (OpStatus.DONE, OpStatus.PENDING):
        try:
            return OpStatus(op_status).name.lower().replace("_", " ")
        except ValueError:
            return f"operation status {op_status}"
    try:
        return f"rc={rc} ({OcfRc(rc).name.lower().replace('_', ' ')})"
    except ValueError:
        return f"rc={rc}"


def _expiry(fc: s.FailCountView) -> str:
    if fc.expires_in_s is None:
        return "never expires"
    if fc.expires_in_s <= 0:
        return "expired, cleared at the next check"
    return f"expires in {_span(fc.expires_in_s)}"


def fail_count_lines(resources: s.ResourceList) -> list[Line]:
    rows = [(r, fc) for r in resources.resources for fc in r.fail_counts if fc.count > 0]
    if not rows:
        return []
    out = [Line("Fail Counts:", "bold")]
    for rsc, fc in rows:
        limit = f"/{fc.migration_threshold}" if fc.migration_threshold < 1_000_000 else ""
        out.append(Line(f"  * {rsc.id} on {fc.node}: {fc.count}{limit} failures, {_expiry(fc)}", "yellow"))
    return out


def event_lines(events: list[Event]) -> list[Line]:
    if not events:
        return []
    out = [Line("Recent Events:", "bold")]
    out += [Line(f"  {_clock(e.timestamp)} {e.kind}: {event_text(e)}", "dim") for e in events]
    return out


def event_text(e: Event) -> str:
    """What happened, with whom: the event's own words plus the resource, operation and node they omit."""
    subject: list[str] = []
    if e.rsc and e.rsc not in e.desc:
        subject.append(e.rsc)
    if e.task and e.task not in e.desc:
        subject.append(
            e.task if e.interval_ms is None or not e.interval_ms else f"{e.task} ({e.interval_ms // 1000}s)"
        )
    if e.attribute_name and e.attribute_name not in e.desc:
        subject.append(f"{e.attribute_name}={e.attribute_value or ''}")
    if e.node and e.node not in e.desc:
        subject.append(f"on {e.node}" if subject else e.node)
    return f"{' '.join(subject)}: {e.desc}" if subject else e.desc


def header_lines(cluster: s.ClusterView) -> list[Line]:
    quorum = "partition with quorum" if cluster.quorate else "partition WITHOUT quorum"
    dc = f"{cluster.dc} ({quorum})" if cluster.dc else f"NONE ({quorum})"
    out = [
        Line(
            f"Cluster: {cluster.cluster_name} (CIB version {cluster.version}, asked {cluster.local_node})",
            "bold",
        ),
        Line(f"  * Current DC: {dc}", "" if cluster.quorate and cluster.dc else "bold red"),
        Line(
            f"  * {_count(len(cluster.nodes), 'node')} configured, "
            f"{_count(cluster.resources_configured, 'resource')} configured, "
            f"{cluster.resources_active} active"
        ),
    ]
    if cluster.maintenance_mode:
        out.append(
            Line("  * MAINTENANCE MODE: the cluster starts, stops and monitors nothing", "bold yellow")
        )
    down = [f"{ln.node} link {ln.link}" for ln in cluster.links if not ln.up]
    if down:
        out.append(Line(f"  * Links down: {', '.join(down)}", "yellow"))
    return out


def _unsettled_fencing(history: list[m.FenceEvent]) -> list[m.FenceEvent]:
    """Per target, what happened since its last successful fencing: failures and requests still running."""
    since_done: dict[str, list[m.FenceEvent]] = {}
    for event in history:
        if event.state == "done":
            since_done[event.target] = []
        else:
            since_done.setdefault(event.target, []).append(event)
    return [e for target in sorted(since_done) for e in since_done[target]]


def fencing_lines(history: list[m.FenceEvent]) -> list[Line]:
    """crm_mon's "Failed Fencing Actions" and "Pending Fencing Actions": failures not yet followed by a
    successful fencing of the same node, and requests in progress."""
    unsettled = _unsettled_fencing(history)
    failed = [e for e in unsettled if e.state == "failed"]
    pending = [e for e in unsettled if e.state == "pending"]
    out: list[Line] = []
    if failed:
        out.append(Line("Failed Fencing Actions:", "bold"))
        for e in failed:
            who = f" by {e.delegate}" if e.delegate else ""
            device = f" with {e.device}" if e.device else ""
            when = f" at {_clock(float(e.completed))}" if e.completed else ""
            why = f": {e.reason}" if e.reason else ""
            out.append(Line(f"  * {e.action} of {e.target} failed{who}{device}{when}{why}", "red"))
    if pending:
        if out:
            out.append(Line(""))
        out.append(Line("Pending Fencing Actions:", "bold"))
        for e in pending:
            asked = f" (asked by {e.origin})" if e.origin else ""
            when = f" since {_clock(float(e.requested))}" if e.requested else ""
            out.append(Line(f"  * {e.action} of {e.target} pending{asked}{when}", "yellow"))
    return out


def status_lines(snap: Snapshot) -> list[Line]:
    sections = [
        header_lines(snap.cluster),
        node_lines(snap.cluster),
        resource_lines(snap.resources),
        failed_action_lines(snap.resources),
        fencing_lines(snap.fencing),
        fail_count_lines(snap.resources),
        event_lines(snap.events),
    ]
    out: list[Line] = []
    for section in sections:
        if section:
            if out:
                out.append(Line(""))
            out += section
    return out


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _span(seconds: float) -> str:
    total = int(seconds + 0.999)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def as_text(lines: list[Line]) -> Text:
    text = Text()
    for i, line in enumerate(lines):
        if i:
            text.append("\n")
        text.append(line.text, style=line.style or None)
    return text


# --- the command -----------------------------------------------------------------------------------------


def _event_wakeups(target: Target, since: int, changed: threading.Event, stop: threading.Event) -> None:
    """Set ``changed`` whenever the event stream delivers something, until ``stop`` (seen at the next event).

    When the stream breaks (the daemon restarted, say) it reconnects every few seconds; meanwhile the view
    still refreshes every interval. Event ids restart with the daemon, so a reconnection starts from the
    newest id the daemon has then, and brings one refresh.
    """
    first = True
    while not stop.is_set():
        try:
            with connected(target) as client:
                if not first:
                    since = client.events(limit=1).last_id
                    changed.set()
                for _ in client.stream_events(since=since):
                    if stop.is_set():
                        return
                    changed.set()
        except (click.ClickException, httpx.HTTPError, OSError, ValueError):
            pass
        first = False
        stop.wait(RECONNECT_S)


def watch_loop(
    target: Target, interval: float, events: int, show: Callable[[Text], None], rounds: int | None = None
) -> None:
    """Show the view, then again on every cluster event or after ``interval`` s; ``rounds`` views (None:
    until interrupted). A failing read is shown in place of the view and retried."""
    changed, stop = threading.Event(), threading.Event()
    with connected(target) as client:
        since = client.events(limit=1).last_id
        listener = threading.Thread(target=_event_wakeups, args=(target, since, changed, stop), daemon=True)
        listener.start()
        try:
            _refresh(client, target, interval, events, show, rounds, changed)
        finally:
            stop.set()


def _refresh(
    client: ApiClient,
    target: Target,
    interval: float,
    events: int,
    show: Callable[[Text], None],
    rounds: int | None,
    changed: threading.Event,
) -> None:
    shown = 0
    while rounds is None or shown < rounds:
        changed.clear()  # before reading: an event during the read brings another refresh
        try:
            view = as_text(status_lines(read_snapshot(client, events)))
        except ApiRequestError as err:
            view = Text(f"{explain_failure(err, target)}\n(retrying every {interval:g} s)", "bold red")
        show(view)
        shown += 1
        if rounds is None or shown < rounds:
            changed.wait(interval)


def _watch(target: Target, interval: float, events: int) -> None:
    with Live(console=Console(), auto_refresh=False, screen=False) as live:
        watch_loop(target, interval, events, lambda view: live.update(view, refresh=True))


def _lines_out(lines: list[Line]) -> Iterator[str]:
    yield from (line.text for line in lines)


@click.command("status")
@click.option("--watch", "-w", is_flag=True, help="Keep the view on screen, updated as the cluster changes.")
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds between refreshes in --watch.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the cluster, resources and events as JSON.")
@click.option(
    "--events",
    default=RECENT_EVENTS,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="How many recent events to show.",
)
@api_options
def status(target: Target, watch: bool, interval: float, as_json: bool, events: int) -> None:
    """Show the cluster: DC and quorum, nodes, resources with role and node, failures and recent events."""
    if watch and as_json:
        raise click.UsageError("--watch and --json do not go together; use --json alone for scripts")
    if watch:
        try:
            _watch(target, interval, events)
        except KeyboardInterrupt:
            return
        return
    with connected(target) as client:
        snap = read_snapshot(client, events)
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(snap)).decode())
        return
    lines = status_lines(snap)
    if sys.stdout.isatty():
        Console().print(as_text(lines))
    else:
        for text in _lines_out(lines):
            click.echo(text)
