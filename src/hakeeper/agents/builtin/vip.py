"""``ocf:hakeeper:vip``: a virtual IPv4 or IPv6 address, managed through netlink (:mod:`.rtnl`).

start adds the address (IPv6 without duplicate address detection, so it answers at once) and announces it:
gratuitous ARP for IPv4, unsolicited neighbour advertisements for IPv6, ``arp_count`` times. It returns once
the address is up and the first announcement is out; the rest go from a detached child (as IPaddr2 runs
send_arp in the background), so the next resource in a group need not wait for them. monitor checks
that the address is on the interface; stop ends a running announcer, then removes the address.
Without ``nic`` the interface is the one holding an address in the same subnet (as IPaddr2's findif does);
without ``cidr_netmask`` that address's prefix is used.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import struct
import time
from collections.abc import Callable

from hakeeper.agents.builtin.common import Action, AgentFailure, OcfEnv, process_start_time
from hakeeper.agents.builtin.rtnl import Rtnl
from hakeeper.agents.results import OcfRc

METADATA = """<?xml version="1.0"?>
<resource-agent name="vip" version="1.0">
<version>1.1</version>
<longdesc lang="en">A virtual IPv4/IPv6 address added through netlink and announced with gratuitous ARP
or unsolicited neighbour advertisements.</longdesc>
<shortdesc lang="en">Virtual IP address</shortdesc>
<parameters>
<parameter name="ip" required="1" unique-group="address">
<longdesc lang="en">The IPv4 or IPv6 address.</longdesc>
<shortdesc lang="en">Address</shortdesc>
<content type="string"/>
</parameter>
<parameter name="cidr_netmask">
<longdesc lang="en">Prefix length; by default that of the interface's address in the same subnet.</longdesc>
<shortdesc lang="en">Prefix length</shortdesc>
<content type="integer"/>
</parameter>
<parameter name="nic">
<longdesc lang="en">Interface; by default the one with an address in the same subnet.</longdesc>
<shortdesc lang="en">Interface</shortdesc>
<content type="string"/>
</parameter>
<parameter name="arp_count">
<longdesc lang="en">How many gratuitous ARPs / neighbour advertisements to send on start.</longdesc>
<shortdesc lang="en">Announcements</shortdesc>
<content type="integer" default="5"/>
</parameter>
<parameter name="arp_interval">
<longdesc lang="en">Milliseconds between announcements.</longdesc>
<shortdesc lang="en">Announcement interval</shortdesc>
<content type="integer" default="200"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="stop" timeout="20s"/>
<action name="monitor" timeout="20s" interval="10s" depth="0"/>
<action name="validate-all" timeout="20s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
"""

IFA_F_NODAD = 0x02
ARPHRD_ETHER = 1
ETH_P_ARP = 0x0806

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(env: OcfEnv) -> Address:
    text = env.required("ip")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise AgentFailure(f"'{text}' is not an IPv4 or IPv6 address", OcfRc.ERR_CONFIGURED) from None


def _placement(env: OcfEnv, rtnl: Rtnl) -> tuple[int, int]:
    """(interface index, prefix length) for the address."""
    addr = _address(env)
    nic, netmask = env.param("nic"), env.param("cidr_netmask")
    prefix = int(netmask) if netmask.isdigit() else None
    if netmask and prefix is None:
        raise AgentFailure(
            f"cidr_netmask must be a prefix length such as 24, not {netmask!r}", OcfRc.ERR_CONFIGURED
        )
    index = _lookup_nic(nic) if nic else None
    for if_index, text, length in rtnl.addresses():
        other = ipaddress.ip_address(text)
        if other.version != addr.version or other == addr or (index is not None and if_index != index):
            continue
        if addr in ipaddress.ip_network(f"{other}/{length}", strict=False):
            return if_index, prefix if prefix is not None else length
    if index is not None and prefix is not None:
        return index, prefix
    where = f"interface {nic}" if nic else "any interface"
    raise AgentFailure(
        f"no subnet on {where} contains {addr}: set nic and cidr_netmask to place it explicitly",
        OcfRc.ERR_ARGS,
    )


def _lookup_nic(nic: str) -> int:
    try:
        return socket.if_nametoindex(nic)
    except OSError:
        raise AgentFailure(f"interface {nic} does not exist on this node", OcfRc.ERR_ARGS) from None


def _present(rtnl: Rtnl, addr: Address) -> int | None:
    """The index of the interface holding ``addr``, or None."""
    return next((i for i, text, _ in rtnl.addresses() if ipaddress.ip_address(text) == addr), None)


def start(env: OcfEnv) -> int:
    addr = _address(env)
    with Rtnl() as rtnl:
        index = _present(rtnl, addr)
        if index is None:
            index, prefix = _placement(env, rtnl)
            flags = IFA_F_NODAD if addr.version == 6 else 0
            rtnl.add_address(index, str(addr), prefix, flags)
        link = rtnl.link(index)
    count = int(env.number("arp_count", 5))
    interval = env.number("arp_interval", 200) / 1000.0
    if link.hwtype == ARPHRD_ETHER and link.mac and count > 0:
        mac = bytes.fromhex(link.mac.replace(":", ""))
        _announce(env, lambda: _send_announcement(addr, link.name, index, mac), count, interval)
    return OcfRc.SUCCESS


def _send_announcement(addr: Address, ifname: str, index: int, mac: bytes) -> bool:
    """One gratuitous ARP or unsolicited neighbour advertisement; False (and a warning) if it failed."""
    try:
        if addr.version == 4:
            _send_garp(addr.packed, ifname, mac)
        else:
            _send_unsolicited_na(str(addr), addr.packed, index, mac)
    except OSError as exc:
        print(f"warning: could not announce {addr} on {ifname}: {exc}", flush=True)
        return False
    return True


def _announce(env: OcfEnv, send: Callable[[], bool], count: int, interval: float) -> None:
    """The first announcement now; the other ``count - 1`` from a detached child."""
    _stop_announcer(env)  # a previous start's announcer would only duplicate ours
    if not send() or count < 2:
        return
    try:
        pid = os.fork()
    except OSError as exc:  # the address is up and announced once: that start succeeded all the same
        print(f"warning: no further announcements (cannot fork an announcer: {exc})", flush=True)
        return
    if pid == 0:
        _announcer(send, count - 1, interval)
    started = process_start_time(pid) or ""
    with open(_announcer_pidfile(env), "w", encoding="ascii") as handle:
        handle.write(f"{pid} {started}\n")


def _announcer(send: Callable[[], bool], count: int, interval: float) -> None:
    """The background child: its own session, and no hold on the agent's pipes (the executor reads them until
    they close), so neither the agent's exit nor the LRM waits for it."""
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        for _ in range(count):
            time.sleep(interval)
            if not send():
                break
    finally:
        os._exit(0)


