"""Just enough rtnetlink for the ``vip`` agent, on the standard library: list addresses, read one link, add
and delete an address.

pyroute2 does all this and much more, but importing it costs 100-150 ms, paid by every vip action in a fresh
interpreter, and a vip start is on the failover's critical path. Messages are built and parsed by the pure
functions below; :class:`Rtnl` only sends and receives them.
"""

from __future__ import annotations

import os
import socket
import struct

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_GETLINK, RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 18, 20, 21, 22
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x300, 0x200, 0x400
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFLA_ADDRESS, IFLA_IFNAME = 1, 3

NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, interface index
IFINFOMSG = struct.Struct("=BxHiII")  # family, (pad), device type, interface index, flags, change mask
RTATTR = struct.Struct("=HH")  # length, type
ERRNO = struct.Struct("=i")
RECV_BYTES = 1 << 17


class NetlinkError(OSError):
    """The kernel refused a request (the errno says why)."""


def _align(length: int) -> int:
    return (length + 3) & ~3


def attribute(kind: int, value: bytes) -> bytes:
    """One route attribute, padded to the 4-byte boundary the kernel expects."""
    raw = RTATTR.pack(RTATTR.size + len(value), kind) + value
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def attributes(data: bytes, offset: int) -> dict[int, bytes]:
    """The route attributes in ``data`` from ``offset`` (the last of a repeated kind wins)."""
    found: dict[int, bytes] = {}
    while offset + RTATTR.size <= len(data):
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size:
            break
        found[kind & 0x3FFF] = data[offset + RTATTR.size : offset + length]  # without NESTED/BYTEORDER bits
        offset += _align(length)
    return found


def request(kind: int, flags: int, sequence: int, body: bytes) -> bytes:
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags | NLM_F_REQUEST, sequence, 0) + body


def messages(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, sequence, payload) of every netlink message in one datagram."""
    found = []
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, flags, sequence, _ = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            break
        found.append((kind, flags, sequence, data[offset + NLMSGHDR.size : offset + length]))
        offset += _align(length)
    return found


def parse_address(payload: bytes) -> tuple[int, str, int] | None:
    """(interface index, address, prefix length) from an RTM_NEWADDR payload; None for other families."""
    family, prefix, _, _, index = IFADDRMSG.unpack_from(payload)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    attrs = attributes(payload, IFADDRMSG.size)
    # IFA_LOCAL is our own address; IFA_ADDRESS is the peer's on point-to-point links, else the same.
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
    if raw is None:
        return None
    return index, socket.inet_ntop(family, raw), prefix


def address_body(family: int, packed: bytes, prefix: int, index: int, flags: int = 0) -> bytes:
    body = IFADDRMSG.pack(family, prefix, flags & 0xFF, 0, index)
    body += attribute(IFA_LOCAL, packed) + attribute(IFA_ADDRESS, packed)
    if flags > 0xFF:
        body += attribute(IFA_FLAGS, struct.pack("=I", flags))
    return body


class Link:
    """What the vip agent needs of an interface."""

    __slots__ = ("hwtype", "index", "mac", "name")

    def __init__(self, index: int, name: str, hwtype: int, mac: str) -> None:
        self.index, self.name, self.hwtype, self.mac = index, name, hwtype, mac


def parse_link(payload: bytes) -> Link:
    _, hwtype, index, _, _ = IFINFOMSG.unpack_from(payload)
    attrs = attributes(payload, IFINFOMSG.size)
    name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode(errors="replace")
    mac = ":".join(f"{b:02x}" for b in attrs.get(IFLA_ADDRESS, b""))
    return Link(index, name, hwtype, mac)


class Rtnl:
    """A route netlink socket in the caller's network namespace; one request at a time."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._sequence = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def addresses(self) -> list[tuple[int, str, int]]:
        """Every IPv4/IPv6 address on this node: (interface index, address, prefix length)."""
        replies = self._exchange(RTM_GETADDR, NLM_F_DUMP, IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))
        return [found for _, payload in replies if (found := parse_address(payload)) is not None]

    def link(self, index: int) -> Link:
        replies = self._exchange(RTM_GETLINK, 0, IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0))
        if not replies:
            raise NetlinkError(f"the kernel did not describe interface {index}")
        return parse_link(replies[0][1])

    def add_address(self, index: int, address: str, prefix: int, flags: int = 0) -> None:
        family, packed = _pack(address)
        body = address_body(family, packed, prefix, index, flags)
        self._exchange(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)

    def delete_address(self, index: int, address: str, prefix: int) -> None:
        family, packed = _pack(address)
        self._exchange(RTM_DELADDR, NLM_F_ACK, address_body(family, packed, prefix, index))

    def _exchange(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Send one request; its replies (type, payload) up to the dump's end, the ack or the one answer."""
        self._sequence += 1
        self._sock.send(request(kind, flags, self._sequence, body))
        replies: list[tuple[int, bytes]] = []
        while True:
            for reply_kind, reply_flags, sequence, payload in messages(self._sock.recv(RECV_BYTES)):
                if sequence != self._sequence:
                    continue  # an answer to an earlier request, or a notification
                if reply_kind == NLMSG_DONE:
                    return replies
                if reply_kind == NLMSG_ERROR:
                    (error,) = ERRNO.unpack_from(payload)
                    if error:
                        raise NetlinkError(-error, os.strerror(-error))
                    return replies
                replies.append((reply_kind, payload))
                if not reply_flags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return replies


def _pack(address: str) -> tuple[int, bytes]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return family, socket.inet_pton(family, address)
