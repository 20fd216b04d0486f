"""Test workers running local clusters at the same time never share 127.0.x.y addresses."""

from __future__ import annotations

import pytest

from hakeeper.cli.localcluster import default_subnet


def test_each_worker_has_its_own_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    seen = []
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        seen.append(default_subnet())
    assert 30 <= seen[0] < 130 <= seen[1] < 230


def test_without_workers_the_pid_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert 30 <= default_subnet() < 230
