"""The fence-agents protocol: stdin lines, exit codes, list output and metadata (no processes here)."""

from __future__ import annotations

import pytest

from hakeeper.fencing.agent import (
    AgentError,
    default_host_argument,
    find_agent,
    interpret,
    last_error_line,
    parse_list_output,
    parse_metadata,
    stdin_lines,
)
from hakeeper.fencing.devices import FenceDevice
from hakeeper.lrm.executor import RawResult

DEV = FenceDevice(
    id="ipmi",
    agent="fence_ipmilan",
    params={"ip": "10.0.0.9", "password": "pw"},
    host_map={"node2": "bmc-2"},
)


def test_targeted_action_sends_nodename_port_and_device_parameters() -> None:
    lines = stdin_lines(DEV, "off", "node2")
    assert lines == ["action=off", "nodename=node2", "port=bmc-2", "ip=10.0.0.9", "password=pw"]


def test_host_argument_from_device_or_metadata() -> None:
    plug = FenceDevice(id="d", agent="fence_x", host_argument="plug")
    assert "plug=node1" in stdin_lines(plug, "reboot", "node1")
    none = FenceDevice(id="d", agent="fence_x", host_argument="none")
    assert stdin_lines(none, "reboot", "node1") == ["action=reboot", "nodename=node1"]
    derived = FenceDevice(id="d", agent="fence_x")
    assert "plug=node1" in stdin_lines(derived, "off", "node1", metadata_parameters=["plug", "ip"])
    assert stdin_lines(derived, "off", "node1", metadata_parameters=["ip"]) == [
        "action=off",
        "nodename=node1",
    ]
    assert default_host_argument(None) == "port"


def test_a_configured_host_argument_parameter_is_not_overridden() -> None:
    fixed = FenceDevice(id="d", agent="fence_x", params={"port": "outlet-7"})
    assert stdin_lines(fixed, "off", "node1") == ["action=off", "nodename=node1", "port=outlet-7"]


def test_untargeted_actions_send_no_node_and_renamed_actions_are_used() -> None:
    assert stdin_lines(DEV, "monitor", "node2") == ["action=monitor", "ip=10.0.0.9", "password=pw"]
    renamed = FenceDevice(id="d", agent="fence_x", action_names={"reboot": "off"})
    assert stdin_lines(renamed, "reboot", "n")[0] == "action=off"


def test_a_parameter_with_a_line_break_is_refused() -> None:
    evil = FenceDevice(id="d", agent="fence_x", params={"ip": "1.2.3.4\naction=on"})
    with pytest.raises(AgentError, match="line break"):
        stdin_lines(evil, "off", "n")
    for params in ({"ip": "1.2.3.4\x00"}, {"a=b": "1"}, {"ip": "x\ry"}):
        with pytest.raises(AgentError, match="cannot pass it"):
            stdin_lines(FenceDevice(id="d", agent="fence_x", params=params), "off", "n")


def test_agent_names_cannot_escape_the_search_path() -> None:
    with pytest.raises(AgentError, match="not a fence agent name"):
        find_agent("../bin/sh")
    with pytest.raises(AgentError, match="not installed"):
        find_agent("fence_no_such_agent", ["/nonexistent"])


def raw(
    code: int | None = 0, *, out: str = "", err: str = "", timed_out: bool = False, signal: int | None = None
) -> RawResult:
    return RawResult(
        exit_code=code, stdout=out, stderr=err, timed_out=timed_out, signal=signal, started=1.0, finished=1.5
    )


@pytest.mark.parametrize("action", ["off", "on", "reboot", "monitor"])
def test_zero_is_success_and_one_is_failure(action: str) -> None:
    assert interpret("d", action, "n", raw(0), 20).ok
    failed = interpret(
        "d", action, "n", raw(1, err="2026-01-01 10:00:00,000 ERROR: Failed: Unable to connect"), 20
    )
    assert not failed.ok
    assert (
        failed.reason == f"{action} failed with exit code 1 (the agent reported a generic error): "
        "Failed: Unable to connect"
    )


