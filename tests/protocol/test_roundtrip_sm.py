"""Session-manager plane, both directions: build → parse gives the values back.

Client → server is read strictly (the gateway): every bad input gets its own
``ProtocolError`` subclass, code and request id. Server → client is read
leniently (the SDK): unknown types and missing or mistyped fields are taken
with defaults, only a frame that is not a JSON object raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, get_args

import pytest

from telcoflow.protocol import errors, sm
from telcoflow.protocol._json import CLIENT_READ_LIMIT

from .draw import SEEDS, Draw, raised

# ── client → server: the SDK builds, the gateway parses strictly ───────────

Case = tuple[str, object]


def _setup(d: Draw) -> Case:
    rate, mode = d.pick(sm.SAMPLE_RATES), d.pick(sm.AUDIO_MODES)
    return sm.build_setup(rate, mode), sm.Setup(rate, mode)


def _session_open(d: Draw) -> Case:
    req, sid = d.text(), d.text()
    return sm.build_session_open(req, sid), sm.SessionOpen(req, sid)


def _session_create(d: Draw) -> Case:
    req, channel, remote = d.text(), d.pick(sm.CHANNELS), d.text()
    return sm.build_session_create(req, channel, remote), sm.SessionCreate(req, channel, remote)


def _call_flow_setup(d: Draw) -> Case:
    req, inbound = d.text(), d.pick(sm.INBOUND_CALL_MODES)
    out_call, in_msg, out_msg = d.flag(), d.flag(), d.flag()
    data = {"inboundCall": inbound, "outboundCall": out_call, "inboundMessage": in_msg,
            "outboundMessage": out_msg}
    return (sm.build_call_flow_setup(req, data),
            sm.CallFlowSetup(req, inbound, out_call, in_msg, out_msg))


def _wa_msg_out(d: Draw) -> Case:
    req, sid, msg_id, version, data = d.text(), d.text(), d.text(), d.text(), d.obj()
    inner = {"sessionId": sid, "clientMsgId": msg_id, "apiVersion": version, "data": data}
    return sm.build_wa_msg_out(req, sid, msg_id, version, data), sm.WaMsgOut(req, inner)


def _session_ready(d: Draw) -> Case:
    sid = d.text()
    return sm.build_session_ready(sid), sm.SessionReady(sid)


CLIENT_CASES: dict[Callable[..., str], Callable[[Draw], Case]] = {
    sm.build_setup: _setup, sm.build_session_open: _session_open,
    sm.build_session_create: _session_create, sm.build_call_flow_setup: _call_flow_setup,
    sm.build_wa_msg_out: _wa_msg_out, sm.build_session_ready: _session_ready,
}


@pytest.mark.parametrize("case", CLIENT_CASES.values(), ids=lambda c: c.__name__.strip("_"))
def test_client_frames_round_trip(case: Callable[[Draw], Case]) -> None:
    for seed in SEEDS:
        text, expected = case(Draw(seed))
        assert sm.parse_client_frame(text) == expected, f"seed {seed}: {text}"
        assert sm.parse_client_frame(text.encode()) == expected  # the socket hands us bytes


def test_optional_client_fields_take_their_defaults() -> None:
    assert sm.parse_client_frame('{"type":"setup","data":{"sampleRate":24000}}') == \
        sm.Setup(24000, "mixed")
    assert sm.parse_client_frame('{"type":"call_flow.setup","reqId":"r","data":{}}') == \
        sm.CallFlowSetup("r", "ALL", False, False, False)
    nulls = {"inboundCall": None, "outboundCall": None}  # null is "not given"
    assert sm.parse_client_frame(json.dumps(
        {"type": "call_flow.setup", "reqId": "r", "data": nulls})) == \
        sm.CallFlowSetup("r", "ALL", False, False, False)


def test_a_client_frame_at_the_size_limit_is_read_one_byte_over_is_not() -> None:
    frame = sm.build_session_ready("s")
    padded = frame + " " * (sm.MAX_FRAME_BYTES - len(frame))
    assert sm.parse_client_frame(padded) == sm.SessionReady("s")
    exc = raised(sm.parse_client_frame, padded + " ")
    assert type(exc) is errors.FrameTooLarge and exc.code == "FRAME_TOO_LARGE"


MALFORMED = errors.MalformedFrame
UNKNOWN = errors.UnknownMessageType

# (what, frame, exact error class, request id it must carry)
BAD_CLIENT_FRAMES: list[tuple[str, object, type[errors.ProtocolError], str | None]] = [
    ("not JSON", b'{"type":', MALFORMED, None),
    ("not UTF-8", b'{"type":"setup\xff"}', MALFORMED, None),
    ("an array", [], MALFORMED, None),
    ("a JSON string", b'"setup"', MALFORMED, None),
    ("null", None, MALFORMED, None),
    ("no type", {"reqId": "r"}, MALFORMED, "r"),
    ("type not a string", {"type": 7, "reqId": "r"}, MALFORMED, "r"),
    ("unknown type", {"type": "session.teleport"}, UNKNOWN, None),
    ("unknown type keeps reqId", {"type": "session.teleport", "reqId": "r"}, UNKNOWN, "r"),
    ("server frame sent by a client", {"type": "setup.done", "smWsId": "x"}, UNKNOWN, None),
    ("setup without data", {"type": "setup"}, MALFORMED, None),
    ("setup data not an object", {"type": "setup", "data": [8000]}, MALFORMED, None),
    ("setup without sampleRate", {"type": "setup", "data": {}}, MALFORMED, None),
    ("sampleRate a string", {"type": "setup", "data": {"sampleRate": "8000"}}, MALFORMED, None),
    ("sampleRate a boolean", {"type": "setup", "data": {"sampleRate": True}}, MALFORMED, None),
    ("sampleRate a float", {"type": "setup", "data": {"sampleRate": 8000.0}}, MALFORMED, None),
    ("sampleRate unsupported", {"type": "setup", "data": {"sampleRate": 44100}}, MALFORMED, None),
    ("audioMode unknown", {"type": "setup", "data": {"sampleRate": 8000, "audioMode": "stereo"}},
     MALFORMED, None),
    ("audioMode not a string", {"type": "setup", "data": {"sampleRate": 8000, "audioMode": 1}},
     MALFORMED, None),
    ("open without reqId", {"type": "session.open", "sessionId": "s"}, MALFORMED, None),
    ("open with empty reqId", {"type": "session.open", "reqId": "", "sessionId": "s"},
     MALFORMED, None),
    ("open with numeric reqId", {"type": "session.open", "reqId": 5, "sessionId": "s"},
     MALFORMED, None),
    ("open without sessionId", {"type": "session.open", "reqId": "r"}, MALFORMED, "r"),
    ("open sessionId a number", {"type": "session.open", "reqId": "r", "sessionId": 1},
     MALFORMED, "r"),
    ("create channel unknown", {"type": "session.create", "reqId": "r", "channel": "SMS",
                                "remoteAddress": "+1"}, MALFORMED, "r"),
    ("create without channel", {"type": "session.create", "reqId": "r", "remoteAddress": "+1"},
     MALFORMED, "r"),
    ("create remoteAddress empty", {"type": "session.create", "reqId": "r", "channel": "WA",
                                    "remoteAddress": ""}, MALFORMED, "r"),
    ("create remoteAddress a number", {"type": "session.create", "reqId": "r", "channel": "WA",
                                       "remoteAddress": 1}, MALFORMED, "r"),
    ("create without reqId", {"type": "session.create", "channel": "WA", "remoteAddress": "+1"},
     MALFORMED, None),
    ("call flow without data", {"type": "call_flow.setup", "reqId": "r"}, MALFORMED, "r"),
    ("call flow data a list", {"type": "call_flow.setup", "reqId": "r", "data": []},
     MALFORMED, "r"),
    ("inboundCall unknown", {"type": "call_flow.setup", "reqId": "r",
                             "data": {"inboundCall": "SOME"}}, MALFORMED, "r"),
    ("inboundCall a boolean", {"type": "call_flow.setup", "reqId": "r",
                               "data": {"inboundCall": True}}, MALFORMED, "r"),
    ("outboundCall a string", {"type": "call_flow.setup", "reqId": "r",
                               "data": {"outboundCall": "true"}}, MALFORMED, "r"),
    ("inboundMessage a number", {"type": "call_flow.setup", "reqId": "r",
                                 "data": {"inboundMessage": 1}}, MALFORMED, "r"),
    ("outboundMessage a number", {"type": "call_flow.setup", "reqId": "r",
                                  "data": {"outboundMessage": 0}}, MALFORMED, "r"),
    ("wa.msg.out without data", {"type": "wa.msg.out", "reqId": "r"}, MALFORMED, "r"),
    ("wa.msg.out data a string", {"type": "wa.msg.out", "reqId": "r", "data": "hi"},
     MALFORMED, "r"),
    ("wa.msg.out without reqId", {"type": "wa.msg.out", "data": {}}, MALFORMED, None),
    ("ready without sessionId", {"type": "session.ready"}, MALFORMED, None),
    ("ready sessionId a list", {"type": "session.ready", "sessionId": ["s"]}, MALFORMED, None),
    ("oversized", " " * sm.MAX_FRAME_BYTES + "{}", errors.FrameTooLarge, None),
]


@pytest.mark.parametrize(("frame", "error", "request_id"),
                         [pytest.param(f, e, r, id=w) for w, f, e, r in BAD_CLIENT_FRAMES])
def test_bad_client_frames_get_their_specific_error(
        frame: object, error: type[errors.ProtocolError], request_id: str | None) -> None:
    raw = frame if isinstance(frame, str | bytes) else json.dumps(frame)
    exc = raised(sm.parse_client_frame, raw)
    assert type(exc) is error, exc.message
    assert exc.code == error.code and exc.message
    assert exc.request_id == request_id


# ── server → client: the gateway builds, the SDK parses leniently ──────────

def _setup_done(d: Draw) -> Case:
    ws_id = d.text()
    return sm.build_setup_done(ws_id), sm.SetupDone(ws_id)


def _response(d: Draw) -> Case:
    req, content = d.text(), d.value()
    return sm.build_response(req, content), sm.Response(req, True, content, None, None)


def _error_response(d: Draw) -> Case:
    req, code, message = d.text(), d.text(), d.text()
    content = d.pick([None, d.obj()])
    expected = content if content is not None else {"message": message}
    return (sm.build_error_response(req, code, message, content),
            sm.Response(req, False, None, code, expected))


def _error(d: Draw) -> Case:
    # no reqId to answer: clients skip it like any type they do not know
    return sm.build_error(d.text(), d.text()), sm.Unknown("error")


def _session_notify(d: Draw) -> Case:
    sid, channel, remote, local, activity = d.text(), d.text(), d.text(), d.text(), d.text()
    created = d.numbers(1, 0, 2**53)[0]
    return (sm.build_session_notify(sid, channel, remote, local, activity, created),
            sm.SessionNotify(sid, channel, remote, local, activity, created))


def _call_in(d: Draw) -> Case:
    sid, cid, org, caller, callee, url, token = (d.text() for _ in range(7))
    return (sm.build_call_in(sid, cid, org, caller, callee, url, token),
            sm.CallIn(sid, cid, org, caller, callee, url, token))


def _session_closed(d: Draw) -> Case:
    sid, reason = d.text(), d.text()
    cause = d.text() if d.flag() else None  # ours: why an outbound call never connected
    return sm.build_session_closed(sid, reason, cause), sm.SessionClosed(sid, reason, cause)


def _wa_msg_in(d: Draw) -> Case:
    sid, sender, content = d.text(), d.text(), d.obj()
    return sm.build_wa_msg_in(sid, sender, content), sm.WaMsgIn(sid, sender, content)


SERVER_CASES: dict[Callable[..., str], Callable[[Draw], Case]] = {
    sm.build_setup_done: _setup_done, sm.build_response: _response,
    sm.build_error_response: _error_response, sm.build_error: _error,
    sm.build_session_notify: _session_notify, sm.build_call_in: _call_in,
    sm.build_session_closed: _session_closed, sm.build_wa_msg_in: _wa_msg_in,
}


@pytest.mark.parametrize("case", SERVER_CASES.values(), ids=lambda c: c.__name__.strip("_"))
def test_server_frames_round_trip(case: Callable[[Draw], Case]) -> None:
    for seed in SEEDS:
        text, expected = case(Draw(seed))
        assert sm.parse_server_frame(text) == expected, f"seed {seed}: {text}"
        assert sm.parse_server_frame(text.encode()) == expected


def test_every_builder_and_frame_type_has_a_round_trip() -> None:
    builders = {f for name, f in vars(sm).items() if name.startswith("build_")}
    assert builders == set(CLIENT_CASES) | set(SERVER_CASES)
    for cases, union in ((CLIENT_CASES, sm.ClientFrame), (SERVER_CASES, sm.ServerFrame)):
        made = {type(case(Draw(0))[1]) for case in cases.values()}
        assert made == set(get_args(union))


@pytest.mark.parametrize(("frame", "expected"), [
    ({"type": "setup.done"}, sm.SetupDone(None)),
    ({"type": "setup.done", "smWsId": ""}, sm.SetupDone(None)),
    ({"type": "response"}, sm.Response("", False, None, None, None)),
    ({"type": "response", "reqId": 5, "ok": "yes", "errorCode": 500},
     sm.Response("", False, None, None, None)),  # only ok: true is success
    ({"type": "session.notify"}, sm.SessionNotify("", "", "", "", "", 0)),
    ({"type": "session.notify", "sessionId": "s", "createdAt": "17"},
     sm.SessionNotify("s", "", "", "", "", 0)),
    ({"type": "session.notify", "createdAt": True}, sm.SessionNotify("", "", "", "", "", 0)),
    ({"type": "session.notify", "createdAt": 17.9}, sm.SessionNotify("", "", "", "", "", 17)),
    ({"type": "call.in"}, sm.CallIn("", "", "", "", "", "", "")),
    ({"type": "call.in", "from": None, "to": ["x"], "token": 1},
     sm.CallIn("", "", "", "", "", "", "")),
    ({"type": "session.closed"}, sm.SessionClosed("", "")),
    ({"type": "wa.msg.in"}, sm.WaMsgIn("", "", {})),
    ({"type": "wa.msg.in", "content": "text"}, sm.WaMsgIn("", "", {})),
    ({"type": "session.notify", "sessionId": "s", "newField": {"x": 1}},
     sm.SessionNotify("s", "", "", "", "", 0)),  # fields we do not know are skipped
    ({"type": "session.teleport", "sessionId": "s"}, sm.Unknown("session.teleport")),
    ({"type": "session.open", "reqId": "r"}, sm.Unknown("session.open")),  # a client's frame
    ({}, sm.Unknown("")),
    ({"type": 3}, sm.Unknown("")),
])
def test_server_frames_tolerate_missing_unknown_and_mistyped(
        frame: dict[str, Any], expected: object) -> None:
    assert sm.parse_server_frame(json.dumps(frame)) == expected


def test_server_frame_limits() -> None:
    # far over what the gateway accepts from a client, still read from a server
    big = {"k": "v" * (4 * sm.MAX_FRAME_BYTES)}
    assert sm.parse_server_frame(sm.build_response("r", big)) == \
        sm.Response("r", True, big, None, None)
    for junk in (b"{", b"[]", b'"x"', b"null", b'{"type":"\xff"}'):
        assert type(raised(sm.parse_server_frame, junk)) is errors.MalformedFrame
    too_big = sm.build_session_closed("s", "x" * CLIENT_READ_LIMIT)
    assert type(raised(sm.parse_server_frame, too_big)) is errors.FrameTooLarge
