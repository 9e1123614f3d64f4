from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from telcoflow.audio.attach import RecordedCall, attach_to_call
from telcoflow.audio.errors import RecorderStateError
from telcoflow.audio.recorder import AudioBufferProcessor

R = 8000


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class AudioConfig:
    sample_rate: int = R


class FakeCall:
    """Speaks the SDK Call's audio surface (seed 003) without any I/O."""

    def __init__(self, clock: FakeClock, chunks: list[bytes]) -> None:
        self.audio_config = AudioConfig()
        self.clock = clock
        self.chunks = chunks
        self.sent: list[bytes] = []
        self.cleared = 0
        self.id = "call-1"

    async def audio_stream(self, channel_id: int = 0) -> AsyncIterator[bytes]:
        for c in self.chunks:
            self.clock.t += len(c) / 2 / R
            yield c

    async def send_audio(self, audio_data: bytes) -> None:
        if audio_data == b"FULL":
            raise RuntimeError("BufferFullError")
        self.sent.append(audio_data)

    async def clear_send_audio_buffer(self) -> None:
        self.cleared += 1


class SlottedCall:
    __slots__ = ("audio_config",)

    def __init__(self) -> None:
        self.audio_config = AudioConfig()

    def audio_stream(self) -> Any: ...
    async def send_audio(self, audio_data: bytes) -> None: ...
    async def clear_send_audio_buffer(self) -> None: ...


def _tracks(p: AudioBufferProcessor) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    p.add_event_handler("on_track_audio_data", lambda b, u, bot, sr, nc: out.append((u, bot)))
    return out


def test_attach_records_both_directions_and_interrupts() -> None:
    clock = FakeClock()
    caller = [np.full(160, 1000, "<i2").tobytes()] * 50  # 1 s of caller audio
    call = FakeCall(clock, caller)
    p = AudioBufferProcessor(sample_rate=R, num_channels=2)
    got = _tracks(p)
    rec = attach_to_call(p, call, clock=clock)
    assert p.recording

    async def agent() -> None:
        n = 0
        async for _chunk in call.audio_stream():  # the agent's own loop, unchanged
            n += 1
            if n == 10:  # t = 0.2: agent answers with 2 s of audio
                await call.send_audio(np.full(2 * R, -500, "<i2").tobytes())
            if n == 30:  # t = 0.6: caller barges in
                await call.clear_send_audio_buffer()
        with pytest.raises(RuntimeError):
            await call.send_audio(b"FULL")

    asyncio.run(agent())
    rec.stop()
    assert call.cleared == 1 and len(call.sent) == 1
    ((u, b),) = got
    user = np.frombuffer(u, "<i2")
    bot = np.frombuffer(b, "<i2")
    assert user.size == bot.size == R
    assert (user == 1000).all()
    assert not bot[: round(0.2 * R)].any()
    assert (bot[round(0.2 * R) : round(0.6 * R)] == -500).all()
    assert not bot[round(0.6 * R) :].any()
    # detach restored the call's own methods
    assert call.send_audio.__func__ is FakeCall.send_audio  # type: ignore[attr-defined]


def test_recorded_call_proxy() -> None:
    clock = FakeClock()
    call = FakeCall(clock, [np.full(160, 7, "<i2").tobytes()] * 5)
    p = AudioBufferProcessor(sample_rate=R)
    got = _tracks(p)
    proxy = RecordedCall(call, p, clock=clock)
    assert proxy.id == "call-1"

    async def agent() -> None:
        async for _ in proxy.audio_stream():
            pass

    asyncio.run(agent())
    proxy.stop_recording()
    assert np.frombuffer(got[0][0], "<i2").tolist() == [7] * 800


def test_unpatchable_call_gives_clear_error() -> None:
    with pytest.raises(RecorderStateError):
        attach_to_call(AudioBufferProcessor(sample_rate=R), SlottedCall())
