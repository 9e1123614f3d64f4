"""The AudioCodes VAIC Bot API codec: every message both ways, whole and as junk."""

from __future__ import annotations

import base64
import json

import pytest

from telcoflow.protocol import audiocodes as ac
from telcoflow.protocol.errors import ProtocolError, VaicMessageError

CID = "conv-1"
PCM24 = ac.FORMATS["raw/lpcm16_24"]


def test_every_vaic_message_parses_to_its_event() -> None:
    assert ac.parse_vaic_text(ac.vaic_session_initiate(
        CID, "bot", "+1555", ["raw/lpcm16", "raw/mulaw"])) == ac.SessionInitiate(
        CID, "bot", "+1555", ("raw/lpcm16", "raw/mulaw"), True)
    assert ac.parse_vaic_text(ac.vaic_session_resume(CID)) == ac.SessionResume(CID)
    assert ac.parse_vaic_text(ac.vaic_user_stream_start(CID)) == ac.UserStreamStart(CID)
    assert ac.parse_vaic_text(ac.vaic_user_stream_chunk(CID, b"\x01\x02" * 5), PCM24) == \
        ac.UserStreamChunk(CID, b"\x01\x02" * 5)
    assert ac.parse_vaic_text(ac.vaic_user_stream_stop(CID)) == ac.UserStreamStop(CID)
    dtmf = ac.parse_vaic_text(ac.vaic_activity(CID, "dtmf", "12#"))
    assert dtmf == ac.Activities(CID, (ac.Activity("event", "dtmf", "12#", {}),))
    start = ac.parse_vaic_text(ac.vaic_activity(CID, "start", parameters={"callee": "x"}))
    assert isinstance(start, ac.Activities) and start.activities[0].parameters == {"callee": "x"}
    hangup = ac.parse_vaic_text(ac.vaic_activity(CID, "hangup"))
    assert isinstance(hangup, ac.Activities) and hangup.activities[0].name == "hangup"
    assert ac.parse_vaic_text(ac.vaic_session_end(CID, "client-disconnected", "bye")) == \
        ac.SessionEnd(CID, "client-disconnected", "bye")
    assert ac.parse_vaic_text(ac.vaic_connection_validate()) == ac.ConnectionValidate("")
    assert ac.parse_vaic_text(ac.vaic_connection_validate(CID)) == ac.ConnectionValidate(CID)


def test_every_bot_message_reads_back_on_the_vaic_side() -> None:
    fmt = ac.FORMATS["raw/mulaw"]
    assert ac.parse_bot_text(ac.build_session_accepted(CID, fmt)) == ac.Accepted("raw/mulaw")
    assert ac.parse_bot_text(ac.build_session_accepted(CID)) == ac.Accepted("")
    assert ac.parse_bot_text(ac.build_session_error(CID, "no")) == ac.Refused("no")
    assert ac.parse_bot_text(ac.build_user_stream_started(CID)) == ac.UserStreamAck(True)
    assert ac.parse_bot_text(ac.build_user_stream_stopped(CID)) == ac.UserStreamAck(False)
    assert ac.parse_bot_text(ac.build_play_stream_start(CID, "1", fmt)) == \
        ac.PlayStart("1", "raw/mulaw")
    assert ac.parse_bot_text(ac.build_play_stream_chunk(CID, "1", b"\xff" * 160)) == \
        ac.PlayChunk("1", b"\xff" * 160)
    assert ac.parse_bot_text(ac.build_play_stream_stop(CID, "1")) == ac.PlayStop("1")
    hangup = ac.parse_bot_text(ac.build_hangup(CID, "the agent ended the call"))
    assert hangup == ac.BotActivities(({"type": "event", "name": "hangup", "activityParams": {
        "hangupReason": "the agent ended the call"}},))
    dtmf = ac.parse_bot_text(ac.build_send_dtmf(CID, "42"))
    assert isinstance(dtmf, ac.BotActivities) and dtmf.activities[0]["name"] == "sendDtmf"
    assert ac.parse_bot_text(ac.build_connection_validated(CID)) == ac.Validated(True)
    for text in ("{", "[]", '{"type":"future.thing"}', json.dumps(
            {"type": "playStream.chunk", "audioChunk": "@@@"})):
        assert isinstance(ac.parse_bot_text(text), ac.Unknown)
    # every bot message carries the conversation id
    assert json.loads(ac.build_play_stream_stop(CID, "7"))["conversationId"] == CID


