from __future__ import annotations

import numpy as np
import pytest

from telcoflow.audio import pcm
from telcoflow.audio.errors import AudioFormatError


def test_int16_float_roundtrip_is_exact() -> None:
    x = np.arange(-32768, 32768, dtype=np.int16)
    f = pcm.int16_to_float(x)
    assert f.dtype == np.float32
    assert f.min() == -1.0 and f.max() < 1.0
    assert np.array_equal(pcm.float_to_int16(f), x)


def test_float_to_int16_saturates() -> None:
    assert pcm.float_to_int16([2.0, -2.0, 0.5]).tolist() == [32767, -32768, 16384]


def test_split_and_interleave_are_inverse() -> None:
    left = np.arange(10, dtype=np.int16)
    right = -np.arange(10, dtype=np.int16)
    inter = pcm.interleave(left, right)
    assert inter[:4].tolist() == [0, 0, 1, -1]
    l2, r2 = pcm.split_channels(inter.tobytes(), 2)
    assert np.array_equal(l2, left) and np.array_equal(r2, right)
    with pytest.raises(AudioFormatError):
        pcm.split_channels(np.zeros(5, np.int16), 2)
    with pytest.raises(AudioFormatError):
        pcm.interleave(left, right[:3])


def test_apply_gain_linear_db_and_saturation() -> None:
    x = np.array([1000, -1000, 30000], dtype=np.int16)
    assert pcm.apply_gain(x, 2.0).tolist() == [2000, -2000, 32767]
    assert pcm.apply_gain(x, -6.0206, db=True).tolist() == [500, -500, 15000]


def test_mix_saturates_instead_of_wrapping() -> None:
    a = np.array([30000, -30000, 100], dtype=np.int16)
    b = np.array([30000, -30000, 100, 7], dtype=np.int16)
    m = pcm.mix(a, b.tobytes())
    assert m.dtype == np.int16
    assert m.tolist() == [32767, -32768, 200, 7]
    assert pcm.mix().size == 0


def test_odd_byte_count_rejected() -> None:
    with pytest.raises(AudioFormatError):
        pcm.as_int16(b"\x00")
