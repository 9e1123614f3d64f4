"""One sans-I/O WebSocket frame codec (RFC 6455) for both ends: the gateway and the SDK.

Bytes in, events out; send calls in, bytes out. Nothing here touches a socket
or an event loop: :mod:`telcoflow.server.netio` and :mod:`telcoflow.sdk.wsconn`
move the bytes, :class:`WsCodec` frames them, in either role:

- ``Role.SERVER`` expects masked frames and sends unmasked ones;
- ``Role.CLIENT`` masks every frame it sends and refuses masked ones.

The opening handshake is not here: websockets' ``ServerProtocol`` /
``ClientProtocol`` run it (h11 serves plain HTTP), and a codec takes the byte
stream over right after the 101 response.

Fast path, slow path, and why websockets keeps the slow path
------------------------------------------------------------
A call moves 50 audio frames a second each way, so whole unfragmented text and
binary frames are parsed and built here, straight out of one receive buffer
that the I/O layer reads into (:meth:`WsCodec.get_buffer`). A binary message
comes out as its payload ``bytes``, with no event object around it.

Every other frame (ping, pong, close, fragments, anything malformed or too
large) is handed, whole, to websockets' sans-I/O ``websockets.protocol.Protocol``,
and so is all traffic once the connection is closing. Why not write that part
here too: it is where RFC 6455 is fiddly (close codes and their validation,
the closing handshake's server/client asymmetry, size limits across fragments,
what to discard after a failure), websockets does it well and tests it, and
none of it is on the per-frame path. Only its documented API is used:
``Protocol(side, state=, max_size=, logger=)``, ``receive_data``,
``receive_eof``, ``events_received``, ``data_to_send`` (with ``SEND_EOF``),
``send_ping``, ``send_close``, ``fail``, ``state``, ``close_expected`` and the
``Frame`` / ``Opcode`` data structures (one exception: :meth:`WsCodec.release`
ends its ``parser`` generator, a reference cycle, and does nothing if a release
renames it). Feeding it only whole frames while we
parse keeps its parser in step with ours. Added on top: UTF-8 validation of
text messages (close 1007), which websockets leaves to its I/O layers.

Masking
-------
Frames a server receives and a client sends are masked, so XOR-ing the
payload with the key is on the per-frame path. Measured with
``bench/ws_codec.py --masking`` (CPython 3.11, numpy 2.4, ns per call, best
of 7, quiet machine):

=====================  ======  ======  ======  ======
payload bytes            160     320     640    1920
=====================  ======  ======  ======  ======
websockets' C             81      86     104     159
int.from_bytes ^         644     965    1680    4076
numpy bitwise_xor        899     943     989    1141
ints to 256 B, numpy     585     863     982    1129
=====================  ======  ======  ======  ======

In running processes the pure-Python masking weighed more than that: with it
a gateway under ``telcoflow bench --calls 50`` spent 0.19 CPU-s per
call-minute instead of 0.17 (numpy 3.7 % of its samples, the C function
0.4 %), and an SDK echo over loopback 9.1 us per frame instead of 8.1. So
:func:`apply_mask` is websockets' own C function, the one its frame parser
uses (``websockets.speedups``, present since websockets 4). That module is
not part of websockets' documented API, hence: websockets is pinned to the
majors it is tested on in ``pyproject.toml`` (17, and 15 for google-adk's
sake); this is the only import of it; a test
(``test_masking_is_the_c_function``) fails if a release moves it, rather than
letting the gateway silently get 10 % dearer; and the pure-Python masking
above stays as the fallback where websockets was built without C.
"""

from __future__ import annotations

import codecs
import enum
import logging
import os
import struct
from collections.abc import Callable, Generator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from websockets.exceptions import ProtocolError
from websockets.frames import Frame, Opcode
from websockets.protocol import SEND_EOF, Protocol, Side, State

__all__ = [
    "CloseReceived",
    "Event",
    "NoDebugLogger",
    "PongReceived",
    "Role",
    "TextMessage",
    "WsClosedError",
    "WsCodec",
    "MASKING",
    "apply_mask",
]

