"""The simulator in CI: 2,000 seeds with faults, split into chunks so pytest-xdist can spread them, plus proof
that the checker can fail (a core that votes twice in a term is caught) and that a seed replays exactly."""

from __future__ import annotations

import random

import pytest

from hakeeper.messaging.raft.core import RaftConfig, RaftNode
from hakeeper.messaging.raft.messages import RequestVote, VoteResponse
from hakeeper.messaging.raft.storage import MemoryStorage
from hakeeper.sim.__main__ import main
from hakeeper.sim.cluster import NodeFactory
from hakeeper.sim.runner import SeedResult, replay, run_seed, sweep

SEEDS = 2000
CHUNK = 100


@pytest.mark.parametrize("start", range(0, SEEDS, CHUNK))
def test_simulation_seeds_hold_every_invariant(start: int) -> None:
    summary = sweep(range(start, start + CHUNK))
    assert summary.seeds == CHUNK
    assert not summary.failures, "\n".join(summary.lines())


class DoubleVoter(RaftNode):
    """Deliberately broken: grants its vote to every up-to-date candidate, even after voting in this term."""

    def _handle_vote_request(self, msg: RequestVote) -> None:
        if self.log.is_up_to_date(msg.last_index, msg.last_term):
            self._send(VoteResponse(msg.term, self.id, msg.frm, granted=True, pre_vote=msg.pre_vote))
            if not msg.pre_vote:
                self._vote = msg.frm
        else:
            self._send(VoteResponse(self.term, self.id, msg.frm, granted=False, pre_vote=msg.pre_vote))


def double_voter(config: RaftConfig, storage: MemoryStorage, rng: random.Random, applied: int) -> RaftNode:
    return DoubleVoter(config, storage, rng, applied=applied)


def first_failure(seeds: range, factory: NodeFactory) -> SeedResult:
    for seed in seeds:
        result = run_seed(seed, factory)
        if not result.ok:
            return result
    raise AssertionError(f"seeds {seeds.start}..{seeds.stop - 1} all passed with a broken core")


def test_a_core_that_votes_twice_is_caught() -> None:
    failure = first_failure(range(300), double_voter)
    assert failure.error is not None and "two leaders in term" in failure.error


class ForgetfulCommitter(RaftNode):
    """Deliberately broken: a leader that counts itself twice, so it commits with half the votes."""

    def _maybe_commit(self) -> bool:
        if self.role.value == "leader":
            match = {p: pr.match for p, pr in self._progress.items()}
            match[self.id] = self.log.last_index()
            ranked = sorted((match.get(v, 0) for v in self.voters), reverse=True)
            index = ranked[max(0, (len(self.voters) + 1) // 2 - 1 - 1)] if len(ranked) > 1 else ranked[0]
            if index > self.log.committed and self.log.term(index) == self.term:
                self.log.commit_to(index)
                self._after_commit()
                return True
        return False


def test_a_core_that_commits_without_quorum_is_caught() -> None:
    def factory(config: RaftConfig, storage: MemoryStorage, rng: random.Random, applied: int) -> RaftNode:
        return ForgetfulCommitter(config, storage, rng, applied=applied)

    failure = first_failure(range(300), factory)
    assert failure.error is not None and "commit without quorum" in failure.error


def test_a_failing_seed_replays_identically() -> None:
    failing = first_failure(range(300), double_voter)
    first = replay(failing.seed, node_factory=double_voter)
    second = replay(failing.seed, node_factory=double_voter)
    assert first == second
    assert "FAILED" in first[-1] and failing.error is not None and failing.error in first[-1]
    assert any(" n1 " in line and " t" in line for line in first)  # per-event lines: node, role, term, commit


def test_run_seed_is_deterministic() -> None:
    assert run_seed(7) == run_seed(7)


def test_cli_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "3", "--start", "10"]) == 0
    out = capsys.readouterr().out
    assert "simulated 3 seeds" in out and "0 failed" in out


def test_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--seeds", "-1"])
    assert "must not be negative" in capsys.readouterr().err


# Seeds the long soak once failed; each is fixed at its root cause with a scenario test in tests/messaging.
SOAK_REGRESSIONS = [
    1070251,  # a leader that removed itself left an entry only a witness held (test_raft_core)
    2039833,  # a node at a higher term that would not campaign (a learner in its view) never told the leader
]


@pytest.mark.parametrize("seed", SOAK_REGRESSIONS)
def test_seeds_the_soak_once_failed_pass(seed: int) -> None:
    result = run_seed(seed)
    assert result.ok, result.error
