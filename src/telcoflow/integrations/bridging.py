"""What every bridge does the same way: running its two directions until one ends, and
noticing a model that has gone quiet.

:class:`ModelWatchdog`. A model's socket can stay open while the model answers
nothing (an overloaded or wedged backend, a proxy that stopped forwarding). TCP
keepalives and WebSocket pings do not see it, and the caller sits in silence. So
a bridge tells the watchdog what the caller says and when the model sends
anything; when the caller has spoken (``min_speech_ms`` of voiced audio), then
stopped, and the model has sent nothing for ``timeout_s`` since, the model is
taken as stalled: :meth:`ModelWatchdog.run` raises :class:`ModelStalled` and the
bridge ends the call like a dropped socket. Every real-time model answers a
finished utterance (with audio, or at least a speech/transcript event) within a
few seconds, so the default 15 s is far from a slow answer.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ModelStalled", "ModelWatchdog", "until_first"]


async def until_first(*tasks: asyncio.Task[Any]) -> set[asyncio.Task[Any]]:
    """Wait until one of ``tasks`` ends, cancel the others, wait for them; the tasks
    that ended by themselves (their results or exceptions are the caller's to read)."""
    try:
        done, _ = await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return done


class ModelStalled(Exception):
    """The caller finished speaking and the model sent nothing for the watchdog's timeout."""


class ModelWatchdog:
    """See the module docstring. Times come from ``clock`` (seconds, monotonic)."""

    def __init__(self, rate: int, timeout_s: float | None = 15.0, *,
                 min_speech_ms: float = 300.0, threshold: float = 1000.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.timeout_s, self.clock = rate, timeout_s, clock
        self.min_speech_ms, self.threshold = min_speech_ms, threshold
        self._voiced_ms = 0.0
        self.waiting_since: float | None = None  # the caller stopped; no model event since
        self._changed = asyncio.Event()

    def caller_audio(self, pcm: bytes) -> None:
        """A chunk of the caller's PCM16, as it is sent to the model."""
        samples = np.frombuffer(pcm, "<i2")
        if not len(samples):
            return
        rms = math.sqrt(float(np.dot(samples, samples.astype(np.float64))) / len(samples))
        if rms >= self.threshold:
            self._voiced_ms += len(samples) * 1000 / self.rate
            self.waiting_since = None  # still speaking: the model may wait for the end
        elif self._voiced_ms >= self.min_speech_ms and self.waiting_since is None:
            self.waiting_since = self.clock()
            self._changed.set()

    def model_event(self) -> None:
        """The model sent something: it is alive."""
        self._voiced_ms = 0.0
        self.waiting_since = None

    def due(self, now: float) -> bool:
        return (self.timeout_s is not None and self.waiting_since is not None
                and now - self.waiting_since >= self.timeout_s)

    async def run(self) -> None:
        """Raise :class:`ModelStalled` when the model is due and silent; never ends otherwise."""
        if self.timeout_s is None:
            await asyncio.Event().wait()
        assert self.timeout_s is not None
        while True:
            since = self.waiting_since
            if since is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            now = self.clock()
            if self.due(now):
                raise ModelStalled(f"the caller stopped speaking {now - since:.1f} s ago and "
                                   f"the model has sent nothing since")
            await asyncio.sleep(since + self.timeout_s - now)
