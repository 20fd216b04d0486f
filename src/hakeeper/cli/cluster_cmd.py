"""Whole-cluster commands: ``config apply``, ``config haresources``, ``simulate --live``, ``cluster setup``
(``cluster start|stop`` live in ``cluster_run``).

``config apply FILE`` shows what changes (a diff of the configuration, secrets masked) and the transition the
cluster would run, then applies with the version it showed as precondition, so an operator never overwrites a
change made in between. ``cluster setup`` writes each node's daemon configuration and the cluster key.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import click
import msgspec

from hakeeper.api import schemas as s
from hakeeper.api.client import ApiClient, ApiRequestError
from hakeeper.api.views import mask_configuration
from hakeeper.cib import model as m
from hakeeper.cib import operator as op
from hakeeper.cib.declarative import ConfigError as TomlConfigError
from hakeeper.cib.declarative import dump_config, load_config
from hakeeper.cib.patch import Patch, PatchError, PatchOp, apply
from hakeeper.cli.cluster_run import start, stop
from hakeeper.cli.config_cmd import config, read_configuration
from hakeeper.cli.connect import Target, api_options, api_params, connected, describe_write
from hakeeper.cli.simulate_cmd import simulate as simulate_file
from hakeeper.daemon.config import Address, ConfigError, load_daemon_config, parse_address
from hakeeper.messaging.keys import KeyFileError, write_key_file

DEFAULT_PORT = 5405
DEFAULT_KEY = Path("/etc/hakeeper/cluster.key")


# --- config apply -----------------------------------------------------------------------------------------


def config_diff(current: str, new: str) -> list[str]:
    """A unified diff of two configurations in the canonical TOML form (both with secrets masked)."""
    return list(
        difflib.unified_diff(
            current.splitlines(), new.splitlines(), "running configuration", "new configuration", lineterm=""
        )
    )


def _load(path: Path) -> m.Configuration:
    loaded = read_configuration(path)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    return loaded.config


def _toml(cfg: m.Configuration, path: Path) -> str:
    """The configuration as the API reads and writes TOML (so the diff shows only real changes)."""
    try:
        return dump_config(cfg)
    except ValueError as err:
        raise click.ClickException(f"{path} cannot be applied: {err}") from err


def _show_plan(diff: list[str], plan: s.ConfigApplyResult) -> None:
    if not plan.changes:
        return
    click.echo("Changes:")
    for line in diff or [f"  {c}" for c in plan.changed]:
        style = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1])
        click.secho(line, fg=style)
    click.echo("Predicted transition:")
    for line in plan.predicted or ["  (nothing to do)"]:
        click.echo(f"  {line.strip()}")


def _stale(err: ApiRequestError) -> click.ClickException:
    now = f" (it is now at {err.current_version})" if err.current_version else ""
    return click.ClickException(
        f"the configuration was changed by someone else after it was read{now}, so nothing was applied; "
        "run 'hakeeper config apply' again to see the changes against the new configuration"
    )


@config.command("apply")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dry-run", is_flag=True, help="Show the changes and the predicted transition, change nothing."
)
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@api_options
def apply_cmd(target: Target, file: Path, dry_run: bool, yes: bool) -> None:
    """Apply the configuration in FILE (TOML or CIB XML) to the running cluster, after showing the changes."""
    new_cfg = _load(file)
    new_toml = _toml(new_cfg, file)
    with connected(target) as client:
        current = client.config()
        try:
            plan = client.apply_config(new_toml, if_match=current.config_version, dry_run=True)
        except ApiRequestError as err:
            if err.status in (409, 412):
                raise _stale(err) from err
            raise
        _show_plan(config_diff(current.toml, dump_config(mask_configuration(new_cfg))), plan)
        if not plan.changes:
            click.echo(f"Nothing to change: the cluster already runs this configuration ({current.version}).")
            return
        if dry_run:
            click.echo("Dry run: nothing was applied.")
            return
        if not yes:
            click.confirm("Apply these changes?", abort=True)
        try:
            done = client.apply_config(new_toml, if_match=current.config_version)
        except ApiRequestError as err:
            if err.status in (409, 412):
                raise _stale(err) from err
            raise
    if done.committed is not None:
        click.echo(describe_write(done.committed))


@config.command("haresources")
@click.argument("line")
@click.option(
    "--service-class",
    type=click.Choice(["lsb", "systemd"]),
    default="lsb",
    show_default=True,
    help="What a bare service name (httpd) means.",
)
@api_options
def haresources_cmd(target: Target, line: str, service_class: str) -> None:
    """Create a group from Heartbeat's haresources LINE, preferring its first word's node.

    Example: 'node1 IPaddr::10.0.0.10/24 httpd' makes a group of the address and the httpd service."""
    body = s.HaresourcesLine(line=line, service_class="systemd" if service_class == "systemd" else "lsb")
    with connected(target) as client:
        raw = client.request("POST", "/v1/config/haresources", body)
        click.echo(describe_write(msgspec.json.decode(raw, type=s.WriteResult)))


# --- simulate --live ---------------------------------------------------------------------------------------


def _read_ops(path: Path) -> list[PatchOp]:
    try:
        return msgspec.json.decode(path.read_bytes(), type=list[PatchOp])
    except OSError as err:
        raise click.ClickException(f"cannot read {path}: {err.strerror or err}") from err
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise click.ClickException(
            f"{path} is not a JSON list of patch operations ({{'op': 'modify', 'path': ..., ...}}): {err}"
        ) from err


class WhatIf(NamedTuple):
    """Operator-level changes to try: nodes in standby, resources moved or disabled."""

    standby: tuple[str, ...] = ()
    moves: tuple[tuple[str, str], ...] = ()
    disable: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.standby or self.moves or self.disable)


def what_if_ops(cfg: m.Configuration, what: WhatIf) -> list[PatchOp]:
    """The patch operations the API would commit for ``what``, made as the API makes them (one after the
    other, each on the result of the previous)."""
    steps: list[Callable[[m.Cib], Patch]] = [
        *(functools.partial(op.standby, node=n) for n in what.standby),
        *(functools.partial(op.move, rsc_id=r, node=n) for r, n in what.moves),
        *(functools.partial(op.disable, rsc_id=r) for r in what.disable),
    ]
    cib = m.Cib(configuration=cfg)
    ops: list[PatchOp] = []
    for step in steps:
        try:
            patch = step(cib)
            cib = apply(cib, patch)
        except (op.OperatorError, PatchError) as err:
            raise click.ClickException(f"cannot simulate that: {err}") from err
        ops += patch.ops
    return ops


def _running_configuration(client: ApiClient) -> m.Configuration:
    try:
        return load_config(client.config().toml)
    except TomlConfigError as err:  # the API wrote it: only a version mismatch between CLI and daemon
        raise click.ClickException(f"the running configuration could not be read: {err}") from err


def simulate_live(
    target: Target, config_file: Path | None, ops_file: Path | None, what: WhatIf, as_json: bool
) -> None:
    ops = _read_ops(ops_file) if ops_file else []
    config_toml = _toml(_load(config_file), config_file) if config_file else None
    with connected(target) as client:
        if what:
            ops += what_if_ops(_running_configuration(client), what)
        result = client.simulate(s.SimulateRequest(ops=ops, config_toml=config_toml))
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(result)).decode())
        return
    changes = "with the changes" if ops or config_toml else "as it is"
    click.echo(f"The running cluster (CIB version {result.version}) {changes} would do:")
    for line in result.summary or ["(nothing)"]:
        click.echo(f"  {line.strip()}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)


def _optional_file(param: click.Parameter) -> click.Parameter:
    if isinstance(param, click.Argument) and param.name == "file":
        return click.Argument(["file"], required=False, type=param.type)
    return param


def _offline_default(offline: click.Command, name: str) -> object:
    for param in offline.params:
        if param.name == name:
            return param.default
    return None


def with_live(offline: click.Command) -> click.Command:
    """``hakeeper simulate``: the offline command (FILE) plus ``--live`` against the running cluster."""

    def run(
        live: bool,
        config_file: Path | None,
        ops_file: Path | None,
        standby: tuple[str, ...],
        move: tuple[tuple[str, str], ...],
        disable: tuple[str, ...],
        as_json: bool,
        socket_path: Path,
        url: str | None,
        token: str | None,
        ca_file: Path | None,
        **offline_args: Any,
    ) -> None:
        if live:
            if offline_args.get("file") is not None:
                raise click.UsageError("give either FILE (a saved CIB) or --live (the running cluster)")
            offline_only = sorted(
                f"--{name.replace('_', '-')}"
                for name, value in offline_args.items()
                if name != "file"
                and value not in (None, False, (), [], "")
                and value != _offline_default(offline, name)
            )
            if offline_only:
                raise click.UsageError(
                    f"{', '.join(offline_only)}: only for a saved CIB (FILE), not with --live; "
                    "with --live use --standby, --move, --disable, --config or --ops"
                )
            what = WhatIf(standby, move, disable)
            simulate_live(Target(socket_path, url, token, ca_file), config_file, ops_file, what, as_json)
            return
        if offline_args.get("file") is None:
            raise click.UsageError("give FILE (a saved CIB) or --live (the running cluster)")
        if config_file or ops_file or as_json or standby or move or disable:
            raise click.UsageError("--config, --ops, --standby, --move, --disable and --json go with --live")
        assert offline.callback is not None
        offline.callback(**offline_args)

    live_params: list[click.Parameter] = [
        click.Option(["--live"], is_flag=True, help="What-if on the running cluster, through its API."),
        click.Option(
            ["--config", "config_file"],
            type=click.Path(dir_okay=False, path_type=Path),
            help="With --live: what the cluster would do with this configuration (TOML or CIB XML).",
        ),
        click.Option(
            ["--ops", "ops_file"],
            type=click.Path(dir_okay=False, path_type=Path),
            help="With --live: a JSON list of CIB patch operations to try.",
        ),
        click.Option(
            ["--standby"], multiple=True, metavar="NODE", help="With --live: what if NODE were in standby."
        ),
        click.Option(
            ["--move"],
            nargs=2,
            multiple=True,
            metavar="RSC NODE",
            help="With --live: what if RSC moved to NODE.",
        ),
        click.Option(
            ["--disable"], multiple=True, metavar="RSC", help="With --live: what if RSC were disabled."
        ),
        click.Option(["--json", "as_json"], is_flag=True, help="With --live: the API's answer as JSON."),
    ]
    return click.Command(
        offline.name,
        callback=run,
        params=[_optional_file(p) for p in offline.params] + live_params + api_params(),
        help=(offline.help or "").rstrip(".")
        + ".\n\nWith --live instead of FILE: what the running cluster would do, as it is or with changes "
        "(--standby, --move, --disable, --config FILE, --ops FILE); nothing is changed.",
        short_help="Show the transition the policy engine computes (saved CIB, or --live).",
    )


simulate_with_live = with_live(simulate_file)


# --- cluster setup -----------------------------------------------------------------------------------------


def _link(node: str, addr: str) -> str:
    """An address with the default port when it has none (``10.0.0.1``, ``fe80::1``) or as given."""
    try:
        host = ipaddress.ip_address(addr.strip("[]"))
        return str(Address(str(host), DEFAULT_PORT))
    except ValueError:
        if ":" not in addr:
            raise click.UsageError(
                f"node {node}: {addr!r} is not an IP address (the cluster does not look names up)"
            ) from None
    try:
        return str(parse_address(addr))
    except ValueError as err:
        raise click.UsageError(f"node {node}: {err}") from err


def _node_words(words: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """``node1=10.0.0.1[,192.168.1.1:5406]`` words into (name, ["host:port", ...])."""
    out: list[tuple[str, list[str]]] = []
    for word in words:
        name, sep, addrs = word.partition("=")
        if not sep or not name or not addrs:
            raise click.UsageError(f"{word!r} is not NODE=ADDRESS[,ADDRESS2] (one address per link)")
        out.append((name, [_link(name, a) for a in addrs.split(",")]))
    return out


def setup_toml(name: str, nodes: list[tuple[str, list[str]]], key_file: Path, two_node: bool) -> str:
    lines = ["[cluster]", f"name = {json.dumps(name)}", f"key_file = {json.dumps(str(key_file))}", ""]
    if two_node:
        lines += ["[quorum]", "two_node = true", ""]
    for node_id, (node, links) in enumerate(nodes, start=1):
        lines += [
            "[[nodes]]",
            f"name = {json.dumps(node)}",
            f"id = {node_id}",
            f"addresses = {json.dumps(links)}",
            "",
        ]
    return "\n".join(lines)


@click.group("cluster")
def cluster() -> None:
    """Set up a new cluster's node configurations and key; start and stop nodes; cluster-wide maintenance
    mode."""


cluster.add_command(start)
cluster.add_command(stop)


@cluster.command("maintenance")
@click.argument("switch", type=click.Choice(["on", "off"]))
@api_options
def maintenance(target: Target, switch: str) -> None:
    """Maintenance mode for the whole cluster: 'on' leaves every resource alone (nothing is started,
    stopped or monitored) until 'off'."""
    with connected(target) as client:
        click.echo(describe_write(client.maintenance(switch == "on")))


@cluster.command("setup")
@click.option("--name", required=True, help="The cluster's name.")
@click.argument("nodes", nargs=-1, required=True, metavar="NODE=ADDR[,ADDR2]...")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_KEY,
    show_default=True,
    help="Where the key will be on the nodes (written in cluster.toml).",
)
@click.option("--force", is_flag=True, help="Replace an existing key in --out (locks out nodes using it).")
def setup(name: str, nodes: tuple[str, ...], out_dir: Path, key_file: Path, force: bool) -> None:
    """Write OUT/NODE/cluster.toml for each node and one cluster key, OUT/cluster.key, to copy to every node
    (cluster.toml to /etc/hakeeper/, the key to --key-file)."""
    parsed = _node_words(nodes)
    text = setup_toml(name, parsed, key_file, two_node=len(parsed) == 2)
    try:
        load_daemon_config(text, "the generated cluster.toml")
    except ConfigError as err:
        raise click.ClickException("\n".join(["these nodes do not make a cluster:", *err.problems])) from err
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_key_file(out_dir / "cluster.key", force=force)
        for node, _ in parsed:
            (out_dir / node).mkdir(exist_ok=True)
            (out_dir / node / "cluster.toml").write_text(text, encoding="utf-8")
    except KeyFileError as err:
        raise click.ClickException(str(err)) from err
    except OSError as err:
        raise click.ClickException(f"cannot write into {out_dir}: {err.strerror or err}") from err
    click.echo(f"Wrote {out_dir}/cluster.key and cluster.toml for {', '.join(n for n, _ in parsed)}.")
    click.echo(
        f"Copy {out_dir}/NODE/cluster.toml to /etc/hakeeper/cluster.toml and the key to {key_file} "
        "(mode 0600) on each node, then run 'hakeeper daemon --node NODE' there."
    )
