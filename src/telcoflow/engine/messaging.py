"""WA message sessions: inbound messages queued for their agent, outbound ones routed.

A WA session is a conversation between a connector's business number
(``local_address``) and one user (``remote_address``). It is open while
WhatsApp's customer-service window is: each message from the user opens the
window for ``message_window_s`` (24 h); the session closes when it runs out
(``session.closed``, cause ``WINDOW_EXPIRED``). A session the agent created
before the user wrote has no window: only template messages may be sent on it,
and it closes ``message_window_s`` after it was made.

Inbound messages wait in the session's inbox while no agent holds it READY
(nobody claimed it yet, or the agent's connection dropped and it has not
re-claimed it); the first one waiting offers the session to every live link
of the connector (``NEW_INCOMING_MESSAGE``), and a link that comes up is
offered every session with messages waiting. The inbox is bounded; past it
the network is told ``OVERFLOW``.

Outbound messages are answered asynchronously: the network calls ``done``
when it knows, and at most ``max_messages_in_flight`` per session wait.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ChannelNotConfigured, EngineError, NotFound, QuotaExceeded
from .ports import (
    Activity,
    MessageNetwork,
    MessageOutcome,
    OutboundMessage,
    SessionEnd,
    SessionLink,
)
from .sessions import Session

if TYPE_CHECKING:
    from .engine import Engine

logger = logging.getLogger(__name__)

WA = "WA"
WINDOW_EXPIRED = "WINDOW_EXPIRED"


@dataclass(slots=True)
class _Conversation:
    expires_at: float                    # monotonic: the session closes then
    window_open: bool = False            # the user wrote within the window
    inbox: deque[tuple[str, dict[str, Any]]] = field(default_factory=deque)
    in_flight: int = 0


@dataclass(slots=True)
class _Flow:
    inbound: bool = True    # call_flow.setup inboundMessage
    outbound: bool = True   # call_flow.setup outboundMessage


class Messaging:
    """The engine's WA plane; one per engine (``engine.messaging``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._settings = engine.settings
        self.networks: list[MessageNetwork] = []
        self._fallbacks: list[MessageNetwork] = []          # tried after the others
        self._talks: dict[str, _Conversation] = {}          # session id → its state
        self._expiry: list[tuple[float, str]] = []          # (expires_at, session id) heap
        self._flow: dict[str, _Flow] = {}

    # ── configuration ────────────────────────────────────────────────────────
    def add_network(self, network: MessageNetwork, *, fallback: bool = False) -> None:
        """A network to route through; a ``fallback`` one (the simulated network) only when
        no other carries the conversation."""
        (self._fallbacks if fallback else self.networks).append(network)

    def set_flow(self, connector_uuid: str, inbound: bool, outbound: bool) -> None:
        self._flow[connector_uuid] = _Flow(inbound, outbound)

    def network_for(self, local: str, remote: str) -> MessageNetwork | None:
        return next((n for n in (*self.networks, *self._fallbacks) if n.serves(local, remote)),
                    None)

    # ── sessions ─────────────────────────────────────────────────────────────
    def create_session(self, link: SessionLink, remote: str) -> tuple[str, bool]:
        """An agent starts a conversation with ``remote`` (templates only until they write)."""
        engine = self._engine
        connector = engine.connectors[link.connector_uuid]
        if not self._flow_of(connector.uuid).outbound:
            raise EngineError("outbound messages are switched off for this connector "
                              "(call_flow.setup outboundMessage: false)", "FORBIDDEN")
        local = next((n for n in connector.numbers if self.network_for(n, remote)), None)
        if local is None:
            raise ChannelNotConfigured(f"no WA network carries messages from this connector's "
                                       f"numbers to {remote}")
        existing = self._open_session(connector.uuid, remote)
        if existing is not None:
            return existing.id, False
        session = self._new_session(connector.uuid, local, remote, "SDK")
        return session.id, True

    def session_ready(self, session: Session, link: SessionLink) -> None:
        """The agent holds the session: what waited in its inbox is delivered, in order."""
        talk = self._talks.get(session.id)
        while talk is not None and talk.inbox and session.ready and session.bound == link.id:
            sender, content = talk.inbox.popleft()
            link.deliver_message(session.id, sender, content)

    def link_up(self, link: SessionLink) -> None:
        """A new connection is offered every unheld session with messages waiting."""
        for session in self._engine.sessions.open_of(link.connector_uuid):
            talk = self._talks.get(session.id)
            if talk is not None and talk.inbox and session.bound is None:
                link.notify(session, Activity.NEW_INCOMING_MESSAGE)

    def session_closed(self, session: Session) -> None:
        self._talks.pop(session.id, None)  # its heap entry is skipped when it comes up

    # ── inbound ──────────────────────────────────────────────────────────────
    def message_in(self, local: str, sender: str, content: dict[str, Any]) -> MessageOutcome:
        """A user's message for business number ``local`` (from any network)."""
        engine = self._engine
        connector = engine.connector_for(local)
        if connector is None:
            return _refused("NOT_IN_SERVICE", f"the number {local} is not in service")
        if not self._flow_of(connector.uuid).inbound:
            return _refused("DECLINED", f"the number {local} does not take messages")
        session = self._open_session(connector.uuid, sender)
        if session is None:
            try:  # _new_session holds the quota check
                session = self._new_session(connector.uuid, local, sender, "CONNECTOR")
            except QuotaExceeded:
                return _refused("QUOTA_EXCEEDED", "the connector has no room for another "
                                "conversation now")
        talk = self._talks[session.id]
        if len(talk.inbox) >= self._settings.max_queued_messages:
            return _refused("OVERFLOW", f"{len(talk.inbox)} messages already wait for an "
                            "agent in this conversation")
        talk.window_open = True
        self._expire_at(session, engine.clock.now() + self._settings.message_window_s)
        self._deliver(session, talk, sender, content)
        return MessageOutcome(True, {"sessionId": session.id})

    def status_in(self, local: str, recipient: str, content: dict[str, Any]) -> None:
        """A delivery status of a message an agent sent to ``recipient``: delivered on the
        open session of that conversation, if there is one (statuses open none)."""
        connector = self._engine.connector_for(local)
        session = self._open_session(connector.uuid, recipient) if connector else None
        if session is None:
            logger.debug("status for %s on %s without an open session dropped", recipient, local)
            return
        talk = self._talks[session.id]
        if len(talk.inbox) < self._settings.max_queued_messages:
            self._deliver(session, talk, recipient, content)

    def _deliver(self, session: Session, talk: _Conversation, sender: str,
                 content: dict[str, Any]) -> None:
        link = self._engine.bound_link(session)
        if link is not None and session.ready and not talk.inbox:
            link.deliver_message(session.id, sender, content)
            return
        talk.inbox.append((sender, content))
        if len(talk.inbox) == 1 and session.bound is None:
            self._engine.notify_links(session, Activity.NEW_INCOMING_MESSAGE)

    # ── outbound ─────────────────────────────────────────────────────────────
    def send(self, link: SessionLink, session_id: str, client_msg_id: str, api_version: str,
             data: dict[str, Any], template: bool,
             done: Callable[[MessageOutcome], None]) -> None:
        """``wa.msg.out``: refusals the engine can see now raise :class:`EngineError`;
        the network's answer comes through ``done``."""
        session = self._engine.sessions.get(session_id, link.connector_uuid)
        if session is None:
            raise NotFound(f"session {session_id} does not exist")
        if session.channel != WA:
            raise EngineError(f"session {session_id} is a {session.channel} session; "
                              "messages go on WA sessions", "INVALID_CHANNEL")
        talk = self._talks.get(session.id)
        if not session.is_open or talk is None:
            raise EngineError(f"session {session_id} is closed ({session.close_reason})",
                              "SESSION_NOT_OPEN")
        if session.bound != link.id:
            raise EngineError(f"session {session_id} is not opened by this connection: "
                              "session.open it first", "SESSION_NOT_OPEN")
        if not self._flow_of(session.connector_uuid).outbound:
            raise EngineError("outbound messages are switched off for this connector "
                              "(call_flow.setup outboundMessage: false)", "INVALID_CHANNEL")
        if not talk.window_open and not template:
            raise EngineError(f"{session.remote_address} has not written within the last "
                              f"{self._settings.message_window_s / 3600:g} h: outside the "
                              "customer-service window only template messages may be sent",
                              "SESSION_NOT_OPEN")
        if talk.in_flight >= self._settings.max_messages_in_flight:
            raise EngineError(f"{talk.in_flight} messages of this session are still being "
                              "sent: wait for their answers", "OVERFLOW")
        network = self.network_for(session.local_address, session.remote_address)
        if network is None:
            raise EngineError(f"no WA network reaches {session.remote_address} now",
                              "INVALID_CHANNEL")
        talk.in_flight += 1

        def answered(outcome: MessageOutcome) -> None:
            talk.in_flight -= 1
            done(outcome)

        network.send_message(OutboundMessage(session.id, client_msg_id, session.local_address,
                                             session.remote_address, api_version, data),
                             answered)

    # ── timers (Timed) ───────────────────────────────────────────────────────
    def next_deadline(self) -> float | None:
        return self._expiry[0][0] if self._expiry else None

    def handle_timer(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            _, session_id = heapq.heappop(self._expiry)
            talk = self._talks.get(session_id)
            if talk is None:
                continue  # closed already
            if talk.expires_at > now:  # the user wrote since: the window runs on
                heapq.heappush(self._expiry, (talk.expires_at, session_id))
                continue
            session = self._engine.sessions.by_id(session_id)
            if session is not None and session.is_open:
                self._engine.end_session(session, SessionEnd.FORCE_CLOSE, WINDOW_EXPIRED)

    # ── helpers ──────────────────────────────────────────────────────────────
    def _flow_of(self, connector_uuid: str) -> _Flow:
        return self._flow.get(connector_uuid) or _Flow()

    def _open_session(self, connector_uuid: str, remote: str) -> Session | None:
        found = self._engine.sessions.find(connector_uuid, WA, remote, "OPEN")
        return found[0] if found else None

    def _new_session(self, connector_uuid: str, local: str, remote: str,
                     initiator: str) -> Session:
        engine = self._engine
        connector = engine.connectors[connector_uuid]
        if engine.sessions.count_open(connector_uuid) >= connector.max_sessions:
            raise QuotaExceeded(f"connector has {connector.max_sessions} open sessions, "
                                "its quota")
        session = engine.sessions.add(Session(connector_uuid, WA, remote, local,
                                              int(engine.clock.wall()), initiator))
        self._talks[session.id] = _Conversation(0.0)
        self._expire_at(session, engine.clock.now() + self._settings.message_window_s)
        return session

    def _expire_at(self, session: Session, when: float) -> None:
        """Move the session's end to ``when`` (only ever later): its one heap entry fires
        at the old time and is pushed again then, so the heap holds one per session."""
        talk = self._talks[session.id]
        first = talk.expires_at == 0.0
        talk.expires_at = when
        if first:
            earlier = not self._expiry or when < self._expiry[0][0]
            heapq.heappush(self._expiry, (when, session.id))
            if earlier:
                self._engine.deadline_changed()


def _refused(code: str, message: str) -> MessageOutcome:
    return MessageOutcome(False, code=code, message=message)
