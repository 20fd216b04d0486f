"""``hakeeper cluster start`` and ``cluster stop`` (what ``pcs cluster start|stop`` do).

``start`` runs this node's daemon: through systemd when a ``hakeeper.service`` unit is installed, otherwise as
a detached background process logging to ``<data_dir>/daemon.log``; it waits until the local API answers and
says whether the cluster has quorum and which node is the DC. ``--all`` also starts the other nodes, over
ssh (each runs ``hakeeper cluster start --node NAME`` there).

``stop`` shuts nodes down cleanly through the API: each named node's daemon is asked (through the DC) to move
or stop its resources and leave; the command waits until the nodes are seen gone.
"""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from hakeeper.api import schemas as s
from hakeeper.api.client import ApiClient, ApiRequestError
from hakeeper.cli.connect import Target, api_options, connected
from hakeeper.daemon.config import ConfigError, DaemonConfig, load_daemon_config

DEFAULT_CONFIG = Path("/etc/hakeeper/cluster.toml")
UNIT = "hakeeper.service"
POLL_S = 0.2
LOG_TAIL = 2_000
QUORUM_WAIT_S = 5.0
"""After the API answers, how long ``start`` waits for quorum and a DC before reporting what it sees."""


# --- reading the configuration ------------------------------------------------------------------------


def read_daemon_config(path: Path) -> DaemonConfig:
    try:
        return load_daemon_config(path.read_text(encoding="utf-8"), str(path))
    except OSError as err:
        raise click.ClickException(f"cannot read {path}: {err.strerror or err}") from err
    except ConfigError as err:
        raise click.ClickException("\n".join([f"{err.source}:", *(f"  {p}" for p in err.problems)])) from err


def this_node(config: DaemonConfig, given: str | None) -> str:
    """The node this machine is: ``--node``, or the configured node named like this host."""
    names = [n.name for n in config.nodes]
    if given is not None:
        if given not in names:
            raise click.ClickException(
                f"there is no node {given!r} in the configuration (nodes: {', '.join(names)})"
            )
        return given
    host = socket.gethostname()
    for candidate in (host, host.split(".", 1)[0]):
        if candidate in names:
            return candidate
    raise click.ClickException(
        f"this host's name ({host}) is not one of the configured nodes ({', '.join(names)}): "
        "say which node this is with --node NAME"
    )


# --- the local API ------------------------------------------------------------------------------------


def cluster_view(socket_path: Path) -> s.ClusterView | None:
    """The local daemon's view of the cluster, or None when no daemon answers on ``socket_path``."""
    if not socket_path.exists():
        return None
    try:
        with ApiClient(socket_path=socket_path, timeout_s=5.0) as client:
            return client.cluster()
    except ApiRequestError:
        return None


def wait_for(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def describe_view(view: s.ClusterView) -> str:
    online = sorted(n.name for n in view.nodes if n.online)
    quorum = "has quorum" if view.quorate else "has NO quorum (waiting for more nodes)"
    dc = f"the DC is {view.dc}" if view.dc else "no DC yet"
    return f"cluster {view.cluster_name} {quorum}; {dc}; online: {', '.join(online) or 'none'}"


# --- starting -----------------------------------------------------------------------------------------


def systemd_unit_usable() -> bool:
    """A ``hakeeper.service`` unit is installed on a machine that runs systemd."""
    if shutil.which("systemctl") is None or not Path("/run/systemd/system").is_dir():
        return False
    probe = subprocess.run(
        ["systemctl", "cat", UNIT], capture_output=True, text=True, timeout=30, check=False
    )
    return probe.returncode == 0


def daemon_argv(config_path: Path, node: str, bootstrap: Path | None) -> list[str]:
    argv = [sys.executable, "-m", "hakeeper", "daemon", "-v", "--config", str(config_path), "--node", node]
    return argv + (["--bootstrap", str(bootstrap)] if bootstrap is not None else [])


def spawn_detached(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Run the daemon in its own session (it outlives this command), its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]
    except OSError:
        return "(no log written)"


def start_local(
    config_path: Path, node: str | None, bootstrap: Path | None, timeout_s: float, use_systemd: bool
) -> None:
    config = read_daemon_config(config_path)
    name = this_node(config, node)
    sock = config.api_socket
    if cluster_view(sock) is not None:
        raise click.ClickException(
            f"the hakeeper daemon is already running on this node (its API answers at {sock}); "
            "'hakeeper cluster stop' stops it"
        )
    log_path = config.data_dir / "daemon.log"
    proc: subprocess.Popen[bytes] | None = None
    if use_systemd and systemd_unit_usable():
        click.echo(f"Starting {name} through systemd ({UNIT})...")
        started = subprocess.run(["systemctl", "start", UNIT], capture_output=True, text=True, check=False)
        if started.returncode != 0:
            raise click.ClickException(
                f"systemctl start {UNIT} failed: {started.stderr.strip() or started.stdout.strip()}; "
                f"see 'journalctl -u {UNIT}'"
            )
        where = f"'journalctl -u {UNIT}'"
    else:
        click.echo(f"Starting {name} in the background (log: {log_path})...")
        proc = spawn_detached(daemon_argv(config_path, name, bootstrap), log_path)
        where = str(log_path)

    def answered() -> bool:
        if proc is not None and proc.poll() is not None:
            raise click.ClickException(
                f"the daemon exited at once (status {proc.returncode}); the end of {log_path}:\n"
                + _log_tail(log_path)
            )
        return cluster_view(sock) is not None

    if not wait_for(answered, timeout_s):
        raise click.ClickException(
            f"the daemon was started but its API did not answer at {sock} within {timeout_s:g} s; see {where}"
        )
    wait_for(lambda: _quorate(sock), min(timeout_s, QUORUM_WAIT_S))
    view = cluster_view(sock)
    pid = f" (pid {proc.pid})" if proc is not None else ""
    click.echo(f"{name} is running{pid}: " + (describe_view(view) if view else "its API stopped answering"))


def _quorate(sock: Path) -> bool:
    view = cluster_view(sock)
    return view is not None and view.quorate and view.dc is not None


def start_remote(config: DaemonConfig, config_path: Path, node: str, timeout_s: float) -> bool:
    """Start ``node``'s daemon over ssh (its first link's address); say how it went."""
    host = config.node(node).links[0].host
    remote = [
        "hakeeper",
        "cluster",
        "start",
        "--config",
        str(config_path),
        "--node",
        node,
        "--timeout",
        f"{timeout_s:g}",
    ]
    argv = ["ssh", "-o", "BatchMode=yes", host, shlex.join(remote)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s + 30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        click.echo(f"{node}: could not run ssh {host}: {err}", err=True)
        return False
    text = (done.stdout + done.stderr).strip()
    click.echo(f"{node}: {text or ('started' if done.returncode == 0 else 'failed')}")
    return done.returncode == 0


@click.command("start")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="This node's daemon configuration.",
)
@click.option("--node", help="This node's name (default: the configured node named like this host).")
@click.option("--all", "everywhere", is_flag=True, help="Also start every other node, over ssh.")
@click.option(
    "--bootstrap",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A cluster configuration to load if the CIB is still empty (first start).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1, 3600),
    default=90.0,
    show_default=True,
    help="How long to wait for the daemon's API to answer, in seconds.",
)
@click.option("--no-systemd", is_flag=True, help="Run the daemon directly even if a systemd unit exists.")
def start(
    config_path: Path,
    node: str | None,
    everywhere: bool,
    bootstrap: Path | None,
    timeout_s: float,
    no_systemd: bool,
) -> None:
    """Start this node's daemon (and with --all every node's) and report quorum and the DC."""
    if not everywhere:
        start_local(config_path, node, bootstrap, timeout_s, use_systemd=not no_systemd)
        return
    config = read_daemon_config(config_path)
    me = this_node(config, node)
    start_local(config_path, me, bootstrap, timeout_s, use_systemd=not no_systemd)
    failed = [
        n.name
        for n in config.nodes
        if n.name != me and not start_remote(config, config_path, n.name, timeout_s)
    ]
    if failed:
        raise click.ClickException(f"could not start {', '.join(failed)} (see above)")


