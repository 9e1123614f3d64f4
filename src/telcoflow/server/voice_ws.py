"""The per-call voice WebSocket: agent commands, agent audio, caller audio out."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..protocol import errors as perr
from ..protocol import voice as vp
from .call_states import CallEvent, CallState, TransitionRefused
from .calls import Call
from .conference_states import Control
from .errors import CommandError, GatewayError
from .limits import TokenBucket
from .netio import WsConnection

if TYPE_CHECKING:
    from .engine import Engine

logger = logging.getLogger(__name__)

COMMANDS_PER_SECOND = 100
MAX_ERRORS = 50

_MODES = {c.value: c for c in (Control.WHISPER, Control.BARGE, Control.SPY)}


class VoiceConn:
    def __init__(self, engine: Engine, call: Call) -> None:
        self.engine = engine
        self.call = call
        self._conn: WsConnection | None = None
        self._bucket = TokenBucket(COMMANDS_PER_SECOND, 2 * COMMANDS_PER_SECOND, time.monotonic())
        self._errors = 0

    # ── VoiceLink ─────────────────────────────────────────────────────────
    def send_text(self, text: str) -> None:
        if self._conn is not None:
            self._conn.send_text(text)

    def send_binary(self, data: bytes) -> None:
        if self._conn is not None:
            self._conn.send_binary(data)

    def close(self, code: int, reason: str) -> None:
        if self._conn is not None:
            self._conn.close(code, reason)

    # ── WsHandler ─────────────────────────────────────────────────────────
    def on_open(self, conn: WsConnection) -> None:
        self._conn = conn
        logger.info("voice connection open for call %s", self.call.id)
        self.engine.voice_attach(self.call, self)

    def on_close(self, code: int | None, reason: str) -> None:
        logger.info("voice connection for call %s closed (%s %s)", self.call.id, code, reason)
        self.engine.voice_detach(self.call, self)
        self._conn = None

    def on_text(self, text: str) -> None:
        if not self._bucket.take(time.monotonic()):
            self.close(1008, "too many commands: slow down")
            return
        try:
            command = vp.parse_client_text(text)
        except perr.ProtocolError as exc:
            self._fail(exc.request_id, exc.code, exc.message)
            return
        try:
            result = self._run(command)
        except (TransitionRefused, GatewayError, perr.ProtocolError) as exc:
            self._fail(command.command_id, exc.code, exc.message)
            return
        if result is not _RESPONDED:
            self.send_text(vp.build_command_response(command.command_id, result))

    def on_binary(self, data: bytes) -> None:
        call = self.call
        try:
            channel, pcm = vp.split_audio(data)
        except perr.ProtocolError as exc:
            self._fail(None, "INVALID_AUDIO", exc.message)
            return
        if channel != 0:
            self._fail(None, "INVALID_AUDIO", f"agent audio goes on channel 0, not {channel}")
        elif call.state is not CallState.ANSWERED:
            self._fail(None, "AUDIO_BEFORE_ANSWER" if call.live else "CALL_TERMINATED",
                       "agent audio before call.answer was dropped" if call.live
                       else "the call has ended; audio dropped")
        elif call.on_agent_audio(pcm) < len(pcm):
            call.stats.agent_audio_rejected += 1
            self._fail(None, "AUDIO_OVERFLOW", "the playout buffer is full; audio dropped")

    # ── commands ──────────────────────────────────────────────────────────
    def _run(self, command: vp.Command) -> Any:
        call, engine, name = self.call, self.engine, command.name
        if not call.live or call.voice is not self:
            raise CommandError("the call has already ended" if not call.live else
                               "this voice connection is no longer the call's",
                               "CALL_TERMINATED")
        if name == "call.answer":
            return engine.answer(call)
        if name == "agent.interrupt":
            return {"droppedBytes": call.interrupt()}
        if name in ("call.close", "call.disconnect"):
            # answer first: the SDK treats the voice connection closing as the end
            self.send_text(vp.build_command_response(command.command_id, {"callId": call.id}))
            if name == "call.close":
                engine.agent_close(call)
            else:
                engine.end_call(call, CallEvent.DISCONNECT)
            return _RESPONDED
        if name in _MODES:
            return engine.control.set_mode(call, _MODES[name])
        if name == "call.connect":
            engine.control.connect(call, command, self)
            return _RESPONDED
        raise CommandError(f"unknown command '{name}'", "UNKNOWN_COMMAND")

    def _fail(self, command_id: str | None, code: str, message: str) -> None:
        self._errors += 1
        if command_id:
            self.send_text(vp.build_command_error(command_id, code, message))
        elif self._errors <= MAX_ERRORS:
            self.send_text(vp.build_error(code, message))
        if self._errors > MAX_ERRORS and command_id is None:
            self.close(1008, "too many invalid frames")


_RESPONDED = object()  # sentinel: the response was sent already
