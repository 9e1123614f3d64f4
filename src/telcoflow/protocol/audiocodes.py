"""AudioCodes VoiceAI Connect (VAIC) Bot API, streaming WebSocket mode: sans-I/O.

VAIC is the client: it opens one WebSocket per call to the bot (us, at
``/v1/audiocodes``) with ``Authorization: Bearer <token>``. Every frame is a
JSON text frame with a ``type``; frames from VAIC carry ``conversationId``.
Audio travels base64-encoded inside ``userStream.chunk`` (caller → bot) and
``playStream.chunk`` (bot → caller) in the format agreed by
``session.initiate`` / ``session.accepted``.

Both directions live here: :func:`parse_vaic_text` is the gateway's strict
reading of VAIC's messages (a :class:`~.errors.VaicMessageError` with a
specific ``code`` otherwise); the ``build_*`` functions under "bot → VAIC"
are what the gateway sends; the ``vaic_*`` builders and the lenient
:func:`parse_bot_text` are for the VAIC emulator
(:mod:`telcoflow.testing.vaic_client`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._json import CLIENT_READ_LIMIT, dumps, loads_bounded, str_or_empty
from ._json import Unknown as Unknown  # re-exported: part of BotMessage
from .errors import VaicMessageError

AUDIOCODES_PATH = "/v1/audiocodes"


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """One VAIC media format: ``codec`` (pcm16 LE or pcmu) at ``rate`` Hz."""

    name: str
    codec: str
    rate: int

    @property
    def sample_bytes(self) -> int:
        return 2 if self.codec == "pcm16" else 1

    @property
    def bytes_per_ms(self) -> float:
        return self.rate * self.sample_bytes / 1000

    @property
    def frame_bytes(self) -> int:
        """Bytes in 20 ms."""
        return self.rate // 50 * self.sample_bytes


# the formats we take, in OUR order of preference (best first)
FORMATS: dict[str, MediaFormat] = {f.name: f for f in (
    MediaFormat("raw/lpcm16_24", "pcm16", 24000),
    MediaFormat("raw/lpcm16", "pcm16", 16000),
    MediaFormat("raw/lpcm16_8", "pcm16", 8000),
    MediaFormat("raw/mulaw", "pcmu", 8000),
)}
PREFERENCE = tuple(FORMATS)

MAX_CHUNK_BYTES = 48_000  # one second of the largest format (raw/lpcm16_24), decoded
MAX_TEXT_BYTES = 80_000   # a maximal chunk in base64 (64,000 characters) plus its JSON
MAX_FORMATS = 32
MAX_ACTIVITIES = 64
DTMF_DIGITS = frozenset("0123456789*#ABCD")


def media_format(name: str) -> MediaFormat:
    """The format called ``name``, or VaicMessageError(UNSUPPORTED_FORMAT)."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise VaicMessageError(f"media format '{name[:40]}' is not supported; this bot takes "
                               f"{', '.join(PREFERENCE)}", "UNSUPPORTED_FORMAT")
    return fmt


def choose_format(offered: tuple[str, ...] | list[str]) -> MediaFormat | None:
    """The best of ``offered`` by OUR preference order; None when none is usable."""
    usable = set(offered)
    return next((FORMATS[name] for name in PREFERENCE if name in usable), None)


# ── VAIC → bot ──────────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class SessionInitiate:
    conversation_id: str
    bot_name: str
    caller: str
    formats: tuple[str, ...]  # supportedMediaFormats, in VAIC's order
    expect_audio: bool = True


@dataclass(frozen=True, slots=True)
class SessionResume:
    conversation_id: str


@dataclass(frozen=True, slots=True)
class UserStreamStart:
    conversation_id: str


@dataclass(frozen=True, slots=True)
class UserStreamChunk:
    conversation_id: str
    audio: bytes  # decoded; an even length when the format is pcm16


@dataclass(frozen=True, slots=True)
class UserStreamStop:
    conversation_id: str


@dataclass(frozen=True, slots=True)
class Activity:
    """One entry of an ``activities`` message (``type`` is ``event`` or ``message``)."""

    type: str
    name: str = ""
    value: Any = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Activities:
    conversation_id: str
    activities: tuple[Activity, ...]


