"""The published SDK as the agent: calls it places, and DTMF events it does not know."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from telcoflow.audio import g711
from telcoflow.testing import GatewayThread, Phone

from .agent_process import scenario_agent as agent
from .agent_process import wait_mark
from .signals import echo_of, noise

LINE = "+15557002"


@pytest.mark.asyncio
async def test_the_published_sdk_places_a_call_and_echoes_the_callee(
        gateway: GatewayThread, refsdk_path: Path) -> None:
    async with Phone(gateway.ws_url, gateway.phone_key) as line:
        await line.register(LINE, codec="pcmu", answer="auto")
        with agent(refsdk_path, gateway, "outbound", OUTBOUND_TO=LINE, AGENT_RATE="8000") as proc:
            call_in = (await wait_mark(proc, "call_in")).split()
            await line.wait_answered()
            await wait_mark(proc, "answered")
            start = line.frames_received
            sent = noise(0.5, 8000)
            await line.play(sent)
            heard = await echo_of(line, start, len(sent))
            await line.hangup()
            closed = await wait_mark(proc, "session_closed")
    assert call_in[3:] == [gateway.number, LINE]
    # pcmu both ways: the echo is the µ-law round trip of what was sent
    expected = np.frombuffer(g711.ulaw_decode_bytes(g711.ulaw_encode(sent)), "<i2")
    assert np.array_equal(heard, expected), "the callee did not hear its own audio back"
    assert closed.split()[3] == "CALL_TERMINATED"


@pytest.mark.asyncio
@pytest.mark.parametrize("answer", ["reject", "never"])
async def test_a_published_sdk_call_nobody_takes_closes_its_session(
        gateway: GatewayThread, refsdk_path: Path, answer: str) -> None:
    gateway.gateway.engine.settings.outbound_ring_s = 1.0  # (60 s in service)
    async with Phone(gateway.ws_url, gateway.phone_key) as line:
        await line.register(LINE, answer=answer)
        with agent(refsdk_path, gateway, "outbound", OUTBOUND_TO=LINE) as proc:
            closed = await wait_mark(proc, "session_closed")
    assert closed.split()[3] == "CALL_TERMINATED"
    assert not proc.marks("call_in") and "Traceback" not in proc.output


@pytest.mark.asyncio
async def test_the_published_sdk_keeps_echoing_while_the_caller_presses_keys(
        gateway: GatewayThread, refsdk_path: Path) -> None:
    with agent(refsdk_path, gateway, "echo") as proc:
        await wait_mark(proc, "connected")
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            await phone.dial(gateway.number, "+15550001", "pcm16", 16000)
            await phone.wait_answered()
            await wait_mark(proc, "answered")
            start = phone.frames_received
            sent = noise(0.5, 16000)
            play = asyncio.create_task(phone.play(sent))
            await phone.send_dtmf("0123456789*#")  # call.dtmf events it has never heard of
            await play
            heard = await echo_of(phone, start, len(sent))
            await phone.hangup()
        await wait_mark(proc, "stream_ended")
    assert np.array_equal(heard, sent)
    assert "Traceback" not in proc.output and "ERROR" not in proc.output
