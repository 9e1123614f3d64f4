"""Enumerations and string constants of the public API (values are wire values)."""

from __future__ import annotations

from enum import StrEnum


class AudioMode(StrEnum):
    """How the parties of a call reach the agent: one mix, or one channel each."""

    MIXED = "mixed"
    ISOLATED = "isolated"


class ChannelType(StrEnum):
    TELCO = "TELCO"
    WA = "WA"


class SessionActivityType(StrEnum):
    """Why a ``session.notify`` was sent. Unknown wire values are passed through as str."""

    NEW_INCOMING_CALL = "NEW_INCOMING_CALL"
    NEW_INCOMING_MESSAGE = "NEW_INCOMING_MESSAGE"
    RESUME = "RESUME"


class InboundCallMode(StrEnum):
    ALL = "ALL"
    MISSED_ONLY = "MISSED_ONLY"
    NO = "NO"


class CallState(StrEnum):
    NEW = "NEW"
    OPENING = "OPENING"
    LIVE = "LIVE"
    TERMINATED = "TERMINATED"


class MessageErrorCode(StrEnum):
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_NOT_OPEN = "SESSION_NOT_OPEN"
    INVALID_CHANNEL = "INVALID_CHANNEL"
    OVERFLOW = "OVERFLOW"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    REMOTE_ERROR = "REMOTE_ERROR"


class CloseReason(StrEnum):
    SDK_REQUEST = "SDK_REQUEST"
    FORCE_CLOSE = "FORCE_CLOSE"
    CALL_TERMINATED = "CALL_TERMINATED"


class CallEvent(StrEnum):
    CALL_TERMINATED = "call.terminated"
    CALL_ERROR = "call.error"
    DTMF = "call.dtmf"  # ours: a party pressed a key (the published SDK has no such event)
    QUALITY = "call.quality"  # ours: a quality alert raised or cleared on a leg (ditto)


class CallErrorCode(StrEnum):
    TTS_SESSION_ERROR = "TTS_SESSION_ERROR"
    # ours: what our gateway reports (docs/call-control.md); the data's error_code is a
    # plain string in both SDKs, so code written for either compares it with these
    CALLER_AUDIO_INVALID = "CALLER_AUDIO_INVALID"
    AGENT_AUDIO_DROPPED = "AGENT_AUDIO_DROPPED"
    MEDIA_FAILURE = "MEDIA_FAILURE"


CALL_TERMINATED: str = CallEvent.CALL_TERMINATED.value
CALL_ERROR: str = CallEvent.CALL_ERROR.value


def channel_of(value: str) -> ChannelType | str:
    """The enum member for a known wire value, else the raw string (forward compatible)."""
    try:
        return ChannelType(value)
    except ValueError:
        return value


def activity_of(value: str) -> SessionActivityType | str:
    try:
        return SessionActivityType(value)
    except ValueError:
        return value
