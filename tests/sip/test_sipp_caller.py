"""SIPp calls the gateway: recorded speech and RFC 4733 digits reach the agent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from telcoflow import Call, SessionManager, SessionManagerConfig
from telcoflow.audio.align import best_lag
from telcoflow.sdk import DtmfDigit
from telcoflow.testing import GatewayThread

from ..interop.agent_process import scenario_agent, wait_mark
from .peers import SCENARIOS, free_media_port, free_udp_port, pcap_speech, sipp


def caller_args(gw: GatewayThread, scenario: str = "uac_pcap_dtmf.xml") -> list[str]:
    sip = gw.config.sip
    assert sip is not None
    return ["-sf", str(SCENARIOS / scenario), "-s", gw.number, "-i", "127.0.0.1",
            "-p", str(free_udp_port()), "-mi", "127.0.0.1", "-mp", str(free_media_port()),
            "-m", "1", f"127.0.0.1:{sip.port}"]


@pytest.mark.asyncio
async def test_the_published_sdk_hears_sipps_recorded_speech(
        sip_gateway: GatewayThread, refsdk_path: Path, tmp_path: Path) -> None:
    recording = tmp_path / "heard.pcm"
    with scenario_agent(refsdk_path, sip_gateway, "record", AGENT_RATE="8000",
                        RECORD_FILE=str(recording)) as agent:
        await wait_mark(agent, "connected")
        run = await sipp(*caller_args(sip_gateway), timeout=40)
        await wait_mark(agent, "stream_ended")
    assert run.returncode == 0, run.output[-3000:]
    heard = np.frombuffer(recording.read_bytes(), "<i2")
    speech = pcap_speech()
    lag, correlation = best_lag(heard, speech)
    assert correlation > 0.98, f"correlation {correlation:.3f} at lag {lag}"
    assert len(heard) >= len(speech)  # all of it, 30 ms packets re-cut into 20 ms frames


@pytest.mark.asyncio
async def test_our_sdk_gets_the_digits_in_order(sip_gateway: GatewayThread) -> None:
    digits: list[DtmfDigit] = []
    config = SessionManagerConfig.create(api_key=sip_gateway.api_key,
                                         connector_uuid=sip_gateway.connector_uuid,
                                         base_url=sip_gateway.ws_url)
    async with SessionManager(config) as sm:
        @sm.on_session_notification
        async def on_notify(noti: object) -> None:
            session = await sm.open_session(noti.session_id)  # type: ignore[attr-defined]

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                call.on_dtmf(digits.append)
                await call.answer()
                async for chunk in call.audio_stream():
                    await call.send_audio(chunk)

            await session.ready()

        run = await sipp(*caller_args(sip_gateway), timeout=40)
    assert run.returncode == 0, run.output[-3000:]
    assert [d.digit for d in digits] == ["1", "2", "3"]
    assert all(d.duration_ms == 280 and d.channel == 1 for d in digits), digits


@pytest.mark.asyncio
@pytest.mark.parametrize(("scenario", "number"), [("uac_expect_404.xml", "+19990000"),
                                                  ("uac_expect_488.xml", None)])
async def test_refused_calls_get_the_status_that_says_why(
        sip_gateway: GatewayThread, scenario: str, number: str | None) -> None:
    """404 for a number nobody routes (with a Reason header), 488 when no codec is
    common; the scenarios fail unless that exact response comes."""
    args = caller_args(sip_gateway, scenario)
    if number is not None:
        args[args.index("-s") + 1] = number
    run = await sipp(*args, timeout=20)
    assert run.returncode == 0 and run.counter("Successful call") == 1, run.output[-3000:]
