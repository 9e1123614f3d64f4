"""The QUIC audio plane (seed 001): its envelope and messages; sans-I/O, both directions.

Every message, audio or not, travels in one envelope::

    +----------------+----------------+----------------------------+
    | u32 length LE  | u32 method_id  | body (length - 4 bytes)    |
    |                | LE             | protobuf, quic.proto       |
    +----------------+----------------+----------------------------+

``length`` counts the method id and the body, not itself. The seed draws
``method_id`` without a width; we send it as a u32 little-endian like the
length: the seed's ids are u32 values and one byte order per header is the
least surprise for other languages' clients. The body is one message of
``quic.proto`` (package ``telcoflow.quic.v1``, gencode in ``quic_pb2``) in
protobuf's binary encoding, and the method id says which one
(:class:`MethodId`).

Method ids. ``AUDIO_FRAME`` = 2991054320 and ``CALL_EVENT`` = 959835745 are
the seed's (its hex spelling of the first, ``0xb241_b9b0``, is a typo: the
decimal, which its demuxer example also uses, is ``0xb247ddf0``). Ours are
the first four bytes, read big-endian, of the SHA-256 of the message's full
name (``telcoflow.quic.v1.EventStreamRequest`` ...), computed once and frozen
here as literals: an id must never change, even if a message is renamed.
``tests/protocol/test_quic.py`` checks the table is unique and matches.

Streams (the I/O layer's job; nothing here opens one): the client opens
exactly one uni-stream per call and writes ``AudioFrame`` s back to back,
the last with ``end_of_stream``; the gateway's uni-streams carry
``AudioFrame`` and ``CallEvent`` multiplexed by method id; requests
(``EventStreamRequest``, ``OriginateRequest``, ``CallCommand``) go on
bidirectional streams and are answered there (``Error`` when the request
could not be read). Audio is never retransmitted: a missing sequence number
is heard as 20 ms of silence (:class:`SequenceTracker`, :func:`silence`).

Pieces:

* :func:`encode` / :func:`encode_raw` — a message (or raw body) into an envelope.
* :class:`EnvelopeReader` — stream bytes in any chunking in, :class:`Envelope` s
  out; lengths are checked before the body is buffered.
* :func:`decode` — an envelope's protobuf message, checked
  (:data:`AUDIO_CODECS`, a call sid, a bounded payload).
* :class:`SequenceTracker` — one (call, direction)'s loss accounting.
* :func:`frame_bytes`, :func:`silence` — 20 ms of each codec.

Everything refused raises :class:`QuicFrameError` (a
:class:`~telcoflow.protocol.errors.ProtocolError`) with a specific ``code``.
Enum fields are proto3's open enums: a value this version does not name
decodes as a plain int, so a newer peer's command gets a specific answer
from the I/O layer instead of a stream error.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Final, NamedTuple, NoReturn, TypeAlias

from google.protobuf.message import DecodeError

from . import quic_pb2 as pb
from .errors import ProtocolError

__all__ = [
    "AUDIO_CODECS",
    "FRAME_MS",
    "MAX_BODY",
    "MAX_FILL_FRAMES",
    "MAX_PAYLOAD",
    "MESSAGE_TYPES",
    "METHOD_IDS",
    "PCM16_RATES",
    "AudioFrame",
    "CallCommand",
    "CallCommandResponse",
    "CallEvent",
    "Envelope",
    "EnvelopeReader",
    "Error",
    "EventStreamRequest",
    "EventStreamResponse",
    "LossReport",
    "Message",
    "MethodId",
    "OriginateRequest",
    "OriginateResponse",
    "QuicFrameError",
    "SequenceTracker",
    "decode",
    "encode",
    "encode_raw",
    "frame_bytes",
    "silence",
]

AudioFrame = pb.AudioFrame
CallEvent = pb.CallEvent
LossReport = pb.LossReport
EventStreamRequest = pb.EventStreamRequest
EventStreamResponse = pb.EventStreamResponse
OriginateRequest = pb.OriginateRequest
OriginateResponse = pb.OriginateResponse
CallCommand = pb.CallCommand
CallCommandResponse = pb.CallCommandResponse
Error = pb.Error

#: Every message that may be an envelope's body (LossReport only rides inside CallEvent).
Message: TypeAlias = (AudioFrame | CallEvent | EventStreamRequest | EventStreamResponse
                      | OriginateRequest | OriginateResponse | CallCommand
                      | CallCommandResponse | Error)


class MethodId(IntEnum):
    """The envelope's ``method_id`` of each message (u32; see the module docstring)."""

    AUDIO_FRAME = 2991054320             # seed 001
    CALL_EVENT = 959835745               # seed 001
    EVENT_STREAM_REQUEST = 2249753977    # sha256("telcoflow.quic.v1.EventStreamRequest")[:4]
    EVENT_STREAM_RESPONSE = 1602921295   # sha256("telcoflow.quic.v1.EventStreamResponse")[:4]
    ORIGINATE_REQUEST = 485813355        # sha256("telcoflow.quic.v1.OriginateRequest")[:4]
    ORIGINATE_RESPONSE = 3597367074      # sha256("telcoflow.quic.v1.OriginateResponse")[:4]
    CALL_COMMAND = 425784701             # sha256("telcoflow.quic.v1.CallCommand")[:4]
    CALL_COMMAND_RESPONSE = 2576895611   # sha256("telcoflow.quic.v1.CallCommandResponse")[:4]
    ERROR = 2351482881                   # sha256("telcoflow.quic.v1.Error")[:4]


