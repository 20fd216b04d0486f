"""The LRM benchmark command runs end to end (tiny sizes) and ends with one JSON line."""

from __future__ import annotations

import json
import os

import pytest

from hakeeper.lrm import bench


@pytest.mark.skipif(not os.access("/usr/lib/ocf/resource.d/heartbeat/Dummy", os.X_OK), reason="no agents")
def test_bench_prints_json_last(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--resources", "10", "--interval", "0.5", "--duration", "1", "--parallel", "4"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["resources"] == 10 and result["failed_starts"] == 0
    assert result["monitors_run"] >= 10 and result["resources_with_failures"] == 0
    assert {"lrm_cpu_percent_of_core", "lateness_ms_p99", "rss_mb", "meets_targets"} <= set(result)


def test_bench_refuses_a_bad_agent_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--agent", "ocf:nope"]) == 2
    assert "ocf:PROVIDER:TYPE" in json.loads(capsys.readouterr().out)["error"]
