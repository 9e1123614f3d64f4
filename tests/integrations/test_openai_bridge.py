"""The OpenAI Realtime bridge, end to end: a simulated caller, the real gateway, our SDK,
the bridge, the real ``openai`` SDK and the local Realtime fake."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
from openai import AsyncOpenAI  # noqa: E402

from telcoflow import Call, SessionNotification  # noqa: E402
from telcoflow.audio.align import best_lag  # noqa: E402
from telcoflow.audio.resample import resample  # noqa: E402
from telcoflow.audio.synth import speech_like, to_int16  # noqa: E402
from telcoflow.integrations.openai_realtime import (  # noqa: E402
    OpenAIRealtimeBridge,
    OpenAIRealtimeConfigError,
)
from telcoflow.testing import GatewayThread, Phone  # noqa: E402
from telcoflow.testing.openai_fake import FakeRealtimeServer, FakeScript  # noqa: E402

from ..interop.signals import noise, voiced_frames  # noqa: E402
from ..sdk.conftest import dialled, manager  # noqa: E402

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

RATE = 16000
FRAME = RATE // 50  # 20 ms


def heard_ms(phone: Phone) -> int:
    """Milliseconds of (non-silent) agent audio in the caller's recording."""
    return len(voiced_frames(phone.received(), FRAME)) // FRAME * 20


def caught_up_ms(gateway: GatewayThread, phone: Phone) -> int:
    """The reply the gateway's playout took out to catch up (quiet frames skipped, speech
    compressed, a late excess cut: ``docs/benchmarks.md``) on the caller's call: 0 unless
    the gateway's thread stalled. Its playout position, and so the truncation, counts it
    as played: the caller is that far into the reply, in less time."""
    call_id = phone.events.call_id
    reports = gateway.run(lambda: gateway.gateway.engine.live_reports())
    report = next(r for r in reports if r.call_id == call_id)
    return round(1000 * (report.compressed_s + report.skipped_quiet_s + report.cut_late_s))


async def until_heard(phone: Phone, ms: int) -> None:
    while heard_ms(phone) < ms:
        await phone.wait_frames(phone.frames_received + 1)


def utterance(speech_s: float, tail_s: float, seed: int = 11) -> np.ndarray:
    """Loud noise (well above the fake's energy threshold), then silence, at the call rate."""
    return np.concatenate([noise(speech_s, RATE, seed=seed),
                           np.zeros(round(tail_s * RATE), np.int16)])


@asynccontextmanager
async def bridged(gw: GatewayThread, server: FakeRealtimeServer, *, rate: int = RATE,
                  **options: Any,
                  ) -> AsyncIterator[tuple[Phone, OpenAIRealtimeBridge, asyncio.Task[None]]]:
    """A caller whose call an in-process agent answered and bridged to the fake (the
    caller and the agent's call both at ``rate``)."""
    started: asyncio.Future[tuple[OpenAIRealtimeBridge, asyncio.Task[None]]] = (
        asyncio.get_running_loop().create_future())
    async with manager(gw, rate) as sm, dialled(gw, rate) as phone:

        @sm.on_session_notification
        async def offered(notification: SessionNotification) -> None:
            session = await sm.open_session(notification.session_id)

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                assert await call.answer()
                client = AsyncOpenAI(api_key="test", websocket_base_url=server.websocket_base_url)
                bridge = OpenAIRealtimeBridge(call, client=client, **options)
                started.set_result((bridge, asyncio.create_task(bridge.run())))

            await session.ready()

        bridge, run = await asyncio.wait_for(started, 10)
        await phone.wait_answered()
        try:
            yield phone, bridge, run
        finally:
            if not run.done():
                await bridge.call.disconnect()
                await asyncio.wait_for(run, 10)


async def test_with_a_greeting_the_model_speaks_first(gateway: GatewayThread) -> None:
    """An outbound call's callee says nothing worth answering: the agent greets first."""
    reply = to_int16(speech_like(0.4, 24000, seed=6))
    async with FakeRealtimeServer(FakeScript(reply_audio=reply)) as server, bridged(
            gateway, server, greeting="Greet the callee and say who is calling.") as (
            phone, bridge, run):
        await until_heard(phone, 400)  # the caller has not said a word
        created = await server.wait_for("response.create")
        await bridge.call.disconnect()
        await asyncio.wait_for(run, 10)
    assert created["response"]["instructions"] == "Greet the callee and say who is calling."
    assert not [e for e in server.received if e.get("type") == "input_audio_buffer.commit"]