#: message class → its method id, and back (plain dicts: looked up once per frame)
METHOD_IDS: Final[dict[type[Message], MethodId]] = {
    AudioFrame: MethodId.AUDIO_FRAME,
    CallEvent: MethodId.CALL_EVENT,
    EventStreamRequest: MethodId.EVENT_STREAM_REQUEST,
    EventStreamResponse: MethodId.EVENT_STREAM_RESPONSE,
    OriginateRequest: MethodId.ORIGINATE_REQUEST,
    OriginateResponse: MethodId.ORIGINATE_RESPONSE,
    CallCommand: MethodId.CALL_COMMAND,
    CallCommandResponse: MethodId.CALL_COMMAND_RESPONSE,
    Error: MethodId.ERROR,
}
MESSAGE_TYPES: Final[dict[int, type[Message]]] = {int(m): c for c, m in METHOD_IDS.items()}

_HEADER = struct.Struct("<II")     # length, method_id
_LENGTH = struct.Struct("<I")
_U32 = 0xFFFFFFFF

#: Default bound on an envelope's body. The biggest legitimate one is an audio frame of
#: 20 ms PCM16 at 48 kHz (~2 KB); requests carry a few short strings.
MAX_BODY = 16 * 1024
FRAME_MS = 20
AUDIO_CODECS: Final = frozenset({"PCMU", "PCMA", "PCM16"})
#: G.711 is 8 kHz by definition; PCM16 may come at any of these
PCM16_RATES: Final = frozenset({8000, 16000, 24000, 32000, 44100, 48000})
#: An AudioFrame's payload bound: 20 ms of PCM16 at 48 kHz, the biggest frame we play.
MAX_PAYLOAD = 2 * 48000 * FRAME_MS // 1000
#: The most silence one sequence jump inserts: 50 frames = 1 s.
MAX_FILL_FRAMES = 50


