"""The SDK's one exception tree.

Every error the SDK raises on purpose derives from :class:`WSSError`; the
names and the shape of the tree are those of the published ``telcoflow`` 1.0.0
SDK so ``except`` clauses written for it keep working::

    WSSError
    ├── WSSConnectionError            SM-WS / voice link could not be used
    │   └── WSSAuthRejected*          401/403 or TLS failure (also a WSSAuthenticationError)
    ├── WSSAuthenticationError        credentials refused (API key, token, mTLS); UNAUTHORIZED
    ├── WSSCallError                  a call-level operation failed
    │   ├── WSSCallClosedError        operation on a terminated call
    │   ├── WSSCallCommandError       server answered success=false (error_code, error_message)
    │   └── WSSCallCommandTimeoutError  no command_response in time
    ├── WSSCallStateError             to_json() outside CallState.NEW
    ├── WSSMessageError               outbound WA message rejected
    ├── WSSSessionError               voice session unusable
    │   ├── WSSSessionBusy            SESSION_BUSY (bound to another SM-WS)
    │   └── WSSSessionAlreadyExists   session.create answered created=false
    ├── WrongChannelError             WA-only operation on a TELCO session (or vice versa)
    ├── WSSChannelNotConfigured       CHANNEL_NOT_CONFIGURED
    ├── WSSSessionClosed              SESSION_CLOSED
    ├── WSSSessionNotFound            SESSION_NOT_FOUND
    ├── WSSSessionNotOpen             SESSION_NOT_OPEN
    ├── WSSQuotaExceeded              QUOTA_EXCEEDED
    ├── WSSOutboundOverflow           OUTBOUND_OVERFLOW
    ├── WSSForbidden                  FORBIDDEN
    ├── WSSInvalidRequest             INVALID_REQUEST
    ├── BufferFullError               outgoing audio ring buffer full
    └── BufferClosedError             write to the ring buffer after the call ended

(*) ``WSSAuthRejected`` is ours: a rejected handshake is both an
authentication and a connection problem, so it inherits from both and is
caught by ``except WSSConnectionError`` exactly as the published SDK's error
was, and also by ``except WSSAuthenticationError``.

Wire error codes live on the classes (``code``); :func:`error_for_code` and
:func:`raise_for_response` translate server answers at the boundary.
Operational command failures are *returned* as ``CommandResult``, not raised.
"""

from __future__ import annotations

from typing import Any


class WSSError(Exception):
    """Base exception for all SDK errors."""

    code: str | None = None


class WSSConnectionError(WSSError):
    """A connection (session manager, REST or voice) could not be used."""


class WSSAuthenticationError(WSSError):
    """Credentials were refused (API key, voice token or mTLS certificate)."""

    code = "UNAUTHORIZED"


class WSSAuthRejected(WSSAuthenticationError, WSSConnectionError):
    """The server refused the handshake (HTTP 401/403) or TLS failed."""


class WSSCallError(WSSError):
    """A call-related operation failed."""


class WSSCallClosedError(WSSCallError):
    """Operation attempted on a call that is already terminated."""

    def __init__(self) -> None:
        super().__init__("Call is already closed")


class WSSCallCommandError(WSSCallError):
    """The server answered a voice command with ``success: false``."""

    def __init__(self, message: str, error_code: str | None = None,
                 error_message: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.error_message = error_message or message


class WSSCallCommandTimeoutError(WSSCallError):
    """No command_response arrived before the deadline."""


class WSSCallStateError(WSSError):
    """Operation not allowed in the call's current state."""


class WSSMessageError(WSSError):
    """An outbound WA message was rejected."""

    def __init__(self, message: str, *, error_code: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class WSSSessionError(WSSError):
    """A session (voice or SM) could not be used."""


class WSSSessionBusy(WSSSessionError):
    """SESSION_BUSY: the session is bound to another live SM-WS connection."""

    code = "SESSION_BUSY"

    def __init__(self, bound_sm_ws_id: str) -> None:
        super().__init__(f"[SESSION_BUSY] Session is bound to {bound_sm_ws_id}")
        self.bound_sm_ws_id = bound_sm_ws_id


class WSSSessionAlreadyExists(WSSSessionError):
    """session.create found an open session for that remote address."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"[SESSION_ALREADY_EXISTS] Session {session_id!r} is already open")
        self.session_id = session_id


class WrongChannelError(WSSError):
    """A channel-specific operation was used on the wrong channel."""


class WSSChannelNotConfigured(WSSError):
    code = "CHANNEL_NOT_CONFIGURED"


class WSSSessionClosed(WSSError):
    code = "SESSION_CLOSED"


class WSSSessionNotFound(WSSError):
    code = "SESSION_NOT_FOUND"


class WSSSessionNotOpen(WSSError):
    code = "SESSION_NOT_OPEN"


class WSSQuotaExceeded(WSSError):
    code = "QUOTA_EXCEEDED"


class WSSOutboundOverflow(WSSError):
    code = "OUTBOUND_OVERFLOW"


class WSSForbidden(WSSError):
    code = "FORBIDDEN"


class WSSInvalidRequest(WSSError):
    code = "INVALID_REQUEST"


class BufferFullError(WSSError):
    """The outgoing audio buffer cannot take the whole write."""


class BufferClosedError(WSSError):
    """Write attempted on the outgoing audio buffer after the call ended."""


_BY_CODE: dict[str, type[WSSError]] = {
    cls.code: cls
    for cls in (WSSChannelNotConfigured, WSSSessionClosed, WSSSessionNotFound,
                WSSSessionNotOpen, WSSQuotaExceeded, WSSOutboundOverflow,
                WSSAuthenticationError, WSSForbidden, WSSInvalidRequest)
    if cls.code is not None
}


def error_for_code(code: str, message: str,
                   default: type[WSSError] = WSSError) -> WSSError:
    """The exception for a server error code, its text prefixed with the code."""
    return _BY_CODE.get(code, default)(f"[{code}] {message}")


def raise_for_response(ok: bool, code: str | None, content: Any) -> None:
    """Raise the error a not-ok SM ``response`` frame stands for; no-op when ok."""
    if ok:
        return
    code = code or "UNKNOWN"
    detail = content if isinstance(content, dict) else {}
    if code == "SESSION_BUSY":
        raise WSSSessionBusy(str(detail.get("boundSmWsId", "unknown")))
    message = detail.get("message")
    text = message if isinstance(message, str) and message else "Server returned error"
    raise error_for_code(code, text, default=WSSConnectionError)
