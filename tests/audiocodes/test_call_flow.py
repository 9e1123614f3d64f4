"""A VAIC call's life: answer, barge-in, DTMF, hang-ups both ways, resume, refusals, auth."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from telcoflow.server.config import AudioCodesConfig
from telcoflow.testing import GatewayThread

from ..interop.signals import best_lag, noise, tone
from .conftest import agent, ingress, token, vaic

# The agent's interrupt reaches VAIC as playStream.stop in the same engine step
# (clear_audio runs inside the command, not on a tick): measured at 2-5 ms on
# loopback. What is checked is that step: when the command's answer reaches the
# agent, the leg has no play stream any more (a stop left to the stream's idle
# ticks would still have it open for 40-60 ms). The wall-clock bound is loose
# on purpose, so that a busy machine does not fail a correct gateway.
INTERRUPT_BOUND_S = 0.25


@pytest.mark.asyncio
async def test_interrupt_stops_the_play_stream_within_a_tick(gw: GatewayThread) -> None:
    async with agent(gw, rate=16000, echo=False) as seen, vaic(gw, "raw/lpcm16") as caller:
        await caller.dial("bot", "+15550001")
        await caller.wait_answered()
        call = seen.calls[0]
        await call.send_audio(tone(440, 3.0, 16000).tobytes())
        await caller.wait_received(16000 // 2)  # half a second of it played
        leg = ingress(gw).conversations[caller.conversation_id]
        assert leg.stream_id == "1" and leg.played_ms >= 500
        before = len(caller.events.play_stops)
        asked = time.perf_counter()
        await call.clear_send_audio_buffer()
        assert gw.run(lambda: leg.stream_id) is None, "the stream outlived the interrupt"
        await caller.wait_for(lambda: len(caller.events.play_stops) > before, timeout=2)
        stream, stopped = caller.events.play_stops[-1]
        assert stream == "1"
        assert stopped - asked < INTERRUPT_BOUND_S, f"stop {1000 * (stopped - asked):.1f} ms"
        # what VAIC held unplayed of the stream was dropped, and no more of it is sent
        played = len(caller.received())
        assert played < 16000 * 1.2, "the tone went on playing after the interrupt"
        # the next audio opens a new stream
        await call.send_audio(tone(880, 0.2, 16000).tobytes())
        await caller.wait_for(lambda: len(caller.events.play_starts) == 2, timeout=3)
        assert caller.events.play_starts[1][0] == "2"
        await caller.hangup()


@pytest.mark.asyncio
async def test_a_talkspurt_is_one_stream_and_ends_with_stop(gw: GatewayThread) -> None:
    async with agent(gw, rate=24000, echo=False) as seen, vaic(gw) as caller:
        await caller.dial("bot", "+15550001")
        await caller.wait_answered()
        sent = noise(0.3, 24000)
        await seen.calls[0].send_audio(sent.tobytes())
        await caller.wait_for(lambda: caller.events.play_stops, timeout=3)
        assert [s for s, _ in caller.events.play_starts] == ["1"]
        assert [s for s, _ in caller.events.play_stops] == ["1"]
        heard = caller.received()
        assert np.array_equal(heard[:len(sent)], sent) and caller.dropped_ms == 0
        await caller.hangup()


@pytest.mark.asyncio
async def test_dtmf_digits_reach_the_agent_in_order(gw: GatewayThread) -> None:
    async with agent(gw, echo=False) as seen, vaic(gw) as caller:
        await caller.dial("bot", "+15550001", start_params={"callee": "+15550100"})
        await caller.wait_answered()
        await caller.send_dtmf("12#*9")
        await caller.send_raw(json.dumps({  # several digits in one activity
            "type": "activities", "conversationId": caller.conversation_id,
            "activities": [{"type": "event", "name": "dtmf", "value": "AB"}]}))
        async with asyncio.timeout(5):
            while len(seen.digits) < 7:
                seen.digit_seen.clear()
                await seen.digit_seen.wait()
        assert seen.digits == "12#*9AB"
        leg = ingress(gw).conversations[caller.conversation_id]
        assert leg.start_params == {"callee": "+15550100"}
        await caller.hangup()


@pytest.mark.asyncio
async def test_vaic_hangs_up_and_the_agent_is_told(gw: GatewayThread) -> None:
    async with agent(gw, echo=False) as seen, vaic(gw) as caller:
        await caller.dial("bot", "+15550001")
        await caller.wait_answered()
        await caller.hangup()
        await asyncio.wait_for(seen.terminated.wait(), 5)
    assert gw.run(lambda: ingress(gw).conversations) == {}
    assert gw.run(lambda: gw.gateway.engine.calls) == {}


@pytest.mark.asyncio
async def test_the_agent_hangs_up_and_vaic_gets_a_hangup_activity(gw: GatewayThread) -> None:
    async with agent(gw, echo=False) as seen, vaic(gw) as caller:
        await caller.dial("bot", "+15550001")
        await caller.wait_answered()
        await seen.calls[0].disconnect()
        assert await caller.wait_hangup(5) == "the agent ended the call"
        assert caller.events.activities[-1]["name"] == "hangup"
        await caller.hangup()  # VAIC answers with session.end; the gateway closes
        assert caller.events.closed is None or caller.events.closed[0] == 1000
    assert gw.run(lambda: ingress(gw).conversations) == {}


@pytest.mark.asyncio
async def test_connect_to_a_number_we_do_not_reach_is_a_vaic_transfer(gw: GatewayThread) -> None:
    """No line or trunk of ours reaches the dialled number: VAIC is asked to transfer the
    caller there; when it has, its session.end ends the call for the agent."""
    async with agent(gw, echo=False) as seen, vaic(gw) as caller:
        await caller.dial("bot", "+15550001")
        await caller.wait_answered()
        result = await seen.calls[0].connect(ring_time_seconds=10)
        assert result and result.payload["mode"] == "transferred", result
        await caller.wait_for(lambda: any(a.get("name") == "transfer"
                                          for a in caller.events.activities), timeout=5)
        transfer = caller.events.activities[-1]
        assert transfer["name"] == "transfer"
        assert transfer["activityParams"] == {"transferTarget": f"tel:{gw.number}"}
        await caller.hangup()  # VAIC has handed the call over: session.end
        await asyncio.wait_for(seen.terminated.wait(), 5)
    assert gw.run(lambda: gw.gateway.engine.calls) == {}


@pytest.mark.asyncio
async def test_the_socket_closes_after_the_grace_without_session_end(gw: GatewayThread) -> None:
    async with agent(gw, echo=False) as seen, vaic(gw) as caller:
        await caller.dial("bot", "+15550001")
        await caller.wait_answered()
        gw.run(lambda: setattr(ingress(gw), "hangup_grace_s", 0.2))
        await seen.calls[0].disconnect()
        await caller.wait_hangup(5)
        await caller.wait_for(lambda: caller.events.closed is not None, timeout=5)
        assert caller.events.closed == (1000, "call ended")


@pytest.mark.asyncio
async def test_resume_after_a_drop_keeps_the_call(gw: GatewayThread) -> None:
    async with agent(gw, rate=16000) as seen, vaic(gw, "raw/lpcm16") as caller:
        await caller.dial("bot", "+15550001")
        await caller.wait_answered()
        await caller.drop()
        assert gw.run(lambda: caller.conversation_id in ingress(gw).conversations)
        await caller.resume(timeout=5)
        sent = noise(0.4, 16000, amplitude=6000)
        await caller.play(np.concatenate([sent, np.zeros(4800, np.int16)]))
        heard = await caller.wait_received(len(sent) + 1600, timeout=5)
        assert best_lag(heard, sent)[1] > 0.99, "audio does not flow after the resume"
        assert not seen.terminated.is_set(), "the agent saw the call end"
        assert len(seen.calls) == 1
        await caller.hangup()
        await asyncio.wait_for(seen.terminated.wait(), 5)


@pytest.mark.asyncio
async def test_no_resume_within_the_grace_ends_the_call() -> None:
    with GatewayThread(ring_timeout_s=10.0, resume_grace_s=0.3) as gw:
        async with agent(gw, echo=False) as seen, vaic(gw) as caller:
            await caller.dial("bot", "+15550001")
            await caller.wait_answered()
            await caller.drop()
            await asyncio.wait_for(seen.terminated.wait(), 5)
            with pytest.raises(Exception, match="conversation not found"):
                await caller.resume(timeout=3)


@pytest.mark.asyncio
async def test_resume_of_an_unknown_conversation_is_refused(gw: GatewayThread) -> None:
    async with vaic(gw) as caller:
        with pytest.raises(Exception, match="conversation not found"):
            await caller.resume(timeout=3)
        assert caller.events.refused == "conversation not found"


@pytest.mark.asyncio
async def test_session_accepted_waits_for_the_agent_and_a_refusal_carries_its_reason(
        gw: GatewayThread) -> None:
    # no agent: the ring time runs out, and VAIC hears why instead of session.accepted
    with GatewayThread(ring_timeout_s=0.3) as short:
        async with vaic(short) as caller:
            await caller.dial("bot", "+15550001")
            with pytest.raises(Exception, match="nobody answered"):
                await caller.wait_answered(timeout=5)
            assert caller.format is None and "no agent claimed" in (caller.events.refused or "")


@pytest.mark.asyncio
async def test_routing_by_bot_name_and_no_number_for_a_bot() -> None:
    with GatewayThread(ring_timeout_s=10.0) as gw:
        gw.config.audiocodes = AudioCodesConfig(["t0k"], {"sales": "+15550199"}, None)
    config = gw.config
    with GatewayThread(config) as gw2:
        async with vaic(gw2) as caller:  # +15550199 is nobody's number
            await caller.dial("sales", "+15550001")
            with pytest.raises(Exception, match="not in service"):
                await caller.wait_answered(timeout=5)
        async with vaic(gw2) as caller:
            await caller.dial("support", "+15550001")
            with pytest.raises(Exception, match="no number for bot 'support'"):
                await caller.wait_answered(timeout=5)


@pytest.mark.asyncio
async def test_a_bad_or_missing_token_is_refused_with_401(gw: GatewayThread) -> None:
    url = gw.ws_url + "/v1/audiocodes"
    for headers in ({"Authorization": "Bearer wrong"}, {}, {"Authorization": token(gw)}):
        with pytest.raises(InvalidStatus) as err:
            async with connect(url, additional_headers=headers):
                pass
        assert err.value.response.status_code == 401
        assert token(gw).encode() not in (err.value.response.body or b"")


@pytest.mark.asyncio
async def test_connection_validate(gw: GatewayThread) -> None:
    async with vaic(gw) as caller:
        assert await caller.validate()
