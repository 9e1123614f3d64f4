"""The per-call voice WebSocket: the engine's :class:`~telcoflow.engine.ports.AgentLink`.

Frames in are parsed here and handed to the engine (commands, agent audio);
the engine's audio, credit, events and command answers go out as frames.
What each command does is the engine's business, not this connection's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..engine import Engine, EngineError
from ..engine.ports import AgentCommand, AgentEvent, Channel, LinkClose, QualityEvent
from ..protocol import errors as perr
from ..protocol import voice as vp
from .limits import TokenBucket
from .netio import WsConnection

logger = logging.getLogger(__name__)

COMMANDS_PER_SECOND = 100
MAX_ERRORS = 50
_CHANNEL_BYTE = {channel: bytes((channel,)) for channel in Channel}


class VoiceConn:
    def __init__(self, engine: Engine, call_id: str,
                 clock: Callable[[], float] = time.monotonic, token_id: bytes = b"",
                 source: str = "") -> None:
        self.engine = engine
        self.call_id = call_id
        self.token_id = token_id  # which voice token opened it (a digest, not the token)
        self.source = source      # and from which address
        self._conn: WsConnection | None = None
        self._clock = clock
        self._bucket = TokenBucket(COMMANDS_PER_SECOND, 2 * COMMANDS_PER_SECOND, clock())
        self._errors = 0

    # ── AgentLink (the engine's port) ───────────────────────────────────────
    def send_audio(self, channel: Channel, pcm: bytes) -> None:
        if self._conn is not None:
            self._conn.send_binary(_CHANNEL_BYTE[channel] + pcm)

    def request_audio(self, nbytes: int, frame_bytes: int) -> None:
        self.send_text(vp.build_buffer_request(nbytes, frame_bytes, 0))

    def call_event(self, event: AgentEvent) -> None:
        self.send_text(vp.build_call_event(event.value))

    def call_error(self, code: str, message: str) -> None:
        self.send_text(vp.build_call_event(vp.CALL_ERROR, error_code=code, error_message=message))

    def dtmf(self, channel: Channel, digit: str, duration_ms: int) -> None:
        self.send_text(vp.build_call_event(vp.CALL_DTMF, digit=digit, duration_ms=duration_ms,
                                           channel=int(channel)))

    def quality_event(self, event: QualityEvent) -> None:
        """Optional on the AgentLink port: a quality alert's edge (``call.quality``)."""
        self.send_text(vp.build_call_event(
            vp.CALL_QUALITY, leg=event.leg, kind=event.kind, state=event.state,
            value=event.value, threshold=event.threshold, at_s=event.at_s))

    def playout_position(self, played_bytes: int, played_ms: int, reason: str) -> None:
        self.send_text(vp.build_playout_position(played_bytes, played_ms, reason))

    def command_done(self, command_id: str, result: dict[str, Any]) -> None:
        self.send_text(vp.build_command_response(command_id, result))

    def command_failed(self, command_id: str, code: str, message: str) -> None:
        self._errors += 1
        self.send_text(vp.build_command_error(command_id, code, message))

    def close(self, why: LinkClose | None = None, code: int = 1000) -> None:
        if self._conn is not None:
            reason = why.value if why is not None else ""
            self._conn.close(4001 if why is LinkClose.SUPERSEDED else code, reason)

    def send_text(self, text: str) -> None:
        if self._conn is not None:
            self._conn.send_text(text)

    # ── WsHandler ────────────────────────────────────────────────────────────
    def on_open(self, conn: WsConnection) -> None:
        self._conn = conn
        logger.info("voice connection open for call %s", self.call_id)
        try:
            self.engine.agent_attach(self.call_id, self)
        except EngineError as exc:  # the call ended between the upgrade and now
            self.send_text(vp.build_error(exc.code, exc.message))
            conn.close(1000, exc.message)

    def on_close(self, code: int | None, reason: str) -> None:
        logger.info("voice connection for call %s closed (%s %s)", self.call_id, code, reason)
        self.engine.agent_detach(self)
        self._conn = None

    def on_text(self, text: str) -> None:
        if not self._bucket.take(self._clock()):
            if self._conn is not None:
                self._conn.close(1008, "too many commands: slow down")
            return
        try:
            command = vp.parse_client_text(text)
            ring_s = float(vp.ring_time_s(command)) if command.name == "call.connect" else 0.0
            digits = vp.dtmf_digits(command) if command.name == "call.dtmf" else ""
        except perr.ProtocolError as exc:
            self._fail(exc.request_id, exc.code, exc.message)
            return
        self.engine.command(self, AgentCommand(command.command_id, command.name,
                                               command.timeout_ms / 1000, ring_s, digits))

    def on_binary(self, data: bytes) -> None:
        try:
            channel, pcm = vp.split_audio(data)
        except perr.ProtocolError as exc:
            self._fail(None, "INVALID_AUDIO", exc.message)
            return
        if channel != 0:
            self._fail(None, "INVALID_AUDIO", f"agent audio goes on channel 0, not {channel}")
            return
        try:
            self.engine.agent_audio(self, pcm)
        except EngineError as exc:
            self._fail(None, exc.code, exc.message)

    def _fail(self, command_id: str | None, code: str, message: str) -> None:
        self._errors += 1
        if command_id:
            self.send_text(vp.build_command_error(command_id, code, message))
        elif self._errors <= MAX_ERRORS:
            self.send_text(vp.build_error(code, message))
        if self._errors > MAX_ERRORS and command_id is None and self._conn is not None:
            self._conn.close(1008, "too many invalid frames")
