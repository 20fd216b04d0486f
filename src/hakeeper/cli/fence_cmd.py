"""``hakeeper fence``: fencing commands. ``check`` works offline today.

``fence NODE``, ``fence history`` and ``fence confirm NODE`` talk to the running cluster (the DC's fencer)
and arrive with the node daemon.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from hakeeper.cib.model import Configuration
from hakeeper.cib.xml_io import CibXmlError, parse_cib_xml
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


@click.group("fence")
def fence() -> None:
    """Fencing (STONITH): check that every node can be fenced."""


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