# --- stopping -----------------------------------------------------------------------------------------


def _poll(target: Target) -> s.ClusterView | None:
    """The answering daemon's view of the cluster, or None once it no longer answers."""
    try:
        with connected(target) as client:
            return client.cluster()
    except click.ClickException:
        return None


class _Watch:
    """Waits until every asked node is seen gone; the answering node counts as gone when its API is."""

    def __init__(self, target: Target, asked: list[str], answering: str) -> None:
        self.target = target
        self.asked = set(asked)
        self.answering = answering
        self.still_up = set(asked)

    def done(self) -> bool:
        view = _poll(self.target)
        if view is None:
            self.still_up.discard(self.answering)
            return True  # nothing more can be seen from here
        self.still_up = self.asked & {n.name for n in view.nodes if n.online}
        return not self.still_up


@click.command("stop")
@click.argument("nodes", nargs=-1)
@click.option("--all", "everywhere", is_flag=True, help="Stop every node of the cluster.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1, 3600),
    default=180.0,
    show_default=True,
    help="How long to wait for the nodes to stop, in seconds.",
)
@api_options
def stop(target: Target, nodes: tuple[str, ...], everywhere: bool, timeout_s: float) -> None:
    """Shut down this node (or NODE..., or --all) cleanly: its resources are moved or stopped through the
    DC, then its daemon exits. Waits until the nodes are gone."""
    if everywhere and nodes:
        raise click.UsageError("give either --all or node names, not both")
    with connected(target) as client:
        view = client.cluster()
        known = [n.name for n in view.nodes]
        unknown = [n for n in nodes if n not in known]
        if unknown:
            raise click.ClickException(
                f"no such node: {', '.join(unknown)} (the cluster's nodes are {', '.join(known)})"
            )
        online = {n.name for n in view.nodes if n.online}
        wanted = known if everywhere else (list(dict.fromkeys(nodes)) or [view.local_node])
        for n in wanted:
            if n not in online:
                click.echo(f"{n} is not running.")
        asked = [n for n in wanted if n in online]
        # the node answering this command is asked last, so every request is sent before it leaves
        for n in sorted(asked, key=lambda n: n == view.local_node):
            client.request("POST", f"/v1/nodes/{n}/shutdown")
            click.echo(f"Asked {n} to shut down: its resources are moved or stopped first.")
    if not asked:
        return
    watch = _Watch(target, asked, view.local_node)
    if not wait_for(watch.done, timeout_s):
        raise click.ClickException(
            f"{', '.join(sorted(watch.still_up))} did not stop within {timeout_s:g} s; they may still be "
            "moving resources: see 'hakeeper status' and the daemons' logs"
        )
    stopped = sorted(set(asked) - watch.still_up)
    click.echo(f"Stopped: {', '.join(stopped)}.")
    if watch.still_up:
        click.echo(
            f"Still shutting down when {view.local_node} left: {', '.join(sorted(watch.still_up))} "
            "(check with 'hakeeper status' on another node)."
        )
