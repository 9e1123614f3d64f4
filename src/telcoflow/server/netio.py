"""HTTP/1.1 + WebSocket server on one port, over plain asyncio protocols.

Why not an ASGI server: the gateway needs the TLS peer certificate (mTLS
connector identity), which ASGI servers do not expose, and audio frames are
cheapest when a received frame goes straight from the transport callback to
its handler with no per-connection reader task or queue. Parsing stays with
the libraries that do it well: ``h11`` for HTTP requests, websockets'
sans-I/O ``ServerProtocol`` for the upgrade handshake, and
:class:`telcoflow.protocol.ws.WsCodec` (the SDK's codec too) for frames.
Reads go into the codec's buffer (``BufferedProtocol``), not into a fresh
``bytes`` per read.

Every connection is bounded in time (:class:`NetTimeouts`): a request must be
complete within ``handshake`` seconds, a keep-alive connection may idle
``idle_http`` seconds, a silent WebSocket peer is pinged after
``ping_interval`` and dropped if still silent ``pong_timeout`` later, and a
peer has ``close`` seconds to finish a close the server started. What is due
when is decided by :class:`TimeoutPolicy` (sans-I/O: it is given ``now``); one
sweeper per server applies it to every connection each
``NetTimeouts.sweep_interval``, so a read costs no timer, only a flag.

And bounded in number (:class:`NetLimits`): at most ``max_connections`` in all,
and at most ``max_pending_per_source`` per source address that are not yet a
WebSocket (still reading a request, or idling between HTTP requests): the
unauthenticated state a slowloris or idle flood lives in. So one address cannot
stop another's new call; an address's open WebSockets (authenticated calls) do
not count against it. A refused connection gets a one-line 503 and is closed at
once (its descriptor is back in microseconds). Accept errors (descriptors
exhausted) are logged once per ``ACCEPT_LOG_INTERVAL`` with a count, not once
per attempt.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import h11
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol

from ..protocol.ws import NoDebugLogger, Role, TextMessage, WsClosedError, WsCodec

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
READ_BUFFER = 64 * 1024  # one per server: every connection reads into it (see get_buffer)
WS_RECV_BUFFER = 8 * 1024  # per WebSocket, for a frame cut across reads; given back when empty
WRITE_BUFFER_LIMIT = 512 * 1024  # a reader this far behind is dropped, not buffered forever
ACCEPT_LOG_INTERVAL = 10.0  # seconds between two log lines about failing accept() calls

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


@dataclass(frozen=True, slots=True)
class NetLimits:
    """How many connections the server holds (see the module docstring)."""

    max_connections: int = 8192       # every connection, in any phase
    max_pending_per_source: int = 64  # per source address, not yet a WebSocket
    backlog: int = 1024               # the listen queue (asyncio's default is 100)
    # a request body's bound, MAX_BODY_BYTES unless its path is listed (a carrier's
    # webhook that batches, say); read before the body is
    body_bytes: dict[str, int] = field(default_factory=dict)

    def body_limit(self, target: bytes) -> int:
        path = target.split(b"?", 1)[0].decode("latin-1")
        return self.body_bytes.get(path, MAX_BODY_BYTES)


class Admission:
    """Who may connect, by count (sans-I/O): ``admit`` at accept, ``upgraded`` when a
    connection became a WebSocket, ``left`` when it closed."""

    def __init__(self, limits: NetLimits) -> None:
        self.limits = limits
        self.total = 0
        self.pending: dict[str, int] = {}  # source address → connections not yet upgraded

    def admit(self, source: str) -> str | None:
        """None if admitted (and counted), else why not."""
        if self.total >= self.limits.max_connections:
            return f"the server holds its limit of {self.limits.max_connections} connections"
        if self.pending.get(source, 0) >= self.limits.max_pending_per_source:
            return (f"{source} has {self.limits.max_pending_per_source} connections that have"
                    " not completed a request; finish or close them first")
        self.total += 1
        self.pending[source] = self.pending.get(source, 0) + 1
        return None

    def upgraded(self, source: str) -> None:
        self._unpend(source)

    def left(self, source: str, pending: bool) -> None:
        self.total -= 1
        if pending:
            self._unpend(source)

    def _unpend(self, source: str) -> None:
        left = self.pending.get(source, 0) - 1
        if left > 0:
            self.pending[source] = left
        else:
            self.pending.pop(source, None)


# ── timeouts: the policy, sans-I/O ──────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class NetTimeouts:
    """Seconds a connection may spend in each state (see the module docstring)."""

    handshake: float = 10.0      # from accept (or from the next request's first byte) to a
    #                              complete request or upgrade
    idle_http: float = 30.0      # keep-alive with no request
    ping_interval: float = 20.0  # a WebSocket peer silent this long is pinged ...
    pong_timeout: float = 20.0   # ... and dropped if still silent this long after
    close: float = 5.0           # after the server starts closing, until the peer is gone

    @property
    def sweep_interval(self) -> float:
        """How often deadlines are checked: a timeout fires at most this much late."""
        shortest = min(self.handshake, self.idle_http, self.ping_interval, self.pong_timeout,
                       self.close)
        return max(0.01, min(1.0, shortest / 4))


class Phase(enum.Enum):
    REQUEST = "request"      # reading a request: the first one, or the next after idling
    IDLE = "idle"            # keep-alive HTTP between requests
    WEBSOCKET = "websocket"  # an open WebSocket
    CLOSING = "closing"      # the server has started closing (close frame or TCP close)


class Verdict(enum.Enum):
    WAIT = "wait"
    PING = "ping"                       # send a ping
    REQUEST_TIMEOUT = "request timeout"  # answer 408 and close
    IDLE_TIMEOUT = "idle timeout"        # close
    PONG_TIMEOUT = "pong timeout"        # abort: silent since the ping
    CLOSE_TIMEOUT = "close timeout"      # abort: the peer did not finish closing


class TimeoutPolicy:
    """One connection's deadlines. The connection sets ``seen`` on every read and calls
    :meth:`enter` on a phase change; the sweeper calls :meth:`check` with the time."""

    __slots__ = ("timeouts", "phase", "since", "ping_sent_at", "seen")

    def __init__(self, timeouts: NetTimeouts, now: float) -> None:
        self.timeouts = timeouts
        self.phase = Phase.REQUEST
        self.since = now  # start of the phase, or (WEBSOCKET) when the peer was last heard
        self.ping_sent_at: float | None = None
        self.seen = False  # bytes arrived since the last check

    def enter(self, phase: Phase, now: float) -> None:
        self.phase, self.since, self.ping_sent_at, self.seen = phase, now, None, False

    def check(self, now: float) -> Verdict:
        seen, self.seen = self.seen, False
        phase, limits = self.phase, self.timeouts
        if phase is Phase.WEBSOCKET:
            if seen:  # data or a pong: the peer is alive
                self.since, self.ping_sent_at = now, None
                return Verdict.WAIT
            if self.ping_sent_at is not None:
                expired = now - self.ping_sent_at >= limits.pong_timeout
                return Verdict.PONG_TIMEOUT if expired else Verdict.WAIT
            if now - self.since >= limits.ping_interval:
                self.ping_sent_at = now
                return Verdict.PING
            return Verdict.WAIT
        if phase is Phase.REQUEST:
            # Bytes trickling in do not extend it: a request must be whole in time.
            expired = now - self.since >= limits.handshake
            return Verdict.REQUEST_TIMEOUT if expired else Verdict.WAIT
        if phase is Phase.IDLE:
            if seen:  # the next request has begun
                self.enter(Phase.REQUEST, now)
                return Verdict.WAIT
            return Verdict.IDLE_TIMEOUT if now - self.since >= limits.idle_http else Verdict.WAIT
        return Verdict.CLOSE_TIMEOUT if now - self.since >= limits.close else Verdict.WAIT


# ── connections ───────────────────────────────────────────────────────────────

class WsConnection:
    """The send side of one accepted WebSocket, handed to its handler."""

    __slots__ = ("_codec", "_transport", "_owner", "_closed", "peer")

    def __init__(self, codec: WsCodec, transport: asyncio.Transport, owner: HttpWsProtocol,
                 peer: tuple[str, int] | None) -> None:
        self._codec = codec
        self._transport = transport
        self._owner = owner
        self._closed = False
        self.peer = peer

    @property
    def open(self) -> bool:
        return not self._closed and self._codec.open

    # Sends after the close has started are dropped (the codec refuses them); asking it
    # costs nothing until it refuses, where checking its state first costs every frame.
    def send_text(self, text: str) -> None:
        if not self._closed:
            try:
                self._write(self._codec.send_text(text))
            except WsClosedError:
                pass

    def send_binary(self, data: bytes) -> None:
        if not self._closed:
            try:
                self._write(self._codec.send_binary(data))
            except WsClosedError:
                pass

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the peer has ``NetTimeouts.close`` to finish it."""
        if self.open:
            self._write(self._codec.send_close(code, reason))
            self._owner.closing_started()

    def abort(self) -> None:
        self._closed = True
        self._transport.abort()

    def _write(self, data: bytes) -> None:
        transport = self._transport
        transport.write(data)
        if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT and not self._closed:
            logger.warning("dropping a WebSocket peer that stopped reading (%s)", self.peer)
            self.abort()


