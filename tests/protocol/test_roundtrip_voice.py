"""Voice plane, both directions: build → parse gives the values back.

Client → server (commands, audio) is read strictly by the gateway; server →
client (responses, credit, events, audio) leniently by the SDK.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, get_args

import pytest

from telcoflow.protocol import errors
from telcoflow.protocol import voice as vp
from telcoflow.protocol._json import CLIENT_READ_LIMIT

from .draw import SEEDS, Draw, raised

Case = tuple[Any, object]

# ── client → server: the SDK builds, the gateway parses strictly ───────────


def _command(d: Draw) -> Case:
    cid, name, timeout, data = d.text(), d.pick(vp.COMMANDS), d.numbers(1, 1, 10**7)[0], d.obj()
    return vp.build_command(cid, name, timeout, data), vp.Command(cid, name, timeout, data)


def _command_without_data(d: Draw) -> Case:
    cid, name, timeout = d.text(), d.pick(vp.COMMANDS), d.numbers(1, 1, 10**7)[0]
    return vp.build_command(cid, name, timeout), vp.Command(cid, name, timeout, {})


@pytest.mark.parametrize("case", [_command, _command_without_data],
                         ids=lambda c: c.__name__.strip("_"))
def test_commands_round_trip(case: Callable[[Draw], Case]) -> None:
    for seed in SEEDS:
        text, expected = case(Draw(seed))
        assert vp.parse_client_text(text) == expected, f"seed {seed}: {text}"
        assert vp.parse_client_text(text.encode()) == expected


def test_client_audio_round_trips() -> None:
    for seed in SEEDS:
        d = Draw(seed)
        channel, pcm = d.numbers(1, 0, 256)[0], d.pcm()
        assert vp.split_audio(vp.build_audio(channel, pcm)) == (channel, pcm), seed


def test_a_command_without_a_timeout_gets_the_default() -> None:
    frame = {"type": "command", "data": {"command_id": "c", "command": "call.answer"}}
    assert vp.parse_client_text(json.dumps(frame)) == \
        vp.Command("c", "call.answer", vp.DEFAULT_TIMEOUT_MS, {})


def test_size_limits_of_client_frames() -> None:
    text = vp.build_command("c", "call.answer", 1000)
    padded = text + " " * (vp.MAX_TEXT_BYTES - len(text))
    assert vp.parse_client_text(padded) == vp.Command("c", "call.answer", 1000, {})
    exc = raised(vp.parse_client_text, padded + " ")
    assert type(exc) is errors.FrameTooLarge and exc.code == "FRAME_TOO_LARGE"
    biggest = vp.build_audio(1, b"\x01\x02" * (vp.MAX_AUDIO_BYTES // 2))
    assert vp.split_audio(biggest) == (1, biggest[1:])
    assert type(raised(vp.split_audio, biggest + b"\x00\x00")) is errors.MalformedFrame


def _cmd(**data: object) -> dict[str, object]:
    return {"type": "command", "data": data}


MALFORMED = errors.MalformedFrame

# (what, frame, exact error class, command id it must carry)
BAD_COMMANDS: list[tuple[str, object, type[errors.ProtocolError], str | None]] = [
    ("not JSON", b'{"type":"command"', MALFORMED, None),
    ("not UTF-8", b'{"type":"\xfe"}', MALFORMED, None),
    ("an array", [{"type": "command"}], MALFORMED, None),
    ("a number", 1, MALFORMED, None),
    ("no type", {"data": {"command_id": "c"}}, MALFORMED, "c"),
    ("type not a string", {"type": None, "data": {"command_id": "c"}}, MALFORMED, "c"),
    ("unknown type", {"type": "hello"}, errors.UnknownMessageType, None),
    ("unknown type keeps command_id", {"type": "hello", "data": {"command_id": "c"}},
     errors.UnknownMessageType, "c"),
    ("server frame sent by a client", {"type": "command_response", "data": {"command_id": "c"}},
     errors.UnknownMessageType, "c"),
    ("no data", {"type": "command"}, MALFORMED, None),
    ("data a string", {"type": "command", "data": "call.answer"}, MALFORMED, None),
    ("no command_id", _cmd(command="call.answer"), MALFORMED, None),
    ("empty command_id", _cmd(command_id="", command="call.answer"), MALFORMED, None),
    ("command_id a number", _cmd(command_id=7, command="call.answer"), MALFORMED, None),
    ("no command", _cmd(command_id="c"), MALFORMED, "c"),
    ("command a list", _cmd(command_id="c", command=["call.answer"]), MALFORMED, "c"),
    ("unknown command", _cmd(command_id="c", command="call.teleport"), errors.UnknownCommand,
     "c"),
    ("timeout a string", _cmd(command_id="c", command="call.answer", timeout_ms="10"),
     MALFORMED, "c"),
    ("timeout a boolean", _cmd(command_id="c", command="call.answer", timeout_ms=True),
     MALFORMED, "c"),
    ("timeout zero", _cmd(command_id="c", command="call.answer", timeout_ms=0), MALFORMED, "c"),
    ("timeout negative", _cmd(command_id="c", command="call.answer", timeout_ms=-5),
     MALFORMED, "c"),
    ("args a list", _cmd(command_id="c", command="call.connect", data=[1]), MALFORMED, "c"),
    ("oversized", " " * vp.MAX_TEXT_BYTES + "{}", errors.FrameTooLarge, None),
]


@pytest.mark.parametrize(("frame", "error", "command_id"),
                         [pytest.param(f, e, c, id=w) for w, f, e, c in BAD_COMMANDS])
def test_bad_commands_get_their_specific_error(
        frame: object, error: type[errors.ProtocolError], command_id: str | None) -> None:
    raw = frame if isinstance(frame, str | bytes) else json.dumps(frame)
    exc = raised(vp.parse_client_text, raw)
    assert type(exc) is error, exc.message
    assert exc.code == error.code and exc.message
    assert exc.request_id == command_id


@pytest.mark.parametrize(("digits", "ok"), [("1", True), ("0123456789*#ABCD", True),
                                             ("9" * 32, True), ("", False), ("9" * 33, False),
                                             ("12e", False), (12, False)])
def test_dtmf_digits_are_checked(digits: object, ok: bool) -> None:
    command = vp.Command("c9", "call.dtmf", 1000, {"digits": digits})
    if ok:
        assert vp.dtmf_digits(command) == digits
    else:
        exc = raised(vp.dtmf_digits, command)
        assert type(exc) is errors.MalformedFrame and exc.request_id == "c9"


@pytest.mark.parametrize("frame", [b"", b"\x00", b"\x00\x01", b"\x00\x01\x02\x03",
                                   b"\x01" + b"\x00" * (vp.MAX_AUDIO_BYTES + 2)])
def test_bad_client_audio_is_malformed(frame: bytes) -> None:
    exc = raised(vp.split_audio, frame)
    assert type(exc) is errors.MalformedFrame and exc.code == "INVALID_REQUEST"


# ── server → client: the gateway builds, the SDK parses leniently ──────────

def _command_response(d: Draw) -> Case:
    cid, result = d.text(), d.value()
    return (vp.build_command_response(cid, result),
            vp.CommandResponse(cid, True, result, None, None))


def _command_error(d: Draw) -> Case:
    cid, code, message = d.text(), d.text(), d.text()
    return (vp.build_command_error(cid, code, message),
            vp.CommandResponse(cid, False, None, code, message))


def _buffer_request(d: Draw) -> Case:
    wanted, frame, channel = d.numbers(3, 0, 1 << 20)
    return (vp.build_buffer_request(wanted, frame, channel),
            vp.BufferRequest(wanted, frame, channel))


def _call_event(d: Draw) -> Case:
    event, extra = d.text(), d.obj()
    extra.pop("event", None)
    return vp.build_call_event(event, **extra), vp.CallEventFrame(event, extra)


def _playout_position(d: Draw) -> Case:
    played_bytes, played_ms = d.numbers(2, 0, 1 << 30)
    reason = d.text()
    return (vp.build_playout_position(played_bytes, played_ms, reason),
            vp.PlayoutPosition(played_bytes, played_ms, reason))


def _error(d: Draw) -> Case:
    # no command id to answer: clients skip it like any type they do not know
    return vp.build_error(d.text(), d.text()), vp.Unknown("error")


SERVER_CASES: dict[Callable[..., str], Callable[[Draw], Case]] = {
    vp.build_command_response: _command_response, vp.build_command_error: _command_error,
    vp.build_buffer_request: _buffer_request, vp.build_call_event: _call_event,
    vp.build_error: _error, vp.build_playout_position: _playout_position,
}


@pytest.mark.parametrize("case", SERVER_CASES.values(), ids=lambda c: c.__name__.strip("_"))
def test_server_frames_round_trip(case: Callable[[Draw], Case]) -> None:
    for seed in SEEDS:
        text, expected = case(Draw(seed))
        assert vp.parse_server_text(text) == expected, f"seed {seed}: {text}"
        assert vp.parse_server_text(text.encode()) == expected


def test_server_audio_round_trips() -> None:
    for seed in SEEDS:
        d = Draw(seed)
        channel, pcm = d.numbers(1, 0, 256)[0], d.pcm()
        assert vp.split_server_audio(vp.build_audio(channel, pcm)) == (channel, pcm), seed
    # a bare channel byte carries nothing; an odd payload is passed on as it is
    assert vp.split_server_audio(b"") is None and vp.split_server_audio(b"\x00") is None
    assert vp.split_server_audio(b"\x01\x02") == (1, b"\x02")


def test_every_builder_and_frame_type_has_a_round_trip() -> None:
    builders = {f for name, f in vars(vp).items() if name.startswith("build_")}
    assert builders == {vp.build_command, vp.build_audio} | set(SERVER_CASES)
    assert {type(case(Draw(0))[1]) for case in SERVER_CASES.values()} == \
        set(get_args(vp.ServerFrame))


@pytest.mark.parametrize(("frame", "expected"), [
    ({"type": "buffer_request"}, vp.BufferRequest(0, 0, 0)),
    ({"type": "buffer_request", "data": {"requested_bytes": 640}}, vp.BufferRequest(640, 0, 0)),
    ({"type": "buffer_request", "data": {"requested_bytes": "640", "channelId": True,
                                         "prefer_audio_frame_bytes": 320.5}},
     vp.BufferRequest(0, 320, 0)),
    ({"type": "buffer_request", "data": [640]}, vp.BufferRequest(0, 0, 0)),
    ({"type": "command_response", "data": {"command_id": "c"}},
     vp.CommandResponse("c", False, None, None, None)),
    ({"type": "command_response", "data": {"command_id": 12, "success": 1,
                                           "error_code": 5, "error_message": ["m"]}},
     vp.CommandResponse("12", True, None, None, None)),  # read as the SDK always has
    ({"type": "command_response", "data": {"success": True}}, vp.Unknown("command_response")),
    ({"type": "command_response"}, vp.Unknown("command_response")),
    ({"type": "call_event", "data": {"event": "call.terminated"}},
     vp.CallEventFrame("call.terminated", {})),
    ({"type": "call_event", "data": {"event": 3}}, vp.Unknown("call_event")),
    ({"type": "call_event"}, vp.Unknown("call_event")),
    ({"type": "transcript", "data": {"text": "hi"}}, vp.Unknown("transcript")),
    ({"type": "command", "data": {"command_id": "c"}}, vp.Unknown("command")),
    ({}, vp.Unknown("")),
    ({"type": ["x"]}, vp.Unknown("")),
])
def test_server_frames_tolerate_missing_unknown_and_mistyped(
        frame: dict[str, Any], expected: object) -> None:
    assert vp.parse_server_text(json.dumps(frame)) == expected


def test_server_frame_limits() -> None:
    big = {"text": "v" * (4 * vp.MAX_TEXT_BYTES)}  # over the gateway's limit, fine for the SDK
    assert vp.parse_server_text(vp.build_command_response("c", big)) == \
        vp.CommandResponse("c", True, big, None, None)
    for junk in (b"{", b"[]", b"1", b"null", b'{"type":"\xff"}'):
        assert type(raised(vp.parse_server_text, junk)) is errors.MalformedFrame
    too_big = vp.build_call_event("x", pad="p" * CLIENT_READ_LIMIT)
    assert type(raised(vp.parse_server_text, too_big)) is errors.FrameTooLarge
