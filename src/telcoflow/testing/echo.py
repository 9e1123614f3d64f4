"""An echo agent on our SDK, in-process: answers every call of a connector and sends
back what it hears (the console's tests and the softphone benches talk to it)."""

from __future__ import annotations

import asyncio
from typing import Literal

from ..sdk import Call, CallAudioConfig, SessionManager, SessionManagerConfig, SessionNotification


async def echo_agent(base_url: str, api_key: str, connector_uuid: str,
                     rate: Literal[8000, 16000, 24000],
                     ready: asyncio.Event, stop: asyncio.Event) -> None:
    """Connected when ``ready`` is set; runs until ``stop`` is."""
    config = SessionManagerConfig.create(api_key=api_key, connector_uuid=connector_uuid,
                                         base_url=base_url,
                                         call_audio=CallAudioConfig(sample_rate=rate))
    async with SessionManager(config) as sm:
        @sm.on_session_notification
        async def offered(notification: SessionNotification) -> None:
            session = await sm.open_session(notification.session_id)

            @session.on_incoming_call
            async def echo(call: Call) -> None:
                if not await call.answer():
                    return
                async for chunk in call.audio_stream():
                    await call.send_audio(chunk)

            await session.ready()

        ready.set()
        await stop.wait()
