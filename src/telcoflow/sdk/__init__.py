"""The Telcoflow agent SDK (re-exported by :mod:`telcoflow`)."""

from .call import Call, CommandResult, DtmfDigit, PlayoutPosition
from .call_flow import CallFlowBuilder, CallFlowConfig
from .config import CallAudioConfig, SampleRate, SessionManagerConfig
from .enums import (
    CALL_ERROR,
    CALL_TERMINATED,
    AudioMode,
    CallErrorCode,
    CallEvent,
    CallState,
    ChannelType,
    CloseReason,
    InboundCallMode,
    MessageErrorCode,
    SessionActivityType,
)
from .errors import (
    BufferClosedError,
    BufferFullError,
    WrongChannelError,
    WSSAuthenticationError,
    WSSCallClosedError,
    WSSCallCommandError,
    WSSCallCommandTimeoutError,
    WSSCallError,
    WSSCallStateError,
    WSSChannelNotConfigured,
    WSSConnectionError,
    WSSError,
    WSSForbidden,
    WSSInvalidRequest,
    WSSMessageError,
    WSSOutboundOverflow,
    WSSQuotaExceeded,
    WSSSessionAlreadyExists,
    WSSSessionBusy,
    WSSSessionClosed,
    WSSSessionError,
    WSSSessionNotFound,
    WSSSessionNotOpen,
)
from .manager import SessionManager, SessionNotification
from .messages import (
    BaseSendMessage,
    IncomingMessage,
    SendMessageResult,
    SendWAMessage,
    SessionInfo,
)
from .session import Session
from .version import __version__
from .voice import VoiceSession, _VoiceConnection

__all__ = [
    "SessionManager", "SessionManagerConfig", "Session", "Call", "CommandResult",
    "VoiceSession", "_VoiceConnection", "SampleRate", "CallAudioConfig", "CallFlowConfig",
    "CallFlowBuilder", "AudioMode", "ChannelType", "SessionActivityType", "InboundCallMode",
    "CallState", "CloseReason", "MessageErrorCode", "CallEvent", "CallErrorCode",
    "CALL_TERMINATED", "CALL_ERROR", "IncomingMessage", "SendMessageResult", "SessionInfo",
    "WSSError", "WSSConnectionError", "WSSAuthenticationError", "WSSCallError",
    "WSSCallStateError", "WSSCallClosedError", "WSSCallCommandError",
    "WSSCallCommandTimeoutError", "WSSSessionError", "WSSSessionAlreadyExists",
    "WrongChannelError", "WSSChannelNotConfigured", "WSSOutboundOverflow", "WSSSessionNotOpen",
    "WSSForbidden", "WSSInvalidRequest", "BufferFullError", "BufferClosedError",
    "SessionNotification", "__version__",
]

# Importable but not in __all__ (as in the published SDK, where they live in submodules).
_EXTRA = (BaseSendMessage, SendWAMessage, WSSMessageError, WSSSessionBusy, WSSSessionClosed,
          WSSSessionNotFound, WSSQuotaExceeded, DtmfDigit, PlayoutPosition)
