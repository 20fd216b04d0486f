"""Labs alive at the same time (parallel test workers, a demo next to a test) never disturb each other.

Once in CI the three-node lab of test_lab_cluster.py never settled and every daemon log was empty: another
process had been given the same prefix (``hk<pid % 1000>``), was refused it, and its teardown removed the
live lab's namespaces, killing its daemons before they wrote a line. These tests build labs side by side,
in one process and in two, and check that each keeps working and that a refused lab touches nothing; and
that a lab that fails says why.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hakeeper.cli.lab import LabCluster, LabError, process_start, sh, web_group_bootstrap
from hakeeper.cli.localcluster import wait_until

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab tests need root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2 is not installed"),
    pytest.mark.skipif(shutil.which("curl") is None, reason="the lab's client uses curl"),
    pytest.mark.timeout(300),
]

PORT = 8080
SETTLE_S = 90


def serving(lab: LabCluster) -> str | None:
    answer = lab.client_get(f"http://{lab.vip}:{PORT}/", timeout=1.0)
    return answer.removeprefix("hello from ").strip() if answer and answer.startswith("hello from ") else None


def present(lab: LabCluster) -> bool:
    """Every namespace and bridge of ``lab`` still exists."""
    namespaces = {line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines() if line.strip()}
    wanted = {lab.namespace(n) for n in [*lab.nodes, "client"]}
    return wanted <= namespaces and Path("/sys/class/net", lab.bridge(0)).exists()


def built(lab: LabCluster) -> LabCluster:
    try:
        lab.create()
    except LabError as err:
        lab.teardown()
        pytest.skip(f"cannot build a lab here: {err}")
    return lab


def test_two_labs_in_one_process_both_serve_their_vip_and_one_teardown_leaves_the_other(
    tmp_path: Path,
) -> None:
    # two nodes each: a one-node cluster does not start its resources (a controller limitation today)
    first = LabCluster(tmp_path / "a", ["a1", "a2"], cluster_name="a")
    second = LabCluster(tmp_path / "b", ["b1", "b2"], cluster_name="b")
    try:
        assert first.prefix != second.prefix and first.subnet(0) != second.subnet(0)
        for lab in (first, second):
            lab.bootstrap = web_group_bootstrap(lab, fencing=False, port=PORT, monitor="2s")
            built(lab).start_all()
        first.wait_for(lambda: serving(first) in first.nodes, SETTLE_S, "serve its VIP")
        second.wait_for(lambda: serving(second) in second.nodes, SETTLE_S, "serve its VIP")
        first.teardown()
        assert present(second) and all(second.alive(n) for n in second.nodes), second.diagnosis()
        assert serving(second) in second.nodes, second.diagnosis()
    finally:
        first.teardown()
        second.teardown()


REFUSED_THEN_OWN = """
import sys
from pathlib import Path
from hakeeper.cli.lab import LabCluster, LabError

root, taken = Path(sys.argv[1]), sys.argv[2]
try:
    LabCluster(root / "same", ["n1"], prefix=taken)
except LabError as err:
    print("refused:", err)
else:
    print("NOT refused")
own = LabCluster(root / "own", ["n1"])
try:
    own.create()
    print("own:", own.prefix, own.subnet(0))
finally:
    own.teardown()  # as the demo does: teardown also after a failed create
"""


def test_another_process_is_refused_a_live_labs_prefix_and_builds_its_own_beside_it(tmp_path: Path) -> None:
    lab = built(LabCluster(tmp_path / "live", ["n1", "n2"]))
    try:
        script = textwrap.dedent(REFUSED_THEN_OWN)
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path), lab.prefix],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert (
            f"refused: the lab prefix {lab.prefix} is in use by the running process {os.getpid()}"
            in done.stdout
        )
        own = next(line for line in done.stdout.splitlines() if line.startswith("own:"))
        assert lab.prefix not in own.split() and str(lab.subnet(0)) not in own.split()
        assert present(lab)
    finally:
        lab.teardown()


def test_a_prefix_whose_network_a_live_process_owns_outside_the_registry_is_left_alone(
    tmp_path: Path,
) -> None:
    prefix = f"hkz{secrets.token_hex(2)}"
    bridge = f"{prefix}-b0"
    owner = subprocess.Popen(["sleep", "300"])  # a lab process that predates the registry
    try:
        sh("ip", "link", "add", bridge, "type", "bridge")
        alias = f"hakeeper-lab owner={owner.pid} started={process_start(owner.pid)}"
        sh("ip", "link", "set", bridge, "alias", alias)
        lab = LabCluster(tmp_path, ["n1"], prefix=prefix)
        with pytest.raises(
            LabError, match=f"the lab prefix {prefix} is in use by the running process {owner.pid}"
        ):
            lab.create()
        lab.teardown()
        assert Path("/sys/class/net", bridge).exists()
        assert not lab.reserved  # its reservation was given back all the same
    finally:
        owner.kill()
        owner.wait()
        sh("ip", "link", "delete", bridge, check=False)


def test_a_daemon_that_cannot_start_is_explained(tmp_path: Path) -> None:
    lab = LabCluster(tmp_path, ["n1"], client=False)
    lab.bootstrap = "this is [not toml"
    built(lab)
    try:
        lab.start_all()
        assert wait_until(lambda: not lab.alive("n1"), 60, 0.2), lab.diagnosis()
        with pytest.raises(LabError) as caught:
            lab.wait_for(lambda: lab.alive("n1"), 1, "settle")
        text = str(caught.value)
        assert text.startswith("the lab did not settle within 1 s")
        assert f"--- n1: pid {lab.procs['n1'].pid} ended: exit code " in text
        assert f"namespace {lab.namespace('n1')} present" in text
        assert "command: ip netns exec" in text and "hakeeper daemon -v --config" in text
        assert "bootstrap.toml" in text.split("daemon.log, last")[1]  # the daemon's own words about it
    finally:
        lab.teardown()
