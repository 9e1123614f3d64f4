"""The per-connection limits of the QUIC plane meet a real agent's traffic: many calls
starting at once, audio still in flight when a call ends, an agent that stops receiving.

The rules they keep (docs/quic.md, *Limits per connection*): one client uni-stream per
call and none for a call the connection does not hold (a stream per packet is refused);
an ended call's late audio is dropped quietly; audio to the agent never queues for long.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import AsyncExitStack

import pytest

from telcoflow.protocol import quic
from telcoflow.quic import ErrorCode, QuicAgent
from telcoflow.telephony.quic import connection
from telcoflow.testing import GatewayThread, Phone
from telcoflow.testing.lossy_relay import LossyRelay

from ..interop.signals import echo_of
from .conftest import agent_for, answered_call, echo, gateway_connections, pcmu_frame, tone
from .test_bad_input import still_talks

CALLS = 40
SILENCE = b"\xff" * 160  # 20 ms of µ-law silence


@pytest.mark.asyncio
async def test_forty_calls_on_one_connection_all_start_their_audio_at_once(
        qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent, AsyncExitStack() as stack:
        await agent.subscribe(auto_answer=True)
        phones = [await stack.enter_async_context(Phone(qgw.ws_url, qgw.phone_key))
                  for _ in range(CALLS)]
        await asyncio.gather(*(phone.dial(qgw.number, f"+1555{i:07d}", "pcmu", 8000)
                               for i, phone in enumerate(phones)))
        calls = [await agent.next_call() for _ in range(CALLS)]
        await asyncio.gather(*(phone.wait_answered() for phone in phones))
        # every call's first frame in the same turn of the loop: 40 new uni-streams at once
        for call in calls:
            call.send(SILENCE, "PCMU")
        await asyncio.gather(*(call.drain() for call in calls))
        echoes = [asyncio.create_task(echo(call)) for call in calls]

        async def talk(phone: Phone) -> int:
            start = phone.frames_received
            await phone.play(tone(0.3, 8000))
            return len(await echo_of(phone, start, 10 * 160))

        heard = await asyncio.gather(*(talk(phone) for phone in phones))
        assert agent.stopped == {}, {ErrorCode(c).name for c in agent.stopped.values()}
        assert min(heard) >= 10 * 160, heard

        # a stream per packet, for calls this client does not hold, is still refused
        burst = [agent.open_audio_stream() for _ in range(60)]
        for n, stream_id in enumerate(burst):
            agent.send_stream(stream_id, pcmu_frame(f"not-ours-{n}", 0))
        codes = [await agent.wait_stopped(stream_id=s) for s in burst]
        assert set(codes) == {ErrorCode.NOT_YOUR_CALL, ErrorCode.STREAM_REFUSED}
        # each refused for its call until the allowance (10 + one per live call) is spent
        assert codes.count(ErrorCode.NOT_YOUR_CALL) <= 2 * connection.UNI_STREAMS_PER_S \
            + CALLS + 5, codes
        assert all(call.stream_error is None for call in calls)  # the calls' own go on
        for task in echoes:
            task.cancel()


def _write(agent: QuicAgent, stream_id: int, data: bytes) -> None:
    """Write as an agent that has not noticed its call's end (nor the stop) would."""
    try:
        agent._quic.send_stream_data(stream_id, data)
    except (ValueError, RuntimeError):  # our stack reset the stream when the stop came
        return
    agent._transmit()


def _write_while_held(agent: QuicAgent, conn: object, call_sid: str, stream_id: int,
                      data: bytes) -> None:
    """Hold the agent's loop (it reads nothing: neither the call's end nor the stop of its
    stream) until the gateway has ended the call, then write ``data``: audio in flight
    when the call ended, reaching the gateway before our stack can reset the stream."""
    deadline = time.monotonic() + 5.0
    while call_sid in conn.calls and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.005)
    _write(agent, stream_id, data)
    time.sleep(0.1)


