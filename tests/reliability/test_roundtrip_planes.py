"""Build → parse gives the same thing back, for every builder of every JSON plane.

One test per module; each example draws one builder with arbitrary values (any
text, any JSON value where a field carries one untouched) and checks that the
module's reader for that direction returns exactly what was built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from telcoflow.protocol import audiocodes as ac
from telcoflow.protocol import phone as pp
from telcoflow.protocol import sm, twilio
from telcoflow.protocol import voice as vp

from .fuzzing import DERIVED, INPUTS, round_trip_budget

Case = tuple[Callable[[Any], Any], str | bytes, Any]  # (reader, what was built, expected)

text = st.text(max_size=16)
name = st.text(min_size=1, max_size=16)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6)
objects = st.dictionaries(text, json_values, max_size=3)


def check(case: Case) -> None:
    read, built, expected = case
    INPUTS["JSON planes round trip"] += 1
    DERIVED["JSON planes round trip"] = "round trips"
    assert read(built) == expected, built
    if isinstance(built, str):
        assert read(built.encode()) == expected, built


def builds(build: Callable[..., Any], read: Callable[[Any], Any], expect: Callable[..., Any],
           *args: st.SearchStrategy[Any]) -> st.SearchStrategy[Case]:
    """Draw ``args``; the case ``(read, build(*args), expect(*args))``."""
    return st.tuples(*args).map(lambda a: (read, build(*a), expect(*a)))


# ── session manager ─────────────────────────────────────────────────────────

SM = st.one_of(
    builds(sm.build_setup, sm.parse_client_frame, sm.Setup,
           st.sampled_from(sm.SAMPLE_RATES), st.sampled_from(sm.AUDIO_MODES)),
    builds(sm.build_session_open, sm.parse_client_frame, sm.SessionOpen, name, text),
    builds(sm.build_session_create, sm.parse_client_frame, sm.SessionCreate, name,
           st.sampled_from(sm.CHANNELS), name),
    builds(lambda r, i, o, im, om: sm.build_call_flow_setup(r, {
        "inboundCall": i, "outboundCall": o, "inboundMessage": im, "outboundMessage": om}),
        sm.parse_client_frame, sm.CallFlowSetup,
        name, st.sampled_from(sm.INBOUND_CALL_MODES), st.booleans(), st.booleans(),
        st.booleans()),
    builds(sm.build_wa_msg_out, sm.parse_client_frame,
           lambda r, s, c, v, d: sm.WaMsgOut(r, {"sessionId": s, "clientMsgId": c,
                                                 "apiVersion": v, "data": d}),
           name, text, text, text, objects),
    builds(sm.build_session_ready, sm.parse_client_frame, sm.SessionReady, text),
    builds(sm.build_setup_done, sm.parse_server_frame, lambda i: sm.SetupDone(i or None), text),
    builds(sm.build_response, sm.parse_server_frame,
           lambda r, c: sm.Response(r, True, c, None, None), text, json_values),
    builds(sm.build_error_response, sm.parse_server_frame,
           lambda r, c, m, e: sm.Response(r, False, None, c,
                                          {"message": m} if e is None else e),
           text, text, text, json_values),
    builds(sm.build_session_notify, sm.parse_server_frame, sm.SessionNotify,
           text, text, text, text, text, st.integers(-(2**63), 2**63)),
    builds(sm.build_call_in, sm.parse_server_frame, sm.CallIn, text, text, text, text, text,
           text, text),
    builds(sm.build_session_closed, sm.parse_server_frame,
           lambda s, r, c: sm.SessionClosed(s, r, c or None), text, text, st.none() | text),
    builds(sm.build_wa_msg_in, sm.parse_server_frame, sm.WaMsgIn, text, text, objects),
    builds(sm.build_error, sm.parse_server_frame, lambda c, m: sm.Unknown("error"), text, text),
)

# ── voice ───────────────────────────────────────────────────────────────────

VOICE = st.one_of(
    builds(vp.build_command, vp.parse_client_text,
           lambda c, n, t, d: vp.Command(c, n, t, {} if d is None else d),
           name, st.sampled_from(vp.COMMANDS), st.integers(1, 2**63), st.none() | objects),
    builds(vp.build_audio, vp.split_audio, lambda c, p: (c, p), st.integers(0, 255),
           st.binary(min_size=1, max_size=400).map(lambda b: b + bytes(len(b) % 2))),
    builds(vp.build_audio, vp.split_server_audio, lambda c, p: (c, p) if p else None,
           st.integers(0, 255), st.binary(max_size=400)),
    builds(vp.build_command_response, vp.parse_server_text,
           lambda c, r: vp.CommandResponse(c, True, r, None, None), text, json_values),
    builds(vp.build_command_error, vp.parse_server_text,
           lambda c, e, m: vp.CommandResponse(c, False, None, e, m), text, text, text),
    builds(vp.build_buffer_request, vp.parse_server_text, vp.BufferRequest,
           st.integers(-(2**63), 2**63), st.integers(0, 2**31), st.integers(0, 255)),
    builds(lambda e, r, x: vp.build_call_event(e, reason=r, extra=x), vp.parse_server_text,
           lambda e, r, x: vp.CallEventFrame(e, {"reason": r, "extra": x}), text, text,
           json_values),
    builds(vp.build_playout_position, vp.parse_server_text, vp.PlayoutPosition,
           st.integers(0, 2**40), st.integers(0, 2**40), text),
    builds(vp.build_error, vp.parse_server_text, lambda c, m: vp.Unknown("error"), text, text),
)

# ── phone network ───────────────────────────────────────────────────────────

formats = st.one_of(st.tuples(st.just("pcm16"), st.sampled_from(pp.PHONE_RATES)),
                    st.tuples(st.sampled_from(["pcmu", "pcma"]), st.just(8000)))
PHONE = st.one_of(
    builds(lambda t, c, f: pp.build_dial(t, c, *f), pp.parse_phone_text,
           lambda t, c, f: pp.Dial(t, c, *f), name, text, formats),
    builds(lambda n, f: pp.build_register(n, *f), pp.parse_phone_text,
           lambda n, f: pp.Register(n, *f), name, formats),
    builds(pp.build_dtmf, pp.parse_phone_text, pp.Dtmf, st.sampled_from(sorted(pp.DTMF_DIGITS)),
           st.integers(10, 10_000)),
    builds(pp.build_hangup_request, pp.parse_phone_text, pp.Hangup),
    builds(pp.build_answer, pp.parse_phone_text, pp.Answer),
    builds(pp.build_reject, pp.parse_phone_text, pp.Reject),
    builds(pp.build_registered, pp.parse_network_text, pp.Registered, text),
    builds(pp.build_incoming, pp.parse_network_text,
           lambda c, f, s: pp.Incoming(c, f, int(s * 1000)), text, text,
           st.floats(0, 1e6)),
    builds(pp.build_ringing, pp.parse_network_text, pp.Ringing, text),
    builds(pp.build_answered, pp.parse_network_text, pp.Answered, text),
    builds(pp.build_hangup, pp.parse_network_text, pp.HungUp, text, text, st.none() | text),
    builds(pp.build_dtmf_played, pp.parse_network_text, pp.DtmfPlayed, text),
    builds(pp.build_error, pp.parse_network_text, pp.LineError, text, text),
)

# ── Twilio ──────────────────────────────────────────────────────────────────

seq = st.integers(0, 10**19)
sid = st.text(min_size=1, max_size=64)
short = st.text(max_size=40)
frames = st.integers(1, twilio.MAX_MEDIA_FRAMES).flatmap(
    lambda n: st.binary(min_size=n * twilio.FRAME_BYTES, max_size=n * twilio.FRAME_BYTES))
spec = st.builds(twilio.StartSpec, sid, short, short,
                 st.dictionaries(short, st.text(max_size=100), max_size=5))
TWILIO = st.one_of(
    builds(twilio.build_connected, twilio.parse_inbound,
           lambda: twilio.Connected("Call", "1.0.0")),
    builds(twilio.build_start, twilio.parse_inbound,
           lambda n, s: twilio.Start(n, s.stream_sid, s.account_sid, s.call_sid, ("inbound",),
                                     s.custom_parameters, twilio.ENCODING, 8000, 1), seq, spec),
    builds(twilio.build_inbound_media, twilio.parse_inbound,
           lambda n, s, c, t, p: twilio.Media(n, s, "inbound", c, t, p), seq, sid, seq, seq,
           frames),
    builds(twilio.build_dtmf, twilio.parse_inbound, twilio.Dtmf, seq, sid,
           st.sampled_from(sorted(twilio.DTMF_DIGITS))),
    builds(twilio.build_mark_echo, twilio.parse_inbound, twilio.MarkEcho, seq, sid, short),
    builds(twilio.build_stop, twilio.parse_inbound, lambda n, s, a, c: twilio.Stop(n, s, c),
           seq, sid, short, short),
    builds(twilio.build_media, twilio.parse_outbound, twilio.OutMedia, sid,
           st.binary(min_size=1, max_size=400)),
    builds(lambda s, p: twilio.OutboundWriter(s).media(p), twilio.parse_outbound,
           twilio.OutMedia, sid, st.binary(min_size=1, max_size=400)),
    builds(twilio.build_mark, twilio.parse_outbound, twilio.OutMark, sid, short),
    builds(lambda s, n: twilio.OutboundWriter(s).mark(n), twilio.parse_outbound,
           twilio.OutMark, sid, short),
    builds(twilio.build_clear, twilio.parse_outbound, twilio.Clear, sid),
)

# ── AudioCodes ──────────────────────────────────────────────────────────────

cid = st.text(min_size=1, max_size=140)
fmt = st.sampled_from(list(ac.FORMATS.values()))
AUDIOCODES = st.one_of(
    builds(ac.vaic_session_initiate, ac.parse_vaic_text,
           lambda c, b, r, f, e: ac.SessionInitiate(c[:128], b[:128], r[:128] or "anonymous",
                                                    tuple(x[:40] for x in f), e),
           cid, text, text, st.lists(st.text(max_size=50), min_size=1, max_size=ac.MAX_FORMATS),
           st.booleans()),
    builds(ac.vaic_session_resume, ac.parse_vaic_text, lambda c: ac.SessionResume(c[:128]),
           cid),
    builds(ac.vaic_user_stream_start, ac.parse_vaic_text,
           lambda c: ac.UserStreamStart(c[:128]), cid),
    builds(ac.vaic_user_stream_chunk, ac.parse_vaic_text,
           lambda c, a: ac.UserStreamChunk(c[:128], a), cid, st.binary(max_size=2000)),
    builds(ac.vaic_user_stream_stop, ac.parse_vaic_text, lambda c: ac.UserStreamStop(c[:128]),
           cid),
    builds(ac.vaic_activity, ac.parse_vaic_text,
           lambda c, n, v, p: ac.Activities(c[:128], (ac.Activity("event", n, v, p or {}),)),
           cid, text.filter(lambda n: n != "dtmf"), st.none() | json_values,
           st.none() | objects),
    builds(lambda c, d: ac.vaic_activity(c, "dtmf", d), ac.parse_vaic_text,
           lambda c, d: ac.Activities(c[:128], (ac.Activity("event", "dtmf", d),)),
           cid, st.text(alphabet=sorted(ac.DTMF_DIGITS), min_size=1, max_size=32)),
    builds(ac.vaic_session_end, ac.parse_vaic_text,
           lambda c, rc, r: ac.SessionEnd(c[:128], rc[:64], r[:256]), cid, text, text),
    builds(ac.vaic_connection_validate, ac.parse_vaic_text,
           lambda c: ac.ConnectionValidate(c[:128]), st.just("") | cid),
    builds(ac.build_session_accepted, ac.parse_bot_text,
           lambda c, f: ac.Accepted(f.name if f else ""), cid, st.none() | fmt),
    builds(ac.build_session_error, ac.parse_bot_text, lambda c, r: ac.Refused(r), cid, text),
    builds(ac.build_user_stream_started, ac.parse_bot_text, lambda c: ac.UserStreamAck(True),
           cid),
    builds(ac.build_user_stream_stopped, ac.parse_bot_text, lambda c: ac.UserStreamAck(False),
           cid),
    builds(ac.build_play_stream_start, ac.parse_bot_text,
           lambda c, s, f: ac.PlayStart(s, f.name), cid, text, fmt),
    builds(ac.build_play_stream_chunk, ac.parse_bot_text, lambda c, s, a: ac.PlayChunk(s, a),
           cid, text, st.binary(max_size=2000)),
    builds(ac.build_play_stream_stop, ac.parse_bot_text, lambda c, s: ac.PlayStop(s), cid, text),
    builds(ac.build_hangup, ac.parse_bot_text,
           lambda c, r: ac.BotActivities(({"type": "event", "name": "hangup", **(
               {"activityParams": {"hangupReason": r}} if r else {})},)), cid, text),
    builds(ac.build_connection_validated, ac.parse_bot_text, lambda c: ac.Validated(True), cid),
)


@round_trip_budget()
@given(case=SM)
def test_session_manager_round_trips(case: Case) -> None:
    check(case)


@round_trip_budget()
@given(case=VOICE)
def test_voice_round_trips(case: Case) -> None:
    check(case)


@round_trip_budget()
@given(case=PHONE)
def test_phone_round_trips(case: Case) -> None:
    check(case)


@round_trip_budget()
@given(case=TWILIO)
def test_twilio_round_trips(case: Case) -> None:
    check(case)


@round_trip_budget()
@given(case=AUDIOCODES)
def test_audiocodes_round_trips(case: Case) -> None:
    check(case)


@round_trip_budget()
@given(start=spec, media=st.lists(st.tuples(seq, frames), max_size=4))
def test_a_twilio_stream_in_order(start: twilio.StartSpec,
                                  media: list[tuple[int, bytes]]) -> None:
    """connected, start, media..., stop through InboundStream: each frame comes back."""
    INPUTS["JSON planes round trip"] += 1
    DERIVED["JSON planes round trip"] = "round trips"
    stream = twilio.InboundStream()
    assert isinstance(stream.feed(twilio.build_connected()), twilio.Connected)
    started = stream.feed(twilio.build_start(1, start))
    assert isinstance(started, twilio.Start) and started.stream_sid == start.stream_sid
    for n, payload in media:
        got = stream.feed(twilio.build_inbound_media(n, start.stream_sid, n, n, payload))
        assert isinstance(got, twilio.Media) and got.payload == payload
    stop = stream.feed(twilio.build_stop(9, start.stream_sid, "AC", start.call_sid))
    assert stop == twilio.Stop(9, start.stream_sid, start.call_sid) and stream.stopped
