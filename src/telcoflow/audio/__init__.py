"""Pure, synchronous, streaming audio DSP for Telcoflow.

Submodules (import what you need; this package imports nothing heavy eagerly
beyond numpy):

* :mod:`~telcoflow.audio.g711`      G.711 μ-law / A-law, bit-exact, table driven
* :mod:`~telcoflow.audio.resample`  streaming resampler on soxr
* :mod:`~telcoflow.audio.polyphase` low-latency polyphase FIR resampler (live media path)
* :mod:`~telcoflow.audio.pcm`       int16/float conversion, channels, gain, saturating mix
* :mod:`~telcoflow.audio.wav`       WAV read/write (whole files and incremental)
* :mod:`~telcoflow.audio.jitter`    jitter buffer and re-chunker (exact 20 ms frames)
* :mod:`~telcoflow.audio.vad`       streaming VAD with start/stop hysteresis
* :mod:`~telcoflow.audio.quality`   AudioQualityMonitor: SNR, THD, clipping, score
* :mod:`~telcoflow.audio.recorder`  AudioBufferProcessor: aligned call recording
* :mod:`~telcoflow.audio.attach`    record an SDK call (duck-typed) with it
* :mod:`~telcoflow.audio.latency`   per-turn response latency, p50/p90/p99
* :mod:`~telcoflow.audio.events`    sync/async event handler dispatch
* :mod:`~telcoflow.audio.synth`     deterministic test signals and offline TTS
* :mod:`~telcoflow.audio.errors`    the exception tree (``AudioError`` and subclasses)

See ``docs/audio.md``.
"""

import importlib
from typing import Any

from .errors import (
    AudioError,
    AudioFormatError,
    JitterBufferError,
    RecorderStateError,
    UnknownEventError,
    UnsupportedRateError,
    VADError,
    WavError,
)

# The classes users reach for, importable from the package; loaded on first use, so
# ``import telcoflow.audio`` stays cheap (the recorder pulls soxr and a VAD engine in).
_LAZY = {"AudioBufferProcessor": ".recorder", "AudioQualityMonitor": ".quality",
         "VoiceActivityDetector": ".vad", "JitterBuffer": ".jitter"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AudioBufferProcessor",
    "AudioQualityMonitor",
    "JitterBuffer",
    "VoiceActivityDetector",
    "AudioError",
    "AudioFormatError",
    "JitterBufferError",
    "RecorderStateError",
    "UnknownEventError",
    "UnsupportedRateError",
    "VADError",
    "WavError",
]
