"""Seed 003's "Connect & Whisper" and "CALL_UNANSWERED" blocks, unchanged, on both SDKs.

The blocks live in ``examples/assistant_agent.py`` exactly as the seed prints
them (the guidance is half a second of a 660 Hz tone).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from telcoflow.testing import GatewayThread, Phone

from ..conftest import ROOT
from .agent_process import AgentProcess
from .conference import AMPLITUDE, FREQS, HEARD, SILENT, agent_command, amplitude, who_is_heard
from .signals import tone

SDKS = ["ours", "published"]
GUIDANCE_HZ = 660.0


def start_agent(sdk: str, refsdk: Path, gw: GatewayThread, block: str) -> AgentProcess:
    cmd, env = agent_command(sdk, refsdk, gw, "seed_call_control.py", block,
                             AGENT_RATE="16000")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"),
                                                      str(ROOT / "examples")]))
    return AgentProcess(cmd, env)


@pytest.mark.asyncio
@pytest.mark.parametrize("sdk", SDKS)
async def test_connect_whisper_close_leaves_caller_and_callee_talking(
        gateway: GatewayThread, refsdk_path: Path, sdk: str) -> None:
    with start_agent(sdk, refsdk_path, gateway, "whisper") as agent:
        await asyncio.to_thread(agent.wait_for, "Connected. Waiting for sessions")
        async with Phone(gateway.ws_url, gateway.phone_key) as line, \
                Phone(gateway.ws_url, gateway.phone_key) as caller:
            await line.register(gateway.number, codec="pcm16", sample_rate=16000,
                                answer_after=0.1)
            await caller.dial(to=gateway.number, caller="+15550001", codec="pcmu")
            await caller.wait_answered(timeout=15)
            await line.wait_answered(timeout=15)
            # the agent whispered, then left: its session closes, the call does not
            await asyncio.to_thread(agent.wait_for, "Session closed: SDK_REQUEST")
            # guidance the gateway accepted still plays out (at most its 0.5 s)
            await line.wait_frames(line.frames_received + 35)
            before_talk = line.frames_received
            await caller.play(tone(FREQS["caller"], 0.6, 8000, AMPLITUDE))
            await line.wait_frames(before_talk + 35)
            callee_heard, caller_heard = line.received(), caller.received()
            assert not line.hung_up and not caller.hung_up
            await caller.hangup()
            assert await line.wait_hangup() == "OTHER_PARTY_HANGUP"
    # the guidance reached the callee only, and the caller still reaches the callee
    assert who_is_heard(caller_heard, 8000) == set()
    caller_frames = caller_heard[:len(caller_heard) // 160 * 160].reshape(-1, 160)
    assert max(amplitude(f, GUIDANCE_HZ, 8000) for f in caller_frames) < SILENT, \
        "the caller heard the whisper"
    assert who_is_heard(callee_heard[before_talk * 320:], 16000) == {"caller"}
    # the seed closes right after send_audio: what the gateway had pulled (its credit,
    # ~120 ms) still plays to the callee after the agent left; the rest never left the SDK
    frames = callee_heard[:before_talk * 320].reshape(-1, 320)
    guidance_frames = sum(amplitude(f, GUIDANCE_HZ, 16000) > HEARD for f in frames)
    assert guidance_frames >= 3


@pytest.mark.asyncio
@pytest.mark.parametrize("sdk", SDKS)
async def test_call_unanswered_block_disconnects(refsdk_path: Path, sdk: str) -> None:
    # the seed rings for 30 s; the operator's cap ends the ringing after 1 s
    with GatewayThread(ring_timeout_s=10.0, connect_ring_cap_s=1.0) as gw, \
            start_agent(sdk, refsdk_path, gw, "unanswered") as agent:
        await asyncio.to_thread(agent.wait_for, "Connected. Waiting for sessions")
        async with Phone(gw.ws_url, gw.phone_key) as line, \
                Phone(gw.ws_url, gw.phone_key) as caller:
            await line.register(gw.number, answer="never")
            await caller.dial(to=gw.number, caller="+15550001")
            await caller.wait_answered(timeout=15)
            await line.wait_incoming(timeout=10)
            assert await line.wait_hangup(timeout=10) == "RING_TIMEOUT"
            assert await caller.wait_hangup(timeout=10) == "AGENT_HANGUP"
            assert line.events.calls_offered == 1
        assert "Connect failed" not in agent.output
