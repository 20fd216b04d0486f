"""The ``hakeeper`` command. Each command family lives in its own module and is registered here."""

from __future__ import annotations

import click

from hakeeper import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hakeeper")
def cli() -> None:
    """hakeeper: a high-availability cluster stack (messaging, CIB, policy engine, LRM, fencing)."""


def _register() -> None:
    # Imported here so that each family's module can import ``cli`` without a cycle.
    from hakeeper.cli import commands

    for command in commands.ALL:
        cli.add_command(command)


def main() -> None:
    _register()
    cli()
