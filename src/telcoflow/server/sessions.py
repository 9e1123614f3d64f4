"""Sessions and their in-memory registry (one gateway node).

A session is what the SM plane talks about: an inbound call (TELCO) or an
SDK-created conversation. It is bound to at most one live SM-WS at a time.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .calls import Call
    from .sm_ws import SmLink


@dataclass(eq=False, slots=True)
class Session:
    connector_uuid: str
    channel: str
    remote_address: str
    local_address: str
    initiator: str = "CONNECTOR"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    opened_at: int = field(default_factory=lambda: int(time.time()))
    closed_at: int | None = None
    close_reason: str | None = None
    bound: SmLink | None = None
    ready: bool = False
    call: Call | None = None
    call_in_sent_to: SmLink | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def state(self) -> str:
        return "OPEN" if self.is_open else "CLOSED"

    def public(self) -> dict[str, Any]:
        """The session as the REST API and ``session.open`` show it."""
        return {"id": self.id, "channel": self.channel, "initiator": self.initiator,
                "state": self.state, "remoteAddress": self.remote_address,
                "localAddress": self.local_address, "openedAt": self.opened_at,
                "closedAt": self.closed_at}


class SessionRegistry:
    # closed sessions stay listable for a while, then are forgotten
    KEEP_CLOSED = 10_000

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._closed_order: deque[str] = deque()

    def add(self, session: Session) -> Session:
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str, connector_uuid: str) -> Session | None:
        """Only the owner sees a session: another connector's id is 'not found'."""
        session = self._by_id.get(session_id)
        return session if session and session.connector_uuid == connector_uuid else None

    def mark_closed(self, session: Session, reason: str) -> None:
        session.closed_at = int(time.time())
        session.close_reason = reason
        session.bound = None
        self._closed_order.append(session.id)
        while len(self._closed_order) > self.KEEP_CLOSED:
            self._by_id.pop(self._closed_order.popleft(), None)

    def of_connector(self, connector_uuid: str) -> list[Session]:
        return [s for s in self._by_id.values() if s.connector_uuid == connector_uuid]

    def find(self, connector_uuid: str, channel: str | None = None,
             remote_address: str | None = None, state: str | None = None) -> list[Session]:
        return [s for s in self.of_connector(connector_uuid)
                if (channel is None or s.channel == channel)
                and (remote_address is None or s.remote_address == remote_address)
                and (state is None or s.state == state)]
