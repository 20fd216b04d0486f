"""The fencer core driven by a tiny shell that runs real agents (Debian's fence_dummy) as RunDevice asks."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from pathlib import Path

import pytest

from hakeeper.cib.model import FenceEvent, FencingLevel
from hakeeper.fencing.agent import run_agent
from hakeeper.fencing.devices import FenceDevice, FencingOptions
from hakeeper.fencing.fencer import Backoff, Fencer, FencingFinished, Output, RecordEvent, RunDevice

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("fence_dummy", path="/usr/sbin:/sbin") is None, reason="fence_dummy missing"
    ),
]


async def drive(
    fencer: Fencer, devices: dict[str, FenceDevice], first: list[Output]
) -> tuple[list[FenceEvent], FencingFinished]:
    """Run every RunDevice through the real agent, feed results back, until the request finishes."""
    history: list[FenceEvent] = []
    pending = list(first)
    while True:
        for out in pending:
            if isinstance(out, RecordEvent):
                history.append(out.event)
            if isinstance(out, FencingFinished):
                return history, out
        runs = [o for o in pending if isinstance(o, RunDevice)]
        pending = []
        for run in runs:
            result = await run_agent(devices[run.device], run.action, run.target, timeout_s=run.timeout_s)
            pending += fencer.result(run.attempt_id, result.ok, time.monotonic(), reason=result.reason)
        if not runs and not pending:
            deadline = fencer.next_deadline()
            assert deadline is not None, "the fencer stalled"
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            pending = fencer.tick(time.monotonic())


async def test_first_level_fails_second_level_fences_and_history_says_so(tmp_path: Path) -> None:
    power = tmp_path / "node2.power"
    power.write_text("on")
    devices = {
        "broken": FenceDevice(
            id="broken",
            agent="fence_dummy",
            host_list=("node2",),
            params={"type": "fail", "power_timeout": "1"},
            retries={"off": 1},
        ),
        "dummy": FenceDevice(
            id="dummy",
            agent="fence_dummy",
            host_list=("node2",),
            params={"type": "file", "status_file": str(power)},
        ),
    }
    topology = [
        FencingLevel(id="fl-1", index=1, devices=["broken"], target="node2"),
        FencingLevel(id="fl-2", index=2, devices=["dummy"], target="node2"),
    ]
    fencer = Fencer(devices, topology, FencingOptions(), rng=random.Random(7), backoff=Backoff(base_s=0.05))
    fencer.set_members(["node1", "node2", "node3"], time.monotonic())
    history, finished = await drive(
        fencer, devices, fencer.request("node2", "off", "node1", time.monotonic())
    )
    assert finished.ok and finished.devices == ("dummy",)
    assert power.read_text() == "off"
    states = [(e.state, e.device, e.delegate) for e in history]
    assert states == [
        ("pending", None, None),
        ("failed", "broken", "node1"),
        ("failed", "broken", "node3"),  # the retry runs on another node
        ("done", "dummy", "node1"),
    ]
    assert "Timed out waiting to power OFF" in (history[1].reason or "")
    assert all(e.target == "node2" and e.origin == "node1" for e in history)
