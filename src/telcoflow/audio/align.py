"""Where one signal sits inside another: FFT cross-correlation, for echo and latency checks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def best_lag(received: npt.NDArray[np.int16], sent: npt.NDArray[np.int16]) -> tuple[int, float]:
    """The offset of ``sent`` inside ``received`` and the normalised correlation there."""
    r = received.astype(np.float64)
    s = sent.astype(np.float64)
    size = 1 << (len(r) + len(s) - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(r, size) * np.conj(np.fft.rfft(s, size)), size)[:len(r)]
    lag = int(np.argmax(corr))
    seg = r[lag:lag + len(s)]
    if len(seg) < len(s):
        return lag, 0.0
    denom = np.sqrt(np.dot(seg, seg) * np.dot(s, s)) or 1.0
    return lag, float(np.dot(seg, s) / denom)
