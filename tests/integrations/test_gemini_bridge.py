"""GeminiLiveBridge: our SDK in-process, a real gateway, the Gemini Live fake, a caller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
from google import genai  # noqa: E402  (the gemini extra: make test installs it)

from telcoflow import Call, SessionNotification
from telcoflow.integrations.gemini_live import GeminiKeyMissing, GeminiLiveBridge  # noqa: E402
from telcoflow.testing import GatewayThread, Phone
from telcoflow.testing.gemini_fake import FakeLiveServer, LiveScript

from ..interop.signals import assert_follows, chirp, reply_of
from ..sdk.conftest import dialled, manager
from .test_seed_gemini import (
    BARGE_FRAMES,
    at_phone_rate,
    barge_in,
    frames_after,
    silence,
    speech,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

RATE = 16_000
FRAME = RATE // 50
KEY = "secret-gemini-key"


@asynccontextmanager
async def bridged(gw: GatewayThread, server: FakeLiveServer, **options: Any
                  ) -> AsyncIterator[tuple[Phone, asyncio.Task[GeminiLiveBridge]]]:
    """A caller answered by an agent running a bridge; the task ends with the bridge."""
    client = genai.Client(api_key=KEY, http_options=server.http_options())
    done: asyncio.Future[asyncio.Task[GeminiLiveBridge]] = \
        asyncio.get_running_loop().create_future()
    async with manager(gw, RATE) as sm:

        @sm.on_session_notification
        async def offered(notification: SessionNotification) -> None:
            session = await sm.open_session(notification.session_id)

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                assert await call.answer()
                bridge = GeminiLiveBridge(call, client=client, **options)

                async def run() -> GeminiLiveBridge:
                    await bridge.run()
                    return bridge
                done.set_result(asyncio.create_task(run()))

            await session.ready()

        async with dialled(gw, RATE) as phone:
            await phone.wait_answered()
            yield phone, await asyncio.wait_for(done, 10)


async def test_a_turn_with_transcripts() -> None:
    reply = chirp(0.6, 24_000)
    seen: list[tuple[str, str]] = []
    script = LiveScript(reply_audio=reply, reply_delay_ms=20, reply_text="Hello there.",
                        input_text="Hi.")
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server, \
                bridged(gw, server, instructions="Be brief.", voice="Puck",
                        on_transcript=lambda role, text: seen.append((role, text))
                        ) as (phone, task):
            start = phone.frames_received
            await phone.play(np.concatenate([speech(0.4), silence(0.7)]))
            expected = at_phone_rate(reply)
            heard = await reply_of(phone, start, len(expected))
            await phone.hangup()
            bridge = await asyncio.wait_for(task, 10)
        setup = server.setups[0]
    assert bridge.ended_by == "caller"
    assert seen == [("user", "Hi."), ("assistant", "Hello there.")]
    assert setup["systemInstruction"]["parts"][0]["text"] == "Be brief."
    voice = setup["generationConfig"]["speechConfig"]["voiceConfig"]
    assert voice["prebuiltVoiceConfig"]["voiceName"] == "Puck"
    mimes = {m["realtimeInput"]["audio"]["mimeType"] for m in server.received
             if "audio" in m.get("realtimeInput", {})}
    assert mimes == {"audio/pcm;rate=16000"}
    assert_follows(heard, expected)


async def test_barge_in_clears_what_the_caller_would_hear() -> None:
    script = LiveScript(reply_audio=chirp(8.0, 24_000), reply_delay_ms=20, pace=4.0)
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server, bridged(gw, server) as (phone, task):
            _, mark, heard = await barge_in(phone, server)
            await phone.hangup()
            bridge = await asyncio.wait_for(task, 10)
    assert bridge.interruptions == 1
    assert frames_after(heard, mark) <= BARGE_FRAMES


async def hang_up_by_model(options: dict[str, Any]) -> tuple[GeminiLiveBridge, str, list[Any]]:
    """The model calls hang_up on the first turn. With the tool allowed the call ends by
    itself; without, the bridge refuses it and the caller hangs up once it has."""
    script = LiveScript(reply_delay_ms=20, tool_call=("hang_up", {}))
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server, \
                bridged(gw, server, **options) as (phone, task):
            player = asyncio.create_task(phone.play(np.concatenate([speech(0.4), silence(0.7)])))
            reason = await phone.wait_hangup(10) if options else ""
            bridge_or_none = await asyncio.wait_for(task, 10) if options else None
            if not options:
                await server.wait_for(lambda m: "toolResponse" in m)
                await phone.hangup()
                bridge_or_none = await asyncio.wait_for(task, 10)
            await player
        responses = [m["toolResponse"] for m in server.received if "toolResponse" in m]
    assert bridge_or_none is not None
    return bridge_or_none, reason, responses


async def test_hang_up_tool_ends_the_call() -> None:
    bridge, reason, responses = await hang_up_by_model({"tools": {"hang_up"}})
    assert bridge.ended_by == "hang_up" and bridge.tool_calls == ["hang_up"]
    assert reason == "AGENT_HANGUP"  # the gateway hung the caller up, for the agent
    assert responses[0]["functionResponses"][0]["name"] == "hang_up"


async def test_a_tool_not_allowed_is_refused_and_the_call_goes_on() -> None:
    bridge, _, responses = await hang_up_by_model({})
    assert bridge.ended_by == "caller"
    assert "error" in responses[0]["functionResponses"][0]["response"]


async def test_send_dtmf_tool_plays_digits_to_the_caller() -> None:
    script = LiveScript(reply_delay_ms=20, tool_call=("send_dtmf", {"digits": "42#"}))
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server, \
                bridged(gw, server, tools={"send_dtmf"}) as (phone, task):
            player = asyncio.create_task(phone.play(np.concatenate([speech(0.4), silence(0.7)])))
            assert await phone.wait_dtmf(3) == "42#"
            reply = await server.wait_for(lambda m: "toolResponse" in m)
            await player
            await phone.hangup()
            bridge = await asyncio.wait_for(task, 10)
    answer = reply["toolResponse"]["functionResponses"][0]
    assert answer["name"] == "send_dtmf" and "error" not in answer["response"]
    assert bridge.tool_calls == ["send_dtmf"]


async def test_transfer_tool_rings_the_human_line() -> None:
    """transfer_to_human → call.connect: the dialled number's registered line rings."""
    script = LiveScript(reply_delay_ms=20, tool_call=("transfer_to_human", {}))
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with Phone(gw.ws_url, gw.phone_key) as human:
            await human.register(gw.number, codec="pcm16", sample_rate=RATE, answer="manual")
            async with FakeLiveServer(script) as server, \
                    bridged(gw, server, tools={"transfer_to_human"}) as (phone, task):
                player = asyncio.create_task(
                    phone.play(np.concatenate([speech(0.4), silence(0.7)])))
                await human.wait_incoming()
                await human.answer()
                reply = await server.wait_for(lambda m: "toolResponse" in m)
                await player
                await phone.hangup()
                await human.hangup()
                await asyncio.wait_for(task, 10)
    answer = reply["toolResponse"]["functionResponses"][0]
    assert answer["name"] == "transfer_to_human" and "error" not in answer["response"]


