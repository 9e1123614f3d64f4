"""Test signals and the alignment helpers the echo tests need."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


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


def best_lag(received: npt.NDArray[np.int16], sent: npt.NDArray[np.int16]) -> tuple[int, float]:
    """The offset of ``sent`` inside ``received`` and the normalised correlation there."""
    r = received.astype(np.float64)
    s = sent.astype(np.float64)
    n = len(r) + len(s)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(r, size) * np.conj(np.fft.rfft(s, size)), size)[:len(r)]
    lag = int(np.argmax(corr))
    seg = r[lag:lag + len(s)]
    if len(seg) < len(s):
        return lag, 0.0
    denom = np.sqrt(np.dot(seg, seg) * np.dot(s, s)) or 1.0
    return lag, float(np.dot(seg, s) / denom)
