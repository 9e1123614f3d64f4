"""``telcoflow.messages``: where the published SDK keeps its message types (its top level
does not export ``SendWAMessage``), so code written for it imports them unchanged."""

from __future__ import annotations

from dataclasses import dataclass

from .sdk.messages import (
    BaseSendMessage,
    CloseResult,
    IncomingMessage,
    SendMessageResult,
    SendWAMessage,
    SessionInfo,
)

__all__ = ["BaseSendMessage", "CloseResult", "IncomingMessage", "SendMessageResult",
           "SendWAMessage", "SessionInfo", "StartSessionResult"]


@dataclass
class StartSessionResult:
    """The published SDK's answer type of ``POST /public/v1/sessions`` (kept for its
    importers; our SDK creates sessions over the session-manager plane)."""

    session_id: str
    opened_at: int
    created: bool = True
    quota_exceeded: bool = False
