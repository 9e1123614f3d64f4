"""A lean WebSocket client: websockets' sans-I/O protocol on an asyncio.BufferedProtocol.

Why not ``websockets.asyncio.client``: its per-message futures, assembler and
queues cost several times the framing itself, and the voice plane moves 50
frames a second per call in each direction. Here each received frame is
handed synchronously to a :class:`WsHandler`; sending is a synchronous
``transport.write``.

The data path is cut down to what a frame needs, because at that rate the
agent's CPU goes mostly to system calls, not Python:

- Reads go into one preallocated buffer (``BufferedProtocol``): a plain
  ``Protocol`` has asyncio allocate a 256 KiB ``bytes`` per read, which glibc
  serves with mmap/mremap/munmap and page faults on every frame.
- Complete, unfragmented text and binary frames from the server are framed
  here, straight out of that buffer. Everything else (control frames,
  fragments, anything malformed, and all of the closing phase) goes to
  websockets' ``ClientProtocol``, which also runs the opening handshake, so
  RFC 6455 handling (pings, close handshake, size limits, protocol errors)
  stays websockets'.
- Outgoing data frames are built here too: masked (RFC 6455 5.3) with keys
  taken from a per-connection ``os.urandom`` pool rather than one ``getrandom``
  call per frame, by websockets' C ``apply_mask``; several frames can go out
  in one ``transport.write``.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, cast

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

from ._log import WS_LOGGER, get_logger

logger = get_logger("wsconn")

CLOSE_TIMEOUT = 5.0
RECV_BUFFER = 16 * 1024      # read buffer; grows for a frame that does not fit, then shrinks
MIN_READ = 4096              # free space offered to each read at least
MAX_HEAD = 64 * 1024         # an HTTP response head longer than this is websockets' to refuse
MASK_POOL = 1024             # bytes of os.urandom per refill: 256 masking keys

_FIN_TEXT = 0x81
_FIN_BINARY = 0x82
_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")

# Where received bytes go (WsConnection._mode).
_HANDSHAKE = 0  # waiting for the end of the HTTP response head
_FRAMES = 1     # OPEN: data frames parsed here, the rest handed to websockets
_WEBSOCKETS = 2  # everything to websockets (refused handshake, closing phase, errors)


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


class WsConnection(asyncio.BufferedProtocol):
    """One client WebSocket; create it with :func:`open_ws`."""

    def __init__(self, proto: ClientProtocol, handler: WsHandler, headers: Mapping[str, str],
                 ping_interval: float | None, ping_timeout: float | None,
                 max_size: int = 2 ** 20) -> None:
        self._proto = proto
        self._handler = handler
        self._headers = headers
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._max_size = max_size
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._handshake: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._frag_op: Opcode | None = None
        self._frag = bytearray()
        self._opened = False
        self._open = False  # proto.state is OPEN, refreshed after every call into websockets
        # Received bytes not yet consumed are self._buf[self._start:self._end].
        self._buf = bytearray(RECV_BUFFER)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._mode = _HANDSHAKE
        self._masks = b""
        self._mask_at = 0

    # ── asyncio.BufferedProtocol ────────────────────────────────────────────

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)
        request = self._proto.connect()
        for name, value in self._headers.items():
            request.headers[name] = value
        self._proto.send_request(request)
        self._flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self._buf) - self._end < MIN_READ:
            self._make_room()
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        if self._mode == _FRAMES:
            self._read_frames()
        elif self._mode == _HANDSHAKE:
            self._read_head()
        else:
            self._feed_rest()

    def eof_received(self) -> bool | None:
        self._proto.receive_eof()
        self._process()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._proto.receive_eof()
        self._open = False
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
        return self._open

    def send_text(self, text: str) -> None:
        self._write(self._frame(_FIN_TEXT, text.encode()))

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        self._write(self._frame(_FIN_BINARY, data))

    def send_binary_frames(self, payloads: Sequence[bytes | bytearray | memoryview]) -> None:
        """One binary frame per payload, all in one write."""
        if len(payloads) == 1:
            self._write(self._frame(_FIN_BINARY, payloads[0]))
        else:
            frame = self._frame
            self._write(b"".join([frame(_FIN_BINARY, data) for data in payloads]))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake; abort the TCP link if the peer does not finish it."""
        if self._proto.state is State.OPEN:
            self._proto.send_close(code, reason)
            self._open = False
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

    # ── sending ─────────────────────────────────────────────────────────────

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or not self._open:
            raise ConnectionError("WebSocket is not open")
        transport.write(data)

    def _frame(self, head: int, data: bytes | bytearray | memoryview) -> bytes:
        """A final, masked frame: ``head`` is FIN | opcode."""
        at = self._mask_at
        if at >= len(self._masks):
            self._masks, at = os.urandom(MASK_POOL), 0
        self._mask_at = at + 4
        mask = self._masks[at:at + 4]
        n = len(data)
        if n < 126:
            prefix = bytes((head, 0x80 | n))
        elif n < 65536:
            prefix = _HEAD16.pack(head, 0xFE, n)
        else:
            prefix = _HEAD64.pack(head, 0xFF, n)
        return b"".join((prefix, mask, apply_mask(data, mask)))

    # ── receiving ───────────────────────────────────────────────────────────

    def _make_room(self) -> None:
        start, end = self._start, self._end
        pending = end - start
        if pending + MIN_READ > len(self._buf):
            # A frame larger than the buffer (at most max_size: bigger ones are refused).
            grown = bytearray(max(2 * len(self._buf), pending + MIN_READ))
            grown[:pending] = self._view[start:end]
            self._buf, self._view = grown, memoryview(grown)
        elif pending:
            self._buf[:pending] = self._buf[start:end]
        self._start, self._end = 0, pending

    def _read_head(self) -> None:
        """Give websockets the HTTP response head, then frames are read here."""
        stop = self._buf.find(b"\r\n\r\n", self._start, self._end)
        if stop < 0:
            if self._end - self._start > MAX_HEAD:
                self._mode = _WEBSOCKETS
                self._feed_rest()
            return
        stop += 4
        head = bytes(self._view[self._start:stop])
        self._start = stop
        self._feed(head)
        # After a 101 websockets has consumed exactly the head: frames start at self._start.
        self._mode = _FRAMES if self._open else _WEBSOCKETS
        if self._start < self._end:
            self.buffer_updated(0)
        else:
            self._start = self._end = 0

    def _read_frames(self) -> None:
        """Deliver every complete frame in the buffer; keep a partial one for the next read."""
        buf, view, handler = self._buf, self._view, self._handler
        pos, end = self._start, self._end
        to_websockets = False
        while end - pos >= 2:
            if not self._open:
                to_websockets = True  # closing: websockets runs the rest of the handshake
                break
            b0 = buf[pos]
            size = buf[pos + 1]
            if size < 126:
                body = pos + 2
            elif size == 126:
                if end - pos < 4:
                    break
                size = buf[pos + 2] << 8 | buf[pos + 3]
                body = pos + 4
            elif size == 127:
                if end - pos < 10:
                    break
                size = int.from_bytes(view[pos + 2:pos + 10], "big")
                body = pos + 10
            else:
                to_websockets = True  # masked: a server must not mask; websockets fails the link
                break
            if size > self._max_size:
                to_websockets = True  # websockets closes with 1009
                break
            stop = body + size
            if stop > end:
                break
            if (b0 == _FIN_BINARY or b0 == _FIN_TEXT) and self._frag_op is None:
                data = bytes(view[body:stop])
                try:
                    if b0 == _FIN_BINARY:
                        handler.ws_binary(data)
                    else:
                        handler.ws_text(data)
                except Exception:
                    # A handler bug must not kill the link (and with it the call).
                    logger.exception("Error handling a WebSocket message")
            else:
                # Control frames, fragments, reserved bits, unknown opcodes: websockets'.
                self._start = stop
                self._feed(bytes(view[pos:stop]))
            pos = stop
        self._start = pos
        if to_websockets:
            self._mode = _WEBSOCKETS
            self._feed_rest()
        elif pos == end:
            self._start = self._end = 0
            if len(buf) > RECV_BUFFER:  # grown for a big message: give the memory back
                self._buf = bytearray(RECV_BUFFER)
                self._view = memoryview(self._buf)

    def _feed_rest(self) -> None:
        data = bytes(self._view[self._start:self._end])
        self._start = self._end = 0
        if data:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        try:
            self._proto.receive_data(data)
        except EOFError:
            return
        self._process()

    def _process(self) -> None:
        self._open = self._proto.state is State.OPEN
        for event in self._proto.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
            elif isinstance(event, Response):
                self._handshake_done(event)
        self._flush()
        if self._proto.close_expected():
            self._arm("close", CLOSE_TIMEOUT, self.abort)

    def _on_frame(self, frame: Frame) -> None:
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

    # ── keepalive and timers ────────────────────────────────────────────────

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
