"""The whole-CRM simulation in CI: 2,000 seeds of DC, members, LRMs and fencing under faults hold every safety
invariant and converge afterwards; deliberately broken glue is caught (the checks can fail); runs replay."""

from __future__ import annotations

import pytest

from hakeeper.sim.__main__ import main
from hakeeper.sim.crm import CrmSeedResult, WarmStarts, replay_crm, run_crm_seed
from hakeeper.sim.crm_invariants import CrmViolation, Phys, World
from hakeeper.sim.crm_node import Glue
from hakeeper.sim.crm_runner import sweep_crm

SEEDS = 2000
CHUNK = 250


@pytest.mark.parametrize("start", range(0, SEEDS, CHUNK))
def test_crm_seeds_hold_every_invariant_and_converge(start: int) -> None:
    summary = sweep_crm(range(start, start + CHUNK))
    assert summary.seeds == CHUNK
    assert not summary.failures, "\n".join(summary.lines())


def first_failure(glue: Glue, seeds: range) -> CrmSeedResult:
    for seed in seeds:
        result = run_crm_seed(seed, glue)
        if not result.ok:
            return result
    raise AssertionError(f"seeds {seeds.start}..{seeds.stop - 1} all passed with {glue}")


def test_a_dc_that_does_not_wait_for_fencing_is_caught() -> None:
    failure = first_failure(Glue(fence_wait=False), range(100))
    assert failure.error is not None and "may still be active" in failure.error


def test_a_dc_that_recovers_before_the_fencing_is_committed_is_caught() -> None:
    failure = first_failure(Glue(fence_commit_wait=False), range(100))
    assert failure.error is not None and "no fencing of" in failure.error
    assert "committed in the CIB" in failure.error


def test_a_seed_replays_exactly_cold_and_warm() -> None:
    first, again = replay_crm(7), replay_crm(7)
    assert first == again
    assert len(first) > 50 and "passed" in first[-1]
    assert run_crm_seed(7).events == run_crm_seed(7).events
    warm = replay_crm(13, warm=WarmStarts())  # forked from a settled cluster, as sweeps do
    assert warm == replay_crm(13, warm=WarmStarts())
    assert "passed" in warm[-1] and any("stops responding" in line for line in warm)


def test_a_warm_seed_does_not_depend_on_the_seeds_run_before_it() -> None:
    shared = WarmStarts()
    for seed in (1, 2, 3, 5):
        run_crm_seed(seed, warm=shared)
    assert run_crm_seed(9, warm=shared) == run_crm_seed(9, warm=WarmStarts())


def test_the_command_line_runs_and_replays_crm_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crm", "--seeds", "3", "--start", "11"]) == 0
    assert "simulated 3 CRM seeds" in capsys.readouterr().out
    assert main(["crm", "--replay", "11"]) == 0
    assert "seed 11: passed" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["crm", "--seeds", "-1"])
    assert "must not be negative" in capsys.readouterr().err


def world() -> World:
    return World(("db",), ("n1", "n2"))


def test_world_catches_a_second_copy_and_a_second_start() -> None:
    w = world()
    w.start_begins("n1", "db", 0)
    with pytest.raises(CrmViolation, match=r"started on n1 .* while already starting"):
        w.start_begins("n1", "db", 1)
    with pytest.raises(CrmViolation, match="may still be active on n1"):
        w.start_begins("n2", "db", 2)


def test_world_requires_a_committed_fence_after_the_loss() -> None:
    w = world()
    w.start_begins("n1", "db", 0)
    w.set("n1", "db", Phys.RUNNING)
    w.node_lost("n1", 10)
    w.powered_off("n1", 20)
    w.check()  # powered off: nothing runs there any more ...
    with pytest.raises(CrmViolation, match="no fencing of n1"):
        w.start_begins("n2", "db", 30)  # ... but the fencing is not on record yet
    w.fence_committed("n1", 40)
    w.start_begins("n2", "db", 50)
    assert w.where("db") == ["n2"]


def test_world_accepts_a_resource_seen_stopped_before_the_loss_and_reports_convergence() -> None:
    w = world()
    w.start_begins("n1", "db", 0)
    w.set("n1", "db", None)
    w.node_lost("n1", 10)
    assert w.unconverged() == ["db: not running"]
    w.start_begins("n2", "db", 20)
    w.set("n2", "db", Phys.RUNNING)
    assert w.unconverged() == []
