"""``hakeeper resource ...``: create, change and move resources on the running cluster (pcs-like syntax).

``hakeeper resource create web ocf:heartbeat:apache configfile=/etc/apache2/apache2.conf
op monitor interval=10s --group websvc`` — settings are ``name=value`` words; ``op NAME name=value...``
starts an operation and ``meta name=value...`` switches to meta attributes. Every write prints the CIB
version it committed.
"""

from __future__ import annotations

from collections.abc import Sequence

import click
import msgspec

from hakeeper.api import schemas as s
from hakeeper.cib.operator import OperationSpec, ResourceSpec
from hakeeper.cib.values import parse_duration_ms
from hakeeper.cli.connect import Target, api_options, connected, describe_write
from hakeeper.cli.status_cmd import as_text, resource_lines

OP_KEYS = ("interval", "timeout")


class Settings(msgspec.Struct, kw_only=True):
    """What follows the agent on a ``create``/``update`` line."""

    params: dict[str, str] = {}
    meta: dict[str, str] = {}
    operations: list[OperationSpec] = []


def _pair(word: str, where: str) -> tuple[str, str]:
    name, sep, value = word.partition("=")
    if not sep or not name:
        raise click.UsageError(f"{word!r} in {where} is not name=value")
    return name, value


def _duration(value: str, what: str) -> int:
    try:
        return parse_duration_ms(value)
    except ValueError as err:
        raise click.UsageError(f"{what}: {err}") from err


def _operation(name: str, pairs: list[tuple[str, str]]) -> OperationSpec:
    values = dict(pairs)
    unknown = sorted(set(values) - set(OP_KEYS))
    if unknown:
        raise click.UsageError(
            f"op {name}: {', '.join(unknown)} not understood (give interval= and/or timeout=)"
        )
    interval = _duration(values["interval"], f"op {name} interval") if "interval" in values else 0
    timeout = _duration(values["timeout"], f"op {name} timeout") if "timeout" in values else None
    return OperationSpec(name=name, interval_ms=interval, timeout_ms=timeout)


def parse_settings(words: Sequence[str]) -> Settings:
    """``a=1 b=2 op monitor interval=10s meta target-role=Stopped`` into params, operations and meta."""
    out = Settings()
    section = "params"
    op_name: str | None = None
    op_pairs: list[tuple[str, str]] = []
    it = iter(words)
    for word in it:
        if word.startswith("-") and "=" not in word:
            raise click.UsageError(f"no such option: {word}")
        if word in ("op", "meta"):
            if op_name is not None:
                out.operations.append(_operation(op_name, op_pairs))
                op_name, op_pairs = None, []
            section = word
            if word == "op":
                op_name = next(it, None)
                if op_name is None or "=" in op_name:
                    raise click.UsageError(
                        "'op' must be followed by the operation's name: op monitor interval=10s"
                    )
            continue
        if section == "op":
            op_pairs.append(_pair(word, f"op {op_name}"))
        else:
            name, value = _pair(word, "meta attributes" if section == "meta" else "parameters")
            (out.meta if section == "meta" else out.params)[name] = value
    if op_name is not None:
        out.operations.append(_operation(op_name, op_pairs))
    return out


def show_resource(rsc: s.ResourceView) -> None:
    click.echo(f"{rsc.id} ({rsc.agent or rsc.kind})")
    where = f" on {', '.join(rsc.nodes)}" if rsc.nodes else ""
    click.echo(f"  role: {rsc.role}{where}" + (" (FAILED)" if rsc.failed else ""))
    if rsc.parent:
        click.echo(f"  in: {rsc.parent}")
    if rsc.members:
        click.echo(f"  members: {', '.join(rsc.members)}")
    for title, values in (("parameters", rsc.params), ("meta", rsc.meta)):
        if values:
            click.echo(f"  {title}: " + " ".join(f"{k}={v}" for k, v in sorted(values.items())))
    for fc in rsc.fail_counts:
        click.echo(f"  failures on {fc.node}: {fc.count} (threshold {fc.migration_threshold})")


@click.group("resource")
def resource() -> None:
    """Create, change, move and inspect resources of the running cluster."""


@resource.command("create", context_settings={"ignore_unknown_options": True})
@click.argument("rsc_id", metavar="ID")
@click.argument("agent")
@click.argument("settings", nargs=-1, type=click.UNPROCESSED)
@click.option("--group", help="Add it to this group (created when missing).")
@click.option("--clone", is_flag=True, help="Run it on every node (a clone).")
@click.option("--promotable", is_flag=True, help="A promotable clone (one promoted instance by default).")
@click.option(
    "--clone-meta",
    "clone_meta",
    multiple=True,
    metavar="NAME=VALUE",
    help="A meta attribute of the clone (clone-max=2, promoted-max=1); repeatable.",
)
@api_options
def create(
    target: Target,
    rsc_id: str,
    agent: str,
    settings: tuple[str, ...],
    group: str | None,
    clone: bool,
    promotable: bool,
    clone_meta: tuple[str, ...],
) -> None:
    """Create resource ID with AGENT (ocf:heartbeat:IPaddr2, systemd:nginx) and name=value settings,
    'op NAME interval=.. timeout=..' operations and 'meta name=value' attributes."""
    parsed = parse_settings(settings)
    wrapper_meta = dict(_pair(word, "--clone-meta") for word in clone_meta)
    if wrapper_meta and not (clone or promotable):
        raise click.UsageError("--clone-meta goes with --clone or --promotable")
    spec = ResourceSpec(
        id=rsc_id,
        agent=agent,
        params=parsed.params,
        meta=parsed.meta,
        operations=parsed.operations,
        group=group,
        clone=clone or promotable,
        promotable=promotable,
        clone_meta=wrapper_meta,
    )
    with connected(target) as client:
        click.echo(describe_write(client.create_resource(spec)))
        show_resource(client.resource(rsc_id))


