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