RECV_BUFFER = 16 * 1024  # the receive buffer; grows for a frame that does not fit, then shrinks
MIN_READ = 4096          # free space offered to each read, at least
MASK_POOL = 1024         # bytes of os.urandom per refill: 256 masking keys
MAX_REASON_BYTES = 123   # a close frame's payload is at most 125 bytes, 2 of them the code

_FIN_TEXT = 0x81
_FIN_BINARY = 0x82
_KNOWN_OPCODES = frozenset(int(op) for op in Opcode)
_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")


class NoDebugLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger for websockets that can never emit DEBUG.

    websockets logs every handshake header and frame at DEBUG; those carry API
    keys and voice tokens, so that level is off for good whatever the
    application configures (which also spares the per-frame formatting).
    """

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]
                ) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


_DEFAULT_LOGGER = NoDebugLogger(logging.getLogger("telcoflow.websocket"), {})


# ── masking ─────────────────────────────────────────────────────────────────

_INT_MASK_MAX = 256  # at or below this many bytes ints beat numpy (see the table above)
# For n payload bytes: one 0x01 per 32-bit little-endian word, so key * ones repeats the key,
# and the n-byte mask that trims the last repetition.
_WORD_ONES = [int.from_bytes(b"\x01\x00\x00\x00" * ((n + 3) >> 2), "little")
              for n in range(_INT_MASK_MAX + 1)]
_LOW_BYTES = [(1 << (8 * n)) - 1 for n in range(_INT_MASK_MAX + 1)]
_U8 = np.dtype(np.uint8)


def _python_mask(data: bytes | bytearray | memoryview, key: bytes | bytearray | memoryview
                 ) -> bytes:
    """``data`` XOR the 4-byte ``key`` repeated (RFC 6455 5.3); masking and unmasking alike."""
    key = bytes(key)
    n = len(data)
    if n <= _INT_MASK_MAX:
        mask = int.from_bytes(key, "little") * _WORD_ONES[n] & _LOW_BYTES[n]
        return (int.from_bytes(data, "little") ^ mask).to_bytes(n, "little")
    keys = np.frombuffer(key * ((n + 3) >> 2), _U8, n)
    return np.bitwise_xor(np.frombuffer(data, _U8), keys).tobytes()


Masker = Callable[[bytes | bytearray | memoryview, bytes | bytearray | memoryview], bytes]

try:  # see "Masking" above for why this one import reaches past websockets' documented API
    from websockets.speedups import apply_mask as _c_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    apply_mask: Masker = _python_mask
    MASKING = "python"
else:
    apply_mask = cast(Masker, _c_mask)  # it takes any contiguous buffer, typed narrower
    MASKING = "websockets C"


# ── events ──────────────────────────────────────────────────────────────────

class Role(enum.Enum):
    SERVER = "server"  # receives masked frames, sends unmasked ones
    CLIENT = "client"  # sends masked frames, refuses masked ones


@dataclass(slots=True)
class TextMessage:
    """A whole text message; ``data`` is valid UTF-8 and ``text`` its decoding."""

    text: str
    data: bytes


@dataclass(slots=True)
class PongReceived:
    data: bytes


@dataclass(slots=True)
class CloseReceived:
    """The peer's close frame. The codec has already answered it if the peer started."""

    code: int
    reason: str


# A binary message is its payload itself: the hot path allocates no event object.
Event = bytes | TextMessage | PongReceived | CloseReceived


class WsClosedError(ConnectionError):
    """A data frame was sent on a connection that is not open."""


# ── the codec ───────────────────────────────────────────────────────────────

class _Fragments:
    """A fragmented message being reassembled; text is validated as it arrives."""

    __slots__ = ("text", "parts", "decoder")

    def __init__(self, text: bool) -> None:
        self.text = text
        self.parts: list[bytes] = []
        self.decoder = codecs.getincrementaldecoder("utf-8")() if text else None

    def add(self, data: bytes, fin: bool) -> None:
        """Raises UnicodeDecodeError as soon as text stops being valid UTF-8."""
        self.parts.append(data)
        if self.decoder is not None:
            self.decoder.decode(data, fin)


