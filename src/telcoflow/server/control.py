"""Call control: ringing the subscriber, bridging, agent modes, who leaves when.

The rule for parties leaving (caller, callee, agent): a call goes on while
at least two parties are on it, and ends for everyone left when only one
remains. So after connect the caller hanging up leaves callee and agent
talking; the agent gets ``call.terminated`` only when no human is left on
the call; ``call.close`` after connect takes only the agent out (audio it
already handed over still plays), and the caller and callee talk on;
``call.disconnect`` ends every leg.

``call.connect`` outcomes: ``success`` when the line answers; with the call
still up, ``CALL_UNANSWERED`` when nobody answers within the ring time (or
no line is registered for the number: the subscriber is unreachable),
``CALL_REJECTED`` when the line declines, ``CALLEE_BUSY`` when it is in
another call.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..audio.mixer import CALLER
from ..protocol import phone as pp
from ..protocol import voice as vp
from .call_states import CallEvent, CallState
from .calls import Call
from .conference import Bridge
from .conference_states import AGENT_ROUTES, CONFERENCED, Control, Mode
from .errors import CommandError, GatewayError
from .links import LineLink, VoiceLink

if TYPE_CHECKING:
    from .engine import Engine

logger = logging.getLogger(__name__)

# answer a connect this long before the SDK's own deadline (its timeout_ms)
RESPONSE_MARGIN_S = 0.25

# what a bridged callee is told, per way the call ends
_CALLEE_END = {
    CallEvent.CALLER_HANGUP: (pp.OTHER_PARTY_HANGUP, "the other party hung up"),
    CallEvent.DISCONNECT: (pp.AGENT_HANGUP, "the agent ended the call"),
    CallEvent.REST_CLOSE: (pp.CONNECTOR_CLOSED, "the connector closed the session"),
    CallEvent.SHUTDOWN: (pp.SERVER_SHUTDOWN, "the gateway is shutting down"),
}


class CallControl:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lines: dict[str, LineLink] = {}
        self._pending: dict[str, tuple[str, VoiceLink]] = {}  # call id → connect command

    # ── subscriber lines ─────────────────────────────────────────────────────
    def register(self, line: LineLink) -> None:
        current = self.lines.get(line.number)
        if current is not None and current is not line:
            raise GatewayError(f"the number {line.number} already has a registered line",
                               "NUMBER_IN_USE")
        self.lines[line.number] = line

    def unregister(self, line: LineLink) -> None:
        if self.lines.get(line.number) is line:
            del self.lines[line.number]
        self.line_left(line)

    # ── commands from the agent ──────────────────────────────────────────────
    def connect(self, call: Call, command: vp.Command, voice: VoiceLink) -> None:
        """Ring the subscriber; the command is answered when the ringing ends."""
        ring_s = float(vp.ring_time_s(command))
        if call.state is not CallState.ANSWERED:
            raise CommandError("answer the call before call.connect")
        call.control(Control.CONNECT)
        line = self.lines.get(call.callee)
        if line is None or line.call is not None:
            call.control(Control.CALLEE_FAILED)
            if line is None:
                raise CommandError(f"the subscriber of {call.callee} is unreachable: no line "
                                   "is registered for it", "CALL_UNANSWERED")
            raise CommandError(f"the line of {call.callee} is busy", "CALLEE_BUSY")
        ring_s = min(ring_s, self.engine.config.connect_ring_cap_s,
                     max(0.05, command.timeout_ms / 1000 - RESPONSE_MARGIN_S))
        call.ringing_line, line.call = line, call
        self._pending[call.id] = (command.command_id, voice)
        line.offer(call.id, call.caller, ring_s)
        call.set_timer("connect", self.engine.loop().call_later(ring_s, self._ring_over, call,
                                                                ring_s))

    def set_mode(self, call: Call, control: Control) -> dict[str, object]:
        call.control(control)
        assert call.bridge is not None
        call.bridge.set_agent_routes(*AGENT_ROUTES[call.mode])
        return {"callId": call.id, "mode": call.mode.value.lower()}

    def agent_left(self, call: Call) -> bool:
        """The agent closed or was lost: True if the call goes on without it."""
        if call.mode not in CONFERENCED:
            return False
        call.control(Control.AGENT_LEFT)
        call.cancel_timer("agent_lost")
        call.cancel_timer("resume")
        voice, call.voice = call.voice, None
        if voice is not None:
            voice.close(1000, "the agent left the call")
        self.engine.close_agent_session(call)
        return True

    def caller_left(self, call: Call) -> bool:
        """The caller hung up: True if the call goes on (callee and agent are still on)."""
        if call.bridge is None or call.mode not in CONFERENCED:
            return False
        call.bridge.caller_left()
        return True

    def ring_subscriber_first(self, call: Call) -> bool:
        """MISSED_ONLY: ring the number's own line before any agent; False if none is free."""
        line = self.lines.get(call.callee)
        if line is None or line.call is not None:
            return False
        ring_s = self.engine.config.missed_ring_s
        call.ringing_line, line.call = line, call
        line.offer(call.id, call.caller, ring_s)
        call.set_timer("connect", self.engine.loop().call_later(ring_s, self._ring_over, call,
                                                                ring_s))
        return True

    # ── the subscriber line ──────────────────────────────────────────────────
    def line_answered(self, line: LineLink) -> None:
        call = line.call
        if call is None or call.ringing_line is not line:
            raise GatewayError("there is no call ringing on this line", "INVALID_STATE")
        call.cancel_timer("connect")
        call.ringing_line = None
        direct = call.state is CallState.RINGING  # MISSED_ONLY: no agent has the call
        if direct:
            self.engine.answer_direct(call)
        call.control(Control.DIRECT if direct else Control.CALLEE_ANSWERED)
        call.bridge = Bridge(call.phone, line)
        call.bridge.set_agent_routes(*AGENT_ROUTES[call.mode])
        line.send_text(pp.build_answered(call.id))
        self._reply(call, {"callId": call.id, "callee": line.number,
                           "mode": call.mode.value.lower()})

    def line_rejected(self, line: LineLink) -> None:
        call = line.call
        if call is None or call.ringing_line is not line:
            raise GatewayError("there is no call ringing on this line", "INVALID_STATE")
        self._ring_failed(call, "CALL_REJECTED", f"{line.number} declined the call")

    def line_left(self, line: LineLink) -> None:
        """The line hung up or went away, ringing or in the call."""
        call = line.call
        if call is None:
            return
        if call.ringing_line is line:
            self._ring_failed(call, "CALL_REJECTED", f"{line.number} hung up while ringing")
            return
        bridge = call.bridge
        if bridge is None or bridge.callee is not line:
            line.call = None
            return
        line.call, call.bridge = None, None
        if call.mode is Mode.LEFT or not bridge.present[CALLER]:
            self.engine.end_call(call, CallEvent.CALLEE_HANGUP)
        else:
            call.control(Control.CALLEE_LEFT)
            call.reset_legs()  # back to two-party: its filters hold pre-bridge audio

    def call_ended(self, call: Call, event: CallEvent) -> None:
        """Release the callee's leg and any pending connect when the call ends."""
        if call.ringing_line is not None:
            line, call.ringing_line = call.ringing_line, None
            line.call = None
            line.release(pp.CALLER_GONE, "the call ended while ringing", call.id)
        self._fail_pending(call, "CALL_TERMINATED", "the call ended before the callee answered")
        bridge, call.bridge = call.bridge, None
        if bridge is not None:
            bridge.callee.call = None
            reason, message = _CALLEE_END.get(event, (pp.OTHER_PARTY_HANGUP,
                                                      "the other party hung up"))
            bridge.callee.release(reason, message, call.id)

    # ── helpers ──────────────────────────────────────────────────────────────
    def _ring_over(self, call: Call, ring_s: float) -> None:
        self._ring_failed(call, "CALL_UNANSWERED",
                          f"nobody answered {call.callee} within {ring_s:g} s")

    def _ring_failed(self, call: Call, code: str, message: str) -> None:
        line, call.ringing_line = call.ringing_line, None
        call.cancel_timer("connect")
        if line is not None:
            line.call = None
            line.release(pp.RING_TIMEOUT if code == "CALL_UNANSWERED" else pp.DECLINED,
                         message, call.id)
        if call.mode is Mode.RINGING:
            call.control(Control.CALLEE_FAILED)
        self._fail_pending(call, code, message)
        if call.live and call.state is CallState.RINGING:
            self.engine.offer_to_agents(call)  # MISSED_ONLY: the subscriber missed it

    def _reply(self, call: Call, result: dict[str, object]) -> None:
        pending = self._pending.pop(call.id, None)
        if pending is not None:
            pending[1].send_text(vp.build_command_response(pending[0], result))

    def _fail_pending(self, call: Call, code: str, message: str) -> None:
        pending = self._pending.pop(call.id, None)
        if pending is not None:
            pending[1].send_text(vp.build_command_error(pending[0], code, message))
