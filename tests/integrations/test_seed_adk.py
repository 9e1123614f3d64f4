"""Seed 003's "Integration with Google ADK" block (``examples/adk_agent.py``), unchanged,
run as a process on google-adk 2.13 (``tests/adkenv.py``) against a real gateway, the
local Gemini Live fake and a simulated caller.

What the block does, as this test shows it: it connects and answers the call, then
``runner.run_live(session_id=call.id)`` raises ADK's ``SessionNotFoundError``, because
the block never creates that session (ADK 2.x wants ``create_session`` first, or
``Runner(..., auto_create_session=True)``). The handler's exception is logged by the
SDK; the model is never reached; the caller hears silence and hangs up; the process
takes the next call the same way. ``docs/ai-backends.md`` gives the one-line fix, and
``telcoflow agent adk`` is the working agent (``test_adk.py``).
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np
import pytest

from telcoflow.testing import GatewayThread
from telcoflow.testing.gemini_fake import FakeLiveServer, LiveScript

from ..adkenv import adk_env, ensure_adk
from ..interop.agent_process import AgentProcess
from ..sdk.conftest import EXAMPLES, example_env
from .test_seed_gemini import LAUNCH, READY, caller, silence, speech

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


async def test_the_seed_block_answers_then_fails_for_want_of_a_session() -> None:
    ensure_adk()
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(LiveScript(reply_delay_ms=20)) as server:
            env = adk_env(example_env(gw, GEMINI_API_KEY="test-key", **server.env()))
            cmd = [sys.executable, "-u", "-c", LAUNCH, str(EXAMPLES / "adk_agent.py")]
            with AgentProcess(cmd, env) as agent:
                await asyncio.to_thread(agent.wait_for, READY, 30)
                for _call in range(2):  # the process survives the failure and takes the next
                    mark = len(agent.lines)
                    async with caller(gw) as phone:  # answered by the block's call.answer()
                        error = await asyncio.to_thread(
                            agent.wait_for, "Error in on_incoming_call handler", 20, mark)
                        await asyncio.to_thread(agent.wait_for, "SessionNotFoundError", 20, mark)
                        start = phone.frames_received
                        await phone.play(np.concatenate([speech(0.4), silence(0.3)]))
                        assert not phone.received()[start * 320:].any()  # nothing to hear
                        assert not phone.hung_up  # the block does not end the call
                        await phone.hangup()
                    await asyncio.to_thread(agent.wait_for, "terminated", 20, mark)
                output = agent.output
        assert server.setups == []  # the model was never reached
    assert "SessionNotFoundError: Session not found" in output
    assert error and "test-key" not in output