@resource.command("update", context_settings={"ignore_unknown_options": True})
@click.argument("rsc_id", metavar="ID")
@click.argument("settings", nargs=-1, required=True, type=click.UNPROCESSED)
@api_options
def update(target: Target, rsc_id: str, settings: tuple[str, ...]) -> None:
    """Set parameters (name=value) and, after 'meta', meta attributes; 'name=' with no value removes it."""
    parsed = parse_settings(settings)
    if parsed.operations:
        raise click.UsageError("operations cannot be changed with update yet; use 'hakeeper config apply'")
    body = s.ResourceUpdate(
        params={k: v or None for k, v in parsed.params.items()},
        meta={k: v or None for k, v in parsed.meta.items()},
    )
    with connected(target) as client:
        click.echo(describe_write(client.update_resource(rsc_id, body)))
        show_resource(client.resource(rsc_id))


@resource.command("delete")
@click.argument("rsc_id", metavar="ID")
@api_options
def delete(target: Target, rsc_id: str) -> None:
    """Delete a resource and the constraints that name it (it is stopped first by the cluster)."""
    with connected(target) as client:
        click.echo(describe_write(client.delete_resource(rsc_id)))


@resource.command("show")
@click.argument("rsc_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the API's view as JSON.")
@api_options
def show(target: Target, rsc_id: str, as_json: bool) -> None:
    """Show one resource: agent, role and nodes, settings, failures."""
    with connected(target) as client:
        view = client.resource(rsc_id)
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(view)).decode())
    else:
        show_resource(view)


@resource.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the API's view as JSON.")
@api_options
def list_(target: Target, as_json: bool) -> None:
    """List every resource with its role and node (groups and clones nested)."""
    with connected(target) as client:
        resources = client.resources()
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(resources)).decode())
    else:
        click.echo(as_text(resource_lines(resources)).plain)


def _lifetime(value: str | None) -> int | None:
    if value is None:
        return None
    return max(1, _duration(value, "--lifetime") // 1000)


@resource.command("move")
@click.argument("rsc_id", metavar="ID")
@click.argument("node")
@click.option("--lifetime", help="Let the move constraint expire after this long (30min, 1h).")
@api_options
def move(target: Target, rsc_id: str, node: str, lifetime: str | None) -> None:
    """Move a resource to NODE (adds a cli-prefer constraint; 'resource clear' removes it)."""
    with connected(target) as client:
        click.echo(describe_write(client.move(rsc_id, node, _lifetime(lifetime))))


@resource.command("ban")
@click.argument("rsc_id", metavar="ID")
@click.argument("node")
@api_options
def ban(target: Target, rsc_id: str, node: str) -> None:
    """Keep a resource off NODE (adds a cli-ban constraint; 'resource clear' removes it)."""
    with connected(target) as client:
        click.echo(describe_write(client.ban(rsc_id, node)))


@resource.command("clear")
@click.argument("rsc_id", metavar="ID")
@click.argument("node", required=False)
@api_options
def clear(target: Target, rsc_id: str, node: str | None) -> None:
    """Remove the move/ban constraints of a resource (on NODE only, if given)."""
    with connected(target) as client:
        click.echo(describe_write(client.clear(rsc_id, node)))


@resource.command("cleanup")
@click.argument("rsc_id", metavar="ID")
@click.option("--node", help="Only on this node.")
@api_options
def cleanup(target: Target, rsc_id: str, node: str | None) -> None:
    """Forget a resource's failures and history so the cluster probes it again."""
    with connected(target) as client:
        click.echo(describe_write(client.cleanup(rsc_id, node)))


@resource.command("enable")
@click.argument("rsc_id", metavar="ID")
@api_options
def enable(target: Target, rsc_id: str) -> None:
    """Allow a resource to run (target-role=Started)."""
    with connected(target) as client:
        click.echo(describe_write(client.enable(rsc_id)))


@resource.command("disable")
@click.argument("rsc_id", metavar="ID")
@api_options
def disable(target: Target, rsc_id: str) -> None:
    """Stop a resource and keep it stopped (target-role=Stopped)."""
    with connected(target) as client:
        click.echo(describe_write(client.disable(rsc_id)))


@resource.command("restart")
@click.argument("rsc_id", metavar="ID")
@click.option("--timeout", default="60s", show_default=True, help="How long to wait for it to stop.")
@api_options
def restart(target: Target, rsc_id: str, timeout: str) -> None:
    """Stop a resource, wait until it is stopped everywhere, start it again."""
    seconds = _duration(timeout, "--timeout") / 1000
    with connected(target) as client:
        click.echo(describe_write(client.restart(rsc_id, seconds)))


@resource.command("explain")
@click.argument("rsc_id", metavar="ID")
@api_options
def explain(target: Target, rsc_id: str) -> None:
    """Why a resource is where it is: what the cluster plans for it, the rules and scores in play."""
    with connected(target) as client:
        result = client.explain(rsc_id)
    show_resource(result.resource)
    for title, lines in (
        ("Reasons", result.reasons),
        ("Planned", result.planned),
        ("Constraints", [f"{c.id} ({type(c).__name__.lower()})" for c in result.constraints]),
        ("Scores", result.scores),
    ):
        if lines:
            click.echo(f"{title}:")
            for line in lines:
                click.echo(f"  {line}")
