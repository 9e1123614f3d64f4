"""Errors raised by the sans-I/O protocol cores.

Tree::

    ProtocolError                 base; ``code`` is the wire error code, ``message`` a sentence
    ├── MalformedFrame            not JSON / not an object / wrong field types  (INVALID_REQUEST)
    ├── UnknownMessageType        a ``type`` this plane does not define         (UNKNOWN_TYPE)
    │   └── UnknownCommand        a voice ``command`` name we do not know       (UNKNOWN_COMMAND)
    ├── FrameTooLarge             a frame over the plane's size limit          (FRAME_TOO_LARGE)
    └── VaicMessageError          an AudioCodes VoiceAI Connect message we refuse; its
                                  ``code`` says what is wrong (BAD_JSON, UNKNOWN_TYPE,
                                  MISSING_CONVERSATION_ID, BAD_BASE64, ODD_LENGTH, ...)

``request_id`` carries the frame's ``reqId`` / ``command_id`` when one could be
read, so the I/O layer can answer the request it belongs to.
"""

from __future__ import annotations


class ProtocolError(Exception):
    code = "INVALID_REQUEST"

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class MalformedFrame(ProtocolError):
    code = "INVALID_REQUEST"


class UnknownMessageType(ProtocolError):
    code = "UNKNOWN_TYPE"


class UnknownCommand(UnknownMessageType):
    code = "UNKNOWN_COMMAND"


class FrameTooLarge(ProtocolError):
    code = "FRAME_TOO_LARGE"


class VaicMessageError(ProtocolError):
    """An AudioCodes VoiceAI Connect (Bot API) message we refuse; ``code`` is specific."""

    code = "INVALID_MESSAGE"

    def __init__(self, message: str, code: str = "INVALID_MESSAGE") -> None:
        super().__init__(message)
        self.code = code
