"""``hakeeper keygen`` (create the cluster key) and ``hakeeper witness`` (run the quorum witness)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from hakeeper.messaging.keys import KeyFileError, read_key_file, write_key_file
from hakeeper.messaging.transport import TransportError, parse_address
from hakeeper.messaging.witness_server import WitnessServer


@click.command("keygen")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the new key (created with mode 0600).",
)
@click.option("--force", is_flag=True, help="Replace an existing key file (all nodes need the new one).")
def keygen(output: Path, force: bool) -> None:
    """Create a new random cluster key: every node and the witness need a copy of the same file."""
    try:
        write_key_file(output, force=force)
    except KeyFileError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote a new 32-byte cluster key to {output} (mode 0600)")
    click.echo("copy it to every node and to the witness host over a secure channel (scp, config management)")


@click.command("witness")
@click.option("--listen", required=True, metavar="ADDR:PORT", help="UDP address to serve, e.g. 0.0.0.0:5403.")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The cluster key file (the same one the nodes use).",
)
@click.option("--cluster", default="hakeeper", show_default=True, help="The cluster name the nodes use.")
@click.option(
    "--report-timeout",
    type=click.FloatRange(min=0.05),
    default=0.6,
    show_default=True,
    help="Seconds after which a silent node is forgotten (keep above the nodes' report interval).",
)
def witness(listen: str, key_file: Path, cluster: str, report_timeout: float) -> None:
    """Run the quorum witness: a vote-only tiebreaker for even splits, on a third host."""
    try:
        address = parse_address(listen)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--listen") from None
    try:
        key = read_key_file(key_file)
    except KeyFileError as err:
        raise click.ClickException(str(err)) from None
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = WitnessServer(address, cluster_key=key, cluster_name=cluster, report_timeout=report_timeout)
    try:
        asyncio.run(_serve(server))
    except TransportError as err:
        raise click.ClickException(str(err)) from None


async def _serve(server: WitnessServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    host, port = server.address
    click.echo(f"hakeeper witness: listening on {_show(host, port)} for cluster {server.cluster_name!r}")
    try:
        await stop.wait()
    finally:
        await server.close()
    click.echo(f"hakeeper witness: stopped; counters: {server.counters}")


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
