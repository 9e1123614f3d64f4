"""Calls through the Twilio door: a real gateway on loopback, the emulator client, real agents."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from telcoflow import Call, CallAudioConfig, SessionManager, SessionManagerConfig
from telcoflow.protocol import twilio as tw
from telcoflow.telephony.twilio import TwilioLeg
from telcoflow.telephony.twilio import media as twilio_media
from telcoflow.telephony.twilio.media import MARK_EVERY_FRAMES
from telcoflow.testing import GatewayThread
from telcoflow.testing.twilio_client import TwilioCaller

from ..interop.agent_process import scenario_agent, wait_mark
from ..interop.signals import best_lag, chirp, tone, voiced_frames

pytestmark = pytest.mark.asyncio

OnCall = Callable[[Call], Awaitable[None]]
FRAME_B64 = base64.b64encode(b"\xff" * 160).decode()
FRAME_B64_200MS = base64.b64encode(b"\xff" * 1600).decode()


def caller(gw: GatewayThread) -> TwilioCaller:
    assert gw.config.twilio is not None
    return TwilioCaller(gw.http_url, gw.config.twilio.auth_token)


@asynccontextmanager
async def agent(gw: GatewayThread, on_call: OnCall, rate: int = 8000
                ) -> AsyncIterator[SessionManager]:
    """Our SDK, in process, taking every call with ``on_call``."""
    sm = SessionManager(SessionManagerConfig.create(
        api_key=gw.api_key, connector_uuid=gw.connector_uuid, base_url=gw.ws_url,
        call_audio=CallAudioConfig(sample_rate=rate)))
    async with sm:
        @sm.on_session_notification
        async def on_notify(noti: Any) -> None:
            session = await sm.open_session(noti.session_id)
            session.on_incoming_call(on_call)
            await session.ready()

        yield sm


def leg_of(gw: GatewayThread, call_sid: str) -> TwilioLeg:
    def find() -> TwilioLeg:
        return next(leg for leg in gw.gateway.engine.legs
                    if isinstance(leg, TwilioLeg) and leg.call_sid == call_sid)
    leg = gw.run(find)
    assert isinstance(leg, TwilioLeg)
    return leg


async def talkspurt_over(c: TwilioCaller, frames: int) -> None:
    """At least ``frames`` played, then 5 silent ticks, every mark echoed."""
    await c.wait_until(lambda: c.played_frames >= frames and c.quiet_ticks >= 5, 10,
                       f"{frames} frames played, then quiet")
    await c.wait_idle(5)


# ── audio ─────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("rate", [8000, 16000, 24000])
async def test_the_published_sdk_echoes_through_twilio(gateway: GatewayThread, refsdk_path: Path,
                                                       rate: int) -> None:
    with scenario_agent(refsdk_path, gateway, "echo", AGENT_RATE=str(rate)) as proc:
        await wait_mark(proc, "connected")
        sent = chirp(1.0, 8000, f1=3000.0)
        async with caller(gateway) as c:
            await c.dial(gateway.number)
            await c.wait_answered(15)
            start = len(c.received())
            assert await c.play(sent) == 50
            await talkspurt_over(c, 50)
            heard = voiced_frames(c.received()[start:], 160)
            await c.hangup()
        await wait_mark(proc, "call_terminated")
    _, correlation = best_lag(heard, sent)
    assert correlation > 0.99, f"echo at {rate} Hz correlates {correlation:.4f}"


async def test_every_mark_is_echoed_and_the_played_position_matches(
        gateway: GatewayThread) -> None:
    spoken = tone(440.0, 0.6, 8000)

    async def speak(call: Call) -> None:
        await call.answer()
        await call.send_audio(spoken.tobytes())

    async with agent(gateway, speak), caller(gateway) as c:
        sid = await c.dial(gateway.number)
        await c.wait_answered(10)
        assert c.marks_received[0] == tw.ANSWERED_MARK
        await talkspurt_over(c, 30)
        leg = leg_of(gateway, sid)
        played = gateway.run(lambda: (leg.played_frames, leg.sent_frames,
                                      leg.ledger.marks_pending))
        assert c.marks_echoed == c.marks_received  # all of them, in order
        # answered, one per MARK_EVERY_FRAMES frames, and the talkspurt's end
        assert len(c.marks_received) >= 1 + 30 // MARK_EVERY_FRAMES
        assert played == (c.played_frames, c.played_frames, 0)
        assert c.played_frames == 30
        await c.hangup()


async def test_an_interrupt_clears_what_the_caller_has_not_heard(gateway: GatewayThread) -> None:
    interrupt = asyncio.Event()
    dropped: list[int] = []
    stopped_ms: list[int] = []

    async def speak_then_stop(call: Call) -> None:
        await call.answer()
        await call.send_audio(tone(440.0, 3.0, 8000).tobytes())
        await interrupt.wait()
        dropped.append(await call.clear_send_audio_buffer())
        stopped_ms.append(call.played_ms)  # what the agent is told the caller heard

    async with agent(gateway, speak_then_stop), caller(gateway) as c:
        sid = await c.dial(gateway.number)
        await c.wait_answered(10)
        await c.wait_played(10)
        interrupt.set()
        await c.wait_until(lambda: c.clears == 1, 5, "a clear")
        await c.wait_until(lambda: c.quiet_ticks >= 5, 5, "quiet after the clear")
        await c.wait_idle(5)
        assert c.stale_frames_after_clear <= 1
        assert c.played_frames < 100, "the tone went on playing after the interrupt"
        assert c.marks_echoed == c.marks_received
        leg = leg_of(gateway, sid)
        gw_played = gateway.run(lambda: leg.played_frames)
        assert isinstance(gw_played, int)
        assert abs(gw_played - c.played_frames) <= 1
        # ... and the agent was told so, to the frame (8 kHz: 20 ms a frame)
        await c.wait_until(lambda: bool(stopped_ms), 5, "the interrupt's answer")
        assert abs(stopped_ms[0] - c.played_frames * 20) <= 20, (stopped_ms, c.played_frames)
        await c.hangup()


# ── keys and hang-ups ─────────────────────────────────────────────────────────

async def test_dtmf_reaches_the_agent_in_order(gateway: GatewayThread) -> None:
    digits: list[tuple[str, int]] = []
    got = asyncio.Event()

    async def listen(call: Call) -> None:
        @call.on_dtmf
        def on_dtmf(dtmf: Any) -> None:
            digits.append((dtmf.digit, dtmf.duration_ms))
            if len(digits) == 5:
                got.set()

        await call.answer()

    async with agent(gateway, listen), caller(gateway) as c:
        await c.dial(gateway.number)
        await c.wait_answered(10)
        await c.send_dtmf("19#*A")
        await asyncio.wait_for(got.wait(), 5)
        await c.hangup()
    assert digits == [(d, 100) for d in "19#*A"]


async def test_the_callers_stop_ends_the_agents_call(gateway: GatewayThread) -> None:
    terminated = asyncio.Event()

    async def answer(call: Call) -> None:
        call.on_terminated(terminated.set)
        await call.answer()

    async with agent(gateway, answer), caller(gateway) as c:
        await c.dial(gateway.number)
        await c.wait_answered(10)
        await c.hangup()
        await asyncio.wait_for(terminated.wait(), 5)


async def test_the_agents_hang_up_closes_the_stream_with_a_reason(
        gateway: GatewayThread) -> None:
    async def answer_and_leave(call: Call) -> None:
        await call.answer()
        await call.disconnect()

    async with agent(gateway, answer_and_leave), caller(gateway) as c:
        await c.dial(gateway.number)
        reason = await c.wait_closed(10)
    assert reason.startswith("AGENT_HANGUP"), reason
    assert c.close_code == 1000


async def test_a_number_in_no_route_closes_with_not_in_service(gateway: GatewayThread) -> None:
    async with caller(gateway) as c:
        await c.dial("+19990000000")
        assert (await c.wait_closed(5)).startswith("NOT_IN_SERVICE")


# ── the webhook ───────────────────────────────────────────────────────────────

async def test_a_bad_or_missing_signature_is_refused(gateway: GatewayThread) -> None:
    async with caller(gateway) as c:
        params = c.call_params(gateway.number, "+15550001")
        status, body = await c.post_webhook(params, signature="")
        assert status == 403
        status, body = await c.post_webhook(params, signature=c.sign({"To": "+1"}))
        assert status == 403
        assert gateway.config.twilio is not None
        assert gateway.config.twilio.auth_token.encode() not in body
        forged = TwilioCaller(gateway.http_url, "not the account's token")
        status, _ = await forged.post_webhook(params)
        assert status == 403
        status, body = await c.post_webhook(params)
        assert status == 200 and b"<Connect><Stream" in body


async def test_a_bad_token_on_start_closes_the_stream(gateway: GatewayThread) -> None:
    async with caller(gateway) as c:
        await c.dial(gateway.number, tamper=lambda p: p.update(token=p["token"][:-2] + "xx"))
        assert (await c.wait_closed(5)).startswith("stream token refused"), c.close_reason
        assert c.close_code == 1008
    async with caller(gateway) as c:
        await c.dial(gateway.number, tamper=lambda p: p.pop("token"))
        assert "no token" in await c.wait_closed(5)


async def test_the_stream_is_routed_as_the_signed_webhook_said(gateway: GatewayThread) -> None:
    """start.customParameters come back from the stream's far end: a To changed there
    does not move the call to another number (a stolen token cannot pick its victim)."""
    async with caller(gateway) as c:
        await c.dial("+19990000000", tamper=lambda p: p.update(To=gateway.number))
        assert (await c.wait_closed(5)).startswith("NOT_IN_SERVICE")


async def test_a_token_opens_one_stream_only(gateway: GatewayThread) -> None:
    async with caller(gateway) as first:
        await first.dial(gateway.number)
        async with caller(gateway) as again:
            again.call_sid, again.stream_url = first.call_sid, first.stream_url
            await again.open_stream()
            await again.send_raw(tw.build_connected())
            await again.send_start(first.parameters)
            assert "already opened" in await again.wait_closed(5)


# ── bad input ─────────────────────────────────────────────────────────────────

def _media(sid: str, payload: str) -> str:
    return json.dumps({"event": "media", "sequenceNumber": "9", "streamSid": sid,
                       "media": {"track": "inbound", "chunk": "1", "timestamp": "0",
                                 "payload": payload}})


@pytest.mark.parametrize(("junk", "code"), [
    (lambda sid: _media("MZ" + "0" * 32, FRAME_B64), "UNKNOWN_STREAM_SID"),
    (lambda sid: _media(sid, "not base64!"), "BAD_PAYLOAD"),
    (lambda sid: _media(sid, "/////w=="), "BAD_PAYLOAD"),          # 5 bytes: not 20 ms
    (lambda sid: "{not json", "BAD_JSON"),
    (lambda sid: tw.build_connected(), "OUT_OF_ORDER"),
])
async def test_junk_in_a_started_stream_closes_it_with_its_code(
        gateway: GatewayThread, junk: Callable[[str], str], code: str) -> None:
    async with caller(gateway) as c, caller(gateway) as bystander:
        await c.dial(gateway.number)
        await bystander.dial(gateway.number)
        await c.send_raw(junk(c.stream_sid))
        assert (await c.wait_closed(5)).startswith(code), c.close_reason
        assert c.close_code == 1008
        # the other call is untouched
        assert await bystander.send_raw(tw.build_dtmf(5, bystander.stream_sid, "1"))
        assert not bystander.hung_up


async def test_media_before_start_closes_the_stream(gateway: GatewayThread) -> None:
    async with caller(gateway) as c:
        await c.post_webhook(c.call_params(gateway.number, "+15550001"))
        c.stream_url = gateway.ws_url + tw.MEDIA_PATH
        await c.open_stream()
        await c.send_raw(tw.build_connected())
        await c.send_raw(_media(c.stream_sid, FRAME_B64))
        assert (await c.wait_closed(5)).startswith("OUT_OF_ORDER: media before start")


async def test_a_stream_that_never_starts_is_closed(gateway: GatewayThread,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The upgrade carries no credentials (the token comes in `start`): a socket that
    only says `connected`, however well it answers pings, is closed after a while."""
    monkeypatch.setattr(twilio_media, "START_WITHIN_S", 0.3)
    async with caller(gateway) as c:
        c.stream_url = gateway.ws_url + tw.MEDIA_PATH
        await c.open_stream()
        await c.send_raw(tw.build_connected())
        assert (await c.wait_closed(5)) == "no valid start within 0.3 s"


