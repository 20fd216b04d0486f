"""``hakeeper demo``: a three-node cluster on this machine keeping a web service up through a node failure."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import click

from hakeeper.api.auth import Role
from hakeeper.cli.lab import LabCluster, LabError, lab_supported, web_group_bootstrap
from hakeeper.cli.localcluster import LocalCluster, free_tcp_port, wait_until

NODES = ["node1", "node2", "node3"]
LAB_PORT = 80


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
    "--lab",
    is_flag=True,
    help="As root: every node in its own network namespace, a real virtual IP, a client namespace asking it.",
)
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the cluster's files here (default: a temporary directory, removed at the end).",
)
def demo(auto: bool, lab: bool, workdir: Path | None) -> None:
    """Start three nodes, run a web service, kill its node, and watch it come back elsewhere."""
    if lab:
        why = lab_supported()
        if why is not None:
            raise click.ClickException(f"demo --lab runs the nodes in network namespaces: {why}")
        _run_lab(workdir or Path(tempfile.mkdtemp(prefix="hakeeper-demo-")), auto, keep=workdir is not None)
        return
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


def _run_lab(root: Path, auto: bool, keep: bool) -> None:
    try:
        cluster = LabCluster(root, NODES, cluster_name="demo")
    except LabError as err:  # no free prefix/subnet, or the lab registry unusable
        raise click.ClickException(str(err)) from None
    cluster.bootstrap = web_group_bootstrap(cluster, fencing=True, port=LAB_PORT, monitor="2s")
    ok = False
    try:
        cluster.create()
        ok = _lab_script(cluster, auto)
    except KeyboardInterrupt:
        click.echo("\nstopping the demo lab")
        ok = True
    except LabError as err:
        raise click.ClickException(str(err)) from None
    finally:
        cluster.teardown()
        if not keep:
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
    return _stays_then_runs(
        first,
        second,
        auto,
        lambda: _serving_node(_ask(url)),
        lambda: _ask(url),
        cluster.logs,
        "Ctrl-C stops it",
    )


def _stays_then_runs(
    first: str,
    second: str | None,
    auto: bool,
    serving: Callable[[], str | None],
    answer: Callable[[], str | None],
    logs: Callable[[], str],
    how_to_stop: str,
) -> bool:
    """After the failed node returns: the service must stay where it is (stickiness); then, unless ``auto``,
    keep showing who answers until Ctrl-C."""
    time.sleep(5)
    third = serving()
    if third != second:
        click.echo(f"the service moved to {third} when {first} returned: stickiness should have kept it")
        click.echo(logs())
        return False
    click.echo(f"{first} is back and the service stays on {second} (stickiness: no needless move)")
    if auto:
        _step("demo complete")
        return True
    _step(f"the cluster keeps running; {how_to_stop}")
    while True:
        time.sleep(2)
        click.echo(f"{time.strftime('%H:%M:%S')}  {answer() or 'no answer'}")


def _lab_script(lab: LabCluster, auto: bool) -> bool:
    """The demo on a lab: the service answers through a real VIP, to a client in its own namespace."""
    url = f"http://{lab.vip}:{LAB_PORT}/"

    def answer() -> str | None:
        return _serving_node(lab.client_get(url, timeout=0.5))

    _step(f"starting {len(lab.nodes)} nodes, each in its own network namespace on the bridge {lab.bridge(0)}")
    for name in lab.nodes:
        click.echo(f"  {name}: namespace {lab.namespace(name)}, address {lab.address(name)}")
    click.echo(f"  client: namespace {lab.client_ns}, address {lab.address('client')}")
    click.echo(f"the service's virtual IP is {lab.vip}; fencing: the lab agent")
    click.echo("(the lab fence agent powers a node off: it kills every process in its namespace)")
    started = time.monotonic()
    lab.start_all()
    if not wait_until(lambda: answer() is not None, 120, 0.2):
        click.echo(lab.logs())
        return False
    first = answer()
    assert first is not None
    click.echo(
        f"the client gets {url} answered by {first} ({time.monotonic() - started:.1f} s after the daemons "
        f"started); try it yourself: ip netns exec {lab.client_ns} curl {url}"
    )
    if not auto:
        click.pause(f"Press a key to power off {first} (every process in it killed, its link down)...")
    _step(f"powering off {first}")
    killed_at = time.monotonic()
    lab.power_off(first)
    if not wait_until(lambda: answer() not in (None, first), 120, 0.02):
        click.echo(lab.logs())
        return False
    second = answer()
    click.echo(
        f"the VIP answers again, served by {second}: {time.monotonic() - killed_at:.2f} s after {first} died "
        "(it was fenced first)"
    )
    _step(f"powering {first} on again")
    lab.power_on(first)
    return _stays_then_runs(
        first,
        second,
        auto,
        answer,
        lambda: lab.client_get(url, timeout=0.5),
        lab.logs,
        "Ctrl-C stops it and removes the namespaces",
    )
