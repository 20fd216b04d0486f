"""Real agents through our runner: Debian's fence_dummy, and agents that hang, fail or print garbage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hakeeper.fencing.agent import AgentError, AgentRunner, agent_metadata, run_agent
from hakeeper.fencing.devices import FenceDevice

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("fence_dummy", path="/usr/sbin:/sbin:/usr/bin") is None,
        reason="fence-agents (fence_dummy) is not installed",
    ),
]


def dummy(tmp_path: Path, **params: str) -> FenceDevice:
    return FenceDevice(
        id="dummy",
        agent="fence_dummy",
        params={"type": "file", "status_file": str(tmp_path / "power"), **params},
    )


async def test_fence_dummy_off_status_on_cycle(tmp_path: Path) -> None:
    dev = dummy(tmp_path)
    (tmp_path / "power").write_text("on")
    before = await run_agent(dev, "status", "node1")
    assert before.ok and before.power == "on"
    off = await run_agent(dev, "off", "node1")
    assert off.ok, off.reason
    assert (tmp_path / "power").read_text() == "off"
    after = await run_agent(dev, "status", "node1")
    assert after.ok and after.power == "off"
    on = await run_agent(dev, "on", "node1")
    assert on.ok, on.reason
    assert (tmp_path / "power").read_text() == "on"
    assert (await run_agent(dev, "reboot", "node1")).ok
    assert (await run_agent(dev, "monitor")).ok


async def test_fence_dummy_has_no_list_action_and_says_so(tmp_path: Path) -> None:
    result = await run_agent(dummy(tmp_path), "list")
    assert not result.ok
    assert "Unrecognised action 'list'" in result.reason


async def test_fence_dummy_metadata_parses(tmp_path: Path) -> None:
    meta = await agent_metadata("fence_dummy")
    assert meta.name == "fence_dummy"
    assert {"off", "on", "reboot", "status", "monitor"} <= meta.actions
    assert "status_file" in meta.parameters
    assert meta.host_argument == "none"  # fence_dummy takes no port


async def test_fence_dummy_fail_type_fails_off(tmp_path: Path) -> None:
    dev = FenceDevice(id="dummy", agent="fence_dummy", params={"type": "fail", "power_timeout": "1"})
    result = await run_agent(dev, "off", "node1", timeout_s=20)
    assert not result.ok
    assert "exit code 1" in result.reason and "Timed out waiting to power OFF" in result.reason


def write_agent(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)


async def test_parameters_arrive_on_stdin_and_not_on_the_command_line(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    write_agent(tmp_path, "fence_echo", f'cat > {seen}; echo "$#" >> {seen}; env >> {seen}\nexit 0\n')
    dev = FenceDevice(id="e", agent="fence_echo", params={"password": "s3cret"}, host_map={"node2": "7"})
    result = await run_agent(dev, "off", "node2", search_path=[str(tmp_path)])
    assert result.ok, result.reason
    text = seen.read_text()
    stdin, rest = text.split("\n0\n", 1)  # "$#" is 0: no arguments, so the agent reads stdin
    assert stdin.splitlines() == ["action=off", "nodename=node2", "port=7", "password=s3cret"]
    assert "s3cret" not in rest  # not in the agent's environment either


async def test_hanging_agent_is_killed_at_its_timeout(tmp_path: Path) -> None:
    write_agent(tmp_path, "fence_hang", "sleep 60 & wait\n")
    dev = FenceDevice(id="h", agent="fence_hang", timeouts_ms={"off": 300})
    result = await run_agent(dev, "off", "node1", search_path=[str(tmp_path)])
    assert not result.ok and result.timed_out
    assert "did not finish within 0.3s" in result.reason


async def test_agent_exit_one_is_a_failure_with_its_message(tmp_path: Path) -> None:
    write_agent(
        tmp_path, "fence_broken", "cat >/dev/null; echo 'Failed: Unable to connect/login' >&2; exit 1\n"
    )
    result = await run_agent(
        FenceDevice(id="b", agent="fence_broken"), "reboot", "n1", search_path=[str(tmp_path)]
    )
    assert not result.ok
    assert result.reason.endswith("Failed: Unable to connect/login")


async def test_garbage_output_is_rejected(tmp_path: Path) -> None:
    write_agent(tmp_path, "fence_garbage", "cat >/dev/null; printf '\033[31m\001\002garbage\377\n'; exit 0\n")
    dev = FenceDevice(id="g", agent="fence_garbage")
    listed = await run_agent(dev, "list", search_path=[str(tmp_path)])
    assert not listed.ok and "not a list of ports" in listed.reason
    with pytest.raises(AgentError, match="metadata"):
        await agent_metadata("fence_garbage", search_path=[str(tmp_path)])


async def test_missing_agent_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    result = await run_agent(
        FenceDevice(id="m", agent="fence_missing"), "off", "n", search_path=[str(tmp_path)]
    )
    assert not result.ok and "not installed" in result.reason


async def test_runner_uses_cached_metadata_for_the_host_argument(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    write_agent(
        tmp_path,
        "fence_plugged",
        f"""cat > {seen}.in
if grep -q '^action=metadata' {seen}.in; then
echo meta >> {seen}.meta
cat <<'XML'
<resource-agent name="fence_plugged"><parameters><parameter name="plug"/></parameters>
<actions><action name="off"/></actions></resource-agent>
XML
else cp {seen}.in {seen}; echo run >> {seen}.count
fi
exit 0
""",
    )
    runner = AgentRunner(search_path=[str(tmp_path)])
    dev = FenceDevice(id="p", agent="fence_plugged", host_map={"node1": "outlet-1"})
    assert (await runner.run(dev, "off", "node1")).ok
    assert seen.read_text().splitlines() == ["action=off", "nodename=node1", "plug=outlet-1"]
    assert (await runner.run(dev, "off", "node1")).ok
    assert (await runner.metadata("fence_plugged")) is not None
    assert (tmp_path / "seen.count").read_text() == "run\nrun\n"
    assert (tmp_path / "seen.meta").read_text() == "meta\n"  # metadata read once
    broken = await runner.run(FenceDevice(id="m", agent="fence_missing"), "off", "node1")
    assert not broken.ok and "fence_missing" in runner.metadata_errors
