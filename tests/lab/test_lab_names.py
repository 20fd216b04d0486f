"""Which prefix and subnets a lab gets, so that labs of concurrent processes never share them (no root).

The registry is exercised on a temporary directory; its liveness rule (a pid together with its start
time) is checked with this test process's own pid and a start time that is not its own (a reused pid).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hakeeper.cli.lab import (
    IFNAMSIZ,
    SLOTS,
    LabCluster,
    LabError,
    LabRegistry,
    LabSlot,
    check_prefix,
    choose_slot,
    describe_exit,
    log_tail,
    longest_interface_name,
    process_start,
    slot_prefix,
)

ME = os.getpid()


def slot(index: int, prefix: str | None = None, pid: int = ME) -> LabSlot:
    return LabSlot(index, prefix or slot_prefix(index), pid, 1)


# --- the pure choice --------------------------------------------------------------------------------------


def test_the_first_lab_gets_index_0_and_its_default_prefix() -> None:
    assert choose_slot([], None) == (0, "hkl0")


def test_a_new_lab_takes_the_lowest_index_no_live_lab_holds() -> None:
    assert choose_slot([slot(0), slot(1), slot(3)], None) == (2, "hkl2")


def test_an_explicit_prefix_gets_a_free_index_of_its_own() -> None:
    assert choose_slot([slot(0), slot(1)], "lab") == (2, "lab")


def test_a_prefix_held_by_a_live_lab_is_refused_naming_its_process() -> None:
    with pytest.raises(LabError, match="the lab prefix lab is in use by the running process 4242"):
        choose_slot([slot(5, "lab", pid=4242)], "lab")


def test_a_default_prefix_taken_as_an_explicit_one_elsewhere_is_skipped() -> None:
    # a lab named itself hkl1 on index 0: the next default lab must not be hkl1 on index 1
    index, prefix = choose_slot([slot(0, "hkl1")], None)
    assert (index, prefix) == (2, "hkl2")


def test_when_every_index_is_held_the_error_says_so() -> None:
    held = [slot(i, pid=100 + i % 2) for i in range(SLOTS)]
    with pytest.raises(
        LabError, match=rf"all {SLOTS} lab subnets are taken by running labs \(processes \[100, 101\]\)"
    ):
        choose_slot(held, None)


def test_every_default_prefix_makes_interface_names_linux_accepts() -> None:
    for index in range(SLOTS):
        check_prefix(slot_prefix(index))
        assert len(longest_interface_name(slot_prefix(index))) <= IFNAMSIZ
    assert len(longest_interface_name("abcdefg")) <= IFNAMSIZ  # the longest prefix allowed


@pytest.mark.parametrize("bad", ["h", "Hk1", "1hk", "hk-1", "abcdefgh", ""])
def test_a_bad_prefix_is_refused(bad: str) -> None:
    with pytest.raises(LabError, match="must be 2-7 lower-case letters/digits"):
        check_prefix(bad)


# --- the registry ------------------------------------------------------------------------------------------


class Reclaimed:
    def __init__(self) -> None:
        self.prefixes: list[str] = []

    def __call__(self, prefix: str) -> None:
        self.prefixes.append(prefix)


def test_reservations_of_live_processes_never_share_an_index_or_a_prefix(tmp_path: Path) -> None:
    registry = LabRegistry(tmp_path)
    reclaimed = Reclaimed()
    first = registry.reserve(None, reclaimed)
    second = registry.reserve(None, reclaimed)
    named = registry.reserve("mylab", reclaimed)
    assert [(s.index, s.prefix) for s in (first, second, named)] == [(0, "hkl0"), (1, "hkl1"), (2, "mylab")]
    assert all(s.pid == ME and s.started == process_start(ME) for s in (first, second, named))
    assert registry.held() == [first, second, named]
    with pytest.raises(LabError, match="in use by the running process"):
        registry.reserve("mylab", reclaimed)
    assert reclaimed.prefixes == []


def test_a_released_reservation_is_given_to_the_next_lab(tmp_path: Path) -> None:
    registry = LabRegistry(tmp_path)
    first = registry.reserve(None, Reclaimed())
    registry.reserve(None, Reclaimed())
    registry.release(first)
    assert registry.reserve(None, Reclaimed()).index == first.index


def test_a_dead_processs_reservation_is_reclaimed_with_its_network(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = int(done.stdout)
    (tmp_path / "slot-0.json").write_text(
        json.dumps({"index": 0, "prefix": "old", "pid": dead, "started": 5})
    )
    registry = LabRegistry(tmp_path)
    reclaimed = Reclaimed()
    fresh = registry.reserve(None, reclaimed)
    assert reclaimed.prefixes == ["old"]
    assert (fresh.index, fresh.prefix) == (0, "hkl0")


def test_a_reused_pid_does_not_keep_a_reservation_alive(tmp_path: Path) -> None:
    # our own pid, but a start time that is not ours: the process that reserved it is gone
    (tmp_path / "slot-3.json").write_text(json.dumps({"index": 3, "prefix": "gone", "pid": ME, "started": 1}))
    registry = LabRegistry(tmp_path)
    reclaimed = Reclaimed()
    assert registry.reserve("gone", reclaimed).prefix == "gone"
    assert reclaimed.prefixes == ["gone"]


def test_an_unreadable_reservation_file_reserves_nothing(tmp_path: Path) -> None:
    (tmp_path / "slot-0.json").write_text("{not json")
    (tmp_path / "slot-1.json").write_text(json.dumps({"index": 7, "prefix": "x", "pid": ME, "started": 1}))
    registry = LabRegistry(tmp_path)
    assert registry.reserve(None, Reclaimed()).index == 0
    assert not (tmp_path / "slot-1.json").exists()


def test_releasing_a_slot_another_lab_took_over_leaves_it_alone(tmp_path: Path) -> None:
    registry = LabRegistry(tmp_path)
    mine = registry.reserve(None, Reclaimed())
    theirs = LabSlot(mine.index, "other", ME, mine.started)
    (tmp_path / f"slot-{mine.index}.json").write_text(json.dumps(theirs.__dict__))
    registry.release(mine)
    assert registry.held() == [theirs]


def test_only_the_reserving_process_releases_a_reservation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = LabRegistry(tmp_path)
    mine = registry.reserve(None, Reclaimed())
    with monkeypatch.context() as patch:
        patch.setattr(os, "getpid", lambda: ME + 1)  # a child forked after the reservation
        registry.release(mine)
    assert registry.held() == [mine]
    registry.release(mine)
    assert registry.held() == []


def test_concurrent_reservations_are_all_distinct(tmp_path: Path) -> None:
    registry = LabRegistry(tmp_path)
    got: list[LabSlot] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(5):
            reserved = LabRegistry(tmp_path).reserve(None, Reclaimed())
            with lock:
                got.append(reserved)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(s.index for s in got) == list(range(20))
    assert len({s.prefix for s in got}) == 20
    assert len(registry.held()) == 20


def test_a_registry_directory_that_cannot_be_made_says_where(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(LabError, match=r"cannot use the lab registry in .*file/registry"):
        LabRegistry(tmp_path / "file" / "registry").reserve(None, Reclaimed())


# --- without root ------------------------------------------------------------------------------------------


def test_without_root_a_lab_reserves_nothing_and_create_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    lab = LabCluster(tmp_path / "lab", ["n1"], registry=LabRegistry(tmp_path / "registry"))
    assert not lab.reserved and not (tmp_path / "registry").exists()
    with pytest.raises(LabError, match="the lab needs root"):
        lab.create()
    lab.teardown()  # nothing to remove or release


# --- what a failure report says ---------------------------------------------------------------------------


def test_a_log_with_only_the_labs_start_line_says_the_process_never_wrote(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    log.write_text("--- lab: 2026-11-25 10:00:00 starting ip netns exec hkl0-n1 python -m hakeeper daemon\n")
    assert (
        log_tail(log, 4000)
        == "(daemon.log: the process wrote nothing after 1 start(s): hung or killed early)"
    )


def test_a_log_tail_keeps_the_end_of_what_the_daemon_wrote(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    log.write_text("--- lab: start\n" + "x" * 100 + "\nTraceback: the end\n")
    assert log_tail(log, 10) == "daemon.log, last 10 characters:\n: the end\n"
    assert "cannot be read" in log_tail(tmp_path / "missing.log", 10)


def test_exit_codes_and_signals_read_as_words() -> None:
    assert describe_exit(None) == "still running"
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(-9) == "killed by SIGKILL"
