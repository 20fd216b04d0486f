"""``hakeeper demo``: a three-node cluster on this machine keeping a web service up through a node failure."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from hakeeper.api.auth import Role
from hakeeper.cli.localcluster import LocalCluster, free_tcp_port, wait_until

NODES = ["node1", "node2", "node3"]


def _bootstrap(port: int) -> str:
    command = f"{sys.executable} -m hakeeper.cli.demo_web --port {port}"
    return f"""
[cluster]
name = "demo"

[properties]
stonith-enabled = false   # the demo's nodes are processes on one machine; see the fencing docs for real ones

[rsc_defaults]
resource-stickiness = 100

[nodes.node1]
[nodes.node2]
[nodes.node3]

[resources.web]
agent = "ocf:hakeeper:process"
params = {{ command = "{command}", health_http = "http://127.0.0.1:{port}/", stop_grace = 2 }}
ops = [{{ name = "monitor", interval = "2s", timeout = "10s" }}]
"""


def _ask(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return str(response.read().decode().strip())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _serving_node(answer: str | None) -> str | None:
    return answer.removeprefix("hello from ").strip() if answer and answer.startswith("hello from ") else None


@click.command("demo")
@click.option("--auto", is_flag=True, help="Run the script without pauses and exit 0 on success (for CI).")
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the cluster's files here (default: a temporary directory, removed at the end).",
)
def demo(auto: bool, workdir: Path | None) -> None:
    """Start three nodes, run a web service, kill its node, and watch it come back elsewhere."""
    root = workdir or Path(tempfile.mkdtemp(prefix="hakeeper-demo-"))
    port = free_tcp_port()
    url = f"http://127.0.0.1:{port}/"
    cluster = LocalCluster(root, NODES, _bootstrap(port), http_port=free_tcp_port())
    ok = False
    try:
        ok = _script(cluster, url, auto)
    except KeyboardInterrupt:
        click.echo("\nstopping the demo cluster")
        ok = True
    finally:
        cluster.stop_all()
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    if not ok:
        raise click.ClickException("the demo did not go as expected; the node logs above say why")


def _step(text: str) -> None:
    click.secho(f"\n==> {text}", bold=True)


def _dashboard(cluster: LocalCluster, token: str) -> None:
    """Say where the web dashboard is: every node serves it, so it survives the node the demo kills."""
    click.echo("the live dashboard (on any node; the token is an 'operate' token made for this demo):")
    for name in cluster.nodes:
        click.echo(f"  {name}: {cluster.dashboard_url(name)}#token={token}")


def _script(cluster: LocalCluster, url: str, auto: bool) -> bool:
    _step(
        f"starting {len(cluster.nodes)} nodes on this machine: "
        + ", ".join(f"{n} ({cluster.addresses[n]})" for n in cluster.nodes)
    )
    token = cluster.create_token("demo-operator", Role.OPERATE)
    started = time.monotonic()
    cluster.start_all()
    _dashboard(cluster, token)
    if not wait_until(lambda: _serving_node(_ask(url)) is not None, 90):
        click.echo(cluster.logs())
        return False
    first = _serving_node(_ask(url))
    click.echo(
        f"the web service answers at {url}: served by {first} "
        f"({time.monotonic() - started:.1f} s after the daemons started)"
    )
    assert first is not None
    if not auto:
        click.pause(f"Press a key to kill {first} (its daemon and its service, like a power failure)...")
    _step(f"killing {first}")
    killed_at = time.monotonic()
    cluster.kill(first)
    if not wait_until(lambda: _serving_node(_ask(url)) not in (None, first), 90):
        click.echo(cluster.logs())
        return False
    second = _serving_node(_ask(url))
    click.echo(
        f"the web service answers again, served by {second}: {time.monotonic() - killed_at:.2f} s after "
        f"{first} died"
    )
    _step(f"bringing {first} back")
    cluster.start(first)
    time.sleep(5)
    third = _serving_node(_ask(url))
    if third != second:
        click.echo(f"the service moved to {third} when {first} returned: stickiness should have kept it")
        click.echo(cluster.logs())
        return False
    click.echo(f"{first} is back and the service stays on {second} (stickiness: no needless move)")
    if auto:
        _step("demo complete")
        return True
    _step("the cluster keeps running; Ctrl-C stops it")
    while True:
        time.sleep(2)
        click.echo(f"{time.strftime('%H:%M:%S')}  {_ask(url) or 'no answer'}")
