"""The asyncio UDP shell of the witness (``hakeeper witness``): authenticated reports in, votes out.

It speaks the cluster's wire format as node id 0 (``WITNESS_NODE_ID``), so only holders of the cluster
key can ask, and every answer is sealed for the asking node. It has no configuration of the cluster's
nodes: any node id the key authenticates may report. Replies go to the address a report came from.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import msgspec

from hakeeper.messaging.transport import Address, bind_udp, new_boot_id
from hakeeper.messaging.wire import WITNESS_NODE_ID, Channel, Delivered, WireCodec
from hakeeper.messaging.witness import (
    MAX_VIEW,
    WitnessArbiter,
    WitnessReport,
    witness_decoder,
    witness_encoder,
)

log = logging.getLogger(__name__)


class WitnessServer(asyncio.DatagramProtocol):
    """One witness for one cluster, listening on one UDP address."""

    def __init__(
        self,
        listen: Address,
        *,
        cluster_key: bytes,
        cluster_name: str,
        report_timeout: float = 0.6,
    ) -> None:
        self.listen = listen
        self.cluster_name = cluster_name
        self.codec = WireCodec(
            node_id=WITNESS_NODE_ID, cluster_name=cluster_name, cluster_key=cluster_key, boot_id=new_boot_id()
        )
        self.arbiter = WitnessArbiter(report_timeout)
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._counters: dict[str, int] = {}
        self._holder: frozenset[int] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._loop.create_datagram_endpoint(lambda: self, sock=bind_udp(self.listen, "witness"))

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            await asyncio.sleep(0)  # asyncio closes the socket on the next turn

    @property
    def address(self) -> Address:
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    @property
    def counters(self) -> dict[str, int]:
        return {**self.codec.counters, **self._counters}

    # --- asyncio protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        self._count("socket_errors")

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self._loop is not None
        now = self._loop.time()
        result = self.codec.open(data, now)
        if not isinstance(result, Delivered):
            if result.notice:
                log.warning("from %s:%s: %s", addr[0], addr[1], result.notice)
            return
        report = self._report(result)
        if report is None:
            return
        reply = self.arbiter.on_report(now, result.sender, report.view, report.seq)
        self._log_holder()
        packet = self.codec.seal(result.sender, Channel.WITNESS, witness_encoder.encode(reply))
        if self._transport is not None:
            self._transport.sendto(packet, (str(addr[0]), int(addr[1])))
            self._count("replies")

    def _report(self, packet: Delivered) -> WitnessReport | None:
        if packet.channel != Channel.WITNESS or packet.sender == WITNESS_NODE_ID:
            self._count("dropped_not_a_report")
            return None
        try:
            msg = witness_decoder.decode(packet.payload)
        except msgspec.DecodeError:
            self._count("dropped_malformed_report")
            return None
        if not isinstance(msg, WitnessReport) or len(msg.view) > MAX_VIEW:
            self._count("dropped_not_a_report")
            return None
        return msg

    def _log_holder(self) -> None:
        holder = self.arbiter.holder
        if holder != self._holder:
            self._holder = holder
            nodes = ", ".join(str(n) for n in sorted(holder)) if holder else "nobody"
            log.info("the witness vote now goes to the partition of nodes: %s", nodes)

    def _count(self, key: str) -> None:
        self._counters[key] = self._counters.get(key, 0) + 1
