"""The live-path polyphase resampler: one frame in, one frame out, chunk-invariant."""

from __future__ import annotations

import numpy as np
import pytest

from telcoflow.audio.errors import AudioFormatError
from telcoflow.audio.polyphase import FrameBatchResampler, PolyphaseResampler

PAIRS = [(8000, 16000), (16000, 8000), (8000, 24000), (24000, 8000), (16000, 24000),
         (24000, 16000), (16000, 48000), (48000, 16000)]


def sweep(rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    top = min(3000.0, rate * 0.4)
    return (8000 * np.sin(2 * np.pi * (200 * t + (top - 200) * t * t / (2 * seconds)))).astype(
        np.int16)


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_every_20ms_frame_yields_exactly_one_20ms_frame(src: int, dst: int) -> None:
    rs = PolyphaseResampler(src, dst)
    x = sweep(src)
    n = src // 50
    sizes = {len(rs.process(x[i:i + n])) for i in range(0, len(x), n)}
    assert sizes == {dst // 50 * 2}


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_chunking_does_not_change_the_output(src: int, dst: int) -> None:
    x = sweep(src)
    whole = PolyphaseResampler(src, dst).process(x)
    rs = PolyphaseResampler(src, dst)
    rng = np.random.default_rng(3)
    cuts = np.sort(rng.choice(np.arange(1, len(x)), 40, replace=False))
    pieces = b"".join(rs.process(part) for part in np.split(x, cuts))
    assert pieces == whole


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_there_and_back_preserves_the_signal(src: int, dst: int) -> None:
    x = sweep(src)
    there = PolyphaseResampler(src, dst)
    back = PolyphaseResampler(dst, src)
    y = np.frombuffer(back.process(there.process(x) + there.flush()) + back.flush(), "<i2")
    expected = round((there.delay_s + back.delay_s) * src)

    def corr(lag: int) -> float:
        seg = y[lag:lag + len(x)].astype(float)
        return float(np.dot(seg, x) / np.sqrt(np.dot(seg, seg) * np.dot(x.astype(float), x)))

    best = max(range(max(0, expected - 8), expected + 9), key=corr)
    assert abs(best - expected) <= 2, "the delay the resampler reports is wrong"
    assert corr(best) > 0.999


def test_equal_rates_pass_through_untouched() -> None:
    x = sweep(16000)
    assert PolyphaseResampler(16000, 16000).process(x.tobytes()) == x.tobytes()


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (8000, 24000),
                                          (24000, 8000), (48000, 16000), (16000, 48000),
                                          (16000, 16000)])
def test_frame_batch_matches_one_stream_at_a_time(src: int, dst: int) -> None:
    rng = np.random.default_rng(2)
    frame, streams, frames = src // 50, 4, 12
    x = rng.integers(-32768, 32767, (streams, frame * frames), endpoint=True).astype(np.int16)
    batch = FrameBatchResampler(src, dst, frame)
    states = [batch.new_state() for _ in range(streams)]
    got = np.concatenate([batch.process(x[:, j * frame:(j + 1) * frame], states)
                          for j in range(frames)], axis=1)
    for s in range(streams):
        single = PolyphaseResampler(src, dst)
        want = np.frombuffer(b"".join(single.process(x[s, j * frame:(j + 1) * frame])
                                      for j in range(frames)), "<i2")
        # float32 products against the float64 filter: at most one step of rounding apart
        assert np.abs(got[s].astype(np.int32) - want).max() <= 1


def test_frame_matrix_needs_whole_periods() -> None:
    with pytest.raises(AudioFormatError):
        PolyphaseResampler(44100, 16000).frame_matrix(440)  # 441 in per 160 out


def test_reset_starts_a_fresh_stream() -> None:
    rng = np.random.default_rng(5)
    first, second = (rng.integers(-8000, 8000, 480).astype(np.int16) for _ in range(2))
    used = PolyphaseResampler(8000, 24000)
    used.process(first)
    used.reset()
    assert used.process(second) == PolyphaseResampler(8000, 24000).process(second)
