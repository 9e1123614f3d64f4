"""Twilio Media Streams (bidirectional ``<Connect><Stream>``): sans-I/O, both directions.

Every frame is a JSON text frame with an ``event`` field (docs/twilio.md and
``shared/spec/bridge-protocols.md`` §1).

Twilio → us: ``connected`` (first, no ``streamSid``), ``start`` (once),
``media`` (base64 μ-law 8 kHz), ``dtmf``, ``mark`` (the echo of a mark we
sent, once the audio queued before it has played or a ``clear`` flushed it),
``stop`` (last). ``sequenceNumber``, ``chunk`` and ``timestamp`` are JSON
*strings*; ``sampleRate`` and ``channels`` are numbers.

Us → Twilio: ``media`` (``{streamSid, media:{payload}}``), ``mark``
(``{streamSid, mark:{name}}``), ``clear`` (``{streamSid}``).

The gateway reads Twilio's frames strictly: :class:`InboundStream` checks one
stream's frames in order (``connected`` → ``start`` → ``media``/``dtmf``/``mark``
… → ``stop``) and raises :class:`TwilioFrameError`, whose ``code`` says
what was wrong. The emulator client (:mod:`telcoflow.testing.twilio_client`)
builds Twilio's frames and reads ours with this same module.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from ._json import loads_bounded
from .errors import ProtocolError

VOICE_PATH = "/v1/twilio/voice"   # the number's "A call comes in" webhook (POST)
MEDIA_PATH = "/v1/twilio/media"   # the <Stream> WebSocket

ENCODING = "audio/x-mulaw"
SAMPLE_RATE = 8000
FRAME_BYTES = 160                  # 20 ms of μ-law at 8 kHz
MAX_MEDIA_FRAMES = 10              # an inbound ``media`` carries at most 200 ms
MAX_PAYLOAD_BYTES = FRAME_BYTES * MAX_MEDIA_FRAMES
MAX_FRAME_CHARS = 8 * 1024         # a 200 ms media frame is ~2.4 kB of JSON
MAX_NAME_CHARS = 256               # mark names, custom parameters
DTMF_DIGITS = frozenset("0123456789*#ABCD")
ANSWERED_MARK = "answered"       # the gateway's mark when the agent takes the call

INBOUND_EVENTS = ("connected", "start", "media", "dtmf", "mark", "stop")
OUTBOUND_EVENTS = ("media", "mark", "clear")


class TwilioFrameError(ProtocolError):
    """A Media Streams frame we refuse; ``code`` names the fault:

    ``BAD_JSON``, ``FRAME_TOO_LARGE``, ``BAD_FIELD`` (missing or wrong type),
    ``UNKNOWN_EVENT``, ``MISSING_STREAM_SID``, ``UNKNOWN_STREAM_SID``,
    ``BAD_PAYLOAD`` (not base64, empty, not whole 20 ms frames, too long),
    ``BAD_MEDIA_FORMAT``, ``OUT_OF_ORDER`` (e.g. media before start); ``BAD_TWIML``
    for a voice webhook's answer without a ``<Connect><Stream>``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# ── Twilio → us ───────────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    sequence: int
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str]
    encoding: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class Media:
    sequence: int
    stream_sid: str
    track: str
    chunk: int
    timestamp: int      # ms since the stream started
    payload: bytes      # raw μ-law


@dataclass(frozen=True, slots=True)
class Dtmf:
    sequence: int
    stream_sid: str
    digit: str


@dataclass(frozen=True, slots=True)
class MarkEcho:
    sequence: int
    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    sequence: int
    stream_sid: str
    call_sid: str


InboundEvent = Connected | Start | Media | Dtmf | MarkEcho | Stop


# ── us → Twilio ───────────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class OutMedia:
    stream_sid: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutMark:
    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class Clear:
    stream_sid: str


OutboundEvent = OutMedia | OutMark | Clear


# ── reading ───────────────────────────────────────────────────────────────────

