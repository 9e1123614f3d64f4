"""The published SDK's Quick Start echo agent, against our gateway, with a simulated caller."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from telcoflow.testing import GatewayThread, Phone

from ..conftest import refsdk_command, refsdk_env
from .agent_process import AgentProcess
from .signals import best_lag, chirp, echo_of, noise

QUICKSTART = Path(__file__).parent / "agents" / "quickstart_echo.py"


async def echo_call(gw: GatewayThread, signal: np.ndarray, codec: str, rate: int,
                    exact: bool = False) -> np.ndarray:
    """What the caller heard after playing ``signal``: all of it (``exact``: only the
    voiced frames, once the whole echo is back), or the 0.5 s after the signal."""
    async with Phone(gw.ws_url, gw.phone_key) as phone:
        await phone.dial(to=gw.number, caller="+15550001", codec=codec, sample_rate=rate)
        await phone.wait_answered(timeout=15)
        start = phone.frames_received
        await phone.play(signal)
        if exact:
            heard = await echo_of(phone, start, len(signal))
        else:
            # everything played, plus half a second for the echo to come back
            await phone.wait_frames(start + len(signal) // (rate // 50) + 25, timeout=15)
            heard = phone.received()[start * (rate // 50):]
        await phone.hangup()
    return heard


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", [8000, 16000, 24000])
async def test_echo_is_sample_exact_when_rates_match(gateway: GatewayThread, refsdk_path: Path,
                                                     rate: int) -> None:
    env = refsdk_env(refsdk_path, gateway, AGENT_RATE=str(rate))
    with AgentProcess(refsdk_command(QUICKSTART), env) as agent:
        agent.wait_for("Connected. Waiting for sessions")
        sent = noise(1.0, rate)
        heard = await echo_call(gateway, sent, "pcm16", rate, exact=True)
        await asyncio.to_thread(agent.wait_for, "terminated")
    # nothing but the echo was heard, every frame of it, in order, bit for bit
    assert np.array_equal(heard, sent), "echo differs from what was played"


@pytest.mark.asyncio
@pytest.mark.parametrize(("codec", "phone_rate", "agent_rate"),
                         [("pcm16", 8000, 24000), ("pcmu", 8000, 16000), ("pcm16", 48000, 16000)])
async def test_echo_survives_rate_and_codec_change(gateway: GatewayThread, refsdk_path: Path,
                                                   codec: str, phone_rate: int,
                                                   agent_rate: int) -> None:
    env = refsdk_env(refsdk_path, gateway, AGENT_RATE=str(agent_rate))
    with AgentProcess(refsdk_command(QUICKSTART), env) as agent:
        agent.wait_for("Connected. Waiting for sessions")
        sent = chirp(1.0, phone_rate, f1=min(3000.0, phone_rate * 0.4))
        heard = await echo_call(gateway, sent, codec, phone_rate)
    _, correlation = best_lag(heard, sent)
    assert correlation > 0.99, f"correlation {correlation:.4f}"
