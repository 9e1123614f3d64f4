"""Recording what a bridge hears and says: :class:`RecordedCall`.

A bridge reads the caller through ``call.audio_stream()`` and speaks through
``call.send_audio()``; wrapping the call in :class:`RecordedCall` puts both on an
:class:`~telcoflow.audio.AudioBufferProcessor` (seed 002's recorder), stereo by
default: the caller left, the agent right. The agent's audio is placed as the
gateway plays it (queued after what is already scheduled) and cut where the
caller barged in (``clear_send_audio_buffer``), so the file holds what the
caller heard of the model, not everything the model generated.

::

    recorded = RecordedCall(call, "out/call.wav")
    await OpenAIRealtimeBridge(recorded.call_view(), ...).run()
    recorded.stop()      # finalises the WAV
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

from ..audio.recorder import AudioBufferProcessor
from ..sdk.call import Call

__all__ = ["RecordedCall"]


class RecordedCall:
    """``call``, with its audio in both directions recorded to ``path`` (a WAV)."""

    def __init__(self, call: Call, path: str | Path, *, num_channels: int = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._call, self._clock = call, clock
        self.path = Path(path)
        self.rate = call.audio_config.rate
        # the gateway plays whole 20 ms frames and holds a frame of lead: a chunk that
        # comes a little after the previous one ran out is heard without a gap
        self.processor = AudioBufferProcessor(sample_rate=self.rate, num_channels=num_channels,
                                              bot_gap_tolerance_ms=20)
        self.processor.record_to_wav(self.path)
        self.processor.start_recording(clock())
        self._stopped = False

    def call_view(self) -> Call:
        """The call as a bridge takes it (every other attribute is the call's own)."""
        return cast(Call, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)

    async def audio_stream(self, channel_id: int = 0) -> AsyncIterator[bytes]:
        async for chunk in self._call.audio_stream(channel_id):
            if not self._stopped:
                self.processor.add_user_audio(chunk, self._clock(), self.rate)
            yield chunk

    async def send_audio(self, audio_data: bytes) -> None:
        await self._call.send_audio(audio_data)
        if not self._stopped:
            self.processor.add_bot_audio(audio_data, self._clock(), self.rate)

    async def clear_send_audio_buffer(self) -> int:
        dropped = await self._call.clear_send_audio_buffer()
        if not self._stopped:
            self.processor.truncate_bot(self._clock())
        return dropped

    def stop(self) -> Path:
        """End the recording (both tracks padded to the call's length); the WAV's path."""
        if not self._stopped:
            self._stopped = True
            self.processor.stop_recording(self._clock())
        return self.path