def _object(text: str | bytes) -> dict[str, Any]:
    if len(text) > MAX_FRAME_CHARS:
        raise TwilioFrameError("FRAME_TOO_LARGE", f"frame of {len(text)} bytes exceeds the "
                               f"{MAX_FRAME_CHARS}-byte limit")
    try:
        obj = loads_bounded(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TwilioFrameError("BAD_JSON", f"frame is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise TwilioFrameError("BAD_JSON", f"frame must be a JSON object, not "
                               f"{type(obj).__name__}")
    return obj


def _str(obj: dict[str, Any], name: str, where: str, *, limit: int = MAX_NAME_CHARS) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        what = "missing" if value is None else f"a {type(value).__name__}, not a string"
        raise TwilioFrameError("BAD_FIELD", f"{where}.{name} is {what}")
    if len(value) > limit:
        raise TwilioFrameError("BAD_FIELD", f"{where}.{name} is longer than {limit} characters")
    return value


def _numeric_str(obj: dict[str, Any], name: str, where: str) -> int:
    """``sequenceNumber``, ``chunk``, ``timestamp``: decimal digits in a JSON string."""
    value = _str(obj, name, where, limit=20)
    if not value.isascii() or not value.isdigit():
        raise TwilioFrameError("BAD_FIELD", f"{where}.{name} must be a decimal string, "
                               f"not {value!r}")
    return int(value)


def _sub(obj: dict[str, Any], name: str) -> dict[str, Any]:
    value = obj.get(name)
    if not isinstance(value, dict):
        raise TwilioFrameError("BAD_FIELD", f"{name} must be an object")
    return value


def _stream_sid(obj: dict[str, Any], event: str) -> str:
    sid = obj.get("streamSid")
    if not isinstance(sid, str) or not sid:
        raise TwilioFrameError("MISSING_STREAM_SID", f"a {event} frame needs a streamSid")
    if len(sid) > 64:
        raise TwilioFrameError("BAD_FIELD", "streamSid is longer than 64 characters")
    return sid


def _payload(media: dict[str, Any], *, inbound: bool) -> bytes:
    text = _str(media, "payload", "media", limit=MAX_FRAME_CHARS)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TwilioFrameError("BAD_PAYLOAD", "media.payload is not valid base64") from None
    if not raw:
        raise TwilioFrameError("BAD_PAYLOAD", "media.payload is empty")
    if inbound:
        if len(raw) % FRAME_BYTES:
            raise TwilioFrameError("BAD_PAYLOAD", f"media.payload of {len(raw)} bytes is not "
                                   f"whole 20 ms frames of {FRAME_BYTES} bytes")
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise TwilioFrameError("BAD_PAYLOAD", f"media.payload of {len(raw)} bytes exceeds "
                                   f"{MAX_PAYLOAD_BYTES} bytes ({MAX_MEDIA_FRAMES * 20} ms)")
    return raw


def _parameters(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 32:
        raise TwilioFrameError("BAD_FIELD", "start.customParameters must be an object "
                               "of at most 32 strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > MAX_NAME_CHARS or len(item) > 1024:
            raise TwilioFrameError("BAD_FIELD", f"start.customParameters.{key[:40]} must be "
                                   "a string of at most 1024 characters")
        out[key] = item
    return out


def parse_inbound(text: str | bytes) -> InboundEvent:
    """One frame from Twilio, checked on its own (order is :class:`InboundStream`'s job)."""
    obj = _object(text)
    event = obj.get("event")
    if not isinstance(event, str):
        raise TwilioFrameError("BAD_FIELD", "frame has no event")
    if event == "connected":
        return Connected(str(obj.get("protocol", "")), str(obj.get("version", "")))
    if event not in INBOUND_EVENTS:
        raise TwilioFrameError("UNKNOWN_EVENT", f"unknown event {event[:40]!r}")
    sid = _stream_sid(obj, event)
    seq = _numeric_str(obj, "sequenceNumber", event)
    if event == "media":
        media = _sub(obj, "media")
        return Media(seq, sid, str(media.get("track", "inbound")),
                     _numeric_str(media, "chunk", "media"),
                     _numeric_str(media, "timestamp", "media"), _payload(media, inbound=True))
    if event == "dtmf":
        digit = _str(_sub(obj, "dtmf"), "digit", "dtmf")
        if digit not in DTMF_DIGITS:
            raise TwilioFrameError("BAD_FIELD", f"dtmf.digit {digit[:8]!r} is not one of "
                                   "0-9 * # A-D")
        return Dtmf(seq, sid, digit)
    if event == "mark":
        return MarkEcho(seq, sid, _str(_sub(obj, "mark"), "name", "mark"))
    if event == "stop":
        stop = obj.get("stop")
        call_sid = stop.get("callSid", "") if isinstance(stop, dict) else ""
        return Stop(seq, sid, str(call_sid))
    return _start(obj, seq, sid)


def _start(obj: dict[str, Any], seq: int, sid: str) -> Start:
    start = _sub(obj, "start")
    inner_sid = start.get("streamSid", sid)
    if inner_sid != sid:
        raise TwilioFrameError("UNKNOWN_STREAM_SID", "start.streamSid differs from streamSid")
    fmt = _sub(start, "mediaFormat")
    encoding, rate, channels = fmt.get("encoding"), fmt.get("sampleRate"), fmt.get("channels", 1)
    if encoding != ENCODING or rate != SAMPLE_RATE or channels != 1:
        raise TwilioFrameError("BAD_MEDIA_FORMAT", f"mediaFormat must be {ENCODING} at "
                               f"{SAMPLE_RATE} Hz mono, not {encoding!r} at {rate!r} Hz "
                               f"x{channels!r}")
    tracks = start.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise TwilioFrameError("BAD_FIELD", "start.tracks must be a list of strings")
    return Start(seq, sid, _str(start, "accountSid", "start"), _str(start, "callSid", "start"),
                 tuple(tracks), _parameters(start.get("customParameters")),
                 encoding, rate, channels)


class InboundStream:
    """One stream's frames from Twilio, in order; every refusal a :class:`TwilioFrameError`."""

    def __init__(self) -> None:
        self.connected = False
        self.start: Start | None = None
        self.stopped = False

    @property
    def stream_sid(self) -> str | None:
        return self.start.stream_sid if self.start is not None else None

    def feed(self, text: str | bytes) -> InboundEvent:
        event = parse_inbound(text)
        if self.stopped:
            raise TwilioFrameError("OUT_OF_ORDER", "a frame after stop")
        if isinstance(event, Connected):
            if self.connected:
                raise TwilioFrameError("OUT_OF_ORDER", "a second connected frame")
            self.connected = True
            return event
        if not self.connected:
            raise TwilioFrameError("OUT_OF_ORDER", "the first frame must be connected")
        if isinstance(event, Start):
            if self.start is not None:
                raise TwilioFrameError("OUT_OF_ORDER", "a second start frame")
            self.start = event
            return event
        if self.start is None:
            name = type(event).__name__.lower().replace("markecho", "mark")
            raise TwilioFrameError("OUT_OF_ORDER", f"{name} before start")
        if event.stream_sid != self.start.stream_sid:
            raise TwilioFrameError("UNKNOWN_STREAM_SID", "streamSid is not this stream's")
        if isinstance(event, Stop):
            self.stopped = True
        return event


def parse_outbound(text: str | bytes) -> OutboundEvent:
    """One frame from the gateway (what Twilio reads): ``media``, ``mark`` or ``clear``."""
    obj = _object(text)
    event = obj.get("event")
    if event not in OUTBOUND_EVENTS:
        raise TwilioFrameError("UNKNOWN_EVENT", f"unknown event {str(event)[:40]!r}")
    sid = _stream_sid(obj, str(event))
    if event == "media":
        return OutMedia(sid, _payload(_sub(obj, "media"), inbound=False))
    if event == "mark":
        return OutMark(sid, _str(_sub(obj, "mark"), "name", "mark"))
    return Clear(sid)


def parse_stream_twiml(body: bytes | str) -> tuple[str, dict[str, str]]:
    """The ``<Connect><Stream>`` of a voice webhook's TwiML: its URL and its
    ``<Parameter>``s (what Twilio puts in ``start.customParameters``)."""
    try:
        stream = ElementTree.fromstring(body).find("./Connect/Stream")
    except (ElementTree.ParseError, ValueError, LookupError) as exc:
        # not only ParseError: an XML declaration naming an unknown encoding raises
        # LookupError, a multi-byte one (cp932) ValueError, and a str that cannot be
        # encoded (a lone surrogate) UnicodeEncodeError
        raise TwilioFrameError("BAD_TWIML", f"the TwiML is not XML: {exc}") from None
    if stream is None or not stream.get("url"):
        raise TwilioFrameError("BAD_TWIML", "the TwiML has no <Connect><Stream url=...>")
    return stream.get("url", ""), {p.get("name", ""): p.get("value", "")
                                   for p in stream.findall("Parameter")}


# ── writing ───────────────────────────────────────────────────────────────────

def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


# us → Twilio
def build_media(stream_sid: str, payload: bytes) -> str:
    return _dump({"event": "media", "streamSid": stream_sid, "media": {"payload": _b64(payload)}})


def build_mark(stream_sid: str, name: str) -> str:
    return _dump({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def build_clear(stream_sid: str) -> str:
    return _dump({"event": "clear", "streamSid": stream_sid})


# Twilio → us (the emulator client)
def build_connected() -> str:
    return _dump({"event": "connected", "protocol": "Call", "version": "1.0.0"})


@dataclass(slots=True)
class StartSpec:
    stream_sid: str
    account_sid: str
    call_sid: str
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = ENCODING
    sample_rate: int = SAMPLE_RATE
    channels: int = 1


def build_start(sequence: int, spec: StartSpec) -> str:
    return _dump({"event": "start", "sequenceNumber": str(sequence), "streamSid": spec.stream_sid,
                  "start": {"streamSid": spec.stream_sid, "accountSid": spec.account_sid,
                            "callSid": spec.call_sid, "tracks": ["inbound"],
                            "customParameters": spec.custom_parameters,
                            "mediaFormat": {"encoding": spec.encoding,
                                            "sampleRate": spec.sample_rate,
                                            "channels": spec.channels}}})


def build_inbound_media(sequence: int, stream_sid: str, chunk: int, timestamp_ms: int,
                        payload: bytes) -> str:
    return _dump({"event": "media", "sequenceNumber": str(sequence), "streamSid": stream_sid,
                  "media": {"track": "inbound", "chunk": str(chunk),
                            "timestamp": str(timestamp_ms), "payload": _b64(payload)}})


def build_dtmf(sequence: int, stream_sid: str, digit: str) -> str:
    return _dump({"event": "dtmf", "sequenceNumber": str(sequence), "streamSid": stream_sid,
                  "dtmf": {"track": "inbound_track", "digit": digit}})


def build_mark_echo(sequence: int, stream_sid: str, name: str) -> str:
    return _dump({"event": "mark", "sequenceNumber": str(sequence), "streamSid": stream_sid,
                  "mark": {"name": name}})


def build_stop(sequence: int, stream_sid: str, account_sid: str, call_sid: str) -> str:
    return _dump({"event": "stop", "sequenceNumber": str(sequence), "streamSid": stream_sid,
                  "stop": {"accountSid": account_sid, "callSid": call_sid}})


class OutboundWriter:
    """The gateway's frames for one stream, with the ``streamSid`` part encoded once
    (a ``media`` frame goes out every 20 ms of every call)."""

    __slots__ = ("stream_sid", "_media_head", "_sid_json")

    def __init__(self, stream_sid: str) -> None:
        self.stream_sid = stream_sid
        self._sid_json = json.dumps(stream_sid)
        self._media_head = ('{"event":"media","streamSid":' + self._sid_json
                            + ',"media":{"payload":"')

    def media(self, payload: bytes) -> str:
        return self._media_head + base64.b64encode(payload).decode("ascii") + '"}}'

    def mark(self, name: str) -> str:
        return build_mark(self.stream_sid, name)

    def clear(self) -> str:
        return build_clear(self.stream_sid)
