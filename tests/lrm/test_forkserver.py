"""The built-in agents' fork server: forked actions behave exactly as fresh processes, and a broken or missing
server costs speed only, never a result."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hakeeper.agents.registry import AgentRegistry, RegistryPaths
from hakeeper.lrm.forkserver import ForkServerClient, ForkServerUnavailable
from hakeeper.lrm.messages import OpRequest, OpResult, OpStatus
from hakeeper.lrm.service import LocalResourceManager, LrmConfig


async def manager(tmp_path: Path, name: str, **config: object) -> LocalResourceManager:
    lrm = LocalResourceManager(LrmConfig(node_name="node1", run_dir=str(tmp_path / name), **config))  # type: ignore[arg-type]
    await lrm.start()
    return lrm


@pytest.fixture
async def warm(tmp_path: Path) -> AsyncIterator[LocalResourceManager]:
    lrm = await manager(tmp_path, "warm")
    yield lrm
    await lrm.close()


@pytest.fixture
async def cold(tmp_path: Path) -> AsyncIterator[LocalResourceManager]:
    lrm = await manager(tmp_path, "cold", warm_builtin_agents=False)
    yield lrm
    await lrm.close()


async def run(lrm: LocalResourceManager, operation: str, params: dict[str, str], **kw: object) -> OpResult:
    req = OpRequest(resource_id="r", agent="ocf:hakeeper:dummy", operation=operation, params=params, **kw)  # type: ignore[arg-type]
    return await lrm.run(req)


def spawned(lrm: LocalResourceManager) -> int:
    assert lrm.forkserver is not None
    return lrm.forkserver.spawned


async def test_actions_are_forked_and_match_fresh_processes(
    warm: LocalResourceManager, cold: LocalResourceManager, tmp_path: Path
) -> None:
    ops = ("monitor", "start", "monitor", "promote", "monitor", "demote", "stop", "monitor", "meta-data")
    results = {}
    for name, lrm in (("warm", warm), ("cold", cold)):
        params = {"state": str(tmp_path / f"{name}.state")}
        results[name] = [await run(lrm, op, params) for op in ops]
    assert spawned(warm) == len(ops)
    assert cold.forkserver is None
    assert [r.rc for r in results["warm"]] == [r.rc for r in results["cold"]] == [7, 0, 0, 0, 8, 0, 0, 7, 0]
    assert results["warm"][-1].output == results["cold"][-1].output
    assert '<resource-agent name="dummy"' in results["warm"][-1].output


async def test_exit_reasons_and_configuration_errors_survive_the_fork(warm: LocalResourceManager) -> None:
    failed = await run(warm, "start", {"fail_action": "start", "fail_rc": "6", "state": "/nonexistent/x"})
    assert (failed.rc, failed.exit_reason) == (6, "configured to fail start with 6")
    unknown = await run(warm, "frobnicate", {})
    assert unknown.rc == 3
    assert spawned(warm) == 2


async def test_a_forked_action_that_overruns_is_killed_with_its_group(
    warm: LocalResourceManager, tmp_path: Path
) -> None:
    state = tmp_path / "slow.state"
    slow = await run(warm, "start", {"state": str(state), "delay": "30"}, timeout_ms=500)
    assert slow.op_status == OpStatus.TIMEOUT
    assert not state.exists()
    assert spawned(warm) == 1


async def test_child_gets_its_own_session_directory_and_environment_only(tmp_path: Path) -> None:
    client = ForkServerClient()
    read_end, write_end = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        env = {"OCF_RESKEY_state": str(tmp_path / "s"), "OCF_RESKEY_delay": "30", "PATH": "/usr/bin:/bin"}
        pid = await client.spawn("dummy", "start", env, str(tmp_path), [devnull, write_end, write_end])
        assert os.getsid(pid) == pid and os.getpgid(pid) == pid
        assert os.readlink(f"/proc/{pid}/cwd") == str(tmp_path)
        os.killpg(pid, signal.SIGKILL)
        assert await asyncio.wait_for(client.exited(pid), 30) == -signal.SIGKILL
    finally:
        for fd in (read_end, write_end, devnull):
            os.close(fd)
        client.close()


async def test_server_killed_mid_action_loses_only_that_result(
    warm: LocalResourceManager, tmp_path: Path
) -> None:
    assert warm.forkserver is not None
    first = asyncio.create_task(
        run(warm, "start", {"state": str(tmp_path / "a"), "delay": "30"}, timeout_ms=60_000)
    )
    await wait_for(lambda: spawned(warm) == 1)
    process = warm.forkserver._process
    assert process is not None
    process.kill()
    lost = await asyncio.wait_for(first, 30)
    assert lost.op_status == OpStatus.ERROR and "result of start is unknown" in lost.exit_reason
    after = await run(warm, "start", {"state": str(tmp_path / "b")})
    assert after.rc == 0 and spawned(warm) == 2  # a new server forked it


async def test_no_server_means_fresh_processes(tmp_path: Path) -> None:
    registry = AgentRegistry(paths=RegistryPaths(python="/nonexistent/python3"))
    lrm = LocalResourceManager(LrmConfig(node_name="n", run_dir=str(tmp_path / "lrm")), registry)
    await lrm.start()
    try:
        result = await run(lrm, "monitor", {"state": str(tmp_path / "s")})
        # the fresh-process path uses the same (missing) interpreter, so the agent is "not installed"
        assert result.op_status == OpStatus.NOT_INSTALLED
        assert spawned(lrm) == 0
    finally:
        await lrm.close()


async def test_spawn_fails_cleanly_when_the_server_cannot_start() -> None:
    client = ForkServerClient(python="/nonexistent/python3")
    with pytest.raises(ForkServerUnavailable, match="could not start the fork server"):
        await client.spawn("dummy", "monitor", {}, "/", [0, 1, 2])
    client.close()


def test_bad_requests_are_answered_and_the_server_keeps_serving(tmp_path: Path) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server = subprocess.Popen(
        [sys.executable, "-m", "hakeeper.agents.builtin.forkserver", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
    )
    theirs.close()
    ours.settimeout(30)
    streams = [os.open(os.devnull, os.O_RDWR) for _ in range(3)]
    try:

        def request(**fields: object) -> bytes:
            base: dict[str, object] = {"id": 1, "type": "dummy", "action": "monitor", "env": {}, "cwd": "/"}
            return json.dumps(base | fields).encode()

        bad: list[tuple[bytes, list[int], str]] = [
            (b"not json", streams, "could not start the action"),
            (b"[1, 2]", streams, "a request is a JSON object"),
            (request(type="nope"), streams, "there is no built-in agent 'nope'"),
            (request(env={"A": 1}), streams, "env must map names to strings"),
            (request(), streams[:1], "expected 3 file descriptors"),
            (request(cwd="/no/such"), streams, "no directory /no/such"),
        ]
        for data, fds, why in bad:
            socket.send_fds(ours, [data], fds)
            assert why in json.loads(ours.recv(65536))["error"]
        socket.send_fds(ours, [request(env={"OCF_RESKEY_state": str(tmp_path / "s")})], streams)
        messages = [json.loads(ours.recv(65536)) for _ in range(2)]
        pid = messages[0]["pid"]
        assert messages[1] == {"pid": pid, "status": 7 << 8}  # monitor of a stopped dummy: rc 7
    finally:
        for fd in streams:
            os.close(fd)
        ours.close()
    assert server.wait(timeout=30) == 0  # our end closed: the server leaves


async def wait_for(condition: object, timeout: float = 30.0) -> None:
    assert callable(condition)
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")
