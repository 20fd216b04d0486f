"""What keeps a built-in agent cheap on the failover path: an action imports only the standard library's
cheap modules, rtnetlink without pyroute2, and the demo web service's minimal HTTP."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from hakeeper.agents.builtin import BUILTIN_TYPES, rtnl
from hakeeper.cli import demo_web

HEAVY_MODULES = {
    "msgspec",
    "pyroute2",
    "typing_extensions",
    "urllib.request",
    "http.server",
    "hakeeper.agents.base",
}


def imported_modules(agent: str, action: str, tmp_path: Path) -> set[str]:
    env = {
        **os.environ,
        "OCF_RESOURCE_INSTANCE": "probe",
        "HA_RSCTMP": str(tmp_path),
        "OCF_RESKEY_ip": "192.0.2.1",
        "OCF_RESKEY_command": "true",
        "OCF_RESKEY_health_http": "http://127.0.0.1:9/",
    }
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hakeeper.agents.builtin", agent, action],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 7, proc.stderr[-2000:]  # probes: nothing runs, so "not running"
    return {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize("agent", BUILTIN_TYPES)
def test_an_agent_probe_imports_nothing_heavy(agent: str, tmp_path: Path) -> None:
    modules = imported_modules(agent, "monitor", tmp_path)
    assert "hakeeper.agents.builtin.common" in modules  # (importlib.import_module of the agent is not listed)
    assert not modules & HEAVY_MODULES


# --- rtnetlink: messages built and parsed without a kernel ----------------------------------------------


def test_attributes_are_padded_and_read_back() -> None:
    raw = rtnl.attribute(3, b"eth0\0") + rtnl.attribute(1, b"\x02\x00\x00\x00\x00\x01")
    assert len(raw) % 4 == 0
    assert rtnl.attributes(raw, 0) == {3: b"eth0\0", 1: b"\x02\x00\x00\x00\x00\x01"}


def test_a_truncated_attribute_ends_the_list_without_error() -> None:
    raw = rtnl.attribute(3, b"eth0\0") + struct.pack("=HH", 2, 9)  # length shorter than its own header
    assert rtnl.attributes(raw, 0) == {3: b"eth0\0"}


def test_an_address_message_round_trips() -> None:
    body = rtnl.address_body(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "fd00::7"), 64, 3, flags=0x2)
    assert rtnl.parse_address(body) == (3, "fd00::7", 64)
    packet = rtnl.request(rtnl.RTM_NEWADDR, rtnl.NLM_F_ACK, 9, body) * 2
    parsed = rtnl.messages(packet)
    assert [(kind, seq, payload) for kind, _, seq, payload in parsed] == [(rtnl.RTM_NEWADDR, 9, body)] * 2
    assert parsed[0][1] & rtnl.NLM_F_REQUEST


def test_large_address_flags_go_in_their_own_attribute() -> None:
    body = rtnl.address_body(socket.AF_INET, socket.inet_aton("10.0.0.1"), 24, 2, flags=0x100)
    attrs = rtnl.attributes(body, rtnl.IFADDRMSG.size)
    assert struct.unpack("=I", attrs[rtnl.IFA_FLAGS]) == (0x100,)


def test_a_link_message_gives_name_type_and_mac() -> None:
    payload = rtnl.IFINFOMSG.pack(0, 1, 4, 0, 0)
    payload += rtnl.attribute(rtnl.IFLA_IFNAME, b"veth0\0") + rtnl.attribute(
        rtnl.IFLA_ADDRESS, bytes(range(6))
    )
    link = rtnl.parse_link(payload)
    assert (link.index, link.name, link.hwtype, link.mac) == (4, "veth0", 1, "00:01:02:03:04:05")


def test_the_kernel_lists_loopback() -> None:
    with rtnl.Rtnl() as netlink:
        addresses = netlink.addresses()
        loopback = next(index for index, address, _ in addresses if address == "127.0.0.1")
        assert netlink.link(loopback).name == "lo"
        assert (loopback, "127.0.0.1", 8) in addresses


def test_a_refused_request_is_an_os_error() -> None:
    if os.geteuid() == 0:
        with rtnl.Rtnl() as netlink, pytest.raises(OSError):
            netlink.delete_address(socket.if_nametoindex("lo"), "192.0.2.77", 32)  # not there
    else:
        with rtnl.Rtnl() as netlink, pytest.raises(OSError):
            netlink.add_address(socket.if_nametoindex("lo"), "192.0.2.77", 32)  # not allowed


# --- the demo web service ------------------------------------------------------------------------------


def test_demo_web_answers_get_and_head_and_refuses_the_rest() -> None:
    get = demo_web.response(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "n2")
    assert get.startswith(b"HTTP/1.0 200 OK\r\n") and get.endswith(b"\r\n\r\nhello from n2\n")
    head = demo_web.response(b"HEAD / HTTP/1.0\r\n\r\n", "n2")
    assert head.startswith(b"HTTP/1.0 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert b"Content-Length: 14" in head
    assert demo_web.response(b"POST / HTTP/1.0\r\n\r\n", "n2").startswith(b"HTTP/1.0 405 ")
    assert demo_web.response(b"\x16\x03\x01 garbage\r\n\r\n", "n2").startswith(b"HTTP/1.0 400 ")


def test_demo_web_arguments() -> None:
    assert demo_web.parse_args(["--port", "8080"]) == ("127.0.0.1", 8080)
    assert demo_web.parse_args(["--bind=10.0.0.5", "--port=81"]) == ("10.0.0.5", 81)
    for bad, why in (
        ([], "--port is required"),
        (["--port", "http"], "TCP port number"),
        (["--port", "70000"], "TCP port number"),
        (["--bind"], "--bind needs a value"),
        (["--verbose"], "unknown argument"),
    ):
        with pytest.raises(ValueError, match=why):
            demo_web.parse_args(bad)


def test_demo_web_explains_bad_arguments_and_a_busy_port() -> None:
    usage = subprocess.run(
        [sys.executable, "-m", "hakeeper.cli.demo_web", "--port", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 2 and "--port must be a TCP port number" in usage.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        taken = subprocess.run(
            [sys.executable, "-m", "hakeeper.cli.demo_web", "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert taken.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr
