"""ITU-T G.711 μ-law and A-law, table driven and bit-exact.

The tables are computed once at import time from the segment/quantisation
rules of G.711 (the same rules the classic reference implementation and the
CPython ``audioop`` module use), so there is no dependency on ``audioop``,
which was removed in Python 3.13:

* encoding indexes a 65,536-entry ``uint8`` table with the int16 sample
  viewed as ``uint16``; every possible input has a precomputed code;
* decoding indexes a 65,536-entry table of *pairs* of samples with the
  codes viewed two at a time as ``uint16`` (half the index work of a
  256-entry table, which is what an odd trailing code uses).

μ-law works on the 14 most significant bits of the sample (bias 33, clip at
8159), A-law on the 13 most significant bits (even-bit inversion with 0x55).
Decoded values are scaled to the 16-bit range, as ``audioop.ulaw2lin`` /
``audioop.alaw2lin`` with width 2 return them.

Silence codes: μ-law 0xFF (also 0x7F), A-law 0xD5 (also 0x55).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .errors import AudioFormatError

__all__ = [
    "ALAW_SILENCE",
    "ULAW_SILENCE",
    "alaw_decode",
    "alaw_decode_bytes",
    "alaw_encode",
    "alaw_to_ulaw",
    "ulaw_decode",
    "ulaw_decode_bytes",
    "ulaw_encode",
    "ulaw_to_alaw",
]

ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5

CodeInput = bytes | bytearray | memoryview | npt.NDArray[np.uint8]
PCMInput = bytes | bytearray | memoryview | npt.NDArray[np.int16]


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    x = np.arange(-32768, 32768, dtype=np.int32)
    v = x >> 2  # 14-bit linear
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + 33
    ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
    seg = (mag[:, None] > ends[None, :]).sum(axis=1).astype(np.int32)
    mant = (mag >> np.minimum(seg + 1, 31)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | mant) ^ mask
    table = np.empty(65536, dtype=np.uint8)
    table[x.astype(np.uint16)] = code.astype(np.uint8)  # index = sample as uint16
    return table


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    x = np.arange(-32768, 32768, dtype=np.int32)
    v = x >> 3  # 13-bit linear
    neg = v < 0
    mask = np.where(neg, 0x55, 0xD5)
    mag = np.where(neg, -v - 1, v)
    ends = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
    seg = (mag[:, None] > ends[None, :]).sum(axis=1).astype(np.int32)
    shift = np.where(seg < 2, 1, np.minimum(seg, 31))
    mant = (mag >> shift) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | mant) ^ mask
    table = np.empty(65536, dtype=np.uint8)
    table[x.astype(np.uint16)] = code.astype(np.uint8)
    return table


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    u = (~np.arange(256, dtype=np.int32)) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ULAW_ENC = _build_ulaw_encode()
_ALAW_ENC = _build_alaw_encode()
_ULAW_DEC = _build_ulaw_decode()
_ALAW_DEC = _build_alaw_decode()


def _pair_table(dec: npt.NDArray[np.int16]) -> npt.NDArray[np.uint32]:
    # Entry k decodes the two codes whose little-endian uint16 is k: low byte first.
    k = np.arange(65536)
    le: npt.NDArray[np.uint32] = dec.astype("<i2").view("<u2").astype(np.uint32)
    table: npt.NDArray[np.uint32] = (le[k & 0xFF] | (le[k >> 8] << np.uint32(16))).astype("<u4")
    return table


_ULAW_PAIRS = _pair_table(_ULAW_DEC)
_ALAW_PAIRS = _pair_table(_ALAW_DEC)
# 256-byte translation tables for direct transcoding (bytes.translate, no numpy).
_ULAW_TO_ALAW = _ALAW_ENC[_ULAW_DEC.astype(np.uint16)].tobytes()
_ALAW_TO_ULAW = _ULAW_ENC[_ALAW_DEC.astype(np.uint16)].tobytes()


_U2 = np.dtype("<u2")
_I2 = np.dtype("<i2")


def _samples_u16(pcm: PCMInput) -> npt.NDArray[np.uint16]:
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise AudioFormatError(f"expected int16 samples, got dtype {pcm.dtype}")
        return pcm.reshape(-1).view(np.uint16)
    if len(pcm) & 1:
        raise AudioFormatError(f"PCM16 data must have an even byte count, got {len(pcm)}")
    return np.frombuffer(pcm, dtype=_U2)


def _decode_raw(
    codes: CodeInput, pairs: npt.NDArray[np.uint32], single: npt.NDArray[np.int16]
) -> npt.NDArray[np.int16] | npt.NDArray[np.uint32]:
    """Decoded samples; an even count comes back as uint32 pairs (little-endian)."""
    if isinstance(codes, np.ndarray):
        if codes.dtype != np.uint8:
            raise AudioFormatError(f"expected uint8 codes, got dtype {codes.dtype}")
        codes = np.ascontiguousarray(codes.reshape(-1)).tobytes()
    n = len(codes)
    if n & 1 == 0:
        return pairs.take(np.frombuffer(codes, dtype=_U2))
    head = pairs.take(np.frombuffer(codes, dtype=_U2, count=n >> 1)).view(_I2)
    return np.concatenate((head, single[codes[-1] : codes[-1] + 1]))


def _decode(
    codes: CodeInput, pairs: npt.NDArray[np.uint32], single: npt.NDArray[np.int16]
) -> npt.NDArray[np.int16]:
    out = _decode_raw(codes, pairs, single)
    return out.view(_I2) if out.dtype != _I2 else out  # type: ignore[return-value]


def ulaw_encode(pcm: PCMInput) -> bytes:
    """Encode int16 samples (array, or PCM16 LE bytes) to μ-law bytes, one per sample."""
    return _ULAW_ENC.take(_samples_u16(pcm)).tobytes()


def alaw_encode(pcm: PCMInput) -> bytes:
    """Encode int16 samples (array, or PCM16 LE bytes) to A-law bytes, one per sample."""
    return _ALAW_ENC.take(_samples_u16(pcm)).tobytes()


def ulaw_decode(codes: CodeInput) -> npt.NDArray[np.int16]:
    """Decode μ-law bytes to an int16 array."""
    return _decode(codes, _ULAW_PAIRS, _ULAW_DEC)


def alaw_decode(codes: CodeInput) -> npt.NDArray[np.int16]:
    """Decode A-law bytes to an int16 array."""
    return _decode(codes, _ALAW_PAIRS, _ALAW_DEC)


def ulaw_decode_bytes(codes: CodeInput) -> bytes:
    """Decode μ-law bytes to PCM16 little-endian bytes."""
    return _decode_raw(codes, _ULAW_PAIRS, _ULAW_DEC).tobytes()


def alaw_decode_bytes(codes: CodeInput) -> bytes:
    """Decode A-law bytes to PCM16 little-endian bytes."""
    return _decode_raw(codes, _ALAW_PAIRS, _ALAW_DEC).tobytes()


def ulaw_to_alaw(codes: bytes | bytearray) -> bytes:
    """Transcode μ-law to A-law via decode+encode tables (``bytes.translate``)."""
    return bytes(codes).translate(_ULAW_TO_ALAW)


def alaw_to_ulaw(codes: bytes | bytearray) -> bytes:
    """Transcode A-law to μ-law via decode+encode tables (``bytes.translate``)."""
    return bytes(codes).translate(_ALAW_TO_ULAW)
