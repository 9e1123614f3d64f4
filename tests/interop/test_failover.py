"""Agent failover: two agent processes serve one connector; the one serving a call is
killed (SIGKILL, mid-call). The caller hears the hold sound, not silence; the call is
offered to the other process (``session.notify`` RESUME), which claims it and echoes on,
and what the caller says after that comes back whole. With the published SDK as with
ours: the same scenario agent, run on each.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest

from telcoflow.testing import GatewayThread, Phone

from ..conftest import refsdk_command, refsdk_env
from .agent_process import SCENARIO, AgentProcess
from .signals import echo_of, noise

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

RATE = 16000
FRAME = RATE // 50


@contextmanager
def two_agents(sdk: str, refsdk: Path, gw: GatewayThread) -> Iterator[list[AgentProcess]]:
    env = refsdk_env(refsdk, gw, AGENT_RATE=str(RATE))
    if sdk == "ours":  # the venv's telcoflow (this repository), not the published one
        env.pop("PYTHONPATH")
        cmd = [sys.executable, "-u", str(SCENARIO), "resume"]
    else:
        cmd = refsdk_command(SCENARIO, "resume")
    with ExitStack() as stack:
        agents = [stack.enter_context(AgentProcess(cmd, env)) for _ in range(2)]
        for agent in agents:
            agent.wait_for("MARK connected", 20)
        yield agents


def first_to_log(agents: list[AgentProcess], text: str, timeout: float) -> AgentProcess:
    """The agent that logs ``text`` (each is waited on in its own thread; the first wins)."""
    found: queue.Queue[AgentProcess] = queue.Queue()

    def watch(agent: AgentProcess) -> None:
        with contextlib.suppress(AssertionError):  # the other one never logs it
            agent.wait_for(text, timeout)
            found.put(agent)

    for agent in agents:
        threading.Thread(target=watch, args=(agent,), daemon=True).start()
    return found.get(timeout=timeout)


@pytest.mark.parametrize("sdk", ["published", "ours"])
async def test_a_killed_agents_call_is_taken_on_by_another(
        gateway: GatewayThread, refsdk_path: Path, sdk: str) -> None:
    with two_agents(sdk, refsdk_path, gateway) as agents:
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            await phone.dial(gateway.number, "+15550001", "pcm16", RATE)
            await phone.wait_answered()
            before = noise(0.3, RATE, seed=1)
            start = phone.frames_received
            await phone.play(before)
            assert np.array_equal(await echo_of(phone, start, len(before)), before)

            dead = await asyncio.to_thread(first_to_log, agents, "MARK answered True", 20)
            survivor = next(a for a in agents if a is not dead)
            mark = len(survivor.lines)
            assert dead.proc is not None
            dead.proc.kill()  # SIGKILL: no goodbye on any connection
            killed_at, killed_t = phone.frames_received, time.monotonic()
            resumed = await asyncio.to_thread(survivor.wait_for, "RESUME", 20, mark)
            await asyncio.to_thread(survivor.wait_for, "MARK answered True", 20,
                                    survivor.lines.index(resumed))
            print(f"{sdk}: the call was taken on {time.monotonic() - killed_t:.2f} s after "
                  "the kill")
            waited = phone.received()[killed_at * FRAME:]
            # while it waited the caller heard the hold tone, not only silence
            assert np.abs(waited).max() > 500, "dead silence while the call waited"

            after = noise(0.5, RATE, seed=2)
            start = phone.frames_received
            await phone.play(after)
            heard = await echo_of(phone, start, len(after))
            await phone.hangup()
    assert np.array_equal(heard, after), "the echo after the failover lost or altered audio"
