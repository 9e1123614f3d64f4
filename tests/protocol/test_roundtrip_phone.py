"""Simulated phone plane, both directions: build → parse gives the values back.

Phone → network is read strictly by the gateway; network → phone leniently
by the phones (``testing.Phone``, the bench's callers).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, get_args

import pytest

from telcoflow.protocol import errors
from telcoflow.protocol import phone as pp
from telcoflow.protocol._json import CLIENT_READ_LIMIT

from .draw import SEEDS, Draw, raised


def audio_format(d: Draw) -> tuple[str, int]:
    codec = d.pick(pp.CODECS)
    return codec, (d.pick(pp.PHONE_RATES) if codec == "pcm16" else 8000)


Case = tuple[str, object]

# ── phone → network: phones build, the gateway parses strictly ─────────────


def _dial(d: Draw) -> Case:
    to, caller, (codec, rate) = d.text(), d.text(), audio_format(d)
    return pp.build_dial(to, caller, codec, rate), pp.Dial(to, caller, codec, rate)


def _dtmf(d: Draw) -> Case:
    digit, duration = d.pick(sorted(pp.DTMF_DIGITS)), d.number(10, 10_000)
    return pp.build_dtmf(digit, duration), pp.Dtmf(digit, duration)


def _register(d: Draw) -> Case:
    number, (codec, rate) = d.text(), audio_format(d)
    return pp.build_register(number, codec, rate), pp.Register(number, codec, rate)


def _answer(_: Draw) -> Case:
    return pp.build_answer(), pp.Answer()


def _reject(_: Draw) -> Case:
    return pp.build_reject(), pp.Reject()


def _hangup_request(_: Draw) -> Case:
    return pp.build_hangup_request(), pp.Hangup()


def _send_message(d: Draw) -> Case:
    to, content = d.text(), {"type": d.text(), **d.obj()}
    return pp.build_send_message(to, content), pp.SendMessage(to, content)


def _read(d: Draw) -> Case:
    message_id = d.text()
    return pp.build_read(message_id), pp.Read(message_id)


PHONE_CASES: dict[Callable[..., str], Callable[[Draw], Case]] = {
    pp.build_dial: _dial, pp.build_register: _register, pp.build_answer: _answer,
    pp.build_reject: _reject, pp.build_hangup_request: _hangup_request, pp.build_dtmf: _dtmf,
    pp.build_send_message: _send_message, pp.build_read: _read,
}


@pytest.mark.parametrize("case", PHONE_CASES.values(), ids=lambda c: c.__name__.strip("_"))
def test_phone_frames_round_trip(case: Callable[[Draw], Case]) -> None:
    for seed in SEEDS:
        text, expected = case(Draw(seed))
        assert pp.parse_phone_text(text) == expected, f"seed {seed}: {text}"
        assert pp.parse_phone_text(text.encode()) == expected


def test_optional_phone_fields_take_their_defaults() -> None:
    assert pp.parse_phone_text('{"type":"dial","to":"+1"}') == \
        pp.Dial("+1", "anonymous", "pcm16", 8000)
    assert pp.parse_phone_text('{"type":"register","number":"+1","codec":"pcmu"}') == \
        pp.Register("+1", "pcmu", 8000)


def test_a_phone_frame_at_the_size_limit_is_read_one_byte_over_is_not() -> None:
    frame = pp.build_answer()
    padded = frame + " " * (pp.MAX_TEXT_BYTES - len(frame))
    assert pp.parse_phone_text(padded) == pp.Answer()
    exc = raised(pp.parse_phone_text, padded + " ")
    assert type(exc) is errors.FrameTooLarge and exc.code == "FRAME_TOO_LARGE"


MALFORMED = errors.MalformedFrame
BAD_PHONE_FRAMES: list[tuple[str, object, type[errors.ProtocolError]]] = [
    ("not JSON", b"{'type': 'dial'}", MALFORMED),
    ("not UTF-8", b'{"type":"dial","to":"\xff"}', MALFORMED),
    ("an array", ["dial"], MALFORMED),
    ("null", None, MALFORMED),
    ("no type", {"to": "+1"}, MALFORMED),
    ("type not a string", {"type": 1}, MALFORMED),
    ("unknown type", {"type": "fax"}, errors.UnknownMessageType),
    ("network frame sent by a phone", {"type": "ringing", "callId": "c"},
     errors.UnknownMessageType),
    ("dial without to", {"type": "dial"}, MALFORMED),
    ("dial to empty", {"type": "dial", "to": ""}, MALFORMED),
    ("dial to a number", {"type": "dial", "to": 15550100}, MALFORMED),
    ("dial from a number", {"type": "dial", "to": "+1", "from": 1}, MALFORMED),
    ("dial codec unknown", {"type": "dial", "to": "+1", "codec": "opus"}, MALFORMED),
    ("dial codec not a string", {"type": "dial", "to": "+1", "codec": 0}, MALFORMED),
    ("dial rate unsupported", {"type": "dial", "to": "+1", "sampleRate": 11025}, MALFORMED),
    ("dial rate a string", {"type": "dial", "to": "+1", "sampleRate": "8000"}, MALFORMED),
    ("dial rate a boolean", {"type": "dial", "to": "+1", "sampleRate": True}, MALFORMED),
    ("dial G.711 above 8 kHz", {"type": "dial", "to": "+1", "codec": "pcmu",
                                "sampleRate": 16000}, MALFORMED),
    ("register without number", {"type": "register"}, MALFORMED),
    ("register number empty", {"type": "register", "number": ""}, MALFORMED),
    ("register number a list", {"type": "register", "number": ["+1"]}, MALFORMED),
    ("register codec unknown", {"type": "register", "number": "+1", "codec": "gsm"}, MALFORMED),
    ("register G.711 above 8 kHz", {"type": "register", "number": "+1", "codec": "pcma",
                                    "sampleRate": 48000}, MALFORMED),
    ("dtmf without digit", {"type": "dtmf"}, MALFORMED),
    ("dtmf digit unknown", {"type": "dtmf", "digit": "x"}, MALFORMED),
    ("dtmf two digits", {"type": "dtmf", "digit": "12"}, MALFORMED),
    ("dtmf too short", {"type": "dtmf", "digit": "1", "durationMs": 5}, MALFORMED),
    ("dtmf too long", {"type": "dtmf", "digit": "1", "durationMs": 60_000}, MALFORMED),
    ("message without to", {"type": "message", "content": {"type": "text"}}, MALFORMED),
    ("message to empty", {"type": "message", "to": "", "content": {"type": "text"}},
     MALFORMED),
    ("message content a string", {"type": "message", "to": "+1", "content": "hi"}, MALFORMED),
    ("message content untyped", {"type": "message", "to": "+1", "content": {"text": {}}},
     MALFORMED),
    ("read without id", {"type": "read"}, MALFORMED),
    ("oversized", " " * pp.MAX_TEXT_BYTES + "{}", errors.FrameTooLarge),
]


@pytest.mark.parametrize(("frame", "error"),
                         [pytest.param(f, e, id=w) for w, f, e in BAD_PHONE_FRAMES])
def test_bad_phone_frames_get_their_specific_error(
        frame: object, error: type[errors.ProtocolError]) -> None:
    raw = frame if isinstance(frame, str | bytes) else json.dumps(frame)
    exc = raised(pp.parse_phone_text, raw)
    assert type(exc) is error, exc.message
    assert exc.code == error.code and exc.message
    assert exc.request_id is None  # this plane has no request ids


# ── network → phone: the gateway builds, phones parse leniently ────────────

def _dtmf_played(d: Draw) -> Case:
    digits = "".join(d.pick(sorted(pp.DTMF_DIGITS)) for _ in range(d.number(1, 8)))
    return pp.build_dtmf_played(digits), pp.DtmfPlayed(digits)


def _ringing(d: Draw) -> Case:
    call_id = d.text()
    return pp.build_ringing(call_id), pp.Ringing(call_id)


def _answered(d: Draw) -> Case:
    call_id = d.text()
    return pp.build_answered(call_id), pp.Answered(call_id)


def _hangup(d: Draw) -> Case:
    reason, message, call_id = d.text(), d.text(), d.pick([None, d.text()])
    return pp.build_hangup(reason, message, call_id), pp.HungUp(reason, message, call_id)


def _incoming(d: Draw) -> Case:
    call_id, caller, ring_ms = d.text(), d.text(), d.number(1, 120_000)
    return pp.build_incoming(call_id, caller, ring_ms / 1000), pp.Incoming(call_id, caller, ring_ms)


def _registered(d: Draw) -> Case:
    number = d.text()
    return pp.build_registered(number), pp.Registered(number)


def _error(d: Draw) -> Case:
    code, message = d.text(), d.text()
    return pp.build_error(code, message), pp.LineError(code, message)


def _message(d: Draw) -> Case:
    sender, message_id, content = d.text(), d.text(), d.obj()
    return (pp.build_message(sender, message_id, content),
            pp.MessageReceived(sender, message_id, content))


def _message_accepted(d: Draw) -> Case:
    to = d.text()
    return pp.build_message_accepted(to), pp.MessageAccepted(to)


NETWORK_CASES: dict[Callable[..., str], Callable[[Draw], Case]] = {
    pp.build_ringing: _ringing, pp.build_answered: _answered, pp.build_hangup: _hangup,
    pp.build_incoming: _incoming, pp.build_registered: _registered, pp.build_error: _error,
    pp.build_dtmf_played: _dtmf_played, pp.build_message: _message,
    pp.build_message_accepted: _message_accepted,
}


@pytest.mark.parametrize("case", NETWORK_CASES.values(), ids=lambda c: c.__name__.strip("_"))
def test_network_frames_round_trip(case: Callable[[Draw], Case]) -> None:
    for seed in SEEDS:
        text, expected = case(Draw(seed))
        assert pp.parse_network_text(text) == expected, f"seed {seed}: {text}"
        assert pp.parse_network_text(text.encode()) == expected


def test_every_builder_and_frame_type_has_a_round_trip() -> None:
    builders = {f for name, f in vars(pp).items() if name.startswith("build_")}
    assert builders == set(PHONE_CASES) | set(NETWORK_CASES)
    assert {type(case(Draw(0))[1]) for case in PHONE_CASES.values()} == \
        set(get_args(pp.PhoneFrame))
    made = {type(case(Draw(0))[1]) for case in NETWORK_CASES.values()}
    assert made | {pp.Unknown} == set(get_args(pp.NetworkFrame))


@pytest.mark.parametrize(("frame", "expected"), [
    ({"type": "ringing"}, pp.Ringing("")),
    ({"type": "answered", "callId": 5}, pp.Answered("")),
    ({"type": "hangup"}, pp.HungUp("", "", None)),
    ({"type": "hangup", "reason": "NO_ANSWER", "callId": 9}, pp.HungUp("NO_ANSWER", "", None)),
    ({"type": "incoming"}, pp.Incoming("", "", 0)),
    ({"type": "incoming", "callId": "c", "ringTimeoutMs": "30000"}, pp.Incoming("c", "", 0)),
    ({"type": "incoming", "ringTimeoutMs": 1500.7}, pp.Incoming("", "", 1500)),
    ({"type": "registered"}, pp.Registered("")),
    ({"type": "error"}, pp.LineError("", "")),
    ({"type": "error", "code": "X", "message": "m", "detail": {"a": 1}}, pp.LineError("X", "m")),
    ({"type": "ringing", "callId": "c", "ringbackTone": "uk"}, pp.Ringing("c")),
    ({"type": "transferred", "to": "+1"}, pp.Unknown("transferred")),
    ({"type": "dial", "to": "+1"}, pp.Unknown("dial")),  # a phone's frame
    ({}, pp.Unknown("")),
    ({"type": False}, pp.Unknown("")),
])
def test_network_frames_tolerate_missing_unknown_and_mistyped(
        frame: dict[str, Any], expected: object) -> None:
    assert pp.parse_network_text(json.dumps(frame)) == expected


def test_network_frame_limits() -> None:
    long = "m" * (4 * pp.MAX_TEXT_BYTES)  # over the gateway's limit for phone frames
    assert pp.parse_network_text(pp.build_error("X", long)) == pp.LineError("X", long)
    for junk in (b"{", b"[]", b"true", b"null", b'{"type":"\xff"}'):
        assert type(raised(pp.parse_network_text, junk)) is errors.MalformedFrame
    too_big = pp.build_error("X", "m" * CLIENT_READ_LIMIT)
    assert type(raised(pp.parse_network_text, too_big)) is errors.FrameTooLarge