@pytest.mark.asyncio
async def test_late_audio_after_a_call_ended_is_dropped_quietly(qgw: GatewayThread) -> None:
    async with agent_for(qgw) as agent:
        await agent.subscribe()
        async with answered_call(qgw, agent) as (other_phone, other):
            async with answered_call(qgw, agent) as (phone, call):
                stream_id = call._stream_id = agent.open_audio_stream(call)
                frames = [pcmu_frame(call.call_sid, n) for n in range(60)]
                # five frames and part of the sixth: the call ends inside an envelope
                agent.send_stream(stream_id, b"".join(frames[:5]) + frames[5][:50])
                await asyncio.sleep(0.1)
                [conn] = gateway_connections(qgw)
                await phone.hangup()
                _write_while_held(agent, conn, call.call_sid, stream_id,
                                  frames[5][50:] + b"".join(frames[6:10]))
                for frame in frames[10:]:  # and 1 s more, every 20 ms
                    _write(agent, stream_id, frame)
                    await asyncio.sleep(0.02)
                assert await call.wait_ended() == "CALLER_HANGUP"
            assert agent.stopped.get(stream_id) == ErrorCode.CALL_ENDED
            assert list(agent.stopped) == [stream_id]     # stopped once, nothing else
            assert agent.errors == []                     # nothing on the subscription's
            assert call.errors == [] and other.errors == []
            assert call.gateway_loss is not None and call.gateway_loss.received == 5
            await still_talks(other_phone, other)         # the connection's other call
            assert other.stream_error is None
        # a new call on the connection gets its stream: no allowance was spent
        async with answered_call(qgw, agent) as (new_phone, new_call):
            await still_talks(new_phone, new_call)
            assert new_call.stream_error is None and new_call.errors == []
        assert agent.errors == []


STALL_S = 2.5  # a congestion window's worth goes out (and is lost) in the first ~1.3 s
AFTER_S = 2.5  # QUIC's probe timeout has backed off meanwhile: recovery takes ~1 s


@pytest.mark.asyncio
async def test_datagram_audio_to_a_stalled_agent_is_dropped_not_queued(
        qgw: GatewayThread) -> None:
    q = qgw.config.quic
    assert q is not None
    async with LossyRelay(("127.0.0.1", q.port)) as relay, \
            QuicAgent("127.0.0.1", relay.port, qgw.api_key, qgw.connector_uuid,
                      fingerprint=q.fingerprint, datagrams=True) as agent, \
            Phone(qgw.ws_url, qgw.phone_key) as phone:
        await agent.subscribe(codec="PCM16", sample_rate=16000)  # ~700-byte datagrams
        await phone.dial(qgw.number, "+15550001", "pcmu", 8000)
        call = await agent.next_call()
        await call.answer()
        await phone.wait_answered()
        arrivals: list[tuple[int, float]] = []
        heard = call.on_audio

        def on_audio(frame: quic.AudioFrame) -> None:
            arrivals.append((frame.sequence_number, time.perf_counter()))
            heard(frame)

        call.on_audio = on_audio  # type: ignore[method-assign]
        [conn] = gateway_connections(qgw)
        talking = asyncio.create_task(phone.play(tone(1.0 + STALL_S + AFTER_S, 8000)))
        await asyncio.sleep(1.0)
        stall_from = max(seq for seq, _ in arrivals)
        relay.set_loss(down=1.0, min_size=0)        # nothing reaches the agent
        queued = []
        for _ in range(int(STALL_S / 0.02)):
            queued.append(len(conn._quic._datagrams_pending))
            await asyncio.sleep(0.02)
        relay.set_loss(down=0.0)
        stall_to = max(seq for seq, _ in arrivals)
        await talking
        await phone.hangup()
        await call.wait_ended()

    # the gateway's queue stayed within 100 ms of audio
    assert max(queued) <= connection.DATAGRAM_QUEUE_FRAMES, queued
    # the frames after the stall came about as early as those before it
    late = [(seq, t - seq * 0.02) for seq, t in arrivals]  # + when the gateway sent it
    before = statistics.median(lateness for seq, lateness in late if 5 <= seq <= stall_from)
    after = [lateness - before for seq, lateness in late if seq > stall_to]
    assert len(after) >= 25, f"{len(after)} frames after the stall"
    assert max(after) < 0.25, f"{max(after) * 1000:.0f} ms later than before"
    # and the frames dropped for that are counted as late_dropped in the call's LOSS
    assert call.gateway_loss is not None
    dropped = call.gateway_loss.late_dropped
    seqs = {seq for seq, _ in arrivals}
    missing = max(seqs) + 1 - len(seqs)
    assert dropped > 0
    assert missing - relay.dropped["down"] <= dropped <= missing, \
        (dropped, missing, relay.dropped)
