"""Simulated phone network plane: phones and subscriber lines ↔ the gateway.

A *caller* connects to ``/v1/phone`` and sends ``dial``; the gateway answers
``ringing`` (with the call id), then ``answered`` or ``hangup`` (with a reason
and a sentence), and closes the line after a hang-up.

A *subscriber line* (the number's owner, whom ``call.connect`` rings) sends
``register`` with its number, codec and rate and gets ``registered``. The
gateway offers it calls with ``incoming`` (call id, caller, ring deadline);
the line answers with ``answer`` or ``reject`` — or says nothing, and the
gateway withdraws the call with ``hangup`` when the ring time is over. The
line stays registered between calls; ``hangup`` from the line ends only its
part in the current call.

A registered line is also a messaging (WA) user: it sends ``message`` (to a
business number, with a message object in the WhatsApp Cloud API's shape,
e.g. ``{"type": "text", "text": {"body": "hi"}}``) and gets
``message.accepted`` or ``error``; agents' messages reach it as ``message``
(sender, id, content), and it may send ``read`` for one of them.

Binary frames both ways carry audio in the phone's codec (``pcm16`` LE,
``pcmu`` or ``pcma``) at its rate; the gateway sends exactly one 20 ms frame
per media-clock tick while the phone is in a call.

Sans-I/O, both directions here: :func:`parse_phone_text` is the gateway's
strict reading of phone frames (a :mod:`.errors` exception otherwise);
:func:`parse_network_text` is the phones' lenient reading of the gateway's
frames (missing fields take defaults, unknown types become :class:`Unknown`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._json import CLIENT_READ_LIMIT, decode_object, dumps, field, int_or_zero, str_or_empty
from ._json import Unknown as Unknown  # re-exported: part of NetworkFrame
from .errors import MalformedFrame, UnknownMessageType

PHONE_PATH = "/v1/phone"
MAX_TEXT_BYTES = 20_000  # a message's text body may be 4,096 characters
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
OTHER_PARTY_HANGUP = "OTHER_PARTY_HANGUP"  # the last other party left a bridged call
RING_TIMEOUT = "RING_TIMEOUT"      # a subscriber line was rung and did not answer in time
CALLER_GONE = "CALLER_GONE"        # the call ended while a subscriber line was ringing
GATEWAY_OVERLOADED = "GATEWAY_OVERLOADED"  # refused: the gateway is overloaded, call again later
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"  # the gateway takes no new calls now (draining,
                                             # or its session registry is unreachable)


def bytes_per_frame(codec: str, sample_rate: int) -> int:
    """Bytes in one 20 ms frame."""
    samples = sample_rate // 50
    return samples * 2 if codec == "pcm16" else samples


# ── phone → network ─────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Dial:
    to: str
    caller: str
    codec: str
    sample_rate: int


@dataclass(frozen=True, slots=True)
class Register:
    number: str
    codec: str
    sample_rate: int


@dataclass(frozen=True, slots=True)
class Answer:
    pass


@dataclass(frozen=True, slots=True)
class Reject:
    pass


@dataclass(frozen=True, slots=True)
class Hangup:
    """The phone hangs up (a subscriber line: leaves only its current call)."""


@dataclass(frozen=True, slots=True)
class Dtmf:
    """The phone's user pressed a key (RFC 4733 would carry it on a real line)."""

    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class SendMessage:
    """The line's user writes to a business number."""

    to: str
    content: dict[str, object]


@dataclass(frozen=True, slots=True)
class Read:
    """The line's user read the message ``message_id`` an agent sent."""

    message_id: str


PhoneFrame = Dial | Register | Answer | Reject | Hangup | Dtmf | SendMessage | Read
DTMF_DIGITS = frozenset("0123456789*#ABCD")
_BARE: dict[str, PhoneFrame] = {"hangup": Hangup(), "answer": Answer(), "reject": Reject()}


def parse_phone_text(text: str | bytes) -> PhoneFrame:
    """The gateway's strict reading of one phone text frame."""
    obj = decode_object(text, MAX_TEXT_BYTES)
    kind = obj.get("type")
    if kind == "dial":
        to = field(obj, "to", str, where="dial")
        caller = field(obj, "from", str, where="dial", required=False, default="anonymous")
        if not to:
            raise MalformedFrame("dial.to must not be empty")
        return Dial(to, caller, *_audio_format(obj, "dial"))
    if kind == "register":
        number = field(obj, "number", str, where="register")
        if not number:
            raise MalformedFrame("register.number must not be empty")
        return Register(number, *_audio_format(obj, "register"))
    if kind == "dtmf":
        digit = field(obj, "digit", str, where="dtmf")
        duration = field(obj, "durationMs", int, where="dtmf", required=False, default=100)
        if len(digit) != 1 or digit not in DTMF_DIGITS:
            raise MalformedFrame(f"dtmf.digit must be one of 0-9 * # A-D, not {digit[:8]!r}")
        if not 10 <= duration <= 10_000:
            raise MalformedFrame(f"dtmf.durationMs must be 10..10000, not {duration}")
        return Dtmf(digit, duration)
    if kind == "message":
        to = field(obj, "to", str, where="message")
        content = field(obj, "content", dict, where="message")
        if not to:
            raise MalformedFrame("message.to must not be empty")
        if not isinstance(content.get("type"), str):
            raise MalformedFrame("message.content needs a string 'type' (e.g. \"text\")")
        return SendMessage(to, content)
    if kind == "read":
        return Read(field(obj, "id", str, where="read"))
    if isinstance(kind, str) and kind in _BARE:
        return _BARE[kind]
    if not isinstance(kind, str):
        raise MalformedFrame("frame is missing a string field 'type'")
    raise UnknownMessageType(f"unknown message type '{kind[:64]}'")


