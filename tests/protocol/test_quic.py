"""The QUIC audio plane's envelope, messages and loss accounting (protocol/quic.py).

Streams are fed whole, byte by byte and in random chunks, and must give the
same envelopes; the checked-in gencode must be what quic.proto generates.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any, cast

import pytest

from telcoflow.protocol import quic_pb2
from telcoflow.protocol.errors import ProtocolError
from telcoflow.protocol.quic import (
    MAX_BODY,
    MAX_FILL_FRAMES,
    MAX_PAYLOAD,
    MESSAGE_TYPES,
    METHOD_IDS,
    AudioFrame,
    CallCommand,
    CallCommandResponse,
    CallEvent,
    Envelope,
    EnvelopeReader,
    Error,
    EventStreamRequest,
    EventStreamResponse,
    LossReport,
    Message,
    MethodId,
    OriginateRequest,
    OriginateResponse,
    QuicFrameError,
    SequenceTracker,
    decode,
    encode,
    encode_raw,
    frame_bytes,
    silence,
)

PROTOCOL_DIR = Path(__file__).resolve().parents[2] / "src" / "telcoflow" / "protocol"


def samples() -> list[Message]:
    """One of every message, every field set (strings with non-ASCII, numbers at their
    type's top), plus the all-default one of each (proto3 sends it as an empty body)."""
    full: list[Message] = [
        AudioFrame(call_sid="CA1", payload=bytes(range(256)) * 7 + bytes(128),
                   codec="PCM16", sequence_number=2**64 - 1, end_of_stream=True),
        AudioFrame(call_sid="CA2", payload=b"\xff" * 160, codec="PCMU", sequence_number=7),
        AudioFrame(call_sid="CA3", payload=b"", codec="PCMA", end_of_stream=True),
        CallEvent(call_sid="CA1", kind=CallEvent.LOSS, caller="+15550100", callee="☎ é",
                  reason="completed", message="m", codec="PCMU", sample_rate=2**32 - 1,
                  loss=LossReport(received=1, missing=2, duplicates=3, reordered=4, gaps=5,
                                  late_dropped=2**64 - 1)),
        EventStreamRequest(codec="PCM16", sample_rate=16000, auto_answer=True),
        EventStreamResponse(ok=True, error_code="E", error_message="x", subscription_id="s1"),
        originate(to="+15550100", default_app_args={"a": "1", "é": ""}, ring_timeout_s=30,
                  caller="+15550199"),
        OriginateResponse(ok=False, call_sid="CA9", error_code="BUSY", error_message="busy"),
        CallCommand(call_sid="CA1", command=CallCommand.SEND_DTMF, digits="12#",
                    ring_time_s=60),
        CallCommandResponse(ok=True, result_json='{"a": 1}'),
        Error(code="INVALID_BODY", message="The body is not valid."),
    ]
    defaults: list[Message] = [cls() for cls in METHOD_IDS if cls is not AudioFrame]
    return full + defaults


def originate(caller: str, **fields: Any) -> OriginateRequest:
    """``from`` is a Python keyword: the field is set by name."""
    request = OriginateRequest(**fields)
    setattr(request, "from", caller)
    return request


def stream_of(messages: list[Message]) -> bytes:
    return b"".join(encode(m) for m in messages)


def read(data: bytes, chunks: list[bytes], max_body: int = MAX_BODY
         ) -> tuple[list[Envelope], str | None]:
    """Envelopes out of ``chunks``, then the end of the stream; the error code, if any."""
    reader = EnvelopeReader(max_body)
    out: list[Envelope] = []
    try:
        for chunk in chunks:
            out.extend(reader.feed(chunk))
        reader.at_eof()
    except QuicFrameError as exc:
        return out, exc.code
    return out, None


def three_ways(data: bytes, seed: int = 1, max_body: int = MAX_BODY
               ) -> list[tuple[list[Envelope], str | None]]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, 12))) if data else []
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return [read(data, [data], max_body),
            read(data, [data[i:i + 1] for i in range(len(data))], max_body),
            read(data, chunks, max_body)]


# ── the envelope ─────────────────────────────────────────────────────────────

def test_wire_layout_is_length_then_method_id_little_endian() -> None:
    assert encode_raw(2991054320, b"ab") == b"\x06\x00\x00\x00\xf0\xdd\x47\xb2ab"
    assert encode_raw(MethodId.ERROR, b"") == b"\x04\x00\x00\x00" + (2351482881).to_bytes(
        4, "little")
    frame = AudioFrame(call_sid="c", payload=b"\xff" * 160, codec="PCMU")
    data = encode(frame)
    assert int.from_bytes(data[:4], "little") == len(data) - 4
    assert int.from_bytes(data[4:8], "little") == MethodId.AUDIO_FRAME
    assert data[8:] == frame.SerializeToString()