class HttpWsProtocol(asyncio.BufferedProtocol):
    """One TCP (or TLS) connection: HTTP requests until it upgrades to WebSocket."""

    def __init__(self, router: Router, server: NetServer) -> None:
        self._router = router
        self._server = server
        self._policy = TimeoutPolicy(server.timeouts, server.now())
        self._transport: asyncio.Transport | None = None
        self._head = bytearray()
        self._h11: h11.Connection | None = None
        self._pending: tuple[h11.Request, bytearray, int] | None = None  # with its bound
        self._codec: WsCodec | None = None
        self._handler: WsHandler | None = None
        self._ws_conn: WsConnection | None = None
        self._closed_reported = False
        self._source = ""
        self._admitted = False
        self._pending_source = False  # counted as not yet a WebSocket

    # ── asyncio.BufferedProtocol ───────────────────────────────────────────
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        self._transport = cast(asyncio.Transport, transport)
        client = self._client()
        self._source = client[0] if client is not None else ""
        refused = self._server.admission.admit(self._source)
        if refused is not None:
            self._policy.enter(Phase.CLOSING, self._server.now())
            body = refused.encode()
            self._transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: "
                                  b"text/plain\r\ncontent-length: %d\r\nconnection: close"
                                  b"\r\nretry-after: 1\r\n\r\n%s" % (len(body), body))
            self._transport.close()
            return
        self._admitted = self._pending_source = True
        self._server.connection_opened(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        # One read buffer for every connection of the server: a loop fills it and calls
        # buffer_updated before it reads another socket, and the codec parses frames in
        # place and keeps only a partial one. Hundreds of connections reading 50 frames
        # a second then share one hot buffer instead of each touching its own.
        return self._server.read_view

    def buffer_updated(self, nbytes: int) -> None:
        self._policy.seen = True
        if self._codec is None:
            self._http_bytes(self._server.read_view[:nbytes].tobytes())
        else:
            self._ws_bytes(self._server.read_view[:nbytes])

    def _ws_bytes(self, data: bytes | memoryview) -> None:
        """The audio path: each message of the read straight to the handler."""
        codec, handler = self._codec, self._handler
        assert codec is not None
        assert handler is not None
        for event in codec.receive_data(data):
            try:
                if type(event) is bytes:
                    handler.on_binary(event)
                elif type(event) is TextMessage:
                    handler.on_text(event.text)
            except Exception:
                self._handler_failed()
        if codec.needs_attention:
            self._ws_flush()

    def eof_received(self) -> bool | None:
        if self._codec is not None:
            self._codec.receive_eof()
            self._ws_flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._server.admission.left(self._source, self._pending_source)
        self._pending_source = False
        self._server.connection_closed(self)
        if self._codec is not None:
            self._codec.receive_eof()  # the close code is final now
        self._report_close()
        if self._codec is not None:  # its reference cycles end: freed without the GC
            self._codec.release()

    # ── called by the server ──────────────────────────────────────────────
    def on_tick(self, now: float) -> None:
        """The sweeper's visit: apply what the timeout policy says is due."""
        verdict = self._policy.check(now)
        if verdict is Verdict.WAIT:
            return
        if verdict is Verdict.PING:
            if self._codec is not None:
                self._write(self._codec.send_ping(b""))
        elif verdict is Verdict.REQUEST_TIMEOUT:
            logger.info("closing a connection whose request did not arrive in time (%s)",
                        self._client())
            self._plain_error(408, "request timeout")
        elif verdict is Verdict.IDLE_TIMEOUT:
            self._close_transport()
        elif verdict is Verdict.PONG_TIMEOUT:
            logger.info("dropping a WebSocket peer that answered no ping (%s)", self._client())
            self.abort()
        else:
            logger.info("aborting a connection whose peer did not finish closing (%s)",
                        self._client())
            self.abort()

    def shut_down(self, code: int, reason: str) -> None:
        """Server stop: close a WebSocket with ``code``; close anything else."""
        if self._ws_conn is not None and self._ws_conn.open:
            self._ws_conn.close(code, reason)
        elif self._policy.phase is not Phase.CLOSING:
            self._close_transport()

    def abort(self) -> None:
        if self._ws_conn is not None:
            self._ws_conn.abort()
        elif self._transport is not None:
            self._transport.abort()

    def closing_started(self) -> None:
        """The server has sent a close frame or closed the transport: the close clock runs."""
        if self._policy.phase is not Phase.CLOSING:
            self._policy.enter(Phase.CLOSING, self._server.now())

    # ── helpers ───────────────────────────────────────────────────────────
    def _write(self, data: bytes) -> None:
        if self._ws_conn is not None:
            self._ws_conn._write(data)  # the same write-buffer guard as the handler's sends
        elif self._transport is not None:
            self._transport.write(data)

    def _close_transport(self) -> None:
        assert self._transport is not None
        self._transport.close()
        self.closing_started()

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

    def _plain_error(self, status: int, text: str) -> None:
        assert self._transport is not None
        body = text.encode()
        self._transport.write(
            f"HTTP/1.1 {status} Error\r\ncontent-type: text/plain\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
        self._close_transport()

    # ── routing the first request ─────────────────────────────────────────
    def _http_bytes(self, data: bytes) -> None:
        if self._policy.phase is Phase.CLOSING:
            return  # answered and closing: whatever else arrives is not read
        if self._h11 is not None:
            self._h11_receive(data)
        else:
            self._sniff(data)

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
            self._upgrade(buffered[:end + 4], buffered[end + 4:])
        else:
            self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
            self._h11_receive(buffered)

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
                limit = self._server.admission.limits.body_limit(event.target)
                self._pending = (event, bytearray(), limit)
            elif isinstance(event, h11.Data) and self._pending is not None:
                _, body, limit = self._pending
                body += event.data
                if len(body) > limit:
                    self._plain_error(413, "request body too large")
                    return
            elif isinstance(event, h11.EndOfMessage) and self._pending is not None:
                req, body, _ = self._pending
                self._pending = None
                self._answer_http(req, bytes(body))
                if conn.our_state is h11.MUST_CLOSE or conn.our_state is h11.CLOSED:
                    self._close_transport()
                    return
                conn.start_next_cycle()
                self._policy.enter(Phase.IDLE, self._server.now())
            elif isinstance(event, h11.ConnectionClosed):
                self._close_transport()
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
        if req.method != b"HEAD":  # HEAD: the GET's headers, no body (h11 refuses one)
            out += self._h11.send(h11.Data(data=outcome.body)) or b""
        out += self._h11.send(h11.EndOfMessage()) or b""
        self._transport.write(out)

    # ── WebSocket ─────────────────────────────────────────────────────────
    def _upgrade(self, head: bytes, rest: bytes) -> None:
        """websockets checks the upgrade request and writes the response; the codec
        reads every byte after the request head."""
        assert self._transport is not None
        handshake = ServerProtocol(logger=_WS_LOGGER)
        handshake.receive_data(head)
        requests = [e for e in handshake.events_received() if isinstance(e, WsRequest)]
        if not requests:  # websockets could not parse it and would close without a word
            exc = handshake.handshake_exc
            why = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
            self._plain_error(400, f"malformed upgrade request: {why}")
            return
        accepted = self._route_upgrade(handshake, requests[0]) if requests else None
        for chunk in handshake.data_to_send():
            if chunk:
                self._transport.write(chunk)
            else:
                self._close_transport()  # refused: websockets closes after its response
        if accepted is None:
            if self._policy.phase is not Phase.CLOSING:
                self._close_transport()
            return
        codec = WsCodec(Role.SERVER, max_message=accepted.max_message_bytes,
                        recv_buffer=WS_RECV_BUFFER, logger=_WS_LOGGER)
        self._codec, self._handler = codec, accepted.handler
        self._ws_conn = WsConnection(codec, self._transport, self, self._client())
        self._policy.enter(Phase.WEBSOCKET, self._server.now())
        self._server.admission.upgraded(self._source)
        self._pending_source = False
        self._handler.on_open(self._ws_conn)
        self._replay(rest)  # frames the client sent right behind its request

    def _replay(self, data: bytes) -> None:
        """Bytes that came in with the upgrade request, handed over as a read."""
        if data and self._codec is not None:
            self._ws_bytes(data)

    def _route_upgrade(self, handshake: ServerProtocol, req: WsRequest) -> WsAccept | None:
        """Ask the router; queue websockets' response. The accepted route, or None."""
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
            handshake.send_response(handshake.reject(outcome.status, outcome.text))
            return None
        response = handshake.accept(req)  # a 4xx when the upgrade headers are wrong
        handshake.send_response(response)
        return outcome if response.status_code == 101 else None

    def _ws_closing(self) -> None:
        """Closing (either side started it, or the codec failed the link): the TCP
        connection closes when the codec says so, within the close timeout anyway."""
        codec, transport = self._codec, self._transport
        assert codec is not None and transport is not None
        if codec.transport_close_due and not transport.is_closing():
            self._close_transport()
        else:
            self.closing_started()

    def _ws_flush(self) -> None:
        """The codec's replies (pongs, close) onto the wire; follow it into closing."""
        codec = self._codec
        assert codec is not None
        out = codec.data_to_send()
        if out:
            self._write(out)
        if not codec.open:
            self._ws_closing()

    def _handler_failed(self) -> None:
        logger.exception("WebSocket handler failed on a frame")
        if self._ws_conn is not None:
            self._ws_conn.close(1011, "internal error while handling a frame")

    def _report_close(self) -> None:
        if self._closed_reported or self._handler is None:
            return
        self._closed_reported = True
        codec = self._codec
        code = codec.close_code if codec is not None else None
        reason = codec.close_reason if codec is not None else ""
        if self._ws_conn is not None:
            self._ws_conn._closed = True
        try:
            self._handler.on_close(code, reason)
        except Exception:
            logger.exception("WebSocket close handler failed")
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


# ── the server ────────────────────────────────────────────────────────────────

class NetServer:
    """What :func:`serve` returns: asyncio.Server's ``sockets``, ``close()`` and
    ``wait_closed()``, plus :meth:`shutdown` and the sweeper that runs the timeouts."""

    def __init__(self, router: Router, timeouts: NetTimeouts,
                 limits: NetLimits | None = None) -> None:
        self.timeouts = timeouts
        self.admission = Admission(limits or NetLimits())
        self._accept_errors = 0
        self._accept_logged_at = -ACCEPT_LOG_INTERVAL
        self._router = router
        self._loop = asyncio.get_running_loop()
        self._server: asyncio.Server | None = None
        self._conns: set[HttpWsProtocol] = set()
        self.read_view = memoryview(bytearray(READ_BUFFER))  # see HttpWsProtocol.get_buffer
        self._sweeper: asyncio.TimerHandle | None = None
        self._drained: asyncio.Future[None] | None = None
        self._serving = False

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None,
                    reuse_port: bool = False) -> None:
        """``reuse_port``: several worker processes listen on the port (SO_REUSEPORT); the
        kernel spreads new connections over them."""
        # A TLS handshake gets the same bound as an HTTP request (asyncio's default is 60 s).
        tls_timeout = self.timeouts.handshake if ssl_context is not None else None
        self._server = await self._loop.create_server(
            lambda: HttpWsProtocol(self._router, self), host, port, ssl=ssl_context,
            reuse_address=True, reuse_port=reuse_port or None, ssl_handshake_timeout=tls_timeout,
            backlog=self.admission.limits.backlog)
        self._quiet_accept_errors()
        self._serving = True
        self._schedule_sweep()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        assert self._server is not None
        return self._server.sockets

    @property
    def connections(self) -> int:
        """Connections not yet gone (HTTP, WebSocket and closing ones)."""
        return len(self._conns)

    def now(self) -> float:
        return self._loop.time()

    def is_serving(self) -> bool:
        return self._serving

    def close(self) -> None:
        """Stop listening, like asyncio.Server.close(); open connections stay (and keep
        their timeouts) until they end. :meth:`shutdown` ends them."""
        self._serving = False
        if self._server is not None:
            self._server.close()
        if not self._conns:
            self._stop_sweeper()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    async def shutdown(self, code: int = 1001, reason: str = "server shutting down",
                       timeout: float = 2.0) -> None:
        """Stop accepting, close every WebSocket with ``code``, close HTTP connections,
        wait up to ``timeout`` s for them to go, then abort the rest."""
        self.close()
        for conn in list(self._conns):
            conn.shut_down(code, reason)
        if not await self._wait_drained(timeout):
            logger.info("aborting %d connection(s) still open after %.1f s",
                        len(self._conns), timeout)
            for conn in list(self._conns):
                conn.abort()
            await self._wait_drained(1.0)  # connection_lost runs on the next loop turns
        self._stop_sweeper()
        await self.wait_closed()

    def _quiet_accept_errors(self) -> None:
        """asyncio reports every failed accept() (EMFILE when descriptors run out) with a
        traceback, thousands a second under a flood: count them, log one line a while."""
        previous = self._loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            if isinstance(exc, OSError) and "accept" in str(context.get("message", "")):
                self._accept_errors += 1
                now = self._loop.time()
                if now - self._accept_logged_at >= ACCEPT_LOG_INTERVAL:
                    logger.error("accept() failed %d time(s) in the last %.0f s (%s); new "
                                 "connections wait in the listen queue", self._accept_errors,
                                 ACCEPT_LOG_INTERVAL, exc.strerror or exc)
                    self._accept_errors, self._accept_logged_at = 0, now
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        self._loop.set_exception_handler(handler)

    # ── bookkeeping, called by the connections ────────────────────────────
    def connection_opened(self, conn: HttpWsProtocol) -> None:
        self._conns.add(conn)

    def connection_closed(self, conn: HttpWsProtocol) -> None:
        self._conns.discard(conn)
        if not self._conns:
            if self._drained is not None and not self._drained.done():
                self._drained.set_result(None)
            if not self._serving:
                self._stop_sweeper()

    async def _wait_drained(self, timeout: float) -> bool:
        if not self._conns:
            return True
        self._drained = self._loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._drained
        except TimeoutError:
            return False
        finally:
            self._drained = None
        return True

    # ── the sweeper ───────────────────────────────────────────────────────
    def _schedule_sweep(self) -> None:
        self._sweeper = self._loop.call_later(self.timeouts.sweep_interval, self._sweep)

    def _stop_sweeper(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def _sweep(self) -> None:
        now = self._loop.time()
        for conn in list(self._conns):
            try:
                conn.on_tick(now)
            except Exception:  # one connection's failure must not stop every timeout
                logger.exception("connection timeout handling failed")
        if self._serving or self._conns:
            self._schedule_sweep()
        else:
            self._sweeper = None


async def serve(router: Router, host: str, port: int,
                ssl_context: ssl.SSLContext | None = None,
                timeouts: NetTimeouts | None = None, limits: NetLimits | None = None,
                reuse_port: bool = False) -> NetServer:
    server = NetServer(router, timeouts or NetTimeouts(), limits)
    await server.start(host, port, ssl_context, reuse_port)
    return server
