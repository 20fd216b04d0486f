"""Watchdog self-fencing: the cores in virtual time, and the shell with a simulated watchdog."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from hakeeper.fencing.watchdog import (
    DeviceWatchdog,
    PeerWatchdogTracker,
    Pet,
    SelfFencer,
    SelfReset,
    SelfState,
    SimulatedWatchdog,
    StopResources,
    WatchdogDriver,
)


def state_of(core: SelfFencer) -> SelfState:
    return core.state


def run_until(core: SelfFencer, end: float, start: float = 0.0) -> list[tuple[float, object]]:
    """Drive ``core`` at its own deadlines until ``end``; return (time, output) pairs."""
    seen: list[tuple[float, object]] = []
    now = start
    while (deadline := core.next_deadline()) is not None and deadline <= end:
        now = deadline
        seen += [(now, o) for o in core.tick(now)]
    return seen


def test_healthy_node_pets_at_a_third_of_the_timeout() -> None:
    core = SelfFencer(6.0)
    assert core.start(0.0) == [Pet()]
    pets = [t for t, o in run_until(core, 10.0) if isinstance(o, Pet)]
    assert pets == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_quorum_loss_stops_resources_and_resets_if_they_do_not_stop_in_time() -> None:
    core = SelfFencer(6.0)
    core.start(0.0)
    out = core.quorum_lost(1.0)
    assert out[0] == StopResources(reason="this node lost quorum")
    seen = run_until(core, 100.0)
    resets = [(t, o) for t, o in seen if isinstance(o, SelfReset)]
    assert resets == [
        (7.0, SelfReset(reason="quorum lost and resources not stopped within the 6s watchdog timeout"))
    ]
    assert all(t < 7.0 for t, o in seen if isinstance(o, Pet))  # no pet after the reset decision
    assert core.state is SelfState.RESET and core.next_deadline() is None
    assert core.tick(200.0) == [] and core.quorum_regained(200.0) == []


def test_resources_stopped_in_time_keep_the_node_up_and_petting() -> None:
    core = SelfFencer(6.0)
    core.start(0.0)
    core.quorum_lost(1.0)
    core.resources_stopped(5.0)
    assert core.state is SelfState.STOPPED
    seen = run_until(core, 60.0)
    assert not any(isinstance(o, SelfReset) for _, o in seen)
    assert max(t for t, o in seen if isinstance(o, Pet)) >= 58.0
    core.quorum_regained(61.0)
    assert state_of(core) is SelfState.HEALTHY


def test_a_stop_reported_too_late_does_not_cancel_the_reset() -> None:
    core = SelfFencer(6.0)
    core.start(0.0)
    core.quorum_lost(0.0)
    assert isinstance(core.resources_stopped(6.0)[0], SelfReset)


def test_quorum_regained_before_the_deadline_cancels_the_reset() -> None:
    core = SelfFencer(6.0)
    core.start(0.0)
    core.quorum_lost(0.0)
    core.quorum_regained(3.0)
    assert not any(isinstance(o, SelfReset) for _, o in run_until(core, 30.0))


def test_quorate_side_waits_the_watchdog_timeout_while_quorate() -> None:
    tracker = PeerWatchdogTracker(10.0, origin="node1")
    tracker.set_quorate(True, 0.0)
    tracker.node_lost("node3", 2.0, wall=1_700_000_002)
    assert tracker.tick(11.9) == []
    assert tracker.next_deadline() == 12.0
    [fenced] = tracker.tick(12.0, wall=1_700_000_012)
    assert fenced.node == "node3"
    event = fenced.event
    assert (event.state, event.device, event.origin, event.requested, event.completed) == (
        "done",
        "watchdog",
        "node1",
        1_700_000_002,
        1_700_000_012,
    )
    assert tracker.tick(50.0) == []


def test_time_without_quorum_does_not_count() -> None:
    tracker = PeerWatchdogTracker(10.0, origin="node1")
    tracker.set_quorate(True, 0.0)
    tracker.node_lost("node3", 0.0)
    tracker.set_quorate(False, 5.0)
    assert tracker.tick(20.0) == [] and tracker.next_deadline() is None
    tracker.set_quorate(True, 20.0)
    assert tracker.tick(29.0) == []
    assert [f.node for f in tracker.tick(30.0)] == ["node3"]


def test_a_node_that_comes_back_is_not_counted_as_fenced() -> None:
    tracker = PeerWatchdogTracker(10.0, origin="node1")
    tracker.set_quorate(True, 0.0)
    tracker.node_lost("node3", 0.0)
    tracker.node_seen("node3")
    assert tracker.tick(100.0) == []


def test_bad_timeouts_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        SelfFencer(0)
    with pytest.raises(ValueError, match="stonith-watchdog-timeout"):
        PeerWatchdogTracker(0, origin="n")


def node_processes() -> subprocess.Popen[bytes]:
    """A stand-in for a node: a process group that a reset must end."""
    return subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"], start_new_session=True)


async def wait_exit(proc: subprocess.Popen[bytes], limit_s: float = 5.0) -> int | None:
    for _ in range(int(limit_s / 0.02)):
        if proc.poll() is not None:
            return proc.returncode
        await asyncio.sleep(0.02)
    return None


async def test_simulated_watchdog_resets_a_node_whose_resources_will_not_stop() -> None:
    proc = node_processes()
    try:
        watchdog = SimulatedWatchdog(proc.pid, timeout_s=0.3)
        stuck = asyncio.Event()
        driver = WatchdogDriver(SelfFencer(0.3), watchdog, stop_resources=stuck.wait)
        task = asyncio.create_task(driver.run())
        await asyncio.sleep(0.2)
        assert proc.poll() is None and not watchdog.fired  # petted: alive
        driver.quorum_lost()
        await asyncio.wait_for(task, timeout=5)
        assert "not stopped within" in driver.reset_reason
        assert await wait_exit(proc) == -9
        assert watchdog.fired
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


class CountingWatchdog(SimulatedWatchdog):
    pets = 0

    def pet(self) -> None:
        self.pets += 1
        super().pet()


async def test_a_node_that_stops_its_resources_in_time_survives() -> None:
    proc = node_processes()
    stopped = []

    async def stop() -> None:
        stopped.append(True)

    watchdog = CountingWatchdog(proc.pid, timeout_s=0.3)
    driver = WatchdogDriver(SelfFencer(0.3), watchdog, stop_resources=stop)
    task = asyncio.create_task(driver.run())
    try:
        await asyncio.sleep(0.05)
        driver.quorum_lost()
        await asyncio.sleep(1.0)  # more than three watchdog timeouts
        assert stopped == [True] and driver.core.state is SelfState.STOPPED
        assert proc.poll() is None and not watchdog.fired
        assert 3 <= watchdog.pets <= 40  # every 0.1 s: petted, and no busy loop
    finally:
        task.cancel()
        watchdog.disarm()
        proc.kill()
        proc.wait()


async def test_a_hung_daemon_stops_petting_and_is_reset() -> None:
    proc = node_processes()
    try:
        watchdog = SimulatedWatchdog(proc.pid, timeout_s=0.3)
        driver = WatchdogDriver(SelfFencer(0.3), watchdog, stop_resources=asyncio.sleep)  # type: ignore[arg-type]
        task = asyncio.create_task(driver.run())
        await asyncio.sleep(0.1)
        task.cancel()  # the daemon's loop stops: nobody pets any more
        assert await wait_exit(proc) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_device_watchdog_pets_and_disarms_a_file(tmp_path: object) -> None:
    # Never a real /dev/watchdog in tests: an armed, unpetted watchdog resets the machine.
    path = f"{tmp_path}/watchdog"
    open(path, "wb").close()
    dev = DeviceWatchdog(path)
    assert DeviceWatchdog.present(path)
    dev.open(5)  # the timeout ioctl fails on a file and is ignored
    dev.pet()
    dev.pet()
    dev.disarm()
    with open(path, "rb") as handle:
        assert handle.read() == b"\0\0V"
