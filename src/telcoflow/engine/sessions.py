"""Sessions as plain records, and the in-memory store that indexes them.

A session is what the session-manager plane talks about: an inbound call
(TELCO) or an SDK-created conversation. It refers to its call and to the
connection that claimed it by id only, so a record can be stored anywhere.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .registry import MemoryRegistry, Registry
from .session_states import BINDING, Binding, BindingEvent


@dataclass(eq=False, slots=True)
class Session:
    connector_uuid: str
    channel: str
    remote_address: str
    local_address: str
    opened_at: int
    initiator: str = "CONNECTOR"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    binding: Binding = Binding.UNBOUND
    bound: str | None = None            # id of the SM connection that claimed it
    call_id: str | None = None
    call_in_sent_to: str | None = None  # the SM connection that got call.in
    closed_at: int | None = None
    close_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.binding is not Binding.CLOSED

    @property
    def ready(self) -> bool:
        return self.binding is Binding.READY

    @property
    def state(self) -> str:
        return "OPEN" if self.is_open else "CLOSED"

    def step(self, event: BindingEvent) -> None:
        self.binding = BINDING.step(self.binding, event)
        if self.binding is not Binding.OPENED and self.binding is not Binding.READY:
            self.bound = None

    def public(self) -> dict[str, Any]:
        """The session as the REST API and ``session.open`` show it."""
        return {"id": self.id, "channel": self.channel, "initiator": self.initiator,
                "state": self.state, "remoteAddress": self.remote_address,
                "localAddress": self.local_address, "openedAt": self.opened_at,
                "closedAt": self.closed_at}


class SessionStore:
    """Sessions by id, by connector, and the open ones by connector.

    Lookups of open sessions (every SM connect and drop, every quota check)
    touch only that connector's open sessions; closed ones stay listable
    until ``KEEP_CLOSED`` later closings push them out. The :class:`~.registry.Registry`
    is told of each session added and closed (other nodes list and route them).
    """

    KEEP_CLOSED = 10_000

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry: Registry = registry or MemoryRegistry()
        self._by_id: dict[str, Session] = {}
        self._by_connector: dict[str, dict[str, Session]] = {}
        self._open: dict[str, dict[str, Session]] = {}
        self._closed_order: deque[str] = deque()

    def add(self, session: Session) -> Session:
        self._by_id[session.id] = session
        self._by_connector.setdefault(session.connector_uuid, {})[session.id] = session
        self._open.setdefault(session.connector_uuid, {})[session.id] = session
        self.registry.session_added(session)
        return session

    def get(self, session_id: str, connector_uuid: str) -> Session | None:
        """Only the owner sees a session: another connector's id is 'not found'."""
        session = self._by_id.get(session_id)
        return session if session and session.connector_uuid == connector_uuid else None

    def by_id(self, session_id: str) -> Session | None:
        """Any connector's session (for the engine's own timers, never for a request)."""
        return self._by_id.get(session_id)

    def close(self, session: Session, reason: str, now_wall: int) -> None:
        session.step(BindingEvent.CLOSE)
        session.closed_at, session.close_reason = now_wall, reason
        self._open.get(session.connector_uuid, {}).pop(session.id, None)
        self._closed_order.append(session.id)
        self.registry.session_closed(session)
        while len(self._closed_order) > self.KEEP_CLOSED:
            old = self._by_id.pop(self._closed_order.popleft(), None)
            if old is not None:
                self._by_connector[old.connector_uuid].pop(old.id, None)

    def open_of(self, connector_uuid: str) -> list[Session]:
        return list(self._open.get(connector_uuid, {}).values())

    def count_open(self, connector_uuid: str) -> int:
        return len(self._open.get(connector_uuid, ()))

    def find(self, connector_uuid: str, channel: str | None = None,
             remote_address: str | None = None, state: str | None = None) -> list[Session]:
        pool = self._open if state == "OPEN" else self._by_connector
        return [s for s in pool.get(connector_uuid, {}).values()
                if (channel is None or s.channel == channel)
                and (remote_address is None or s.remote_address == remote_address)
                and (state is None or s.state == state)]
