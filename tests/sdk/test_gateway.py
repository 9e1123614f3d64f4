"""Our SDK in-process against our gateway, with simulated callers on loopback."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest

from telcoflow import (
    BufferClosedError,
    BufferFullError,
    Call,
    CallAudioConfig,
    CallFlowBuilder,
    CallState,
    ChannelType,
    CloseReason,
    InboundCallMode,
    Session,
    SessionActivityType,
    SessionManager,
    SessionManagerConfig,
    SessionNotification,
    WSSAuthenticationError,
    WSSCallStateError,
    WSSChannelNotConfigured,
    WSSConnectionError,
    WSSSessionAlreadyExists,
)
from telcoflow.sdk import session as session_module
from telcoflow.sdk.errors import WSSSessionBusy
from telcoflow.testing import GatewayThread, Phone, PhoneError

from .conftest import config_for, dialled, find, manager, noise

RATE = 16000
FRAME = RATE // 50


def answer_with(sm: SessionManager, on_call: Any) -> list[Session]:
    """Install the notify → open → handlers → ready flow; returns the opened sessions."""
    sessions: list[Session] = []

    @sm.on_session_notification
    async def handle(noti: SessionNotification) -> None:
        session = await sm.open_session(noti.session_id)
        sessions.append(session)
        session.on_incoming_call(on_call)
        await session.ready()

    return sessions


@pytest.mark.asyncio
async def test_audio_stream_iterated_before_answer_waits_then_echoes(
        gateway: GatewayThread) -> None:
    ended = asyncio.Event()
    async with manager(gateway) as sm:
        async def on_call(call: Call) -> None:
            stream = call.audio_stream()
            first = asyncio.ensure_future(anext(stream))
            done, _ = await asyncio.wait({first}, timeout=0.05)
            assert not done, "audio_stream() ended before the call was answered"
            assert await call.answer()
            await call.send_audio(await first)
            async for chunk in stream:
                await call.send_audio(chunk)
            ended.set()

        answer_with(sm, on_call)
        sent = noise(0.6, RATE)
        async with dialled(gateway, RATE) as phone:
            await phone.wait_answered(timeout=10)
            start = phone.frames_received
            await phone.play(sent)
            await phone.wait_frames(start + len(sent) // FRAME + 15)
            heard = phone.received()
            await phone.hangup()
        await asyncio.wait_for(ended.wait(), 10)
    lag = find(heard, sent)
    assert lag >= 0 and np.array_equal(heard[lag:lag + len(sent)], sent)


@pytest.mark.asyncio
async def test_each_call_runs_in_its_own_task(gateway: GatewayThread) -> None:
    inside: list[str] = []
    both = asyncio.Event()
    async with manager(gateway) as sm:
        async def on_call(call: Call) -> None:
            inside.append(call.id)
            if len(inside) == 2:
                both.set()
            await both.wait()  # a serial dispatcher would never deliver the second call
            await call.answer()
            await call.close()

        answer_with(sm, on_call)
        async with dialled(gateway) as first, dialled(gateway) as second:
            await asyncio.wait_for(both.wait(), 10)
            assert await first.wait_hangup() and await second.wait_hangup()
    assert len(set(inside)) == 2


@pytest.mark.asyncio
async def test_send_audio_buffer_full_size_and_closed(gateway: GatewayThread) -> None:
    results: dict[str, Any] = {}
    terminated, finished, checked = asyncio.Event(), asyncio.Event(), asyncio.Event()
    cfg = config_for(gateway, RATE, buffer_size=1024)
    async with SessionManager(cfg) as sm:
        async def on_call(call: Call) -> None:
            call.on_terminated(terminated.set)
            await call.answer()
            try:
                await call.send_audio(bytes(2048))
            except BufferFullError:
                results["full"] = True
            results["sizes"] = (call.get_send_audio_buffer_size(),
                                await call.get_send_audio_buffer_size())
            checked.set()
            await terminated.wait()
            try:
                await call.send_audio(bytes(320))
            except BufferClosedError:
                results["closed"] = True
            finished.set()

        answer_with(sm, on_call)
        async with dialled(gateway) as phone:
            await phone.wait_answered(timeout=10)
            await asyncio.wait_for(checked.wait(), 10)
            await phone.hangup()
        await asyncio.wait_for(finished.wait(), 10)
    assert results["full"] and results["closed"]
    sync_size, awaited_size = results["sizes"]
    assert isinstance(sync_size, int) and sync_size == awaited_size


@pytest.mark.asyncio
async def test_clear_send_audio_buffer_drops_queued_audio_and_silences_caller(
        gateway: GatewayThread) -> None:
    cleared: list[int] = []
    async with manager(gateway) as sm:
        async def on_call(call: Call) -> None:
            await call.answer()
            await call.send_audio(noise(3.0, RATE).tobytes())
            stream = call.audio_stream()
            await anext(stream)  # the caller spoke: interrupt
            assert call.get_send_audio_buffer_size() > 0
            cleared.append(await call.clear_send_audio_buffer())
            assert call.get_send_audio_buffer_size() == 0
            async for _ in stream:
                pass

        answer_with(sm, on_call)
        async with dialled(gateway) as phone:
            await phone.wait_answered(timeout=10)
            await phone.wait_frames(10)  # the agent's talking
            await phone.play(np.full(FRAME, 3000, np.int16))
            while not cleared:
                await phone.wait_frames(phone.frames_received + 1)
            mark = phone.frames_received
            await phone.wait_frames(mark + 20)
            tail = phone.received()[(mark + 10) * FRAME:]
            await phone.hangup()
    assert cleared[0] > 0
    assert not tail.any(), "the caller still heard agent audio after the interruption"


@pytest.mark.asyncio
async def test_commands_return_results_and_disconnect_ends_the_call(
        gateway: GatewayThread) -> None:
    seen: dict[str, Any] = {}
    async with manager(gateway) as sm:
        async def on_call(call: Call) -> None:
            assert call.state == CallState.NEW
            handoff = call.to_json()
            seen["answer"] = await call.answer()
            seen["whisper"] = await call.whisper()  # not connected: a result, not a raise
            try:
                call.to_json()
            except WSSCallStateError:
                seen["to_json_refused"] = handoff
            seen["disconnect"] = await call.disconnect()
            seen["state"] = call.state
            late = asyncio.Event()
            call.on_terminated(late.set)  # registered after the end: still called
            await asyncio.wait_for(late.wait(), 5)
            seen["late"] = True

        answer_with(sm, on_call)
        async with dialled(gateway) as phone:
            reason = await phone.wait_hangup(timeout=10)
    assert seen["answer"] and seen["answer"].payload
    assert not seen["whisper"] and seen["whisper"].error_code
    assert seen["to_json_refused"] and seen["disconnect"]
    assert seen["state"] == CallState.TERMINATED and seen["late"]
    assert reason


@pytest.mark.asyncio
async def test_session_busy_for_a_second_manager(gateway: GatewayThread) -> None:
    claimed, refused = asyncio.Event(), asyncio.Event()
    errors: list[BaseException] = []
    async with manager(gateway) as first, manager(gateway) as second:
        @first.on_session_notification
        async def claim(noti: SessionNotification) -> None:
            await first.open_session(noti.session_id)
            claimed.set()

        @second.on_session_notification
        async def late(noti: SessionNotification) -> None:
            await claimed.wait()
            try:
                await second.open_session(noti.session_id)
            except WSSSessionBusy as exc:
                errors.append(exc)
            refused.set()

        async with dialled(gateway):
            await asyncio.wait_for(refused.wait(), 10)
    assert isinstance(errors[0], WSSSessionBusy) and errors[0].bound_sm_ws_id == first.id


@pytest.mark.asyncio
async def test_wrong_api_key_is_refused_with_a_readable_error(gateway: GatewayThread) -> None:
    cfg = SessionManagerConfig.create(api_key="not-the-key", connector_uuid=gateway.connector_uuid,
                                      base_url=gateway.ws_url)
    with pytest.raises(WSSConnectionError) as info:
        async with SessionManager(cfg):
            pass
    assert isinstance(info.value, WSSAuthenticationError)
    assert "not-the-key" not in str(info.value) and str(info.value).strip()


@pytest.mark.asyncio
async def test_rest_listing_create_session_and_call_flow(gateway: GatewayThread) -> None:
    async with manager(gateway) as sm, Phone(gateway.ws_url, gateway.phone_key) as line:
        await line.register("+15559999", answer="never")  # the number an outbound call rings
        session = await sm.create_session(ChannelType.TELCO, "+15559999")
        assert session.channel == ChannelType.TELCO and not session.is_closed
        with pytest.raises(WSSSessionAlreadyExists):
            await sm.create_session(ChannelType.TELCO, "+15559999")
        with pytest.raises(WSSChannelNotConfigured):  # no network carries messages to it
            await sm.create_session(ChannelType.WA, "+15559998")
        listed = await sm.list_sessions(channel=ChannelType.TELCO)
        assert session.id in {info.id for info in listed}
        assert {info.state for info in listed} == {"OPEN"}
        closed: list[CloseReason] = []
        session.on_closed(closed.append)
        await session.close(confirm_timeout=10)
        assert session.is_closed and session.close_reason == CloseReason.SDK_REQUEST
        assert session.id not in {info.id for info in await sm.list_sessions()}

        await sm.setup_call_flow(CallFlowBuilder().inbound_call(InboundCallMode.NO).build())
        with pytest.raises(PhoneError):
            async with dialled(gateway) as phone:
                await phone.wait_answered(timeout=10)


@pytest.mark.asyncio
async def test_warns_when_ready_is_never_called(gateway: GatewayThread,
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(session_module, "READY_WATCHDOG_SECONDS", 0.05)
    warned, arrived = asyncio.Event(), asyncio.Event()
    delivered: list[Call] = []

    def on_call(call: Call) -> None:
        delivered.append(call)
        arrived.set()

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "ready() was never called" in record.getMessage():
                warned.set()

    spy = Spy(logging.WARNING)
    logging.getLogger("telcoflow.session").addHandler(spy)
    try:
        async with manager(gateway) as sm:
            opened: list[Session] = []

            @sm.on_session_notification
            async def handle(noti: SessionNotification) -> None:
                session = await sm.open_session(noti.session_id)
                session.on_incoming_call(on_call)
                opened.append(session)

            async with dialled(gateway):
                await asyncio.wait_for(warned.wait(), 10)
                assert not delivered  # nothing arrives before ready()
                await opened[0].ready()
                await asyncio.wait_for(arrived.wait(), 10)
    finally:
        logging.getLogger("telcoflow.session").removeHandler(spy)
    assert delivered and delivered[0].caller_number == "+15550001"


@pytest.mark.asyncio
async def test_no_key_or_token_in_debug_logs(gateway: GatewayThread) -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    root = logging.getLogger()
    handler = Collect(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s %(exc_info)s"))
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    tokens: list[str] = []
    done = asyncio.Event()
    try:
        async with manager(gateway) as sm:
            async def on_call(call: Call) -> None:
                tokens.append(call._session_token)
                await call.answer()
                async for chunk in call.audio_stream():
                    await call.send_audio(chunk)
                    if call.get_send_audio_buffer_size() == 0:
                        break
                await call.clear_send_audio_buffer()
                await call.close()
                done.set()

            answer_with(sm, on_call)
            async with dialled(gateway) as phone:
                await phone.wait_answered(timeout=10)
                await phone.play(noise(0.1, RATE))
                await asyncio.wait_for(done.wait(), 10)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = "\n".join(records)
    assert tokens and tokens[0] and "telcoflow.voice_session" in text
    assert gateway.api_key not in text
    assert tokens[0] not in text


@pytest.mark.asyncio
async def test_reconnects_after_drop_and_the_call_keeps_flowing(gateway: GatewayThread) -> None:
    activities: list[str] = []
    resumed = asyncio.Event()
    old_closed: list[CloseReason] = []
    async with manager(gateway) as sm:
        first_id = sm.id

        @sm.on_session_notification
        async def handle(noti: SessionNotification) -> None:
            activities.append(noti.activity)
            session = await sm.open_session(noti.session_id)
            if noti.activity == SessionActivityType.RESUME:
                resumed.set()
            else:
                session.on_closed(old_closed.append)
            session.on_incoming_call(echo)
            await session.ready()

        async def echo(call: Call) -> None:
            await call.answer()
            async for chunk in call.audio_stream():
                await call.send_audio(chunk)

        sent = noise(1.0, RATE)
        async with dialled(gateway) as phone:
            await phone.wait_answered(timeout=10)
            player = asyncio.ensure_future(phone.play(np.concatenate([sent] * 4)))
            await phone.wait_frames(phone.frames_received + 10)
            gateway.drop_sm_connections()
            await asyncio.wait_for(resumed.wait(), 15)
            mark = phone.frames_received
            await phone.wait_frames(mark + 25)
            after = phone.received()[mark * FRAME:]
            player.cancel()
            await phone.hangup()
    assert activities[0] == SessionActivityType.NEW_INCOMING_CALL and resumed.is_set()
    assert old_closed == [CloseReason.FORCE_CLOSE]
    assert sm.id != first_id
    assert np.count_nonzero(after) > len(after) // 2, "no echo after the reconnect"


@pytest.mark.asyncio
async def test_audio_config_threads_to_calls(gateway: GatewayThread) -> None:
    got: list[CallAudioConfig] = []
    async with manager(gateway, rate=8000) as sm:
        async def on_call(call: Call) -> None:
            got.append(call.audio_config)
            await call.answer()
            await call.close()

        answer_with(sm, on_call)
        async with dialled(gateway) as phone:
            await phone.wait_hangup(timeout=10)
    assert got[0].sample_rate == 8000
