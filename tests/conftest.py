"""Shared test fixtures: where the external Pacemaker scheduler corpus lives, if present."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def scheduler_corpus() -> Path:
    """The Pacemaker scheduler regression corpus (outside the project: shared test data)."""
    env = os.environ.get("HAKEEPER_SCHEDULER_CORPUS")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "pacemaker-scheduler"
