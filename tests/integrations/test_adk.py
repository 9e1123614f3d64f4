"""``telcoflow agent adk`` (AdkBridge on Google ADK's ``Runner.run_live``), as a user runs it.

The agent runs in a process whose ``PYTHONPATH`` starts with google-adk 2.13 and the
versions it pins (websockets 15, google-genai 2: ``tests/adkenv.py``); ADK reaches the
local Gemini Live fake through google-genai's own settings (``GOOGLE_GEMINI_BASE_URL``,
``SSL_CERT_FILE``). A real gateway and a simulated caller are in this process.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from telcoflow.testing import GatewayThread, Phone
from telcoflow.testing.gemini_fake import FakeLiveServer, LiveScript

from ..adkenv import adk_env, ensure_adk
from ..interop.agent_process import AgentProcess
from ..interop.signals import assert_follows, best_lag, chirp, reply_of
from .test_seed_gemini import (
    BARGE_FRAMES,
    at_phone_rate,
    barge_in,
    caller,
    frames_after,
    one_turn,
    silence,
    speech,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

RATE = 16_000
KEY = "secret-adk-key"
READY = "waiting for calls"


@pytest.fixture(scope="module", autouse=True)
def adk_installed() -> Path:
    return ensure_adk()  # make test installs it first; a bare pytest run may wait here once


@contextmanager
def adk_agent(gw: GatewayThread, server: FakeLiveServer, out: Path,
              *args: str) -> Iterator[AgentProcess]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WSS_", "GEMINI", "GOOGLE"))}
    env.update(WSS_API_KEY=gw.api_key, WSS_CONNECTOR_UUID=gw.connector_uuid,
               TELCOFLOW_BASE_URL=gw.ws_url, GEMINI_API_KEY=KEY,
               TELCOFLOW_CREDENTIALS=str(out / "none.json"), **server.env())
    cmd = [sys.executable, "-m", "telcoflow.cli.main", "agent", "adk", "--out", str(out), *args]
    with AgentProcess(cmd, adk_env(env)) as agent:
        agent.wait_for(READY, 30)
        yield agent


def read_report(line: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(line.rsplit("report in ", 1)[1].strip()).read_text())
    return data


async def report_of(agent: AgentProcess) -> dict[str, Any]:
    line = await asyncio.to_thread(agent.wait_for, "report in")
    return await asyncio.to_thread(read_report, line)


def stereo(path: str) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(path) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 24_000)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    return pcm[:, 0], pcm[:, 1]


async def test_a_turn_with_transcripts_report_and_recording(tmp_path: Path) -> None:
    reply = chirp(0.8, 24_000)
    script = LiveScript(reply_audio=reply, reply_delay_ms=20, reply_text="Hello there.",
                        input_text="Hi.")
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server:
            with adk_agent(gw, server, tmp_path, "--instructions", "Be brief.",
                           "--voice", "Puck") as agent:
                heard, expected = await one_turn(gw, reply)
                report = await report_of(agent)
                output = agent.output
        setup = server.setups[0]
    assert_follows(heard, expected)
    assert report["backend"] == "adk" and report["ended_by"] == "caller"
    said = [(t["role"], t["text"]) for t in report["transcript"]]
    assert ("user", "Hi.") in said and ("assistant", "Hello there.") in said
    # ADK appends its own line about the agent's name
    assert setup["systemInstruction"]["parts"][0]["text"].startswith("Be brief.\n")
    voice = setup["generationConfig"]["speechConfig"]["voiceConfig"]
    assert voice["prebuiltVoiceConfig"]["voiceName"] == "Puck"
    chunks = [c for m in server.received if "realtimeInput" in m
              for c in m["realtimeInput"].get("mediaChunks", [])]  # ADK's (legacy) field
    assert chunks and {c["mimeType"] for c in chunks} == {"audio/pcm;rate=16000"}
    assert report["stats"]["sent_ms"] >= 780 and report["stats"]["rejected_chunks"] == 0
    # seed 004's monitor on both sides: the caller spoke 0.4 s, the model 0.8 s
    caller_q, agent_q = report["quality"]["caller"], report["quality"]["agent"]
    assert caller_q["duration_seconds"] > 1.0 and caller_q["average_quality_score"] is not None
    assert 0.7 <= agent_q["duration_seconds"] <= 0.9
    # the recording: the caller's speech on the left, the model's reply on the right
    left, right = stereo(report["recording"])
    assert np.abs(left).max() > 2000
    # as sent, unresampled; a chunk that came late left a gap (exact zeros) before it
    sent = reply[:len(reply) * 7 // 8]
    assert best_lag(right[right != 0], sent[sent != 0])[1] > 0.99
    assert KEY not in output and gw.api_key not in output


async def test_barge_in_clears_the_reply(tmp_path: Path) -> None:
    script = LiveScript(reply_audio=chirp(8.0, 24_000), reply_delay_ms=20, pace=4.0)
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server:
            with adk_agent(gw, server, tmp_path) as agent:
                async with caller(gw) as phone:
                    _, mark, heard = await barge_in(phone, server)
                    await phone.hangup()
                report = await report_of(agent)
    assert frames_after(heard, mark) <= BARGE_FRAMES
    assert report["stats"]["interruptions"] == 1
    # generated at four times real time, far more than was heard; the recording holds
    # what the caller heard, not all that was sent
    left, right = stereo(report["recording"])
    assert report["stats"]["sent_ms"] > 2 * report["played_ms"]
    frames = right[:len(right) // 480 * 480].reshape(-1, 480)
    voiced_ms = np.count_nonzero(np.abs(frames).max(axis=1) > 0) * 20
    assert voiced_ms < report["stats"]["sent_ms"] / 2


async def test_hang_up_tool_ends_the_call(tmp_path: Path) -> None:
    script = LiveScript(reply_delay_ms=20, tool_call=("hang_up", {}))
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server:
            with adk_agent(gw, server, tmp_path, "--tools", "hang_up") as agent:
                async with caller(gw) as phone:
                    player = asyncio.create_task(
                        phone.play(np.concatenate([speech(0.4), silence(0.7)])))
                    reason = await phone.wait_hangup(15)
                    player.cancel()
                report = await report_of(agent)
        declared = server.setups[0]["tools"][0]["functionDeclarations"]
    assert reason == "AGENT_HANGUP"
    assert [d["name"] for d in declared] == ["hang_up"]
    assert report["ended_by"] == "hang_up" and report["stats"]["tool_calls"] == 1


async def test_transfer_tool_rings_the_human_line(tmp_path: Path) -> None:
    script = LiveScript(reply_delay_ms=20, tool_call=("transfer_to_human", {}))
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with Phone(gw.ws_url, gw.phone_key) as human:
            await human.register(gw.number, codec="pcm16", sample_rate=RATE, answer="manual")
            async with FakeLiveServer(script) as server:
                with adk_agent(gw, server, tmp_path, "--tools",
                               "transfer_to_human,hang_up") as agent:
                    async with caller(gw) as phone:
                        player = asyncio.create_task(
                            phone.play(np.concatenate([speech(0.4), silence(0.7)])))
                        await human.wait_incoming(15)
                        await human.answer()
                        reply = await server.wait_for(lambda m: "toolResponse" in m, 15)
                        await player
                        await phone.hangup()
                    await human.hangup()
                    await report_of(agent)
    answer = reply["toolResponse"]["functionResponses"][0]
    assert answer["name"] == "transfer_to_human" and answer["response"] == {"result": "ok"}


async def test_greeting_speaks_first(tmp_path: Path) -> None:
    reply = chirp(0.5, 24_000)
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(LiveScript(reply_audio=reply, reply_delay_ms=20)) as server:
            with adk_agent(gw, server, tmp_path, "--greeting", "Greet the caller.") as agent:
                async with caller(gw) as phone:  # the caller says nothing
                    heard = await reply_of(phone, 0, len(at_phone_rate(reply)))
                    await phone.hangup()
                await report_of(agent)
        first = next(m["clientContent"] for m in server.received if "clientContent" in m)
    assert first["turns"][0]["parts"][0]["text"] == "Greet the caller."
    assert_follows(heard, at_phone_rate(reply))


async def test_audio_it_cannot_play_is_dropped_and_logged_once(tmp_path: Path) -> None:
    script = LiveScript(reply_audio=chirp(0.4, 24_000), reply_delay_ms=20,
                        reply_mime="audio/mpeg")
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server:
            with adk_agent(gw, server, tmp_path) as agent:
                async with caller(gw) as phone:
                    await phone.play(np.concatenate([speech(0.4), silence(0.7)]))
                    await asyncio.to_thread(agent.wait_for, "dropping such audio")
                    assert not phone.hung_up  # the call goes on
                    await phone.hangup()
                report = await report_of(agent)
                output = agent.output
    assert "'audio/mpeg'" in output and output.count("dropping such audio") == 1
    assert report["stats"]["rejected_chunks"] >= 1 and report["stats"]["sent_ms"] == 0


async def test_model_socket_drop_ends_the_call_and_the_agent_serves_on(tmp_path: Path) -> None:
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(LiveScript(drop_after_ms=200)) as server:
            with adk_agent(gw, server, tmp_path) as agent:
                async with caller(gw) as phone:
                    assert await phone.wait_hangup(15) == "AGENT_HANGUP"
                report = await report_of(agent)
                reply = chirp(0.5, 24_000)
                server.script = LiveScript(reply_audio=reply, reply_delay_ms=20)
                heard, expected = await one_turn(gw, reply)
                output = agent.output
    assert report["ended_by"] == "model_closed" and report["stats"]["error"]
    assert "ending the call" in output and KEY not in output
    assert_follows(heard, expected)


async def test_a_model_that_goes_quiet_ends_the_call(tmp_path: Path) -> None:
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(LiveScript(stall=True)) as server:
            with adk_agent(gw, server, tmp_path, "--model-timeout", "1") as agent:
                async with caller(gw) as phone:
                    await phone.play(np.concatenate([speech(0.4), silence(0.6)]))
                    assert await phone.wait_hangup(15) == "AGENT_HANGUP"
                report = await report_of(agent)
    assert report["ended_by"] == "model_stalled"
    assert "sent nothing since" in report["stats"]["error"]
