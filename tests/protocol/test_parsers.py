"""The sans-I/O parsers: whole frames, junk, and every wrong type get a ProtocolError.

Round trips of every frame type, both directions, are in ``test_roundtrip_*.py``.
"""

from __future__ import annotations

import json
import random

import pytest

from telcoflow.protocol import errors, phone, sm, voice


@pytest.mark.parametrize("parse", [
    # strict: what the gateway reads
    sm.parse_client_frame, voice.parse_client_text, phone.parse_phone_text,
    # lenient: what the SDK and the phones read (junk that is an object becomes Unknown)
    sm.parse_server_frame, voice.parse_server_text, phone.parse_network_text,
], ids=lambda parse: f"{parse.__module__.rsplit('.', 1)[-1]}.{parse.__name__}")
def test_random_junk_only_ever_raises_protocol_errors(parse: object) -> None:
    rng = random.Random(1)
    samples = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64))) for _ in range(500)]
    samples += [json.dumps(v).encode() for v in (None, 1, "x", [], {}, {"type": None},
                                                  {"type": "command", "data": []})]
    for raw in samples:
        try:
            parse(raw)  # type: ignore[operator]
        except errors.ProtocolError as exc:
            assert exc.message
        # anything else propagates and fails the test


def test_every_prefix_of_a_valid_frame_is_refused_cleanly() -> None:
    frame = json.dumps({"type": "session.open", "reqId": "r", "sessionId": "s"})
    for cut in range(len(frame)):
        with pytest.raises(errors.ProtocolError):
            sm.parse_client_frame(frame[:cut])
    assert sm.parse_client_frame(frame) == sm.SessionOpen("r", "s")


def test_setup_defaults_and_limits() -> None:
    assert sm.parse_client_frame('{"type":"setup","data":{"sampleRate":8000}}') == \
        sm.Setup(8000, "mixed")
    with pytest.raises(errors.MalformedFrame, match="sampleRate must be one of"):
        sm.parse_client_frame('{"type":"setup","data":{"sampleRate":44100}}')
    with pytest.raises(errors.MalformedFrame, match="must be an integer, not a boolean"):
        sm.parse_client_frame('{"type":"setup","data":{"sampleRate":true}}')
    with pytest.raises(errors.FrameTooLarge):
        sm.parse_client_frame(" " * (sm.MAX_FRAME_BYTES + 1))


def test_request_ids_survive_into_errors_so_they_can_be_answered() -> None:
    with pytest.raises(errors.MalformedFrame) as info:
        sm.parse_client_frame('{"type":"session.open","reqId":"abc","sessionId":1}')
    assert info.value.request_id == "abc"
    with pytest.raises(errors.UnknownCommand) as cmd:
        voice.parse_client_text('{"type":"command","data":{"command_id":"c","command":"x"}}')
    assert cmd.value.request_id == "c" and cmd.value.code == "UNKNOWN_COMMAND"


def test_commands_parse_with_their_data() -> None:
    cmd = voice.parse_client_text(json.dumps({"type": "command", "data": {
        "command_id": "c", "command": "call.connect", "timeout_ms": 30000,
        "data": {"ringTimeSeconds": 30}}}))
    assert cmd == voice.Command("c", "call.connect", 30000, {"ringTimeSeconds": 30})


def test_audio_frames_split_on_the_channel_byte() -> None:
    assert voice.split_audio(b"\x02\x01\x00") == (2, b"\x01\x00")
    for bad in (b"", b"\x00", b"\x00\x01", b"\x00\x01\x02\x03"):
        with pytest.raises(errors.MalformedFrame):
            voice.split_audio(bad)


def test_subscriber_line_frames() -> None:
    reg = phone.parse_phone_text(phone.build_register("+15550100", "pcmu", 8000))
    assert reg == phone.Register("+15550100", "pcmu", 8000)
    assert phone.parse_phone_text(phone.build_answer()) == phone.Answer()
    assert phone.parse_phone_text(phone.build_reject()) == phone.Reject()
    frame = phone.build_register("+15550100", "pcm16", 16000)
    for cut in range(len(frame)):
        with pytest.raises(errors.ProtocolError):
            phone.parse_phone_text(frame[:cut])
    for bad, words in (({"type": "register"}, "missing field 'number'"),
                       ({"type": "register", "number": ""}, "must not be empty"),
                       ({"type": "register", "number": 5}, "must be a string"),
                       ({"type": "register", "number": "1", "codec": "pcma",
                         "sampleRate": 16000}, "8000 Hz only")):
        with pytest.raises(errors.MalformedFrame, match=words):
            phone.parse_phone_text(json.dumps(bad))


@pytest.mark.parametrize(("ring", "ok"), [(1, True), (120, True), (0, False), (121, False),
                                          ("30", False), (True, False)])
def test_connect_ring_time_is_checked(ring: object, ok: bool) -> None:
    cmd = voice.Command("c", "call.connect", 30000, {"ringTimeSeconds": ring})
    if ok:
        assert voice.ring_time_s(cmd) == ring
    else:
        with pytest.raises(errors.MalformedFrame) as info:
            voice.ring_time_s(cmd)
        assert info.value.request_id == "c"
    assert voice.ring_time_s(voice.Command("c", "call.connect", 30000, {})) == 60
