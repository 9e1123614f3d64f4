"""Test signals and the alignment helpers the echo tests need."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from telcoflow.audio.align import best_lag
from telcoflow.testing import Phone

__all__ = ["best_lag", "chirp", "echo_of", "noise", "tone", "voiced_frames"]


def noise(seconds: float, rate: int, seed: int = 7, amplitude: int = 8000) -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    return rng.integers(-amplitude, amplitude, int(seconds * rate)).astype(np.int16)


def tone(freq: float, seconds: float, rate: int, amplitude: int = 8000) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def chirp(seconds: float, rate: int, f0: float = 200.0, f1: float = 3000.0,
          amplitude: int = 8000) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return (amplitude * np.sin(phase)).astype(np.int16)


def voiced_frames(heard: npt.NDArray[np.int16], frame: int) -> npt.NDArray[np.int16]:
    """What was heard without its all-silent 20 ms frames.

    A playout inserts a silent frame when the agent's audio is late (the
    gateway or the agent was stalled): that is real-time behaviour, not a
    loss. Without those frames an exact echo must equal what was sent; a lost,
    repeated, reordered or altered frame still shows.
    """
    whole = heard[: len(heard) // frame * frame].reshape(-1, frame)
    return whole[np.abs(whole).max(axis=1) > 0].reshape(-1)


async def echo_of(phone: Phone, start: int, samples: int, timeout: float = 15.0
                  ) -> npt.NDArray[np.int16]:
    """Voiced audio heard since frame ``start``, once ``samples`` of it have come back
    (or the timeout passed: the caller's assertion then shows what is missing)."""
    frame = phone.frame_samples
    deadline = time.monotonic() + timeout
    while True:
        voiced = voiced_frames(phone.received()[start * frame:], frame)
        left = deadline - time.monotonic()
        if len(voiced) >= samples or left <= 0 or phone.hung_up:
            return voiced
        try:
            await phone.wait_frames(phone.frames_received + 1, timeout=left)
        except TimeoutError:
            pass
