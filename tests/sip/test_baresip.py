"""baresip, a second and independent SIP user agent, calls an echoing agent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from telcoflow import Call, CallAudioConfig, SessionManager, SessionManagerConfig
from telcoflow.audio.align import best_lag
from telcoflow.sdk import SessionNotification
from telcoflow.testing import GatewayThread

from .peers import baresip, baresip_audio, baresip_config, pcap_speech, write_wav


@pytest.mark.asyncio
async def test_baresip_hears_its_own_speech_echoed_by_an_agent(
        sip_gateway: GatewayThread, tmp_path: Path) -> None:
    # speech, then a second of silence so the echo is back before baresip hangs
    # up (it does at the end of its file: the BYE comes from its side)
    speech = pcap_speech()[: 3 * 8000]
    source = write_wav(tmp_path / "speech.wav", np.concatenate([speech, np.zeros(8000, np.int16)]))
    directory = baresip_config(tmp_path, source)
    ended = asyncio.Event()
    manager = SessionManager(SessionManagerConfig.create(
        api_key=sip_gateway.api_key, connector_uuid=sip_gateway.connector_uuid,
        base_url=sip_gateway.ws_url, call_audio=CallAudioConfig(sample_rate=8000)))
    async with manager as sm:

        @sm.on_session_notification
        async def offered(notification: SessionNotification) -> None:
            session = await sm.open_session(notification.session_id)

            @session.on_incoming_call
            async def echo(call: Call) -> None:
                call.on_terminated(ended.set)
                assert await call.answer()
                async for chunk in call.audio_stream():
                    await call.send_audio(chunk)

            await session.ready()

        sip = sip_gateway.config.sip
        assert sip is not None
        async with baresip(directory, f"/dial sip:{sip_gateway.number}@127.0.0.1:{sip.port}"):
            await asyncio.wait_for(ended.wait(), 15)
    output = (tmp_path / "baresip.log").read_text(errors="replace")
    assert "Call established" in output, output[-3000:]
    sent, heard = baresip_audio(tmp_path)
    lag, correlation = best_lag(heard, sent[: len(speech)])
    assert correlation > 0.95, f"correlation {correlation:.3f} at lag {lag}"
    assert 0 < lag < 8000 * 0.3, f"the echo came back {lag / 8:.0f} ms late"