@pytest.mark.parametrize("seed", range(5))
def test_every_message_round_trips_whole_bytewise_and_chunked(seed: int) -> None:
    messages = samples()
    random.Random(seed).shuffle(messages)
    data = stream_of(messages)
    results = three_ways(data, seed)
    assert results[0] == results[1] == results[2]
    envelopes, error = results[0]
    assert error is None
    assert [e.method_id for e in envelopes] == [METHOD_IDS[type(m)] for m in messages]
    decoded = [decode(e) for e in envelopes]
    assert decoded == messages
    assert [type(d) for d in decoded] == [type(m) for m in messages]


def test_the_from_field_survives() -> None:
    (envelope,) = EnvelopeReader().feed(encode(originate("+1555")))
    assert getattr(decode(envelope), "from") == "+1555"


def test_envelope_unpacks_like_the_seed_demuxer() -> None:
    (envelope,) = EnvelopeReader().feed(encode(Error(code="X", message="y")))
    method_id, body = envelope
    assert method_id == 2351482881 and Error.FromString(body) == Error(code="X", message="y")


def test_several_envelopes_in_one_feed_and_a_partial_kept() -> None:
    a, b, c = (encode(Error(code=str(i))) for i in range(3))
    reader = EnvelopeReader()
    got = reader.feed(a + b + c[:5])
    assert [decode(e) for e in got] == [Error(code="0"), Error(code="1")]
    assert reader.buffered == 5
    assert reader.feed(b"") == []
    assert [decode(e) for e in reader.feed(c[5:])] == [Error(code="2")]
    assert reader.buffered == 0
    reader.at_eof()  # a clean end


@pytest.mark.parametrize("cut", [1, 3, 4, 7, 8, 9])
def test_a_stream_ending_inside_an_envelope_is_truncated(cut: int) -> None:
    data = encode(Error(code="x", message="y"))
    for envelopes, error in three_ways(encode(Error()) + data[:cut]):
        assert error == "TRUNCATED"
        assert [decode(e) for e in envelopes] == [Error()]


def test_an_empty_stream_is_fine() -> None:
    assert three_ways(b"") == [([], None)] * 3


def test_an_oversized_length_is_refused_before_its_body() -> None:
    reader = EnvelopeReader(max_body=100)
    reader.feed(b"\x69\x00")  # length 105: half of it
    with pytest.raises(QuicFrameError) as caught:
        reader.feed(b"\x00\x00")
    assert caught.value.code == "FRAME_TOO_LARGE"
    assert "105" in caught.value.message and "104" in caught.value.message
    assert reader.buffered == 0
    # the framing is lost: everything after raises the same error, nothing is buffered
    with pytest.raises(QuicFrameError) as again:
        reader.feed(b"\x00" * 10_000)
    assert again.value is caught.value and reader.buffered == 0
    with pytest.raises(QuicFrameError):
        reader.at_eof()


def test_the_bound_is_on_the_body() -> None:
    at_bound = encode_raw(MethodId.ERROR, bytes(100))
    assert three_ways(at_bound, max_body=100)[0][1] is None
    over = encode_raw(MethodId.ERROR, bytes(101))
    assert {r[1] for r in three_ways(over, max_body=100)} == {"FRAME_TOO_LARGE"}
    assert {r[1] for r in three_ways(b"\xff\xff\xff\xff")} == {"FRAME_TOO_LARGE"}
    big_audio = encode(AudioFrame(call_sid="c" * 100, payload=bytes(MAX_PAYLOAD),
                                  codec="PCM16"))
    assert three_ways(big_audio)[0][1] is None  # the default bound fits the biggest frame


@pytest.mark.parametrize("length", [0, 1, 3])
def test_a_length_shorter_than_the_method_id_is_malformed(length: int) -> None:
    data = encode(Error()) + length.to_bytes(4, "little") + b"\x00" * 8
    for envelopes, error in three_ways(data):
        assert error == "MALFORMED"
        assert len(envelopes) <= 1  # the good one before it, unless fed in the same chunk


def test_an_empty_body_is_an_envelope() -> None:
    (envelope,) = EnvelopeReader().feed(b"\x04\x00\x00\x00" + (7).to_bytes(4, "little"))
    assert envelope == Envelope(7, b"")


# ── decoding ─────────────────────────────────────────────────────────────────

def refused(envelope: Envelope) -> QuicFrameError:
    with pytest.raises(QuicFrameError) as caught:
        decode(envelope)
    assert isinstance(caught.value, ProtocolError)  # the package's one exception tree
    error = caught.value
    assert error.method_id == envelope.method_id
    assert error.message.endswith(".") and error.code in str(error)
    return error