def test_status_codes() -> None:
    assert interpret("d", "status", "n", raw(0), 20).power == "on"
    assert interpret("d", "status", "n", raw(2), 20).power == "off"
    unreachable = interpret("d", "status", "n", raw(1), 20)
    assert not unreachable.ok and unreachable.power is None


def test_timeout_signal_and_spawn_errors_are_failures() -> None:
    assert "did not finish within 5s" in interpret("d", "off", "n", raw(None, timed_out=True), 5).reason
    assert "signal 9" in interpret("d", "off", "n", raw(None, signal=9), 5).reason
    stuck = RawResult(timed_out=True, survived_kill=True)
    assert "did not die when killed" in interpret("d", "off", "n", stuck, 5).reason
    spawn = interpret("d", "off", "n", RawResult(spawn_error="could not start x: denied"), 5)
    assert not spawn.ok and spawn.reason == "could not start x: denied"
    assert "the device did not power off in time" in interpret("d", "off", "n", raw(7), 5).reason


def test_list_output_forms() -> None:
    assert parse_list_output("node1,alias1\nnode2,\n\n") == frozenset({"node1", "node2"})
    assert parse_list_output("vm1 vm2  vm3\n") == frozenset({"vm1", "vm2", "vm3"})
    assert parse_list_output("") == frozenset()
    ok = interpret("d", "list", None, raw(0, out="a,b\nc\n"), 5)
    assert ok.ok and ok.ports == frozenset({"a", "c"})


def test_garbage_list_output_is_an_error() -> None:
    with pytest.raises(AgentError, match="not a list of ports"):
        parse_list_output("node1\n\x00\x01\x02garbage\n")
    bad = interpret("d", "list", None, raw(0, out="\x1b[31m\x07"), 5)
    assert not bad.ok and "not a list of ports" in bad.reason


def test_last_error_line_skips_usage_hint() -> None:
    err = (
        "2026-11-25 08:09:31,210 ERROR: Failed: Unrecognised action 'list'\n\n"
        "2026-11-25 08:09:31,210 ERROR: Please use '-h' for usage\n"
    )
    assert last_error_line(err) == "Failed: Unrecognised action 'list'"


METADATA = """<?xml version="1.0" ?>
<resource-agent name="fence_lab" shortdesc="Lab agent">
<parameters>
  <parameter name="port" required="1"><content type="string"/><shortdesc>Plug</shortdesc></parameter>
  <parameter name="prefix"><content type="string" default="lab-"/></parameter>
</parameters>
<actions><action name="off"/><action name="on"/><action name="status"/><action name="list"/></actions>
</resource-agent>"""


def test_metadata_parameters_and_actions() -> None:
    meta = parse_metadata(METADATA)
    assert meta.name == "fence_lab" and meta.shortdesc == "Lab agent"
    assert meta.parameters["port"].required
    assert meta.parameters["prefix"].default == "lab-"
    assert meta.actions == frozenset({"off", "on", "status", "list"})
    assert meta.host_argument == "port"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("this is not xml", "not XML"),
        ("<html><body/></html>", "expected <resource-agent"),
        (
            '<resource-agent name="x"><actions><action name="status"/></actions></resource-agent>',
            "cannot fence",
        ),
        (
            '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><resource-agent name="&e;"/>',
            "external entity",
        ),
    ],
)
def test_bad_metadata_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(AgentError, match=message):
        parse_metadata(text)


def test_required_parameters_with_deprecated_aliases() -> None:
    meta = parse_metadata(
        """<resource-agent name="fence_x">
        <parameters>
          <parameter name="action" required="1"/>
          <parameter name="ip" required="1" obsoletes="ipaddr"/>
          <parameter name="ipaddr" required="1" deprecated="1"/>
          <parameter name="username" required="1" obsoletes="login"/>
          <parameter name="login" required="1" deprecated="1"/>
          <parameter name="plug" required="1"/>
          <parameter name="ssl" required="0"/>
        </parameters>
        <actions><action name="off"/></actions></resource-agent>"""
    )
    assert meta.missing_parameters({}) == ["ip", "username"]
    assert meta.missing_parameters({"ipaddr": "h", "login": "root"}) == []
    assert meta.missing_parameters({"ip": "h"}) == ["username"]
