"""Session and call lifecycle with the published SDK as the agent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from telcoflow.testing import GatewayThread, Phone

from .agent_process import AgentProcess, wait_mark
from .agent_process import scenario_agent as agent
from .signals import echo_of, noise, tone


def resumed_answer(proc: AgentProcess, resumed: str, timeout: float = 20.0) -> str:
    """The agent's 'answered' for the call that RESUME re-offered.

    Searched for after the RESUME line, never from an index taken when the link
    was dropped: the stdout pump may append the pre-drop 'answered' after any
    such index, and that line says nothing about the resumed voice connection.
    """
    return proc.wait_for("MARK answered True", timeout, proc.lines.index(resumed) + 1)


@pytest.fixture
def fast_ring() -> Iterator[GatewayThread]:
    with GatewayThread(ring_timeout_s=1.0) as gw:
        yield gw


@pytest.mark.asyncio
async def test_nothing_is_pushed_before_ready(gateway: GatewayThread, refsdk_path: Path) -> None:
    with agent(refsdk_path, gateway, "gating") as proc:
        await wait_mark(proc, "connected")
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            call_id = await phone.dial(gateway.number, "+15550001", "pcm16", 16000)
            await wait_mark(proc, "waiting_for_go")
            session = gateway.run(lambda: gateway.gateway.engine.calls[call_id].session)
            assert session.bound is not None and session.call_in_sent_to is None
            assert not proc.marks("call_in")
            proc.say("go")
            await wait_mark(proc, "call_in")
            await phone.wait_answered()
            await phone.hangup()


@pytest.mark.asyncio
async def test_second_connection_gets_session_busy(gateway: GatewayThread,
                                                   refsdk_path: Path) -> None:
    with agent(refsdk_path, gateway, "busy") as proc:
        line = await wait_mark(proc, "connected")
        first_id = line.split()[2]
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            await phone.dial(gateway.number, "+15550001")
            refused = await wait_mark(proc, "second_refused")
            await phone.hangup()
    assert refused.split()[2:] == ["WSSSessionBusy", first_id]


@pytest.mark.asyncio
async def test_caller_hangup_terminates_call_then_closes_session(gateway: GatewayThread,
                                                                 refsdk_path: Path) -> None:
    with agent(refsdk_path, gateway, "echo") as proc:
        await wait_mark(proc, "connected")
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            call_id = await phone.dial(gateway.number, "+15550001", "pcm16", 16000)
            await phone.wait_answered()
            await phone.hangup()
        await wait_mark(proc, "session_closed")
        await wait_mark(proc, "stream_ended")
    order = [ln.split()[1] for ln in proc.lines if ln.startswith("MARK ")]
    assert order.index("call_terminated") < order.index("session_closed")
    assert proc.marks("call_terminated") == [[call_id]]
    assert proc.marks("session_closed")[0][1] == "CALL_TERMINATED"


@pytest.mark.asyncio
@pytest.mark.parametrize("command", ["close", "disconnect"])
async def test_agent_ends_the_call(gateway: GatewayThread, refsdk_path: Path,
                                   command: str) -> None:
    with agent(refsdk_path, gateway, command) as proc:
        await wait_mark(proc, "connected")
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            await phone.dial(gateway.number, "+15550001")
            await phone.wait_answered()
            proc.say("now")
            reason = await phone.wait_hangup()
        done = (await wait_mark(proc, "command_done")).split()
        closed = await wait_mark(proc, "session_closed")
    assert reason == "AGENT_HANGUP"
    assert done[3:5] == ["True", "TERMINATED"]
    assert closed.split()[3] == "SDK_REQUEST"
    assert not gateway.run(lambda: gateway.gateway.engine.calls)


@pytest.mark.asyncio
async def test_unclaimed_call_times_out_and_caller_is_told_why(fast_ring: GatewayThread,
                                                               refsdk_path: Path) -> None:
    with agent(refsdk_path, fast_ring, "ignore") as proc:
        await wait_mark(proc, "connected")
        async with Phone(fast_ring.ws_url, fast_ring.phone_key) as phone:
            await phone.dial(fast_ring.number, "+15550001")
            await wait_mark(proc, "notify")
            reason = await phone.wait_hangup(timeout=10)
        assert reason == "NO_ANSWER"
        assert "no agent claimed" in (phone.events.hangup_message or "")
    sessions = fast_ring.run(lambda: fast_ring.gateway.engine.sessions.find(
        fast_ring.connector_uuid))
    assert [s.close_reason for s in sessions] == ["CALL_TERMINATED"]


@pytest.mark.asyncio
async def test_wrong_api_key_is_refused_with_a_readable_reason(gateway: GatewayThread,
                                                               refsdk_path: Path) -> None:
    with agent(refsdk_path, gateway, "bad_key") as proc:
        refused = await wait_mark(proc, "refused")
    assert refused.split(maxsplit=3)[2:] == ["WSSConnectionError", "invalid API key"]


@pytest.mark.asyncio
async def test_voice_token_is_refused_on_another_call(gateway: GatewayThread,
                                                      refsdk_path: Path) -> None:
    with agent(refsdk_path, gateway, "crossed_token") as proc:
        await wait_mark(proc, "connected")
        async with Phone(gateway.ws_url, gateway.phone_key) as one, \
                Phone(gateway.ws_url, gateway.phone_key) as two:
            await one.dial(gateway.number, "+15550001")
            await two.dial(gateway.number, "+15550002")
            refused = (await wait_mark(proc, "crossed_refused")).split(maxsplit=3)
            answered = await wait_mark(proc, "first_answered")
    assert refused[2] == "401"
    assert refused[3] == "voice token was issued for another call"
    assert answered.endswith("True")


@pytest.mark.asyncio
async def test_clear_send_audio_buffer_silences_the_caller_within_one_frame(
        gateway: GatewayThread, refsdk_path: Path, tmp_path: Path) -> None:
    rate = 16000
    tone_file = tmp_path / "tone.pcm"
    tone_file.write_bytes(tone(440, 5.0, rate).tobytes())
    with agent(refsdk_path, gateway, "interrupt", TONE_FILE=str(tone_file)) as proc:
        await wait_mark(proc, "connected")
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            call_id = await phone.dial(gateway.number, "+15550001", "pcm16", rate)
            await phone.wait_answered()
            await wait_mark(proc, "audio_queued")
            await phone.wait_frames(25)  # half a second of the agent talking
            proc.say("interrupt")
            await wait_mark(proc, "cleared")
            call = gateway.run(lambda: gateway.gateway.engine.calls[call_id])
            cut_at = call.stats.interrupted_at_frame
            await phone.wait_frames(cut_at + 10)
            heard = phone.received()
            await phone.hangup()
    frame = rate // 50
    frames = heard[: (cut_at + 10) * frame].reshape(-1, frame)
    loud = np.abs(frames).max(axis=1) > 1000
    assert loud[:cut_at].sum() >= 20, "the agent's audio was not playing before the interrupt"
    assert not loud[cut_at + 1:].any(), "agent audio kept playing after agent.interrupt"


@pytest.mark.asyncio
async def test_sm_reconnect_gets_resume_and_the_call_goes_on(gateway: GatewayThread,
                                                             refsdk_path: Path) -> None:
    rate = 16000
    with agent(refsdk_path, gateway, "resume", AGENT_RATE=str(rate)) as proc:
        await wait_mark(proc, "connected")
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            call_id = await phone.dial(gateway.number, "+15550001", "pcm16", rate)
            await phone.wait_answered()
            call = gateway.run(lambda: gateway.gateway.engine.calls[call_id])
            session_id, old_agent = gateway.run(lambda: (call.session.id, call.agent))
            before = len(proc.lines)
            gateway.drop_sm_connections()
            resumed = await asyncio.to_thread(proc.wait_for, "RESUME", 20, before)
            await asyncio.to_thread(resumed_answer, proc, resumed)
            # the caller talks once the resumed call's voice connection has replaced the
            # old one: audio sent to the old one just before that is lost with it
            assert gateway.run(lambda: call.agent) is not old_agent
            start = phone.frames_received
            sent = noise(0.5, rate)
            await phone.play(sent)
            heard = await echo_of(phone, start, len(sent))
            await phone.hangup()
    assert resumed.split()[2:] == [session_id, "RESUME"]
    assert np.array_equal(heard, sent), "the echo after RESUME lost or altered audio"


@pytest.mark.asyncio
async def test_resume_wait_never_takes_the_answer_from_before_the_drop(
        gateway: GatewayThread, refsdk_path: Path) -> None:
    """The RESUME test's wait, in the worst case it must survive, made certain: every
    line logged so far (the pre-drop 'answered' included) is read before it runs, and
    the agent holds the re-offered call (before session.ready) until told to go on."""
    with agent(refsdk_path, gateway, "resume", HOLD_RESUME="1") as proc:
        await wait_mark(proc, "connected")
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            call_id = await phone.dial(gateway.number, "+15550001", "pcm16", 16000)
            await phone.wait_answered()
            await wait_mark(proc, "answered")
            call = gateway.run(lambda: gateway.gateway.engine.calls[call_id])
            old_agent = gateway.run(lambda: call.agent)
            gateway.drop_sm_connections()
            resumed = await asyncio.to_thread(proc.wait_for, "RESUME", 20)
            await asyncio.to_thread(proc.wait_for, "MARK waiting_for_go", 20,
                                    proc.lines.index(resumed))
            # held: no call.in yet, so the old voice connection is still the call's
            assert gateway.run(lambda: call.agent) is old_agent
            with pytest.raises(AssertionError, match="never logged"):
                resumed_answer(proc, resumed, timeout=0)
            proc.say("go")
            await asyncio.to_thread(resumed_answer, proc, resumed)
            assert gateway.run(lambda: call.agent) is not old_agent
            await phone.hangup()