class WsCodec:
    """One open WebSocket connection's framing, in either role.

    Receiving: read into :meth:`get_buffer` then call :meth:`buffer_updated`
    (or hand over bytes with :meth:`receive_data`); either returns the events
    found, in order, after the whole read is parsed, so :attr:`open` already
    reflects every frame in it. Then write :meth:`data_to_send` (pongs, close
    replies) and, if :attr:`transport_close_due`, close the TCP connection.

    Sending: every ``send_*`` call returns the bytes to write now: anything
    still due, then its own frame.
    """

    __slots__ = ("role", "needs_attention", "_proto", "_open", "_fast", "_failed", "_eof",
                 "_eof_due", "_mask_in", "_max_message", "_recv_buffer", "_buf", "_view",
                 "_start", "_end", "_frag", "_out", "_masks", "_mask_at", "_frame",
                 "_close_received")

    def __init__(self, role: Role, *, max_message: int = 1 << 20,
                 recv_buffer: int = RECV_BUFFER, logger: logging.LoggerAdapter[Any] |
                 logging.Logger | None = None) -> None:
        self.role = role
        # Read-only for users. After a read: bytes are due (data_to_send) or the codec is no
        # longer open. False in the usual case, when a read needs nothing but its events;
        # a plain attribute, not a property, because it is read once per received frame.
        self.needs_attention = False
        server = role is Role.SERVER
        self._proto = Protocol(Side.SERVER if server else Side.CLIENT, state=State.OPEN,
                               max_size=max_message, logger=logger or _DEFAULT_LOGGER)
        self._open = True    # the websockets protocol's state is OPEN
        self._fast = True    # frames are parsed here; False: every byte goes to websockets
        self._failed = False
        self._eof = False
        self._eof_due = False
        self._mask_in = 0x80 if server else 0
        self._max_message = max_message
        self._recv_buffer = recv_buffer
        # Received bytes not consumed yet are self._buf[self._start:self._end]. Empty until
        # needed: a connection fed by receive_data() from a shared buffer may never need it.
        self._buf = bytearray()
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._frag: _Fragments | None = None
        self._out: list[bytes] = []
        self._masks = b""
        self._mask_at = MASK_POOL
        self._frame = self._frame_unmasked if server else self._frame_masked
        self._close_received: CloseReceived | None = None

    # ── state ───────────────────────────────────────────────────────────────

    @property
    def open(self) -> bool:
        """Data frames can be sent (no close frame sent or received, no failure)."""
        return self._open

    @property
    def state(self) -> State:
        return self._proto.state

    @property
    def close_expected(self) -> bool:
        """Closing has started: the TCP connection should end soon (arm a timeout)."""
        return self._proto.close_expected()

    @property
    def transport_close_due(self) -> bool:
        """The closing handshake is over (or failed) on our side: close the TCP connection."""
        return self._eof_due

    @property
    def close_code(self) -> int | None:
        """The peer's close code: from its close frame (1005 if it had none), 1006 if the
        stream ended without one, None while neither happened."""
        if self._close_received is not None:
            return self._close_received.code
        return 1006 if self._eof else None

    @property
    def close_reason(self) -> str:
        return self._close_received.reason if self._close_received is not None else ""

    # ── receiving ───────────────────────────────────────────────────────────

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Free space at the end of the receive buffer, at least MIN_READ bytes."""
        if len(self._buf) - self._end < MIN_READ:
            self._make_room(MIN_READ)
        return self._view[self._end:]

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Bytes read elsewhere, e.g. into a read buffer shared by many connections.

        When no partial frame is pending (the usual case) the frames are parsed
        where ``data`` lies, and only an incomplete last frame is copied in: a
        server reading 50 frames a second on each of hundreds of connections then
        keeps one hot read buffer instead of touching one per connection.
        """
        n = len(data)
        if self._start != self._end or not self._fast:  # continue the pending frame
            if len(self._buf) - self._end < n:
                self._make_room(n)
            self._buf[self._end:self._end + n] = data
            return self.buffer_updated(n)
        events: list[Event] = []
        view = data if type(data) is memoryview else memoryview(data)
        pos, stopped = self._parse(data, view, 0, n, events)
        if pos < n:  # a partial frame, or the rest is websockets' to read
            if len(self._buf) < n - pos:
                self._make_room(n - pos)
            self._buf[:n - pos] = view[pos:]
            self._start, self._end = 0, n - pos
            if stopped:
                self._fast = False
                return self._delegate_rest(events)
        elif stopped:  # closing: websockets reads whatever comes next
            self._fast = False
        return events

    def receive_eof(self) -> None:
        """The peer closed its side of the TCP connection. Idempotent."""
        if self._eof:
            return
        self._eof = True
        if self._end > self._start:  # a frame cut short: websockets fails the connection
            self._proto.receive_data(bytes(self._view[self._start:self._end]))
            self._start = self._end = 0
        self._proto.receive_eof()
        self._collect()

    def release(self) -> None:
        """The connection is gone and its close code read: free what the codec holds.

        A codec sits in two reference cycles, which only the cyclic garbage
        collector would free (a full collection, for a connection that lived
        long enough to be promoted): its framing function is a bound method
        kept on itself, and websockets' parser is a generator whose suspended
        frame refers back to its protocol. Both end here, so the codec and the
        protocol are freed by reference counting alone, and the receive buffer
        at once. ``state``, ``close_code`` and ``close_reason`` stay readable;
        nothing may be sent or received after this.
        """
        self._open = False
        self._start = self._end = 0
        self._shrink()
        self._frame = _frame_after_release
        parser = getattr(self._proto, "parser", None)
        if isinstance(parser, Generator):
            parser.close()

    def buffer_updated(self, nbytes: int) -> list[Event]:
        """``nbytes`` were written at the start of the last :meth:`get_buffer`: the
        messages of every whole frame now in the buffer, in order (a partial frame
        waits for the next read).

        This is the per-frame hot path: locals rather than attributes, and no call
        but the payload's copy.
        """
        end = self._end + nbytes
        self._end = end
        if not self._fast:
            return self._delegate_rest([])
        events: list[Event] = []
        pos, stopped = self._parse(self._buf, self._view, self._start, end, events)
        if pos == end and not stopped:  # all consumed, the usual case
            self._start = self._end = 0
            if len(self._buf) > self._recv_buffer:
                self._shrink()
            return events
        self._start = pos
        if stopped:
            self._fast = False  # websockets reads every byte from here on
            return self._delegate_rest(events)
        return events  # a partial frame: the rest comes with the next read

    def _parse(self, buf: bytes | bytearray | memoryview, view: memoryview, pos: int,
               end: int, events: list[Event]) -> tuple[int, bool]:
        """Frames of ``buf[pos:end]`` into ``events``; returns where parsing stopped, and
        True if from there on websockets must read (a refused frame, or closing).

        This is the per-frame hot path: locals rather than attributes, and no call
        but the payload's copy.
        """
        mask_in, limit = self._mask_in, self._max_message
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if b0 != _FIN_BINARY and b0 != _FIN_TEXT and (
                    b0 & 0x70 or b0 & 0x0F not in _KNOWN_OPCODES):
                return pos, True  # reserved bits or an unknown opcode: 1002, without waiting
            if b1 & 0x80 != mask_in:
                return pos, True  # masked from a server, unmasked from a client: 1002
            size = b1 & 0x7F
            if size < 126:
                head = pos + 2
            elif size == 126:
                if end - pos < 4:
                    break
                size = buf[pos + 2] << 8 | buf[pos + 3]
                head = pos + 4
            else:
                if end - pos < 10:
                    break
                size = int.from_bytes(view[pos + 2:pos + 10], "big")
                head = pos + 10
            if size > limit:
                return pos, True  # 1009, before the payload arrives
            body = head + 4 if mask_in else head
            stop = body + size
            if stop > end:
                break
            if b0 == _FIN_BINARY and self._frag is None:
                events.append(apply_mask(view[body:stop], view[head:body]) if mask_in
                              else view[body:stop].tobytes())
            elif b0 == _FIN_TEXT and self._frag is None:
                self._text(apply_mask(view[body:stop], view[head:body]) if mask_in
                           else view[body:stop].tobytes(), events)
            else:  # a control frame or a fragment: websockets', one whole frame at a time
                self._feed(view[pos:stop].tobytes(), events)
            pos = stop
            if not self._open:
                return pos, True  # closing: websockets reads the rest (and discards it)
        return pos, False

    def _delegate_rest(self, events: list[Event]) -> list[Event]:
        data = bytes(self._view[self._start:self._end])
        self._reset_buffer()
        if data and not self._eof:
            self._feed(data, events)
        return events

    def _feed(self, data: bytes, events: list[Event]) -> None:
        if self._eof:
            return  # websockets reads nothing after the end of the stream
        proto = self._proto
        proto.receive_data(data)
        for frame in proto.events_received():
            if isinstance(frame, Frame):  # always, once open (no handshake events)
                self._on_frame(frame, events)
        self._collect()

    def _on_frame(self, frame: Frame, events: list[Event]) -> None:
        op = frame.opcode
        data = frame.data if type(frame.data) is bytes else bytes(frame.data)
        if op is Opcode.TEXT or op is Opcode.BINARY or op is Opcode.CONT:
            if not self._failed:
                self._on_data_frame(op, data, frame.fin, events)
        elif op is Opcode.PONG:
            events.append(PongReceived(data))
        elif op is Opcode.CLOSE:
            # websockets has validated the payload (code range, UTF-8 reason) and replied.
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            self._close_received = CloseReceived(code, data[2:].decode())
            events.append(self._close_received)
        # PING: websockets has queued the pong.

    def _on_data_frame(self, op: Opcode, data: bytes, fin: bool, events: list[Event]) -> None:
        # websockets has checked the sequence: CONT only inside a message, no new one inside.
        if op is not Opcode.CONT:
            if fin:
                if op is Opcode.BINARY:
                    events.append(data)
                else:
                    self._text(data, events)
                return
            self._frag = _Fragments(op is Opcode.TEXT)
        frag = self._frag
        assert frag is not None
        try:
            frag.add(data, fin)
        except UnicodeDecodeError:
            self._frag = None
            self._fail_utf8()
            return
        if fin:
            self._frag = None
            whole = b"".join(frag.parts)
            events.append(TextMessage(whole.decode(), whole) if frag.text else whole)

    def _text(self, data: bytes, events: list[Event]) -> None:
        try:
            events.append(TextMessage(data.decode(), data))
        except UnicodeDecodeError:
            self._fail_utf8()

    def _fail_utf8(self) -> None:
        self._failed = True
        self._proto.fail(1007, "invalid UTF-8 in a text message")
        self._collect()

    def _collect(self) -> None:
        """Take what websockets wants written, and its new state."""
        proto = self._proto
        for chunk in proto.data_to_send():
            if chunk == SEND_EOF:  # websockets' "close the TCP connection now"
                self._eof_due = True
            else:
                self._out.append(chunk)
        if self._open and proto.state is not State.OPEN:
            self._open = False
            self._fast = False
        self.needs_attention = not self._open or bool(self._out)

    # ── receive buffer ──────────────────────────────────────────────────────

    def _make_room(self, need: int) -> None:
        start, end = self._start, self._end
        pending = end - start
        if pending + need > len(self._buf):
            # A frame bigger than the buffer (bigger ones than max_message are refused).
            grown = bytearray(max(2 * len(self._buf), pending + need))
            grown[:pending] = self._view[start:end]
            self._buf, self._view = grown, memoryview(grown)
        elif pending:
            self._buf[:pending] = self._buf[start:end]
        self._start, self._end = 0, pending

    def _reset_buffer(self) -> None:
        self._start = self._end = 0
        if len(self._buf) > self._recv_buffer:
            self._shrink()

    def _shrink(self) -> None:
        """Grown for a big message, the buffer gives the memory back once it is empty."""
        self._buf = bytearray()
        self._view = memoryview(self._buf)

    # ── sending ─────────────────────────────────────────────────────────────

    def data_to_send(self) -> bytes:
        """Bytes due on the wire (pongs, close frames), in order; b"" if none."""
        out = self._out
        if not out:
            return b""
        self._out = []
        self.needs_attention = not self._open
        return out[0] if len(out) == 1 else b"".join(out)

    def send_binary(self, data: bytes | bytearray | memoryview) -> bytes:
        if not self._open:
            raise WsClosedError("the WebSocket is not open")
        frame = self._frame(_FIN_BINARY, data)
        return self.data_to_send() + frame if self._out else frame

    def send_text(self, text: str | bytes) -> bytes:
        if not self._open:
            raise WsClosedError("the WebSocket is not open")
        frame = self._frame(_FIN_TEXT, text.encode() if isinstance(text, str) else text)
        return self.data_to_send() + frame if self._out else frame

    def send_binary_frames(self, payloads: Sequence[bytes | bytearray | memoryview]) -> bytes:
        """One binary frame per payload, for one write."""
        if not self._open:
            raise WsClosedError("the WebSocket is not open")
        build = self._frame
        frames = b"".join([build(_FIN_BINARY, data) for data in payloads])
        return self.data_to_send() + frames if self._out else frames

    def send_ping(self, data: bytes = b"") -> bytes:
        if self._open:
            self._proto.send_ping(data)
            self._collect()
        return self.data_to_send()

    def send_close(self, code: int = 1000, reason: str = "") -> bytes:
        """Start the closing handshake (a no-op unless open); ValueError for a code
        that may not be sent (1005, 1006, 1015, below 1000, ...)."""
        if self._open:
            try:
                self._proto.send_close(code, _trim_reason(reason))
            except ProtocolError as exc:
                raise ValueError(f"cannot send close code {code}: {exc}") from exc
            self._collect()
        return self.data_to_send()

    def fail(self, code: int, reason: str = "") -> bytes:
        """Fail the connection (RFC 6455 7.1.7): a close frame if open, then no more
        data is processed; a server also closes the TCP connection at once."""
        if not self._failed and not self._eof:
            self._failed = True
            self._proto.fail(code, _trim_reason(reason))
            self._collect()
        return self.data_to_send()

    def _frame_unmasked(self, first: int, data: bytes | bytearray | memoryview) -> bytes:
        if type(data) is memoryview and data.itemsize != 1:
            data = data.cast("B")
        n = len(data)
        if n < 126:
            return bytes((first, n)) + data
        if n < 65536:
            return _HEAD16.pack(first, 126, n) + data
        return _HEAD64.pack(first, 127, n) + data

    def _frame_masked(self, first: int, data: bytes | bytearray | memoryview) -> bytes:
        # Keys come from a pool refilled by one os.urandom call per 256 frames.
        at = self._mask_at
        if at >= MASK_POOL:
            self._masks, at = os.urandom(MASK_POOL), 0
        self._mask_at = at + 4
        key = self._masks[at:at + 4]
        if type(data) is memoryview and data.itemsize != 1:
            data = data.cast("B")
        n = len(data)
        if n < 126:
            head = bytes((first, 0x80 | n))
        elif n < 65536:
            head = _HEAD16.pack(first, 0xFE, n)
        else:
            head = _HEAD64.pack(first, 0xFF, n)
        return head + key + apply_mask(data, key)


def _frame_after_release(first: int, data: bytes | bytearray | memoryview) -> bytes:
    raise WsClosedError("the WebSocket is closed")


def _trim_reason(reason: str) -> str:
    """At most MAX_REASON_BYTES of UTF-8, cut at a character boundary."""
    raw = reason.encode()
    if len(raw) <= MAX_REASON_BYTES:
        return reason
    return raw[:MAX_REASON_BYTES].decode(errors="ignore")
