"""HTTP/1.1 + WebSocket server on one port, over plain asyncio protocols.

Why not an ASGI server: the gateway needs the TLS peer certificate (mTLS
connector identity), which ASGI servers do not expose, and audio frames are
cheapest when a received frame goes straight from the transport callback to
its handler with no per-connection reader task or queue. Parsing stays with
the libraries that do it well: ``h11`` for HTTP requests and the sans-I/O
``websockets.server.ServerProtocol`` for the WebSocket handshake and frames.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import h11
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.protocol import State
from websockets.server import ServerProtocol

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
WRITE_BUFFER_LIMIT = 512 * 1024  # a reader this far behind is dropped, not buffered forever


class NoDebugLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """For websockets, which logs every handshake header at DEBUG — credentials included."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging API
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WS_LOGGER = NoDebugLogger(logging.getLogger("telcoflow.server.websocket"), {})


@dataclass(slots=True)
class HttpRequest:
    method: str
    target: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    peer_cert: dict[str, Any] | None = None
    client: tuple[str, int] | None = None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


class WsHandler(Protocol):
    """What an accepted WebSocket talks to; calls arrive on the event loop thread."""

    def on_open(self, conn: WsConnection) -> None: ...
    def on_text(self, text: str) -> None: ...
    def on_binary(self, data: bytes) -> None: ...
    def on_close(self, code: int | None, reason: str) -> None: ...


@dataclass(slots=True)
class WsAccept:
    handler: WsHandler
    max_message_bytes: int = 1 << 16


@dataclass(slots=True)
class WsReject:
    status: int
    text: str


Router = Callable[[HttpRequest, bool], "HttpResponse | WsAccept | WsReject"]


