"""Per-stream reading state of a QUIC connection's client-initiated streams."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...protocol import quic
from .call_link import QuicCallLink

#: a request carries a few short strings; an audio frame at most 20 ms of 48 kHz PCM16
MAX_REQUEST_BODY = 4096
MAX_AUDIO_BODY = quic.MAX_PAYLOAD + 512


@dataclass(slots=True)
class RequestStream:
    """A client bidi stream: (the authentication line, on the first one) one request."""

    reader: quic.EnvelopeReader = field(
        default_factory=lambda: quic.EnvelopeReader(MAX_REQUEST_BODY))
    auth_line: bytearray = field(default_factory=bytearray)
    done: bool = False  # the request was read (or refused): later bytes are ignored


@dataclass(slots=True)
class AudioStream:
    """A client uni-stream: one call's AudioFrames, bound by the first frame's call_sid."""

    reader: quic.EnvelopeReader = field(
        default_factory=lambda: quic.EnvelopeReader(MAX_AUDIO_BODY))
    link: QuicCallLink | None = None
    refused: bool = False  # stopped with an error code: later bytes are ignored


class StreamBudget:
    """How many new client uni-streams a connection may open: a token bucket whose rate
    and burst grow with the connection's live calls.

    Each call is entitled to its one audio stream (:meth:`credit` when the call is
    taken, so calls that all start talking in the same 20 ms all get theirs); beyond
    that ``base_rate`` a second, ``base_burst`` at once, plus one a second per live call.
    What the bound is for is a client that opens a stream per packet.
    """

    __slots__ = ("base_rate", "base_burst", "_tokens", "_last")

    def __init__(self, base_rate: float, base_burst: float, now: float) -> None:
        self.base_rate, self.base_burst = base_rate, base_burst
        self._tokens = base_burst
        self._last = now

    def _refill(self, now: float, calls: int) -> None:
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.base_burst + calls,
                           self._tokens + elapsed * (self.base_rate + calls))

    def take(self, now: float, calls: int) -> bool:
        self._refill(now, calls)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def credit(self, now: float, calls: int) -> None:
        """One stream more: a call was taken (``calls`` counts it), or a stream turned out
        to be owed nothing (late audio of a call that just ended)."""
        self._refill(now, calls)
        self._tokens = min(self.base_burst + calls, self._tokens + 1.0)
