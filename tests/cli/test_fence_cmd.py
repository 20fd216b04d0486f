"""``hakeeper fence NODE|node|history|confirm`` against the real API over the fake cluster."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hakeeper.cli.localcluster import LocalCluster, wait_until
from tests.cli.served import Served, served
from tests.clusters import DUMMY, NODES, dummy_bootstrap, running

__all__ = ["served"]

pytestmark = pytest.mark.timeout(60)


def requests(served: Served, node: str) -> list[str]:
    """The actions of the operator requests about ``node`` in the fencing history."""
    history = served.fake.cib().status.fencing_history
    return [e.action for e in history if e.target == node and e.state == "pending"]


def test_fence_node_reboots_by_default_and_prints_the_result(served: Served) -> None:
    result = served.run("fence", "n2")
    assert result.exit_code == 0, result.output
    assert "Fencing n2 (reboot)" in result.output
    assert "n2 reboot fenced by n1 with fake" in result.output
    assert requests(served, "n2") == ["reboot"]


def test_fence_node_off_through_the_long_form(served: Served) -> None:
    result = served.run("fence", "node", "n3", "--off")
    assert result.exit_code == 0, result.output
    assert "n3 off fenced" in result.output
    assert requests(served, "n3") == ["off"]


def test_a_failed_fencing_exits_non_zero_with_what_to_do(served: Served) -> None:
    served.call(lambda: setattr(served.fake, "fence_outcome", "failed"))
    result = served.run("fence", "n2", "--off")
    assert result.exit_code == 1
    assert "n2 was NOT fenced" in result.output and "hakeeper fence confirm n2" in result.output


def test_fencing_an_unknown_node_says_so(served: Served) -> None:
    result = served.run("fence", "n9")
    assert result.exit_code == 1 and "no node 'n9'" in result.output


def test_a_bad_timeout_is_a_usage_error(served: Served) -> None:
    result = served.run("fence", "n2", "--timeout", "0")
    assert result.exit_code == 2
    assert requests(served, "n2") == []


def test_history_lists_every_record_or_one_nodes(served: Served) -> None:
    assert served.run("fence", "history").output.strip() == "No fencing recorded."
    served.run("fence", "n2", "--off")
    served.run("fence", "n3")
    everything = served.run("fence", "history").output.splitlines()
    assert len(everything) == 4  # a request and its answer for each
    only = served.run("fence", "history", "n3").output.splitlines()
    assert len(only) == 2 and all(" n3 reboot " in line for line in only)
    assert "requested" in only[0] and "fenced" in only[1]
    assert served.run("fence", "history", "n1").output.strip() == "No fencing recorded for n1."


def test_confirm_warns_and_needs_a_yes(served: Served) -> None:
    served.call(lambda: served.fake.set_member("n3", online=False))
    refused = served.run("fence", "confirm", "n3", input="n\n")
    assert refused.exit_code == 1
    assert "WARNING" in refused.output and "run twice at once" in refused.output
    assert "nothing was recorded about n3" in refused.output
    assert requests(served, "n3") == []
    accepted = served.run("fence", "confirm", "n3", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "n3 off fenced" in accepted.output and "with manual" in accepted.output


def test_confirm_with_yes_does_not_ask(served: Served) -> None:
    served.call(lambda: served.fake.set_member("n3", online=False))
    result = served.run("fence", "confirm", "n3", "--yes")
    assert result.exit_code == 0, result.output
    assert "Is n3 powered off?" not in result.output and "with manual" in result.output


def test_confirm_of_an_online_node_is_refused(served: Served) -> None:
    result = served.run("fence", "confirm", "n2", "--yes")
    assert result.exit_code == 1 and "n2 is online" in result.output
    assert requests(served, "n2") == []


def test_check_is_still_a_subcommand(served: Served, tmp_path: object) -> None:
    result = served.run("fence", "check", "/nonexistent/cib.xml")
    assert result.exit_code == 1 and "cannot read /nonexistent/cib.xml" in result.output


# --- real daemons on loopback: 'hakeeper fence NODE' fences it with Debian's fence_dummy -----------------

FENCE_DEVICE = """
[resources.fencer]
agent = "stonith:fence_dummy"
params = {{ type = "file", status_file = "{status}", pcmk_host_list = "n1 n2 n3" }}
"""


@pytest.mark.integration
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("fence_dummy") is None, reason="fence-agents is not installed")
@pytest.mark.skipif(not DUMMY.exists(), reason="Debian's resource-agents is not installed")
def test_fence_a_live_node_with_fence_dummy(tmp_path: Path) -> None:
    from hakeeper.api.client import ApiClient

    power = tmp_path / "power"
    power.write_text("on")
    bootstrap = dummy_bootstrap("fence-cmd", fencing=FENCE_DEVICE.format(status=power))
    cluster = LocalCluster(tmp_path / "c", NODES, bootstrap)
    try:
        cluster.start_all()
        assert wait_until(lambda: len(running(cluster, "web")) == 1, 90), cluster.logs()
        (active,) = running(cluster, "web")
        with ApiClient(socket_path=cluster.node_dir(NODES[0]) / "api.sock") as c:
            dc = c.cluster().dc
        # fence a node that runs nothing and is not the DC, asking a node that is not the DC either
        target = next(n for n in NODES if n not in (active, dc))
        asker = next((n for n in NODES if n not in (dc, target)), dc or NODES[0])

        def hakeeper(*args: str) -> subprocess.CompletedProcess[str]:
            argv = [sys.executable, "-m", "hakeeper", *args]
            argv += ["--socket", str(cluster.node_dir(asker) / "api.sock")]
            return subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)

        fenced = hakeeper("fence", target, "--off", "--timeout", "120")
        assert fenced.returncode == 0, fenced.stdout + fenced.stderr + cluster.logs()
        assert f"{target} off fenced by" in fenced.stdout and "with fencer" in fenced.stdout
        assert power.read_text().strip() == "off"  # fence_dummy really ran
        history = hakeeper("fence", "history", target)
        assert history.returncode == 0 and "requested" in history.stdout and "fenced" in history.stdout
        refused = hakeeper("fence", "confirm", target, "--yes")  # it is (still) a member: refused
        assert refused.returncode == 1 and f"{target} is online" in refused.stderr
    finally:
        cluster.stop_all()
