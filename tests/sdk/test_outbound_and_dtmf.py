"""Our SDK, real sockets: calls an agent places (create_session) and DTMF both ways."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest

from telcoflow import Call, ChannelType, CloseReason, SessionManager, SessionManagerConfig
from telcoflow.sdk import DtmfDigit
from telcoflow.server.config import Connector, embedded_defaults
from telcoflow.testing import GatewayThread, Phone

from ..interop.signals import echo_of
from .conftest import dialled, find, manager, noise

LINE = "+15557001"


async def echo(call: Call) -> None:
    async for chunk in call.audio_stream():
        await call.send_audio(chunk)


@pytest.mark.asyncio
async def test_an_agent_calls_a_number_and_talks_once_it_answers(gateway: GatewayThread) -> None:
    calls: list[Call] = []
    async with manager(gateway) as sm, Phone(gateway.ws_url, gateway.phone_key) as line:
        await line.register(LINE, codec="pcm16", sample_rate=16000, answer="manual")
        session = await sm.create_session(ChannelType.TELCO, LINE)

        @session.on_incoming_call
        async def on_call(call: Call) -> None:
            calls.append(call)
            assert await call.answer()
            await echo(call)

        await session.ready()
        call_id = await line.wait_incoming()        # the gateway dials when the agent is ready
        assert not calls                             # the agent gets the call when it is answered
        await line.answer()
        await line.wait_answered()
        start = line.frames_received
        sent = noise(0.5, 16000)
        await line.play(sent)
        await line.wait_frames(start + 25 + 30)
        heard = line.received()[start * 320:]
        await line.hangup()
        await session.wait_closed()
    assert [c.id for c in calls] == [call_id]
    assert calls[0].caller_number == gateway.number and calls[0].callee_number == LINE
    assert find(heard, sent) >= 0, "the agent's echo of the callee never came back"
    assert session.close_reason == CloseReason.CALL_TERMINATED


@pytest.mark.asyncio
@pytest.mark.parametrize(("answer", "cause"), [("reject", "CALL_REJECTED"),
                                               ("never", "CALL_UNANSWERED")])
async def test_a_number_that_does_not_take_the_call_closes_the_session_with_the_cause(
        gateway: GatewayThread, answer: str, cause: str) -> None:
    gateway.gateway.engine.settings.outbound_ring_s = 1.0  # (60 s in service)
    async with manager(gateway) as sm, Phone(gateway.ws_url, gateway.phone_key) as line:
        await line.register(LINE, answer=answer)
        session = await sm.create_session(ChannelType.TELCO, LINE)
        offered: list[Call] = []
        session.on_incoming_call(offered.append)
        await session.ready()
        await asyncio.wait_for(session.wait_closed(), 10)
    assert session.close_reason == CloseReason.CALL_TERMINATED
    assert session.close_cause == cause and not offered


@pytest.mark.asyncio
async def test_a_busy_number_closes_the_session_with_callee_busy() -> None:
    config = embedded_defaults(port=0)
    other = Connector(str(uuid.uuid4()), ["tfk_other-connector-key"], ["+15550199"])
    config.connectors.append(other)
    with GatewayThread(config) as gw:
        async with manager(gw) as sm, Phone(gw.ws_url, gw.phone_key) as line, \
                SessionManager(SessionManagerConfig.create(
                    api_key=other.api_keys[0], connector_uuid=other.uuid,
                    base_url=gw.ws_url)) as rival:
            await line.register(LINE, answer="manual")
            ringing = await rival.create_session(ChannelType.TELCO, LINE)
            await ringing.ready()
            await line.wait_incoming()  # the rival's call rings the line: it is busy now
            session = await sm.create_session(ChannelType.TELCO, LINE)
            await session.ready()
            await asyncio.wait_for(session.wait_closed(), 10)
    assert session.close_reason == CloseReason.CALL_TERMINATED
    assert session.close_cause == "CALLEE_BUSY"


@pytest.mark.asyncio
async def test_digits_the_caller_presses_reach_the_agent_and_the_agents_reach_the_caller(
        gateway: GatewayThread) -> None:
    pressed: list[DtmfDigit] = []
    got_all = asyncio.Event()
    async with manager(gateway) as sm:
        @sm.on_session_notification
        async def on_notify(noti: object) -> None:
            session = await sm.open_session(noti.session_id)  # type: ignore[attr-defined]

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                @call.on_dtmf
                def digit(d: DtmfDigit) -> None:
                    pressed.append(d)
                    if len(pressed) == 3:
                        got_all.set()

                await call.answer()
                await got_all.wait()
                assert await call.send_dtmf("9*")

            await session.ready()

        async with dialled(gateway) as phone:
            await phone.wait_answered()
            await phone.send_dtmf("12#", duration_ms=160)
            assert await phone.wait_dtmf(2) == "9*"
            await phone.hangup()
    assert [(d.digit, d.duration_ms, d.channel) for d in pressed] == [
        ("1", 160, 1), ("2", 160, 1), ("#", 160, 1)]


@pytest.mark.asyncio
async def test_send_dtmf_checks_its_digits(gateway: GatewayThread) -> None:
    call = Call("id", "a", "b", "ws://x", "t")
    with pytest.raises(ValueError):
        await call.send_dtmf("12x")
    with pytest.raises(ValueError):
        await call.send_dtmf("")


@pytest.mark.asyncio
async def test_the_echo_stays_exact_while_the_caller_presses_keys(gateway: GatewayThread) -> None:
    async with manager(gateway) as sm:
        @sm.on_session_notification
        async def on_notify(noti: object) -> None:
            session = await sm.open_session(noti.session_id)  # type: ignore[attr-defined]

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                await call.answer()
                await echo(call)

            await session.ready()

        async with dialled(gateway) as phone:
            await phone.wait_answered()
            start = phone.frames_received
            sent = noise(0.5, 16000)
            play = asyncio.create_task(phone.play(sent))
            await phone.send_dtmf("0123456789")
            await play
            heard = await echo_of(phone, start, len(sent))
            await phone.hangup()
    assert np.array_equal(heard, sent), "the echo lost or altered audio around the key presses"
