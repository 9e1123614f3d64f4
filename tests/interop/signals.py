"""Test signals and the alignment helpers the echo tests need."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from telcoflow.audio.align import best_lag

__all__ = ["best_lag", "chirp", "noise", "tone"]


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
