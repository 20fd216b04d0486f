"""``ocf:hakeeper:vip``: a virtual IPv4 or IPv6 address, managed through netlink (pyroute2).

start adds the address (IPv6 without duplicate address detection, so it answers at once) and announces it:
gratuitous ARP for IPv4, unsolicited neighbour advertisements for IPv6, ``arp_count`` times. monitor checks
that the address is on the interface; stop removes it. Without ``nic`` the interface is the one holding an
address in the same subnet (as IPaddr2's findif does); without ``cidr_netmask`` that address's prefix is used.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import time
from typing import Any

from hakeeper.agents.builtin.common import Action, AgentFailure, OcfEnv
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


def _address(env: OcfEnv) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    text = env.required("ip")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise AgentFailure(f"'{text}' is not an IPv4 or IPv6 address", OcfRc.ERR_CONFIGURED) from None


def _ipr() -> Any:
    try:
        from pyroute2 import IPRoute
    except ImportError:
        raise AgentFailure("pyroute2 is not installed", OcfRc.ERR_INSTALLED) from None
    return IPRoute()


def _addresses(ipr: Any) -> list[tuple[int, str, int]]:
    return [(a["index"], a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr()]


def _placement(env: OcfEnv, ipr: Any) -> tuple[int, int]:
    """(interface index, prefix length) for the address."""
    addr = _address(env)
    nic, netmask = env.param("nic"), env.param("cidr_netmask")
    prefix = int(netmask) if netmask.isdigit() else None
    if netmask and prefix is None:
        raise AgentFailure(
            f"cidr_netmask must be a prefix length such as 24, not {netmask!r}", OcfRc.ERR_CONFIGURED
        )
    index = _lookup_nic(ipr, nic) if nic else None
    for if_index, text, length in _addresses(ipr):
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


def _lookup_nic(ipr: Any, nic: str) -> int:
    found = ipr.link_lookup(ifname=nic)
    if not found:
        raise AgentFailure(f"interface {nic} does not exist on this node", OcfRc.ERR_ARGS)
    return int(found[0])


def _present(ipr: Any, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int | None:
    """The index of the interface holding ``addr``, or None."""
    return next((i for i, text, _ in _addresses(ipr) if ipaddress.ip_address(text) == addr), None)


def start(env: OcfEnv) -> int:
    addr = _address(env)
    with contextlib.closing(_ipr()) as ipr:
        index = _present(ipr, addr)
        if index is None:
            index, prefix = _placement(env, ipr)
            flags = IFA_F_NODAD if addr.version == 6 else 0
            ipr.addr("add", index=index, address=str(addr), prefixlen=prefix, flags=flags)
        link = ipr.get_links(index)[0]
        mac, ifname, hwtype = link.get_attr("IFLA_ADDRESS"), link.get_attr("IFLA_IFNAME"), link["ifi_type"]
    count = int(env.number("arp_count", 5))
    interval = env.number("arp_interval", 200) / 1000.0
    if hwtype == ARPHRD_ETHER and mac:
        _announce(addr, ifname, index, mac, count, interval)
    return OcfRc.SUCCESS


def _announce(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
    ifname: str,
    index: int,
    mac: str,
    count: int,
    interval: float,
) -> None:
    mac_bytes = bytes.fromhex(mac.replace(":", ""))
    for i in range(count):
        if i:
            time.sleep(interval)
        try:
            if addr.version == 4:
                _send_garp(addr.packed, ifname, mac_bytes)
            else:
                _send_unsolicited_na(str(addr), addr.packed, index, mac_bytes)
        except OSError as exc:
            print(f"warning: could not announce {addr} on {ifname}: {exc}", flush=True)
            return


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
    with contextlib.closing(_ipr()) as ipr:
        for index, text, prefix in _addresses(ipr):
            if ipaddress.ip_address(text) == addr:
                ipr.addr("del", index=index, address=text, prefixlen=prefix)
    return OcfRc.SUCCESS


def monitor(env: OcfEnv) -> int:
    addr = _address(env)
    with contextlib.closing(_ipr()) as ipr:
        index = _present(ipr, addr)
        if index is None:
            return OcfRc.NOT_RUNNING
        nic = env.param("nic")
        if nic and index != _lookup_nic(ipr, nic):
            raise AgentFailure(f"{addr} is on another interface than {nic}", OcfRc.ERR_GENERIC)
    return OcfRc.SUCCESS


def validate(env: OcfEnv) -> int:
    _address(env)
    with contextlib.closing(_ipr()) as ipr:
        _placement(env, ipr)
    return OcfRc.SUCCESS


ACTIONS: dict[str, Action] = {"start": start, "stop": stop, "monitor": monitor, "validate-all": validate}
