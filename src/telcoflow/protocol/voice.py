"""Voice plane (one WebSocket per call): commands, responses, events, audio.

Text frames are ``{"type": ..., "data": {...}}``; binary frames are
``[channel byte][PCM16 LE mono]`` both ways. Sans-I/O, one section per
direction:

* client → server: :func:`build_command` (the SDK) and
  :func:`parse_client_text` / :func:`split_audio`, the gateway's strict
  reading (a typed command or a :mod:`.errors` exception carrying the
  ``command_id`` when one was readable);
* server → client: the ``build_*`` helpers the gateway sends with, and
  :func:`parse_server_text` / :func:`split_server_audio`, the SDK's lenient
  reading (missing fields take defaults, unknown types become
  :class:`Unknown`; only a frame that is not a JSON object raises).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ._json import CLIENT_READ_LIMIT, decode_object, dumps, field, int_or_zero, str_or_empty
from ._json import Unknown as Unknown  # re-exported: part of ServerFrame
from .errors import MalformedFrame, UnknownCommand, UnknownMessageType

MAX_TEXT_BYTES = 16 * 1024
MAX_AUDIO_BYTES = 64 * 1024  # > 1 s at 24 kHz: a generous bound for one binary frame

COMMANDS = (
    "call.answer", "call.connect", "agent.whisper", "agent.barge", "agent.spy",
    "agent.interrupt", "call.disconnect", "call.close",
    "call.dtmf",  # ours: play digits to the party (the published SDK has no such command)
    "playout.position",  # ours: how much of the agent's audio the caller has heard
)
# ours, server → agent: the played position (a type the published SDK ignores)
PLAYOUT_POSITION = "playout_position"
DEFAULT_TIMEOUT_MS = 10_000

CALL_TERMINATED = "call.terminated"
CALL_ERROR = "call.error"
CALL_DTMF = "call.dtmf"  # ours: a party pressed a key (the published SDK ignores it)
# ours: a quality alert raised or cleared on a leg (the published SDK ignores it)
CALL_QUALITY = "call.quality"
DTMF_DIGITS = frozenset("0123456789*#ABCD")
MAX_DTMF_DIGITS = 32


# ── client → server ─────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Command:
    command_id: str
    name: str
    timeout_ms: int
    data: dict[str, Any]


def build_command(command_id: str, name: str, timeout_ms: int,
                  data: dict[str, Any] | None = None) -> str:
    """A ``command``; ``data`` is left out when None (the server then takes ``{}``)."""
    body: dict[str, Any] = {"command_id": command_id, "command": name, "timeout_ms": timeout_ms}
    if data is not None:
        body["data"] = data
    return dumps({"type": "command", "data": body})


def parse_client_text(text: str | bytes) -> Command:
    """The gateway's strict reading of a client text frame (only ``command`` exists)."""
    obj = decode_object(text, MAX_TEXT_BYTES)
    kind = obj.get("type")
    inner = obj.get("data")
    cid = inner.get("command_id") if isinstance(inner, dict) else None
    command_id = cid if isinstance(cid, str) and cid else None
    if not isinstance(kind, str):
        raise MalformedFrame("frame is missing a string field 'type'", command_id)
    if kind != "command":
        raise UnknownMessageType(f"unknown message type '{kind[:64]}'", command_id)
    data = field(obj, "data", dict, where="command")
    command_id = field(data, "command_id", str, where="command.data")
    if not command_id:
        raise MalformedFrame("command.data.command_id must not be empty")
    name = field(data, "command", str, where="command.data", request_id=command_id)
    timeout = field(data, "timeout_ms", int, where="command.data", request_id=command_id,
                    required=False, default=DEFAULT_TIMEOUT_MS)
    if timeout <= 0:
        raise MalformedFrame("command.data.timeout_ms must be positive", command_id)
    args = field(data, "data", dict, where="command.data", request_id=command_id,
                 required=False, default={})
    if name not in COMMANDS:
        raise UnknownCommand(f"unknown command '{name[:64]}'; known: {', '.join(COMMANDS)}",
                             command_id)
    return Command(command_id, name, timeout, args)


MAX_RING_S = 120


def ring_time_s(command: Command) -> int:
    """``call.connect``'s ``ringTimeSeconds`` (1..120, default 60), checked."""
    ring = field(command.data, "ringTimeSeconds", int, where="call.connect data",
                 request_id=command.command_id, required=False, default=60)
    if not 1 <= ring <= MAX_RING_S:
        raise MalformedFrame(f"call.connect ringTimeSeconds must be 1..{MAX_RING_S}, not {ring}",
                             command.command_id)
    return ring


def dtmf_digits(command: Command) -> str:
    """``call.dtmf``'s ``digits``: 1..32 of ``0-9 * # A-D``, checked."""
    digits = field(command.data, "digits", str, where="call.dtmf data",
                   request_id=command.command_id)
    if not 1 <= len(digits) <= MAX_DTMF_DIGITS or not set(digits) <= DTMF_DIGITS:
        raise MalformedFrame(f"call.dtmf digits must be 1..{MAX_DTMF_DIGITS} of 0-9 * # A-D, "
                             f"not {digits[:40]!r}", command.command_id)
    return digits