async def test_a_turn_the_callers_speech_gets_the_models_reply(gateway: GatewayThread) -> None:
    reply = to_int16(speech_like(0.8, 24000, seed=3))
    transcripts: list[tuple[str, str]] = []
    script = FakeScript(reply_audio=reply, reply_transcript="Hello there caller")
    async with FakeRealtimeServer(script) as server, bridged(
            gateway, server, instructions="Be brief.", voice="marin",
            on_transcript=lambda role, text: transcripts.append((role, text))) as (
            phone, bridge, run):
        await phone.play(utterance(0.5, 0.7))
        await until_heard(phone, 800)
        await phone.wait_frames(phone.frames_received + 5)
        heard = voiced_frames(phone.received(), FRAME)  # without late-audio fill
        await server.wait_for("input_audio_buffer.append")
        await bridge.call.disconnect()
        await asyncio.wait_for(run, 10)
    expected = np.frombuffer(resample(reply.tobytes(), 24000, RATE), "<i2")
    # less its last frame: the bridge's resampler delays the reply by its filter (~1 ms)
    _, corr = best_lag(heard, expected[:-FRAME])
    assert corr > 0.9, f"the model's reply reached the caller with correlation {corr:.3f}"
    session = server.sessions[0]
    assert session["type"] == "realtime" and session["output_modalities"] == ["audio"]
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["instructions"] == "Be brief." and session["tools"] == []
    assert transcripts == [("assistant", "Hello there caller")]
    stats = bridge.stats
    assert len(stats.latencies_ms) == 1 and 0 <= stats.latencies_ms[0] < 1000
    assert stats.generated_ms == pytest.approx(800, abs=1)
    assert stats.sent_ms == pytest.approx(800, abs=2)
    assert stats.interruptions == 0 and not stats.truncations and not server.truncations
    assert bridge.end_reason == "call_ended"


async def test_barge_in_truncates_the_reply_where_the_caller_stopped_hearing_it(
        gateway: GatewayThread) -> None:
    reply = noise(4.0, 24000, seed=5, amplitude=6000)
    # twice real time: the bridge holds unplayed audio when the caller interrupts
    script = FakeScript(reply_audio=reply, pace=2.0)
    async with FakeRealtimeServer(script) as server, bridged(gateway, server) as (
            phone, bridge, run):
        await phone.play(utterance(0.4, 0.6))
        await until_heard(phone, 500)
        interrupting = asyncio.create_task(phone.play(noise(1.0, RATE, seed=9)))
        truncate = await server.wait_for("conversation.item.truncate", timeout=10)
        await phone.wait_frames(phone.frames_received + 10)  # nothing more of the reply comes
        heard = heard_ms(phone)
        taken = caught_up_ms(gateway, phone)
        interrupting.cancel()
    end_ms = truncate["audio_end_ms"]
    assert abs(end_ms - heard - taken) <= 20, \
        f"truncated at {end_ms} ms; the caller heard {heard} ms (+{taken} ms caught up)"
    assert 500 <= heard < 4000
    generated = next(e for e in server.sent if e["type"] == "response.output_audio.delta")
    assert truncate["item_id"] == generated["item_id"] and truncate["content_index"] == 0
    assert [(t.item_id, t.audio_end_ms) for t in server.truncations] == [
        (truncate["item_id"], end_ms)]
    stats = bridge.stats
    assert stats.interruptions == 1 and stats.truncations == [(truncate["item_id"], end_ms)]
    assert stats.generated_ms > end_ms  # the model had run ahead of what was heard
    print(f"truncate audio_end_ms={end_ms}, caller heard {heard} ms, "
          f"generated {stats.generated_ms:.0f} ms")


