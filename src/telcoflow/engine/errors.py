"""Errors of the call engine.

Tree::

    EngineError               base; ``code`` is the wire error code adapters send
    ├── NotFound              no such session or call for this connector (SESSION_NOT_FOUND)
    ├── SessionBusy           bound to another live connection (SESSION_BUSY; ``bound_id``)
    ├── SessionClosed         the session has ended (SESSION_CLOSED)
    ├── SessionNotOpen        session.ready before session.open (SESSION_NOT_OPEN)
    ├── QuotaExceeded         the connector's open-session quota is used (QUOTA_EXCEEDED)
    ├── ChannelNotConfigured  a channel this gateway does not carry (CHANNEL_NOT_CONFIGURED)
    ├── CommandError          an agent command or agent audio that cannot run now
    │                         (code per instance: INVALID_STATE, CALL_UNANSWERED, ...)
    └── TransitionRefused     a state table refused an event (code from the table)

Adapters translate these to their wire: a ``response`` with ``ok:false`` on
the session-manager plane, a ``command_response`` on the voice plane, an
HTTP status on REST (``status`` is the one to use).
"""

from __future__ import annotations

from ..coded_error import CodedError


class EngineError(CodedError):
    """The base of the engine's errors."""


class NotFound(EngineError):
    code = "SESSION_NOT_FOUND"
    status = 404


class SessionBusy(EngineError):
    code = "SESSION_BUSY"
    status = 409

    def __init__(self, bound_id: str) -> None:
        super().__init__(f"session is bound to another connection ({bound_id})")
        self.bound_id = bound_id


class SessionClosed(EngineError):
    code = "SESSION_CLOSED"
    status = 409


class SessionNotOpen(EngineError):
    code = "SESSION_NOT_OPEN"
    status = 409


class QuotaExceeded(EngineError):
    code = "QUOTA_EXCEEDED"
    status = 429


class ChannelNotConfigured(EngineError):
    code = "CHANNEL_NOT_CONFIGURED"
    status = 400


class CommandError(EngineError):
    code = "INVALID_STATE"
    status = 409


class TransitionRefused(EngineError):
    status = 409

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)
