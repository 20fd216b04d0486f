"""The built-in dummy and process agents, run through the LRM like any other agent."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hakeeper.lrm.messages import OpRequest, OpResult, OpStatus
from hakeeper.lrm.service import LocalResourceManager, LrmConfig


@pytest.fixture
async def lrm(tmp_path: Path) -> AsyncIterator[LocalResourceManager]:
    config = LrmConfig(node_name="node1", run_dir=str(tmp_path / "lrm"))
    async with LocalResourceManager(config) as manager:
        yield manager


async def run(
    lrm: LocalResourceManager, agent: str, operation: str, params: dict[str, str], **kw: object
) -> OpResult:
    req = OpRequest(resource_id="r", agent=f"ocf:hakeeper:{agent}", operation=operation, params=params, **kw)  # type: ignore[arg-type]
    return await lrm.run(req)


async def test_dummy_lifecycle_with_promotion(lrm: LocalResourceManager, tmp_path: Path) -> None:
    params = {"state": str(tmp_path / "d.state")}
    ops = ("monitor", "start", "monitor", "promote", "monitor", "demote", "monitor", "stop", "monitor")
    rcs = [(await run(lrm, "dummy", op, params)).rc for op in ops]
    assert rcs == [7, 0, 0, 0, 8, 0, 0, 0, 7]


async def test_dummy_configured_failure_and_delay(lrm: LocalResourceManager, tmp_path: Path) -> None:
    params = {"state": str(tmp_path / "d.state"), "fail_action": "start", "fail_rc": "6"}
    result = await run(lrm, "dummy", "start", params)
    assert (result.rc, result.exit_reason) == (6, "configured to fail start with 6")
    slow = await run(lrm, "dummy", "start", {"state": str(tmp_path / "s"), "delay": "5"}, timeout_ms=500)
    assert slow.op_status == OpStatus.TIMEOUT
    bad = await run(lrm, "dummy", "start", {"delay": "soon"})
    assert bad.rc == 6 and "must be a number" in bad.exit_reason


async def test_dummy_unknown_action_is_unimplemented(lrm: LocalResourceManager) -> None:
    result = await run(lrm, "dummy", "frobnicate", {})
    assert result.rc == 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_process_with_http_health_check(lrm: LocalResourceManager, tmp_path: Path) -> None:
    port = free_port()
    pidfile = tmp_path / "web.pid"
    params = {
        "command": f"{sys.executable} -m http.server {port} --bind 127.0.0.1",
        "pidfile": str(pidfile),
        "workdir": str(tmp_path),
        "health_http": f"http://127.0.0.1:{port}/",
        "health_timeout": "1",
    }
    assert (await run(lrm, "process", "monitor", params)).rc == 7
    start = await run(lrm, "process", "start", params, timeout_ms=20_000)
    assert start.rc == 0, start.exit_reason
    assert (await run(lrm, "process", "monitor", params)).rc == 0
    pid = int(pidfile.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    dead = await run(lrm, "process", "monitor", params, interval_ms=0)
    assert dead.rc == 7
    assert (await run(lrm, "process", "start", params, timeout_ms=20_000)).rc == 0
    new_pid = int(pidfile.read_text().split()[0])
    assert new_pid != pid
    assert (await run(lrm, "process", "stop", params)).rc == 0
    assert not pidfile.exists()
    assert (await run(lrm, "process", "monitor", params)).rc == 7


async def test_process_environment_tcp_check_and_stubborn_stop(
    lrm: LocalResourceManager, tmp_path: Path
) -> None:
    port = free_port()
    out = tmp_path / "env.txt"
    script = (
        "import os, signal, socket, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(out)!r}, 'w').write(os.environ['GREETING'])\n"
        f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen()\n"
        "time.sleep(1000)\n"
    )
    (tmp_path / "stubborn.py").write_text(script)
    params = {
        "command": f"{sys.executable} {tmp_path / 'stubborn.py'}",
        "pidfile": str(tmp_path / "p.pid"),
        "environment": "GREETING='hello; $(world)'",
        "health_tcp": f"127.0.0.1:{port}",
        "stop_grace": "0.5",
    }
    start = await run(lrm, "process", "start", params)
    assert start.rc == 0, start.exit_reason
    assert out.read_text() == "hello; $(world)"
    pid = int((tmp_path / "p.pid").read_text().split()[0])
    stop = await run(lrm, "process", "stop", params)
    assert stop.rc == 0, stop.exit_reason
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


async def test_process_that_dies_at_once_fails_start(lrm: LocalResourceManager, tmp_path: Path) -> None:
    params = {"command": "sh -c 'exit 3'", "pidfile": str(tmp_path / "p.pid")}
    result = await run(lrm, "process", "start", params)
    assert result.rc == 1 and "exited right after start (exit code 3)" in result.exit_reason
    missing = await run(
        lrm, "process", "start", {"command": "/nonexistent/daemon", "pidfile": str(tmp_path / "q")}
    )
    assert missing.rc == 5 and "could not start /nonexistent/daemon" in missing.exit_reason
    unset = await run(lrm, "process", "start", {})
    assert unset.rc == 6 and "'command'" in unset.exit_reason
