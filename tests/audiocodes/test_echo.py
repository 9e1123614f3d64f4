"""A VAIC caller's audio comes back from an echoing agent, in every format, at every agent rate."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from telcoflow.testing import GatewayThread

from ..interop.agent_process import scenario_agent, wait_mark
from ..interop.signals import best_lag, chirp, noise
from .conftest import agent, vaic

TAIL_S = 0.3  # silence played after the signal, so resamplers give up their last samples


async def echo_through(gw: GatewayThread, fmt: str, agent_rate: int = 48000,
                       seconds: float = 0.5) -> tuple[np.ndarray, np.ndarray, int]:
    """White noise when no hop changes rate or codec; otherwise a chirp under the
    narrowest hop's Nyquist frequency (noise above it is filtered out, as it must be)."""
    async with vaic(gw, fmt) as caller:
        await caller.dial("any-bot", "+15550001")
        await caller.wait_answered(timeout=10)
        assert caller.format is not None and caller.format.name == fmt
        rate = caller.rate
        if agent_rate == rate and fmt != "raw/mulaw":
            sent = noise(seconds, rate, amplitude=6000)
        else:
            sent = chirp(seconds, rate, f1=min(3000.0, min(rate, agent_rate) * 0.4))
        await caller.play(np.concatenate([sent, np.zeros(int(TAIL_S * rate), np.int16)]))
        heard = await caller.wait_received(len(sent) + int(0.2 * rate), timeout=10)
        await caller.hangup()
    return sent, heard, rate


@pytest.mark.asyncio
@pytest.mark.parametrize(("fmt", "agent_rate"), [
    ("raw/lpcm16", 16000), ("raw/lpcm16_24", 24000), ("raw/mulaw", 8000),
    ("raw/lpcm16", 8000), ("raw/lpcm16_24", 16000), ("raw/mulaw", 24000),
    ("raw/lpcm16_8", 16000)])
async def test_echo_correlates_in_every_format(gw: GatewayThread, fmt: str,
                                               agent_rate: int) -> None:
    async with agent(gw, rate=agent_rate) as seen:
        sent, heard, rate = await echo_through(gw, fmt, agent_rate)
        await asyncio.wait_for(seen.terminated.wait(), 5)
    lag, correlation = best_lag(heard, sent)
    assert correlation > 0.99, f"{fmt} via a {agent_rate} Hz agent: {correlation:.4f}"
    assert lag < rate // 2, f"the echo came {lag / rate:.3f} s late"


@pytest.mark.asyncio
@pytest.mark.parametrize("fmt", ["raw/lpcm16", "raw/mulaw"])
async def test_echo_through_the_published_sdk(gw: GatewayThread, refsdk_path: Path,
                                              fmt: str) -> None:
    with scenario_agent(refsdk_path, gw, "echo", AGENT_RATE="16000") as proc:
        await wait_mark(proc, "connected")
        sent, heard, _ = await echo_through(gw, fmt, 16000)
        await wait_mark(proc, "call_terminated")
    _, correlation = best_lag(heard, sent)
    assert correlation > 0.99, f"{fmt}: {correlation:.4f}"