def test_an_unknown_method_id() -> None:
    error = refused(Envelope(12345, b""))
    assert error.code == "UNKNOWN_METHOD" and "12345" in error.message


@pytest.mark.parametrize("body", [b"\xff", b"\x0a\x05ab", b"\x0a\x02\xff\xfe",  # bad UTF-8
                                  b"\x12", b"\x08" + b"\xff" * 11, b"\x0f"])
@pytest.mark.parametrize("method_id", [MethodId.AUDIO_FRAME, MethodId.CALL_EVENT,
                                       MethodId.ERROR, MethodId.ORIGINATE_REQUEST])
def test_a_junk_body(body: bytes, method_id: int) -> None:
    error = refused(Envelope(method_id, body))
    assert error.code == "INVALID_BODY"


def audio(**fields: Any) -> Envelope:
    frame = AudioFrame(call_sid="CA1", payload=b"\xff" * 160, codec="PCMU")
    for name, value in fields.items():
        setattr(frame, name, value)
    return Envelope(MethodId.AUDIO_FRAME, frame.SerializeToString())


@pytest.mark.parametrize(("fields", "words"), [
    ({"call_sid": ""}, "no call_sid"),
    ({"codec": ""}, "codec ''"),
    ({"codec": "pcmu"}, "codec 'pcmu'"),
    ({"codec": "OPUS"}, "not PCMU, PCMA or PCM16"),
    ({"payload": bytes(MAX_PAYLOAD + 1)}, "1921 bytes"),
    ({"codec": "PCM16", "payload": bytes(321)}, "whole 16-bit samples"),
])
def test_audio_frames_we_refuse(fields: dict[str, Any], words: str) -> None:
    error = refused(audio(**fields))
    assert error.code == "INVALID_BODY" and words in error.message


@pytest.mark.parametrize("fields", [
    {}, {"payload": b"", "end_of_stream": True}, {"codec": "PCMA", "sequence_number": 2**64 - 1},
    {"codec": "PCM16", "payload": bytes(MAX_PAYLOAD)}, {"payload": bytes(240)},  # 30 ms
])
def test_audio_frames_we_take(fields: dict[str, Any]) -> None:
    assert isinstance(decode(audio(**fields)), AudioFrame)


def test_unknown_fields_are_skipped_for_newer_peers() -> None:
    body = audio().body + b"\xf8\x06\x01" + b"\x82\x07\x03abc"  # fields 111 and 112
    frame = decode(Envelope(MethodId.AUDIO_FRAME, body))
    assert isinstance(frame, AudioFrame) and frame.call_sid == "CA1"


def test_an_unknown_enum_value_decodes_for_the_io_layer_to_answer() -> None:
    body = CallCommand(call_sid="c", command=CallCommand.ANSWER).SerializeToString()
    body = body.replace(b"\x10\x01", b"\x10\x63")  # command 99
    command = decode(Envelope(MethodId.CALL_COMMAND, body))
    assert isinstance(command, CallCommand) and command.command == 99


def test_encoding_what_is_not_a_message_of_the_plane() -> None:
    with pytest.raises(TypeError):
        encode(cast(Any, LossReport()))
    with pytest.raises(ValueError):
        encode_raw(2**32, b"")
    with pytest.raises(ValueError):
        encode_raw(-1, b"")


# ── the method-id table and the gencode ──────────────────────────────────────

def test_method_ids_are_the_seed_s_and_hashes_of_full_names() -> None:
    assert MethodId.AUDIO_FRAME.value == 2991054320 and MethodId.CALL_EVENT.value == 959835745
    assert len(set(MethodId)) == len(MethodId) == len(METHOD_IDS) == len(MESSAGE_TYPES)
    for cls, method_id in METHOD_IDS.items():
        assert 0 <= method_id < 2**32
        assert MESSAGE_TYPES[method_id] is cls
        name = cls.DESCRIPTOR.full_name
        if cls in (AudioFrame, CallEvent):
            continue
        assert method_id == int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    # every top-level message of the schema has an id, except the one nested in CallEvent
    schema = set(quic_pb2.DESCRIPTOR.message_types_by_name)
    assert schema - {cls.DESCRIPTOR.name for cls in METHOD_IDS} == {"LossReport"}
    assert all(cls.DESCRIPTOR.full_name.startswith("telcoflow.quic.v1.") for cls in METHOD_IDS)


