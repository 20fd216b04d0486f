"""``hakeeper simulate FILE``: run the policy engine on a saved CIB and print what it would do."""

from __future__ import annotations

import datetime
from pathlib import Path

import click

from hakeeper.cib.xml_io import CibXmlError, parse_cib_xml
from hakeeper.policy.schedule import schedule


def _load(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise click.ClickException(f"cannot read {path}: {err.strerror or err}") from err


@click.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--show-scores", "-s", is_flag=True, help="Also print every resource's allocation scores.")
@click.option(
    "--at",
    "at",
    type=int,
    default=None,
    help="Evaluate rules and failure timeouts at this time (epoch seconds).",
)
def simulate(file: Path, show_scores: bool, at: int | None) -> None:
    """Show the transition the policy engine computes for the cluster state in FILE (Pacemaker CIB XML)."""
    data = _load(file)
    try:
        imported = parse_cib_xml(data)
    except CibXmlError as err:
        raise click.ClickException(f"{file} is not a usable CIB: {err}") from err
    cib = imported.cib
    if at is not None:
        now = at
    elif cib.execution_date is not None:
        now = cib.execution_date
        stamp = datetime.datetime.fromtimestamp(now, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        click.echo(f"Using the original execution date of: {stamp}")
    else:
        now = int(datetime.datetime.now(tz=datetime.UTC).timestamp())
    transition = schedule(cib, now)
    click.echo("Current cluster status:")
    nodes = ", ".join(n.uname for n in cib.configuration.nodes) or "(none)"
    click.echo(f"  * Nodes: {nodes}")
    click.echo("")
    if show_scores:
        click.echo("Allocation scores:")
        for line in transition.scores:
            click.echo(f"  {line}")
        click.echo("")
    click.echo("Transition Summary:")
    for line in transition.summary:
        click.echo(f"  {line}")
