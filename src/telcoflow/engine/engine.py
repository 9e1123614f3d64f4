"""The call engine: calls, sessions and the rules that tie phone legs to agents.

No I/O and no event loop: adapters call in with what they received and the
engine answers through the ports (:mod:`.ports`). It is given the time: the
I/O layer asks :meth:`Engine.next_deadline`, sleeps until then and calls
:meth:`Engine.handle_timer` (which also runs the media tick); the engine
calls the waker it was given when a new deadline comes earlier than the
last one it reported.

An observer (:class:`~.ports.CallObserver`, metrics or traces) is told of each
call's arrival, answer and end and of every media tick; the media a call moved is
read from :meth:`Engine.live_reports` when wanted, never counted per frame for it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from ..audio.mixer import CALLEE, CALLER
from .call_states import CallEvent, CallState
from .calls import Call
from .commands import AgentCommands
from .control import FAILURE_CODE, CallControl, Then
from .control_states import Mode
from .errors import (
    ChannelNotConfigured,
    CommandError,
    EngineError,
    NotFound,
    QuotaExceeded,
    SessionBusy,
    SessionClosed,
    SessionNotOpen,
    TransitionRefused,
)
from .hold import HoldSound
from .media import MediaPlane
from .messaging import WA, Messaging
from .ports import (
    Activity,
    AgentCommand,
    AgentEvent,
    AgentLink,
    CallObserver,
    CallOffer,
    CallReport,
    Channel,
    Clock,
    DialError,
    DialFailure,
    Dialler,
    EndReason,
    Leg,
    LinkClose,
    MediaError,
    NoObserver,
    Recorder,
    SessionEnd,
    SessionLink,
    Timed,
    receive_stats,
)
from .quality_watch import CallWatch
from .session_states import BindingEvent
from .sessions import Session, SessionStore
from .settings import ConnectorSpec, EngineSettings
from .timers import Due, TimerQueue

logger = logging.getLogger(__name__)

# what the caller is told, per way a call can end
_CALLER_END = {
    CallEvent.CLOSE: (EndReason.AGENT_HANGUP, "the agent ended the call"),
    CallEvent.DISCONNECT: (EndReason.AGENT_HANGUP, "the agent ended the call"),
    CallEvent.RING_TIMEOUT: (EndReason.NO_ANSWER,
                             "nobody answered: no agent claimed the call in time"),
    CallEvent.REST_CLOSE: (EndReason.CONNECTOR_CLOSED, "the connector closed the session"),
    CallEvent.AGENT_LOST: (EndReason.AGENT_LOST,
                           "the agent's connection was lost and did not return"),
    CallEvent.SHUTDOWN: (EndReason.SERVER_SHUTDOWN, "the gateway is shutting down"),
    CallEvent.CALLEE_HANGUP: (EndReason.OTHER_PARTY_HANGUP, "the other party hung up"),
}

ERROR_REPORT_S = 5.0  # a call.error code is reported at most this often per call
# bound once: looked up on every agent frame (an enum member lookup costs ~60 ns in 3.11)
_ANSWERED, _LEFT = CallState.ANSWERED, Mode.LEFT


class Engine:
    def __init__(self, settings: EngineSettings, clock: Clock,
                 observer: CallObserver | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.observer: CallObserver = observer or NoObserver()
        self.timers = TimerQueue()
        self.sessions = SessionStore()
        self.calls: dict[str, Call] = {}
        self.connectors: dict[str, ConnectorSpec] = {c.uuid: c for c in settings.connectors}
        self.inbound_mode: dict[str, str] = {c.uuid: "ALL" for c in settings.connectors}
        self._routes = {n: c for c in settings.connectors for n in c.numbers}
        self._links: dict[str, dict[str, SessionLink]] = {c.uuid: {} for c in settings.connectors}
        self.legs: dict[Leg, tuple[Call, int]] = {}    # every leg in a call: (call, party)
        self._agents: dict[AgentLink, Call] = {}
        self._resume_to: dict[str, set[str]] = {}      # call id → links offered a RESUME
        self.diallers: list[Dialler] = []
        self._timed: list[Timed] = []
        self.control = CallControl(settings, self.timers, self.diallers, self.legs)
        self.media = MediaPlane(self._media_failed, self.observer)
        self.watch_cost = self.media.watch  # the quality watch's CPU (given a CPU clock)
        self.hold_sound = HoldSound(settings.hold_sound)
        self.outbound_calls: dict[str, bool] = {c.uuid: True for c in settings.connectors}
        self.messaging = Messaging(self)
        self._timed.append(self.messaging)
        self.recorder: Recorder | None = None  # the gateway's, when it records calls
        self._wake: Callable[[], None] | None = None
        # a sentence when new inbound calls are refused (SERVICE_UNAVAILABLE): the gateway
        # drains, or its session registry is unreachable; live calls go on
        self.refusing: str | None = None
        self._due: dict[Due, Callable[..., None]] = {
            Due.RING: self._ring_timeout, Due.CONNECT: self._connect_ring_over,
            Due.RESUME_OFFER: self._resume_offer, Due.RESUME_GRACE: self._resume_grace_over,
            Due.AGENT_LOST: self._agent_lost}
        self.commands = AgentCommands(self)

    # ── time ─────────────────────────────────────────────────────────────────
    def set_waker(self, wake: Callable[[], None]) -> None:
        """``wake()`` is called when :meth:`next_deadline` moved earlier."""
        self._wake = self.timers.on_earlier = wake

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.timers.next_deadline(), self.media.next_deadline(),
                                 *(t.next_deadline() for t in self._timed)) if d is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Run the media tick, every timer and every adapter's timers due at ``now``."""
        self.media.tick(now)
        for key in self.timers.pop_due(now):
            self._due[key[0]](*key[1:])  # type: ignore[index]
        for timed in self._timed:
            deadline = timed.next_deadline()
            if deadline is not None and deadline <= now:
                try:
                    timed.handle_timer(now)
                except Exception:  # one adapter's bug must not stop the others' timers
                    logger.exception("timer handling failed in %r", timed)

    def add_timed(self, timed: Timed) -> None:
        """Run ``timed``'s timers on the engine's timer (see :class:`~.ports.Timed`)."""
        self._timed.append(timed)

    def deadline_changed(self) -> None:
        """An adapter's next deadline may be earlier now: the I/O layer re-arms."""
        if self._wake is not None:
            self._wake()

    def tick(self, now: float) -> None:
        """The media tick alone (every call's 20 ms of audio, by clock phase)."""
        self.media.tick(now)

    def add_dialler(self, dialler: Dialler) -> None:
        self.diallers.append(dialler)

    # ── phone legs ───────────────────────────────────────────────────────────
    def inbound_call(self, leg: Leg, to: str, caller: str) -> str | None:
        """A call for ``to`` arrived on ``leg``; returns its call id, None if refused."""
        connector = self._routes.get(to)
        if self.refusing is not None:
            self._refuse(leg, EndReason.SERVICE_UNAVAILABLE, self.refusing)
            return None
        if connector is None:
            self._refuse(leg, EndReason.NOT_IN_SERVICE, f"the number {to} is not in service")
            return None
        mode = self.inbound_mode[connector.uuid]
        if mode == "NO":
            self._refuse(leg, EndReason.DECLINED, f"the number {to} does not take calls")
            return None
        full = self.full()
        if full is not None:  # keep the live calls' audio whole
            self.media.admission.refused += 1
            self._refuse(leg, EndReason.GATEWAY_OVERLOADED, full)
            return None
        # the session joins the store only when agents are offered the call
        session = Session(connector.uuid, "TELCO", caller, to, int(self.clock.wall()))
        call = Call(session, leg, caller, to, arrived_at=self._now())
        session.call_id = call.id
        self.calls[call.id] = call
        self.legs[leg] = (call, CALLER)
        self.observer.call_offered(call.id, leg.network, False)
        leg.ringing(call.id)
        # MISSED_ONLY: the subscriber's own line rings first; agents get what it misses
        if mode != "MISSED_ONLY" or not self.control.ring_subscriber_first(call, self._now()):
            self._offer_to_agents(call)
        return call.id

    def full(self) -> str | None:
        """Why a new call cannot be taken now, if it cannot: at ``max_calls``, or the
        media running late (admission control)."""
        cap = self.settings.max_calls
        if cap and len(self.calls) >= cap:
            return (f"the gateway is at its {cap} calls (max_calls) and takes no more now; "
                    "call again shortly")
        if self.media.admission.overloaded(self._now()):
            return ("the gateway is overloaded (its media is running late) and takes no new "
                    "calls now; call again shortly")
        return None

    def _refuse(self, leg: Leg, reason: EndReason, message: str) -> None:
        """A call refused on arrival: it never becomes one, but observers count it."""
        leg.ended(reason, message)
        self.observer.call_offered(None, leg.network, False)
        self.observer.call_ended(CallReport(None, leg.network, False, "ENDED", reason.value))

    def leg_audio(self, leg: Leg, payload: bytes) -> None:
        """Audio a leg heard from its party, in the leg's format, in any chunking."""
        slot = self.legs.get(leg)
        if slot is None:
            return
        call, party = slot
        if party == CALLER:
            call.on_caller_audio(payload)
        elif call.bridge is not None and call.bridge.callee is leg:
            call.bridge.push(CALLEE, payload)

    def leg_answered(self, leg: Leg) -> None:
        """A dialled leg answered."""
        outbound = self._outbound_ringing(leg)
        if outbound is not None:
            self._outbound_answered(outbound)
            return
        call = self._ringing_call(leg)
        if call.state is CallState.RINGING:  # MISSED_ONLY: the subscriber took it itself
            self.answer_call(call)
        self.control.callee_answered(call, leg)

    def leg_failed(self, leg: Leg, failure: DialFailure, message: str) -> None:
        """A dialled leg will not join: declined, busy, or gone while ringing."""
        outbound = self._outbound_ringing(leg)
        if outbound is not None:
            outbound.end_cause = FAILURE_CODE[failure]
            self.end_call(outbound, CallEvent.DIAL_FAILED)
            return
        call = self._ringing_call(leg)
        self.then(call, self.control.callee_failed(call, failure, message))

    def leg_dtmf(self, leg: Leg, digit: str, duration_ms: int) -> None:
        """The party of ``leg`` pressed ``digit``: its agent is told, on the party's channel."""
        slot = self.legs.get(leg)
        if slot is None:
            return
        call, party = slot
        if call.agent is not None and call.state is _ANSWERED:
            call.agent.dtmf(Channel.CALLER if party == CALLER else Channel.CALLEE, digit,
                            duration_ms)

    def leg_media_error(self, leg: Leg, code: MediaError, message: str) -> None:
        """The adapter could not take the party's audio (undecodable, say): the agent is
        told with ``call.error``, at most every ``ERROR_REPORT_S`` per code."""
        slot = self.legs.get(leg)
        if slot is not None:
            self.report_error(slot[0], code, message)

    def report_error(self, call: Call, code: MediaError, message: str) -> None:
        """``call.error`` to the call's agent and a log line, rate-limited per code: a
        failure that repeats every frame must not flood the agent or the log."""
        now = self._now()
        last = call.errors_reported.get(code)
        if last is not None and now - last < ERROR_REPORT_S:
            return
        call.errors_reported[code] = now
        logger.warning("call %s: %s: %s", call.id, code.value, message)
        if call.agent is not None:
            call.agent.call_error(code.value, message)

    def _media_failed(self, call: Call, exc: BaseException) -> None:
        if call.errors_reported.get(MediaError.MEDIA_FAILURE) is None:
            logger.error("media tick failed for call %s", call.id, exc_info=exc)
        self.report_error(call, MediaError.MEDIA_FAILURE,
                          f"the gateway failed to process this call's audio ({type(exc).__name__})"
                          "; it is logged, and the call goes on")

    def leg_hung_up(self, leg: Leg) -> None:
        """The party of ``leg`` left (caller or callee, ringing or in the call)."""
        slot = self.legs.get(leg)
        if slot is None:
            return
        call, party = slot
        if call.ringing_leg is leg or call.outbound and call.state is CallState.RINGING:
            self.leg_failed(leg, DialFailure.REJECTED, "the callee hung up while ringing")
        elif party == CALLER:
            del self.legs[leg]
            self.then(call, self.control.caller_left(call), CallEvent.CALLER_HANGUP)
        else:
            self.then(call, self.control.callee_left(call, leg), CallEvent.CALLEE_HANGUP)

    # ── session-manager links ────────────────────────────────────────────────
    def link_up(self, link: SessionLink) -> None:
        """An agent's session-manager connection finished its setup."""
        self._links[link.connector_uuid][link.id] = link
        for session in self.sessions.open_of(link.connector_uuid):
            call = self._call_of(session)
            if call is None or session.bound is not None:
                continue
            if call.state is CallState.ANSWERED:
                self._offer_resume(call, link)
            else:
                link.notify(session, Activity.NEW_INCOMING_CALL)
        self.messaging.link_up(link)

    def link_down(self, link: SessionLink) -> None:
        if self._links[link.connector_uuid].pop(link.id, None) is None:
            return
        for session in self.sessions.open_of(link.connector_uuid):
            if session.bound != link.id:
                continue
            session.step(BindingEvent.UNBIND)
            call = self._call_of(session)
            if call is None:
                continue
            if call.state is CallState.RINGING:
                # claimed but never answered: offer it to the connector's other links
                self._notify(session, Activity.NEW_INCOMING_CALL)
            else:
                self.timers.set((Due.RESUME_GRACE, call.id),
                                self._now() + self.settings.resume_grace_s)
                # failover: every other live link of the connector is offered it now (an
                # agent process killed mid-call: another one takes the call on)
                for other in self._links[link.connector_uuid].values():
                    self._offer_resume(call, other)

    def session_links(self, connector_uuid: str) -> list[SessionLink]:
        return list(self._links.get(connector_uuid, {}).values())

    def open_session(self, link: SessionLink, session_id: str) -> Session:
        session = self._session(link.connector_uuid, session_id)
        if not session.is_open:
            raise SessionClosed(f"session {session_id} is closed ({session.close_reason})")
        if session.bound is not None and session.bound != link.id:
            raise SessionBusy(session.bound)
        session.step(BindingEvent.OPEN)
        session.bound = link.id
        if session.call_id is not None:
            self.timers.cancel((Due.RESUME_GRACE, session.call_id))
        return session

    def session_ready(self, link: SessionLink, session_id: str) -> None:
        session = self._session(link.connector_uuid, session_id)
        if session.is_open and session.bound != link.id:
            raise SessionNotOpen(f"session.ready for session {session_id}, which this "
                                 "connection has not opened: send session.open first")
        if session.ready:
            return
        session.step(BindingEvent.READY)
        if session.channel == WA:
            self.messaging.session_ready(session, link)
            return
        call = self._call_of(session)
        if call is None and session.initiator == "SDK" and session.call_id is None:
            self._dial_out(session, link)
        elif call is not None and session.call_in_sent_to != link.id and not (
                call.outbound and call.state is CallState.RINGING):
            self._offer_call(link, session, call)

    def _offer_call(self, link: SessionLink, session: Session, call: Call) -> None:
        """``call.in``: the agent gets the call (an outbound one once it is answered)."""
        if call.state is CallState.RINGING or call.playout is None:
            call.agent_rate, call.audio_mode = link.sample_rate, link.audio_mode
        session.call_in_sent_to = link.id
        link.offer_call(CallOffer(session.id, call.id, call.caller, call.callee))

    def create_session(self, link: SessionLink, channel: str, remote: str) -> tuple[str, bool]:
        """An SDK-initiated session; ``(id, False)`` if one is open for that address.

        A TELCO session is an outbound call: it is dialled when its agent says
        ``session.ready``, and the agent gets ``call.in`` when the number answers.
        """
        connector = self.connectors[link.connector_uuid]
        if channel == WA:
            return self.messaging.create_session(link, remote)
        if channel != "TELCO":
            raise ChannelNotConfigured(f"channel {channel} is not configured on this gateway")
        if not self.outbound_calls[connector.uuid]:
            raise EngineError("outbound calls are switched off for this connector "
                              "(call_flow.setup outboundCall: false)", "FORBIDDEN")
        if self.control.dialler_for(remote) is None:
            raise EngineError(f"no network reaches {remote}: no trunk route and no registered "
                              "line for it", "INVALID_REQUEST")
        for existing in self.sessions.find(connector.uuid, channel, remote, "OPEN"):
            if existing.initiator == "SDK":
                return existing.id, False
        if self.sessions.count_open(connector.uuid) >= connector.max_sessions:
            raise QuotaExceeded(f"connector has {connector.max_sessions} open sessions, "
                                "its quota")
        local = connector.numbers[0] if connector.numbers else ""
        session = self.sessions.add(Session(connector.uuid, channel, remote, local,
                                            int(self.clock.wall()), "SDK"))
        return session.id, True

    def set_call_flow(self, connector_uuid: str, inbound: str, outbound_call: bool = True,
                      inbound_message: bool = True, outbound_message: bool = True) -> None:
        self.inbound_mode[connector_uuid] = inbound
        self.outbound_calls[connector_uuid] = outbound_call
        self.messaging.set_flow(connector_uuid, inbound_message, outbound_message)

    def close_session(self, connector_uuid: str, session_id: str) -> Session:
        """The connector closed a session (REST): ends its call for every party;
        closing a closed session changes nothing."""
        session = self._session(connector_uuid, session_id)
        if session.is_open:
            call = self._call_of(session)
            if call is not None:
                self.end_call(call, CallEvent.REST_CLOSE)
            else:
                self._close_session(session, SessionEnd.SDK_REQUEST)
        return session

    # ── agent links ──────────────────────────────────────────────────────────
    def call_connector(self, call_id: str) -> str | None:
        """The connector a live call belongs to (None: ended or unknown)."""
        call = self.calls.get(call_id)
        return call.session.connector_uuid if call is not None and call.live else None

    def agent_link(self, call_id: str) -> AgentLink | None:
        """A live call's agent link now, if it has one."""
        call = self.calls.get(call_id)
        return call.agent if call is not None and call.live else None

    def agent_attach(self, call_id: str, link: AgentLink) -> None:
        """An agent link for ``call_id`` opened; a newer one supersedes the older."""
        call = self.calls.get(call_id)
        if call is None or not call.live:
            raise NotFound(f"call {call_id} has ended or does not exist", "CALL_NOT_FOUND")
        old = call.attach_agent(link)
        self._agents[link] = call
        self.timers.cancel((Due.AGENT_LOST, call.id))
        if old is not None:
            self._agents.pop(old, None)
            old.close(LinkClose.SUPERSEDED)
        if call.state is CallState.ANSWERED:
            self._media_add(call)

    def agent_detach(self, link: AgentLink) -> None:
        call = self._agents.pop(link, None)
        if call is None or call.agent is not link:
            return
        call.agent = None
        if call.live:
            self.timers.set((Due.AGENT_LOST, call.id),
                            self._now() + self.settings.agent_reconnect_grace_s)
            if call.bridge is None:  # alone on the line: the caller hears the hold sound
                call.hold = self.hold_sound.loop(call.agent_rate)

    def agent_audio(self, link: AgentLink, pcm: bytes) -> None:
        """Agent audio for its call's playout; raises :class:`CommandError` if dropped."""
        call = self._agents.get(link)
        if call is not None and call.state is _ANSWERED and (call.agent is link
                                                              or call.mode is _LEFT):
            # (mode LEFT: after call.close on a bridged call the agent's link still
            # delivers the audio it was granted credit for; it plays, nothing is lost)
            if call.on_agent_audio(pcm) < len(pcm):
                call.stats.agent_audio_rejected += 1
                self.report_error(call, MediaError.AGENT_AUDIO_DROPPED,
                                  "the playout buffer is full: agent audio beyond it was "
                                  "dropped (send only what buffer_request asks for)")
                raise CommandError("the playout buffer is full; audio dropped",
                                   "AUDIO_OVERFLOW")
            return
        if call is None or not call.live:
            raise CommandError("the call has ended; audio dropped", "CALL_TERMINATED")
        if call.agent is not link and call.mode is not Mode.LEFT:
            raise CommandError("this voice connection is no longer the call's; audio dropped",
                               "CALL_TERMINATED")
        raise CommandError("agent audio before call.answer was dropped", "AUDIO_BEFORE_ANSWER")

    def command(self, link: AgentLink, command: AgentCommand) -> None:
        """Run an agent command; it is answered exactly once through ``link``."""
        self.commands.run(self._agents.get(link), link, command)

    # ── the call's life ──────────────────────────────────────────────────────
    def end_call(self, call: Call, event: CallEvent) -> None:
        """End a call for every party, telling each one why, in the spec's order."""
        try:
            call.transition(event)
        except TransitionRefused:
            return
        call.end_reason = event.value
        self._cancel_timers(call)
        self.media.discard(call)
        self.control.call_ended(call, event)
        caller_on = self.legs.pop(call.caller_leg, None) is not None
        if caller_on and event is not CallEvent.CALLER_HANGUP:
            call.caller_leg.ended(*self._why_ended(call, event))
        agent, call.agent = call.agent, None
        if agent is not None:
            self._agents.pop(agent, None)
            if event not in (CallEvent.CLOSE, CallEvent.DISCONNECT):
                agent.call_event(AgentEvent.TERMINATED)
            agent.close(LinkClose.CALL_ENDED)
        agent_asked = event in (CallEvent.CLOSE, CallEvent.DISCONNECT, CallEvent.REST_CLOSE)
        self._close_session(call.session, SessionEnd.SDK_REQUEST if agent_asked
                            else SessionEnd.CALL_TERMINATED, call.end_cause)
        if call.watch is not None:
            call.watch.close()
        # in the same step as leaving self.calls: a reader of live_reports() and of the
        # ended calls sees each call's counts exactly once
        self.observer.call_ended(self.report(call, self.outcome(call, event)))
        self.calls.pop(call.id, None)

    def _why_ended(self, call: Call, event: CallEvent) -> tuple[EndReason, str]:
        """What the caller's leg is told (an outbound call's dialled number, while ringing)."""
        if call.outbound and call.state is CallState.ENDED and call.playout is None:
            if event is CallEvent.RING_TIMEOUT:
                call.end_cause = call.end_cause or "CALL_UNANSWERED"
                return EndReason.RING_TIMEOUT, (f"nobody answered {call.callee} within "
                                                f"{self.settings.outbound_ring_s:g} s")
            return EndReason.CALLER_GONE, "the call was withdrawn before it was answered"
        return _CALLER_END.get(event, (EndReason.AGENT_HANGUP, "the call ended"))

    @staticmethod
    def outcome(call: Call, event: CallEvent) -> str:
        """How an ended call is counted: the :class:`EndReason` its caller's leg is told,
        ``CALLER_HANGUP`` when the caller left, and an outbound call that never connected
        by why (``CALLEE_BUSY``, ``CALL_REJECTED``, ``CALL_UNANSWERED``, ``RING_TIMEOUT``,
        ``CALLER_GONE``). A short fixed set: it is a metrics label."""
        if event is CallEvent.CALLER_HANGUP:
            return "CALLER_HANGUP"
        if event is CallEvent.DIAL_FAILED:
            return call.end_cause or "DIAL_FAILED"
        if call.outbound and call.playout is None:
            return (EndReason.RING_TIMEOUT if event is CallEvent.RING_TIMEOUT
                    else EndReason.CALLER_GONE).value
        return _CALLER_END.get(event, (EndReason.AGENT_HANGUP, ""))[0].value

    def report(self, call: Call, outcome: str = "", quality: bool = True) -> CallReport:
        """What observers see of ``call`` now: its media counts so far, and its quality
        summary unless ``quality`` is False (a metrics scrape needs none)."""
        stats, playout, leg = call.stats, call.playout, call.caller_leg
        # positional, in CallReport's order: a scrape makes one per live call
        report = CallReport(call.id, leg.network, call.outbound, call.state, outcome,
                            playout is not None, max(0.0, self._now() - call.arrived_at),
                            stats.uplink_frames, stats.downlink_frames)
        report.agent_audio_rejected = stats.agent_audio_rejected
        report.connector, report.caller, report.callee = (call.session.connector_uuid,
                                                          call.caller, call.callee)
        if quality and call.watch is not None:
            report.quality = call.watch.summary()
        if playout is not None:
            played = playout.stats
            report.agent_frames_played, report.underruns = played.frames_played, played.underruns
            report.playout_queued_s = playout.queued / (call.agent_rate * 2)
            per_s = call.agent_rate * 2
            report.compressed_s = played.bytes_compressed / per_s
            report.skipped_quiet_s = played.bytes_dropped_quiet / per_s
            report.cut_late_s = played.bytes_dropped_late / per_s
        rx = receive_stats(leg)
        if rx is not None:
            report.lost, report.late, report.concealed = rx.lost, rx.late, rx.concealed
            report.jitter_ms = rx.jitter_ms
        return report

    def live_reports(self, connector: str | None = None, quality: bool = False
                     ) -> list[CallReport]:
        """A :meth:`report` of every live call, or of one connector's (a metrics scrape:
        O(calls), not per tick); with their quality summaries if ``quality``."""
        return [self.report(call, quality=quality) for call in self.calls.values()
                if connector is None or call.session.connector_uuid == connector]

    def shutdown(self) -> None:
        for call in tuple(self.calls.values()):
            call.end_cause = call.end_cause or "GATEWAY_SHUTDOWN"  # the agents' session.closed
            self.end_call(call, CallEvent.SHUTDOWN)

    def answer_call(self, call: Call) -> None:
        call.transition(CallEvent.ANSWER)
        self.timers.cancel((Due.RING, call.id))
        call.start_media(self.settings.playout_target_ms, self.settings.playout_prebuffer_ms,
                         self.settings.playout_max_lag_ms, self.media.shed)
        if self.settings.quality_watch and call.watch is None:
            recording = (self.recorder.open(call.id, call.session.connector_uuid, call.agent_rate)
                         if self.recorder is not None else None)
            call.watch = CallWatch(call.id, call.agent_rate, self.observer, lambda: call.agent,
                                   recording, cost=self.watch_cost)
        call.caller_leg.answered(call.id)
        self._media_add(call)
        self.observer.call_answered(call.id, call.caller_leg.network, call.outbound,
                                    max(0.0, self._now() - call.arrived_at))

    def _offer_to_agents(self, call: Call) -> None:
        self.sessions.add(call.session)
        self.timers.set((Due.RING, call.id), self._now() + self.settings.ring_timeout_s)
        self._notify(call.session, Activity.NEW_INCOMING_CALL)

    def then(self, call: Call, then: Then, ending: CallEvent | None = None) -> None:
        """Do what call control decided; ``ending`` is why, if it ends the call."""
        if then is Then.END_CALL:
            assert ending is not None, "a decision that can end the call needs its reason"
            self.end_call(call, ending)
        elif then is Then.OFFER_TO_AGENTS:
            self._offer_to_agents(call)
        elif then is Then.AGENT_LEAVES:
            self._agent_leaves(call)

    def _agent_leaves(self, call: Call) -> None:
        """The agent is gone from a bridged call: caller and callee talk on."""
        for kind in (Due.AGENT_LOST, Due.RESUME_GRACE):
            self.timers.cancel((kind, call.id))
        agent, call.agent = call.agent, None
        if agent is not None:
            agent.close(LinkClose.AGENT_LEFT)  # it stays known until it detaches (see above)
        self._close_session(call.session, SessionEnd.SDK_REQUEST)

    def _close_session(self, session: Session, reason: SessionEnd,
                       cause: str | None = None) -> None:
        if not session.is_open:
            return
        bound = session.bound
        self.sessions.close(session, reason.value, int(self.clock.wall()))
        if session.channel == WA:
            self.messaging.session_closed(session)
        link = self._links[session.connector_uuid].get(bound) if bound is not None else None
        if link is not None:
            link.session_closed(session.id, reason, cause)

    def _media_add(self, call: Call) -> None:
        was_idle = self.media.next_deadline() is None
        self.media.add(call, self._now())
        if was_idle and self._wake is not None:
            self._wake()

    # ── outbound calls ───────────────────────────────────────────────────────
    def _dial_out(self, session: Session, link: SessionLink) -> None:
        """Place the call of an SDK-initiated session, now that its agent is ready."""
        call_id = str(uuid.uuid4())
        session.call_id = call_id
        dialler = self.control.dialler_for(session.remote_address)
        try:
            if dialler is None:
                raise DialError(DialFailure.UNREACHABLE,
                                f"no network reaches {session.remote_address}")
            leg = dialler.dial(call_id, session.remote_address, session.local_address,
                               self.settings.outbound_ring_s)
        except DialError as exc:
            logger.info("outbound call to %s not placed: %s", session.remote_address,
                        exc.message)
            self._close_session(session, SessionEnd.CALL_TERMINATED, FAILURE_CODE[exc.failure])
            return
        call = Call(session, leg, session.local_address, session.remote_address, id=call_id,
                    agent_rate=link.sample_rate, audio_mode=link.audio_mode, outbound=True,
                    arrived_at=self._now())
        self.calls[call.id] = call
        self.legs[leg] = (call, CALLER)
        self.observer.call_offered(call.id, leg.network, True)
        self.timers.set((Due.RING, call.id), self._now() + self.settings.outbound_ring_s)

    def _outbound_ringing(self, leg: Leg) -> Call | None:
        slot = self.legs.get(leg)
        if slot is None:
            return None
        call = slot[0]
        ringing = call.outbound and call.state is CallState.RINGING and call.caller_leg is leg
        return call if ringing else None

    def _outbound_answered(self, call: Call) -> None:
        """The dialled number answered: media starts, and its agent gets the call."""
        self.answer_call(call)
        session = call.session
        link = self._links[session.connector_uuid].get(session.bound) if session.bound else None
        if link is not None and session.ready:
            self._offer_call(link, session, call)

    # ── timers ───────────────────────────────────────────────────────────────
    def _ring_timeout(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            self.end_call(call, CallEvent.RING_TIMEOUT)

    def _connect_ring_over(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            self.then(call, self.control.ring_over(call))

    def _offer_resume(self, call: Call, link: SessionLink) -> None:
        self._resume_to.setdefault(call.id, set()).add(link.id)
        self.timers.set((Due.RESUME_OFFER, call.id, link.id),
                        self._now() + self.settings.resume_delay_s)

    def _resume_offer(self, call_id: str, link_id: str) -> None:
        """Offer a live call back to a reconnected agent connection until it is claimed.

        The delay and the repeats are for the published SDK, which drops its
        call sessions right *after* setup.done on a reconnect: a RESUME that
        arrives in that window is swallowed by its idempotent open_session.
        """
        call = self.calls.get(call_id)
        link = self._links[call.session.connector_uuid].get(link_id) if call else None
        if call is None or link is None or call.session.bound is not None:
            return
        link.notify(call.session, Activity.RESUME)
        self.timers.set((Due.RESUME_OFFER, call_id, link_id),
                        self._now() + self.settings.resume_retry_s)

    def _resume_grace_over(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.session.bound is None and call.agent is None:
            self.then(call, self.control.agent_left(call), CallEvent.AGENT_LOST)

    def _agent_lost(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.agent is None:
            self.then(call, self.control.agent_left(call), CallEvent.AGENT_LOST)

    def _cancel_timers(self, call: Call) -> None:
        for kind in (Due.RING, Due.CONNECT, Due.RESUME_GRACE, Due.AGENT_LOST):
            self.timers.cancel((kind, call.id))
        for link_id in self._resume_to.pop(call.id, ()):
            self.timers.cancel((Due.RESUME_OFFER, call.id, link_id))

    # ── helpers ──────────────────────────────────────────────────────────────
    def _now(self) -> float:
        return self.clock.now()

    def _session(self, connector_uuid: str, session_id: str) -> Session:
        session = self.sessions.get(session_id, connector_uuid)
        if session is None:
            raise NotFound(f"session {session_id} does not exist")
        return session

    def _call_of(self, session: Session) -> Call | None:
        """The session's call, if it is still live."""
        call = self.calls.get(session.call_id) if session.call_id is not None else None
        return call if call is not None and call.live else None

    def _ringing_call(self, leg: Leg) -> Call:
        slot = self.legs.get(leg)
        if slot is None or slot[0].ringing_leg is not leg:
            raise CommandError("there is no call ringing on this leg", "INVALID_STATE")
        return slot[0]

    def _notify(self, session: Session, activity: Activity) -> None:
        for link in tuple(self._links[session.connector_uuid].values()):
            link.notify(session, activity)

    # ── for the message plane (.messaging) ───────────────────────────────────
    notify_links = _notify

    def connector_for(self, number: str) -> ConnectorSpec | None:
        """The connector a number is routed to."""
        return self._routes.get(number)

    def bound_link(self, session: Session) -> SessionLink | None:
        """The live connection holding ``session``, if any."""
        bound = session.bound
        return self._links[session.connector_uuid].get(bound) if bound is not None else None

    def end_session(self, session: Session, reason: SessionEnd, cause: str | None = None) -> None:
        """Close a session that has no call (a message session), telling its holder."""
        self._close_session(session, reason, cause)