def split_audio(frame: bytes) -> tuple[int, bytes]:
    """The gateway's strict reading of client audio: ``[channel][pcm]`` → ``(channel, pcm)``.

    PCM16 needs an even byte count.
    """
    if len(frame) < 3:
        raise MalformedFrame(f"audio frame of {len(frame)} bytes is shorter than 3")
    if len(frame) > MAX_AUDIO_BYTES + 1:
        raise MalformedFrame(f"audio frame of {len(frame)} bytes exceeds {MAX_AUDIO_BYTES}")
    if (len(frame) - 1) % 2:
        raise MalformedFrame("audio payload must hold whole 16-bit samples (odd byte count)")
    return frame[0], frame[1:]


def build_audio(channel: int, pcm: bytes) -> bytes:
    """One audio frame, either direction."""
    return bytes((channel,)) + pcm


# ── server → client ─────────────────────────────────────────────────────────

def build_command_response(command_id: str, result: Any = None) -> str:
    return dumps({"type": "command_response",
                  "data": {"command_id": command_id, "success": True, "result": result}})


def build_command_error(command_id: str, code: str, message: str) -> str:
    return dumps({"type": "command_response",
                  "data": {"command_id": command_id, "success": False, "result": None,
                           "error_code": code, "error_message": message}})


@lru_cache(maxsize=256)
def build_buffer_request(requested_bytes: int, frame_bytes: int, channel: int = 0) -> str:
    # cached: a gateway sends ~17 a second per call, and they take a handful of values
    # (whole credit quanta of one frame size), so each is encoded once, not every time
    return dumps({"type": "buffer_request",
                  "data": {"requested_bytes": requested_bytes,
                           "prefer_audio_frame_bytes": frame_bytes, "channelId": channel}})


def build_call_event(event: str, **extra: Any) -> str:
    return dumps({"type": "call_event", "data": {"event": event, **extra}})


def build_playout_position(played_bytes: int, played_ms: int, reason: str) -> str:
    return dumps({"type": PLAYOUT_POSITION, "data": {"played_bytes": played_bytes,
                                                     "played_ms": played_ms, "reason": reason}})


def build_error(code: str, message: str) -> str:
    """An error about a frame that carried no command id (clients ignore this type)."""
    return dumps({"type": "error", "data": {"error_code": code, "error_message": message}})


@dataclass(frozen=True, slots=True)
class BufferRequest:
    requested_bytes: int
    prefer_frame_bytes: int
    channel_id: int


@dataclass(frozen=True, slots=True)
class CommandResponse:
    command_id: str
    success: bool
    result: Any
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class PlayoutPosition:
    """How much of the agent's audio the caller has heard since the answer."""

    played_bytes: int
    played_ms: int
    reason: str  # interrupt | talkspurt_end | request


@dataclass(frozen=True, slots=True)
class CallEventFrame:
    event: str
    data: dict[str, Any]  # the event's other fields


# ``error`` frames (no command id to answer) read as Unknown("error"): clients ignore them.
ServerFrame = BufferRequest | CommandResponse | CallEventFrame | PlayoutPosition | Unknown


def parse_server_text(text: str | bytes) -> ServerFrame:
    """The SDK's lenient reading of one server text frame."""
    obj = decode_object(text, CLIENT_READ_LIMIT)
    kind = str_or_empty(obj, "type")
    raw = obj.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind == "buffer_request":
        return BufferRequest(int_or_zero(data, "requested_bytes"),
                             int_or_zero(data, "prefer_audio_frame_bytes"),
                             int_or_zero(data, "channelId"))
    # a response or event without the field it is matched by cannot be used: Unknown
    if kind == "command_response" and "command_id" in data:
        code, message = data.get("error_code"), data.get("error_message")
        return CommandResponse(str(data["command_id"]), bool(data.get("success")),
                               data.get("result"), code if isinstance(code, str) else None,
                               message if isinstance(message, str) else None)
    if kind == PLAYOUT_POSITION:
        return PlayoutPosition(int_or_zero(data, "played_bytes"), int_or_zero(data, "played_ms"),
                               str_or_empty(data, "reason"))
    if kind == "call_event" and isinstance(data.get("event"), str):
        return CallEventFrame(data["event"], {k: v for k, v in data.items() if k != "event"})
    return Unknown(kind)


def split_server_audio(frame: bytes) -> tuple[int, bytes] | None:
    """The SDK's lenient reading of server audio; frames under 2 bytes carry nothing.

    The SDK's read callback (``sdk.voice``) inlines these two checks: it runs
    for every 20 ms frame of every call, where a call and a tuple cost.
    """
    if len(frame) < 2:
        return None
    return frame[0], frame[1:]