def _announcer_pidfile(env: OcfEnv) -> str:
    path = env.state_path("vip-announcer") + ".pid"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return path


def _stop_announcer(env: OcfEnv) -> None:
    """End the announcer a start left behind (if it still runs), so a stopped address is not announced."""
    path = _announcer_pidfile(env)
    try:
        with open(path, encoding="ascii") as handle:
            words = handle.read().split()
    except FileNotFoundError:
        return
    if len(words) == 2 and words[0].isdigit() and process_start_time(int(words[0])) == words[1]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(words[0]), signal.SIGTERM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _send_garp(ip: bytes, ifname: str, mac: bytes) -> None:
    frame = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\x00" * 6 + ip
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((ifname, 0))
        sock.send(frame + arp)


def _send_unsolicited_na(address: str, ip: bytes, index: int, mac: bytes) -> None:
    # ICMPv6 type 136, Override flag, target = our address, option 2 = our link-layer address.
    # The kernel fills in the ICMPv6 checksum for raw ICMPv6 sockets.
    packet = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + ip + struct.pack("!BB", 2, 1) + mac
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.bind((address, 0, 0, 0))
        sock.sendto(packet, ("ff02::1", 0, 0, index))


def stop(env: OcfEnv) -> int:
    addr = _address(env)
    _stop_announcer(env)
    with Rtnl() as rtnl:
        for index, text, prefix in rtnl.addresses():
            if ipaddress.ip_address(text) == addr:
                rtnl.delete_address(index, text, prefix)
    return OcfRc.SUCCESS


def monitor(env: OcfEnv) -> int:
    addr = _address(env)
    with Rtnl() as rtnl:
        index = _present(rtnl, addr)
    if index is None:
        return OcfRc.NOT_RUNNING
    nic = env.param("nic")
    if nic and index != _lookup_nic(nic):
        raise AgentFailure(f"{addr} is on another interface than {nic}", OcfRc.ERR_GENERIC)
    return OcfRc.SUCCESS


def validate(env: OcfEnv) -> int:
    _address(env)
    with Rtnl() as rtnl:
        _placement(env, rtnl)
    return OcfRc.SUCCESS


ACTIONS: dict[str, Action] = {"start": start, "stop": stop, "monitor": monitor, "validate-all": validate}
