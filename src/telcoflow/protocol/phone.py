"""Simulated phone network plane: a phone (caller) ↔ the gateway.

A phone connects to ``/v1/phone`` and sends ``dial``; the gateway answers
``ringing`` (with the call id), then ``answered`` or ``hangup`` (with a reason
and a sentence). Binary frames both ways carry audio in the phone's codec
(``pcm16`` LE, ``pcmu`` or ``pcma``) at its rate; the gateway sends exactly one
20 ms frame per media-clock tick while the call is up.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._json import decode_object, dumps, field
from .errors import MalformedFrame, UnknownMessageType

PHONE_PATH = "/v1/phone"
MAX_TEXT_BYTES = 4096
CODECS = ("pcm16", "pcmu", "pcma")
PHONE_RATES = (8000, 16000, 24000, 48000)

# hang-up reasons the gateway gives the caller
NO_ANSWER = "NO_ANSWER"            # nobody claimed the call within the ring timeout
NOT_IN_SERVICE = "NOT_IN_SERVICE"  # the dialled number is not routed to a connector
DECLINED = "DECLINED"              # the connector takes no inbound calls
AGENT_HANGUP = "AGENT_HANGUP"      # the agent closed or disconnected the call
CONNECTOR_CLOSED = "CONNECTOR_CLOSED"  # the session was closed through the REST API
AGENT_LOST = "AGENT_LOST"          # the agent's voice connection never came back
SERVER_SHUTDOWN = "SERVER_SHUTDOWN"


@dataclass(frozen=True, slots=True)
class Dial:
    to: str
    caller: str
    codec: str
    sample_rate: int


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


PhoneFrame = Dial | Hangup


def parse_phone_text(text: str | bytes) -> PhoneFrame:
    obj = decode_object(text, MAX_TEXT_BYTES)
    kind = obj.get("type")
    if kind == "dial":
        to = field(obj, "to", str, where="dial")
        caller = field(obj, "from", str, where="dial", required=False, default="anonymous")
        codec = field(obj, "codec", str, where="dial", required=False, default="pcm16")
        if codec not in CODECS:
            raise MalformedFrame(f"dial.codec must be one of {CODECS}, not '{codec[:32]}'")
        rate = field(obj, "sampleRate", int, where="dial", required=False, default=8000)
        if rate not in PHONE_RATES:
            raise MalformedFrame(f"dial.sampleRate must be one of {PHONE_RATES}, not {rate}")
        if codec != "pcm16" and rate != 8000:
            raise MalformedFrame(f"codec {codec} runs at 8000 Hz only")
        if not to:
            raise MalformedFrame("dial.to must not be empty")
        return Dial(to, caller, codec, rate)
    if kind == "hangup":
        return Hangup()
    if not isinstance(kind, str):
        raise MalformedFrame("frame is missing a string field 'type'")
    raise UnknownMessageType(f"unknown message type '{kind[:64]}'")


def bytes_per_frame(codec: str, sample_rate: int) -> int:
    """Bytes in one 20 ms frame."""
    samples = sample_rate // 50
    return samples * 2 if codec == "pcm16" else samples


def build_dial(to: str, caller: str, codec: str, sample_rate: int) -> str:
    return dumps({"type": "dial", "to": to, "from": caller, "codec": codec,
                  "sampleRate": sample_rate})


def build_hangup_request() -> str:
    return dumps({"type": "hangup"})


def build_ringing(call_id: str) -> str:
    return dumps({"type": "ringing", "callId": call_id})


def build_answered(call_id: str) -> str:
    return dumps({"type": "answered", "callId": call_id})


def build_hangup(reason: str, message: str) -> str:
    return dumps({"type": "hangup", "reason": reason, "message": message})


def build_error(code: str, message: str) -> str:
    return dumps({"type": "error", "code": code, "message": message})