async def test_model_socket_drop_ends_the_call_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "telcoflow.integrations")
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(LiveScript(drop_after_ms=200)) as server, \
                bridged(gw, server) as (phone, task):
            await phone.wait_hangup(10)
            bridge = await asyncio.wait_for(task, 10)
        assert server.events == ["dropped"]
    assert bridge.ended_by == "model_closed"
    assert "1006" in caplog.text and KEY not in caplog.text


async def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    fake_call: Any = type("FakeCall", (), {})()
    with pytest.raises(GeminiKeyMissing, match="GEMINI_API_KEY"):
        GeminiLiveBridge(fake_call)


async def test_unknown_tool_refused() -> None:
    make: Callable[..., Any] = GeminiLiveBridge
    with pytest.raises(ValueError, match="unknown tools"):
        make(object(), client=object(), tools={"format_disk"})



async def test_greeting_makes_the_model_speak_first() -> None:
    reply = chirp(0.5, 24_000)
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(LiveScript(reply_audio=reply, reply_delay_ms=20)) as server, \
                bridged(gw, server, greeting="Greet the caller.") as (phone, task):
            heard = await reply_of(phone, 0, len(at_phone_rate(reply)))  # the caller is silent
            await phone.hangup()
            await asyncio.wait_for(task, 10)
        first = next(m["clientContent"] for m in server.received if "clientContent" in m)
    assert first["turns"][0]["parts"][0]["text"] == "Greet the caller."
    assert first["turnComplete"] is True
    assert_follows(heard, at_phone_rate(reply))


async def test_audio_it_cannot_play_is_dropped_logged_once_and_the_call_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "telcoflow.integrations")
    script = LiveScript(reply_audio=chirp(0.4, 24_000), reply_delay_ms=20,
                        reply_mime="audio/opus")
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server, bridged(gw, server) as (phone, task):
            for turn in (1, 2):  # two model turns, 10 chunks each, all unplayable
                await phone.play(np.concatenate([speech(0.4), silence(0.7)]))
                while server.events.count("reply_done") < turn:
                    await phone.wait_frames(phone.frames_received + 1)
            assert not phone.hung_up and not phone.received().any()
            await phone.hangup()
            bridge = await asyncio.wait_for(task, 10)
    assert bridge.rejected_chunks == 20 and bridge.ended_by == "caller"
    errors = [r.getMessage() for r in caplog.records if "dropping such audio" in r.getMessage()]
    assert len(errors) == 1 and "'audio/opus'" in errors[0]


async def test_a_model_that_goes_quiet_ends_the_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "telcoflow.integrations")
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(LiveScript(stall=True)) as server, \
                bridged(gw, server, model_timeout_s=1.0) as (phone, task):
            await phone.play(np.concatenate([speech(0.4), silence(0.6)]))
            assert await phone.wait_hangup(10) == "AGENT_HANGUP"
            bridge = await asyncio.wait_for(task, 10)
        assert "stalled" in server.events
    assert bridge.ended_by == "model_stalled"
    assert "the model has sent nothing since" in caplog.text


async def test_a_message_that_is_not_json_ends_the_call_cleanly(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "telcoflow.integrations")
    script = LiveScript(reply_delay_ms=20, garbage="<html>502 Bad Gateway</html>")
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server, bridged(gw, server) as (phone, task):
            player = asyncio.create_task(phone.play(np.concatenate([speech(0.4), silence(0.7)])))
            assert await phone.wait_hangup(10) == "AGENT_HANGUP"
            bridge = await asyncio.wait_for(task, 10)
            player.cancel()
        assert "garbage" in server.events
    assert bridge.ended_by == "model_closed" and bridge.error
    assert "ending the call" in caplog.text and KEY not in caplog.text
