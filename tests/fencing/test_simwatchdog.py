"""The simulated watchdog: its decision in virtual time, and the real process against a process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakeeper.cli.localcluster import wait_until
from hakeeper.fencing.simwatchdog import PetFile, SimWatchdogCore

pytestmark = pytest.mark.timeout(120)


def test_not_armed_until_the_first_pet() -> None:
    core = SimWatchdogCore(1.0)
    assert not core.observe(None, 0.0)
    assert not core.observe(None, 100.0)
    assert not core.armed


def test_fires_a_timeout_after_the_last_pet() -> None:
    core = SimWatchdogCore(1.0)
    assert not core.observe("pet 1\n", 10.0)
    assert not core.observe("pet 2\n", 10.8)
    assert not core.observe("pet 2\n", 11.7)  # unchanged content is no pet
    assert core.observe("pet 2\n", 11.8)
    assert core.fired
    assert not core.observe("pet 3\n", 12.0)  # fires once


def test_magic_close_disarms_and_a_pet_rearms() -> None:
    core = SimWatchdogCore(1.0)
    core.observe("pet 1\n", 0.0)
    assert not core.observe("V", 0.5)
    assert not core.observe("V", 50.0)
    assert not core.observe("pet 2\n", 60.0)
    assert core.observe("pet 2\n", 61.0)


def test_a_positive_timeout_is_required() -> None:
    with pytest.raises(ValueError, match="positive"):
        SimWatchdogCore(0)


def test_pet_file_writes_changing_pets_and_the_magic_close(tmp_path: Path) -> None:
    path = tmp_path / "pet"
    pets = PetFile(path)
    pets.pet()
    assert not path.exists()  # not open: nothing written
    pets.open(5)
    first = path.read_text()
    pets.pet()
    assert path.read_text() != first
    pets.disarm()
    assert path.read_text() == "V"


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A process group standing for a node (a shell with a child)."""
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & wait"], start_new_session=True)
    yield proc
    with contextlib.suppress(ProcessLookupError):  # the whole group: the shell's child too
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def watchdog(pet_file: Path, pgid: int, timeout: float) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "hakeeper.fencing.simwatchdog", "--timeout", str(timeout)]
    argv += ["--pet-file", str(pet_file), "--kill-pgid", str(pgid)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def test_the_process_kills_the_group_once_pets_stop(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    pet_file = tmp_path / "pet"
    dog = watchdog(pet_file, victim.pid, 1.0)
    try:
        pets = PetFile(pet_file)
        pets.open(1)
        for _ in range(10):  # petted every 0.2 s for 2 s: twice the timeout, the node lives
            time.sleep(0.2)
            pets.pet()
        assert victim.poll() is None and dog.poll() is None
        pets.abandon()  # the daemon hangs
        assert wait_until(lambda: victim.poll() is not None, 60)
        assert victim.returncode == -9
        out, _ = dog.communicate(timeout=30)
        assert "reset the node" in out and f"process group {victim.pid}" in out
    finally:
        dog.kill()
        dog.wait()


def test_the_magic_close_spares_the_node(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    pet_file = tmp_path / "pet"
    dog = watchdog(pet_file, victim.pid, 0.5)
    try:
        pets = PetFile(pet_file)
        pets.open(1)
        pets.disarm()
        time.sleep(2.0)  # four timeouts without a pet: a disarmed watchdog does nothing
        assert victim.poll() is None and dog.poll() is None
    finally:
        dog.terminate()
        dog.wait()


def test_bad_arguments_are_refused_with_a_sentence(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "hakeeper.fencing.simwatchdog", "--timeout", "0"]
    argv += ["--pet-file", str(tmp_path / "p"), "--kill-pgid", "1"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and "--timeout must be more than 0" in proc.stderr
