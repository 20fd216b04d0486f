"""Watchdog self-fencing in the daemon: configuration, the shell over a pet file, and real daemons."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from hakeeper.cli.localcluster import LocalCluster, wait_until
from hakeeper.daemon.config import ConfigError, DaemonConfig, load_daemon_config
from hakeeper.daemon.selffence import SelfFenceError, SelfFencing, open_watchdog, stonith_watchdog_warning
from hakeeper.fencing.watchdog import SelfState
from tests.clusters import DUMMY, NODES, dummy_bootstrap, running

BASE = """
[cluster]
name = "c"
key_file = "k"
data_dir = "/tmp/x"

[[nodes]]
name = "n1"
id = 1
addresses = ["127.0.0.1:5405"]
"""


def config(fencing: str) -> DaemonConfig:
    return load_daemon_config(BASE + "\n[fencing]\n" + fencing)


def test_no_fencing_section_means_no_watchdog() -> None:
    cfg = load_daemon_config(BASE)
    assert not cfg.watchdog_enabled and cfg.watchdog_timeout_ms == 5000
    assert open_watchdog(cfg) is None


def test_a_device_and_its_timeout() -> None:
    cfg = config('watchdog = "/dev/watchdog"\nwatchdog_timeout = "10s"')
    assert cfg.watchdog_enabled and cfg.watchdog_device == Path("/dev/watchdog")
    assert cfg.watchdog_timeout_ms == 10_000 and cfg.simulated_watchdog is None


@pytest.mark.parametrize(
    ("fencing", "problem"),
    [
        ('watchdog = "/dev/watchdog"\nsimulated_watchdog = "/tmp/p"', "not both"),
        ('watchdog = "/dev/watchdog"\nwatchdog_timeout = "1500ms"', "whole seconds"),
        ('simulated_watchdog = "/tmp/p"\nwatchdog_timeout = "0s"', "longer than 0"),
        ('watchdog_timeout = "soon"', "fencing.watchdog_timeout"),
        ('watchdogs = "/dev/watchdog"', "watchdogs"),
    ],
)
def test_bad_fencing_settings_are_explained(fencing: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        config(fencing)


def test_a_missing_device_stops_the_daemon_with_a_sentence(tmp_path: Path) -> None:
    # Never the real /dev/watchdog in tests: a path that does not exist stands for a missing driver.
    cfg = msgspec.structs.replace(config('watchdog = "/dev/null"'), watchdog_device=tmp_path / "absent")
    with pytest.raises(SelfFenceError, match="must not run without one"):
        open_watchdog(cfg)


def test_stonith_watchdog_timeout_must_be_twice_the_nodes_watchdog() -> None:
    cfg = config('simulated_watchdog = "/tmp/p"\nwatchdog_timeout = "5s"')
    warning = stonith_watchdog_warning(cfg, "8s")
    assert warning is not None and "at least twice" in warning
    assert stonith_watchdog_warning(cfg, "10s") is None
    assert stonith_watchdog_warning(cfg, "-1") is not None  # "derive it": we need it set
    unset = stonith_watchdog_warning(cfg, "")
    assert unset is not None and "not set" in unset
    plain = config('watchdog_timeout = "5s"')  # no watchdog on this node
    assert stonith_watchdog_warning(plain, "") is None and stonith_watchdog_warning(plain, "0") is None
    missing = stonith_watchdog_warning(plain, "10s")
    assert missing is not None and "nothing resets it" in missing


def test_unsafe_no_quorum_policies_become_stop_only_with_a_watchdog() -> None:
    armed = SelfFencing(config('simulated_watchdog = "/tmp/p"'), "n1", lambda: 0)
    plain = SelfFencing(load_daemon_config(BASE), "n1", lambda: 0)
    for policy in ("freeze", "ignore", "demote"):
        assert armed.no_quorum_policy(policy) == "stop"
        assert plain.no_quorum_policy(policy) == policy
    assert armed.no_quorum_policy("suicide") == "suicide"
    assert armed.no_quorum_policy("") == "stop"


def shell(tmp_path: Path, active: list[int]) -> tuple[SelfFencing, Path]:
    pet = tmp_path / "pet"
    cfg = config(f'simulated_watchdog = "{pet}"\nwatchdog_timeout = "600ms"')
    return SelfFencing(cfg, "n1", lambda: active[0]), pet


async def pets_seen(pet: Path, seconds: float) -> set[str]:
    seen = set()
    for _ in range(int(seconds / 0.05)):
        seen.add(pet.read_text())
        await asyncio.sleep(0.05)
    return seen


def state(fencing: SelfFencing) -> SelfState:
    assert fencing.driver is not None
    return fencing.driver.core.state


async def test_losing_quorum_with_resources_that_stop_keeps_petting(tmp_path: Path) -> None:
    active = [2]
    fencing, pet = shell(tmp_path, active)
    fencing.open()
    task = asyncio.create_task(fencing.run())
    try:
        fencing.quorum_changed(True)
        fencing.quorum_changed(False)
        assert state(fencing) is SelfState.STOPPING
        active[0] = 0  # the member core's stops completed
        assert len(await pets_seen(pet, 1.5)) > 2  # still petted, well past the timeout
        assert state(fencing) is SelfState.STOPPED
        fencing.quorum_changed(True)
        assert state(fencing) is SelfState.HEALTHY
    finally:
        task.cancel()
        fencing.close()
    assert pet.read_text() == "V"


async def test_resources_that_will_not_stop_leave_the_watchdog_unpetted(tmp_path: Path) -> None:
    active = [1]
    fencing, pet = shell(tmp_path, active)
    fencing.open()
    task = asyncio.create_task(fencing.run())
    fencing.quorum_changed(True)
    fencing.quorum_changed(False)
    await asyncio.wait_for(task, 30)  # the core decided on a reset
    assert fencing.watchdog is None
    last = pet.read_text()
    assert last != "V" and await pets_seen(pet, 0.5) == {last}
    fencing.close()  # nothing to disarm any more: the reset stays on its way
    assert pet.read_text() == last


# --- real daemons: a hung daemon is reset, the others wait stonith-watchdog-timeout, then recover ------

WATCHDOG_S = 4  # generous: a busy CI machine must not stall a healthy daemon past it
STONITH_WATCHDOG_S = 8


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    watchdog = (
        f'stonith-enabled = true\nstonith-watchdog-timeout = "{STONITH_WATCHDOG_S}s"\nhave-watchdog = true'
    )
    bootstrap = dummy_bootstrap("watchdog").replace("stonith-enabled = false", watchdog)
    c = LocalCluster(tmp_path, NODES, bootstrap)
    c.config_text += (
        f'\n[fencing]\nsimulated_watchdog = "@DATA@/watchdog.pet"\nwatchdog_timeout = "{WATCHDOG_S}s"\n'
    )
    try:
        yield c
    finally:
        c.stop_all()


def start_watchdog(cluster: LocalCluster, node: str) -> subprocess.Popen[str]:
    """The node's simulated watchdog, killing the daemon's process group when not petted."""
    argv = [sys.executable, "-m", "hakeeper.fencing.simwatchdog", "--timeout", str(WATCHDOG_S)]
    argv += ["--pet-file", str(cluster.node_dir(node) / "watchdog.pet")]
    argv += ["--kill-pgid", str(cluster.procs[node].pid)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


@pytest.mark.integration
@pytest.mark.timeout(400)
@pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed")
def test_a_hung_node_is_reset_by_its_watchdog_and_recovered_after_the_wait(cluster: LocalCluster) -> None:
    from hakeeper.api.client import ApiClient
    from hakeeper.api.schemas import FencingList

    cluster.start_all()
    dogs = {n: start_watchdog(cluster, n) for n in NODES}
    try:
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
        (active,) = running(cluster, "web")
        hung = cluster.procs[active]
        os.kill(hung.pid, signal.SIGSTOP)  # the daemon hangs: nobody pets its watchdog
        assert wait_until(lambda: hung.poll() is not None, 90), cluster.logs()
        assert hung.returncode == -9  # the watchdog reset it
        out, _ = dogs[active].communicate(timeout=30)
        assert "reset the node" in out
        cluster.procs.pop(active)
        (cluster.node_dir(active) / "lrm" / "Dummy-web.state").unlink(missing_ok=True)  # a reboot's tmpfs
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 120), cluster.logs()
        (survivor,) = running(cluster, "web")
        with ApiClient(socket_path=cluster.node_dir(survivor) / "api.sock") as c:
            fencing = msgspec.json.decode(c.request("GET", "/v1/fencing"), type=FencingList)
            events = c.events().events
        done = [e for e in fencing.history if e.target == active and e.state == "done"]
        assert done and done[-1].device == "watchdog", fencing
        fenced = next(e for e in events if e.kind == "fencing" and e.node == active)
        left = [e for e in events if e.kind == "node" and e.node == active and e.id < fenced.id][-1]
        started = [e for e in events if e.kind == "resource" and e.rsc == "web" and e.node == survivor]
        assert started and min(e.id for e in started if e.task == "start") > fenced.id, events
        # the survivors waited stonith-watchdog-timeout after the loss before counting it fenced
        assert fenced.timestamp - left.timestamp >= STONITH_WATCHDOG_S - 1, (left, fenced)
        for node, dog in dogs.items():
            if node != active:
                assert dog.poll() is None  # the healthy nodes kept petting
    finally:
        for dog in dogs.values():
            dog.kill()
            dog.wait()