async def test_a_start_in_another_format_closes_the_stream(gateway: GatewayThread) -> None:
    async with caller(gateway) as c:
        status, body = await c.post_webhook(c.call_params(gateway.number, "+15550001"))
        assert status == 200
        c.stream_url = gateway.ws_url + tw.MEDIA_PATH
        await c.open_stream()
        await c.send_raw(tw.build_connected())
        await c.send_start({}, sample_rate=16000)
        assert (await c.wait_closed(5)).startswith("BAD_MEDIA_FORMAT")


async def test_binary_frames_close_the_stream(gateway: GatewayThread) -> None:
    async with caller(gateway) as c:
        await c.dial(gateway.number)
        await c.send_raw(b"\x00" * 160)
        await c.wait_closed(5)
        assert c.close_code == 1003


async def test_an_unknown_event_is_skipped_and_the_call_goes_on(gateway: GatewayThread) -> None:
    got = asyncio.Event()

    async def listen(call: Call) -> None:
        call.on_dtmf(lambda dtmf: got.set())
        await call.answer()

    async with agent(gateway, listen), caller(gateway) as c:
        sid = await c.dial(gateway.number)
        await c.wait_answered(10)
        await c.send_raw(json.dumps({"event": "transcript", "streamSid": c.stream_sid}))
        await c.send_dtmf("5")
        await asyncio.wait_for(got.wait(), 5)
        leg = leg_of(gateway, sid)
        assert gateway.run(lambda: leg.stream.ignored_frames) == 1
        assert not c.hung_up
        await c.hangup()


async def test_a_flood_of_frames_closes_the_stream(gateway: GatewayThread) -> None:
    async with caller(gateway) as c:
        await c.dial(gateway.number)
        echo = tw.build_mark_echo(3, c.stream_sid, "nothing")
        for _ in range(1000):
            if not await c.send_raw(echo):
                break
        assert (await c.wait_closed(5)).startswith("FLOOD"), c.close_reason


async def test_audio_faster_than_real_time_is_dropped_not_played(
        gateway: GatewayThread) -> None:
    async with caller(gateway) as c:
        sid = await c.dial(gateway.number)
        frame = _media(c.stream_sid, FRAME_B64_200MS)       # 200 ms each
        for _ in range(30):                                  # 6 s at once
            await c.send_raw(frame)
        await c.send_dtmf("1")                               # a frame after them all
        leg = leg_of(gateway, sid)
        await c.wait_until(lambda: gateway.run(lambda: leg.stream.audio_dropped) != 0, 5,
                           "audio dropped")
        assert not c.hung_up
