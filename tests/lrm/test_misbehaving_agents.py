"""Agents that hang, fork, flood, return nonsense or are missing: the LRM stays in control."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hakeeper.agents.base import Invocation
from hakeeper.agents.registry import AgentRegistry, RegistryPaths
from hakeeper.lrm.executor import run_invocation
from hakeeper.lrm.messages import OpRequest, OpStatus
from hakeeper.lrm.service import RESULT_OUTPUT_LIMIT, LocalResourceManager, LrmConfig


def write_agent(root: Path, name: str, body: str, mode: int = 0o755) -> Path:
    path = root / "resource.d" / "test" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture
async def test_lrm(tmp_path: Path) -> AsyncIterator[LocalResourceManager]:
    registry = AgentRegistry(RegistryPaths(ocf_root=str(tmp_path / "ocf")))
    config = LrmConfig(node_name="node1", run_dir=str(tmp_path / "lrm"))
    async with LocalResourceManager(config, registry) as manager:
        yield manager


def op(name: str, operation: str = "start", **kw: object) -> OpRequest:
    return OpRequest(resource_id="r", agent=f"ocf:test:{name}", operation=operation, **kw)  # type: ignore[arg-type]


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie awaiting its new parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


async def wait_gone(pid: int) -> bool:
    for _ in range(100):
        if process_gone(pid):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_hung_agent_times_out_and_its_whole_group_dies(
    test_lrm: LocalResourceManager, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    write_agent(
        tmp_path / "ocf",
        "hang",
        f"sleep 1000 & echo $! > {pids}.child\n(sleep 1000 & echo $! > {pids}.grandchild; wait) &\n"
        "echo $$ > " + f"{pids}.agent\n" + "echo about to hang\nsleep 1000\n",
    )
    result = await test_lrm.run(op("hang", timeout_ms=1000))
    assert (result.op_status, result.rc) == (OpStatus.TIMEOUT, 1)
    assert "timed out after 1s" in result.exit_reason
    assert "about to hang" in result.output
    for kind in ("agent", "child", "grandchild"):
        pid = int(Path(f"{pids}.{kind}").read_text())
        assert await wait_gone(pid), f"the {kind} (pid {pid}) survived the timeout"


async def test_daemon_holding_the_pipes_does_not_block_completion(
    test_lrm: LocalResourceManager, tmp_path: Path
) -> None:
    pidfile = tmp_path / "daemon.pid"
    write_agent(tmp_path / "ocf", "starter", f"sleep 60 &\necho $! > {pidfile}\necho started\nexit 0\n")
    result = await test_lrm.run(op("starter", timeout_ms=5000))
    assert (result.rc, result.op_status) == (0, OpStatus.DONE), result.exit_reason
    assert "started" in result.output
    daemon = int(pidfile.read_text())
    assert not process_gone(daemon), "a successful start must not kill what the agent started"
    os.kill(daemon, 9)


async def test_flood_of_output_is_bounded(tmp_path: Path) -> None:
    script = write_agent(
        tmp_path / "ocf",
        "flood",
        "head -c 10000000 /dev/zero | tr '\\0' x\necho 'ocf-exit-reason:flooded' >&2\n",
    )
    raw = await run_invocation(Invocation([str(script), "start"], {"PATH": os.environ["PATH"]}), 30.0, 65536)
    assert raw.exit_code == 0 and raw.exit_reason == "flooded"
    assert len(raw.stdout) == 65536 and raw.dropped_bytes == 10_000_000 - 65536


async def test_stdin_is_fed_and_a_child_that_stops_reading_does_not_hang() -> None:
    env = {"PATH": os.environ["PATH"]}
    lines = b"action=off\nport=node2\n"
    raw = await run_invocation(Invocation(["cat"], env, stdin=lines), 10.0)
    assert (raw.exit_code, raw.stdout) == (0, lines.decode())
    big = b"x" * 5_000_000
    raw = await run_invocation(Invocation(["head", "-c", "10"], env, stdin=big), 10.0)
    assert (raw.exit_code, raw.stdout, raw.timed_out) == (0, "x" * 10, False)
    raw = await run_invocation(Invocation(["cat"], env), 10.0)
    assert (raw.exit_code, raw.stdout) == (0, "")  # no stdin given: /dev/null


async def test_flood_result_carries_only_an_excerpt(test_lrm: LocalResourceManager, tmp_path: Path) -> None:
    write_agent(tmp_path / "ocf", "flood", "head -c 10000000 /dev/zero | tr '\\0' x\nexit 0\n")
    result = await test_lrm.run(op("flood", timeout_ms=30_000))
    assert (result.rc, result.op_status) == (0, OpStatus.DONE)
    assert len(result.output) < RESULT_OUTPUT_LIMIT + 100
    assert result.output.startswith("[")  # "[N bytes of output dropped]"


@pytest.mark.parametrize("code", [137, 42, 255])
async def test_undefined_exit_code_is_a_generic_error(
    test_lrm: LocalResourceManager, tmp_path: Path, code: int
) -> None:
    write_agent(tmp_path / "ocf", "odd", f"echo 'ocf-exit-reason:it went wrong' >&2\nexit {code}\n")
    result = await test_lrm.run(op("odd", "monitor"))
    assert (result.rc, result.op_status, result.agent_exit_code) == (1, OpStatus.DONE, code)
    assert (
        result.exit_reason
        == f"it went wrong (agent exited with undefined code {code} (treated as a generic error))"
    )


async def test_agent_killed_by_a_signal_is_an_error(test_lrm: LocalResourceManager, tmp_path: Path) -> None:
    write_agent(tmp_path / "ocf", "suicide", "kill -9 $$\n")
    result = await test_lrm.run(op("suicide"))
    assert (result.rc, result.op_status, result.agent_exit_code) == (1, OpStatus.ERROR, None)
    assert "SIGKILL" in result.exit_reason


async def test_missing_agent_is_not_installed(test_lrm: LocalResourceManager) -> None:
    result = await test_lrm.run(op("nothere"))
    assert (result.rc, result.op_status) == (5, OpStatus.NOT_INSTALLED)
    assert "is not installed on this node" in result.exit_reason and "nothere" in result.exit_reason


async def test_non_executable_agent_is_not_installed(test_lrm: LocalResourceManager, tmp_path: Path) -> None:
    path = write_agent(tmp_path / "ocf", "noexec", "exit 0\n", mode=0o644)
    result = await test_lrm.run(op("noexec"))
    assert (result.rc, result.op_status) == (5, OpStatus.NOT_INSTALLED)
    assert "not executable" in result.exit_reason and str(path) in result.exit_reason
    assert not path.stat().st_mode & stat.S_IXUSR


async def test_broken_interpreter_is_not_installed(test_lrm: LocalResourceManager, tmp_path: Path) -> None:
    path = write_agent(tmp_path / "ocf", "badshebang", "exit 0\n")
    path.write_text("#!/nonexistent/interpreter\nexit 0\n", encoding="utf-8")
    result = await test_lrm.run(op("badshebang"))
    assert (result.rc, result.op_status) == (5, OpStatus.NOT_INSTALLED)
    assert "cannot be run here" in result.exit_reason


async def test_shell_metacharacters_in_parameters_are_passed_verbatim(
    test_lrm: LocalResourceManager, tmp_path: Path
) -> None:
    canary = tmp_path / "injected"
    nasty = f"a'b\"c; touch {canary}; $(touch {canary}) `touch {canary}` | & > < * ? \\ $HOME\nline2 ${{x}}"
    out = tmp_path / "seen"
    write_agent(tmp_path / "ocf", "echoer", f"printf '%s' \"$OCF_RESKEY_value\" > {out}\nexit 0\n")
    result = await test_lrm.run(op("echoer", params={"value": nasty}))
    assert result.rc == 0
    assert out.read_text(encoding="utf-8") == nasty
    assert not canary.exists()


async def test_unknown_agent_class_is_a_configuration_error(test_lrm: LocalResourceManager) -> None:
    result = await test_lrm.run(OpRequest(resource_id="r", agent="upstart:foo", operation="start"))
    assert (result.rc, result.op_status) == (6, OpStatus.ERROR_FATAL)
    assert "unknown agent class" in result.exit_reason


class _BrokenRegistry(AgentRegistry):
    def resolve(self, name: object) -> object:  # type: ignore[override]
        raise RuntimeError("boom")


async def test_an_internal_error_is_reported_and_does_not_wedge_the_resource(tmp_path: Path) -> None:
    config = LrmConfig(node_name="node1", run_dir=str(tmp_path / "lrm"))
    async with LocalResourceManager(config, _BrokenRegistry()) as lrm:
        first = await lrm.run(op("x"))
        second = await lrm.run(op("x", "stop"))
    assert (first.op_status, first.exit_reason) == (OpStatus.ERROR, "internal LRM error: boom")
    assert second.op_status == OpStatus.ERROR


async def test_too_long_run_dir_is_refused_with_a_sentence(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    with pytest.raises(ValueError, match="too deep for a Unix socket path"):
        await LocalResourceManager(LrmConfig(node_name="n", run_dir=str(deep))).start()
