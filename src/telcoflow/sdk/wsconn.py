"""A lean WebSocket client: websockets' sans-I/O protocol on a plain asyncio.Protocol.

Why not ``websockets.asyncio.client``: its per-message futures, assembler and
queues cost several times the framing itself, and the voice plane moves 50
frames a second per call in each direction. Here each received frame is
handed synchronously to a :class:`WsHandler`; sending is a synchronous
``transport.write``. websockets still does all the RFC 6455 work (handshake,
masking, close handshake, ping answers, size limits).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable, Mapping
from typing import Protocol, cast

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from ._log import WS_LOGGER, get_logger

logger = get_logger("wsconn")

CLOSE_TIMEOUT = 5.0


class WsHandler(Protocol):
    def ws_text(self, data: bytes) -> None: ...

    def ws_binary(self, data: bytes) -> None: ...

    def ws_closed(self, code: int | None, reason: str) -> None: ...


class HandshakeRejected(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(body or f"HTTP {status}")
        self.status = status
        self.body = body


class WsConnection(asyncio.Protocol):
    """One client WebSocket; create it with :func:`open_ws`."""

    def __init__(self, proto: ClientProtocol, handler: WsHandler, headers: Mapping[str, str],
                 ping_interval: float | None, ping_timeout: float | None) -> None:
        self._proto = proto
        self._handler = handler
        self._headers = headers
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._handshake: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._frag_op: Opcode | None = None
        self._frag = bytearray()
        self._opened = False

    # ── asyncio.Protocol ────────────────────────────────────────────────────

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)
        request = self._proto.connect()
        for name, value in self._headers.items():
            request.headers[name] = value
        self._proto.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            self._proto.receive_data(data)
        except EOFError:
            return
        self._process()

    def eof_received(self) -> bool | None:
        self._proto.receive_eof()
        self._process()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._proto.receive_eof()
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionError("connection closed during handshake"))
        if not self._closed.done():
            self._closed.set_result(None)
        if self._opened:
            self._opened = False
            self._handler.ws_closed(self._proto.close_code, self._proto.close_reason or "")

    # ── public ──────────────────────────────────────────────────────────────

    @property
    def is_open(self) -> bool:
        return self._proto.state is State.OPEN

    def send_text(self, text: str) -> None:
        if self._proto.state is State.OPEN:
            self._proto.send_text(text.encode())
            self._flush()
        else:
            raise ConnectionError("WebSocket is not open")

    def send_binary(self, data: bytes) -> None:
        if self._proto.state is State.OPEN:
            self._proto.send_binary(data)
            self._flush()
        else:
            raise ConnectionError("WebSocket is not open")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake; abort the TCP link if the peer does not finish it."""
        if self._proto.state is State.OPEN:
            self._proto.send_close(code, reason)
            self._flush()
            self._arm("close", CLOSE_TIMEOUT, self.abort)
        elif self._transport is not None and self._proto.state is State.CONNECTING:
            self._transport.close()
        await asyncio.shield(self._closed)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    # ── internals ───────────────────────────────────────────────────────────

    def _process(self) -> None:
        for event in self._proto.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Response):
                self._handshake_done(event)
        self._flush()
        if self._proto.close_expected():
            self._arm("close", CLOSE_TIMEOUT, self.abort)

    def _frame(self, frame: Frame) -> None:
        op = frame.opcode
        data = frame.data if type(frame.data) is bytes else bytes(frame.data)
        if op is Opcode.BINARY or op is Opcode.TEXT:
            if frame.fin:
                self._deliver(op, data)
            else:
                self._frag_op = op
                self._frag = bytearray(data)
        elif op is Opcode.CONT and self._frag_op is not None:
            self._frag += data
            if frame.fin:
                op, self._frag_op = self._frag_op, None
                self._deliver(op, bytes(self._frag))
                self._frag = bytearray()
        elif op is Opcode.PONG:
            self._cancel("pong")
            self._schedule_ping()

    def _deliver(self, op: Opcode, data: bytes) -> None:
        try:
            if op is Opcode.BINARY:
                self._handler.ws_binary(data)
            else:
                self._handler.ws_text(data)
        except Exception:
            # A handler bug must not kill the link (and with it the call).
            logger.exception("Error handling a WebSocket message")

    def _handshake_done(self, response: Response) -> None:
        if self._handshake.done():
            return
        if self._proto.state is State.OPEN:
            self._opened = True
            self._handshake.set_result(None)
            self._schedule_ping()
            return
        body = bytes(response.body or b"").decode("utf-8", "replace").strip()
        if not body and response.status_code == 426:
            body = "Server rejected WebSocket upgrade (HTTP 426). Upgrade required."
        self._handshake.set_exception(HandshakeRejected(response.status_code, body))

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for chunk in self._proto.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()

    def _schedule_ping(self) -> None:
        if self._ping_interval:
            self._arm("ping", self._ping_interval, self._ping)

    def _ping(self) -> None:
        if self._proto.state is not State.OPEN:
            return
        self._proto.send_ping(os.urandom(4))
        self._flush()
        if self._ping_timeout:
            self._arm("pong", self._ping_timeout, self._pong_missing)

    def _pong_missing(self) -> None:
        logger.warning("No pong within %.0f s; dropping the connection", self._ping_timeout)
        self.abort()

    def _arm(self, name: str, delay: float, callback: Callable[[], object]) -> None:
        self._cancel(name)
        self._timers[name] = self._loop.call_later(delay, callback)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()


async def open_ws(url: str, headers: Mapping[str, str], handler: WsHandler, *,
                  ssl_context: ssl.SSLContext | None = None, open_timeout: float = 10.0,
                  ping_interval: float | None = None, ping_timeout: float | None = None,
                  max_size: int = 2 ** 20) -> WsConnection:
    """Connect, run the opening handshake and return the open connection.

    Raises OSError / ssl.SSLError / HandshakeRejected / TimeoutError.
    """
    uri = parse_uri(url)
    proto = ClientProtocol(uri, max_size=max_size, logger=WS_LOGGER)
    conn = WsConnection(proto, handler, headers, ping_interval, ping_timeout)
    tls: ssl.SSLContext | None = None
    if uri.secure:
        tls = ssl_context if ssl_context is not None else ssl.create_default_context()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(open_timeout):
            await loop.create_connection(lambda: conn, uri.host, uri.port, ssl=tls,
                                         server_hostname=uri.host if tls else None)
            await conn._handshake
    except BaseException:
        conn.abort()
        raise
    return conn