async def test_transfer_to_human_rings_the_dialled_numbers_line(gateway: GatewayThread) -> None:
    script = FakeScript(reply_audio=to_int16(speech_like(0.3, 24000, seed=4)),
                        tool_call=("transfer_to_human", "{}"))
    async with FakeRealtimeServer(script) as server, \
            Phone(gateway.ws_url, gateway.phone_key) as human:
        async with bridged(gateway, server, tools={"transfer_to_human", "hang_up"}) as (
                phone, bridge, run):
            await human.register(gateway.number, codec="pcm16", sample_rate=RATE, answer="auto")
            await phone.play(utterance(0.4, 0.7))
            await human.wait_incoming()
            await human.wait_answered()
            output = await server.wait_for(
                lambda e: e["type"] == "conversation.item.create", timeout=10)
            await server.wait_for(lambda e: e["type"] == "response.create", timeout=10)
    names = sorted(t["name"] for t in server.sessions[0]["tools"])
    assert names == ["hang_up", "transfer_to_human"]
    assert output["item"]["type"] == "function_call_output"
    assert output["item"]["output"] == '{"ok": true}'
    assert bridge.stats.tool_calls == [("transfer_to_human", '{"ok": true}')]


async def test_the_model_dropping_ends_the_call_cleanly(gateway: GatewayThread) -> None:
    async with FakeRealtimeServer(FakeScript(drop_after_ms=300)) as server, \
            bridged(gateway, server) as (phone, bridge, run):
        reason = await phone.wait_hangup(10)
        await asyncio.wait_for(run, 10)
    assert server.drops == 1
    assert bridge.end_reason == "model_disconnected"
    assert reason == "AGENT_HANGUP"


async def test_a_missing_api_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    call = Call("id", "a", "b", "ws://x", "t")
    with pytest.raises(OpenAIRealtimeConfigError, match="OPENAI_API_KEY"):
        OpenAIRealtimeBridge(call)
    with pytest.raises(ValueError, match="unknown tools"):
        OpenAIRealtimeBridge(call, client=AsyncOpenAI(api_key="x"), tools={"format_disk"})


