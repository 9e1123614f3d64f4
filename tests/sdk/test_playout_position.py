"""Our SDK, real sockets: the agent knows how much of its audio the caller heard."""

from __future__ import annotations

import asyncio

import pytest

from telcoflow import Call, PlayoutPosition, SessionNotification
from telcoflow.testing import GatewayThread, Phone

from ..interop.signals import voiced_frames
from .conftest import dialled, manager, noise

FRAME = 320  # 20 ms at 16 kHz


async def heard_ms(phone: Phone) -> int:
    """Milliseconds of (non-silent) agent audio the caller's recording holds."""
    return len(voiced_frames(phone.received(), FRAME)) // FRAME * 20


@pytest.mark.asyncio
async def test_the_agent_knows_where_the_caller_stopped_hearing(gateway: GatewayThread) -> None:
    positions: list[PlayoutPosition] = []
    answered: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
    async with manager(gateway) as sm, dialled(gateway) as phone:

        @sm.on_session_notification
        async def offered(notification: SessionNotification) -> None:
            session = await sm.open_session(notification.session_id)

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                call.on_playout_position(positions.append)
                assert await call.answer()
                answered.set_result(call)

            await session.ready()

        call = await asyncio.wait_for(answered, 10)
        await phone.wait_answered()
        # a short answer, played whole: its end is reported
        await call.send_audio(noise(0.3, 16000).tobytes())
        while not positions:
            await phone.wait_frames(phone.frames_received + 1)
        assert positions[0].reason == "talkspurt_end" and positions[0].played_ms == 300
        while await heard_ms(phone) < 300:  # the agent's socket may be read before the phone's
            await phone.wait_frames(phone.frames_received + 1)
        assert await heard_ms(phone) == 300
        # a long one, cut by the agent mid-way: where the caller stopped hearing
        await call.send_audio(noise(3.0, 16000, seed=5).tobytes())
        await phone.wait_frames(phone.frames_received + 40)
        await call.clear_send_audio_buffer()
        stopped = call.played_ms
        await phone.wait_frames(phone.frames_received + 10)  # nothing more of it comes
        heard = await heard_ms(phone)
        assert abs(stopped - heard) <= 20, f"reported {stopped} ms, the caller heard {heard} ms"
        assert 300 + 40 * 20 <= heard < 300 + 3000
        # the same position came as an event, ahead of the command's answer
        assert (positions[-1].reason, positions[-1].played_ms) == ("interrupt", stopped)
        asked = await call.playout_position()
        assert asked.played_ms == stopped and asked.reason == "request"
        await call.disconnect()
