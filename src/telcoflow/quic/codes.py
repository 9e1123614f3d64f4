"""What both ends of the QUIC audio plane agree on besides the messages: the ALPN, the
authentication line, and the application error codes of stream resets, STOP_SENDING
and connection closes (docs/quic.md lists them with their meanings).

A code is sent two ways: as the QUIC application error code (an integer: a stream
stopped or reset, the connection closed) and, where a call or a subscription stream
can carry it, by name in a ``CallEvent`` of kind ERROR (``reason``), with a sentence
(``message``). The names are the protocol module's ``QuicFrameError.code`` values
for what could not be read, and this plane's own for what was refused.
"""

from __future__ import annotations

from enum import IntEnum

ALPN = "telcoflow-audio/1"
#: The first bidirectional stream starts with this line, then its request's envelope.
AUTH_SCHEME = "Bearer"
MAX_AUTH_LINE = 512  # bytes, the newline included
AUTH_TIMEOUT_S = 5.0


class ErrorCode(IntEnum):
    """QUIC application error codes (RESET_STREAM, STOP_SENDING, CONNECTION_CLOSE)."""

    NO_ERROR = 0x0
    # the connection
    AUTH_REQUIRED = 0x101     # no (or a malformed) authentication line, or data before it
    AUTH_FAILED = 0x102       # the key or the connector uuid is wrong
    AUTH_TIMEOUT = 0x103      # nothing authenticated within AUTH_TIMEOUT_S
    BUSY = 0x104              # the gateway has its maximum of QUIC connections
    SHUTDOWN = 0x105          # the gateway is stopping
    # what could not be read (QuicFrameError.code)
    MALFORMED = 0x110
    FRAME_TOO_LARGE = 0x111
    TRUNCATED = 0x112
    UNKNOWN_METHOD = 0x113
    INVALID_BODY = 0x114
    UNEXPECTED_MESSAGE = 0x115  # a valid message on a stream that does not carry it
    # what was refused
    NOT_YOUR_CALL = 0x120       # audio for a call this connection does not hold
    STREAM_REFUSED = 0x121      # a second uni-stream for a call, or a stream per packet
    AFTER_END_OF_STREAM = 0x122  # a frame after the one with end_of_stream
    CALL_ENDED = 0x123          # the call's audio stream is stopped: the call has ended
    LIMIT_EXCEEDED = 0x124      # too many calls or buffered bytes on this connection
    INTERNAL = 0x1FF


def code_for(name: str) -> ErrorCode:
    """The integer code of an error name (``INTERNAL`` for a name we do not define)."""
    return ErrorCode.__members__.get(name, ErrorCode.INTERNAL)