async def test_a_fatal_model_error_ends_the_call_and_the_log_holds_no_key(
        gateway: GatewayThread, caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-proj-abcdefghijklmnop0123456789"
    script = FakeScript(fail_with_error={
        "type": "invalid_request_error", "code": "invalid_api_key",
        "message": f"Incorrect API key provided: {key}."})
    caplog.set_level("INFO", logger="telcoflow.integrations")
    async with FakeRealtimeServer(script) as server, \
            bridged(gateway, server) as (phone, bridge, run):
        await phone.play(utterance(0.4, 0.7))
        reason = await phone.wait_hangup(10)
        await asyncio.wait_for(run, 10)
    assert reason == "AGENT_HANGUP" and bridge.end_reason == "model_error"
    assert bridge.stats.errors and "invalid_api_key" in bridge.stats.errors[0]
    assert "invalid_api_key" in caplog.text and key not in caplog.text
    assert "abcdefghijklmnop" not in caplog.text


async def test_send_dtmf_and_hang_up_tools(gateway: GatewayThread) -> None:
    script = FakeScript(reply_audio=to_int16(speech_like(0.3, 24000, seed=4)),
                        tool_call=("send_dtmf", '{"digits": "12#"}'))
    async with FakeRealtimeServer(script) as server, bridged(
            gateway, server, tools={"send_dtmf"}) as (phone, bridge, run):
        await phone.play(utterance(0.4, 0.7))
        assert await phone.wait_dtmf(3) == "12#"
        await server.wait_for("response.create", timeout=10)
    assert bridge.stats.tool_calls == [("send_dtmf", '{"ok": true}')]
    script = FakeScript(tool_call=("hang_up", "{}"))
    async with FakeRealtimeServer(script) as server, bridged(
            gateway, server, tools={"hang_up"}) as (phone, bridge, run):
        await phone.play(utterance(0.4, 0.7))
        assert await phone.wait_hangup(10) == "AGENT_HANGUP"
        await asyncio.wait_for(run, 10)
    assert bridge.end_reason == "call_ended"
    assert [name for name, _ in bridge.stats.tool_calls] == ["hang_up"]


async def test_a_model_that_goes_quiet_ends_the_call_but_a_quiet_caller_does_not(
        gateway: GatewayThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="telcoflow.integrations")
    # the model answers: 2 s of silence after its reply is the caller's business
    script = FakeScript(reply_audio=to_int16(speech_like(0.3, 24000, seed=4)))
    async with FakeRealtimeServer(script) as server, bridged(
            gateway, server, model_timeout_s=1.0) as (phone, bridge, run):
        await phone.play(utterance(0.4, 0.7))
        await until_heard(phone, 200)
        await phone.play(np.zeros(2 * RATE, np.int16))
        assert not phone.hung_up and not run.done()
    # the socket stays open, the model sends nothing: 1 s after the caller stopped, it ends
    async with FakeRealtimeServer(FakeScript(stall=True)) as server, bridged(
            gateway, server, model_timeout_s=1.0) as (phone, bridge, run):
        await phone.play(utterance(0.4, 0.2))
        assert await phone.wait_hangup(10) == "AGENT_HANGUP"
        await asyncio.wait_for(run, 10)
    assert bridge.end_reason == "model_stalled"
    assert "the model has sent nothing since" in caplog.text


async def test_audio_that_is_not_base64_is_dropped_and_logged_once(
        gateway: GatewayThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="telcoflow.integrations")
    script = FakeScript(reply_audio=to_int16(speech_like(0.4, 24000, seed=4)),
                        corrupt_audio=True, chunk_ms=40)
    async with FakeRealtimeServer(script) as server, \
            bridged(gateway, server) as (phone, bridge, run):
        await phone.play(utterance(0.4, 0.7))
        while not any(e["type"] == "response.done" for e in server.sent):
            await phone.wait_frames(phone.frames_received + 1)
        assert not phone.hung_up and heard_ms(phone) == 0
    assert bridge.stats.rejected_chunks == 10
    assert caplog.text.count("dropping such audio") == 1 and "not base64" in caplog.text


async def test_an_event_that_is_not_json_ends_the_call_cleanly(
        gateway: GatewayThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="telcoflow.integrations")
    async with FakeRealtimeServer(FakeScript(garbage="<html>502 Bad Gateway</html>")) as server, \
            bridged(gateway, server) as (phone, bridge, run):
        await phone.play(utterance(0.4, 0.7))
        assert await phone.wait_hangup(10) == "AGENT_HANGUP"
        await asyncio.wait_for(run, 10)
    assert bridge.end_reason == "model_error"
    assert "ending the call" in caplog.text and "JSONDecodeError" in caplog.text


async def test_an_8khz_call_talks_g711_to_the_model_and_truncates_exactly(
        gateway: GatewayThread) -> None:
    """μ-law both ways, no resampling; played positions and truncation still exact."""
    reply = noise(4.0, 24000, seed=5, amplitude=6000)
    async with FakeRealtimeServer(FakeScript(reply_audio=reply, pace=2.0)) as server, \
            bridged(gateway, server, rate=8000) as (phone, bridge, run):
        await phone.play(np.concatenate([noise(0.4, 8000, seed=11),
                                         np.zeros(4800, np.int16)]))
        while len(voiced_frames(phone.received(), 160)) < 160 * 25:  # 500 ms of the reply
            await phone.wait_frames(phone.frames_received + 1)
        interrupting = asyncio.create_task(phone.play(noise(1.0, 8000, seed=9)))
        truncate = await server.wait_for("conversation.item.truncate", timeout=10)
        await phone.wait_frames(phone.frames_received + 10)
        heard = len(voiced_frames(phone.received(), 160)) // 160 * 20
        heard += caught_up_ms(gateway, phone)
        interrupting.cancel()
        appended = await server.wait_for("input_audio_buffer.append")
    session = server.sessions[0]
    assert bridge.g711
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert len(base64.b64decode(appended["audio"])) == 160  # 20 ms of μ-law, not 24 kHz PCM
    assert abs(truncate["audio_end_ms"] - heard) <= 20
    assert bridge.stats.generated_ms > truncate["audio_end_ms"]
    with pytest.raises(ValueError, match="8000 Hz"):
        OpenAIRealtimeBridge(Call("id", "a", "b", "ws://x", "t"), client=AsyncOpenAI(api_key="x"),
                             g711=True)
