"""``hakeeper agent``: list, describe and run resource agents on this node."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import click
import msgspec

from hakeeper.agents.base import AgentSpecError, AgentUnavailable
from hakeeper.agents.metadata import AgentMetadata, MetadataError, parse_duration_ms
from hakeeper.agents.registry import AgentRegistry
from hakeeper.lrm.messages import AttributeUpdate, OpRequest, OpResult, OpStatus
from hakeeper.lrm.service import LocalResourceManager, LrmConfig


@click.group("agent")
def agent() -> None:
    """List, describe and run resource agents (OCF, LSB, systemd, built-in) on this node."""


@agent.command("list")
@click.argument("selector", required=False, default="")
def list_agents(selector: str) -> None:
    """List installed agents, optionally of one CLASS or CLASS:PROVIDER (e.g. ocf:heartbeat)."""
    try:
        names = AgentRegistry().list_agents(selector)
    except AgentSpecError as exc:
        raise click.UsageError(str(exc)) from None
    for name in names:
        click.echo(name)


@agent.command("describe")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the parsed meta-data as JSON.")
def describe(name: str, as_json: bool) -> None:
    """Show an agent's parameters and advised timeouts (e.g. ocf:heartbeat:IPaddr2)."""
    try:
        metadata = AgentRegistry().metadata(name)
    except (AgentSpecError, AgentUnavailable, MetadataError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(msgspec.json.encode(metadata).decode())
        return
    click.echo(_describe_text(name, metadata))


def _describe_text(name: str, md: AgentMetadata) -> str:
    lines = [f"{name} — {md.shortdesc or md.name}", ""]
    if md.longdesc and md.longdesc != md.shortdesc:
        lines += [md.longdesc, ""]
    lines.append("Parameters:" if md.parameters else "Parameters: none")
    for p in md.parameters:
        flags = [p.type]
        if p.required:
            flags.append("required")
        if p.unique:
            flags.append("unique")
        if p.default is not None:
            flags.append(f"default={p.default!r}")
        if p.deprecated:
            flags.append("deprecated")
        lines.append(f"  {p.name} ({', '.join(flags)}): {p.shortdesc}")
    lines += ["", "Actions:"]
    for a in md.actions:
        extras = [f"timeout={a.timeout_ms / 1000:g}s" if a.timeout_ms else ""]
        extras += [f"interval={a.interval_ms / 1000:g}s" if a.interval_ms else ""]
        extras += [f"depth={a.depth}" if a.depth else "", f"role={a.role}" if a.role else ""]
        lines.append(f"  {a.name} {' '.join(e for e in extras if e)}".rstrip())
    return "\n".join(lines)


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{what} {item!r} must look like NAME=VALUE")
        pairs[key] = value
    return pairs


def _duration(text: str, what: str) -> int:
    ms = parse_duration_ms(text)
    if ms is None:
        raise click.BadParameter(f"{what} {text!r} is not a duration (try 20s, 500ms or 2min)")
    return ms


@agent.command("run")
@click.argument("name")
@click.argument("action")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Instance parameter.")
@click.option("--meta", "-m", "metas", multiple=True, metavar="NAME=VALUE", help="Meta-attribute.")
@click.option("--resource", "-r", "resource_id", default="", help="Resource id (default: the agent type).")
@click.option("--timeout", "timeout", default="20s", show_default=True, help="Operation timeout.")
@click.option("--interval", default="0", show_default=True, help="Interval the agent sees (runs once).")
@click.option("--check-level", type=int, default=None, help="OCF_CHECK_LEVEL for monitor/validate-all.")
@click.option(
    "--node", "node_name", default=socket.gethostname, help="Node name the agent sees (crm_node -n)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run_agent(
    name: str,
    action: str,
    params: tuple[str, ...],
    metas: tuple[str, ...],
    resource_id: str,
    timeout: str,
    interval: str,
    check_level: int | None,
    node_name: str,
    as_json: bool,
) -> None:
    """Run one ACTION of agent NAME with the full cluster environment (like crm_resource --force-*).

    Example: hakeeper agent run ocf:heartbeat:Dummy start --param state=/tmp/d
    The exit status is the agent's OCF exit code (e.g. 7 for "not running").
    """
    request = OpRequest(
        resource_id=resource_id or name.rsplit(":", 1)[-1],
        agent=name,
        operation=action,
        timeout_ms=_duration(timeout, "timeout"),
        params=_pairs(params, "parameter"),
        interval_ms=_duration(interval, "interval") if interval != "0" else 0,
        meta=_pairs(metas, "meta-attribute"),
        check_level=check_level,
    )
    result, updates = asyncio.run(_run_once(request, node_name))
    if as_json:
        payload = {"result": msgspec.to_builtins(result), "attributes": msgspec.to_builtins(updates)}
        click.echo(json.dumps(payload, indent=2))
    else:
        _print_result(result, updates)
    sys.exit(result.rc if result.op_status == OpStatus.DONE else max(result.rc, 1))


async def _run_once(request: OpRequest, node_name: str) -> tuple[OpResult, list[AttributeUpdate]]:
    # A recurring request returns its first result; leaving the context cancels the repetition.
    async with LocalResourceManager(LrmConfig(node_name=node_name)) as lrm:
        result = await lrm.run(request)
        updates = []
        while not lrm.events.empty():
            event = lrm.events.get_nowait()
            if isinstance(event, AttributeUpdate):
                updates.append(event)
        return result, updates


def _print_result(result: OpResult, updates: list[AttributeUpdate]) -> None:
    status = OpStatus(result.op_status).name.lower().replace("_", " ")
    click.echo(
        f"{result.operation} of {result.resource_id} ({result.agent}): rc={result.rc} "
        f"({status}, {result.severity.value}) in {result.exec_time_ms} ms"
    )
    if result.exit_reason:
        click.echo(f"reason: {result.exit_reason}")
    for update in updates:
        value = "deleted" if update.value is None else repr(update.value)
        click.echo(f"attribute {update.name} on {update.node}: {value} ({update.lifetime})")
    if result.output.strip():
        click.echo("output:")
        click.echo(result.output.rstrip())
