"""SIPp answers calls the gateway places: an agent's outbound call, and call.connect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import numpy as np
import pytest

from telcoflow import Call, CallAudioConfig, ChannelType, SessionManager, SessionManagerConfig
from telcoflow.audio.align import best_lag
from telcoflow.server.config import SipTrunk, embedded_defaults
from telcoflow.testing import GatewayThread, Phone

from ..interop.signals import noise
from .conftest import sip_config
from .peers import SCENARIOS, SippRun, free_media_port, free_udp_port, sipp, udp_bound

CALLEE = "+15550100"  # the gateway's own number: call.connect rings it through the trunk


@pytest.fixture
def uas_port() -> int:
    return free_udp_port()


@pytest.fixture
def trunk_gateway(uas_port: int) -> Iterator[GatewayThread]:
    """Numbers +1555… go out through a trunk whose proxy is SIPp's callee."""
    config = embedded_defaults(port=0)
    config.sip = sip_config(trunks=[SipTrunk("loopback", proxy=f"127.0.0.1:{uas_port}",
                                              numbers=["+1555"])])
    with GatewayThread(config, ring_timeout_s=10.0) as gw:
        yield gw


@asynccontextmanager
async def callee(port: int, *scenario: str) -> AsyncIterator[asyncio.Task[SippRun]]:
    """SIPp as a callee on ``port`` (its echoing UAS unless a scenario is given)."""
    args = list(scenario) or ["-sn", "uas", "-rtp_echo"]
    task = asyncio.create_task(sipp(*args, "-i", "127.0.0.1", "-p", str(port),
                                    "-mi", "127.0.0.1", "-mp", str(free_media_port()),
                                    "-m", "1", timeout=30))
    bound = asyncio.create_task(udp_bound(port))
    await asyncio.wait([bound, task], return_when=asyncio.FIRST_COMPLETED)
    if not bound.done():
        bound.cancel()
        raise AssertionError(f"SIPp ended before taking its port:\n{task.result().output[-3000:]}")
    bound.result()
    yield task


def manager_for(gw: GatewayThread) -> SessionManager:
    """Agents at 8 kHz: what crosses G.711 and comes back is then the whole signal."""
    return SessionManager(SessionManagerConfig.create(
        api_key=gw.api_key, connector_uuid=gw.connector_uuid, base_url=gw.ws_url,
        call_audio=CallAudioConfig(sample_rate=8000)))


@pytest.mark.asyncio
async def test_an_agent_calls_a_sip_uri_and_hears_itself_echoed(
        sip_gateway: GatewayThread, uas_port: int) -> None:
    sent = noise(1.0, 8000, amplitude=6000)
    heard = bytearray()
    async with callee(uas_port) as sipp_run, manager_for(sip_gateway) as sm:
        session = await sm.create_session(ChannelType.TELCO, f"sip:echo@127.0.0.1:{uas_port}")
        done = asyncio.Event()

        @session.on_incoming_call
        async def on_call(call: Call) -> None:
            assert await call.answer()
            await call.send_audio(sent.tobytes())
            async for chunk in call.audio_stream():
                heard.extend(chunk)
                if len(heard) >= 2 * len(sent.tobytes()):
                    break
            assert await call.disconnect()
            done.set()

        await session.ready()
        await asyncio.wait_for(done.wait(), 20)
        run = await sipp_run
    assert run.returncode == 0, run.output[-3000:]
    _, correlation = best_lag(np.frombuffer(bytes(heard), "<i2"), sent)
    assert correlation > 0.9, f"the echo through SIPp correlates {correlation:.3f}"


@pytest.mark.asyncio
async def test_connect_rings_the_callee_on_the_trunk_and_bridges_it(
        trunk_gateway: GatewayThread, uas_port: int) -> None:
    results: list[object] = []
    hang_up = asyncio.Event()
    async with callee(uas_port) as sipp_run, manager_for(trunk_gateway) as sm:
        @sm.on_session_notification
        async def on_notify(noti: object) -> None:
            session = await sm.open_session(noti.session_id)  # type: ignore[attr-defined]

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                await call.answer()
                results.append(await call.connect(ring_time_seconds=10))
                await hang_up.wait()
                await call.disconnect()  # every leg ends: SIPp's callee gets a BYE

            await session.ready()

        async with Phone(trunk_gateway.ws_url, trunk_gateway.phone_key) as phone:
            await phone.dial(CALLEE, "+15550001", "pcm16", 8000)
            await phone.wait_answered()
            while not results:
                await phone.wait_frames(phone.frames_received + 5)
            assert results[0], results
            start = phone.frames_received
            sent = noise(1.0, 8000, amplitude=6000)
            await phone.play(sent)
            await phone.wait_frames(start + 50 + 25)
            heard = phone.received()[start * 160:]
            hang_up.set()
            assert await phone.wait_hangup() == "AGENT_HANGUP"
        run = await sipp_run
    _, correlation = best_lag(heard, sent)
    assert correlation > 0.9, f"the caller hears its echo from the SIP callee: {correlation:.3f}"
    assert run.returncode == 0, run.output[-3000:]


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "code"), [(486, "CALLEE_BUSY"), (603, "CALL_REJECTED"),
                                              (480, "CALL_UNANSWERED")])
async def test_a_callee_that_refuses_fails_the_connect_with_its_meaning(
        trunk_gateway: GatewayThread, uas_port: int, status: int, code: str) -> None:
    results: list[object] = []
    async with callee(uas_port, "-sf", str(SCENARIOS / f"uas_refuse_{status}.xml")) as run, \
            manager_for(trunk_gateway) as sm:
        @sm.on_session_notification
        async def on_notify(noti: object) -> None:
            session = await sm.open_session(noti.session_id)  # type: ignore[attr-defined]

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                await call.answer()
                results.append(await call.connect(ring_time_seconds=10))

            await session.ready()

        async with Phone(trunk_gateway.ws_url, trunk_gateway.phone_key) as phone:
            await phone.dial(CALLEE, "+15550001", "pcm16", 8000)
            await phone.wait_answered()
            while not results:
                await phone.wait_frames(phone.frames_received + 5)
            assert not phone.hung_up  # the call goes on after a failed connect
            await phone.hangup()
        sipp_run = await run
    assert not results[0] and results[0].error_code == code  # type: ignore[attr-defined]
    assert sipp_run.returncode == 0, sipp_run.output[-3000:]
