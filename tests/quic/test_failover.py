"""A QUIC agent's connection drops mid-call: the engine's agent-loss rules apply."""

from __future__ import annotations

import asyncio

import pytest

from telcoflow.server.config import QuicConfig
from telcoflow.testing import GatewayThread

from ..interop.signals import echo_of
from .conftest import Kind, agent_for, answered_call, echo, next_event, tone


@pytest.mark.asyncio
async def test_a_dropped_agent_leaves_the_caller_on_hold_then_ends_with_agent_lost() -> None:
    with GatewayThread(quic=QuicConfig(port=0), agent_reconnect_grace_s=0.6,
                       resume_grace_s=0.6) as gw:
        async with agent_for(gw) as agent:
            await agent.subscribe()
            async with answered_call(gw, agent) as (phone, call):
                await agent.close()                       # the agent is gone
                start = phone.frames_received
                hold = await echo_of(phone, start, 10 * 160)  # the hold sound, not silence
                assert len(hold) >= 10 * 160
                assert await phone.wait_hangup() == "AGENT_LOST"
    assert call.ended.is_set()


@pytest.mark.asyncio
async def test_a_reconnecting_subscription_is_offered_the_call_again() -> None:
    with GatewayThread(quic=QuicConfig(port=0), agent_reconnect_grace_s=10.0,
                       resume_grace_s=10.0) as gw:
        async with agent_for(gw) as first:
            await first.subscribe()
            async with answered_call(gw, first) as (phone, call):
                await first.close()
                async with agent_for(gw) as second:
                    await second.subscribe()
                    resumed = await second.next_call()
                    events = resumed.events()
                    incoming = await next_event(events, Kind.INCOMING)
                    assert incoming.reason == "RESUME" and resumed.call_sid == call.call_sid
                    await next_event(events, Kind.ANSWERED)   # no ANSWER needed: it is live
                    task = asyncio.create_task(echo(resumed))
                    sent = tone(0.5, 8000, 700.0)
                    start = phone.frames_received
                    await phone.play(sent)
                    heard = await echo_of(phone, start, len(sent) // 2)
                    assert len(heard) >= len(sent) // 2
                    assert not phone.hung_up
                    await phone.hangup()
                    assert await resumed.wait_ended() == "CALLER_HANGUP"
                    await task
