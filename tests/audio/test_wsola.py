"""WSOLA time compression: shorter, same pitch, no clicks, seamless when it stops."""

from __future__ import annotations

import numpy as np
import pytest

from telcoflow.audio.errors import AudioError
from telcoflow.audio.wsola import Wsola

RATE = 16_000


def tone(seconds: float, hz: float, amp: float = 8000.0) -> np.ndarray:
    n = np.arange(int(RATE * seconds))
    return amp * np.sin(2 * np.pi * hz * n / RATE)


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / RATE)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("hz", [180.0, 440.0, 1000.0])
def test_a_tone_stays_the_same_tone_shorter_and_without_clicks(hz: float) -> None:
    x = tone(1.0, hz)
    pcm = x.astype("<i2").tobytes()
    w = Wsola(RATE, speed=1.5)
    out = b"".join(w.process(pcm[i:i + 640]) for i in range(0, len(pcm), 640))
    compressed = len(out) // 2
    out += w.flush()
    y = np.frombuffer(out, "<i2").astype(float)
    assert w.consumed == len(x)                   # every input sample accounted for
    assert len(y) == len(x) - w.saved             # shorter by what it says it saved
    assert 0.6 < compressed / (len(x) - 2 * w.window) < 0.72  # ~1/1.5 while compressing
    assert abs(peak_hz(y[:compressed]) - hz) < 3  # pitch kept (not resampled)
    steepest = 8000 * 2 * np.pi * hz / RATE       # the tone's own biggest sample step
    assert np.abs(np.diff(y)).max() <= steepest * 1.05 + 2  # no join is a click


def test_speed_one_is_the_input_itself() -> None:
    x = tone(0.3, 300.0).astype("<i2")
    w = Wsola(RATE, speed=1.0)
    out = w.process(x.tobytes()) + w.flush()
    assert out == x.tobytes()


def test_speed_out_of_range_is_refused() -> None:
    with pytest.raises(AudioError):
        Wsola(RATE, speed=3.0)
