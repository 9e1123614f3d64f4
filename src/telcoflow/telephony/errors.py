"""Errors of the phone-side adapters.

Tree::

    TelephonyError          base; ``code`` is the error code sent to the phone
    ├── LineStateRefused    a frame the line's state does not allow (INVALID_STATE)
    └── NumberInUse         another line is registered for the number (NUMBER_IN_USE)

Engine errors met while handling a phone's frame (e.g. answering a call that
stopped ringing) are sent to the phone with the engine error's own code.
"""

from __future__ import annotations

from ..coded_error import CodedError


class TelephonyError(CodedError):
    code = "INVALID_REQUEST"


class LineStateRefused(TelephonyError):
    code = "INVALID_STATE"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)


class NumberInUse(TelephonyError):
    code = "NUMBER_IN_USE"
