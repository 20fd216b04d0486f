from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hakeeper.lrm.service import LocalResourceManager, LrmConfig


@pytest.fixture
async def lrm(tmp_path: Path) -> AsyncIterator[LocalResourceManager]:
    config = LrmConfig(node_name="node1", run_dir=str(tmp_path / "lrm"), max_parallel=4)
    async with LocalResourceManager(config) as manager:
        yield manager
