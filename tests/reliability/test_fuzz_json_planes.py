"""Every JSON text parser of every plane, fuzzed with the same inputs.

The strict readers (the gateway's) return their frame type or raise their
plane's documented :class:`~telcoflow.protocol.errors.ProtocolError`; the
lenient readers (the SDK's, the phones', the VAIC emulator's) never raise for
a JSON object within their size limit. Inputs: frames of every type of every
plane with each field valid, of another JSON type or odd (huge or non-finite
numbers, Unicode digits, deep nesting, unknown fields), as str and as bytes
in several encodings; then raw junk.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import example, given
from hypothesis import strategies as st

from telcoflow.protocol import _json, audiocodes, phone, sm, twilio
from telcoflow.protocol import voice as vp
from telcoflow.protocol.errors import (
    FrameTooLarge,
    MalformedFrame,
    UnknownMessageType,
    VaicMessageError,
)

from .fuzzing import (
    Mutator,
    budget,
    expect,
    fail,
    junk_bytes,
    junk_text,
    seeds,
)

# ── valid-ish frames of every plane ─────────────────────────────────────────

T = TypeVar("T")

# Bases are valid (or valid but for a value from an edge list); the mutants retype, drop
# and add fields. (one_of merges equal branches, so "valid, valid, valid or junk" draws
# junk half the time and would leave the accepting paths unexplored.)
ids = st.sampled_from(["c1", "r1", "s1", "MZ1", "conv-1", "x" * 129, "é☎"])
rates = st.sampled_from([8000, 16000, 24000, 48000, 8000, 16000, 44100])
texts = st.text(max_size=12)
flags = st.booleans()
counts = st.one_of(st.integers(min_value=-5, max_value=2**40),
                   st.sampled_from([60, 100, 5000, 1.5, 2**64]))
digits = st.sampled_from(list("0123456789*#ABCD") + ["", "11", "x", "²"])
numeric = st.integers(min_value=0, max_value=10**6).map(str)
b64 = st.sampled_from([160, 320, 1600, 1, 0, 1760, 3, 48_001]).map(
    lambda n: base64.b64encode(bytes(n)).decode())
objects = st.dictionaries(st.text(max_size=6), st.integers(), max_size=3)


def frame(kind_key: str, kind: str, **fields: st.SearchStrategy[Any]
          ) -> st.SearchStrategy[dict[str, Any]]:
    """Every field present, each mostly valid: the mutants drop and retype fields."""
    return st.fixed_dictionaries({kind_key: st.just(kind), **fields})


def sub(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(fields)


SM_CLIENT = [
    frame("type", "setup", data=sub(sampleRate=rates,
                                    audioMode=st.sampled_from(["mixed", "isolated", "x"]))),
    frame("type", "session.open", reqId=ids, sessionId=ids),
    frame("type", "session.create", reqId=ids, channel=st.sampled_from(["TELCO", "WA", "FAX"]),
          remoteAddress=texts),
    frame("type", "call_flow.setup", reqId=ids, data=sub(
        inboundCall=st.sampled_from(["ALL", "MISSED_ONLY", "NO", "SOME"]),
        outboundCall=flags, inboundMessage=flags, outboundMessage=flags)),
    frame("type", "wa.msg.out", reqId=ids, data=objects),
    frame("type", "session.ready", sessionId=ids),
]
SM_SERVER = [
    frame("type", "setup.done", smWsId=ids),
    frame("type", "response", reqId=ids, ok=flags, content=objects, errorCode=texts,
          errorContent=objects, message=texts),
    frame("type", "session.notify", sessionId=ids, channel=texts, remoteAddress=texts,
          localAddress=texts, activity=texts, createdAt=counts),
    frame("type", "call.in", sessionId=ids, callId=ids, orgUuid=ids, to=texts, url=texts,
          token=texts, **{"from": texts}),
    frame("type", "session.closed", sessionId=ids, reason=texts, cause=texts),
    frame("type", "wa.msg.in", sessionId=ids, sender=texts, content=objects),
    frame("type", "error", errorCode=texts, message=texts),
]
VOICE = [
    frame("type", "command", data=sub(
        command_id=ids, command=st.sampled_from([*vp.COMMANDS, "call.fly"]),
        timeout_ms=counts, data=sub(ringTimeSeconds=counts,
                                    digits=st.text(alphabet="0123456789*#ABCDx", max_size=40)))),
    frame("type", "buffer_request", data=sub(requested_bytes=counts,
                                             prefer_audio_frame_bytes=counts, channelId=counts)),
    frame("type", "command_response", data=sub(command_id=ids, success=flags, result=objects,
                                               error_code=texts, error_message=texts)),
    frame("type", "call_event", data=sub(event=texts, reason=texts)),
    frame("type", vp.PLAYOUT_POSITION, data=sub(played_bytes=counts, played_ms=counts,
                                                reason=texts)),
]
codecs = st.sampled_from(["pcm16", "pcmu", "pcma", "opus"])
PHONE = [
    frame("type", "dial", to=texts, codec=codecs, sampleRate=rates, **{"from": texts}),
    frame("type", "register", number=texts, codec=codecs, sampleRate=rates),
    frame("type", "dtmf", digit=digits, durationMs=counts, digits=texts),
    frame("type", "hangup", reason=texts, message=texts, callId=ids),
    frame("type", "answer"), frame("type", "reject"),
    frame("type", "ringing", callId=ids), frame("type", "answered", callId=ids),
    frame("type", "incoming", callId=ids, ringTimeoutMs=counts, **{"from": texts}),
    frame("type", "registered", number=texts),
    frame("type", "error", code=texts, message=texts),
]
sids = st.sampled_from(["MZ1", "MZ1", "MZ2", "", "M" * 65])
TWILIO = [
    frame("event", "connected", protocol=texts, version=texts),
    frame("event", "start", sequenceNumber=numeric, streamSid=sids, start=sub(
        streamSid=sids, accountSid=texts, callSid=texts,
        tracks=st.lists(st.sampled_from(["inbound", "outbound"]), max_size=2),
        customParameters=st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3),
        mediaFormat=sub(encoding=st.just(twilio.ENCODING), sampleRate=rates,
                        channels=st.sampled_from([1, 2, 1.0, True])))),
    frame("event", "media", sequenceNumber=numeric, streamSid=sids, media=sub(
        track=texts, chunk=numeric, timestamp=numeric, payload=b64)),
    frame("event", "dtmf", sequenceNumber=numeric, streamSid=sids,
          dtmf=sub(digit=digits, track=texts)),
    frame("event", "mark", sequenceNumber=numeric, streamSid=sids, mark=sub(name=texts)),
    frame("event", "stop", sequenceNumber=numeric, streamSid=sids,
          stop=sub(accountSid=texts, callSid=texts)),
    frame("event", "clear", streamSid=sids),
]
formats = st.lists(st.sampled_from([*audiocodes.FORMATS, "raw/opus"]), min_size=1, max_size=3)
activity = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["event", "message"]),
    "name": st.sampled_from(["dtmf", "hangup", "start", "x"]),
    "value": st.text(alphabet="0123456789*#x", min_size=1, max_size=34),
    "parameters": objects, "activityParams": objects})
AUDIOCODES = [
    frame("type", "session.initiate", conversationId=ids, supportedMediaFormats=formats,
          expectAudioMessages=flags, botName=texts, caller=texts),
    frame("type", "session.resume", conversationId=ids),
    frame("type", "userStream.start", conversationId=ids),
    frame("type", "userStream.chunk", conversationId=ids, audioChunk=b64),
    frame("type", "userStream.stop", conversationId=ids),
    frame("type", "activities", conversationId=ids, activities=st.lists(activity, max_size=4)),
    frame("type", "session.end", conversationId=ids,
          reasonCode=st.one_of(st.text(max_size=5), st.integers()), reason=texts),
    frame("type", "connection.validate", conversationId=ids),
    frame("type", "session.accepted", conversationId=ids, mediaFormat=texts),
    frame("type", "session.error", conversationId=ids, reason=texts),
    frame("type", "userStream.started", conversationId=ids),
    frame("type", "playStream.start", conversationId=ids, streamId=ids, mediaFormat=texts),
    frame("type", "playStream.chunk", conversationId=ids, streamId=ids, audioChunk=b64),
    frame("type", "playStream.stop", conversationId=ids, streamId=ids),
    frame("type", "connection.validated", conversationId=ids, success=flags),
]


def weighted(strategies: list[st.SearchStrategy[T]], times: int) -> list[st.SearchStrategy[T]]:
    """``strategies`` drawn ``times`` as often by one_of (which merges equal branches)."""
    return [s.map(_same) for s in strategies for _ in range(times)]


def _same(value: T) -> T:
    return value


# The gateway's strict readers (setup, session.*, command, dial, register, dtmf, Twilio's
# frames, VAIC's) have the most paths: their frames are drawn three times as often.
ALL_FRAMES = st.one_of(*weighted(SM_CLIENT, 3), *SM_SERVER, *weighted(VOICE[:1], 6), *VOICE[1:],
                       *weighted(PHONE[:6], 2), *PHONE[6:], *weighted(TWILIO, 2),
                       *weighted(AUDIOCODES[:8], 2), *AUDIOCODES[8:])
KEYS = sorted({"type", "event", "data", "reqId", "sessionId", "streamSid", "conversationId",
               "media", "start", "sampleRate", "codec", "command_id", "payload", "audioChunk",
               "activities", "mediaFormat", "digit", "timeout_ms", "sequenceNumber"})


# ── the parsers and what each may raise ─────────────────────────────────────

STRICT = (MalformedFrame, UnknownMessageType, FrameTooLarge)
LENIENT = (MalformedFrame, FrameTooLarge)  # only for a frame that is not a JSON object
VAIC_FORMATS = [None, *audiocodes.FORMATS.values()]


def _is_object(frame: str | bytes, limit: int) -> bool:
    """What the lenient readers promise never to raise for: a JSON object within limits."""
    if len(frame) > limit:
        return False
    try:
        return isinstance(_json.loads_bounded(frame), dict)
    except ValueError:
        return False


def lenient(name: str, parse: Callable[[str | bytes], object], frame: str | bytes,
            limit: int, returns: type | tuple[type, ...]) -> None:
    if expect(name, parse, frame, LENIENT, returns) is None and _is_object(frame, limit):
        raise fail(name, frame, "a lenient reader raised for a JSON object")


def feed_all(frame: str | bytes, stream: twilio.InboundStream, pick: int) -> None:
    """One input through every JSON-text parser of every plane."""
    obj = expect("_json.loads_bounded", _json.loads_bounded, frame, (ValueError,))
    decoded = expect("_json.decode_object", lambda f: _json.decode_object(f, 1 << 20), frame,
                     LENIENT, dict)
    if decoded is not None:
        if json.dumps(obj) != json.dumps(decoded):  # dumps: NaN equals nothing
            raise fail("_json.decode_object", frame, "differs from loads_bounded")
        for key in list(decoded)[:4]:  # the lenient field readers take anything
            _json.str_or_empty(decoded, key)
            _json.int_or_zero(decoded, key)
            inner = decoded[key]
            if isinstance(inner, dict):
                for k in list(inner)[:4]:
                    _json.int_or_zero(inner, k)

    expect("sm.parse_client_frame", sm.parse_client_frame, frame, STRICT,
           (sm.Setup, sm.SessionOpen, sm.SessionCreate, sm.CallFlowSetup, sm.WaMsgOut,
            sm.SessionReady))
    lenient("sm.parse_server_frame", sm.parse_server_frame, frame, _json.CLIENT_READ_LIMIT,
            (sm.SetupDone, sm.Response, sm.SessionNotify, sm.CallIn, sm.SessionClosed,
             sm.WaMsgIn, sm.Unknown))

    command = expect("voice.parse_client_text", vp.parse_client_text, frame, STRICT, vp.Command)
    if command is not None:  # what the gateway reads next from a command's data
        expect("voice.ring_time_s", vp.ring_time_s, command, (MalformedFrame,), int,
               derived=True)
        expect("voice.dtmf_digits", vp.dtmf_digits, command, (MalformedFrame,), str,
               derived=True)
    lenient("voice.parse_server_text", vp.parse_server_text, frame, _json.CLIENT_READ_LIMIT,
            (vp.BufferRequest, vp.CommandResponse, vp.CallEventFrame, vp.PlayoutPosition,
             vp.Unknown))

    expect("phone.parse_phone_text", phone.parse_phone_text, frame, STRICT,
           (phone.Dial, phone.Register, phone.Answer, phone.Reject, phone.Hangup, phone.Dtmf))
    lenient("phone.parse_network_text", phone.parse_network_text, frame,
            _json.CLIENT_READ_LIMIT,
            (phone.Ringing, phone.Answered, phone.HungUp, phone.Incoming, phone.Registered,
             phone.LineError, phone.DtmfPlayed, phone.Unknown))

    expect("twilio.parse_inbound", twilio.parse_inbound, frame, (twilio.TwilioFrameError,),
           (twilio.Connected, twilio.Start, twilio.Media, twilio.Dtmf, twilio.MarkEcho,
            twilio.Stop))
    expect("twilio.parse_outbound", twilio.parse_outbound, frame, (twilio.TwilioFrameError,),
           (twilio.OutMedia, twilio.OutMark, twilio.Clear))
    expect("twilio.InboundStream.feed", stream.feed, frame, (twilio.TwilioFrameError,),
           (twilio.Connected, twilio.Start, twilio.Media, twilio.Dtmf, twilio.MarkEcho,
            twilio.Stop))

    fmt = VAIC_FORMATS[pick % len(VAIC_FORMATS)]
    expect("audiocodes.parse_vaic_text", lambda f: audiocodes.parse_vaic_text(f, fmt), frame,
           (VaicMessageError,),
           (audiocodes.SessionInitiate, audiocodes.SessionResume, audiocodes.UserStreamStart,
            audiocodes.UserStreamChunk, audiocodes.UserStreamStop, audiocodes.Activities,
            audiocodes.SessionEnd, audiocodes.ConnectionValidate))
    expect("audiocodes.parse_bot_text", audiocodes.parse_bot_text, frame, (),
           (audiocodes.Accepted, audiocodes.Refused, audiocodes.UserStreamAck,
            audiocodes.PlayStart, audiocodes.PlayChunk, audiocodes.PlayStop,
            audiocodes.BotActivities, audiocodes.Validated, audiocodes.Unknown))


def twilio_stream(rng_pick: int) -> twilio.InboundStream:
    """A stream that has seen connected and start (most of the time), so that fuzzed media,
    dtmf, mark and stop frames reach the checks after the order checks."""
    stream = twilio.InboundStream()
    if rng_pick % 4:
        stream.feed(twilio.build_connected())
        stream.feed(twilio.build_start(1, twilio.StartSpec("MZ1", "AC1", "CA1")))
    return stream


PER_EXAMPLE = 100


@budget(PER_EXAMPLE, share=0.8)
@given(base=ALL_FRAMES, seed=seeds)
@example(base={"type": "session.notify", "createdAt": float("inf")}, seed=0)  # OverflowError
@example(base={"type": "buffer_request", "data": {"requested_bytes": float("nan")}}, seed=0)
@example(base={"type": "session.open", "reqId": "r", "sessionId": "x" * 90_000}, seed=0)  # size
def test_structured_frames_on_every_json_plane(base: dict[str, Any], seed: int) -> None:
    mutator = Mutator(seed)
    stream = twilio_stream(seed)
    feed_all(json.dumps(base), stream, seed)
    for i in range(PER_EXAMPLE - 1):
        feed_all(mutator.encode_json(mutator.mutate_json(base, KEYS)), stream, seed + i)


@budget(PER_EXAMPLE, share=0.2)
@given(base=st.one_of(junk_bytes(), junk_text(), junk_text('{}[]":,0123456789.eE+-tfnul\\ '),
                      st.builds(json.dumps, ALL_FRAMES).map(lambda t: t[:len(t) // 2])),
       seed=seeds)
@example(base="[" * 1000 + "]" * 1000, seed=0)
@example(base='{"a":' * 5000, seed=0)
def test_junk_on_every_json_plane(base: str | bytes, seed: int) -> None:
    mutator = Mutator(seed)
    stream = twilio_stream(seed)
    feed_all(base, stream, seed)
    for i in range(PER_EXAMPLE - 1):
        if isinstance(base, bytes):
            feed_all(mutator.mutate_bytes(base), stream, seed + i)
        else:
            feed_all(mutator.mutate_text(base, surrogates=True), stream, seed + i)


# ── binary audio frames ─────────────────────────────────────────────────────

AUDIO_PER_EXAMPLE = 200


def split_all(frame: bytes) -> None:
    got = expect("voice.split_audio", vp.split_audio, frame, (MalformedFrame,), tuple)
    if got is not None and (got[0] != frame[0] or got[1] != frame[1:] or len(got[1]) % 2):
        raise fail("voice.split_audio", frame, f"split into {got!r}")
    lenient_split = expect("voice.split_server_audio", vp.split_server_audio, frame, (),
                           (tuple, type(None)))
    if (lenient_split is None) != (len(frame) < 2):
        raise fail("voice.split_server_audio", frame, f"gave {lenient_split!r}")


@budget(AUDIO_PER_EXAMPLE)
@given(base=st.one_of(
    junk_bytes(64),
    st.builds(vp.build_audio, st.integers(0, 255), st.binary(max_size=640)),
    st.sampled_from([0, 1, 2, 3, vp.MAX_AUDIO_BYTES, vp.MAX_AUDIO_BYTES + 1,
                     vp.MAX_AUDIO_BYTES + 2]).map(bytes)), seed=seeds)
def test_audio_frames(base: bytes, seed: int) -> None:
    mutator = Mutator(seed)
    split_all(base)
    for _ in range(AUDIO_PER_EXAMPLE - 1):
        split_all(mutator.mutate_bytes(base))


# ── Twilio's TwiML answer ───────────────────────────────────────────────────

attr = st.text(max_size=10).map(
    lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"))


@st.composite
def twiml(draw: st.DrawFn) -> str | bytes:
    params = "".join(f'<Parameter name="{draw(attr)}" value="{draw(attr)}"/>'
                     for _ in range(draw(st.integers(0, 3))))
    url = draw(st.one_of(st.just("wss://gw/v1/twilio/media"), attr))
    stream = draw(st.sampled_from(["Stream", "stream", "Dial"]))
    text = (f'<Response><Connect><{stream} url="{url}">{params}</{stream}></Connect>'
            f"</Response>")
    declaration = draw(st.sampled_from(
        ["", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>',
         '<?xml version="1.0" encoding="utf-16"?>', '<?xml version="1.0" encoding="bogus"?>',
         '<?xml version="1.0" encoding="cp932"?>',
         '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>']))
    body = declaration + text
    return body.encode() if draw(st.booleans()) else body


TWIML_PER_EXAMPLE = 200


def parse_twiml(body: str | bytes) -> None:
    got = expect("twilio.parse_stream_twiml", twilio.parse_stream_twiml, body,
                 (twilio.TwilioFrameError,), tuple)
    if got is not None and not (isinstance(got[0], str) and got[0]):
        raise fail("twilio.parse_stream_twiml", body, f"gave {got!r}")


@budget(TWIML_PER_EXAMPLE)
@given(base=twiml(), seed=seeds)
@example(base=b'<?xml version="1.0" encoding="bogus"?><a/>', seed=0)  # LookupError
@example(base=b'<?xml version="1.0" encoding="cp932"?><a/>', seed=0)  # ValueError
def test_twiml(base: str | bytes, seed: int) -> None:
    mutator = Mutator(seed)
    parse_twiml(base)
    for _ in range(TWIML_PER_EXAMPLE - 1):
        if isinstance(base, bytes):
            parse_twiml(mutator.mutate_bytes(base))
        else:
            parse_twiml(mutator.mutate_text(base, surrogates=True))
