"""``hakeeper simulate FILE``: run the policy engine on a saved CIB and print what it would do.

As crm_simulate: what-if changes (nodes up/down/failed, operation results, tickets, a time) are applied to
the CIB before scheduling (``simulate_inject``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from hakeeper.cib import model as m
from hakeeper.cib.declarative import ConfigError, load_config
from hakeeper.cib.xml_io import CibXmlError, parse_cib_xml
from hakeeper.cli.simulate_inject import InjectionError, Injections, OpSpec, apply_injections, parse_op_spec
from hakeeper.cli.simulate_inject import parse_time as parse_at
from hakeeper.cli.simulate_run import RunError, run_transition, status_lines
from hakeeper.policy.explain import ExplainError, explain
from hakeeper.policy.schedule import Transition, schedule

T = TypeVar("T")


def _load(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise click.ClickException(f"cannot read {path}: {err.strerror or err}") from err


def _looks_like_xml(path: Path, data: bytes) -> bool:
    if path.suffix.lower() == ".toml":
        return False
    return path.suffix.lower() in (".xml", ".cib") or data.lstrip()[:1] == b"<"


def load_cib(file: Path) -> m.Cib:
    """A Pacemaker CIB (XML, with its status) or our TOML configuration (no status: nothing has run)."""
    data = _load(file)
    if _looks_like_xml(file, data):
        try:
            return parse_cib_xml(data).cib
        except CibXmlError as err:
            raise click.ClickException(f"{file} is not a usable CIB: {err}") from err
    try:
        return m.Cib(configuration=load_config(data.decode("utf-8")))
    except UnicodeDecodeError as err:
        raise click.ClickException(f"{file} is neither CIB XML nor UTF-8 TOML") from err
    except ConfigError as err:
        problems = "; ".join(f"{p.path}: {p.message}" for p in err.problems if p.severity == "error")
        raise click.ClickException(f"{file} is not a usable configuration: {problems or err}") from err


def _checked(parse: Callable[[str], T], values: tuple[str, ...], option: str) -> tuple[T, ...]:
    try:
        return tuple(parse(v) for v in values)
    except InjectionError as err:
        raise click.BadParameter(str(err), param_hint=option) from err


def _now(cib: m.Cib, at: str | None) -> int:
    if at is not None:
        try:
            return parse_at(at)
        except InjectionError as err:
            raise click.BadParameter(str(err), param_hint="--at") from err
    if cib.execution_date is not None:
        now = cib.execution_date
        stamp = datetime.datetime.fromtimestamp(now, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        click.echo(f"Using the original execution date of: {stamp}")
        return now
    return int(datetime.datetime.now(tz=datetime.UTC).timestamp())


def _injected(cib: m.Cib, injections: Injections, now: int) -> m.Cib:
    try:
        return apply_injections(cib, injections, now)
    except InjectionError as err:
        raise click.ClickException(f"cannot simulate that: {err}") from err


def _print_injections(injections: Injections) -> None:
    if not injections:
        return
    click.echo("Performing Requested Modifications:")
    for line in injections.describe():
        click.echo(f"  * {line}")
    click.echo("")


def _explanations(cib: m.Cib, now: int, names: tuple[str, ...], transition: Transition) -> list[str]:
    out: list[str] = []
    for name in names:
        try:
            lines = explain(cib, now, name, transition)
        except ExplainError as err:
            raise click.BadParameter(str(err), param_hint="--explain") from err
        out += ["", f"Why {name} goes where it goes:", *(f"  {line}" if line else "" for line in lines)]
    return out


def _print_current(cib: m.Cib, now: int, detailed: bool) -> None:
    click.echo("Current cluster status:")
    if detailed:
        _print_status(cib, now)
        return
    nodes = ", ".join(n.uname for n in cib.configuration.nodes) or "(none)"
    click.echo(f"  * Nodes: {nodes}")
    click.echo("")


def _print_status(cib: m.Cib, now: int) -> None:
    for line in status_lines(cib, now):
        click.echo(f"  {line}" if line else "")
    click.echo("")


def _print_run(cib: m.Cib, now: int, failures: tuple[OpSpec, ...]) -> None:
    try:
        result = run_transition(cib, now, failures)
    except RunError as err:
        raise click.ClickException(f"cannot carry out the transition: {err}") from err
    click.echo("")
    click.echo("Executing Cluster Transition:")
    for line in result.lines:
        click.echo(f"  {line}")
    for line in result.failed:
        click.echo(f"warning: {line}", err=True)
    click.echo("")
    click.echo("Revised Cluster Status:")
    _print_status(result.cib, now)


@click.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--show-scores", "-s", is_flag=True, help="Also print every resource's allocation scores.")
@click.option(
    "--at",
    "at",
    default=None,
    metavar="TIME",
    help="Evaluate rules and failure timeouts at TIME (epoch seconds or ISO 8601: 2024-05-01T10:00Z).",
)
@click.option(
    "--explain",
    "explain_rsc",
    multiple=True,
    metavar="RSC",
    help="Say in sentences why RSC goes where it goes: scores, constraints, relations (repeatable).",
)
@click.option(
    "--node-up", multiple=True, metavar="NODE", help="What if NODE joined the cluster (repeatable)."
)
@click.option(
    "--node-down", multiple=True, metavar="NODE", help="What if NODE shut down cleanly (repeatable)."
)
@click.option(
    "--node-fail",
    multiple=True,
    metavar="NODE",
    help="What if NODE vanished uncleanly: it gets fenced (repeatable).",
)
@click.option(
    "--op-fail",
    multiple=True,
    metavar="RSC_OP_INTERVAL@NODE=RC",
    help="Record this operation result in the history first, e.g. web_monitor_10000@node1=7 (repeatable).",
)
@click.option(
    "--ticket-grant", multiple=True, metavar="TICKET", help="What if TICKET were granted (repeatable)."
)
@click.option(
    "--ticket-revoke", multiple=True, metavar="TICKET", help="What if TICKET were revoked (repeatable)."
)
@click.option(
    "--run",
    "run",
    is_flag=True,
    help="Also carry out the transition on paper and print the cluster status afterwards.",
)
@click.option(
    "--run-fail",
    multiple=True,
    metavar="RSC_OP_INTERVAL@NODE=RC",
    help="With --run: this action of the transition returns RC instead of succeeding (repeatable).",
)
def simulate(
    file: Path,
    show_scores: bool,
    at: str | None,
    explain_rsc: tuple[str, ...],
    node_up: tuple[str, ...],
    node_down: tuple[str, ...],
    node_fail: tuple[str, ...],
    op_fail: tuple[str, ...],
    ticket_grant: tuple[str, ...],
    ticket_revoke: tuple[str, ...],
    run: bool,
    run_fail: tuple[str, ...],
) -> None:
    """Show the transition the policy engine computes for the cluster state in FILE (CIB XML or TOML)."""
    cib = load_cib(file)
    failures: tuple[OpSpec, ...] = _checked(parse_op_spec, op_fail, "--op-fail")
    run_failures: tuple[OpSpec, ...] = _checked(parse_op_spec, run_fail, "--run-fail")
    if run_failures and not run:
        raise click.UsageError("--run-fail goes with --run")
    injections = Injections(node_up, node_down, node_fail, ticket_grant, ticket_revoke, failures)
    now = _now(cib, at)
    changed = _injected(cib, injections, now)
    _print_current(cib, now, detailed=run)
    _print_injections(injections)
    transition = schedule(changed, now)
    why = _explanations(changed, now, explain_rsc, transition)
    if show_scores:
        click.echo("Allocation scores:")
        for line in transition.scores:
            click.echo(f"  {line}")
        click.echo("")
    click.echo("Transition Summary:")
    for line in transition.summary:
        click.echo(f"  {line}")
    for line in why:
        click.echo(line)
    if run:
        _print_run(changed, now, run_failures)
