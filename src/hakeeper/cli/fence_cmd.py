"""``hakeeper fence``: fencing commands.

- ``fence NODE [--off|--reboot]`` (or ``fence node NODE``): the DC fences NODE; prints the result.
- ``fence history [NODE]``: the cluster's fencing history.
- ``fence confirm NODE``: an operator powered NODE off by hand; recorded as fenced (manual) after a warning.
- ``fence check FILE``: offline proof that every node of a configuration can be fenced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import click
import msgspec

from hakeeper.api.routes_write import FenceConfirm, FenceRequest, FenceResult
from hakeeper.api.schemas import FencingList
from hakeeper.cib.model import Configuration, FenceEvent
from hakeeper.cib.xml_io import CibXmlError, parse_cib_xml
from hakeeper.cli.connect import Target, api_options, connected
from hakeeper.fencing.check import check_fencing, fenceable_nodes, format_report, gather_live_facts
from hakeeper.fencing.devices import DeviceError, devices_from_config


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise click.ClickException(f"cannot read {path}: {err.strerror or err}") from err


def load_configuration(path: Path) -> Configuration:
    """A configuration from Pacemaker CIB XML or a declarative TOML file (chosen by content)."""
    data = _read(path)
    if data.lstrip()[:1] == b"<":
        try:
            return parse_cib_xml(data).cib.configuration
        except CibXmlError as err:
            raise click.ClickException(f"{path} is not a usable CIB: {err}") from err
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise click.ClickException(f"{path} is neither CIB XML nor UTF-8 TOML") from err
    from hakeeper.cib.declarative import ConfigError, load_config

    try:
        return load_config(text)
    except ConfigError as err:
        raise click.ClickException(f"{path} is not a valid configuration:\n{err}") from err


class _FenceGroup(click.Group):
    """``hakeeper fence NODE`` means ``hakeeper fence node NODE``: a first word that is no subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["node", *args]
        return super().parse_args(ctx, args)


@click.group("fence", cls=_FenceGroup)
def fence() -> None:
    """Fencing (STONITH): fence a node, read the history, confirm a manual power-off, check a configuration.

    'hakeeper fence NODE' fences NODE (the same as 'hakeeper fence node NODE').
    """


def _when(epoch: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def describe_event(e: FenceEvent) -> str:
    """One history record as a sentence."""
    result = {"done": "fenced", "failed": "FAILED", "pending": "requested"}[e.state]
    by = f" by {e.delegate}" if e.delegate else ""
    device = f" with {e.device}" if e.device else ""
    asked = f", asked by {e.origin}" if e.origin else ""
    why = f": {e.reason}" if e.reason else ""
    return f"{_when(e.completed or e.requested)}  {e.target} {e.action} {result}{by}{device}{asked}{why}"


@fence.command("node")
@click.argument("name", metavar="NODE")
@click.option("--off", "action", flag_value="off", help="Power NODE off (it stays off).")
@click.option("--reboot", "action", flag_value="reboot", default=True, help="Power-cycle NODE (default).")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True, max=3600),
    default=180.0,
    show_default=True,
    help="Seconds to wait for the result.",
)
@api_options
def fence_node(target: Target, name: str, action: str, timeout_s: float) -> None:
    """Fence NODE now through the DC (reboot unless --off) and print the result."""
    click.echo(f"Fencing {name} ({action}); waiting up to {timeout_s:g} s for the result...")
    body = FenceRequest(action="off" if action == "off" else "reboot", timeout_s=timeout_s)
    with connected(target) as client:
        raw = client.request("POST", f"/v1/nodes/{name}/fence", body)
    result = msgspec.json.decode(raw, type=FenceResult)
    click.echo(describe_event(result.event))
    if not result.ok:
        raise click.ClickException(
            f"{name} was NOT fenced: {result.event.reason or 'no reason given'}. Its resources stay where "
            f"they are until fencing succeeds; fix the device (hakeeper fence check), or power {name} off "
            f"yourself and run 'hakeeper fence confirm {name}'"
        )


@fence.command("history")
@click.argument("name", metavar="[NODE]", required=False)
@api_options
def history(target: Target, name: str | None) -> None:
    """The fencing history (of NODE only, if given), oldest first."""
    with connected(target) as client:
        listed = msgspec.json.decode(client.request("GET", "/v1/fencing"), type=FencingList)
    events: Sequence[FenceEvent] = [e for e in listed.history if name is None or e.target == name]
    if not events:
        click.echo(f"No fencing recorded{f' for {name}' if name else ''}.")
    for e in events:
        click.echo(describe_event(e))


CONFIRM_WARNING = """\
WARNING: you are about to tell the cluster that {node} is DOWN, without the cluster fencing it.
The cluster will believe you and start {node}'s resources on other nodes. If {node} is in fact still
running, its services will run twice at once and shared data (disks, databases, addresses) can be
corrupted. Confirm only after you have made sure yourself that {node} is powered off (or its power cut)."""


@fence.command("confirm")
@click.argument("name", metavar="NODE")
@click.option("--yes", is_flag=True, help="Do not ask: I have made sure NODE is powered off.")
@click.option(
    "--force",
    is_flag=True,
    help="Even though the cluster sees NODE online (only when you have checked it is off).",
)
@api_options
def confirm(target: Target, name: str, yes: bool, force: bool) -> None:
    """Record that NODE was powered off by hand, so the cluster recovers its resources elsewhere."""
    click.echo(CONFIRM_WARNING.format(node=name), err=True)
    if not yes:
        try:
            click.confirm(f"Is {name} powered off?", default=False, abort=True, err=True)
        except click.Abort:
            raise click.ClickException(
                f"not confirmed: nothing was recorded about {name} (give --yes once you are sure it is off)"
            ) from None
    with connected(target) as client:
        raw = client.request("POST", f"/v1/nodes/{name}/fence/confirm", FenceConfirm(force=force))
    result = msgspec.json.decode(raw, type=FenceResult)
    click.echo(describe_event(result.event))
    if not result.ok:
        raise click.ClickException(f"the confirmation for {name} was not recorded: {result.event.reason}")


@fence.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--live", is_flag=True, help="Also ask the fence agents (metadata, monitor, list, status).")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=20.0,
    show_default=True,
    help="With --live: seconds each agent action may take.",
)
def check(file: Path, live: bool, timeout_s: float) -> None:
    """Prove that every node in FILE (CIB XML or TOML) can be fenced, or say what is missing."""
    config = load_configuration(file)
    facts = None
    if live:
        try:
            devices = devices_from_config(config).devices
        except DeviceError as err:
            raise click.ClickException(str(err)) from err
        nodes = [n.uname for n in fenceable_nodes(config)]
        facts = asyncio.run(gather_live_facts(devices, nodes, timeout_s=timeout_s))
    report = check_fencing(config, facts)
    for line in format_report(report):
        click.echo(line)
    if not report.ok:
        raise SystemExit(1)
