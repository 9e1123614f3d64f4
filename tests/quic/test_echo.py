"""The QUIC plane's audio path end to end: a simulated caller, a QUIC echo agent."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from telcoflow.quic import QuicAgent, QuicAgentError
from telcoflow.testing import GatewayThread, Phone

from ..interop.signals import assert_follows, best_lag, chirp, voiced_frames, without_gaps
from .conftest import Kind, agent_for, answered_call, echo, next_event

LINE = "+15557001"


QUIET = 8  # the peak of a silent frame: G.711 A-law's silence decodes to ±8


async def play_and_hear(phone: Phone, sent: np.ndarray) -> np.ndarray:
    """What ``phone`` heard from the start of ``sent`` to half a second after its end
    (G.711 A-law's silence is not zero: the voiced-frame filter cannot be used)."""
    start = phone.frames_received
    frames = await phone.play(sent)
    await phone.wait_frames(start + frames + 25, timeout=15)
    return phone.received()[start * phone.frame_samples:]


@pytest.mark.asyncio
@pytest.mark.parametrize(("codec", "rate", "egress"),
                         [("pcmu", 8000, "PCMU"), ("pcma", 8000, "PCMA"),
                          ("pcm16", 16000, "PCM16")])
async def test_a_quic_echo_agent_returns_what_the_caller_said(
        qgw: GatewayThread, codec: str, rate: int, egress: str) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        async with answered_call(qgw, agent, codec, rate) as (phone, call):
            # the far end's codec on egress: G.711 as it is, PCM16 at the default 16 kHz
            assert (call.codec, call.sample_rate) == (egress, 8000 if egress != "PCM16" else 16000)
            assert call.caller == "+15550001" and call.callee == qgw.number
            task = asyncio.create_task(echo(call))
            sent = chirp(1.0, rate, f1=min(3000.0, rate * 0.4))
            heard = await play_and_hear(phone, sent)
            await phone.hangup()
            assert await call.wait_ended() == "CALLER_HANGUP"
            await task
    # less the silent frames the playout put in while the echo ran late (a busy machine:
    # real-time behaviour, not a loss), the echo is what was sent, frame for frame
    _, correlation = best_lag(voiced_frames(heard, rate // 50, QUIET), sent)
    assert correlation > 0.99, f"correlation {correlation:.4f}"
    assert call.gateway_loss is not None and call.gateway_loss.missing == 0
    assert call.gateway_loss.received >= len(sent) // (rate // 50)
    assert call.tracker.missing == 0


@pytest.mark.asyncio
async def test_the_subscription_can_ask_for_pcm16_at_its_rate(qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe(codec="PCM16", sample_rate=24000, auto_answer=True)
        async with Phone(qgw.ws_url, qgw.phone_key) as phone:
            await phone.dial(qgw.number, "+15550001", "pcmu", 8000)
            call = await agent.next_call()
            await phone.wait_answered()           # auto_answer: no command needed
            await next_event(call.events(), Kind.ANSWERED)
            assert (call.codec, call.sample_rate) == ("PCM16", 24000)
            task = asyncio.create_task(echo(call))
            sent = chirp(1.0, 8000)
            heard = await play_and_hear(phone, sent)
            await phone.hangup()
            await task
    # resampled both ways: less the gaps a late echo left, every window in step
    assert_follows(without_gaps(heard, 160), sent)


@pytest.mark.asyncio
async def test_an_agent_originates_a_call_to_a_registered_line(qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent, Phone(qgw.ws_url, qgw.phone_key) as line:
        await line.register(LINE, codec="pcm16", sample_rate=16000, answer="manual")
        call_sid = await agent.originate(LINE, default_app_args={"codec": "PCM16",
                                                                 "sample_rate": "16000"})
        call = agent.call(call_sid)
        events = call.events()
        ringing = await next_event(events, Kind.RINGING)
        assert ringing.callee == LINE
        assert await line.wait_incoming() == call_sid
        await line.answer()
        await next_event(events, Kind.ANSWERED)
        assert (call.codec, call.sample_rate) == ("PCM16", 16000)
        task = asyncio.create_task(echo(call))
        sent = chirp(1.0, 16000)
        heard = await play_and_hear(line, sent)
        await call.hangup()
        ended = await next_event(events, Kind.ENDED)
        assert ended.reason == "DISCONNECT"
        await task
        await line.wait_hangup()
    _, correlation = best_lag(voiced_frames(heard, 320), sent)
    assert correlation > 0.99, f"correlation {correlation:.4f}"


@pytest.mark.asyncio
async def test_an_originated_call_nobody_answers_ends_with_the_cause(qgw: GatewayThread) -> None:
    qgw.gateway.engine.settings.outbound_ring_s = 0.5
    async with agent_for(qgw) as agent, Phone(qgw.ws_url, qgw.phone_key) as line:
        await line.register(LINE, answer="never")
        call = agent.call(await agent.originate(LINE))
        assert await call.wait_ended() == "CALL_UNANSWERED"
        with pytest.raises(QuicAgentError) as refused:
            await agent.originate("+19990000000")
        assert refused.value.code == "INVALID_REQUEST"


@pytest.mark.asyncio
async def test_a_pinned_fingerprint_that_does_not_match_is_refused_before_credentials(
        qgw: GatewayThread) -> None:
    with pytest.raises(QuicAgentError) as refused:
        async with agent_for(qgw, fingerprint="00" * 32):
            pass
    assert refused.value.code == "CERTIFICATE_MISMATCH"


@pytest.mark.asyncio
async def test_dtmf_and_commands_reach_the_engine(qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        async with answered_call(qgw, agent) as (phone, call):
            events = call.events()
            await phone.send_dtmf("5")
            dtmf = await next_event(events, Kind.DTMF)
            assert dtmf.message == "5"
            result = await agent.command(call.call_sid, 9, digits="12#")  # SEND_DTMF
            assert result["digits"] == "12#"
            assert await phone.wait_dtmf(3) == "12#"
            interrupted = await agent.command(call.call_sid, 3)            # INTERRUPT
            assert "droppedBytes" in interrupted
            with pytest.raises(QuicAgentError) as unknown:
                await agent.command("no-such-call", 1)
            assert unknown.value.code == "CALL_NOT_FOUND"
            await call.hangup()
            assert await phone.wait_hangup() == "AGENT_HANGUP"
            assert await call.wait_ended() == "DISCONNECT"
    assert isinstance(agent, QuicAgent)