@dataclass(frozen=True, slots=True)
class SessionEnd:
    conversation_id: str
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionValidate:
    conversation_id: str  # "" when VAIC sent none (it validates outside any call)


VaicMessage = (SessionInitiate | SessionResume | UserStreamStart | UserStreamChunk
               | UserStreamStop | Activities | SessionEnd | ConnectionValidate)


def parse_vaic_text(text: str | bytes, fmt: MediaFormat | None = None) -> VaicMessage:
    """The gateway's strict reading of one VAIC message.

    ``fmt`` is the conversation's negotiated format, if any: a pcm16 chunk
    must then hold whole samples.
    """
    if len(text) > MAX_TEXT_BYTES:
        raise VaicMessageError(f"message of {len(text)} bytes exceeds the {MAX_TEXT_BYTES}-byte "
                               "limit", "FRAME_TOO_LARGE")
    try:
        obj = loads_bounded(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VaicMessageError(f"message is not valid JSON: {exc}", "BAD_JSON") from None
    if not isinstance(obj, dict):
        raise VaicMessageError(f"message must be a JSON object, not {type(obj).__name__}",
                               "BAD_JSON")
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind:
        raise VaicMessageError("message is missing a string field 'type'", "BAD_FIELD")
    parse = _PARSERS.get(kind)
    if parse is None:
        raise VaicMessageError(f"unknown message type '{kind[:64]}'", "UNKNOWN_TYPE")
    cid = obj.get("conversationId")
    if kind == "connection.validate" and cid is None:
        cid = ""
    elif not isinstance(cid, str) or not cid:
        raise VaicMessageError(f"{kind} is missing a string field 'conversationId'",
                               "MISSING_CONVERSATION_ID")
    return parse(obj, cid[:128], fmt)


def _str(obj: dict[str, Any], name: str, where: str, default: str | None = None) -> str:
    value = obj.get(name)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise VaicMessageError(f"{where} field '{name}' must be a string", "BAD_FIELD")
    return value


def _initiate(obj: dict[str, Any], cid: str, fmt: MediaFormat | None) -> SessionInitiate:
    formats = obj.get("supportedMediaFormats")
    if not isinstance(formats, list) or not formats or len(formats) > MAX_FORMATS \
            or not all(isinstance(f, str) for f in formats):
        raise VaicMessageError("session.initiate field 'supportedMediaFormats' must be a "
                               f"non-empty array of at most {MAX_FORMATS} strings", "BAD_FIELD")
    expect = obj.get("expectAudioMessages", True)
    if not isinstance(expect, bool):
        raise VaicMessageError("session.initiate field 'expectAudioMessages' must be a boolean",
                               "BAD_FIELD")
    bot = _str(obj, "botName", "session.initiate", "")[:128]
    caller = _str(obj, "caller", "session.initiate", "anonymous")[:128] or "anonymous"
    return SessionInitiate(cid, bot, caller, tuple(f[:40] for f in formats), expect)


def _chunk(obj: dict[str, Any], cid: str, fmt: MediaFormat | None) -> UserStreamChunk:
    encoded = obj.get("audioChunk")
    if not isinstance(encoded, str):
        raise VaicMessageError("userStream.chunk field 'audioChunk' must be a base64 string",
                               "BAD_FIELD")
    if len(encoded) > (MAX_CHUNK_BYTES + 2) // 3 * 4:
        raise VaicMessageError(f"an audio chunk may hold at most {MAX_CHUNK_BYTES} bytes "
                               "(one second at 24 kHz)", "CHUNK_TOO_LARGE")
    try:
        audio = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise VaicMessageError("userStream.chunk field 'audioChunk' is not valid base64",
                               "BAD_BASE64") from None
    if fmt is not None and fmt.sample_bytes == 2 and len(audio) % 2:
        raise VaicMessageError(f"{fmt.name} audio needs an even byte count, not {len(audio)}",
                               "ODD_LENGTH")
    return UserStreamChunk(cid, audio)


def _activities(obj: dict[str, Any], cid: str, fmt: MediaFormat | None) -> Activities:
    items = obj.get("activities")
    if not isinstance(items, list) or len(items) > MAX_ACTIVITIES:
        raise VaicMessageError(f"activities field 'activities' must be an array of at most "
                               f"{MAX_ACTIVITIES} objects", "BAD_FIELD")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise VaicMessageError("each activity must be an object", "BAD_FIELD")
        kind = _str(item, "type", "activity", "event")
        name = _str(item, "name", "activity", "")
        params = item.get("parameters", item.get("activityParams", {}))
        if not isinstance(params, dict):
            raise VaicMessageError("activity field 'parameters' must be an object", "BAD_FIELD")
        value = item.get("value")
        if name == "dtmf":
            if not isinstance(value, str) or not value or len(value) > 32 \
                    or not set(value) <= DTMF_DIGITS:
                raise VaicMessageError("a dtmf activity's value must be 1-32 of 0-9 * # A-D",
                                       "BAD_DTMF")
        out.append(Activity(kind, name, value, params))
    return Activities(cid, tuple(out))


def _session_end(obj: dict[str, Any], cid: str, fmt: MediaFormat | None) -> SessionEnd:
    code = obj.get("reasonCode", "")
    return SessionEnd(cid, str(code)[:64] if isinstance(code, str | int) else "",
                      _str(obj, "reason", "session.end", "")[:256])


_PARSERS: dict[str, Callable[[dict[str, Any], str, MediaFormat | None], VaicMessage]] = {
    "session.initiate": _initiate,
    "session.resume": lambda obj, cid, fmt: SessionResume(cid),
    "userStream.start": lambda obj, cid, fmt: UserStreamStart(cid),
    "userStream.chunk": _chunk,
    "userStream.stop": lambda obj, cid, fmt: UserStreamStop(cid),
    "activities": _activities,
    "session.end": _session_end,
    "connection.validate": lambda obj, cid, fmt: ConnectionValidate(cid),
}
VAIC_TYPES = tuple(_PARSERS)


# ── bot → VAIC (what the gateway sends) ─────────────────────────────────────

def _msg(kind: str, cid: str, **fields: Any) -> str:
    return dumps({"type": kind, "conversationId": cid, **fields})


def build_session_accepted(cid: str, fmt: MediaFormat | None = None) -> str:
    """``fmt`` None: the answer to ``session.resume`` (the format is unchanged)."""
    return _msg("session.accepted", cid, **({"mediaFormat": fmt.name} if fmt else {}))


def build_session_error(cid: str, reason: str) -> str:
    return _msg("session.error", cid, reason=reason)


def build_user_stream_started(cid: str) -> str:
    return _msg("userStream.started", cid)


def build_user_stream_stopped(cid: str) -> str:
    return _msg("userStream.stopped", cid)


def build_play_stream_start(cid: str, stream_id: str, fmt: MediaFormat) -> str:
    return _msg("playStream.start", cid, streamId=stream_id, mediaFormat=fmt.name)


def build_play_stream_chunk(cid: str, stream_id: str, audio: bytes) -> str:
    return _msg("playStream.chunk", cid, streamId=stream_id,
                audioChunk=base64.b64encode(audio).decode("ascii"))


def build_play_stream_stop(cid: str, stream_id: str) -> str:
    return _msg("playStream.stop", cid, streamId=stream_id)


def build_hangup(cid: str, reason: str = "") -> str:
    activity: dict[str, Any] = {"type": "event", "name": "hangup"}
    if reason:
        activity["activityParams"] = {"hangupReason": reason}
    return _msg("activities", cid, activities=[activity])


def build_send_dtmf(cid: str, digits: str) -> str:
    """Play DTMF to the caller (the ``sendDtmf`` activity; its parameter name ⚠️ unverified)."""
    return _msg("activities", cid, activities=[
        {"type": "event", "name": "sendDtmf", "activityParams": {"dtmfDigits": digits}}])


def build_transfer(cid: str, target: str) -> str:
    """Ask VAIC to transfer the caller (``activityParams.transferTarget``: a ``tel:`` or
    ``sip:`` URI; a bare number becomes ``tel:``)."""
    uri = target if target.startswith(("tel:", "sip:", "sips:")) else f"tel:{target}"
    return _msg("activities", cid, activities=[
        {"type": "event", "name": "transfer", "activityParams": {"transferTarget": uri}}])


def build_connection_validated(cid: str) -> str:
    return _msg("connection.validated", cid, success=True)


# ── VAIC side (the emulator): builders and a lenient reading ────────────────

def vaic_session_initiate(cid: str, bot_name: str, caller: str,
                          formats: tuple[str, ...] | list[str], expect_audio: bool = True) -> str:
    return _msg("session.initiate", cid, botName=bot_name, caller=caller,
                expectAudioMessages=expect_audio, supportedMediaFormats=list(formats))


def vaic_session_resume(cid: str) -> str:
    return _msg("session.resume", cid)


def vaic_user_stream_start(cid: str) -> str:
    return _msg("userStream.start", cid)


def vaic_user_stream_chunk(cid: str, audio: bytes) -> str:
    return _msg("userStream.chunk", cid, audioChunk=base64.b64encode(audio).decode("ascii"))


def vaic_user_stream_stop(cid: str) -> str:
    return _msg("userStream.stop", cid)


def vaic_activity(cid: str, name: str, value: Any = None,
                  parameters: dict[str, Any] | None = None) -> str:
    activity: dict[str, Any] = {"type": "event", "name": name}
    if value is not None:
        activity["value"] = value
    if parameters is not None:
        activity["parameters"] = parameters
    return _msg("activities", cid, activities=[activity])


def vaic_session_end(cid: str, reason_code: str = "client-disconnected",
                     reason: str = "Client Side") -> str:
    return _msg("session.end", cid, reasonCode=reason_code, reason=reason)


def vaic_connection_validate(cid: str = "") -> str:
    return dumps({"type": "connection.validate", **({"conversationId": cid} if cid else {})})


@dataclass(frozen=True, slots=True)
class Accepted:
    media_format: str  # "" in the answer to session.resume


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class UserStreamAck:
    started: bool


@dataclass(frozen=True, slots=True)
class PlayStart:
    stream_id: str
    media_format: str


@dataclass(frozen=True, slots=True)
class PlayChunk:
    stream_id: str
    audio: bytes


@dataclass(frozen=True, slots=True)
class PlayStop:
    stream_id: str


@dataclass(frozen=True, slots=True)
class BotActivities:
    activities: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Validated:
    success: bool


BotMessage = (Accepted | Refused | UserStreamAck | PlayStart | PlayChunk | PlayStop
              | BotActivities | Validated | Unknown)


def parse_bot_text(text: str | bytes) -> BotMessage:
    """VAIC's lenient reading of a bot message (unknown or broken ones become Unknown)."""
    if len(text) > CLIENT_READ_LIMIT:
        return Unknown("oversized")
    try:
        obj = loads_bounded(text)
    except (ValueError, UnicodeDecodeError):
        return Unknown("not-json")
    if not isinstance(obj, dict):
        return Unknown("not-an-object")
    kind = str_or_empty(obj, "type")
    if kind == "session.accepted":
        return Accepted(str_or_empty(obj, "mediaFormat"))
    if kind == "session.error":
        return Refused(str_or_empty(obj, "reason"))
    if kind in ("userStream.started", "userStream.stopped"):
        return UserStreamAck(kind == "userStream.started")
    if kind == "playStream.start":
        return PlayStart(str_or_empty(obj, "streamId"), str_or_empty(obj, "mediaFormat"))
    if kind == "playStream.chunk":
        try:
            audio = base64.b64decode(str_or_empty(obj, "audioChunk"), validate=True)
        except (binascii.Error, ValueError):
            return Unknown(kind)
        return PlayChunk(str_or_empty(obj, "streamId"), audio)
    if kind == "playStream.stop":
        return PlayStop(str_or_empty(obj, "streamId"))
    if kind == "activities":
        items = obj.get("activities")
        return BotActivities(tuple(a for a in items if isinstance(a, dict))
                             if isinstance(items, list) else ())
    if kind == "connection.validated":
        return Validated(obj.get("success") is True)
    return Unknown(kind)
