"""``hakeeper status`` against the real API app on a Unix socket."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from hakeeper.cli.main import cli
from hakeeper.cli.status_cmd import Snapshot, failed_action_lines, status_lines
from tests.cli.served import NOW, Served, served

__all__ = ["served"]
pytestmark = pytest.mark.timeout(60)


def test_status_shows_the_crm_mon_view(served: Served) -> None:
    result = served.run("status")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Cluster: testcluster" in out
    assert "Current DC: n1 (partition with quorum)" in out
    assert "n1: online (DC)" in out and "n2: online" in out
    assert "* vip (ocf:pacemaker:Dummy): Started on n1" in out
    # a group's members are nested under it
    web = out.index("* web [group]: Started on n1")
    assert out.index("    * fs (ocf:pacemaker:Dummy): Started on n1") > web
    assert "ping-clone [clone]: Stopped" in out
    assert "FAILED" not in out  # the monitor failure was recovered (a later start)
    assert "vip monitor (every 10s) on n1: rc=7 (not running) 'not running'" in out
    assert "vip on n1: 1/3 failures, expires in 8m20s" in out  # failure-timeout 600 s, failed 100 s ago
    assert "cluster: the cluster started" in out
    assert "\x1b[" not in out  # plain text when not a terminal


def test_status_shows_node_states_and_lost_quorum(served: Served) -> None:
    def change() -> None:
        served.fake.set_member("n3", online=False, unclean=True)
        served.fake.quorate = False

    served.call(change)
    served.run("node", "standby", "n2")
    out = served.run("status").output
    assert "n3: UNCLEAN" in out
    assert "n2: standby" in out
    assert "partition WITHOUT quorum" in out


def test_status_json_is_for_scripts(served: Served) -> None:
    result = served.run("status", "--json", "--events", "5")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["cluster"]["cluster_name"] == "testcluster"
    assert {r["id"] for r in doc["resources"]["resources"]} >= {"vip", "web", "fs", "ping-clone"}
    assert doc["events"][0]["desc"] == "the cluster started"


def test_the_lines_are_a_pure_function_of_the_answers(served: Served) -> None:
    doc = served.run("status", "--json").output
    import msgspec

    snap = msgspec.json.decode(doc, type=Snapshot)
    texts = [line.text for line in status_lines(snap)]
    assert texts[0].startswith("Cluster: testcluster")
    failing = [line for line in status_lines(snap) if "rc=7" in line.text]
    assert failing and failing[0].style == "red"
    timed_out = msgspec.structs.replace(snap.resources.failed_actions[0], op_status=2, exit_reason=None)
    lines = failed_action_lines(msgspec.structs.replace(snap.resources, failed_actions=[timed_out]))
    assert "vip monitor (every 10s) on n1: timeout at " in lines[1].text


def test_an_expired_failure_says_so(served: Served) -> None:
    served.call(lambda: served.fake.set_now(NOW + 1000))
    out = served.run("status").output
    assert "expired" in out


def test_no_daemon_is_one_sentence_naming_the_socket(tmp_path: Path) -> None:
    from hakeeper.cli.main import _register

    if "status" not in cli.commands:
        _register()
    missing = tmp_path / "api.sock"
    result = CliRunner().invoke(cli, ["status", "--socket", str(missing)])
    assert result.exit_code == 1
    assert f"not running on this node: there is no API socket at {missing}" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_socket_nobody_listens_on(tmp_path: Path) -> None:
    import socket

    from hakeeper.cli.main import _register

    if "status" not in cli.commands:
        _register()
    path = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()  # the file stays, nothing listens: a crashed daemon
    result = CliRunner().invoke(cli, ["status", "--socket", str(path)])
    assert result.exit_code == 1
    assert f"cannot reach the hakeeper API at the socket {path}" in result.output


def test_watch_and_json_are_refused_together(served: Served) -> None:
    result = served.run("status", "--watch", "--json")
    assert result.exit_code == 2
    assert "do not go together" in result.output


def test_watch_refreshes_on_a_cluster_event(served: Served) -> None:
    # The refresh interval is an hour: only the event stream can bring the second view (or the timeout fails).
    from rich.text import Text

    from hakeeper.cli.connect import Target
    from hakeeper.cli.status_cmd import watch_loop

    views: list[str] = []
    first = threading.Event()

    def show(view: Text) -> None:
        views.append(view.plain)
        first.set()

    target = Target(served.socket, None, served.token)
    worker = threading.Thread(target=watch_loop, args=(target, 3600.0, 5, show, 2))
    worker.start()
    assert first.wait(30)
    served.call(lambda: served.fake.publish("node", "node n2 was put in standby", node="n2"))
    worker.join(30)
    assert not worker.is_alive()
    assert len(views) == 2
    assert "node n2 was put in standby" not in views[0]
    assert "node: node n2 was put in standby" in views[1]
    # the event listener leaves at the next event, so the server can stop
    served.call(lambda: served.fake.publish("cluster", "one more"))


def test_events_name_what_and_where() -> None:
    from hakeeper.api.handle import Event
    from hakeeper.cli.status_cmd import event_text

    start = Event(id=1, timestamp=NOW, kind="resource", desc="ok", rsc="web", task="start", node="n2")
    assert event_text(start) == "web start on n2: ok"
    monitor = Event(id=2, timestamp=NOW, kind="resource", desc="not running", rsc="web", task="monitor",
                    interval_ms=10_000, node="n2")  # fmt: skip
    assert event_text(monitor) == "web monitor (10s) on n2: not running"
    member = Event(id=3, timestamp=NOW, kind="node", desc="member", node="n1")
    assert event_text(member) == "n1: member"
    said = Event(id=4, timestamp=NOW, kind="node", desc="node n1 is lost", node="n1")
    assert event_text(said) == "node n1 is lost"
    attr = Event(id=5, timestamp=NOW, kind="attribute", desc="set", node="n1", attribute_name="ping",
                 attribute_value="100")  # fmt: skip
    assert event_text(attr) == "ping=100 on n1: set"


def test_failed_and_pending_fencing_are_raised_until_a_fencing_of_that_node_succeeds() -> None:
    from hakeeper.cib import model as m
    from hakeeper.cli.status_cmd import fencing_lines

    def ev(target: str, state: str, reason: str | None = None) -> m.FenceEvent:
        return m.FenceEvent(
            target=target,
            action="reboot",
            state=state,
            delegate="n1",
            device="ipmi",
            completed=NOW,
            reason=reason,
        )

    history = [
        ev("n2", "failed", "timed out"),
        ev("n2", "done"),  # settles the failure before it
        ev("n3", "failed", "no route to host"),
        m.FenceEvent(target="n3", action="reboot", state="pending", origin="n1", requested=NOW),
    ]
    text = [line.text for line in fencing_lines(history)]
    assert text[0] == "Failed Fencing Actions:"
    assert any("reboot of n3 failed by n1 with ipmi" in t and "no route to host" in t for t in text)
    assert not any("of n2" in t for t in text)
    assert "Pending Fencing Actions:" in text
    assert any("reboot of n3 pending (asked by n1)" in t for t in text)
    assert fencing_lines([ev("n2", "done")]) == []
