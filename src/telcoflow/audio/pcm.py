"""PCM16 helpers: conversions, channel layout, gain and saturating mixing.

All functions take ``bytes`` (PCM16 little-endian) or numpy arrays and are
vectorised. Integer results saturate at the int16 range instead of wrapping.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .errors import AudioFormatError

__all__ = [
    "INT16_MAX",
    "INT16_MIN",
    "as_int16",
    "float_to_int16",
    "int16_to_float",
    "apply_gain",
    "interleave",
    "mix",
    "split_channels",
    "to_bytes",
]

INT16_MAX = 32767
INT16_MIN = -32768

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]
PCMInput = bytes | bytearray | memoryview | npt.NDArray[np.int16]


def as_int16(pcm: PCMInput) -> Int16Array:
    """View PCM16 LE bytes (or an int16 array) as a 1-D or N-D int16 array.

    Bytes are viewed without copying (the result is read-only in that case).
    """
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise AudioFormatError(f"expected int16 samples, got dtype {pcm.dtype}")
        return pcm
    if isinstance(pcm, bytes | bytearray | memoryview):
        if len(pcm) % 2:
            raise AudioFormatError(f"PCM16 data must have an even byte count, got {len(pcm)}")
        return np.frombuffer(pcm, dtype="<i2")
    raise AudioFormatError(f"expected bytes or an int16 array, got {type(pcm).__name__}")


def to_bytes(pcm: PCMInput) -> bytes:
    """PCM16 little-endian bytes of ``pcm``."""
    if isinstance(pcm, bytes):
        return pcm
    return as_int16(pcm).astype("<i2", copy=False).tobytes()


def int16_to_float(pcm: PCMInput) -> Float32Array:
    """int16 samples to float32 in [-1.0, 1.0) (divides by 32768)."""
    return as_int16(pcm).astype(np.float32) * np.float32(1.0 / 32768.0)


def float_to_int16(samples: npt.ArrayLike) -> Int16Array:
    """float samples in [-1, 1] to int16: scale by 32768, round, saturate."""
    x = np.asarray(samples, dtype=np.float64) * 32768.0
    return np.clip(np.rint(x), INT16_MIN, INT16_MAX).astype(np.int16)


def split_channels(pcm: PCMInput, num_channels: int) -> list[Int16Array]:
    """Split interleaved PCM16 into ``num_channels`` mono arrays."""
    if num_channels < 1:
        raise AudioFormatError(f"num_channels must be >= 1, got {num_channels}")
    data = as_int16(pcm).reshape(-1)
    if data.size % num_channels:
        raise AudioFormatError(
            f"{data.size} samples is not a whole number of {num_channels}-channel frames"
        )
    frames = data.reshape(-1, num_channels)
    return [np.ascontiguousarray(frames[:, c]) for c in range(num_channels)]


def interleave(*channels: PCMInput) -> Int16Array:
    """Interleave mono channels of equal length into one 1-D int16 array."""
    if not channels:
        raise AudioFormatError("interleave() needs at least one channel")
    arrays = [as_int16(c).reshape(-1) for c in channels]
    n = arrays[0].size
    if any(a.size != n for a in arrays):
        raise AudioFormatError(f"channel lengths differ: {[a.size for a in arrays]}")
    return np.stack(arrays, axis=1).reshape(-1)


def apply_gain(pcm: PCMInput, gain: float, *, db: bool = False) -> Int16Array:
    """Multiply by ``gain`` (linear, or decibels when ``db=True``), rounding and saturating."""
    factor = 10.0 ** (gain / 20.0) if db else float(gain)
    x = as_int16(pcm).astype(np.float64) * factor
    return np.clip(np.rint(x), INT16_MIN, INT16_MAX).astype(np.int16)


def mix(*tracks: PCMInput) -> Int16Array:
    """Sum tracks sample by sample with saturation (no wrap-around).

    Tracks of different lengths are allowed: shorter ones are treated as
    padded with silence, so the result is as long as the longest track.
    """
    if not tracks:
        return np.zeros(0, dtype=np.int16)
    arrays = [as_int16(t).reshape(-1) for t in tracks]
    n = max(a.size for a in arrays)
    acc = np.zeros(n, dtype=np.int32)
    for a in arrays:
        acc[: a.size] += a
    np.clip(acc, INT16_MIN, INT16_MAX, out=acc)
    return acc.astype(np.int16)
