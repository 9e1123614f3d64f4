"""A real gateway with [audiocodes] on, VAIC emulators, and in-process agents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from telcoflow import Call, CallAudioConfig, SessionManager, SessionManagerConfig
from telcoflow.telephony.audiocodes import AudioCodesIngress, ingress_of
from telcoflow.testing import GatewayThread
from telcoflow.testing.vaic_client import VaicCaller


@pytest.fixture
def gw() -> Iterator[GatewayThread]:
    with GatewayThread(ring_timeout_s=10.0, resume_grace_s=5.0) as gateway:
        yield gateway


def token(gw: GatewayThread) -> str:
    assert gw.config.audiocodes is not None
    return gw.config.audiocodes.tokens[0]


def ingress(gw: GatewayThread) -> AudioCodesIngress:
    found = ingress_of(gw.gateway)
    assert found is not None
    return found


def vaic(gw: GatewayThread, *formats: str) -> VaicCaller:
    return VaicCaller(gw.ws_url, token(gw), formats=formats or ("raw/lpcm16_24",))


@dataclass
class Agent:
    """What the in-process agent saw."""

    calls: list[Call] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    terminated: asyncio.Event = field(default_factory=asyncio.Event)
    digits: str = ""
    digit_seen: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def agent(gw: GatewayThread, rate: int = 16000, echo: bool = True
                ) -> AsyncIterator[Agent]:
    """Our SDK in-process: answers every call, echoes it when ``echo``."""
    seen = Agent()
    config = SessionManagerConfig.create(api_key=gw.api_key, connector_uuid=gw.connector_uuid,
                                         base_url=gw.ws_url,
                                         call_audio=CallAudioConfig(sample_rate=rate))
    async with SessionManager(config) as sm:
        @sm.on_session_notification
        async def on_notify(noti: object) -> None:
            session = await sm.open_session(noti.session_id)  # type: ignore[attr-defined]

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                seen.calls.append(call)

                @call.on_terminated
                def gone() -> None:
                    seen.terminated.set()

                @call.on_dtmf
                def dtmf(digit: object) -> None:
                    seen.digits += str(getattr(digit, "digit", digit))
                    seen.digit_seen.set()

                assert await call.answer()
                seen.answered.set()
                if echo:
                    async for chunk in call.audio_stream():
                        await call.send_audio(chunk)

            await session.ready()

        yield seen