def test_checked_in_gencode_is_what_quic_proto_generates(tmp_path: Path) -> None:
    """Edit quic.proto, then regenerate (the command is at the top of quic.proto)."""
    from grpc_tools import protoc

    src = PROTOCOL_DIR.parents[1]
    proto = PROTOCOL_DIR / "quic.proto"
    status = protoc.main(["protoc", f"-I{src}", f"--python_out={tmp_path}",
                          f"--pyi_out={tmp_path}", str(proto)])
    assert status == 0
    for name in ("quic_pb2.py", "quic_pb2.pyi"):
        fresh = (tmp_path / "telcoflow" / "protocol" / name).read_text()
        assert (PROTOCOL_DIR / name).read_text() == fresh, (
            f"{name} is stale: regenerate it (see the top of quic.proto)")


# ── 20 ms frames ─────────────────────────────────────────────────────────────

def test_frame_sizes_and_silence() -> None:
    assert frame_bytes("PCMU") == frame_bytes("PCMA", 8000) == 160
    assert frame_bytes("PCM16", 8000) == 320 and frame_bytes("PCM16", 16000) == 640
    assert frame_bytes("PCM16", 24000) == 960 and frame_bytes("PCM16", 48000) == MAX_PAYLOAD
    assert silence("PCMU") == b"\xff" * 160 and silence("PCMA") == b"\xd5" * 160
    assert silence("PCM16", 16000) == bytes(640)
    for bad in (("PCMU", 16000), ("PCM16", 0), ("PCM16", 11025), ("OPUS", 48000)):
        with pytest.raises(ValueError):
            frame_bytes(*bad)


# ── loss accounting ──────────────────────────────────────────────────────────

def counts(t: SequenceTracker) -> tuple[int, int, int, int, int]:
    return t.received, t.missing, t.gaps, t.duplicates, t.reordered


def test_in_order_from_any_base() -> None:
    for base in (0, 1, 77_777, 2**64 - 3):
        t = SequenceTracker()
        assert [t.accept(base + i) for i in range(3)] == [0, 0, 0]
        assert counts(t) == (3, 0, 0, 0, 0)


def test_a_gap_of_three_is_filled() -> None:
    t = SequenceTracker()
    assert [t.accept(s) for s in (10, 11, 15, 16)] == [0, 0, 3, 0]
    assert counts(t) == (4, 3, 1, 0, 0)


def test_a_duplicate_is_dropped() -> None:
    t = SequenceTracker()
    assert [t.accept(s) for s in (1, 2, 2, 3, 1)] == [0, 0, None, 0, None]
    assert counts(t) == (3, 0, 0, 2, 0)


def test_a_reordered_frame_is_dropped_and_its_copy_is_a_duplicate() -> None:
    t = SequenceTracker()
    assert [t.accept(s) for s in (1, 3, 2, 4, 2)] == [0, 1, None, 0, None]
    assert counts(t) == (3, 1, 1, 1, 1)


def test_a_huge_jump_fills_only_the_bound() -> None:
    t = SequenceTracker()
    assert t.accept(5) == 0
    assert t.accept(5 + 10**12) == MAX_FILL_FRAMES
    assert t.accept(6 + 10**12) == 0
    assert counts(t) == (3, MAX_FILL_FRAMES, 1, 0, 0) and t.resyncs == 1
    assert t.accept(5 + 10**12) is None  # the window came along: a duplicate
    t = SequenceTracker(max_fill=2)
    assert [t.accept(s) for s in (0, 3, 7)] == [0, 2, 2]
    assert t.missing == 4 and t.gaps == 2 and t.resyncs == 1


def test_numbering_that_starts_again_is_followed() -> None:
    t = SequenceTracker()
    assert [t.accept(s) for s in (1000, 1001, 0, 1, 2)] == [0, 0, 0, 0, 0]
    assert t.resyncs == 1 and t.gaps == 1 and t.received == 5
    # within the bound it is a late frame, not a restart
    assert t.accept(2 - MAX_FILL_FRAMES) is None and t.reordered == 1


def test_the_report() -> None:
    t = SequenceTracker()
    for s in (1, 2, 2, 5, 4, 6):
        t.accept(s)
    t.late_dropped += 1  # the playout's count
    report = t.report()
    assert report == LossReport(received=4, missing=2, duplicates=1, reordered=1, gaps=1,
                                late_dropped=1)
    event = CallEvent(call_sid="CA1", kind=CallEvent.LOSS, loss=report)
    assert decode(Envelope(MethodId.CALL_EVENT, event.SerializeToString())) == event


def test_the_tracker_is_cheap() -> None:
    """It runs per frame: a million frames of a lossy stream well under a few seconds."""
    import time

    rng = random.Random(3)
    seqs = [i + (rng.random() < 0.01) * 3 - (rng.random() < 0.01) for i in range(200_000)]
    t = SequenceTracker()
    accept = t.accept
    started = time.process_time()
    for s in seqs:
        accept(s)
    per_frame = (time.process_time() - started) / len(seqs)
    assert per_frame < 5e-6, f"{per_frame * 1e6:.2f} us per frame"
