"""Sans-I/O pieces: ring buffer, send schedule, back-off, configs, wire frames, errors."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from telcoflow import (
    BufferClosedError,
    BufferFullError,
    CallAudioConfig,
    CallFlowBuilder,
    CallFlowConfig,
    InboundCallMode,
    SessionManagerConfig,
    WSSAuthenticationError,
    WSSConnectionError,
    WSSInvalidRequest,
)
from telcoflow.protocol import sm
from telcoflow.protocol import voice as vp
from telcoflow.sdk.backoff import ExponentialBackoff
from telcoflow.sdk.config import DEFAULT_BUFFER_SIZE
from telcoflow.sdk.errors import (
    WSSAuthRejected,
    WSSSessionBusy,
    WSSSessionNotFound,
    raise_for_response,
)
from telcoflow.sdk.ring import SMALL_BUFFER, ByteRing, OutboundAudio
from telcoflow.sdk.voice import BufferSize

# ── ring buffer ────────────────────────────────────────────────────────────


@pytest.mark.parametrize("capacity", [0, -8, 3, 1000])
def test_ring_capacity_must_be_a_power_of_two(capacity: int) -> None:
    with pytest.raises(ValueError):
        ByteRing(capacity)


def test_ring_keeps_order_across_wraparound() -> None:
    ring = ByteRing(8)
    ring.write(b"abcdef")
    assert ring.read(4) == b"abcd"
    ring.write(b"ghijk")  # wraps past the end
    assert len(ring) == 7
    assert ring.read(100) == b"efghijk"
    assert len(ring) == 0


def test_ring_write_is_all_or_nothing() -> None:
    ring = ByteRing(8)
    ring.write(b"12345")
    with pytest.raises(BufferFullError):
        ring.write(b"6789")
    assert ring.read(8) == b"12345"


def test_ring_clear_reports_dropped_bytes_and_close_refuses_writes() -> None:
    ring = ByteRing(16)
    ring.write(b"x" * 10)
    assert ring.clear() == 10
    assert len(ring) == 0
    ring.close()
    with pytest.raises(BufferClosedError):
        ring.write(b"y")


def test_a_call_that_sends_little_holds_little() -> None:
    """A 20 ms echo through the default 1 MiB-bound buffer: 8 KiB held, not 1 MiB."""
    frame = bytes(range(256)) * 2 + bytes(128)  # 640 bytes: 20 ms at 16 kHz
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = OutboundAudio(DEFAULT_BUFFER_SIZE)
        for _ in range(200):  # 4 s, 128 kB sent
            out.ring.write(frame)
            out.grant(640, 640)
            assert out.due_frames(b"\x00") == [b"\x00" + frame]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 2 * SMALL_BUFFER, f"{held} bytes held"
    assert out.ring.allocated == SMALL_BUFFER and out.ring.capacity == DEFAULT_BUFFER_SIZE


def test_ring_grows_with_its_queue_and_shrinks_once_drained() -> None:
    burst = bytes(range(250)) * 400  # 100 kB of TTS queued at once
    tracemalloc.start()
    try:
        ring = ByteRing(DEFAULT_BUFFER_SIZE)
        base = tracemalloc.get_traced_memory()[0]
        ring.write(burst)
        assert ring.allocated == 128 * 1024  # a power of two at most twice the queue
        assert tracemalloc.get_traced_memory()[0] - base >= 120 * 1024
        assert ring.read(len(burst)) == burst
        assert ring.allocated == SMALL_BUFFER  # drained: the burst's buffer is given back
        assert tracemalloc.get_traced_memory()[0] - base < 1024
        ring.write(burst)
        assert ring.clear() == len(burst) and ring.allocated == SMALL_BUFFER
        ring.close()
        assert ring.allocated == 0  # an ended call keeps no buffer
        assert tracemalloc.get_traced_memory()[0] - base < 1024 - SMALL_BUFFER
    finally:
        tracemalloc.stop()


def test_ring_keeps_order_when_it_grows_while_wrapped() -> None:
    ring = ByteRing(64, initial=8)
    ring.write(b"abcdef")
    assert ring.read(4) == b"abcd"
    ring.write(b"ghijk")  # wraps past the end of the 8-byte buffer
    ring.write(b"lmnopqrstuvwxyz")  # does not fit: grows, unwrapping the queue
    assert ring.allocated == 32 and len(ring) == 22
    assert ring.take(22, b">") == b">efghijklmnopqrstuvwxyz"


def test_ring_still_refuses_a_write_past_its_bound() -> None:
    ring = ByteRing(DEFAULT_BUFFER_SIZE)
    frame = bytes(range(256)) * 3 + bytes(192)  # 960 bytes: 20 ms at 24 kHz
    frames = DEFAULT_BUFFER_SIZE // len(frame)
    for _ in range(frames):
        ring.write(frame)
    assert ring.allocated == DEFAULT_BUFFER_SIZE and ring.free() < len(frame)
    with pytest.raises(BufferFullError):
        ring.write(frame)  # all or nothing: what was queued stays as it was
    ring.write(bytes(ring.free()))  # filling it exactly is allowed
    with pytest.raises(BufferFullError):
        ring.write(b"x")
    assert len(ring) == DEFAULT_BUFFER_SIZE
    assert ring.read(len(frame) * frames) == frame * frames
    with pytest.raises(BufferFullError):
        ByteRing(1024, initial=256).write(bytes(1025))  # a write bigger than the bound


def test_outbound_sends_only_what_was_requested_in_preferred_frames() -> None:
    out = OutboundAudio(4096)
    out.ring.write(bytes(range(256)) * 4)  # 1024 bytes queued, nothing requested yet
    assert out.next_frame() is None
    out.grant(700, 320)
    first, second = out.next_frame(b"\x00"), out.next_frame(b"\x00")
    last = out.next_frame(b"\x00")
    assert first is not None and second is not None and last is not None
    assert [len(first), len(second), len(last)] == [321, 321, 61]  # 320 + 320 + 60
    assert first[0] == 0 and first[1:5] == bytes([0, 1, 2, 3])
    assert out.next_frame() is None  # grant used up, 324 bytes stay queued
    assert len(out.ring) == 324


def test_outbound_waits_for_a_whole_frame_and_defaults_to_960() -> None:
    out = OutboundAudio(4096)
    out.grant(5000, 0)
    out.ring.write(b"a" * 959)
    assert out.next_frame() is None
    out.ring.write(b"a")
    frame = out.next_frame()
    assert frame is not None and len(frame) == 960


def test_buffer_size_is_an_int_and_awaitable() -> None:
    size = BufferSize(42)
    assert size == 42 and isinstance(size, int)
    gen = size.__await__()
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == 42


# ── back-off ────────────────────────────────────────────────────────────────


def test_backoff_sequence_cap_and_jitter() -> None:
    lows = ExponentialBackoff(rand=lambda a, b: a)
    assert [round(lows.next_delay(), 4) for _ in range(4)] == [0.5, 0.75, 1.125, 1.6875]
    for _ in range(20):
        last = lows.next_delay()
    assert last == 10.0
    highs = ExponentialBackoff(rand=lambda a, b: b)
    assert highs.next_delay() == pytest.approx(0.6)  # +20 %
    highs.reset()
    assert highs.next_delay() == pytest.approx(0.6)
    real = ExponentialBackoff()
    delays = [real.next_delay() for _ in range(30)]
    assert all(0.5 <= d <= 12.0 for d in delays)


# ── configs ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("kwargs", [{"sample_rate": 44100}, {"sample_rate": None},
                                    {"buffer_size": 1000}, {"buffer_size": 0}])
def test_call_audio_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CallAudioConfig(**kwargs)  # type: ignore[arg-type]


def test_call_audio_config_defaults() -> None:
    cfg = CallAudioConfig()
    assert (cfg.sample_rate, cfg.audio_mode.value, cfg.buffer_size) == (16000, "mixed", 1 << 20)


@pytest.mark.parametrize("kwargs", [{}, {"api_key": "k"}, {"connector_uuid": "c"},
                                    {"cert_path": "c.pem"}, {"key_path": "k.pem"}])
def test_session_manager_config_needs_one_complete_auth_mode(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        SessionManagerConfig.create(**kwargs)  # type: ignore[arg-type]


def test_session_manager_config_hides_secrets_in_repr() -> None:
    cfg = SessionManagerConfig.create(api_key="sekret-key-123", connector_uuid="conn")
    assert "sekret-key-123" not in repr(cfg)
    mtls = SessionManagerConfig.create(cert_path="c.pem", key_path="/secret/k.pem")
    assert "/secret/k.pem" not in repr(mtls)


def test_call_flow_builder() -> None:
    cfg = CallFlowBuilder().inbound_call(InboundCallMode.MISSED_ONLY).outbound_call(True).build()
    assert cfg.to_frame_data() == {"inboundCall": "MISSED_ONLY", "outboundCall": True,
                                   "inboundMessage": False, "outboundMessage": False}
    with pytest.raises(ValueError):
        CallFlowConfig(inbound_call="ALL")  # type: ignore[arg-type]


# ── the SDK's frames (telcoflow.protocol.sm / .voice) ──────────────────────


def test_client_frames() -> None:
    assert json.loads(sm.build_setup(24000, "mixed")) == {
        "type": "setup", "data": {"sampleRate": 24000, "audioMode": "mixed"}}
    assert json.loads(sm.build_session_open("r1", "s1")) == {
        "type": "session.open", "sessionId": "s1", "reqId": "r1"}
    assert json.loads(sm.build_session_ready("s1")) == {"type": "session.ready", "sessionId": "s1"}
    assert json.loads(vp.build_command("c1", "call.connect", 30000, {"ringTimeSeconds": 30})) == {
        "type": "command", "data": {"command_id": "c1", "command": "call.connect",
                                    "timeout_ms": 30000, "data": {"ringTimeSeconds": 30}}}
    assert "data" not in json.loads(vp.build_command("c2", "call.answer", 10000))["data"]


def test_server_frames_parse_leniently() -> None:
    call_in = sm.parse_server_frame(json.dumps({"type": "call.in", "sessionId": "s",
                                                "callId": "c", "from": "+1", "to": "+2",
                                                "url": "ws://x", "token": "T0KEN"}))
    assert isinstance(call_in, sm.CallIn)
    assert (call_in.caller, call_in.callee, call_in.token) == ("+1", "+2", "T0KEN")
    assert "T0KEN" not in repr(call_in)
    notify = sm.parse_server_frame(
        '{"type":"session.notify","sessionId":"s","activity":"NEWTHING"}')
    assert isinstance(notify, sm.SessionNotify) and notify.activity == "NEWTHING"
    assert sm.parse_server_frame('{"type":"brand.new"}') == sm.Unknown("brand.new")
    resp = sm.parse_server_frame('{"type":"response","reqId":"r","ok":false,"errorCode":"X"}')
    assert isinstance(resp, sm.Response) and not resp.ok and resp.error_code == "X"
    req = vp.parse_server_text('{"type":"buffer_request","data":{"requested_bytes":640}}')
    assert req == vp.BufferRequest(640, 0, 0)
    event = vp.parse_server_text('{"type":"call_event","data":{"event":"call.error",'
                                 '"error_code":"TTS_SESSION_ERROR"}}')
    assert event == vp.CallEventFrame("call.error", {"error_code": "TTS_SESSION_ERROR"})
    assert vp.split_server_audio(b"\x01") is None
    assert vp.split_server_audio(b"\x02ab") == (2, b"ab")


# ── errors ──────────────────────────────────────────────────────────────────


def test_response_errors_map_to_the_tree() -> None:
    raise_for_response(True, None, None)
    with pytest.raises(WSSSessionBusy) as busy:
        raise_for_response(False, "SESSION_BUSY", {"boundSmWsId": "smws-1"})
    assert busy.value.bound_sm_ws_id == "smws-1"
    with pytest.raises(WSSSessionNotFound, match="no such session"):
        raise_for_response(False, "SESSION_NOT_FOUND", {"message": "no such session"})
    with pytest.raises(WSSInvalidRequest):
        raise_for_response(False, "INVALID_REQUEST", None)
    with pytest.raises(WSSConnectionError):
        raise_for_response(False, "SOMETHING_NEW", None)


def test_rejected_handshake_is_both_auth_and_connection_error() -> None:
    assert issubclass(WSSAuthRejected, WSSAuthenticationError)
    assert issubclass(WSSAuthRejected, WSSConnectionError)
