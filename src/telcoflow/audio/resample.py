"""Streaming PCM16 resampling built on ``soxr.ResampleStream``.

One :class:`StreamResampler` per stream (per call leg and direction). It is
stateful: feeding a signal in chunks of any size produces the same samples as
feeding it in one piece (bit-identical in practice; the tests allow 1 LSB),
so there are no clicks at chunk edges.

soxr runs in float32 internally; we convert int16 -> float32 on the way in
and round-and-saturate back to int16 on the way out. (soxr's own int16 mode
differs from its one-shot output by up to 2 LSB; the float path does not.)

Latency: soxr holds back output in streaming mode. :attr:`delay_samples`
reports the output samples currently held; ``docs/audio.md`` tabulates the
steady-state figure per quality and rate pair (e.g. HQ 8 kHz -> 16 kHz holds
about 66 ms, MQ about 26 ms). Call :meth:`flush` at the end of a stream to
get the held samples out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from .errors import AudioFormatError, UnsupportedRateError
from .pcm import INT16_MAX, INT16_MIN, PCMInput, as_int16

__all__ = ["QUALITIES", "StreamResampler", "resample"]

QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
_MIN_RATE = 1000
_MAX_RATE = 384_000
_SCALE_IN = np.float32(1.0 / 32768.0)


def _check_rate(rate: int, name: str) -> int:
    if not isinstance(rate, int | np.integer) or isinstance(rate, bool):
        raise UnsupportedRateError(f"{name} must be an int, got {rate!r}")
    if not _MIN_RATE <= int(rate) <= _MAX_RATE:
        raise UnsupportedRateError(f"{name} {rate} Hz outside {_MIN_RATE}..{_MAX_RATE} Hz")
    return int(rate)


def _to_int16(y: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    y = np.rint(y * np.float32(32768.0))
    np.clip(y, INT16_MIN, INT16_MAX, out=y)
    return y.astype(np.int16)


class StreamResampler:
    """Stateful mono PCM16 resampler: ``process(chunk) -> bytes``, then ``flush()``.

    Equal rates are a passthrough (no copy, no delay).
    """

    __slots__ = ("_in_rate", "_out_rate", "_quality", "_stream", "_in_total", "_out_total")

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self._in_rate = _check_rate(in_rate, "in_rate")
        self._out_rate = _check_rate(out_rate, "out_rate")
        q = quality.upper()
        if q not in QUALITIES:
            raise AudioFormatError(f"quality must be one of {QUALITIES}, got {quality!r}")
        self._quality = q
        self._stream: soxr.ResampleStream | None = None
        if self._in_rate != self._out_rate:
            self._stream = soxr.ResampleStream(
                self._in_rate, self._out_rate, 1, dtype="float32", quality=q
            )
        self._in_total = 0
        self._out_total = 0

    @property
    def in_rate(self) -> int:
        return self._in_rate

    @property
    def out_rate(self) -> int:
        return self._out_rate

    @property
    def quality(self) -> str:
        return self._quality

    @property
    def is_passthrough(self) -> bool:
        """True when input and output rates are equal."""
        return self._stream is None

    @property
    def delay_samples(self) -> float:
        """Output samples soxr currently holds back (0 for a passthrough)."""
        return 0.0 if self._stream is None else float(self._stream.delay())

    @property
    def latency_ms(self) -> float:
        """:attr:`delay_samples` in milliseconds at the output rate."""
        return 1000.0 * self.delay_samples / self._out_rate

    @property
    def samples_in(self) -> int:
        return self._in_total

    @property
    def samples_out(self) -> int:
        return self._out_total

    def process_array(self, pcm: PCMInput) -> npt.NDArray[np.int16]:
        """Like :meth:`process` but returns an int16 array."""
        x = as_int16(pcm).reshape(-1)
        self._in_total += x.size
        if self._stream is None:
            self._out_total += x.size
            return x
        y = self._stream.resample_chunk(x.astype(np.float32) * _SCALE_IN)
        out = _to_int16(y)
        self._out_total += out.size
        return out

    def process(self, pcm: PCMInput) -> bytes:
        """Resample one chunk of PCM16 LE mono (bytes or int16 array); returns PCM16 LE bytes.

        The output may be shorter than ``len * out_rate / in_rate`` while the
        filter fills; the difference comes out of later calls or :meth:`flush`.
        """
        if self._stream is None and isinstance(pcm, bytes):
            if len(pcm) % 2:
                raise AudioFormatError(f"PCM16 data must have an even byte count, got {len(pcm)}")
            self._in_total += len(pcm) // 2
            self._out_total += len(pcm) // 2
            return pcm
        return self.process_array(pcm).astype("<i2", copy=False).tobytes()

    def flush(self) -> bytes:
        """Emit the samples still held and reset for a fresh stream."""
        if self._stream is None:
            return b""
        y = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._stream.clear()
        out = _to_int16(y)
        self._out_total += out.size
        return out.astype("<i2", copy=False).tobytes()

    def reset(self) -> None:
        """Drop held samples and start a fresh stream (counters are kept)."""
        if self._stream is not None:
            self._stream.clear()


def resample(pcm: PCMInput, in_rate: int, out_rate: int, quality: str = "HQ") -> bytes:
    """One-shot resampling of a whole PCM16 mono signal (process + flush)."""
    r = StreamResampler(in_rate, out_rate, quality)
    return r.process(pcm) + r.flush()
