"""Call control: ringing a callee, bridging, agent modes, who leaves when.

The rule for parties leaving (caller, callee, agent): a call goes on while
at least two parties are on it, and ends for everyone left when only one
remains. So after connect the caller hanging up leaves callee and agent
talking; the agent gets ``call.terminated`` only when no human is left on
the call; ``call.close`` after connect takes only the agent out (audio it
already handed over still plays), and the caller and callee talk on;
``call.disconnect`` ends every leg.

``call.connect`` outcomes: ``success`` when the callee answers; with the call
still up, ``CALL_UNANSWERED`` when nobody answers within the ring time (or no
network reaches the number), ``CALL_REJECTED`` when the callee declines,
``CALLEE_BUSY`` when it is in another call. When no network of ours reaches
the number and the caller's carrier can transfer (AudioCodes), the carrier is
asked to ring it: success with ``mode: "transferred"``, and the call ends when
the carrier hands it over.

:class:`CallControl` talks to legs, diallers and agent links through their
ports and keeps its own timers; what the *engine* must do next (end the
call, offer it to agents, let the agent go) it returns as a decision.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import Enum, auto

from ..audio.mixer import CALLEE, CALLER
from .bridge import Bridge
from .call_states import CallEvent, CallState
from .calls import Call, PendingConnect
from .control_states import AGENT_ROUTES, CONFERENCED, Control, Mode
from .errors import CommandError
from .ports import AgentLink, DialError, DialFailure, Dialler, EndReason, Leg
from .settings import EngineSettings
from .timers import Due, TimerQueue

logger = logging.getLogger(__name__)

# answer a connect this long before the agent's own deadline (its timeout_ms)
RESPONSE_MARGIN_S = 0.25

# what a bridged callee is told, per way the call ends
_CALLEE_END = {
    CallEvent.CALLER_HANGUP: (EndReason.OTHER_PARTY_HANGUP, "the other party hung up"),
    CallEvent.DISCONNECT: (EndReason.AGENT_HANGUP, "the agent ended the call"),
    CallEvent.REST_CLOSE: (EndReason.CONNECTOR_CLOSED, "the connector closed the session"),
    CallEvent.SHUTDOWN: (EndReason.SERVER_SHUTDOWN, "the gateway is shutting down"),
}

# connect's (and an outbound call's) error code, per way the callee did not join
FAILURE_CODE = {DialFailure.UNREACHABLE: "CALL_UNANSWERED", DialFailure.BUSY: "CALLEE_BUSY",
                 DialFailure.REJECTED: "CALL_REJECTED"}


class Then(Enum):
    """What the engine must do after a control step."""

    NOTHING = auto()
    END_CALL = auto()         # the last two parties are gone: end it for whoever is left
    OFFER_TO_AGENTS = auto()  # MISSED_ONLY: the subscriber missed it, agents get it now
    AGENT_LEAVES = auto()     # the agent goes; the humans talk on


class CallControl:
    def __init__(self, settings: EngineSettings, timers: TimerQueue,
                 diallers: Sequence[Dialler], legs: dict[Leg, tuple[Call, int]]) -> None:
        self.settings = settings
        self.timers = timers
        self.diallers = diallers
        self.legs = legs  # every leg the engine knows, shared: dialled legs are added here

    # ── commands from the agent ──────────────────────────────────────────────
    def connect(self, call: Call, command_id: str, agent: AgentLink, ring_s: float,
                timeout_s: float, now: float) -> None:
        """Ring the callee; the command is answered when the ringing ends."""
        if call.state is not CallState.ANSWERED:
            raise CommandError("answer the call before call.connect")
        call.control(Control.CONNECT)
        ring_s = min(ring_s, self.settings.connect_ring_cap_s,
                     max(0.05, timeout_s - RESPONSE_MARGIN_S))
        try:
            self._dial(call, ring_s, now)
        except DialError as exc:
            call.control(Control.CALLEE_FAILED)
            if exc.failure is DialFailure.UNREACHABLE and call.caller_leg.transfer(call.callee):
                # the caller's carrier rings the number itself; the call leaves us when
                # it has (the carrier ends the session: the caller's hang-up)
                agent.command_done(command_id, {"callId": call.id, "callee": call.callee,
                                                "mode": "transferred"})
                return
            raise CommandError(exc.message, FAILURE_CODE[exc.failure]) from None
        call.connect = PendingConnect(command_id, agent)

    def set_mode(self, call: Call, control: Control) -> dict[str, object]:
        call.control(control)
        assert call.bridge is not None
        call.bridge.set_agent_routes(*AGENT_ROUTES[call.mode])
        return {"callId": call.id, "mode": call.mode.value.lower()}

    def ring_subscriber_first(self, call: Call, now: float) -> bool:
        """MISSED_ONLY: ring the number's own subscriber before any agent; False if
        it cannot be rung (unreachable or busy): agents get the call at once."""
        try:
            self._dial(call, self.settings.missed_ring_s, now)
        except DialError:
            return False
        return True

    # ── the parties ──────────────────────────────────────────────────────────
    def agent_left(self, call: Call) -> Then:
        """The agent closed or was lost: the call goes on without it when bridged."""
        if call.mode not in CONFERENCED:
            return Then.END_CALL
        call.control(Control.AGENT_LEFT)
        return Then.AGENT_LEAVES

    def caller_left(self, call: Call) -> Then:
        """The caller hung up: callee and agent talk on when bridged."""
        if call.bridge is None or call.mode not in CONFERENCED:
            return Then.END_CALL
        call.bridge.caller_left()
        return Then.NOTHING

    def callee_answered(self, call: Call, leg: Leg) -> None:
        """The rung callee answered: bridge it (the engine answered a MISSED_ONLY caller)."""
        self.timers.cancel((Due.CONNECT, call.id))
        call.ringing_leg = None
        direct = call.mode is Mode.IDLE  # MISSED_ONLY: no agent was ever on the call
        call.control(Control.DIRECT if direct else Control.CALLEE_ANSWERED)
        call.bridge = Bridge(call.caller_leg, leg)
        call.bridge.set_agent_routes(*AGENT_ROUTES[call.mode])
        leg.answered(call.id)
        self._reply(call, {"callId": call.id, "callee": call.callee,
                           "mode": call.mode.value.lower()})

    def callee_failed(self, call: Call, failure: DialFailure, message: str) -> Then:
        """The rung callee declined, was busy or hung up while ringing."""
        return self._ring_failed(call, FAILURE_CODE[failure], message,
                                 EndReason.DECLINED)

    def ring_over(self, call: Call) -> Then:
        return self._ring_failed(call, "CALL_UNANSWERED",
                                 f"nobody answered {call.callee} within {call.ring_s:g} s",
                                 EndReason.RING_TIMEOUT)

    def callee_left(self, call: Call, leg: Leg) -> Then:
        """The bridged callee hung up: back to two parties, or the end if none are left."""
        self.legs.pop(leg, None)
        bridge, call.bridge = call.bridge, None
        assert bridge is not None
        if call.mode is Mode.LEFT or not bridge.present[CALLER]:
            return Then.END_CALL
        call.control(Control.CALLEE_LEFT)
        call.reset_legs()  # back to two-party: its filters hold pre-bridge audio
        return Then.NOTHING

    def call_ended(self, call: Call, event: CallEvent) -> None:
        """Release the callee's leg and any pending connect when the call ends."""
        self.timers.cancel((Due.CONNECT, call.id))
        leg, call.ringing_leg = call.ringing_leg, None
        if leg is not None:
            self.legs.pop(leg, None)
            leg.ended(EndReason.CALLER_GONE, "the call ended while ringing")
        self._fail_pending(call, "CALL_TERMINATED", "the call ended before the callee answered")
        bridge, call.bridge = call.bridge, None
        if bridge is not None:
            self.legs.pop(bridge.callee, None)
            reason, message = _CALLEE_END.get(event, (EndReason.OTHER_PARTY_HANGUP,
                                                      "the other party hung up"))
            bridge.callee.ended(reason, message)

    # ── helpers ──────────────────────────────────────────────────────────────
    def dialler_for(self, number: str) -> Dialler | None:
        """The first network that reaches ``number`` (in the order they were added)."""
        return next((d for d in self.diallers if d.reaches(number)), None)

    def _dial(self, call: Call, ring_s: float, now: float) -> None:
        dialler = self.dialler_for(call.callee)
        if dialler is None:
            raise DialError(DialFailure.UNREACHABLE, f"the subscriber of {call.callee} is "
                            "unreachable: no network reaches the number")
        leg = dialler.dial(call.id, call.callee, call.caller, ring_s)
        call.ringing_leg = leg
        self.legs[leg] = (call, CALLEE)
        call.ring_s = ring_s
        self.timers.set((Due.CONNECT, call.id), now + ring_s)

    def _ring_failed(self, call: Call, code: str, message: str, told: EndReason) -> Then:
        self.timers.cancel((Due.CONNECT, call.id))
        leg, call.ringing_leg = call.ringing_leg, None
        if leg is not None:
            self.legs.pop(leg, None)
            leg.ended(told, message)
        if call.mode is Mode.RINGING:
            call.control(Control.CALLEE_FAILED)
        self._fail_pending(call, code, message)
        if call.live and call.state is CallState.RINGING:
            return Then.OFFER_TO_AGENTS
        return Then.NOTHING

    def _reply(self, call: Call, result: dict[str, object]) -> None:
        pending, call.connect = call.connect, None
        if pending is not None:
            pending.agent.command_done(pending.command_id, result)

    def _fail_pending(self, call: Call, code: str, message: str) -> None:
        pending, call.connect = call.connect, None
        if pending is not None:
            pending.agent.command_failed(pending.command_id, code, message)
