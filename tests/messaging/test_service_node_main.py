"""node_main: configuration errors are sentences, and the line protocol answers every command."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from hakeeper.messaging.bench import write_cluster
from hakeeper.messaging.node_main import NodeProcess, SetupError, load_service_config, percentile


def run_node(config: Path, node: str = "node1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hakeeper.messaging.node_main", "--config", str(config), "--node", node],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_configuration_mistakes_are_explained(tmp_path: Path) -> None:
    files = write_cluster(tmp_path, 2, net=60)
    path = files.node_configs["node1"]
    with pytest.raises(SetupError, match="'node7' is not in the configuration"):
        load_service_config(path, "node7", None)
    both = tmp_path / "both.toml"
    both.write_text(path.read_text().replace("two_node = false", 'two_node = true\nwitness = "127.0.0.9:1"'))
    with pytest.raises(SetupError, match="two_node and a witness are alternatives"):
        load_service_config(both, "node1", None)
    broken = tmp_path / "broken.toml"
    broken.write_text("[cluster\n")
    with pytest.raises(SetupError, match=r"broken\.toml"):
        load_service_config(broken, "node1", None)
    no_key = tmp_path / "nokey.toml"
    no_key.write_text(path.read_text().replace(str(files.key_file), str(tmp_path / "missing.key")))
    with pytest.raises(SetupError, match="does not exist"):
        load_service_config(no_key, "node1", None)
    with pytest.raises(SetupError, match="cannot read"):
        load_service_config(tmp_path / "absent.toml", "node1", None)


def test_the_process_exits_1_with_the_reason(tmp_path: Path) -> None:
    files = write_cluster(tmp_path, 2, net=61)
    result = run_node(files.node_configs["node1"], "ghost")
    assert result.returncode == 1
    assert "'ghost' is not in the configuration" in result.stderr and "Traceback" not in result.stderr


async def test_the_line_protocol_answers_every_command(tmp_path: Path) -> None:
    files = write_cluster(tmp_path, 1, net=62, timers={"election_timeout": "300ms"})
    config = load_service_config(files.node_configs["node1"], "node1", tmp_path / "data")
    node = NodeProcess(config, commit_events=False)
    await node.service.start()
    try:
        async with asyncio.timeout(10):
            while not node.service.is_leader:
                await asyncio.sleep(0.02)
        reply = await node.command("propose hello")
        assert reply["ok"] and reply["index"] >= 2 and node.app.count == 1
        status = await node.command("status")
        assert status["ok"] and status["leader"] == 1 and status["count"] == 1 and status["quorate"]
        assert (await node.command("link down 0"))["ok"] and node.cut_links == {0}
        assert (await node.command("link up 0"))["ok"] and node.cut_links == set()
        assert not (await node.command("send 9 hi"))["ok"]  # no such peer
        latency = await node.command("bench-latency 5")
        assert latency["ok"] and 0 < latency["p50_ms"] <= latency["p99_ms"]
        tput = await node.command("bench-throughput 20 4")
        assert tput["ok"] and tput["commits"] == 20 and node.app.count == 26
        for bad in ("", "bogus", "send x y", "link sideways", "bench-throughput 5"):
            answer = await node.command(bad)
            assert answer["ok"] is False and answer["error"] == "usage", (bad, answer)
    finally:
        await node.service.close()


def test_percentile_picks_the_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert percentile(samples, 50) == 50.0 and percentile(samples, 99) == 99.0
    assert percentile([], 50) == 0.0 and percentile([7.0], 99) == 7.0
