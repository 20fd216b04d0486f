"""``hakeeper daemon``: run this node's daemon in the foreground."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from hakeeper.daemon.config import ConfigError, load_daemon_config


@click.command("daemon")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path("/etc/hakeeper/cluster.toml"),
    show_default=True,
    help="The daemon configuration (nodes, links, key, timers).",
)
@click.option("--node", required=True, help="This node's name, as in the configuration.")
@click.option(
    "--bootstrap",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A cluster configuration (TOML or Pacemaker XML) to load when the CIB is still empty.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every decision, not only warnings and events.")
def daemon(config_path: Path, node: str, bootstrap: Path | None, verbose: bool) -> None:
    """Run this node's daemon: messaging, CIB, controller and LRM."""
    from hakeeper.cli.config_cmd import read_configuration
    from hakeeper.daemon.node import run_daemon

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format=f"%(asctime)s {node} %(name)s %(levelname)s: %(message)s",
    )
    try:
        config = load_daemon_config(config_path.read_text(encoding="utf-8"), str(config_path))
        config.node(node)
    except OSError as err:
        raise click.ClickException(f"cannot read {config_path}: {err.strerror}") from err
    except ConfigError as err:
        raise click.ClickException("\n".join([f"{err.source}:", *(f"  {p}" for p in err.problems)])) from err
    initial = read_configuration(bootstrap).config if bootstrap is not None else None
    run_daemon(config, node, bootstrap=initial)
