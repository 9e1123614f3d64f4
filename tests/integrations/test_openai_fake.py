"""The OpenAI Realtime fake, driven by the real ``openai`` SDK (no key, no network)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
from openai import AsyncOpenAI  # noqa: E402
from openai.resources.realtime.realtime import AsyncRealtimeConnection  # noqa: E402
from websockets.exceptions import ConnectionClosedError, InvalidStatus  # noqa: E402

from telcoflow.audio.g711 import alaw_encode, ulaw_encode  # noqa: E402
from telcoflow.audio.resample import resample  # noqa: E402
from telcoflow.audio.synth import speech_like, to_int16  # noqa: E402
from telcoflow.testing.openai_fake import (  # noqa: E402
    FakeRealtimeServer,
    FakeScript,
    Truncation,
    encode_reply,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

MODEL = "gpt-realtime"
GA_SESSION: dict[str, Any] = {
    "type": "realtime", "model": MODEL, "instructions": "Be brief.",
    "output_modalities": ["audio"],
    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 300}},
              "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
}
REPLY = to_int16(speech_like(0.6, 24000, seed=3))


def utterance(rate: int = 24000, lead_s: float = 0.5, speech_s: float = 0.6,
              tail_s: float = 0.5) -> np.ndarray:
    """Silence, speech-like audio, silence: PCM16 at ``rate``."""
    return np.concatenate([np.zeros(round(lead_s * rate), np.int16),
                           to_int16(speech_like(speech_s, rate, seed=1)),
                           np.zeros(round(tail_s * rate), np.int16)])


async def append(conn: AsyncRealtimeConnection, payload: bytes, chunk: int) -> None:
    for i in range(0, len(payload), chunk):
        await conn.input_audio_buffer.append(
            audio=base64.b64encode(payload[i:i + chunk]).decode("ascii"))


async def collect(conn: AsyncRealtimeConnection, until: Callable[[Any], bool],
                  timeout: float = 5.0) -> list[Any]:
    """Events from the SDK up to and including the first for which ``until`` holds."""
    events: list[Any] = []
    async with asyncio.timeout(timeout):
        async for event in conn:
            events.append(event)
            if until(event):
                return events
    raise AssertionError(f"connection ended before the awaited event: {types(events)}")


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


def is_type(kind: str) -> Callable[[Any], bool]:
    return lambda e: e.type == kind


def audio_of(events: list[Any]) -> bytes:
    return b"".join(base64.b64decode(e.delta) for e in events
                    if e.type == "response.output_audio.delta")


@asynccontextmanager
async def session(script: FakeScript | None = None, update: dict[str, Any] | None = GA_SESSION,
                  ) -> AsyncIterator[tuple[FakeRealtimeServer, AsyncRealtimeConnection]]:
    async with FakeRealtimeServer(script) as server:
        client = AsyncOpenAI(api_key="test", websocket_base_url=server.websocket_base_url)
        async with client.realtime.connect(model=MODEL) as conn:
            await collect(conn, is_type("session.created"))
            if update is not None:
                await conn.session.update(session=update)  # type: ignore[arg-type]
                await collect(conn, is_type("session.updated"))
            yield server, conn


async def test_session_update_ga_is_accepted() -> None:
    async with FakeRealtimeServer() as server:
        client = AsyncOpenAI(api_key="test", websocket_base_url=server.websocket_base_url)
        async with client.realtime.connect(model=MODEL) as conn:
            created = await collect(conn, is_type("session.created"))
            await conn.session.update(session=GA_SESSION)  # type: ignore[arg-type]
            (updated,) = await collect(conn, is_type("session.updated"))
    assert created[-1].session.model == MODEL
    assert updated.session.instructions == "Be brief."
    assert updated.session.audio.input.turn_detection.silence_duration_ms == 300
    assert updated.session.audio.input.turn_detection.prefix_padding_ms == 300  # default kept
    assert server.requests[0].path == "/v1/realtime?model=gpt-realtime"
    assert server.requests[0].headers["Authorization"] == "Bearer test"
    assert server.received_types() == ["session.update"]


async def test_base_url_setting_reaches_the_fake_too() -> None:
    """``base_url`` (what ``OPENAI_BASE_URL`` sets) works as well: http is mapped to ws."""
    async with FakeRealtimeServer() as server:
        client = AsyncOpenAI(api_key="test", base_url=server.base_url)
        async with client.realtime.connect(model=MODEL) as conn:
            await collect(conn, is_type("session.created"))
    assert server.requests[0].path.startswith("/v1/realtime?")


async def test_beta_session_shape_is_refused_with_4000() -> None:
    async with FakeRealtimeServer() as server:
        client = AsyncOpenAI(api_key="test", websocket_base_url=server.websocket_base_url)
        async with client.realtime.connect(model=MODEL) as conn:
            await collect(conn, is_type("session.created"))
            await conn.send({"type": "session.update",  # type: ignore[arg-type]
                             "session": {"modalities": ["audio", "text"],
                                         "input_audio_format": "pcm16"}})
            with pytest.raises(ConnectionClosedError) as closed:
                await collect(conn, lambda e: False)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
    errors = [e for e in server.sent if e["type"] == "error"]
    assert errors[0]["error"]["code"] == "beta_api_shape_disabled"


async def test_beta_header_is_refused_with_4000() -> None:
    async with FakeRealtimeServer() as server:
        client = AsyncOpenAI(api_key="test", websocket_base_url=server.websocket_base_url)
        async with client.realtime.connect(
                model=MODEL, extra_headers={"OpenAI-Beta": "realtime=v1"}) as conn:
            events: list[Any] = []
            with pytest.raises(ConnectionClosedError) as closed:
                events = await collect(conn, lambda e: bool(events.append(e)))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
    assert [e["error"]["code"] for e in server.sent] == ["beta_api_shape_disabled"]


async def test_a_turn_detects_speech_and_streams_the_reply() -> None:
    script = FakeScript(reply_audio=REPLY, reply_transcript="It is sunny today.", pace=0)
    async with session(script) as (server, conn):
        await append(conn, utterance().tobytes(), 4800)
        events = await collect(conn, is_type("response.done"))
    kinds = types(events)
    order = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
             "input_audio_buffer.committed", "response.created", "response.output_audio.delta",
             "response.output_audio.done", "response.output_audio_transcript.done",
             "response.done"]
    assert [kinds.index(k) for k in order] == sorted(kinds.index(k) for k in order)
    started = events[kinds.index("input_audio_buffer.speech_started")]
    stopped = events[kinds.index("input_audio_buffer.speech_stopped")]
    assert 190 <= started.audio_start_ms <= 230  # speech at 500 ms, minus 300 ms prefix padding
    assert 1380 <= stopped.audio_end_ms <= 1450  # speech ends at 1100 ms, + 300 ms of silence
    assert stopped.item_id == started.item_id
    assert audio_of(events) == REPLY.tobytes()
    deltas = [e for e in events if e.type == "response.output_audio.delta"]
    assert len({(d.response_id, d.item_id, d.output_index, d.content_index) for d in deltas}) == 1
    words = "".join(e.delta for e in events if e.type == "response.output_audio_transcript.delta")
    assert words.split() == "It is sunny today.".split()
    assert events[-1].response.status == "completed"
    assert server.received_types()[-1] == "input_audio_buffer.append"


async def test_speech_during_a_response_cancels_it() -> None:
    script = FakeScript(reply_audio=to_int16(speech_like(3.0, 24000)), pace=1.0)
    async with session(script) as (server, conn):
        await append(conn, utterance().tobytes(), 4800)
        events = await collect(conn, is_type("response.output_audio.delta"))
        await append(conn, utterance(lead_s=0.0, speech_s=0.2, tail_s=0.0).tobytes(), 2400)
        events += await collect(conn, is_type("response.done"))
    kinds = types(events)
    assert kinds.count("input_audio_buffer.speech_started") == 2
    assert kinds.index("response.done") > kinds.index("input_audio_buffer.speech_started", 1)
    done = events[-1]
    assert done.response.status == "cancelled"
    assert done.response.status_details.reason == "turn_detected"
    assert server.cancelled == [(done.response.id, "turn_detected")]
    assert len(audio_of(events)) < len(script.reply_audio) * 2  # cut short


async def test_truncate_is_checked_against_the_generated_audio() -> None:
    script = FakeScript(reply_audio=REPLY, pace=0)  # 600 ms
    async with session(script) as (server, conn):
        await append(conn, utterance().tobytes(), 4800)
        events = await collect(conn, is_type("response.done"))
        item_id = next(e.item_id for e in events if e.type == "response.output_audio.delta")
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=900)
        (beyond,) = await collect(conn, is_type("error"))
        await conn.conversation.item.truncate(item_id="item_nope", content_index=0,
                                              audio_end_ms=10)
        (unknown,) = await collect(conn, is_type("error"))
        await conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=250)
        (truncated,) = await collect(conn, is_type("conversation.item.truncated"))
    assert beyond.error.code == "invalid_value"
    assert beyond.error.param == "audio_end_ms"
    assert "exceeds" in beyond.error.message and "600ms" in beyond.error.message
    assert unknown.error.code == "invalid_value" and unknown.error.param == "item_id"
    assert (truncated.item_id, truncated.audio_end_ms) == (item_id, 250)
    assert server.truncations == [Truncation(item_id, 250)]


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
async def test_g711_formats_in_and_out(fmt: str) -> None:
    update = {"type": "realtime", "audio": {
        "input": {"format": {"type": fmt}, "turn_detection": {"type": "server_vad"}},
        "output": {"format": {"type": fmt}}}}
    encode = ulaw_encode if fmt == "audio/pcmu" else alaw_encode
    script = FakeScript(reply_audio=REPLY, pace=0)
    async with session(script, update) as (server, conn):
        await append(conn, encode(utterance(rate=8000, tail_s=0.6)), 160)
        events = await collect(conn, is_type("response.done"))
    stopped = next(e for e in events if e.type == "input_audio_buffer.speech_stopped")
    assert 1580 <= stopped.audio_end_ms <= 1650  # on the 8 kHz timeline: 1100 + 500 ms
    audio = audio_of(events)
    assert audio == encode_reply(REPLY, {"type": fmt})
    assert len(audio) == len(resample(REPLY, 24000, 8000)) // 2  # one byte a sample, 8 kHz


async def test_tool_call_round_trip() -> None:
    script = FakeScript(reply_audio=REPLY, pace=0, tool_call=("get_weather", '{"city":"Paris"}'))
    async with session(script) as (server, conn):
        await append(conn, utterance().tobytes(), 4800)
        first = await collect(conn, is_type("response.done"))
        call = next(e for e in first if e.type == "response.function_call_arguments.done")
        parts = [e.delta for e in first if e.type == "response.function_call_arguments.delta"]
        await conn.conversation.item.create(item={
            "type": "function_call_output", "call_id": call.call_id, "output": '{"sky":"clear"}'})
        await collect(conn, is_type("conversation.item.done"))
        await conn.response.create()
        second = await collect(conn, is_type("response.done"))
    assert (call.name, call.arguments) == ("get_weather", '{"city":"Paris"}')
    assert "".join(parts) == call.arguments
    assert audio_of(first) == b"" and first[-1].response.status == "completed"
    assert audio_of(second) == REPLY.tobytes()
    outputs = [e for e in server.received if e["type"] == "conversation.item.create"]
    assert outputs[0]["item"]["call_id"] == call.call_id


async def test_manual_turns_without_vad() -> None:
    update = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    async with session(FakeScript(reply_audio=REPLY, pace=0), update) as (server, conn):
        await conn.input_audio_buffer.commit()
        (empty,) = await collect(conn, is_type("error"))
        await conn.response.cancel()
        (nothing,) = await collect(conn, is_type("error"))
        await append(conn, utterance().tobytes(), 4800)
        await conn.input_audio_buffer.commit()
        events = await collect(conn, is_type("input_audio_buffer.committed"))
        await conn.response.create()
        events += await collect(conn, is_type("response.done"))
    assert empty.error.code == "input_audio_buffer_commit_empty"
    assert nothing.error.code == "response_cancel_not_active"
    assert "input_audio_buffer.speech_started" not in types(events)
    assert audio_of(events) == REPLY.tobytes()


@pytest.mark.parametrize("authorization", ["Bearer ", "Basic dGVzdA=="])
async def test_a_request_without_a_bearer_key_is_refused(authorization: str) -> None:
    async with FakeRealtimeServer() as server:
        client = AsyncOpenAI(api_key="test", websocket_base_url=server.websocket_base_url)
        with pytest.raises(InvalidStatus) as refused:
            async with client.realtime.connect(
                    model=MODEL, extra_headers={"Authorization": authorization}):
                pass
    assert refused.value.response.status_code == 401
    assert server.refused == [(401, "invalid_api_key")]


async def test_scripted_error_reaches_the_sdk() -> None:
    fault = {"type": "server_error", "code": "rate_limit_exceeded", "message": "slow down"}
    async with session(FakeScript(reply_audio=REPLY, pace=0, fail_with_error=fault)) as (_, conn):
        await append(conn, utterance().tobytes(), 4800)
        events = await collect(conn, is_type("error"))
    assert (events[-1].error.code, events[-1].error.message) == ("rate_limit_exceeded",
                                                                 "slow down")
    assert "response.created" not in types(events)


async def test_dropped_connection_reaches_the_sdk() -> None:
    async with session(FakeScript(drop_after_ms=50), update=None) as (server, conn):
        with pytest.raises(ConnectionClosedError) as closed:
            await collect(conn, lambda e: False)
    assert closed.value.rcvd is None  # no close frame: 1006
    assert server.drops == 1


async def test_stalled_server_still_records_but_sends_nothing() -> None:
    async with session(FakeScript(stall=True), update=None) as (server, conn):
        await conn.session.update(session=GA_SESSION)  # type: ignore[arg-type]
        await server.wait_for("session.update", timeout=2.0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(conn.recv(), 0.3)
    assert [e["type"] for e in server.sent] == ["session.created"]


async def test_client_cancel_and_second_response_create() -> None:
    script = FakeScript(reply_audio=to_int16(speech_like(3.0, 24000)), pace=1.0)
    async with session(script, update=None) as (server, conn):
        await conn.response.create()
        events = await collect(conn, is_type("response.output_audio.delta"))
        await conn.response.create()
        (busy,) = [e for e in await collect(conn, is_type("error")) if e.type == "error"]
        await conn.response.cancel()
        events += await collect(conn, is_type("response.done"))
    assert busy.error.code == "conversation_already_has_active_response"
    assert events[-1].response.status == "cancelled"
    assert events[-1].response.status_details.reason == "client_cancelled"
    assert server.cancelled == [(events[-1].response.id, "client_cancelled")]
