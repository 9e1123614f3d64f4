"""The call engine: sessions, calls, SM links and the rules that tie them.

Everything here runs on the event loop thread and never blocks. Handlers of
the three planes (SM-WS, voice WS, phone) call in; the engine answers with
protocol frames through the links. Timers use ``loop.call_later``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from ..protocol import phone as pp
from ..protocol import sm
from ..protocol import voice as vp
from .auth import Authenticator
from .call_states import CallEvent, CallState, TransitionRefused
from .calls import Call
from .clock import PHASES, MediaClock
from .conference import ConferenceTicker
from .config import Connector, GatewayConfig
from .control import CallControl
from .errors import GatewayError, NotFoundError
from .links import PhoneLink, VoiceLink
from .sessions import Session, SessionRegistry
from .sm_ws import SmLink

logger = logging.getLogger(__name__)

RESUME_DELAY_S = 0.2   # after setup.done, before the first RESUME notify
RESUME_RETRY_S = 2.0   # while a resumed call stays unclaimed

# session.closed reasons (the SDK's CloseReason values)
SDK_REQUEST, FORCE_CLOSE, CALL_TERMINATED = "SDK_REQUEST", "FORCE_CLOSE", "CALL_TERMINATED"

# what the caller is told, per way a call can end
_PHONE_END = {
    CallEvent.CLOSE: (pp.AGENT_HANGUP, "the agent ended the call"),
    CallEvent.DISCONNECT: (pp.AGENT_HANGUP, "the agent ended the call"),
    CallEvent.RING_TIMEOUT: (pp.NO_ANSWER, "nobody answered: no agent claimed the call in time"),
    CallEvent.REST_CLOSE: (pp.CONNECTOR_CLOSED, "the connector closed the session"),
    CallEvent.AGENT_LOST: (pp.AGENT_LOST, "the agent's connection was lost and did not return"),
    CallEvent.SHUTDOWN: (pp.SERVER_SHUTDOWN, "the gateway is shutting down"),
    CallEvent.CALLEE_HANGUP: (pp.OTHER_PARTY_HANGUP, "the other party hung up"),
}


class Engine:
    def __init__(self, config: GatewayConfig, auth: Authenticator) -> None:
        self.config = config
        self.auth = auth
        self.sessions = SessionRegistry()
        self.calls: dict[str, Call] = {}
        self.links: dict[str, set[SmLink]] = {c.uuid: set() for c in config.connectors}
        self.inbound_mode: dict[str, str] = {c.uuid: "ALL" for c in config.connectors}
        self._routes = {n: c for c in config.connectors for n in c.numbers}
        # calls with media, by clock phase: each phase ticks once per 20 ms, a quarter
        # of the calls at a time (see clock.py)
        self._media: list[set[Call]] = [set() for _ in range(PHASES)]
        self._phase_of: dict[Call, int] = {}
        self._next_phase = 0
        self._conferences: dict[int, ConferenceTicker] = {}
        self.control = CallControl(self)
        self.clock = MediaClock(self._tick)

    # ── media clock ─────────────────────────────────────────────────────────
    def _media_add(self, call: Call) -> None:
        if call in self._phase_of:
            return
        phase, self._next_phase = self._next_phase, (self._next_phase + 1) % PHASES
        self._phase_of[call] = phase
        self._media[phase].add(call)

    def _media_discard(self, call: Call) -> None:
        phase = self._phase_of.pop(call, None)
        if phase is not None:
            self._media[phase].discard(call)

    def _tick(self, now: float, phase: int) -> None:
        bridged: dict[int, list[Call]] = {}
        for call in tuple(self._media[phase]):
            if call.bridge is None:
                call.tick()
            else:
                bridged.setdefault(call.agent_rate, []).append(call)
        for rate, calls in bridged.items():
            ticker = self._conferences.get(rate)
            if ticker is None:
                ticker = self._conferences[rate] = ConferenceTicker(rate)
            ticker.tick(calls)

    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    # ── phone plane ─────────────────────────────────────────────────────────
    def place_call(self, phone: PhoneLink, dial: pp.Dial) -> Call | None:
        connector = self._routes.get(dial.to)
        if connector is None:
            phone.end(pp.NOT_IN_SERVICE, f"the number {dial.to} is not in service")
            return None
        mode = self.inbound_mode[connector.uuid]
        if mode == "NO":
            phone.end(pp.DECLINED, f"the number {dial.to} does not take calls")
            return None
        # the session joins the registry only when agents are offered the call
        session = Session(connector.uuid, "TELCO", dial.caller, dial.to)
        call = Call(session, phone, dial.caller, dial.to)
        session.call = call
        self.calls[call.id] = call
        phone.send_text(pp.build_ringing(call.id))
        # MISSED_ONLY: the subscriber's own line rings first; agents get what it misses
        if mode != "MISSED_ONLY" or not self.control.ring_subscriber_first(call):
            self.offer_to_agents(call)
        return call

    def offer_to_agents(self, call: Call) -> None:
        session = self.sessions.add(call.session)
        call.set_timer("ring", self.loop().call_later(
            self.config.ring_timeout_s, self.end_call, call, CallEvent.RING_TIMEOUT))
        self._notify(self.links[session.connector_uuid], session, "NEW_INCOMING_CALL")

    def answer_direct(self, call: Call) -> None:
        """The subscriber took a MISSED_ONLY call itself: caller and line talk, no agent."""
        call.transition(CallEvent.ANSWER)
        call.start_media(self.config.playout_target_ms, self.config.playout_prebuffer_ms)
        call.phone.send_text(pp.build_answered(call.id))
        self._media_add(call)

    def phone_hung_up(self, call: Call) -> None:
        if call.live and not self.control.caller_left(call):
            self.end_call(call, CallEvent.CALLER_HANGUP)

    # ── SM plane ──────────────────────────────────────────────────────────
    def link_up(self, link: SmLink) -> None:
        self.links[link.connector.uuid].add(link)
        for session in self.sessions.find(link.connector.uuid, "TELCO", state="OPEN"):
            call = session.call
            if call is None or not call.live or _alive(session.bound):
                continue
            if call.state is CallState.ANSWERED:
                call.set_timer(f"resume:{link.id}", self.loop().call_later(
                    RESUME_DELAY_S, self._resume_notify, link, session))
            else:
                self._notify((link,), session, "NEW_INCOMING_CALL")

    def _resume_notify(self, link: SmLink, session: Session) -> None:
        """Offer a live call back to a reconnected SDK until it claims it.

        The delay and the repeats are for the published SDK, which drops its
        call sessions right *after* setup.done on a reconnect: a RESUME that
        arrives in that window is swallowed by its idempotent open_session.
        """
        call = session.call
        if call is None or not call.live or not link.alive or _alive(session.bound):
            return
        self._notify((link,), session, "RESUME")
        call.set_timer(f"resume:{link.id}", self.loop().call_later(
            RESUME_RETRY_S, self._resume_notify, link, session))

    def link_down(self, link: SmLink) -> None:
        self.links[link.connector.uuid].discard(link)
        for session in self.sessions.find(link.connector.uuid, state="OPEN"):
            if session.bound is not link:
                continue
            session.bound, session.ready = None, False
            call = session.call
            if call is None or not call.live:
                continue
            if call.state is CallState.RINGING:
                # claimed but never answered: offer it to the connector's other links
                self._notify(self.links[link.connector.uuid], session, "NEW_INCOMING_CALL")
            else:
                call.set_timer("resume", self.loop().call_later(
                    self.config.resume_grace_s, self._resume_expired, call))

    def _resume_expired(self, call: Call) -> None:
        if call.live and call.session.bound is None and call.voice is None:
            self._agent_gone(call)

    def open_session(self, link: SmLink, session_id: str) -> Session:
        session = self.sessions.get(session_id, link.connector.uuid)
        if session is None:
            raise NotFoundError(f"session {session_id} does not exist", "SESSION_NOT_FOUND")
        if not session.is_open:
            raise GatewayError(f"session {session_id} is closed ({session.close_reason})",
                               "SESSION_CLOSED")
        bound = session.bound
        if bound is not None and bound is not link and _alive(bound):
            raise SessionBusy(bound.id)
        if bound is not link:
            session.bound, session.ready = link, False
        if session.call is not None:
            session.call.cancel_timer("resume")
        return session

    def session_ready(self, link: SmLink, session_id: str) -> None:
        session = self.sessions.get(session_id, link.connector.uuid)
        if session is None:
            raise NotFoundError(f"session {session_id} does not exist", "SESSION_NOT_FOUND")
        if session.bound is not link:
            raise GatewayError(f"session.ready for session {session_id}, which this connection "
                               "has not opened: send session.open first", "SESSION_NOT_OPEN")
        if session.ready:
            return
        session.ready = True
        call = session.call
        if call is not None and call.live and session.call_in_sent_to is not link:
            self._send_call_in(link, session, call)

    def _send_call_in(self, link: SmLink, session: Session, call: Call) -> None:
        if call.state is CallState.RINGING or call.playout is None:
            call.agent_rate, call.audio_mode = link.sample_rate, link.audio_mode
        session.call_in_sent_to = link
        token = self.auth.issue_voice_token(call.id, link.connector.uuid)
        url = f"{self.config.voice_base_url()}/v1/voice/{call.id}"
        link.send_text(sm.build_call_in(session.id, call.id, link.connector.org_uuid,
                                        call.caller, call.callee, url, token))

    def create_session(self, link: SmLink, channel: str, remote: str) -> tuple[str, bool]:
        connector = link.connector
        if channel != "TELCO":
            raise GatewayError(f"channel {channel} is not configured on this gateway",
                               "CHANNEL_NOT_CONFIGURED")
        for existing in self.sessions.find(connector.uuid, channel, remote, "OPEN"):
            if existing.initiator == "SDK":
                return existing.id, False
        if len(self.sessions.find(connector.uuid, state="OPEN")) >= connector.max_sessions:
            raise GatewayError(f"connector has {connector.max_sessions} open sessions, "
                               "its quota", "QUOTA_EXCEEDED")
        local = connector.numbers[0] if connector.numbers else ""
        session = self.sessions.add(Session(connector.uuid, channel, remote, local, "SDK"))
        return session.id, True

    def close_session(self, connector: Connector, session_id: str) -> Session:
        """REST close: ends the call for every party; idempotent on closed sessions."""
        session = self.sessions.get(session_id, connector.uuid)
        if session is None:
            raise NotFoundError(f"session {session_id} does not exist")
        if session.is_open:
            if session.call is not None and session.call.live:
                self.end_call(session.call, CallEvent.REST_CLOSE)
            else:
                self._close_session(session, SDK_REQUEST)
        return session

    # ── voice plane ───────────────────────────────────────────────────────
    def voice_attach(self, call: Call, link: VoiceLink) -> None:
        old = call.attach_voice(link)
        call.cancel_timer("agent_lost")
        if old is not None:
            old.close(4001, "superseded by a newer voice connection for this call")
        if call.state is CallState.ANSWERED:
            self._media_add(call)

    def voice_detach(self, call: Call, link: VoiceLink) -> None:
        if call.voice is not link:
            return
        call.voice = None
        if call.live:
            call.set_timer("agent_lost", self.loop().call_later(
                self.config.agent_reconnect_grace_s, self._agent_lost, call))

    def _agent_lost(self, call: Call) -> None:
        if call.live and call.voice is None:
            self._agent_gone(call)

    def _agent_gone(self, call: Call) -> None:
        """A lost agent leaves a bridged call to the humans; any other call ends."""
        if not self.control.agent_left(call):
            self.end_call(call, CallEvent.AGENT_LOST)

    def agent_close(self, call: Call) -> None:
        """call.close: the agent leaves; the call ends unless two humans remain on it."""
        if not self.control.agent_left(call):
            self.end_call(call, CallEvent.CLOSE)

    def close_agent_session(self, call: Call) -> None:
        self._close_session(call.session, SDK_REQUEST)

    def answer(self, call: Call) -> dict[str, object]:
        previous = call.transition(CallEvent.ANSWER)
        if previous is CallState.ANSWERED:
            return {"callId": call.id, "alreadyAnswered": True}
        call.cancel_timer("ring")
        call.start_media(self.config.playout_target_ms, self.config.playout_prebuffer_ms)
        call.phone.send_text(pp.build_answered(call.id))
        self._media_add(call)
        return {"callId": call.id}

    def end_call(self, call: Call, event: CallEvent) -> None:
        """End a call for every party, telling each one why, in the spec's order."""
        try:
            call.transition(event)
        except TransitionRefused:
            return
        call.end_reason = event.value
        call.cancel_timers()
        self._media_discard(call)
        self.control.call_ended(call, event)
        if event is not CallEvent.CALLER_HANGUP:
            reason, message = _PHONE_END.get(event, (pp.AGENT_HANGUP, "the call ended"))
            call.phone.end(reason, message)
        voice, call.voice = call.voice, None
        if voice is not None:
            if event not in (CallEvent.CLOSE, CallEvent.DISCONNECT):
                voice.send_text(vp.build_call_event(vp.CALL_TERMINATED))
            voice.close(1000, "call terminated")
        agent_asked = event in (CallEvent.CLOSE, CallEvent.DISCONNECT, CallEvent.REST_CLOSE)
        self._close_session(call.session, SDK_REQUEST if agent_asked else CALL_TERMINATED)
        self.calls.pop(call.id, None)

    def _close_session(self, session: Session, reason: str) -> None:
        if not session.is_open:
            return
        bound = session.bound
        self.sessions.mark_closed(session, reason)
        if _alive(bound):
            assert bound is not None
            bound.send_text(sm.build_session_closed(session.id, reason))

    # ── helpers ───────────────────────────────────────────────────────────
    def _notify(self, links: Iterable[SmLink], session: Session, activity: str) -> None:
        frame = sm.build_session_notify(session.id, session.channel, session.remote_address,
                                        session.local_address, activity, int(time.time()))
        for link in tuple(links):
            if link.ready_for_pushes:
                link.send_text(frame)

    def shutdown(self) -> None:
        self.clock.stop()
        for call in tuple(self.calls.values()):
            self.end_call(call, CallEvent.SHUTDOWN)


class SessionBusy(GatewayError):
    code = "SESSION_BUSY"

    def __init__(self, bound_id: str) -> None:
        super().__init__(f"session is bound to another connection ({bound_id})")
        self.bound_id = bound_id


def _alive(link: SmLink | None) -> bool:
    return link is not None and link.alive
