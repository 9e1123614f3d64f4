"""Twilio Media Streams frames: whole, in order, and with junk."""

from __future__ import annotations

import base64
import json

import pytest

from telcoflow.protocol import twilio as tw
from telcoflow.protocol.errors import ProtocolError

SID = "MZ00000000000000000000000000000001"
SPEC = tw.StartSpec(SID, "AC1", "CA1", {"token": "t", "To": "+15550100"})
FRAME = bytes(range(160))


def started() -> tw.InboundStream:
    stream = tw.InboundStream()
    stream.feed(tw.build_connected())
    stream.feed(tw.build_start(1, SPEC))
    return stream


def code_of(stream: tw.InboundStream, text: str | bytes) -> str:
    with pytest.raises(tw.TwilioFrameError) as info:
        stream.feed(text)
    assert isinstance(info.value, ProtocolError)
    assert info.value.message
    return info.value.code


def test_a_whole_stream_reads_in_order() -> None:
    stream = tw.InboundStream()
    assert stream.feed(tw.build_connected()) == tw.Connected("Call", "1.0.0")
    start = stream.feed(tw.build_start(1, SPEC))
    assert isinstance(start, tw.Start)
    assert (start.call_sid, start.custom_parameters, start.sample_rate) == \
        ("CA1", {"token": "t", "To": "+15550100"}, 8000)
    media = stream.feed(tw.build_inbound_media(2, SID, 1, 0, FRAME))
    assert media == tw.Media(2, SID, "inbound", 1, 0, FRAME)
    assert stream.feed(tw.build_dtmf(3, SID, "#")) == tw.Dtmf(3, SID, "#")
    assert stream.feed(tw.build_mark_echo(4, SID, "m1")) == tw.MarkEcho(4, SID, "m1")
    assert stream.feed(tw.build_stop(5, SID, "AC1", "CA1")) == tw.Stop(5, SID, "CA1")
    assert code_of(stream, tw.build_dtmf(6, SID, "1")) == "OUT_OF_ORDER"


def test_outbound_frames_round_trip() -> None:
    three = b"\x01\x02\x03"
    assert tw.parse_outbound(tw.build_media(SID, three)) == tw.OutMedia(SID, three)
    assert tw.parse_outbound(tw.build_mark(SID, "answered")) == tw.OutMark(SID, "answered")
    assert tw.parse_outbound(tw.build_clear(SID)) == tw.Clear(SID)
    assert json.loads(tw.build_media(SID, FRAME))["media"] == \
        {"payload": base64.b64encode(FRAME).decode()}


def test_numbers_travel_as_strings() -> None:
    frame = json.loads(tw.build_inbound_media(7, SID, 3, 40, FRAME))
    assert (frame["sequenceNumber"], frame["media"]["chunk"], frame["media"]["timestamp"]) == \
        ("7", "3", "40")
    frame["sequenceNumber"] = 7
    assert code_of(started(), json.dumps(frame)) == "BAD_FIELD"


def _media(**media: object) -> str:
    body = {"track": "inbound", "chunk": "1", "timestamp": "0",
            "payload": base64.b64encode(FRAME).decode(), **media}
    return json.dumps({"event": "media", "sequenceNumber": "2", "streamSid": SID, "media": body})


def _start(**fmt: object) -> str:
    frame = json.loads(tw.build_start(1, SPEC))
    frame["start"]["mediaFormat"].update(fmt)
    return json.dumps(frame)


@pytest.mark.parametrize(("text", "code"), [
    ("not json", "BAD_JSON"),
    ("[1, 2]", "BAD_JSON"),
    (b"\xff\xfe{}", "BAD_JSON"),
    ('{"event": "speak"}', "UNKNOWN_EVENT"),
    ('{"nothing": 1}', "BAD_FIELD"),
    ('{"event": "media", "sequenceNumber": "2", "media": {}}', "MISSING_STREAM_SID"),
    (_media().replace(SID, "MZother"), "UNKNOWN_STREAM_SID"),
    (_media(payload="@@not base64@@"), "BAD_PAYLOAD"),
    (_media(payload=""), "BAD_PAYLOAD"),
    (_media(payload=base64.b64encode(FRAME + b"x").decode()), "BAD_PAYLOAD"),
    (_media(payload=base64.b64encode(FRAME * 11).decode()), "BAD_PAYLOAD"),
    (_media(chunk="-1"), "BAD_FIELD"),
    (_media(timestamp=20), "BAD_FIELD"),
    ('{"event": "dtmf", "sequenceNumber": "3", "streamSid": "' + SID
     + '", "dtmf": {"digit": "x"}}', "BAD_FIELD"),
    ('{"event": "mark", "sequenceNumber": "3", "streamSid": "' + SID + '", "mark": {}}',
     "BAD_FIELD"),
    ("{" + " " * tw.MAX_FRAME_CHARS + "}", "FRAME_TOO_LARGE"),
    (tw.build_start(1, SPEC), "OUT_OF_ORDER"),
])
def test_junk_after_start_is_refused_with_its_code(text: str | bytes, code: str) -> None:
    assert code_of(started(), text) == code


@pytest.mark.parametrize("fmt", [{"encoding": "audio/x-alaw"}, {"sampleRate": 16000},
                                 {"channels": 2}, {"sampleRate": "8000"}])
def test_a_start_in_another_format_is_refused(fmt: dict[str, object]) -> None:
    stream = tw.InboundStream()
    stream.feed(tw.build_connected())
    assert code_of(stream, _start(**fmt)) == "BAD_MEDIA_FORMAT"


def test_order_connected_then_start_then_media() -> None:
    stream = tw.InboundStream()
    assert code_of(stream, tw.build_start(1, SPEC)) == "OUT_OF_ORDER"   # no connected
    stream.feed(tw.build_connected())
    assert code_of(stream, tw.build_connected()) == "OUT_OF_ORDER"
    for text in (_media(), tw.build_dtmf(2, SID, "1"), tw.build_mark_echo(2, SID, "m"),
                 tw.build_stop(2, SID, "AC1", "CA1")):
        assert code_of(stream, text) == "OUT_OF_ORDER"           # before start
    stream.feed(tw.build_start(1, SPEC))
    assert isinstance(stream.feed(_media()), tw.Media)


def test_a_start_with_a_second_stream_sid_inside_is_refused() -> None:
    frame = json.loads(tw.build_start(1, SPEC))
    frame["start"]["streamSid"] = "MZother"
    stream = tw.InboundStream()
    stream.feed(tw.build_connected())
    assert code_of(stream, json.dumps(frame)) == "UNKNOWN_STREAM_SID"


@pytest.mark.parametrize("text", ['{"event": "clear"}', '{"event": "start", "streamSid": "x"}',
                                  '{"event": "media", "streamSid": "x", "media": {"payload": "*"}}',
                                  '{"event": "mark", "streamSid": "x", "mark": {"name": 3}}'])
def test_the_client_side_reader_is_strict_too(text: str) -> None:
    with pytest.raises(tw.TwilioFrameError):
        tw.parse_outbound(text)


def test_every_prefix_of_a_frame_is_refused_not_crashed() -> None:
    whole = _media()
    for cut in range(len(whole) - 1):
        with pytest.raises(tw.TwilioFrameError):
            started().feed(whole[:cut])
