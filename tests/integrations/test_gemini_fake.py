"""The Gemini Live fake, driven by the real google-genai SDK (and raw websockets for what
the SDK cannot send)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import websockets
from google import genai  # noqa: E402  (the gemini extra: make test installs it)
from google.genai import errors, types  # noqa: E402
from websockets.asyncio.client import connect as ws_connect

from telcoflow.testing.gemini_fake import FakeLiveServer, LiveScript, tone

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

MODEL = "gemini-live-2.5-flash-preview"


def speech(ms: int, rate: int = 16_000) -> bytes:
    return tone(ms / 1000, 300.0, rate).tobytes()


def silence(ms: int, rate: int = 16_000) -> bytes:
    return bytes(2 * (rate * ms // 1000))


async def send_pcm(session: Any, pcm: bytes, rate: int = 16_000, chunk_ms: int = 100) -> None:
    step = 2 * rate * chunk_ms // 1000
    for i in range(0, len(pcm), step):
        await session.send_realtime_input(
            audio=types.Blob(data=pcm[i:i + step], mime_type=f"audio/pcm;rate={rate}"))


def client_for(server: FakeLiveServer, key: str = "test") -> Any:
    return genai.Client(api_key=key, http_options=server.http_options())


async def test_setup_and_setup_complete() -> None:
    async with FakeLiveServer(LiveScript(session_id="s-1")) as server:
        config = {"response_modalities": ["AUDIO"], "system_instruction": "Be brief.",
                  "realtime_input_config": {"activity_handling": "START_OF_ACTIVITY_INTERRUPTS"}}
        async with client_for(server).aio.live.connect(model=MODEL, config=config) as session:
            assert session.session_id == "s-1"
        req = server.requests[0]
        # google-genai 3 dials v1, 2.x (what google-adk pins) v1beta
        assert req.path in (server.path, server.path.replace(".v1.", ".v1beta."))
        assert req.headers["x-goog-api-key"] == "test"
        setup = server.setups[0]
        assert setup["model"] == f"models/{MODEL}"
        assert setup["generationConfig"]["responseModalities"] == ["AUDIO"]
        assert setup["systemInstruction"]["parts"][0]["text"] == "Be brief."
        assert setup["realtimeInputConfig"]["activityHandling"] == "START_OF_ACTIVITY_INTERRUPTS"
        assert server.sent[0] == {"setupComplete": {"sessionId": "s-1"}}


async def test_unchanged_program_pointed_by_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeLiveServer() as server:
        for name in ("GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_API_VERSION"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("GEMINI_API_KEY", "from-env")
        for name, value in server.env().items():  # GOOGLE_GEMINI_BASE_URL, SSL_CERT_FILE
            monkeypatch.setenv(name, value)
        async with genai.Client().aio.live.connect(model=MODEL) as session:
            assert session.setup_complete is not None
        assert server.requests[0].headers["x-goog-api-key"] == "from-env"


@pytest.mark.parametrize("rate", [16_000, 8_000])
async def test_turn_speech_then_silence_gets_the_scripted_reply(rate: int) -> None:
    reply = tone(0.4, 660.0)
    script = LiveScript(reply_audio=reply, reply_delay_ms=20, pace=20.0,
                        reply_text="Hello there.", input_text="Hi.")
    config = {"response_modalities": ["AUDIO"], "input_audio_transcription": {},
              "output_audio_transcription": {}}
    async with FakeLiveServer(script) as server:
        async with client_for(server).aio.live.connect(model=MODEL, config=config) as session:
            await send_pcm(session, speech(300, rate) + silence(600, rate), rate)
            audio = bytearray()
            seen: list[str] = []
            usage = None
            async for msg in session.receive():  # ends at turnComplete
                sc = msg.server_content
                assert sc is not None
                if sc.input_transcription:
                    seen.append(f"in:{sc.input_transcription.text}")
                if sc.output_transcription:
                    seen.append(f"out:{sc.output_transcription.text}")
                if sc.model_turn:
                    for part in sc.model_turn.parts or []:
                        assert part.inline_data is not None
                        assert part.inline_data.mime_type == "audio/pcm;rate=24000"
                        audio.extend(part.inline_data.data or b"")
                if sc.generation_complete:
                    seen.append("generationComplete")
                if sc.turn_complete:
                    seen.append("turnComplete")
                    usage = msg.usage_metadata
        assert bytes(audio) == reply.tobytes()
        assert seen == ["in:Hi.", "out:Hello there.", "generationComplete", "turnComplete"]
        assert usage is not None and usage.total_token_count
        assert server.events[:2] == ["speech_started", "speech_ended"]
        # The SDK sends snake_case top-level keys and URL-safe base64: both understood.
        assert len(server.audio_in) == len(speech(300, rate) + silence(600, rate))
        assert json.loads(server.received_raw[1])["realtime_input"]["audio"]["mime_type"] \
            == f"audio/pcm;rate={rate}"
        assert server.received[1]["realtimeInput"]["audio"]["mimeType"] == f"audio/pcm;rate={rate}"


async def test_barge_in_interrupts_the_reply() -> None:
    reply = tone(3.0, 660.0)  # real-time pace: still playing when the caller speaks
    async with FakeLiveServer(LiveScript(reply_audio=reply, reply_delay_ms=0)) as server:
        async with client_for(server).aio.live.connect(model=MODEL, config={}) as session:
            await send_pcm(session, speech(200) + silence(600))
            audio = bytearray()
            barged = False
            async for msg in session.receive():
                sc = msg.server_content
                assert sc is not None
                if sc.model_turn and not barged:
                    audio.extend(sc.model_turn.parts[0].inline_data.data)  # type: ignore[index,union-attr]
                    barged = True
                    await send_pcm(session, speech(100))
                if sc.interrupted:
                    break
            else:
                pytest.fail("no interrupted")
        assert 0 < len(audio) < len(reply.tobytes())
        assert server.events == ["speech_started", "speech_ended", "reply_started",
                                 "speech_started", "interrupted"]


async def test_manual_activity_signals() -> None:
    script = LiveScript(reply_audio=tone(0.1), reply_delay_ms=0, pace=float("inf"))
    config = {"realtime_input_config": {"automatic_activity_detection": {"disabled": True}}}
    async with FakeLiveServer(script) as server:
        async with client_for(server).aio.live.connect(model=MODEL, config=config) as session:
            await session.send_realtime_input(activity_start=types.ActivityStart())
            await send_pcm(session, silence(100))
            await session.send_realtime_input(activity_end=types.ActivityEnd())
            n = 0
            async for msg in session.receive():
                n += bool(msg.server_content and msg.server_content.model_turn)
        assert n == 3  # 100 ms in 40 ms chunks
        assert {"realtimeInput": {"activityStart": {}}} in server.received


@pytest.mark.parametrize(("model", "turns"), [(MODEL, 2), ("gemini-3.1-flash-live-preview", 1)])
async def test_tool_call_round_trip(model: str, turns: int) -> None:
    """A 2.x model ends its turn at the tool call (turnComplete), a 3.x one goes on once
    it has the response: google-adk waits for the first, so the fake does both."""
    reply = tone(0.2)
    script = LiveScript(reply_audio=reply, reply_delay_ms=0, pace=float("inf"),
                        tool_call=("get_weather", {"city": "Paris"}))
    config = {"tools": [{"function_declarations": [{
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}}]}]}
    async with FakeLiveServer(script) as server:
        async with client_for(server).aio.live.connect(model=model, config=config) as session:
            await send_pcm(session, speech(200) + silence(600))
            audio = bytearray()
            calls = []
            received_turns = 0
            while len(audio) < len(reply) * 2:  # a 2.x model's turn ends at its tool call
                received_turns += 1
                async for msg in session.receive():
                    if msg.tool_call:
                        fc = msg.tool_call.function_calls[0]  # type: ignore[index]
                        calls.append((fc.name, fc.args))
                        assert not audio
                        await session.send_tool_response(
                            function_responses=types.FunctionResponse(
                                id=fc.id, name=fc.name, response={"temp_c": 18}))
                    elif msg.server_content and msg.server_content.model_turn:
                        audio.extend(msg.server_content.model_turn.parts[0].inline_data.data)  # type: ignore[index,union-attr,arg-type]
        assert received_turns == turns
        assert calls == [("get_weather", {"city": "Paris"})]
        assert bytes(audio) == reply.tobytes()
        sent_id = next(m["toolCall"]["functionCalls"][0]["id"] for m in server.sent
                       if "toolCall" in m)
        resp = await server.wait_for(lambda m: "toolResponse" in m, timeout=1)
        fr = resp["toolResponse"]["functionResponses"][0]
        assert fr["id"] == sent_id and fr["response"] == {"temp_c": 18}
        assert server.setups[0]["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


async def test_wrong_key_refused() -> None:
    async with FakeLiveServer(api_key="right") as server:
        with pytest.raises(errors.APIError) as err:
            async with client_for(server, key="wrong").aio.live.connect(model=MODEL):
                pass
        assert err.value.code == 1007
        assert "API key not valid" in str(err.value)


async def test_missing_key_and_wrong_path_refused() -> None:
    async with FakeLiveServer() as server:
        async with ws_connect(server.url, ssl=server.ssl_context()) as ws:
            await ws.send(json.dumps({"setup": {"model": f"models/{MODEL}"}}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        with pytest.raises(websockets.InvalidStatus) as status:
            async with ws_connect(server.url.replace("v1.", "v9."), ssl=server.ssl_context(),
                                  additional_headers={"x-goog-api-key": "k"}):
                pass
        assert status.value.response.status_code == 404


@pytest.mark.parametrize("first, words", [
    ({"setup": {"model": f"models/{MODEL}", "bogus": 1}}, 'Unknown name "bogus"'),
    ({"setup": {"model": MODEL}}, "models/"),
    ({"realtimeInput": {"audioStreamEnd": True}}, "first message must be a setup"),
])
async def test_invalid_setup_closes_with_a_reason(first: dict[str, Any], words: str) -> None:
    async with FakeLiveServer() as server:
        async with ws_connect(server.url, ssl=server.ssl_context(),
                              additional_headers={"x-goog-api-key": "k"}) as ws:
            await ws.send(json.dumps(first))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        assert words in closed.value.rcvd.reason


async def test_invalid_setup_through_the_sdk() -> None:
    async with FakeLiveServer() as server:
        with pytest.raises(errors.APIError) as err:
            async with client_for(server).aio.live.connect(
                    model=MODEL, config={"response_modalities": ["TEXT"]}):
                pass
        assert err.value.code == 1007


async def test_go_away_then_close_seen_by_the_sdk() -> None:
    script = LiveScript(go_away_after_ms=50, go_away_time_left_ms=50)
    async with FakeLiveServer(script) as server:
        async with client_for(server).aio.live.connect(model=MODEL) as session:
            seen = []
            with pytest.raises(errors.APIError) as err:
                async for msg in session.receive():
                    seen.append(msg)
        assert seen[0].go_away is not None and seen[0].go_away.time_left == "0.050s"
        assert err.value.code == 1000
        assert server.events == ["go_away_closed"]


async def test_drop_seen_by_the_sdk() -> None:
    async with FakeLiveServer(LiveScript(drop_after_ms=50)) as server:
        async with client_for(server).aio.live.connect(model=MODEL) as session:
            with pytest.raises(errors.APIError) as err:
                async for _ in session.receive():
                    pass
        assert err.value.code == 1006
        assert server.events == ["dropped"]


async def test_reply_audio_is_pcm16() -> None:
    assert tone(0.1).dtype == np.int16 and len(tone(0.1)) == 2400


async def test_speech_during_a_pending_tool_call_cancels_it() -> None:
    script = LiveScript(reply_delay_ms=0, tool_call=("lookup", {"q": "x"}))
    async with FakeLiveServer(script) as server:
        async with client_for(server).aio.live.connect(model=MODEL) as session:
            await send_pcm(session, speech(200) + silence(600))
            async for msg in session.receive():
                if msg.tool_call:
                    call_id = msg.tool_call.function_calls[0].id  # type: ignore[index]
                    await send_pcm(session, speech(100))
                if msg.tool_call_cancellation:
                    assert msg.tool_call_cancellation.ids == [call_id]
                    break
        assert "reply_started" not in server.events


async def test_ephemeral_token() -> None:
    async with FakeLiveServer() as server:
        client = genai.Client(api_key="auth_tokens/abc",
                              http_options=server.http_options(api_version="v1alpha"))
        with pytest.warns(errors.ExperimentalWarning):
            async with client.aio.live.connect(model=MODEL) as session:
                assert session.setup_complete is not None
        req = server.requests[0]
        assert req.path.endswith("v1alpha.GenerativeService.BidiGenerateContentConstrained")
        assert req.headers["Authorization"] == "Token auth_tokens/abc"
