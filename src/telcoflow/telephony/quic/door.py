"""The QUIC door: an aioquic server on UDP beside the WebSocket port."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from aioquic.asyncio.server import QuicServer, serve
from aioquic.quic.configuration import QuicConfiguration

from ...engine import Engine
from ...quic.codes import ALPN, ErrorCode
from ...server.app import Gateway
from ...server.auth import Authenticator
from ...server.config import QuicConfig
from .certs import server_identity
from .connection import GatewayConnection

logger = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 30.0       # a client gone without a word is dropped after this
MAX_STREAM_DATA = 256 * 1024  # per stream: flow control bounds what a client can queue
MAX_DATA = 4 * 1024 * 1024    # per connection
MAX_DATAGRAM_FRAME = 65536    # offered: the client decides whether audio rides DATAGRAMs
PLANE = "quic"  # in telcoflow_connections and telcoflow_auth_failures_total


class QuicDoor:
    def __init__(self, gateway: Gateway, config: QuicConfig) -> None:
        self.gateway = gateway
        self.engine: Engine = gateway.engine
        self.auth: Authenticator = gateway.auth
        self.config = config
        self.connections: set[GatewayConnection] = set()
        self._server: QuicServer | None = None

    def configuration(self) -> QuicConfiguration:
        configuration = QuicConfiguration(
            is_client=False, alpn_protocols=[ALPN], idle_timeout=IDLE_TIMEOUT_S,
            max_stream_data=MAX_STREAM_DATA, max_data=MAX_DATA,
            max_datagram_frame_size=MAX_DATAGRAM_FRAME)
        self.config.fingerprint = server_identity(configuration, self.config.host,
                                                  self.config.cert, self.config.key)
        return configuration

    async def start(self) -> None:
        self._server = await serve(
            self.config.host, self.config.port, configuration=self.configuration(),
            create_protocol=functools.partial(GatewayConnection, door=self))
        transport: Any = self._server._transport
        if self.config.port == 0:
            self.config.port = int(transport.get_extra_info("sockname")[1])
        logger.info("QUIC door on udp %s:%d (ALPN %s), certificate SHA-256 %s",
                    self.config.host, self.config.port, ALPN, self.config.fingerprint)

    async def stop(self) -> None:
        for conn in list(self.connections):
            conn.shut(ErrorCode.SHUTDOWN, "the gateway is shutting down")
        if self._server is not None:
            self._server.close()
            self._server = None

    def opened(self, conn: GatewayConnection) -> None:
        if len(self.connections) >= self.config.max_connections:
            # refused before its handshake: the close goes out with the first answer
            asyncio.get_running_loop().call_soon(conn.shut, ErrorCode.BUSY,
                                                 "too many QUIC connections")
        self.connections.add(conn)
        if self.gateway.metrics is not None:
            self.gateway.metrics.connection_opened(PLANE)

    def closed(self, conn: GatewayConnection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            if self.gateway.metrics is not None:
                self.gateway.metrics.connection_closed(PLANE)
