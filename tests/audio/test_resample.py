from __future__ import annotations

import numpy as np
import pytest

from telcoflow.audio.errors import AudioFormatError, UnsupportedRateError
from telcoflow.audio.resample import StreamResampler, resample

PAIRS = [(a, b) for a in (8000, 16000, 24000, 48000) for b in (8000, 16000, 24000, 48000) if a != b]


def _tone(rate: int, seconds: float, freq: float = 440.0, amp: float = 12000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _chunked(r: StreamResampler, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    out = []
    i = 0
    k = 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        out.append(r.process(x[i : i + n].tobytes()))
        i += n
        k += 1
    out.append(r.flush())
    return np.frombuffer(b"".join(out), dtype="<i2")


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_chunked_equals_one_shot_within_one_lsb(a: int, b: int) -> None:
    rng = np.random.default_rng(a + b)
    x = np.clip(rng.normal(0, 6000, a // 2), -32768, 32767).astype(np.int16) + _tone(a, 0.5)
    one = np.frombuffer(resample(x, a, b), dtype="<i2")
    chunked = _chunked(StreamResampler(a, b), x, [a // 50, 7, 1, 333, a // 100])
    assert one.size == chunked.size == x.size * b // a
    assert np.abs(one.astype(np.int32) - chunked).max() <= 1


@pytest.mark.parametrize(("a", "b"), [(8000, 16000), (24000, 8000), (16000, 48000)])
def test_tone_survives_without_clicks(a: int, b: int) -> None:
    x = _tone(a, 1.0, freq=300.0)
    y = _chunked(StreamResampler(a, b), x, [a // 50])
    ref = _tone(b, 1.0, freq=300.0).astype(np.int32)
    # Output is time aligned with input (soxr removes its delay) and matches the ideal tone.
    core = slice(b // 20, -b // 20)
    assert np.abs(y[core] - ref[core]).max() < 200
    # No chunk-edge click: max step between samples is what the tone itself has.
    # (The abrupt start/end of the test tone rings, so only the interior is checked.)
    step = np.abs(np.diff(y[core].astype(np.int32))).max()
    assert step <= np.abs(np.diff(ref[core])).max() + 50


def test_frequency_preserved_after_resampling() -> None:
    y = np.frombuffer(resample(_tone(8000, 1.0, freq=1000.0), 8000, 24000), dtype="<i2")
    spec = np.abs(np.fft.rfft(y.astype(np.float64) * np.hanning(y.size)))
    freqs = np.fft.rfftfreq(y.size, 1 / 24000)
    assert abs(freqs[np.argmax(spec)] - 1000.0) < 2.0


def test_identity_is_passthrough() -> None:
    r = StreamResampler(16000, 16000)
    data = _tone(16000, 0.02).tobytes()
    assert r.is_passthrough
    assert r.process(data) is data
    assert r.flush() == b""
    assert r.delay_samples == 0.0


def test_delay_and_counters_and_reuse_after_flush() -> None:
    r = StreamResampler(8000, 16000, quality="MQ")
    x = _tone(8000, 0.2)
    out = len(r.process(x)) // 2
    assert r.delay_samples > 0
    assert out + r.delay_samples == pytest.approx(x.size * 2, abs=1)
    assert r.latency_ms == pytest.approx(1000 * r.delay_samples / 16000)
    out += len(r.flush()) // 2
    assert out == x.size * 2 == r.samples_out
    assert r.samples_in == x.size
    # After flush the stream starts fresh and gives the same result again.
    again = r.process(x) + r.flush()
    assert again == resample(x, 8000, 16000, "MQ")


def test_bad_arguments() -> None:
    with pytest.raises(UnsupportedRateError):
        StreamResampler(0, 8000)
    with pytest.raises(AudioFormatError):
        StreamResampler(8000, 16000, quality="best")
    with pytest.raises(AudioFormatError):
        StreamResampler(8000, 16000).process(b"\x00")
