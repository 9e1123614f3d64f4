"""Recording and scoring what a bridge hears and says: :class:`CallTap`.

A bridge reads the caller through ``call.audio_stream()`` and speaks through
``call.send_audio()``; a :class:`CallTap` stands in for the call and copies both:

- to an :class:`~telcoflow.audio.AudioBufferProcessor` (seed 002's recorder) when
  ``record_to`` is given (through :class:`telcoflow.audio.attach.RecordedCall`),
  stereo: the caller left, the agent right. The agent's audio is placed as the
  gateway plays it (queued after what is already scheduled) and cut where the
  caller barged in (``clear_send_audio_buffer``), so the file holds what the
  caller heard of the model, not all it generated;
- to two :class:`~telcoflow.audio.AudioQualityMonitor` (seed 004): the caller's
  line (SNR, clipping, the score) and the model's voice, summarised by
  :meth:`CallTap.quality`.

::

    tap = CallTap(call, record_to="out/call.wav")
    await OpenAIRealtimeBridge(tap.as_call(), ...).run()
    tap.stop()           # finalises the WAV
    report["quality"] = tap.quality()
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

from ..audio.attach import RecordedCall
from ..audio.quality import AudioQualityMonitor
from ..audio.recorder import AudioBufferProcessor
from ..sdk.call import Call

__all__ = ["CallTap"]


class CallTap:
    """``call``, with its audio in both directions recorded and scored."""

    def __init__(self, call: Call, *, record_to: str | Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.rate = call.audio_config.rate
        self.path = Path(record_to) if record_to is not None else None
        self.processor: AudioBufferProcessor | None = None
        self._inner: Any = call
        if self.path is not None:
            # the gateway plays whole 20 ms frames and holds a frame of lead: a chunk
            # that comes a little after the previous one ran out is heard without a gap
            self.processor = AudioBufferProcessor(sample_rate=self.rate, num_channels=2,
                                                  bot_gap_tolerance_ms=20)
            self.processor.record_to_wav(self.path)
            self._inner = RecordedCall(call, self.processor, clock=clock, sample_rate=self.rate)
        self.caller_quality = AudioQualityMonitor(self.rate)
        self.agent_quality = AudioQualityMonitor(self.rate)
        self._stopped = False

    def as_call(self) -> Call:
        """The call as a bridge takes it (every other attribute is the call's own)."""
        return cast(Call, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def audio_stream(self, channel_id: int = 0) -> AsyncIterator[bytes]:
        async for chunk in self._inner.audio_stream(channel_id):
            if not self._stopped:
                self.caller_quality.analyze_audio_chunk(chunk)
            yield chunk

    async def send_audio(self, audio_data: bytes) -> None:
        await self._inner.send_audio(audio_data)
        if not self._stopped:
            self.agent_quality.analyze_audio_chunk(audio_data)

    def stop(self) -> Path | None:
        """End the recording (both tracks padded to the call's length); the WAV's path."""
        if not self._stopped:
            self._stopped = True
            if self.processor is not None:
                self.processor.stop_recording(self._clock())
        return self.path

    def quality(self) -> dict[str, Any]:
        """Seed 004's quality summary of each side (SNR, THD, clipping, score, alerts)."""
        keep = ("duration_seconds", "average_snr_db", "min_snr_db", "clipping_percent",
                "average_quality_score", "min_quality_score", "alerts")
        return {side: {k: v for k, v in monitor.get_quality_summary().items() if k in keep}
                for side, monitor in (("caller", self.caller_quality),
                                      ("agent", self.agent_quality))}
