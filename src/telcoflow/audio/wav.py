"""WAV file I/O for PCM integer WAVs, using the stdlib ``wave`` module and numpy.

:func:`read_wav` accepts 8-bit (unsigned), 16, 24 and 32-bit (signed) PCM
with any channel count and returns mono int16: multichannel audio is
downmixed by averaging the channels; wider samples are reduced to 16 bits
by keeping the top 16 bits (arithmetic shift, so no rounding overflow);
8-bit unsigned samples are offset by -128 and shifted up by 8 bits.

Files with ``WAVE_FORMAT_EXTENSIBLE`` headers that carry integer PCM are
accepted too (``wave`` reads them on Python >= 3.12; on 3.11 they are parsed
here). Float and compressed WAVs raise :class:`~telcoflow.audio.errors.WavError`;
a missing or unreadable file raises the usual :class:`OSError`.
"""

from __future__ import annotations

import os
import struct
import wave
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from .errors import WavError

__all__ = ["WavWriter", "read_wav", "read_wav_channels", "write_wav"]

StrPath = str | os.PathLike[str]

_PCM_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def _decode_frames(raw: bytes, width: int, channels: int) -> npt.NDArray[np.int32]:
    """Raw little-endian PCM frames -> int32 array of shape (n, channels), full scale 2**31."""
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 24
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.int32) << 16
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = (b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.int32)
    else:
        raise WavError(f"unsupported sample width {width * 8} bits")
    n = x.size // channels
    return x[: n * channels].reshape(n, channels)


def _read_chunks(f: BinaryIO) -> tuple[int, int, int, int, bytes]:
    """Minimal RIFF parser for WAVE_FORMAT_EXTENSIBLE (Python 3.11's wave rejects it)."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    while True:
        hdr = f.read(8)
        if len(hdr) < 8:
            raise WavError("no data chunk")
        cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        body = f.read(size + (size & 1))
        if cid == b"fmt ":
            if len(body) < 16:
                raise WavError("fmt chunk too short")
            tag, ch, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == 0xFFFE:
                if len(body) < 40 or body[26:40] != _PCM_GUID_TAIL or body[24:26] != b"\x01\x00":
                    raise WavError("WAVE_FORMAT_EXTENSIBLE with a non-PCM subformat")
                tag = 1
            if tag != 1:
                raise WavError(f"unsupported WAV format tag {tag:#x} (only integer PCM)")
            fmt = (ch, (bits + 7) // 8, rate, tag)
        elif cid == b"data":
            if fmt is None:
                raise WavError("data chunk before fmt chunk")
            return fmt[0], fmt[1], fmt[2], fmt[3], body[:size]


def read_wav_channels(path: StrPath) -> tuple[npt.NDArray[np.int16], int]:
    """Read a PCM WAV as int16 of shape ``(n, channels)`` plus its sample rate."""
    try:
        with wave.open(os.fspath(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except wave.Error:
        with open(path, "rb") as f:
            channels, width, rate, _, raw = _read_chunks(f)
    except (EOFError, struct.error) as exc:
        raise WavError(f"truncated or malformed WAV {os.fspath(path)!r}: {exc}") from exc
    if channels < 1:
        raise WavError("WAV declares zero channels")
    frames = _decode_frames(raw, width, channels)
    return (frames >> 16).astype(np.int16), rate


def read_wav(path: StrPath) -> tuple[npt.NDArray[np.int16], int]:
    """Read a PCM WAV as mono int16 samples and the sample rate (channels averaged)."""
    frames, rate = read_wav_channels(path)
    if frames.shape[1] == 1:
        return np.ascontiguousarray(frames[:, 0]), rate
    mean = np.rint(frames.astype(np.float64).mean(axis=1))
    return mean.astype(np.int16), rate


def write_wav(path: StrPath, samples: npt.NDArray[np.int16], rate: int) -> None:
    """Write int16 samples, shape ``(n,)`` mono or ``(n, channels)``, as 16-bit PCM WAV."""
    arr = np.asarray(samples)
    if arr.dtype != np.int16:
        raise WavError(f"write_wav needs int16 samples, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise WavError(f"samples must have shape (n,) or (n, channels), got {arr.shape}")
    if not isinstance(rate, int) or rate <= 0:
        raise WavError(f"rate must be a positive int, got {rate!r}")
    with wave.open(os.fspath(path), "wb") as w:
        w.setnchannels(arr.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(arr, dtype="<i2").tobytes())


class WavWriter:
    """Incremental 16-bit PCM WAV writer: ``write(pcm_bytes)`` as audio comes, then
    ``close()`` (the header's sizes are fixed up on close). Usable as a context manager."""

    def __init__(self, path: StrPath, rate: int, channels: int = 1,
                 header_every_s: float | None = None) -> None:
        """``header_every_s``: also rewrite the header's sizes and flush this often, so
        the file stays readable up to then if the process dies (a live recording)."""
        if rate <= 0 or channels < 1:
            raise WavError(f"bad WAV parameters: rate={rate}, channels={channels}")
        self.path = os.fspath(path)
        self.rate = rate
        self.channels = channels
        self.frames = 0
        self._header_frames = None if header_every_s is None else int(rate * header_every_s)
        self._patched = 0
        self._w: wave.Wave_write | None = wave.open(self.path, "wb")
        self._w.setnchannels(channels)
        self._w.setsampwidth(2)
        self._w.setframerate(rate)

    def write(self, pcm: bytes) -> None:
        """Append interleaved PCM16 LE frames."""
        if self._w is None:
            raise WavError(f"{self.path!r} is closed")
        if len(pcm) % (2 * self.channels):
            raise WavError(f"{len(pcm)} bytes is not a whole number of {self.channels}-ch frames")
        self._w.writeframesraw(pcm)
        self.frames += len(pcm) // (2 * self.channels)
        if self._header_frames is not None and self.frames - self._patched >= self._header_frames:
            # the wave module rewrites the header's sizes; its seeks there and back flush
            # the file's buffer, so the OS holds a readable file up to here
            self._w.writeframes(b"")
            self._patched = self.frames

    @property
    def bytes(self) -> int:
        """The file's size so far: the 44-byte header and the samples."""
        return 44 + self.frames * 2 * self.channels

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None

    @property
    def closed(self) -> bool:
        return self._w is None

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
