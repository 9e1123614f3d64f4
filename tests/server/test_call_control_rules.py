"""Call-control rules with our SDK in-process: connect outcomes, who leaves when."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import numpy as np
import pytest

from telcoflow import (
    Call,
    CallFlowBuilder,
    CloseReason,
    InboundCallMode,
    SessionManager,
    SessionNotification,
)
from telcoflow.testing import GatewayThread, Phone, PhoneError

from ..interop.conference import AMPLITUDE, FREQS, who_is_heard
from ..interop.signals import tone
from ..sdk.conftest import config_for

OnCall = Callable[[Call], Awaitable[None]]


async def run_call(gw: GatewayThread, on_call: OnCall,
                   closed: list[str] | None = None) -> SessionManager:
    sm = SessionManager(config_for(gw))
    await sm.__aenter__()

    @sm.on_session_notification
    async def handle(noti: SessionNotification) -> None:
        session = await sm.open_session(noti.session_id)
        if closed is not None:
            session.on_closed(lambda reason: closed.append(str(reason)))
        session.on_incoming_call(on_call)
        await session.ready()

    return sm


async def line_and_caller(gw: GatewayThread, stack: Any, **line_kw: Any) -> tuple[Phone, Phone]:
    line = await stack.enter_async_context(Phone(gw.ws_url, gw.phone_key))
    if line_kw.get("answer") != "absent":
        await line.register(gw.number, **line_kw)
    caller = await stack.enter_async_context(Phone(gw.ws_url, gw.phone_key))
    await caller.dial(to=gw.number, caller="+15550001")
    await caller.wait_answered(timeout=10)
    return line, caller


@pytest.mark.asyncio
async def test_modes_before_connect_fail_and_connect_needs_an_answer(
        gateway: GatewayThread) -> None:
    results: dict[str, Any] = {}
    done = asyncio.Event()

    async def on_call(call: Call) -> None:
        results["early"] = await call.connect(ring_time_seconds=5)
        await call.answer()
        for name in ("whisper", "barge", "spy"):
            results[name] = await getattr(call, name)()
        done.set()

    sm = await run_call(gateway, on_call)
    async with AsyncExitStack() as stack:
        await line_and_caller(gateway, stack)
        await asyncio.wait_for(done.wait(), 10)
    await sm.__aexit__(None, None, None)
    assert results["early"].error_code == "INVALID_STATE"
    for name in ("whisper", "barge", "spy"):
        assert not results[name] and results[name].error_code == "NOT_CONNECTED", name
        assert "after call.connect" in results[name].error_message


@pytest.mark.asyncio
@pytest.mark.parametrize(("answer", "code", "line_reason"), [
    ("never", "CALL_UNANSWERED", "RING_TIMEOUT"),
    ("reject", "CALL_REJECTED", "DECLINED"),
    ("absent", "CALL_UNANSWERED", None),
])
async def test_failed_connect_keeps_the_call_up(gateway: GatewayThread, answer: str, code: str,
                                                line_reason: str | None) -> None:
    results: dict[str, Any] = {}
    connected = asyncio.Event()

    async def on_call(call: Call) -> None:
        await call.answer()
        results["connect"] = await call.connect(ring_time_seconds=1)
        connected.set()
        async for chunk in call.audio_stream():  # still talking to the caller: echo
            await call.send_audio(chunk)

    sm = await run_call(gateway, on_call)
    async with AsyncExitStack() as stack:
        line, caller = await line_and_caller(gateway, stack, answer=answer)
        await asyncio.wait_for(connected.wait(), 10)
        if line_reason is not None:
            assert await line.wait_hangup(timeout=5) == line_reason
        start = caller.frames_received
        await caller.play(tone(FREQS["caller"], 0.4, 8000, AMPLITUDE))
        await caller.wait_frames(start + 30)
        assert who_is_heard(caller.received()[start * 160:], 8000) == {"caller"}  # the echo
        assert not caller.hung_up
    await sm.__aexit__(None, None, None)
    assert not results["connect"] and results["connect"].error_code == code


@pytest.mark.asyncio
async def test_busy_line_and_retry_after_unanswered(gateway: GatewayThread) -> None:
    first: list[str | None] = []
    busy: list[str | None] = []
    second_try, bridged, busy_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def on_call(call: Call) -> None:
        await call.answer()
        if call.caller_number == "+15550001":
            first.append((await call.connect(ring_time_seconds=1)).error_code)
            await second_try.wait()
            first.append((await call.connect(ring_time_seconds=5)).error_code)
            bridged.set()
        else:
            busy.append((await call.connect(ring_time_seconds=1)).error_code)
            busy_done.set()

    sm = await run_call(gateway, on_call)
    async with AsyncExitStack() as stack:
        line, caller = await line_and_caller(gateway, stack, answer="manual")
        await line.wait_incoming()
        assert await line.wait_hangup(timeout=5) == "RING_TIMEOUT"
        second_try.set()
        await line.wait_incoming()
        assert line.events.calls_offered == 2
        await line.answer()
        await asyncio.wait_for(bridged.wait(), 5)
        other = await stack.enter_async_context(Phone(gateway.ws_url, gateway.phone_key))
        await other.dial(to=gateway.number, caller="+15550002")
        await other.wait_answered(timeout=10)
        await asyncio.wait_for(busy_done.wait(), 5)
    await sm.__aexit__(None, None, None)
    assert first == ["CALL_UNANSWERED", None]
    assert busy == ["CALLEE_BUSY"]


@pytest.mark.asyncio
async def test_close_after_connect_leaves_caller_and_callee_talking(
        gateway: GatewayThread) -> None:
    results: dict[str, Any] = {}
    closed: list[str] = []
    left = asyncio.Event()

    async def on_call(call: Call) -> None:
        await call.answer()
        results["connect"] = await call.connect(ring_time_seconds=5)
        results["close"] = await call.close()
        results["state"] = call.state
        left.set()

    sm = await run_call(gateway, on_call, closed)
    async with AsyncExitStack() as stack:
        line, caller = await line_and_caller(gateway, stack, codec="pcm16", sample_rate=16000)
        await asyncio.wait_for(left.wait(), 10)
        c0, l0 = caller.frames_received, line.frames_received
        await asyncio.gather(caller.play(tone(FREQS["caller"], 0.4, 8000, AMPLITUDE)),
                             line.play(tone(FREQS["callee"], 0.4, 16000, AMPLITUDE)))
        await asyncio.gather(caller.wait_frames(c0 + 25), line.wait_frames(l0 + 25))
        assert who_is_heard(caller.received()[c0 * 160:], 8000) == {"callee"}
        assert who_is_heard(line.received()[l0 * 320:], 16000) == {"caller"}
        await caller.hangup()
        assert await line.wait_hangup() == "OTHER_PARTY_HANGUP"
    await sm.__aexit__(None, None, None)
    assert results["connect"] and results["close"]
    assert str(results["state"]).endswith("TERMINATED")
    assert closed == [str(CloseReason.SDK_REQUEST)]


@pytest.mark.asyncio
async def test_agent_is_terminated_only_when_no_other_party_is_left(
        gateway: GatewayThread) -> None:
    heard: list[bytes] = []
    bridged, terminated = asyncio.Event(), asyncio.Event()
    closed: list[str] = []

    async def on_call(call: Call) -> None:
        call.on_terminated(terminated.set)
        await call.answer()
        assert await call.connect(ring_time_seconds=5)
        bridged.set()
        async for chunk in call.audio_stream():
            heard.append(chunk)

    sm = await run_call(gateway, on_call, closed)
    async with AsyncExitStack() as stack:
        line, caller = await line_and_caller(gateway, stack, codec="pcm16", sample_rate=16000)
        await asyncio.wait_for(bridged.wait(), 10)
        await caller.hangup()
        # the caller left; callee and agent are still on the call
        await line.play(tone(FREQS["callee"], 0.4, 16000, AMPLITUDE))
        assert not terminated.is_set() and not line.hung_up
        await line.hangup()
        await asyncio.wait_for(terminated.wait(), 5)
    await sm.__aexit__(None, None, None)
    agent_heard = np.frombuffer(b"".join(heard), "<i2")
    assert who_is_heard(agent_heard[-8000:], 16000) == {"callee"}
    assert closed == [str(CloseReason.CALL_TERMINATED)]


@pytest.mark.asyncio
async def test_callee_leaving_returns_to_a_two_party_call(gateway: GatewayThread) -> None:
    results: dict[str, Any] = {}
    bridged, callee_gone, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def on_call(call: Call) -> None:
        await call.answer()
        assert await call.connect(ring_time_seconds=5)
        bridged.set()
        await callee_gone.wait()
        results["whisper"] = await call.whisper()
        await call.send_audio(tone(FREQS["agent"], 0.4, 16000, AMPLITUDE).tobytes())
        done.set()

    sm = await run_call(gateway, on_call)
    async with AsyncExitStack() as stack:
        line, caller = await line_and_caller(gateway, stack)
        await asyncio.wait_for(bridged.wait(), 10)
        await line.hangup()
        callee_gone.set()
        await asyncio.wait_for(done.wait(), 5)
        start = caller.frames_received
        await caller.wait_frames(start + 30)
        assert who_is_heard(caller.received()[start * 160:], 8000) == {"agent"}
        assert not caller.hung_up
    await sm.__aexit__(None, None, None)
    assert results["whisper"].error_code == "NOT_CONNECTED"


@pytest.mark.asyncio
async def test_caller_hanging_up_while_the_callee_rings(gateway: GatewayThread) -> None:
    results: dict[str, Any] = {}
    done = asyncio.Event()

    async def on_call(call: Call) -> None:
        await call.answer()
        try:
            results["connect"] = await call.connect(ring_time_seconds=10)
        except Exception as exc:  # the voice connection may close first: also an answer
            results["connect"] = exc
        done.set()

    sm = await run_call(gateway, on_call)
    async with AsyncExitStack() as stack:
        line, caller = await line_and_caller(gateway, stack, answer="manual")
        await line.wait_incoming()
        await caller.hangup()
        assert await line.wait_hangup() == "CALLER_GONE"
        await asyncio.wait_for(done.wait(), 5)
        with pytest.raises(PhoneError):
            await line.wait_answered(timeout=0.1)
    await sm.__aexit__(None, None, None)
    outcome = results["connect"]
    assert getattr(outcome, "error_code", None) == "CALL_TERMINATED", outcome


@pytest.mark.asyncio
@pytest.mark.parametrize("subscriber", ["answers", "misses", "rejects"])
async def test_missed_only_rings_the_subscriber_first(subscriber: str) -> None:
    offered = asyncio.Event()
    answered: list[str] = []
    with GatewayThread(ring_timeout_s=10.0, missed_ring_s=0.5) as gw:
        async def on_call(call: Call) -> None:
            answered.append(call.id)
            await call.answer()
            await call.send_audio(tone(FREQS["agent"], 0.4, 16000, AMPLITUDE).tobytes())

        sm = await run_call(gw, on_call)
        sm.on_session_notification(lambda noti: offered.set())  # the agents' view
        await sm.setup_call_flow(CallFlowBuilder().inbound_call(InboundCallMode.MISSED_ONLY)
                                 .build())
        policy = {"answers": "auto", "misses": "never", "rejects": "reject"}[subscriber]
        async with AsyncExitStack() as stack:
            line = await stack.enter_async_context(Phone(gw.ws_url, gw.phone_key))
            await line.register(gw.number, answer=policy)
            caller = await stack.enter_async_context(Phone(gw.ws_url, gw.phone_key))
            await caller.dial(to=gw.number, caller="+15550001")
            await line.wait_incoming()
            await caller.wait_answered(timeout=10)
            start = caller.frames_received
            if subscriber == "answers":
                await line.wait_answered(timeout=5)
                await line.play(tone(FREQS["callee"], 0.4, 8000, AMPLITUDE))
                await caller.wait_frames(start + 25)
                assert who_is_heard(caller.received()[start * 160:], 8000) == {"callee"}
                await line.hangup()
                assert await caller.wait_hangup() == "OTHER_PARTY_HANGUP"
            else:
                assert await line.wait_hangup() in ("RING_TIMEOUT", "DECLINED")
                await caller.wait_frames(start + 25)
                assert who_is_heard(caller.received()[start * 160:], 8000) == {"agent"}
                await caller.hangup()
        await sm.__aexit__(None, None, None)
    assert offered.is_set() is (subscriber != "answers")
    assert len(answered) == (0 if subscriber == "answers" else 1)
