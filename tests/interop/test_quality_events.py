"""The call.quality voice event: our SDK hands it to the agent; the published SDK, which
has never heard of it, ignores it and keeps echoing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from telcoflow import Call, CallEvent
from telcoflow.testing import GatewayThread, Phone

from ..conftest import our_agent
from .agent_process import scenario_agent as agent
from .agent_process import wait_mark
from .signals import echo_of, noise

RATE = 16000


def overdriven(seconds: float) -> npt.NDArray[np.int16]:
    """A 1 kHz tone clipped at -32767 (float audio scaled by 32767, overdriven)."""
    s = np.sin(2 * np.pi * 1000 * np.arange(int(seconds * RATE)) / RATE)
    return np.where(s < 0, np.maximum(45000 * s, -32767), 20000 * s).astype(np.int16)


def alerts_raised(gw: GatewayThread) -> float:
    assert gw.gateway.metrics is not None
    value = gw.gateway.metrics.registry.get_sample_value(
        "telcoflow_quality_alerts_total", {"leg": "caller", "kind": "clipping"})
    return value or 0.0


@pytest.mark.asyncio
async def test_the_published_sdk_keeps_echoing_through_quality_events(
        gateway: GatewayThread, refsdk_path: Path) -> None:
    with agent(refsdk_path, gateway, "echo") as proc:
        await wait_mark(proc, "connected")
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            await phone.dial(gateway.number, "+15550001", "pcm16", RATE)
            await phone.wait_answered()
            await wait_mark(proc, "answered")
            start = phone.frames_received
            sent = np.concatenate([overdriven(0.6), noise(0.6, RATE)])
            await phone.play(sent)
            heard = await echo_of(phone, start, len(sent))
            await phone.hangup()
        await wait_mark(proc, "stream_ended")
    assert alerts_raised(gateway) >= 1  # a call.quality event went to its voice link
    assert np.array_equal(heard, sent), "the published SDK's echo broke after the event"
    assert "Traceback" not in proc.output and "ERROR" not in proc.output


@pytest.mark.asyncio
async def test_our_sdk_hands_quality_events_to_the_agent(gateway: GatewayThread) -> None:
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        call.on_call_event(CallEvent.QUALITY)(events.put_nowait)
        await call.answer()

    async with our_agent(gateway, on_call, rate=RATE):
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            await phone.dial(gateway.number, "+15550001", "pcm16", RATE)
            await phone.wait_answered()
            await phone.play(overdriven(0.6))
            raised = await asyncio.wait_for(_first(events, "clipping"), 10)
            await phone.hangup()
    assert raised["leg"] == "caller" and raised["state"] == "raised"
    assert raised["value"] > raised["threshold"] == 0.1 and raised["at_s"] > 0


async def _first(events: asyncio.Queue[dict[str, Any]], kind: str) -> dict[str, Any]:
    while (event := await events.get())["kind"] != kind:
        pass
    return event
