"""Bad input on the QUIC plane: each case gets a clear error, and nothing else is affected
(the call's own audio, its commands and the connection go on)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from telcoflow.protocol import quic
from telcoflow.quic import ErrorCode, QuicAgent, QuicCall
from telcoflow.telephony.quic import connection
from telcoflow.testing import GatewayThread, Phone

from ..interop.signals import echo_of
from .conftest import Kind, agent_for, answered_call, next_event, pcmu_frame, tone


async def still_talks(phone: Phone, call: QuicCall) -> None:
    """The call's own audio still reaches the caller, and its commands still run."""
    start = phone.frames_received
    call.send(_ulaw_tone(10), "PCMU")
    heard = await echo_of(phone, start, 8 * 160)
    assert len(heard) >= 8 * 160, "the call's audio stopped after a refused stream"
    assert "droppedBytes" in await call.agent.command(call.call_sid, 3)  # INTERRUPT


def _ulaw_tone(frames: int) -> bytes:
    from telcoflow.audio.codec import encode
    return encode("pcmu", tone(frames * 0.02, 8000).astype("<i2").tobytes())


async def refused(agent: QuicAgent, data: bytes, end: bool = False) -> tuple[int, int]:
    """Open a raw uni-stream, write ``data``: (its id, the code the gateway stopped it with)."""
    stream_id = agent.open_audio_stream()
    agent.send_stream(stream_id, data, end=end)
    return stream_id, await agent.wait_stopped(stream_id=stream_id)


async def call_error(call: QuicCall, code: str) -> quic.CallEvent:
    return await next_event(call.events(), Kind.ERROR, code)


@pytest.mark.asyncio
@pytest.mark.parametrize(("data", "code"), [
    (struct.pack("<II", 20, quic.MethodId.AUDIO_FRAME) + b"\x01" * 5, "TRUNCATED"),
    (quic.encode_raw(0x12345678, b""), "UNKNOWN_METHOD"),
    (struct.pack("<II", 1 << 20, quic.MethodId.AUDIO_FRAME), "FRAME_TOO_LARGE"),
    (quic.encode_raw(quic.MethodId.AUDIO_FRAME, b"\xff\xff\xff"), "INVALID_BODY"),
    (struct.pack("<I", 2), "MALFORMED"),
    (quic.encode(quic.CallCommand(call_sid="x")), "UNEXPECTED_MESSAGE"),
], ids=lambda value: value if isinstance(value, str) else "")
async def test_an_unreadable_audio_stream_is_stopped_with_its_code(
        qgw: GatewayThread, data: bytes, code: str) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        async with answered_call(qgw, agent) as (phone, call):
            call.send(_ulaw_tone(2), "PCMU")   # the call's real stream, bound first
            await call.drain()
            if code == "TRUNCATED":  # found at the stream's end: nothing left to stop
                agent.send_stream(agent.open_audio_stream(), data, end=True)
            else:
                _, stopped = await refused(agent, data)
                assert stopped == ErrorCode[code]
            error = await next_event(agent.events(), Kind.ERROR, code)
            assert error.message
            await still_talks(phone, call)


