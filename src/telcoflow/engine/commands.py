"""The agent's commands on its call (``call.answer``, ``agent.interrupt``, …): each is
checked against the call's state and answered exactly once through the agent's link.

The engine owns the calls; this table maps a command's name to what it does to them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from .call_states import CallEvent, CallState
from .calls import Call
from .control_states import AGENT_ROUTES, Control
from .errors import CommandError, EngineError
from .ports import AgentCommand, AgentLink

if TYPE_CHECKING:
    from .engine import Engine

REPLIED = object()  # a command handler answered through the agent link itself
_ANSWERED = CallState.ANSWERED


class AgentCommands:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        modes = (Control.WHISPER, Control.BARGE, Control.SPY)
        self._handlers: dict[str, Callable[[Call, AgentLink, AgentCommand], Any]] = {
            "call.answer": self._answer, "agent.interrupt": self._interrupt,
            "call.close": self._end, "call.disconnect": self._end,
            "call.connect": self._connect, "call.dtmf": self._dtmf,
            "playout.position": self._position,
            **{m.value: partial(self._mode, m) for m in modes}}

    def run(self, call: Call | None, link: AgentLink, command: AgentCommand) -> None:
        """Run ``command`` from ``link`` (the agent of ``call``, if any); it is answered
        exactly once through ``link``."""
        try:
            if call is None or not call.live or call.agent is not link:
                raise CommandError("the call has already ended" if call is None or not call.live
                                   else "this voice connection is no longer the call's",
                                   "CALL_TERMINATED")
            handler = self._handlers.get(command.name)
            if handler is None:
                raise CommandError(f"unknown command '{command.name}'", "UNKNOWN_COMMAND")
            result = handler(call, link, command)
        except EngineError as exc:
            link.command_failed(command.command_id, exc.code, exc.message)
            return
        if result is not REPLIED:
            link.command_done(command.command_id, result)

    def _answer(self, call: Call, link: AgentLink, command: AgentCommand) -> dict[str, Any]:
        if call.state is CallState.ANSWERED:  # an agent resuming after a reconnect
            call.transition(CallEvent.ANSWER)
            return {"callId": call.id, "alreadyAnswered": True}
        self.engine.answer_call(call)
        return {"callId": call.id}

    def _interrupt(self, call: Call, link: AgentLink, command: AgentCommand
                   ) -> dict[str, Any]:
        dropped = call.interrupt()
        self.engine.media.interrupted(call, self.engine.clock.now())
        played_bytes, played_ms = call.played()
        link.playout_position(played_bytes, played_ms, "interrupt")
        return {"droppedBytes": dropped, "playedBytes": played_bytes, "playedMs": played_ms}

    def _position(self, call: Call, link: AgentLink, command: AgentCommand
                  ) -> dict[str, Any]:
        played_bytes, played_ms = call.played()
        return {"playedBytes": played_bytes, "playedMs": played_ms}

    def _end(self, call: Call, link: AgentLink, command: AgentCommand) -> object:
        # answer first: an agent takes its link closing as the end of the call
        link.command_done(command.command_id, {"callId": call.id})
        if command.name == "call.close":
            self.engine.then(call, self.engine.control.agent_left(call), CallEvent.CLOSE)
        else:
            self.engine.end_call(call, CallEvent.DISCONNECT)
        return REPLIED

    def _mode(self, control: Control, call: Call, link: AgentLink, command: AgentCommand
              ) -> dict[str, object]:
        return self.engine.control.set_mode(call, control)

    def _connect(self, call: Call, link: AgentLink, command: AgentCommand) -> object:
        self.engine.control.connect(call, command.command_id, link, command.ring_s,
                                    command.timeout_s, self.engine.clock.now())
        return REPLIED

    def _dtmf(self, call: Call, link: AgentLink, command: AgentCommand) -> dict[str, object]:
        """Play digits to every human the agent's voice reaches now."""
        if call.state is not _ANSWERED:
            raise CommandError("answer the call before sending DTMF")
        to_caller, to_callee = (AGENT_ROUTES[call.mode] if call.bridge is not None
                                else (True, False))
        legs = [(name, leg) for name, leg, heard in (
            ("caller", call.caller_leg, to_caller and call.caller_leg in self.engine.legs),
            ("callee", call.bridge.callee if call.bridge else None, to_callee)) if heard and leg]
        if not legs:
            raise CommandError(f"nobody hears the agent in {call.mode.value.lower()} mode",
                               "NOT_HEARD")
        for _, leg in legs:
            leg.send_dtmf(command.digits)
        return {"callId": call.id, "digits": command.digits, "to": [name for name, _ in legs]}
