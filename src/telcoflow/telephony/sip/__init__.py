"""SIP trunks: UDP SIP and RTP G.711 with RFC 4733 DTMF (see docs/sip.md).

:func:`install` puts a SIP endpoint on a gateway: a UDP socket for
signalling driven by :class:`~.ua.SipUa` (on the engine's timer), an RTP
port per call leg, and a dialler for trunk numbers.
"""

from __future__ import annotations

import asyncio
import logging

from ...server.app import Gateway
from ...server.config import SipConfig
from .media import RtpSocketPool
from .ua import Addr, SipUa

logger = logging.getLogger(__name__)


class SipEndpoint(asyncio.DatagramProtocol):
    """The signalling socket: datagrams in to the user agent, its datagrams out."""

    def __init__(self) -> None:
        self.ua: SipUa | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.ua is not None:
            host, port = addr[0], addr[1]
            assert isinstance(port, int)
            self.ua.receive(data, (str(host), port), asyncio.get_running_loop().time())

    def error_received(self, exc: Exception) -> None:
        logger.debug("SIP socket error: %s", exc)

    def send(self, data: bytes, addr: Addr) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)


def install(gateway: Gateway, config: SipConfig) -> SipUa:
    """SIP on ``config.host:config.port``, calls from its trunks, a dialler for their numbers."""
    endpoint = SipEndpoint()
    pool = RtpSocketPool(config.host, config.rtp_port_min, config.rtp_port_max)
    ua = SipUa(gateway.engine, config, endpoint.send,
               lambda: pool.open(asyncio.get_running_loop()), gateway.clock.now)
    endpoint.ua = ua
    gateway.engine.add_dialler(ua)
    gateway.engine.add_timed(ua)

    async def start() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: endpoint, local_addr=(config.host,
                                                                          config.port))
        if config.port == 0 and endpoint.transport is not None:
            config.port = ua.port = endpoint.transport.get_extra_info("sockname")[1]
        logger.info("SIP listening on udp %s:%d", config.host, config.port)

    async def stop() -> None:
        ua.close()
        if endpoint.transport is not None:
            endpoint.transport.close()

    gateway.add_service(start, stop)
    return ua
