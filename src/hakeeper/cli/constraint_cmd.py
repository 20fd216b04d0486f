"""``hakeeper constraint location|colocation|order add|remove|list``: placement and ordering rules, live.

Scores are Pacemaker's: an integer or ``INFINITY``/``-INFINITY`` (``-INFINITY`` is written after ``--``
or as ``score=-INFINITY`` so it is not taken for an option).
"""

from __future__ import annotations

from typing import Literal

import click

from hakeeper.api import schemas as s
from hakeeper.cib import model as m
from hakeeper.cib.values import format_score
from hakeeper.cli.connect import Target, api_options, connected, describe_write

Kind = Literal["location", "colocation", "order"]
KINDS: tuple[Kind, ...] = ("location", "colocation", "order")


def _score_word(word: str) -> str:
    """``500``, ``INFINITY``, ``-INFINITY`` or ``score=...``; checked by the API, which names the problem."""
    return word.partition("=")[2] if word.startswith("score=") else word


def _score(text: str) -> s.Score:
    return int(text) if text.lstrip("+-").isdigit() else text


def describe(c: m.Constraint) -> str:
    """One line per constraint, in words."""
    if isinstance(c, m.Location):
        where = c.node or (f"{len(c.rules)} rule(s)" if c.rules else "?")
        score = format_score(c.score) if c.score is not None else "rule scores"
        return f"{c.id}: location {c.rsc or c.rsc_pattern or 'set'} on {where} score {score}"
    if isinstance(c, m.Colocation):
        return f"{c.id}: colocation {c.rsc or 'set'} with {c.with_rsc or 'set'} score {format_score(c.score)}"
    if isinstance(c, m.Order):
        first = f"{c.first_action or 'start'} {c.first or 'set'}"
        then = f"{c.then_action or (c.first_action or 'start')} {c.then or 'set'}"
        return f"{c.id}: order {first} then {then} ({c.kind or 'Mandatory'})"
    return f"{c.id}: {type(c).__name__.lower()}"


def kind_of(c: m.Constraint) -> str:
    return type(c).__name__.lower()


def _list(target: Target, kind: str | None) -> None:
    with connected(target) as client:
        found = [c for c in client.constraints().constraints if kind is None or kind_of(c) == kind]
    if not found:
        click.echo(f"No {kind or ''} constraints.".replace("  ", " "))
    for c in found:
        click.echo(describe(c))


def _remove(target: Target, constraint_id: str) -> None:
    with connected(target) as client:
        click.echo(describe_write(client.remove_constraint(constraint_id)))


@click.group("constraint")
def constraint() -> None:
    """Add, remove and list location, colocation and order constraints."""


@constraint.command("list")
@api_options
def list_all(target: Target) -> None:
    """List every constraint."""
    _list(target, None)


@constraint.command("remove")
@click.argument("constraint_id", metavar="ID")
@api_options
def remove_any(target: Target, constraint_id: str) -> None:
    """Remove a constraint by its id (see 'constraint list')."""
    _remove(target, constraint_id)


def _family(kind: Kind) -> click.Group:
    """``location``/``colocation``/``order`` each get ``list`` and ``remove``; ``add`` is added below."""
    group = click.Group(kind, help=f"{kind.capitalize()} constraints: add, remove, list.")

    @group.command("list")
    @api_options
    def list_kind(target: Target) -> None:
        """List these constraints."""
        _list(target, kind)

    @group.command("remove")
    @click.argument("constraint_id", metavar="ID")
    @api_options
    def remove_kind(target: Target, constraint_id: str) -> None:
        """Remove one by its id."""
        _remove(target, constraint_id)

    constraint.add_command(group)
    return group


location = _family("location")
colocation = _family("colocation")
order = _family("order")


@location.command("add")
@click.argument("rsc")
@click.argument("node")
@click.argument("score", default="INFINITY")
@click.option("--id", "constraint_id", help="The constraint's id (one is made up otherwise).")
@api_options
def location_add(target: Target, rsc: str, node: str, score: str, constraint_id: str | None) -> None:
    """RSC prefers (positive SCORE) or avoids (negative) NODE; SCORE defaults to INFINITY."""
    req = s.LocationAdd(rsc=rsc, node=node, score=_score(_score_word(score)), id=constraint_id)
    with connected(target) as client:
        click.echo(describe_write(client.add_location(req)))


@colocation.command("add")
@click.argument("rsc")
@click.argument("with_rsc")
@click.argument("score", default="INFINITY")
@click.option("--id", "constraint_id", help="The constraint's id (one is made up otherwise).")
@api_options
def colocation_add(target: Target, rsc: str, with_rsc: str, score: str, constraint_id: str | None) -> None:
    """Place RSC with WITH_RSC (placed first); a negative SCORE keeps them apart."""
    req = s.ColocationAdd(rsc=rsc, with_rsc=with_rsc, score=_score(_score_word(score)), id=constraint_id)
    with connected(target) as client:
        click.echo(describe_write(client.add_colocation(req)))


@order.command("add")
@click.argument("first")
@click.argument("then")
@click.option(
    "--kind",
    type=click.Choice(["Mandatory", "Optional", "Serialize"]),
    default="Mandatory",
    show_default=True,
)
@click.option(
    "--symmetrical/--not-symmetrical", default=None, help="Stop in the reverse order (default: yes)."
)
@click.option(
    "--first-action", type=click.Choice(["start", "stop", "promote", "demote"]), help="Default: start."
)
@click.option(
    "--then-action", type=click.Choice(["start", "stop", "promote", "demote"]), help="Default: as first."
)
@click.option("--id", "constraint_id", help="The constraint's id (one is made up otherwise).")
@api_options
def order_add(
    target: Target,
    first: str,
    then: str,
    kind: str,
    symmetrical: bool | None,
    first_action: str | None,
    then_action: str | None,
    constraint_id: str | None,
) -> None:
    """Start FIRST before THEN (and stop them the other way round)."""
    req = s.OrderAdd(
        first=first,
        then=then,
        kind=kind,
        symmetrical=symmetrical,
        first_action=first_action,
        then_action=then_action,
        id=constraint_id,
    )
    with connected(target) as client:
        click.echo(describe_write(client.add_order(req)))
