"""A long call holds no more of an agent's memory than a short one.

Users keep calls up for hours in one agent process, so nothing the SDK keeps
per call may grow with the frames it moves. One call on a scripted voice peer
(a real WebSocket on loopback) is driven as fast as the echo goes, not in real
time: minutes of call in a second or two. The frames take the SDK's whole per-frame
path (socket read, codec, the channel queue, ``audio_stream``, ``send_audio``,
the ring, credit, the socket write); the memory tracemalloc traces after a
warm-up and after minutes more of call must be the same within a bound that
anything kept per frame (a float, a list slot) would pass.
"""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc

import pytest
from websockets.asyncio.server import ServerConnection, serve

from telcoflow import Call, CallAudioConfig
from telcoflow.protocol import voice as vp

FRAME = 640               # 20 ms of 16 kHz PCM16
BATCH = 10                # frames in flight at once, granted as credit in one buffer_request
WARM_FRAMES = 1_500       # 30 s of call before the first reading
FRAMES = 6_000            # then 2 minutes more
GROWTH_BOUND = 24 * 1024  # < 4 bytes a frame; one float kept per frame is 6 x that
TIMEOUT = 60.0


class FastVoicePeer:
    """Answers ``call.answer``, then sends caller frames in batches, each once the
    previous batch has come back, and reads the traced memory at the marks."""

    def __init__(self) -> None:
        self.echoed = 0
        self.readings: list[int] = []
        self._echo_seen = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        command = json.loads(await ws.recv())
        assert command["data"]["command"] == "call.answer"
        await ws.send(vp.build_command_response(command["data"]["command_id"]))
        reader = asyncio.ensure_future(self._read_echoes(ws))
        try:
            await self._talk(ws, WARM_FRAMES)
            self.readings.append(_traced())
            await self._talk(ws, FRAMES)
            self.readings.append(_traced())
        finally:
            reader.cancel()
        await ws.close()

    async def _talk(self, ws: ServerConnection, frames: int) -> None:
        payload = vp.build_audio(0, bytes(range(256)) * (FRAME // 256) + bytes(FRAME % 256))
        for _ in range(frames // BATCH):
            target = self.echoed + BATCH
            await ws.send(vp.build_buffer_request(BATCH * FRAME, FRAME))
            for _ in range(BATCH):
                await ws.send(payload)
            while self.echoed < target:
                self._echo_seen.clear()
                await asyncio.wait_for(self._echo_seen.wait(), TIMEOUT)

    async def _read_echoes(self, ws: ServerConnection) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                self.echoed += 1
                self._echo_seen.set()


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def echo(call: Call) -> int:
    assert await call.answer()
    chunks = 0
    async for chunk in call.audio_stream():
        await call.send_audio(chunk)
        chunks += 1
    return chunks


@pytest.mark.asyncio
async def test_a_long_call_keeps_the_memory_of_a_short_one() -> None:
    peer = FastVoicePeer()
    async with serve(peer.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        call = Call("c-long", "+15550001", "+15550002", f"ws://127.0.0.1:{port}/voice",
                    "token", CallAudioConfig(sample_rate=16000))
        tracemalloc.start()
        try:
            chunks = await asyncio.wait_for(echo(call), TIMEOUT)
        finally:
            tracemalloc.stop()
    assert chunks == WARM_FRAMES + FRAMES  # every frame went through the SDK both ways
    warm, late = peer.readings
    assert late - warm < GROWTH_BOUND, (
        f"{late - warm} bytes more traced after {FRAMES} more frames of one call "
        f"({(late - warm) / FRAMES:.1f} B a frame)")
