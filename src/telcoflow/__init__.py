"""Telcoflow: voice-AI telephony gateway and agent SDK.

The top-level namespace is the agent SDK's public API, name for name the
published ``telcoflow`` 1.0.0 SDK's ``__all__`` (the gateway lives in
:mod:`telcoflow.server`).
"""

from .sdk import *  # noqa: F403 - the public API is exactly sdk.__all__
from .sdk import __all__ as __all__
from .sdk.call import DtmfDigit, PlayoutPosition  # ours: what on_dtmf / on_playout_position get

# Importable extras, kept out of __all__ like the published SDK (where submodules hold them).
from .sdk.errors import (
    WSSMessageError,
    WSSQuotaExceeded,
    WSSSessionBusy,
    WSSSessionClosed,
    WSSSessionNotFound,
)
from .sdk.messages import BaseSendMessage, SendWAMessage

_EXTRA = (BaseSendMessage, SendWAMessage, WSSMessageError, WSSQuotaExceeded, WSSSessionBusy,
          WSSSessionClosed, WSSSessionNotFound, DtmfDigit, PlayoutPosition)