def test_format_table_and_our_preference() -> None:
    assert {n: (f.codec, f.rate) for n, f in ac.FORMATS.items()} == {
        "raw/lpcm16_24": ("pcm16", 24000), "raw/lpcm16": ("pcm16", 16000),
        "raw/lpcm16_8": ("pcm16", 8000), "raw/mulaw": ("pcmu", 8000)}
    assert ac.FORMATS["raw/lpcm16_24"].bytes_per_ms == 48
    assert ac.FORMATS["raw/mulaw"].bytes_per_ms == 8
    assert ac.FORMATS["raw/lpcm16"].frame_bytes == 640
    # VAIC's order does not matter: ours does
    assert ac.choose_format(["raw/mulaw", "raw/lpcm16", "raw/lpcm16_24"]) == PCM24
    assert ac.choose_format(["wav/lpcm16", "raw/mulaw"]) == ac.FORMATS["raw/mulaw"]
    assert ac.choose_format(["wav/lpcm16", "opus"]) is None
    with pytest.raises(VaicMessageError) as err:
        ac.media_format("wav/lpcm16")
    assert err.value.code == "UNSUPPORTED_FORMAT" and "raw/lpcm16_24" in err.value.message


def _chunk(encoded: str) -> str:
    return json.dumps({"type": "userStream.chunk", "conversationId": CID, "audioChunk": encoded})


@pytest.mark.parametrize(("text", "code"), [
    ("not json", "BAD_JSON"),
    (b"\xff\xfe", "BAD_JSON"),
    ("[1,2]", "BAD_JSON"),
    ('{"conversationId":"c"}', "BAD_FIELD"),
    ('{"type":5,"conversationId":"c"}', "BAD_FIELD"),
    ('{"type":"session.dance","conversationId":"c"}', "UNKNOWN_TYPE"),
    ('{"type":"userStream.start"}', "MISSING_CONVERSATION_ID"),
    ('{"type":"userStream.start","conversationId":""}', "MISSING_CONVERSATION_ID"),
    ('{"type":"userStream.start","conversationId":7}', "MISSING_CONVERSATION_ID"),
    (_chunk("!!notbase64!!"), "BAD_BASE64"),
    (_chunk("AAA"), "BAD_BASE64"),
    (_chunk(base64.b64encode(b"\x00\x01\x02").decode()), "ODD_LENGTH"),
    (_chunk(base64.b64encode(bytes(ac.MAX_CHUNK_BYTES + 2)).decode()), "CHUNK_TOO_LARGE"),
    ('{"type":"userStream.chunk","conversationId":"c","audioChunk":5}', "BAD_FIELD"),
    ('{"type":"session.initiate","conversationId":"c","supportedMediaFormats":[]}', "BAD_FIELD"),
    ('{"type":"session.initiate","conversationId":"c","supportedMediaFormats":"raw/mulaw"}',
     "BAD_FIELD"),
    ('{"type":"session.initiate","conversationId":"c","supportedMediaFormats":[1]}',
     "BAD_FIELD"),
    ('{"type":"session.initiate","conversationId":"c","botName":3,'
     '"supportedMediaFormats":["raw/mulaw"]}', "BAD_FIELD"),
    ('{"type":"activities","conversationId":"c","activities":{}}', "BAD_FIELD"),
    ('{"type":"activities","conversationId":"c","activities":[5]}', "BAD_FIELD"),
    ('{"type":"activities","conversationId":"c","activities":[{"name":"dtmf","value":"x"}]}',
     "BAD_DTMF"),
    ('{"type":"activities","conversationId":"c","activities":[{"name":"dtmf"}]}', "BAD_DTMF"),
    ("x" * (ac.MAX_TEXT_BYTES + 1), "FRAME_TOO_LARGE"),
])
def test_junk_is_refused_with_a_specific_code(text: str | bytes, code: str) -> None:
    with pytest.raises(VaicMessageError) as err:
        ac.parse_vaic_text(text, PCM24)
    assert err.value.code == code, err.value.message
    assert isinstance(err.value, ProtocolError) and err.value.message


def test_odd_lengths_are_fine_for_mulaw_and_unknown_formats() -> None:
    odd = ac.vaic_user_stream_chunk(CID, b"\x01\x02\x03")
    assert ac.parse_vaic_text(odd, ac.FORMATS["raw/mulaw"]) == ac.UserStreamChunk(
        CID, b"\x01\x02\x03")
    assert ac.parse_vaic_text(odd).audio == b"\x01\x02\x03"  # type: ignore[union-attr]


def test_fuzzed_junk_only_ever_raises_vaic_errors() -> None:
    import random
    rng = random.Random(5)
    valid = [ac.vaic_session_initiate(CID, "b", "c", ["raw/lpcm16"]),
             ac.vaic_user_stream_chunk(CID, b"\x00\x00" * 40), ac.vaic_activity(CID, "dtmf", "1"),
             ac.vaic_session_end(CID)]
    for _ in range(2000):
        text = bytearray(rng.choice(valid).encode())
        for _ in range(rng.randint(1, 4)):
            text[rng.randrange(len(text))] = rng.randrange(256)
        try:
            ac.parse_vaic_text(bytes(text), PCM24)
        except VaicMessageError:
            pass
