"""Loss: audio over QUIC DATAGRAMs through a relay that drops 5 % of them each way.

QUIC streams retransmit (a loss there is a delay, never a gap), so the
unreliable carrier is what shows the plane's loss rules: every dropped frame is
counted exactly, heard as 20 ms of silence (the timeline keeps its length), and
the frames after it are as early as before.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import numpy as np
import pytest

from telcoflow.audio.codec import encode
from telcoflow.quic import QuicAgent
from telcoflow.testing import GatewayThread, Phone
from telcoflow.testing.lossy_relay import LossyRelay

from .conftest import tone

CLEAN, LOSSY, TAIL = 50, 200, 10      # frames the agent sends in each phase
MEDIA_PACKET = 150                     # bytes: ACK-only packets are smaller, audio bigger


def _frames(count: int) -> bytes:
    return encode("pcmu", tone(count * 0.02, 8000).astype("<i2").tobytes())


@pytest.mark.asyncio
async def test_five_percent_loss_is_counted_exactly_and_heard_as_silence(
        qgw: GatewayThread) -> None:
    q = qgw.config.quic
    assert q is not None
    async with LossyRelay(("127.0.0.1", q.port), seed=11) as relay, \
            QuicAgent("127.0.0.1", relay.port, qgw.api_key, qgw.connector_uuid,
                      fingerprint=q.fingerprint, datagrams=True) as agent, \
            Phone(qgw.ws_url, qgw.phone_key) as phone:
        await agent.subscribe()
        await phone.dial(qgw.number, "+15550001", "pcmu", 8000)
        call = await agent.next_call()
        await call.answer()
        await phone.wait_answered()
        sent_at: list[float] = []
        send = agent.send_datagram
        agent.send_datagram = lambda e: sent_at.append(time.perf_counter()) or send(e)  # type: ignore[method-assign]
        talking = asyncio.create_task(phone.play(tone(8.0, 8000, 300.0)))  # the far end, down

        call.send(_frames(CLEAN))
        await call.drain()
        relay.set_loss(up=0.05, down=0.05, min_size=MEDIA_PACKET)
        call.send(_frames(LOSSY))
        await call.drain()
        relay.set_loss(up=0.0, down=0.0)
        call.send(_frames(TAIL))              # after the last loss: every gap is closed
        await call.drain()
        await talking
        await phone.hangup()
        await call.wait_ended()

    lost_up, lost_down = relay.dropped["up"], relay.dropped["down"]
    print("dropped", relay.dropped, "forwarded", relay.forwarded)
    assert lost_up > 0 and lost_down > 0
    # counted exactly, each way
    assert call.gateway_loss is not None
    assert call.gateway_loss.missing == lost_up, (call.gateway_loss, relay.dropped)
    assert call.tracker.missing == lost_down, (call.tracker.report(), relay.dropped)
    assert call.gateway_loss.duplicates == call.gateway_loss.reordered == 0

    # the caller's timeline: every frame sent has its 20 ms, the lost ones as silence
    total = CLEAN + LOSSY + TAIL
    heard = phone.received()
    frames = heard[: len(heard) // 160 * 160].reshape(-1, 160)
    voiced = np.flatnonzero(np.abs(frames).max(axis=1) > 0)
    first, last = int(voiced[0]), int(voiced[-1])
    span = last - first + 1
    silent = span - len(voiced)
    assert total <= span <= total + 2, f"{span} frames for {total} sent: compressed or stretched"
    assert silent >= lost_up

    # latency: frames heard after a loss are as early as those before any loss
    arrivals = phone.events.frame_arrivals
    assert len(sent_at) == total  # every frame went out once: nothing is retransmitted
    latency = [arrivals[first + i] - sent_at[i] for i in range(total)
               if first + i < len(arrivals)]
    clean = statistics.median(latency[5:CLEAN])
    lossy = statistics.median(latency[CLEAN + 5:CLEAN + LOSSY])
    assert abs(lossy - clean) < 0.025, \
        f"median latency {clean * 1000:.1f} ms → {lossy * 1000:.1f} ms"
