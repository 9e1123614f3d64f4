"""What a caller hears while their call has no agent: a hold sound, not dead silence.

When an agent's link to a live call dies (its process killed, its connection lost),
the call waits for an agent to take it again (a RESUME claim, or the same agent
reconnecting). Seconds of silence make callers hang up; a soft repeating tone (or an
operator's WAV) tells them the line is alive. :class:`HoldSound` is what the engine
is configured with; each waiting call plays its own :class:`HoldLoop` from the start.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio.resample import resample
from ..audio.wav import read_wav

__all__ = ["HoldLoop", "HoldSound"]

TONE_HZ = 440.0
TONE_S, PAUSE_S = 0.25, 2.75  # a short beep every 3 s
TONE_LEVEL = 0.05             # about -26 dBFS: audible, not startling


class HoldLoop:
    """One call's hold sound: ``next_frame()`` gives the next 20 ms, looping."""

    def __init__(self, pcm: bytes, frame_bytes: int) -> None:
        # padded to whole frames so every frame is frame_bytes long
        self._pcm = pcm + bytes(-len(pcm) % frame_bytes)
        self._frame_bytes, self._at = frame_bytes, 0

    def next_frame(self) -> bytes:
        frame = self._pcm[self._at:self._at + self._frame_bytes]
        self._at = (self._at + self._frame_bytes) % len(self._pcm)
        return frame


class HoldSound:
    """``"tone"`` (the default), ``"silence"``, or the path of a WAV file (any PCM rate
    and width; it loops). The sound is made once per agent rate and shared."""

    def __init__(self, spec: str = "tone") -> None:
        self.spec = spec
        self._wav: tuple[np.ndarray, int] | None = None
        if spec not in ("tone", "silence"):
            self._wav = read_wav(Path(spec))  # a bad path fails at start, not mid-call
        self._by_rate: dict[int, bytes] = {}

    def loop(self, rate: int) -> HoldLoop | None:
        """A fresh loop at ``rate`` (PCM16), or None for silence."""
        if self.spec == "silence":
            return None
        pcm = self._by_rate.get(rate)
        if pcm is None:
            pcm = self._by_rate[rate] = self._make(rate)
        return HoldLoop(pcm, rate // 50 * 2)

    def _make(self, rate: int) -> bytes:
        if self._wav is not None:
            samples, wav_rate = self._wav
            return resample(samples, wav_rate, rate) if wav_rate != rate else samples.tobytes()
        t = np.arange(int(TONE_S * rate)) / rate
        ramp = np.minimum(1.0, np.minimum(t, TONE_S - t) / 0.01)  # 10 ms fades: no clicks
        beep = TONE_LEVEL * 32767 * ramp * np.sin(2 * np.pi * TONE_HZ * t)
        pause = np.zeros(int(PAUSE_S * rate))
        return np.concatenate([beep, pause]).astype("<i2").tobytes()
