"""The real API app over a ``FakeCluster``, served on a Unix socket from a background thread.

The CLI is synchronous (it is what an operator runs), so the server gets its own event loop in a thread and
the tests drive the commands with click's ``CliRunner`` as an operator would, with ``--socket``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hakeeper.api.app import build_app, start_unix
from hakeeper.api.audit import AuditLog
from hakeeper.api.auth import TOKENS_FILE, Role, TokenStore
from hakeeper.api.fake import FakeCluster
from hakeeper.api.routing import Services
from hakeeper.cib import model as m
from hakeeper.cli.main import cli

NOW = 1_700_000_000
FAILED_AT = NOW - 100


def dummy(rid: str) -> m.Primitive:
    return m.Primitive(id=rid, klass="ocf", provider="pacemaker", type="Dummy")


def _history(rid: str, node: str, call_id: int, *failure: m.OpRecord) -> m.ResourceHistory:
    # the transition key carries the expected rc (0); without one, the policy engine sees a failure
    start = m.OpRecord(
        id=f"{rid}_last_0",
        operation="start",
        call_id=call_id,
        rc=0,
        on_node=node,
        transition_key=f"1:{call_id}:0:t",
    )
    return m.ResourceHistory(id=rid, klass="ocf", provider="pacemaker", type="Dummy", ops=[start, *failure])


def _member(name: str, *resources: m.ResourceHistory, attrs: dict[str, str] | None = None) -> m.NodeState:
    transient = [m.NvSet(id=f"status-{name}", values=attrs)] if attrs else []
    return m.NodeState(
        id=name,
        uname=name,
        in_ccm="true",
        crmd="online",
        join="member",
        expected="member",
        resources=list(resources),
        transient_attributes=transient,
    )


def sample_cib() -> m.Cib:
    """Three nodes; ``vip`` on n1 with one monitor failure (expiring after 600 s); a group ``web`` (fs, httpd)
    on n1; a clone of ``ping``, not running."""
    vip = m.Primitive(
        id="vip",
        klass="ocf",
        provider="pacemaker",
        type="Dummy",
        instance_attributes=[m.NvSet(id="vip-ia", values={"ip": "10.0.0.10"})],
        meta_attributes=[
            m.NvSet(id="vip-meta", values={"failure-timeout": "600", "migration-threshold": "3"})
        ],
    )
    cfg = m.Configuration(
        properties=[m.NvSet(id="cib-bootstrap-options", values={"stonith-enabled": "false"})],
        nodes=[m.Node(id=n, uname=n) for n in ("n1", "n2", "n3")],
        resources=[
            vip,
            m.Group(id="web", children=[dummy("fs"), dummy("httpd")]),
            m.Clone(id="ping-clone", child=dummy("ping")),
        ],
    )
    failure = m.OpRecord(
        id="vip_last_failure_0",
        operation="monitor",
        call_id=3,
        rc=7,
        interval=10_000,
        exit_reason="not running",
        transition_key="1:3:0:t",
        last_rc_change=FAILED_AT,
        on_node="n1",
    )
    n1 = _member(
        "n1",
        _history("vip", "n1", 4, failure),
        _history("fs", "n1", 5),
        _history("httpd", "n1", 6),
        attrs={"fail-count-vip#monitor_10000": "1", "last-failure-vip#monitor_10000": str(FAILED_AT)},
    )
    return m.Cib(
        epoch=7,
        num_updates=2,
        configuration=cfg,
        status=m.Status(nodes=[n1, _member("n2"), _member("n3")]),
    )


@dataclass
class Served:
    socket: Path
    fake: FakeCluster
    loop: asyncio.AbstractEventLoop
    token: str | None  # an admin token when the tests do not run as root (root needs none on the socket)

    def run(self, *args: str, input: str | None = None) -> Result:
        """``hakeeper ARGS --socket <the test socket>`` (the socket given through the environment)."""
        runner = CliRunner()
        env = {"HAKEEPER_SOCKET": str(self.socket), "HAKEEPER_URL": None, "HAKEEPER_TOKEN": self.token}
        return runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=False)

    def call(self, func: object) -> None:
        """Run ``func()`` on the server's loop (the fake cluster is not thread-safe)."""
        assert callable(func)
        asyncio.run_coroutine_threadsafe(_call(func), self.loop).result(10)


async def _call(func: object) -> None:
    assert callable(func)
    func()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    from hakeeper.cli.main import _register

    if "status" not in cli.commands:
        _register()
    fake = FakeCluster(sample_cib(), cluster_name="testcluster", now=NOW)
    fake.publish("cluster", "the cluster started")
    store = TokenStore(tmp_path / TOKENS_FILE)
    token = None if os.getuid() == 0 else store.create("cli-tests", Role.ADMIN, NOW)
    app = build_app(Services(handle=fake, tokens=store, audit=AuditLog(tmp_path / "audit.jsonl")))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    path = tmp_path / "api.sock"
    running = asyncio.run_coroutine_threadsafe(start_unix(app, path), loop).result(20)
    try:
        yield Served(path, fake, loop, token)
    finally:
        asyncio.run_coroutine_threadsafe(running.stop(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