class QuicFrameError(ProtocolError):
    """An envelope or message we refuse; ``code`` names the fault:

    ``MALFORMED`` (a length below the 4 bytes of the method id), ``FRAME_TOO_LARGE``
    (a length over the reader's bound), ``TRUNCATED`` (the stream ended inside an
    envelope), ``UNKNOWN_METHOD`` (a method id this plane does not define),
    ``INVALID_BODY`` (not the method's message, or a value we refuse).

    ``method_id`` is the envelope's when it was read, so the I/O layer can answer a
    request it could not decode with the right response (or an ``Error``).
    """

    def __init__(self, code: str, message: str, method_id: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.method_id = method_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# ── out: messages into envelopes ──────────────────────────────────────────────

def encode(message: Message) -> bytes:
    """``message`` in its envelope, ready to write to a stream."""
    method_id = METHOD_IDS.get(type(message))
    if method_id is None:
        raise TypeError(f"{type(message).__name__} is not a message of the QUIC plane")
    body: bytes = message.SerializeToString()
    return encode_raw(method_id, body)


def encode_raw(method_id: int, body: bytes) -> bytes:
    """An envelope around an already-encoded ``body`` (any method id: tests, proxies).

    The peer bounds what it reads (:data:`MAX_BODY` by default); only what the header
    cannot express is refused here, with :class:`ValueError`.
    """
    if not 0 <= method_id <= _U32:
        raise ValueError(f"method id {method_id} does not fit in a u32")
    if len(body) > _U32 - 4:
        raise ValueError(f"a body of {len(body)} bytes does not fit in one envelope")
    return _HEADER.pack(len(body) + 4, method_id) + body


# ── in: bytes into envelopes, envelopes into messages ────────────────────────

class Envelope(NamedTuple):
    """One envelope read off a stream: unpacks as ``method_id, body`` (the seed's demuxer)."""

    method_id: int
    body: bytes


class EnvelopeReader:
    """Envelopes out of one stream's bytes, however they are chunked.

    A length outside ``4 .. max_body + 4`` raises as soon as its four bytes arrive,
    before any of the body is buffered, so a lying peer costs at most one envelope's
    worth of memory. The raise drops the envelopes the same ``feed`` completed before
    the fault (fed byte by byte they would have been returned): the stream is being
    refused anyway, and an immediate error lets the I/O layer reset it at once. After
    an error the stream has lost its framing: every later call raises the same error.
    """

    __slots__ = ("_buffer", "_failed", "_max_length")

    def __init__(self, max_body: int = MAX_BODY) -> None:
        if max_body < 0:
            raise ValueError("max_body must not be negative")
        self._buffer = bytearray()
        self._max_length = max_body + 4
        self._failed: QuicFrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete envelope held until the rest arrives."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Envelope]:
        """The envelopes ``data`` completes, in order; a partial one is kept."""
        if self._failed is not None:
            raise self._failed
        buffer = self._buffer
        buffer += data
        envelopes: list[Envelope] = []
        pos, end = 0, len(buffer)
        while end - pos >= 4:
            (length,) = _LENGTH.unpack_from(buffer, pos)
            self._check_length(length)
            if end - pos - 4 < length:
                break
            (method_id,) = _LENGTH.unpack_from(buffer, pos + 4)
            envelopes.append(Envelope(method_id, bytes(buffer[pos + 8:pos + 4 + length])))
            pos += 4 + length
        if pos:
            del buffer[:pos]  # once per feed: a chunk of many envelopes stays linear
        return envelopes

    def _check_length(self, length: int) -> None:
        if length < 4:
            self._fail("MALFORMED", f"An envelope length of {length} is shorter than "
                       "its 4-byte method id.")
        if length > self._max_length:
            self._fail("FRAME_TOO_LARGE", f"An envelope of {length} bytes is over this "
                       f"stream's limit of {self._max_length}.")

    def _fail(self, code: str, message: str) -> NoReturn:
        self._failed = QuicFrameError(code, message)
        self._buffer.clear()
        raise self._failed

    def at_eof(self) -> None:
        """The stream ended: raises ``TRUNCATED`` if it stopped inside an envelope."""
        if self._failed is not None:
            raise self._failed
        if self._buffer:
            self._fail("TRUNCATED", f"The stream ended {len(self._buffer)} bytes into an "
                       "envelope.")


def decode(envelope: Envelope) -> Message:
    """The message in ``envelope``, checked; :class:`QuicFrameError` when refused."""
    method_id = envelope.method_id
    cls = MESSAGE_TYPES.get(method_id)
    if cls is None:
        raise QuicFrameError("UNKNOWN_METHOD", f"Method id {method_id} is not a message "
                             "of the QUIC audio plane.", method_id)
    message = cls()
    try:
        message.ParseFromString(envelope.body)
    except DecodeError:
        raise QuicFrameError("INVALID_BODY", f"The body is not a valid {cls.__name__} "
                             "protobuf message.", method_id) from None
    if isinstance(message, AudioFrame):
        _check_audio_frame(message, method_id)
    return message


def _check_audio_frame(frame: AudioFrame, method_id: int) -> None:
    problem = None
    if not frame.call_sid:
        problem = "The AudioFrame has no call_sid."
    elif frame.codec not in AUDIO_CODECS:
        problem = f"The AudioFrame's codec {frame.codec[:40]!r} is not PCMU, PCMA or PCM16."
    elif len(frame.payload) > MAX_PAYLOAD:
        problem = (f"The AudioFrame's payload of {len(frame.payload)} bytes is over "
                   f"{MAX_PAYLOAD} (20 ms of PCM16 at 48 kHz).")
    elif frame.codec == "PCM16" and len(frame.payload) % 2:
        problem = (f"The AudioFrame's PCM16 payload of {len(frame.payload)} bytes is not "
                   "whole 16-bit samples.")
    if problem is not None:
        raise QuicFrameError("INVALID_BODY", problem, method_id)


# ── audio: 20 ms frames and loss ─────────────────────────────────────────────

def frame_bytes(codec: str, sample_rate: int = 8000) -> int:
    """Bytes in 20 ms of ``codec`` at ``sample_rate`` (G.711: 160; PCM16: 2 × rate / 50)."""
    if codec in ("PCMU", "PCMA"):
        if sample_rate != 8000:
            raise ValueError(f"{codec} is 8 kHz, not {sample_rate} Hz")
        return 8000 * FRAME_MS // 1000
    if codec == "PCM16":
        if sample_rate not in PCM16_RATES:
            raise ValueError(f"PCM16 at {sample_rate} Hz: use one of {sorted(PCM16_RATES)}")
        return 2 * sample_rate * FRAME_MS // 1000
    raise ValueError(f"unknown codec {codec!r}: use PCMU, PCMA or PCM16")


_SILENT_BYTE = {"PCMU": b"\xff", "PCMA": b"\xd5", "PCM16": b"\x00"}


def silence(codec: str, sample_rate: int = 8000) -> bytes:
    """20 ms of silence in ``codec``: what a missing frame is heard as."""
    return _SILENT_BYTE[codec] * frame_bytes(codec, sample_rate)


class SequenceTracker:
    """Loss accounting for one (call, direction) by ``sequence_number``; tiny, per frame.

    ``accept(seq)`` says what to do with a frame: play it after ``n`` frames of
    silence (``n`` > 0 when numbers were skipped), or drop it (``None``: its number
    was already received, or a newer one was, so its slot is past). The first frame
    sets the base, whatever its number.

    One jump fills at most ``max_fill`` frames (1 s). A sender that restarts,
    or starts a new stream with a fresh random base, jumps by millions: the caller
    must not hear minutes of silence, and a QUIC stream never loses frames in
    transit, so a big jump is a discontinuity to step over, not audio to wait for.
    Likewise a jump *back* by more than ``max_fill`` is the numbering starting
    again, not a frame that late: the tracker follows it (``resyncs``) instead of
    dropping every frame after it.
    """

    __slots__ = ("received", "missing", "gaps", "duplicates", "reordered", "late_dropped",
                 "resyncs", "max_fill", "_next", "_seen")

    _WINDOW = 64  # numbers behind the newest whose arrival is remembered (one int bitmask)

    def __init__(self, max_fill: int = MAX_FILL_FRAMES) -> None:
        self.max_fill = max_fill
        self.received = 0
        self.missing = 0       # frames of silence inserted
        self.gaps = 0          # forward skips and restarts
        self.duplicates = 0
        self.reordered = 0
        self.resyncs = 0       # jumps over max_fill, either way
        self.late_dropped = 0  # counted by the caller's playout; reported with the rest
        self._next: int | None = None   # the number expected next
        self._seen = 0         # bit i: newest - i was received

    def accept(self, seq: int) -> int | None:
        """Frames of silence to insert before this one, or ``None`` to drop it."""
        expected = self._next
        if seq == expected or expected is None:
            self._advance(seq, 1)
            return 0
        if seq > expected:
            return self._skip(seq, seq - expected)
        behind = expected - 1 - seq  # 0: the newest itself
        if behind > self.max_fill:
            self.resyncs += 1
            self.gaps += 1
            self._advance(seq, self._WINDOW)  # a fresh window: nothing after seq was seen
            return 0
        bit = 1 << behind if behind < self._WINDOW else 0
        if self._seen & bit:
            self.duplicates += 1
        else:
            self.reordered += 1
            self._seen |= bit  # a second copy of it is a duplicate
        return None

    def _skip(self, seq: int, skipped: int) -> int:
        fill = skipped
        if skipped > self.max_fill:
            self.resyncs += 1
            fill = self.max_fill
        self.gaps += 1
        self.missing += fill
        self._advance(seq, skipped + 1)
        return fill

    def _advance(self, seq: int, shift: int) -> None:
        self.received += 1
        self._next = seq + 1
        self._seen = (self._seen << shift | 1) & 0xFFFFFFFFFFFFFFFF if shift < 64 else 1

    def report(self) -> LossReport:
        """The counts as the ``loss`` of a ``CallEvent`` (kind ``LOSS``)."""
        return LossReport(received=self.received, missing=self.missing,
                          duplicates=self.duplicates, reordered=self.reordered,
                          gaps=self.gaps, late_dropped=self.late_dropped)
