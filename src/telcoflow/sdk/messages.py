"""Plain data types of the messaging (WA) and session-listing APIs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .enums import MessageErrorCode


@dataclass
class IncomingMessage:
    """A WA message received on a session."""

    sender: str
    content: dict[str, Any]


@dataclass
class SendMessageResult:
    """Outcome of ``Session.send_message``; unknown error codes stay plain strings."""

    success: bool
    response_content: Any | None = None
    error_code: MessageErrorCode | str | None = None
    error_content: Any | None = None


@dataclass
class BaseSendMessage:
    """Base type of the messages ``Session.send_message`` accepts."""


@dataclass
class SendWAMessage(BaseSendMessage):
    """An outbound WA message: connector API version plus the raw message data."""

    api_version: str
    data: dict[str, Any]


@dataclass
class CloseResult:
    """Answer of ``POST /public/v1/sessions/{id}/close``."""

    closed_at: int
    reason: str


@dataclass
class SessionInfo:
    """One row of ``list_sessions()``."""

    id: str
    channel: str
    initiator: str
    state: str
    remote_address: str
    local_address: str
    opened_at: int | None
    closed_at: int | None
    busy: bool = False
    bound_sm_ws_id: str | None = None
    not_found: bool = False
    session_closed: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionInfo:
        """Build from the server's camelCase JSON item."""
        return cls(id=str(data.get("id", "")), channel=str(data.get("channel", "")),
                   initiator=str(data.get("initiator", "")), state=str(data.get("state", "")),
                   remote_address=str(data.get("remoteAddress", "")),
                   local_address=str(data.get("localAddress", "")),
                   opened_at=_opt_int(data.get("openedAt")),
                   closed_at=_opt_int(data.get("closedAt")))


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def message_error_code(code: str | None) -> MessageErrorCode | str | None:
    if code is None:
        return None
    try:
        return MessageErrorCode(code)
    except ValueError:
        return code
