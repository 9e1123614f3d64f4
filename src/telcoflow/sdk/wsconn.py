"""A lean WebSocket client: the shared frame codec on an asyncio.BufferedProtocol.

Why not ``websockets.asyncio.client``: its per-message futures, assembler and
queues cost several times the framing itself, and the voice plane moves 50
frames a second per call in each direction. Here each received frame is
handed synchronously to a :class:`WsHandler`; sending is a synchronous
``transport.write``.

- websockets' sans-I/O ``ClientProtocol`` runs the opening handshake (and
  reads a refusal's status and body).
- From the 101 on, :class:`telcoflow.protocol.ws.WsCodec` in the client role
  (the gateway's codec too) frames everything: whole data frames on its fast
  path, control frames, fragments, size limits and the closing handshake
  through websockets' sans-I/O protocol.
- Reads go into the codec's one preallocated buffer (``BufferedProtocol``): a
  plain ``Protocol`` has asyncio allocate a 256 KiB ``bytes`` per read, which
  glibc serves with mmap/mremap/munmap and page faults on every frame.
- Several outgoing frames can go out in one ``transport.write``
  (:meth:`WsConnection.send_binary_frames`).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Protocol, cast

from websockets.client import ClientProtocol
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from ..protocol.ws import Event, PongReceived, Role, TextMessage, WsCodec
from ._log import WS_LOGGER, get_logger

logger = get_logger("wsconn")

CLOSE_TIMEOUT = 5.0
HEAD_READ = 4096             # read size until the handshake is over
MAX_HEAD = 64 * 1024         # an HTTP response head longer than this is websockets' to refuse

# Where received bytes go (WsConnection._mode).
_HANDSHAKE = 0  # waiting for the end of the HTTP response head
_FRAMES = 1     # the upgrade succeeded: the codec reads every byte
_REFUSED = 2    # no upgrade: websockets reads the refusal (status, body)


class WsHandler(Protocol):
    def ws_text(self, data: bytes) -> None: ...

    def ws_binary(self, data: bytes) -> None: ...

    def ws_closed(self, code: int | None, reason: str) -> None: ...


class _Detached:
    """The handler of a connection that is gone: it has been told, and is let go."""

    def ws_text(self, data: bytes) -> None:
        pass

    def ws_binary(self, data: bytes) -> None:
        pass

    def ws_closed(self, code: int | None, reason: str) -> None:
        pass


_DETACHED = _Detached()
_NO_BUFFER = memoryview(b"")


class HandshakeRejected(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(body or f"HTTP {status}")
        self.status = status
        self.body = body


class WsConnection(asyncio.BufferedProtocol):
    """One client WebSocket; create it with :func:`open_ws`."""

    def __init__(self, proto: ClientProtocol, handler: WsHandler, headers: Mapping[str, str],
                 ping_interval: float | None, ping_timeout: float | None,
                 max_size: int = 2 ** 20) -> None:
        self._proto = proto  # the opening handshake only
        self._codec = WsCodec(Role.CLIENT, max_message=max_size, logger=WS_LOGGER)
        self._handler = handler
        self._headers = headers
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._handshake: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._opened = False
        self._open = False  # the codec is open, refreshed after every call into it
        self._mode = _HANDSHAKE
        self._head = bytearray()
        self._head_view = memoryview(bytearray(HEAD_READ))

    # ── asyncio.BufferedProtocol ────────────────────────────────────────────

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)
        request = self._proto.connect()
        for name, value in self._headers.items():
            request.headers[name] = value
        self._proto.send_request(request)
        self._flush_handshake()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._mode == _FRAMES:
            return self._codec.get_buffer(sizehint)
        return self._head_view

    def buffer_updated(self, nbytes: int) -> None:
        if self._mode != _FRAMES:
            self._handshake_read(nbytes)
            return
        # The audio path: each message of the read straight to the handler.
        codec, handler = self._codec, self._handler
        for event in codec.buffer_updated(nbytes):
            try:
                if type(event) is bytes:
                    handler.ws_binary(event)
                else:
                    self._on_event(event)
            except Exception:
                # A handler bug must not kill the link (and with it the call).
                logger.exception("Error handling a WebSocket message")
        if codec.needs_attention:
            self._after_codec()

    def eof_received(self) -> bool | None:
        if self._mode == _FRAMES:
            self._codec.receive_eof()
            self._after_codec()
        else:
            self._proto.receive_eof()
            self._handshake_events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._codec.receive_eof()
        self._open = False
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionError("connection closed during handshake"))
        if not self._closed.done():
            self._closed.set_result(None)
        if self._opened:
            self._opened = False
            self._handler.ws_closed(self._codec.close_code, self._codec.close_reason)
        # The handler (a voice connection, say) holds this connection: letting go of it,
        # and of websockets' self-referencing parsers, frees both by reference counting
        # rather than at the next full collection.
        self._handler = _DETACHED
        self._codec.release()
        _end_parser(self._proto)

    # ── public ──────────────────────────────────────────────────────────────

    @property
    def is_open(self) -> bool:
        return self._open

    def send_text(self, text: str) -> None:
        if not self._open:
            raise ConnectionError("WebSocket is not open")
        self._write(self._codec.send_text(text))

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        if not self._open:
            raise ConnectionError("WebSocket is not open")
        self._write(self._codec.send_binary(data))

    def send_binary_frames(self, payloads: Sequence[bytes | bytearray | memoryview]) -> None:
        """One binary frame per payload, all in one write."""
        if not self._open:
            raise ConnectionError("WebSocket is not open")
        codec = self._codec
        if len(payloads) == 1:
            self._write(codec.send_binary(payloads[0]))
        else:
            self._write(codec.send_binary_frames(payloads))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake; abort the TCP link if the peer does not finish it."""
        if self._open:
            self._write(self._codec.send_close(code, reason))
            self._open = False
            self._arm("close", CLOSE_TIMEOUT, self.abort)
        elif self._transport is not None and self._mode != _FRAMES:
            self._transport.close()  # still in the opening handshake
        await asyncio.shield(self._closed)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    # ── sending ─────────────────────────────────────────────────────────────

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            raise ConnectionError("WebSocket is not open")
        transport.write(data)

    # ── receiving frames ────────────────────────────────────────────────────

    def _on_event(self, event: Event) -> None:
        if type(event) is TextMessage:
            self._handler.ws_text(event.data)
        elif type(event) is PongReceived:
            self._cancel("pong")
            self._schedule_ping()

    def _after_codec(self) -> None:
        """Write what the codec has due; follow it into closing."""
        codec, transport = self._codec, self._transport
        if transport is None:
            return
        out = codec.data_to_send()
        if out:
            transport.write(out)
        self._open = codec.open
        if codec.transport_close_due:
            # websockets' client half-closes once the server has closed its side
            if transport.can_write_eof():
                transport.write_eof()
        elif codec.close_expected and "close" not in self._timers:
            self._arm("close", CLOSE_TIMEOUT, self.abort)

    # ── the opening handshake ───────────────────────────────────────────────

    def _handshake_read(self, nbytes: int) -> None:
        if self._mode == _HANDSHAKE:
            self._head += self._head_view[:nbytes]
            self._read_head()
        else:
            self._feed_handshake(self._head_view[:nbytes].tobytes())

    def _read_head(self) -> None:
        """Give websockets the HTTP response head; after a 101 the codec reads the rest."""
        stop = self._head.find(b"\r\n\r\n")
        if stop < 0:
            if len(self._head) > MAX_HEAD:
                self._mode = _REFUSED
                self._feed_handshake(bytes(self._head))
            return
        stop += 4
        head, rest = bytes(self._head[:stop]), bytes(self._head[stop:])
        self._head = bytearray()
        self._feed_handshake(head)
        if self._proto.state is State.OPEN:
            self._mode = _FRAMES
            self._open = True
            self._opened = True
            self._head_view = _NO_BUFFER  # the codec reads everything from now on
            self._handshake.set_result(None)
            self._schedule_ping()
            self._replay(rest)  # frames right behind the 101
        else:
            self._mode = _REFUSED  # websockets reads the body of the refusal
            if rest:
                self._feed_handshake(rest)

    def _replay(self, data: bytes) -> None:
        """Bytes that came in with the handshake response, handed over as reads."""
        view = memoryview(data)
        while view:
            buf = self._codec.get_buffer(-1)
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            view = view[n:]
            self.buffer_updated(n)

    def _feed_handshake(self, data: bytes) -> None:
        try:
            self._proto.receive_data(data)
        except EOFError:
            return
        self._handshake_events()

    def _handshake_events(self) -> None:
        for event in self._proto.events_received():
            if isinstance(event, Response) and self._proto.state is not State.OPEN:
                self._refused(event)
        self._flush_handshake()

    def _refused(self, response: Response) -> None:
        if self._handshake.done():
            return
        body = bytes(response.body or b"").decode("utf-8", "replace").strip()
        if not body and response.status_code == 426:
            body = "Server rejected WebSocket upgrade (HTTP 426). Upgrade required."
        self._handshake.set_exception(HandshakeRejected(response.status_code, body))

    def _flush_handshake(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for chunk in self._proto.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                transport.write_eof()

    # ── keepalive and timers ────────────────────────────────────────────────

    def _schedule_ping(self) -> None:
        if self._ping_interval:
            self._arm("ping", self._ping_interval, self._ping)

    def _ping(self) -> None:
        if not self._open:
            return
        self._write(self._codec.send_ping(os.urandom(4)))
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


def _end_parser(proto: ClientProtocol) -> None:
    """End the handshake protocol's parser coroutine, which holds the protocol (a cycle).

    ``parser`` is websockets' attribute, not its documented API: if a release
    renames it, this does nothing and the cyclic GC frees the protocol as before.
    """
    parser = getattr(proto, "parser", None)
    if isinstance(parser, Generator):
        parser.close()


async def open_ws(url: str, headers: Mapping[str, str], handler: WsHandler, *,
                  ssl_context: ssl.SSLContext | None = None, open_timeout: float = 10.0,
                  ping_interval: float | None = None, ping_timeout: float | None = None,
                  max_size: int = 2 ** 20) -> WsConnection:
    """Connect, run the opening handshake and return the open connection.

    Raises OSError / ssl.SSLError / HandshakeRejected / TimeoutError.
    """
    uri = parse_uri(url)
    proto = ClientProtocol(uri, max_size=max_size, logger=WS_LOGGER)
    conn = WsConnection(proto, handler, headers, ping_interval, ping_timeout, max_size)
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
