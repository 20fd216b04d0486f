"""``hakeeper node standby|unstandby|maintenance|attribute NODE ...``: node states and attributes, live."""

from __future__ import annotations

import click

from hakeeper.cli.connect import Target, api_options, connected, describe_write


@click.group("node")
def node() -> None:
    """Put nodes in standby or maintenance and set their attributes."""


@node.command("standby")
@click.argument("name", metavar="NODE")
@api_options
def standby(target: Target, name: str) -> None:
    """Move every resource off NODE and keep them off until 'unstandby'."""
    with connected(target) as client:
        click.echo(describe_write(client.standby(name, True)))


@node.command("unstandby")
@click.argument("name", metavar="NODE")
@api_options
def unstandby(target: Target, name: str) -> None:
    """Let NODE run resources again."""
    with connected(target) as client:
        click.echo(describe_write(client.standby(name, False)))


@node.command("maintenance")
@click.argument("name", metavar="NODE")
@click.argument("switch", type=click.Choice(["on", "off"]), default="on")
@api_options
def maintenance(target: Target, name: str, switch: str) -> None:
    """Maintenance on NODE: the cluster leaves its resources alone (neither stops nor monitors them)."""
    with connected(target) as client:
        click.echo(describe_write(client.node_maintenance(name, switch == "on")))


@node.command("attribute")
@click.argument("name", metavar="NODE")
@click.argument("setting", metavar="ATTR[=VALUE]", required=False)
@click.option("--delete", is_flag=True, help="Delete ATTR instead of setting it.")
@api_options
def attribute(target: Target, name: str, setting: str | None, delete: bool) -> None:
    """Show NODE's attributes, set one (ATTR=VALUE) or delete one (ATTR --delete)."""
    with connected(target) as client:
        if setting is None:
            view = next((n for n in client.cluster().nodes if n.name == name), None)
            if view is None:
                raise click.ClickException(f"there is no node {name!r} in the cluster")
            for title, values in (("", view.attributes), (" (transient)", view.transient_attributes)):
                for key, value in sorted(values.items()):
                    click.echo(f"{key}={value}{title}")
            return
        attr, sep, value = setting.partition("=")
        if not attr or (delete and sep) or (not delete and not sep):
            raise click.UsageError("give ATTR=VALUE to set an attribute, or ATTR --delete to remove it")
        result = (
            client.delete_node_attribute(name, attr)
            if delete
            else client.set_node_attribute(name, attr, value)
        )
        click.echo(describe_write(result))