class WsConnection:
    """The send side of one accepted WebSocket, handed to its handler."""

    __slots__ = ("_proto", "_transport", "_closed", "peer")

    def __init__(self, proto: ServerProtocol, transport: asyncio.Transport,
                 peer: tuple[str, int] | None) -> None:
        self._proto = proto
        self._transport = transport
        self._closed = False
        self.peer = peer

    @property
    def open(self) -> bool:
        return not self._closed and self._proto.state is State.OPEN

    # Data frames from a server are unmasked and unfragmented: their framing is two to ten
    # header bytes, written here directly; going through the sans-I/O protocol cost more
    # than the rest of a frame's handling. Control frames (close) still go through it.
    def send_text(self, text: str) -> None:
        if self.open:
            self._write_frame(0x81, text.encode())

    def send_binary(self, data: bytes) -> None:
        if self.open:
            self._write_frame(0x82, data)

    def _write_frame(self, first: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            head = bytes((first, size))
        elif size < 65536:
            head = bytes((first, 126)) + size.to_bytes(2, "big")
        else:
            head = bytes((first, 127)) + size.to_bytes(8, "big")
        transport = self._transport
        transport.write(head + payload)
        if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT and not self._closed:
            logger.warning("dropping a WebSocket peer that stopped reading (%s)", self.peer)
            self.abort()

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.open:
            self._proto.send_close(code, reason[:120])
            self._flush()

    def abort(self) -> None:
        self._closed = True
        self._transport.abort()

    def _flush(self) -> None:
        for chunk in self._proto.data_to_send():
            if chunk:
                self._transport.write(chunk)
            else:
                self._transport.write_eof() if self._transport.can_write_eof() else None
                self._transport.close()
        if self._transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT and not self._closed:
            logger.warning("dropping a WebSocket peer that stopped reading (%s)", self.peer)
            self.abort()


class HttpWsProtocol(asyncio.Protocol):
    """One TCP (or TLS) connection: HTTP requests until it upgrades to WebSocket."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._transport: asyncio.Transport | None = None
        self._head = bytearray()
        self._h11: h11.Connection | None = None
        self._pending: tuple[h11.Request, bytearray] | None = None
        self._ws: ServerProtocol | None = None
        self._ws_conn: WsConnection | None = None
        self._handler: WsHandler | None = None
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self._closed_reported = False
        self._rx = bytearray()  # the start of a frame not yet complete (fast path)
        self._max_message = 1 << 16

    # ── asyncio.Protocol ──────────────────────────────────────────────────
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._ws is not None:
            self._ws_receive(data)
        elif self._h11 is not None:
            self._h11_receive(data)
        else:
            self._sniff(data)

    def eof_received(self) -> bool | None:
        if self._ws is not None:
            self._ws.receive_eof()
            self._ws_drain_events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._report_close()

    # ── routing the first request ─────────────────────────────────────────
    def _sniff(self, data: bytes) -> None:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD_BYTES:
                self._plain_error(431, "request headers too large")
            return
        head = bytes(self._head[:end]).lower()
        buffered, self._head = bytes(self._head), bytearray()
        if b"\nupgrade:" in head and b"websocket" in head:
            self._ws = ServerProtocol(max_size=1 << 16, logger=_WS_LOGGER)
            self._ws_receive(buffered)
        else:
            self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
            self._h11_receive(buffered)

    def _plain_error(self, status: int, text: str) -> None:
        assert self._transport is not None
        body = text.encode()
        self._transport.write(
            f"HTTP/1.1 {status} Error\r\ncontent-type: text/plain\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
        self._transport.close()

    def _peer_cert(self) -> dict[str, Any] | None:
        assert self._transport is not None
        sslobj = self._transport.get_extra_info("ssl_object")
        if isinstance(sslobj, ssl.SSLObject):
            cert = sslobj.getpeercert()
            return cert or None
        return None

    def _client(self) -> tuple[str, int] | None:
        assert self._transport is not None
        peer = self._transport.get_extra_info("peername")
        return (peer[0], peer[1]) if isinstance(peer, tuple) else None

    # ── HTTP ──────────────────────────────────────────────────────────────
    def _h11_receive(self, data: bytes) -> None:
        assert self._h11 is not None and self._transport is not None
        conn = self._h11
        conn.receive_data(data)
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._plain_error(400, f"malformed HTTP request: {exc}")
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._pending = (event, bytearray())
            elif isinstance(event, h11.Data) and self._pending is not None:
                body = self._pending[1]
                body += event.data
                if len(body) > MAX_BODY_BYTES:
                    self._plain_error(413, "request body too large")
                    return
            elif isinstance(event, h11.EndOfMessage) and self._pending is not None:
                req, body = self._pending
                self._pending = None
                self._answer_http(req, bytes(body))
                if conn.our_state is h11.MUST_CLOSE or conn.our_state is h11.CLOSED:
                    self._transport.close()
                    return
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                self._transport.close()
                return

    def _answer_http(self, req: h11.Request, body: bytes) -> None:
        assert self._h11 is not None and self._transport is not None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in req.headers}
        request = HttpRequest(req.method.decode(), req.target.decode("latin-1"), headers, body,
                              self._peer_cert(), self._client())
        try:
            outcome = self._router(request, False)
        except Exception:
            logger.exception("HTTP handler failed for %s %s", request.method, request.path)
            outcome = HttpResponse(500, b'{"code":"INTERNAL_ERROR","message":"internal error"}')
        if not isinstance(outcome, HttpResponse):
            outcome = HttpResponse(400, b'{"code":"INVALID_REQUEST",'
                                        b'"message":"this endpoint needs a WebSocket upgrade"}')
        hdrs = [("content-type", outcome.content_type),
                ("content-length", str(len(outcome.body))), *outcome.headers]
        out = self._h11.send(h11.Response(status_code=outcome.status, headers=hdrs))
        out += self._h11.send(h11.Data(data=outcome.body)) or b""
        out += self._h11.send(h11.EndOfMessage()) or b""
        self._transport.write(out)

    # ── WebSocket ─────────────────────────────────────────────────────────
    def _ws_receive(self, data: bytes) -> None:
        assert self._ws is not None
        if self._handler is not None and self._ws.state is State.OPEN:
            self._ws_fast(data)
            return
        if self._rx:  # a frame the fast path had begun: websockets gets all of it
            data, self._rx = bytes(self._rx) + data, bytearray()
        self._ws.receive_data(data)
        self._ws_drain_events()

    def _ws_fast(self, data: bytes) -> None:
        """Deliver whole, masked, unfragmented text and binary frames without websockets.

        Why: its generator-based parser was the largest cost per audio frame after the
        socket calls. Every other frame (ping, close, fragments, anything malformed or
        too large) is handed to websockets whole, so its parser only ever sees complete
        frames and stays in step; websockets answers pings and runs the close handshake.
        """
        ws = self._ws
        assert ws is not None
        if self._rx:
            self._rx += data
            buf, self._rx = bytes(self._rx), bytearray()
        else:
            buf = data
        end, pos = len(buf), 0
        while pos < end and ws.state is State.OPEN:
            first, second = buf[pos], buf[pos + 1] if end - pos > 1 else 0
            size, head = second & 0x7F, pos + 2
            if size == 126:
                size, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), pos + 4
            elif size == 127:
                size, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), pos + 10
            if head > end:  # the header itself is not complete yet
                self._rx += buf[pos:]
                return
            if size > self._max_message or size > 125 and first & 0x08:
                break  # websockets refuses it and closes the connection
            stop = head + 4 + size if second & 0x80 else head + size
            if stop > end:
                self._rx += buf[pos:]
                return
            if (first == 0x82 or first == 0x81) and second & 0x80 and \
                    self._fragment_opcode is None:
                payload = apply_mask(buf[head + 4:stop], buf[head:head + 4])
                self._deliver(Opcode.TEXT if first == 0x81 else Opcode.BINARY, payload)
            else:
                ws.receive_data(buf[pos:stop])
                self._ws_drain_events()
            pos = stop
        if pos < end:
            ws.receive_data(buf[pos:])
            self._ws_drain_events()

    def _ws_drain_events(self) -> None:
        assert self._ws is not None and self._transport is not None
        for event in self._ws.events_received():
            if isinstance(event, WsRequest):
                self._ws_handshake(event)
            elif isinstance(event, Frame):
                self._ws_frame(event)
        self._ws_flush()
        if self._ws.state is State.CLOSED:
            self._report_close()

    def _ws_flush(self) -> None:
        assert self._ws is not None and self._transport is not None
        for chunk in self._ws.data_to_send():
            if chunk:
                self._transport.write(chunk)
            else:
                self._transport.close()

    def _ws_handshake(self, req: WsRequest) -> None:
        assert self._ws is not None and self._transport is not None
        headers = {k.lower(): v for k, v in req.headers.raw_items()}
        request = HttpRequest("GET", req.path, headers, b"", self._peer_cert(), self._client())
        try:
            outcome = self._router(request, True)
        except Exception:
            logger.exception("WebSocket router failed for %s", request.path)
            outcome = WsReject(500, "internal error")
        if isinstance(outcome, HttpResponse):
            outcome = WsReject(outcome.status, outcome.body.decode(errors="replace"))
        if isinstance(outcome, WsReject):
            response = self._ws.reject(outcome.status, outcome.text)
            self._ws.send_response(response)
            return
        response = self._ws.accept(req)
        self._ws.send_response(response)
        if response.status_code != 101:
            return
        self._ws.max_message_size = self._max_message = outcome.max_message_bytes
        self._handler = outcome.handler
        self._ws_conn = WsConnection(self._ws, self._transport, request.client)
        self._ws_flush()
        self._handler.on_open(self._ws_conn)

    def _ws_frame(self, frame: Frame) -> None:
        opcode, data = frame.opcode, bytes(frame.data)
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            if not frame.fin:
                self._fragment_opcode, self._fragments = opcode, [data]
                return
            self._deliver(opcode, data)
        elif opcode is Opcode.CONT and self._fragment_opcode is not None:
            self._fragments.append(data)
            if frame.fin:
                payload = b"".join(self._fragments)
                kind, self._fragment_opcode, self._fragments = self._fragment_opcode, None, []
                self._deliver(kind, payload)

    def _deliver(self, opcode: Opcode, payload: bytes) -> None:
        handler = self._handler
        if handler is None:
            return
        try:
            if opcode is Opcode.TEXT:
                try:
                    text = payload.decode()
                except UnicodeDecodeError:
                    assert self._ws_conn is not None
                    self._ws_conn.close(1007, "text frame is not valid UTF-8")
                    return
                handler.on_text(text)
            else:
                handler.on_binary(payload)
        except Exception:
            logger.exception("WebSocket handler failed on a frame")
            if self._ws_conn is not None:
                self._ws_conn.close(1011, "internal error while handling a frame")

    def _report_close(self) -> None:
        if self._closed_reported or self._handler is None:
            return
        self._closed_reported = True
        code = self._ws.close_code if self._ws is not None else None
        reason = (self._ws.close_reason or "") if self._ws is not None else ""
        if self._ws_conn is not None:
            self._ws_conn._closed = True
        try:
            self._handler.on_close(code, reason)
        except Exception:
            logger.exception("WebSocket close handler failed")
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


async def serve(router: Router, host: str, port: int,
                ssl_context: ssl.SSLContext | None = None) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HttpWsProtocol(router), host, port,
                                    ssl=ssl_context, reuse_address=True)