def _audio_format(obj: dict[str, object], where: str) -> tuple[str, int]:
    codec = field(obj, "codec", str, where=where, required=False, default="pcm16")
    if codec not in CODECS:
        raise MalformedFrame(f"{where}.codec must be one of {CODECS}, not '{codec[:32]}'")
    rate = field(obj, "sampleRate", int, where=where, required=False, default=8000)
    if rate not in PHONE_RATES:
        raise MalformedFrame(f"{where}.sampleRate must be one of {PHONE_RATES}, not {rate}")
    if codec != "pcm16" and rate != 8000:
        raise MalformedFrame(f"codec {codec} runs at 8000 Hz only")
    return codec, rate


def build_dial(to: str, caller: str, codec: str, sample_rate: int) -> str:
    return dumps({"type": "dial", "to": to, "from": caller, "codec": codec,
                  "sampleRate": sample_rate})


def build_hangup_request() -> str:
    return dumps({"type": "hangup"})


def build_dtmf(digit: str, duration_ms: int = 100) -> str:
    return dumps({"type": "dtmf", "digit": digit, "durationMs": duration_ms})


def build_register(number: str, codec: str, sample_rate: int) -> str:
    return dumps({"type": "register", "number": number, "codec": codec,
                  "sampleRate": sample_rate})


def build_answer() -> str:
    return dumps({"type": "answer"})


def build_reject() -> str:
    return dumps({"type": "reject"})


# ── network → phone ─────────────────────────────────────────────────────────

def build_registered(number: str) -> str:
    return dumps({"type": "registered", "number": number})


def build_incoming(call_id: str, caller: str, ring_s: float) -> str:
    return dumps({"type": "incoming", "callId": call_id, "from": caller,
                  "ringTimeoutMs": int(ring_s * 1000)})


def build_ringing(call_id: str) -> str:
    return dumps({"type": "ringing", "callId": call_id})


def build_answered(call_id: str) -> str:
    return dumps({"type": "answered", "callId": call_id})


def build_hangup(reason: str, message: str, call_id: str | None = None) -> str:
    frame: dict[str, object] = {"type": "hangup", "reason": reason, "message": message}
    if call_id is not None:
        frame["callId"] = call_id
    return dumps(frame)


def build_dtmf_played(digits: str) -> str:
    """The agent played ``digits`` to this phone."""
    return dumps({"type": "dtmf", "digits": digits})


def build_error(code: str, message: str) -> str:
    return dumps({"type": "error", "code": code, "message": message})


def build_send_message(to: str, content: dict[str, object]) -> str:
    return dumps({"type": "message", "to": to, "content": content})


def build_read(message_id: str) -> str:
    return dumps({"type": "read", "id": message_id})


def build_message(sender: str, message_id: str, content: dict[str, object]) -> str:
    """An agent's message reaches the line."""
    return dumps({"type": "message", "from": sender, "id": message_id, "content": content})


def build_message_accepted(to: str) -> str:
    """The line's message was taken for delivery to ``to``."""
    return dumps({"type": "message.accepted", "to": to})


@dataclass(frozen=True, slots=True)
class Ringing:
    call_id: str


@dataclass(frozen=True, slots=True)
class Answered:
    call_id: str


@dataclass(frozen=True, slots=True)
class HungUp:
    """The network ended this phone's part in a call (or withdrew an offered one)."""

    reason: str
    message: str
    call_id: str | None  # absent when the line is hung up before a call was set up


@dataclass(frozen=True, slots=True)
class Incoming:
    call_id: str
    caller: str
    ring_timeout_ms: int


@dataclass(frozen=True, slots=True)
class Registered:
    number: str


@dataclass(frozen=True, slots=True)
class LineError:
    """The network refused a frame or a request of this phone (the line stays up)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class DtmfPlayed:
    digits: str


@dataclass(frozen=True, slots=True)
class MessageReceived:
    sender: str
    message_id: str
    content: dict[str, object]


@dataclass(frozen=True, slots=True)
class MessageAccepted:
    to: str


NetworkFrame = (Ringing | Answered | HungUp | Incoming | Registered | LineError | DtmfPlayed
                | MessageReceived | MessageAccepted | Unknown)


def parse_network_text(text: str | bytes) -> NetworkFrame:
    """The phones' lenient reading of one text frame from the network."""
    obj = decode_object(text, CLIENT_READ_LIMIT)
    kind = str_or_empty(obj, "type")
    if kind == "ringing":
        return Ringing(str_or_empty(obj, "callId"))
    if kind == "answered":
        return Answered(str_or_empty(obj, "callId"))
    if kind == "hangup":
        call_id = obj.get("callId")
        return HungUp(str_or_empty(obj, "reason"), str_or_empty(obj, "message"),
                      call_id if isinstance(call_id, str) else None)
    if kind == "incoming":
        return Incoming(str_or_empty(obj, "callId"), str_or_empty(obj, "from"),
                        int_or_zero(obj, "ringTimeoutMs"))
    if kind == "registered":
        return Registered(str_or_empty(obj, "number"))
    if kind == "error":
        return LineError(str_or_empty(obj, "code"), str_or_empty(obj, "message"))
    if kind == "dtmf":
        return DtmfPlayed(str_or_empty(obj, "digits"))
    if kind == "message":
        content = obj.get("content")
        return MessageReceived(str_or_empty(obj, "from"), str_or_empty(obj, "id"),
                               content if isinstance(content, dict) else {})
    if kind == "message.accepted":
        return MessageAccepted(str_or_empty(obj, "to"))
    return Unknown(kind)
