"""Exceptions raised by :mod:`telcoflow.audio`.

Every error this package raises derives from :class:`AudioError`, so callers
can catch the whole family with one ``except`` clause. The tree::

    AudioError (ValueError)
     ├── AudioFormatError       malformed PCM: odd byte count, wrong dtype/shape,
     │                          unsupported sample width or channel count
     ├── UnsupportedRateError   a sample rate the component does not handle
     ├── WavError               a WAV file that cannot be read or written
     ├── RecorderStateError     AudioBufferProcessor used in the wrong state
     ├── UnknownEventError      an event name no emitter defines
     ├── VADError               VAD configuration or frame-size error
     └── JitterBufferError      jitter buffer misuse (bad frame size, bad sequence)

``AudioError`` subclasses :class:`ValueError` because every one of these
means "the input you gave me is not acceptable"; code that already guards
DSP calls with ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "AudioFormatError",
    "JitterBufferError",
    "RecorderStateError",
    "UnknownEventError",
    "UnsupportedRateError",
    "VADError",
    "WavError",
]


class AudioError(ValueError):
    """Base class of every error raised by ``telcoflow.audio``."""


class AudioFormatError(AudioError):
    """PCM data of the wrong shape, dtype, width or length."""


class UnsupportedRateError(AudioError):
    """A sample rate the component cannot handle."""


class WavError(AudioError):
    """A WAV file that cannot be parsed or written."""


class RecorderStateError(AudioError):
    """The recorder was used in a state that does not allow the operation."""


class UnknownEventError(AudioError):
    """``event_handler()`` / ``add_event_handler()`` with an event name that does not exist."""


class VADError(AudioError):
    """Bad VAD configuration or a frame the VAD engine cannot take."""


class JitterBufferError(AudioError):
    """Bad jitter-buffer configuration or input."""