@pytest.mark.asyncio
async def test_audio_for_a_call_the_client_does_not_hold_is_refused(qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent, agent_for(qgw) as other:
        await agent.subscribe()
        await other.subscribe()
        async with answered_call(qgw, agent) as (phone, call):
            _, stopped = await refused(other, pcmu_frame(call.call_sid, 0))
            assert stopped == ErrorCode.NOT_YOUR_CALL
            error = await next_event(other.events(), Kind.ERROR, "NOT_YOUR_CALL")
            assert error.call_sid == call.call_sid
            await still_talks(phone, call)


@pytest.mark.asyncio
async def test_a_stream_per_packet_is_refused(qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        async with answered_call(qgw, agent) as (phone, call):
            call.send(_ulaw_tone(2), "PCMU")
            await call.drain()
            # a second stream for the same call
            _, stopped = await refused(agent, pcmu_frame(call.call_sid, 100))
            assert stopped == ErrorCode.STREAM_REFUSED
            assert "one per call" in (await call_error(call, "STREAM_REFUSED")).message
            # and a burst of new streams, each with one packet
            codes = [(await refused(agent, pcmu_frame(f"c-{i}", 0)))[1] for i in range(12)]
            assert ErrorCode.STREAM_REFUSED in codes
            await still_talks(phone, call)


@pytest.mark.asyncio
async def test_end_of_stream_closes_the_stream_and_no_frame_after_it_is_accepted(
        qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        async with answered_call(qgw, agent) as (phone, call):
            stream_id = agent.open_audio_stream()
            agent.send_stream(stream_id, pcmu_frame(call.call_sid, 0)
                              + pcmu_frame(call.call_sid, 1, eos=True)
                              + pcmu_frame(call.call_sid, 2))
            assert await agent.wait_stopped(stream_id=stream_id) == \
                ErrorCode.AFTER_END_OF_STREAM
            await call_error(call, "AFTER_END_OF_STREAM")
            # a new stream for the call after its end is refused too
            _, stopped = await refused(agent, pcmu_frame(call.call_sid, 3))
            assert stopped == ErrorCode.STREAM_REFUSED
            # the call itself goes on: commands run, the caller's hangup ends it
            assert "droppedBytes" in await agent.command(call.call_sid, 3)
            await phone.hangup()
            assert await call.wait_ended() == "CALLER_HANGUP"
    assert call.gateway_loss is not None and call.gateway_loss.received == 2


@pytest.mark.asyncio
async def test_the_client_library_ends_its_stream_cleanly(qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        async with answered_call(qgw, agent) as (phone, call):
            call.send(_ulaw_tone(5), "PCMU")
            await call.end()
            with pytest.raises(RuntimeError):
                call.send(_ulaw_tone(1), "PCMU")
            await phone.hangup()
            await call.wait_ended()
    assert call.gateway_loss is not None and call.gateway_loss.received == 6  # 5 + the end
    assert call.stream_error is None


@pytest.mark.asyncio
async def test_pcm16_at_another_rate_is_an_invalid_body(qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        async with answered_call(qgw, agent) as (phone, call):
            assert call.sample_rate == 8000
            call._stream_id = agent.open_audio_stream(call)  # the call's own stream
            agent.send_stream(call._stream_id, quic.encode(quic.AudioFrame(
                call_sid=call.call_sid, payload=bytes(640), codec="PCM16")))  # 16 kHz
            error = await call_error(call, "INVALID_BODY")
            assert "8000 Hz" in error.message
            await still_talks(phone, call)


@pytest.mark.asyncio
async def test_a_client_faster_than_real_time_is_told_when_the_buffer_is_full(
        qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        async with answered_call(qgw, agent) as (_, call):
            stream_id = agent.open_audio_stream(call)
            # 12 s of audio at once: the playout holds 10 s, the rest is dropped and said so
            burst = b"".join(pcmu_frame(call.call_sid, n) for n in range(600))
            agent.send_stream(stream_id, burst)
            error = await call_error(call, "AGENT_AUDIO_DROPPED")
            assert "playout buffer is full" in error.message
            assert stream_id not in agent.stopped  # the stream itself goes on


@pytest.mark.asyncio
async def test_bad_requests_are_answered_with_an_error(qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        for message, code in [(quic.encode_raw(0x1, b""), "UNKNOWN_METHOD"),
                              (quic.encode_raw(quic.MethodId.ORIGINATE_REQUEST, b"\x07"),
                               "INVALID_BODY"),
                              (quic.encode(quic.AudioFrame(call_sid="x", codec="PCMU")),
                               "UNEXPECTED_MESSAGE"),
                              (b"\x10\x00", "TRUNCATED")]:
            stream_id = agent._quic.get_next_available_stream_id()
            future: asyncio.Future[quic.Message] = asyncio.get_running_loop().create_future()
            agent._pending[stream_id] = future
            agent.send_stream(stream_id, message, end=True)
            answer = await asyncio.wait_for(future, 10)
            assert isinstance(answer, quic.Error) and answer.code == code, answer
        with pytest.raises(Exception) as again:
            await agent.subscribe()
        assert getattr(again.value, "code", None) == "ALREADY_SUBSCRIBED"


@pytest.mark.asyncio
async def test_wrong_credentials_close_the_connection(qgw: GatewayThread) -> None:
    q = qgw.config.quic
    assert q is not None
    async with QuicAgent("127.0.0.1", q.port, "tfk_wrong", qgw.connector_uuid,
                         insecure=True) as agent:
        with pytest.raises(Exception):  # noqa: B017 - the close races the answer
            await agent.subscribe()
        await agent.closed.wait()
    assert agent.close_code == ErrorCode.AUTH_FAILED
    assert "tfk_wrong" not in agent.close_reason
    # counted in /metrics' telcoflow_auth_failures_total under the QUIC plane
    assert qgw.run(lambda: qgw.gateway.auth.failures[("quic", "invalid_key")]) == 1


@pytest.mark.asyncio
async def test_quic_connections_are_counted_while_open(qgw: GatewayThread) -> None:
    metrics = qgw.gateway.metrics
    assert metrics is not None
    open_now = lambda: qgw.run(lambda: metrics.connections["quic"])  # noqa: E731
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        assert open_now() == 1
    deadline = asyncio.get_running_loop().time() + 10
    while open_now() != 0:  # the gateway learns of the close from the client's packet
        assert asyncio.get_running_loop().time() < deadline, "still counted after closing"
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_data_before_authentication_closes_the_connection(qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent:
        agent.send_stream(agent.open_audio_stream(), pcmu_frame("x", 0))
        await agent.closed.wait()
    assert agent.close_code == ErrorCode.AUTH_REQUIRED


@pytest.mark.asyncio
async def test_a_silent_client_is_closed_after_the_authentication_timeout(
        qgw: GatewayThread, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "AUTH_TIMEOUT_S", 0.3)
    async with agent_for(qgw) as agent:
        await asyncio.wait_for(agent.closed.wait(), 10)
    assert agent.close_code == ErrorCode.AUTH_TIMEOUT
