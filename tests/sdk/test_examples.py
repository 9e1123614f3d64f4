"""The seed pages' code blocks, run unchanged as example scripts against our gateway."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from telcoflow.testing import GatewayThread

from ..interop.agent_process import AgentProcess
from .conftest import dialled, example_command, example_env, find, noise


async def call_and_collect(gw: GatewayThread, sent: np.ndarray, rate: int,
                           extra_frames: int = 15) -> np.ndarray:
    frame = rate // 50
    async with dialled(gw, rate) as phone:
        await phone.wait_answered(timeout=15)
        start = phone.frames_received
        await phone.play(sent)
        await phone.wait_frames(start + len(sent) // frame + extra_frames, timeout=15)
        heard = phone.received()[start * frame:]
        await phone.hangup()
    return heard


@pytest.mark.asyncio
async def test_quick_start_echo_agent(gateway: GatewayThread) -> None:
    with AgentProcess(example_command("echo_agent.py"), example_env(gateway)) as agent:
        agent.wait_for("Connected. Waiting for sessions")
        sent = noise(0.6, 24000)
        heard = await call_and_collect(gateway, sent, 24000)
        await asyncio.to_thread(agent.wait_for, "terminated")
    lag = find(heard, sent)
    assert lag >= 0 and np.array_equal(heard[lag:lag + len(sent)], sent)
    assert "Incoming call" in agent.output and "Traceback" not in agent.output


@pytest.mark.asyncio
async def test_flow1_basic_agent_with_local_model(gateway: GatewayThread) -> None:
    with AgentProcess(example_command("basic_agent.py"), example_env(gateway)) as agent:
        agent.wait_for("Connected. Waiting for sessions")
        sent = noise(0.6, 16000)
        heard = await call_and_collect(gateway, sent, 16000)
    halved = (sent // 2).astype(np.int16)
    lag = find(heard, halved)
    assert lag >= 0 and np.array_equal(heard[lag:lag + len(sent)], halved)
    assert "Traceback" not in agent.output


@pytest.mark.asyncio
async def test_flow3_handoff_across_two_processes(gateway: GatewayThread) -> None:
    env = example_env(gateway)
    with AgentProcess(example_command("handoff.py", "media"), env) as media:
        line = media.wait_for("Handoff listening on port")
        port = re.search(r"port (\d+)", line).group(1)  # type: ignore[union-attr]
        front_env = example_env(gateway, HANDOFF_ADDR=f"127.0.0.1:{port}")
        with AgentProcess(example_command("handoff.py", "front"), front_env) as front:
            front.wait_for("Connected. Waiting for sessions")
            sent = noise(0.5, 16000)
            heard = await call_and_collect(gateway, sent, 16000)
            await asyncio.to_thread(media.wait_for, "terminated")
    lag = find(heard, sent)
    assert lag >= 0 and np.array_equal(heard[lag:lag + len(sent)], sent)
    assert "Answered handed-off call" in media.output
    assert "Traceback" not in front.output and "Traceback" not in media.output


@pytest.mark.asyncio
async def test_event_handling_block(gateway: GatewayThread) -> None:
    with AgentProcess(example_command("events_agent.py"), example_env(gateway)) as agent:
        agent.wait_for("Connected. Waiting for sessions")
        async with dialled(gateway) as phone:
            await phone.wait_answered(timeout=15)
            await phone.hangup()
        await asyncio.to_thread(agent.wait_for, "Call ended")
    assert agent.output.count("Call ended") == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("flow", ["assistant", "unanswered"])
async def test_connect_flows_return_results_not_exceptions(gateway: GatewayThread,
                                                           flow: str) -> None:
    # no subscriber line is registered: connect answers CALL_UNANSWERED at once, and
    # both flows end the call (close after a failed connect; disconnect on CALL_UNANSWERED)
    env = example_env(gateway, EXAMPLE_FLOW=flow)
    with AgentProcess(example_command("assistant_agent.py"), env) as agent:
        agent.wait_for("Connected. Waiting for sessions")
        async with dialled(gateway) as phone:
            await phone.wait_answered(timeout=15)
            assert await phone.wait_hangup(timeout=15) == "AGENT_HANGUP"
    assert "Traceback" not in agent.output and "Connect failed" not in agent.output


@pytest.mark.asyncio
async def test_interruption_block(gateway: GatewayThread) -> None:
    with AgentProcess(example_command("interrupt_agent.py"), example_env(gateway)) as agent:
        agent.wait_for("Connected. Waiting for sessions")
        async with dialled(gateway) as phone:
            await phone.wait_answered(timeout=15)
            await phone.wait_frames(10)  # the agent's prompt is playing
            assert phone.received()[-320:].any()
            await phone.play(np.full(320 * 3, 6000, np.int16))  # the caller talks over it
            line = await asyncio.to_thread(agent.wait_for, "Interrupted with")
            mark = phone.frames_received
            await phone.wait_frames(mark + 20)
            tail = phone.received()[(mark + 10) * 320:]
            await phone.hangup()
    queued, after = map(int, re.findall(r"\d+", line.split("Interrupted with")[1])[:2])
    assert queued > 0 and after == 0
    assert not tail.any(), "the prompt kept playing after the interruption"
    assert "Queued prompt" in agent.output
