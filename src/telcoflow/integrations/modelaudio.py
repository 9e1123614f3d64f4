"""A model's audio, as its MIME type labels it, turned into PCM16 at the call's rate.

Gemini Live (and ADK on it) label each chunk (``audio/pcm;rate=24000``); a chunk
at another rate is resampled from that rate, not played at the wrong speed. What
cannot be played (another encoding, a rate no phone path has) raises
:class:`ModelAudioError`, naming what came, so a bridge can log it once and drop
it without touching the rest of the call.
"""

from __future__ import annotations

from ..audio.polyphase import PolyphaseResampler

__all__ = ["ModelAudio", "ModelAudioError"]

PCM_TYPES = frozenset({"audio/pcm", "audio/l16"})
RATES = range(8000, 48001)


class ModelAudioError(ValueError):
    """The model sent audio the bridge cannot play (the message says what)."""


def parse_mime(mime: str | None, default_rate: int) -> int:
    """The sample rate of a 16-bit PCM MIME type; :class:`ModelAudioError` otherwise."""
    kind, *params = [p.strip() for p in (mime or "audio/pcm").split(";")]
    if kind.lower() not in PCM_TYPES:
        raise ModelAudioError(f"the model sent {kind!r} audio; bridges play 16-bit PCM"
                              " (audio/pcm) only")
    rate = default_rate
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "rate":
            try:
                rate = int(value)
            except ValueError:
                raise ModelAudioError(f"the model's audio has rate {value!r}") from None
    if rate not in RATES:
        raise ModelAudioError(f"the model's audio is at {rate} Hz; 8000-48000 Hz playable")
    return rate


class ModelAudio:
    """Streaming: ``to_call(mime, data)`` per chunk, ``flush()`` at the end of a turn,
    ``reset()`` when the caller barged in (what is in the filter is not played)."""

    def __init__(self, call_rate: int, default_rate: int = 24000) -> None:
        self.call_rate, self.default_rate = call_rate, default_rate
        self.rate = default_rate
        self._resampler = PolyphaseResampler(default_rate, call_rate)
        self._odd = b""

    def to_call(self, mime: str | None, data: bytes) -> bytes:
        rate = parse_mime(mime, self.default_rate)
        out = b""
        if rate != self.rate:  # finish the old rate's tail, then switch
            out = self.flush()
            self.rate = rate
            self._resampler = PolyphaseResampler(rate, self.call_rate)
        data = self._odd + data
        cut = len(data) & ~1  # a sample split across chunks waits for its other byte
        self._odd = data[cut:]
        return out + self._resampler.process(data[:cut])

    def flush(self) -> bytes:
        self._odd = b""
        return self._resampler.flush()

    def reset(self) -> None:
        self._odd = b""
        self._resampler.reset()
