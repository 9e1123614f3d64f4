"""Ingress adapter for the simulated phone network (``/v1/phone``).

One :class:`PhoneConn` per connected phone. A caller dials once, then
streams audio in its codec; it is a :class:`~telcoflow.server.links.PhoneLink`
for the engine, like the SIP or Twilio adapters will be. A subscriber line
registers a number instead and is a :class:`~telcoflow.server.links.LineLink`:
the engine offers it calls (``call.connect``) and it answers or rejects them.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..audio.mixer import CALLEE
from ..protocol import errors as perr
from ..protocol import phone as pp
from ..server.errors import GatewayError
from ..server.limits import TokenBucket
from ..server.netio import WsConnection

if TYPE_CHECKING:
    from ..server.calls import Call
    from ..server.engine import Engine

logger = logging.getLogger(__name__)

AUDIO_BURST_S = 1.0   # a phone may run this far ahead of real time
AUDIO_RATE_X = 1.5    # and sustain this multiple of real time


class PhoneConn:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.codec = "pcm16"
        self.sample_rate = 8000
        self.call: Call | None = None
        self.number = ""  # set when this is a registered subscriber line
        self._conn: WsConnection | None = None
        self._audio_bucket: TokenBucket | None = None
        self._ended = False
        self.audio_dropped = 0

    # ── PhoneLink ─────────────────────────────────────────────────────────
    def send_text(self, text: str) -> None:
        if self._conn is not None:
            self._conn.send_text(text)

    def send_audio(self, payload: bytes) -> None:
        if self._conn is not None:
            self._conn.send_binary(payload)

    # ── LineLink ──────────────────────────────────────────────────────────
    def offer(self, call_id: str, caller: str, ring_s: float) -> None:
        self.send_text(pp.build_incoming(call_id, caller, ring_s))

    def release(self, reason: str, message: str, call_id: str) -> None:
        """This line's part in a call is over; the line stays registered."""
        self.send_text(pp.build_hangup(reason, message, call_id))

    def end(self, reason: str, message: str) -> None:
        """The network ends this leg: tell the phone why, then hang up the line."""
        if self._ended:
            return
        self._ended = True
        self.send_text(pp.build_hangup(reason, message))
        if self._conn is not None:
            self._conn.close(1000, reason)

    # ── WsHandler ─────────────────────────────────────────────────────────
    def on_open(self, conn: WsConnection) -> None:
        self._conn = conn

    def on_close(self, code: int | None, reason: str) -> None:
        self._conn = None
        self._ended = True
        if self.number:
            self.engine.control.unregister(self)
        elif self.call is not None:
            self.engine.phone_hung_up(self.call)

    def on_text(self, text: str) -> None:
        try:
            frame = pp.parse_phone_text(text)
        except perr.ProtocolError as exc:
            self.send_text(pp.build_error(exc.code, exc.message))
            return
        if self.number:
            self._on_line_text(frame)
            return
        if isinstance(frame, pp.Register) and self.call is None and not self._ended:
            self._register(frame)
            return
        if isinstance(frame, (pp.Answer, pp.Reject, pp.Register)):
            self.send_text(pp.build_error("INVALID_STATE", f"'{type(frame).__name__.lower()}' "
                                          "is for a registered subscriber line"))
            return
        if isinstance(frame, pp.Hangup):
            if self.call is not None:
                self.engine.phone_hung_up(self.call)
            self._ended = True
            if self._conn is not None:
                self._conn.close(1000, "caller hung up")
            return
        if self.call is not None or self._ended:
            self.send_text(pp.build_error("INVALID_STATE", "this line has already dialled"))
            return
        self._set_format(frame.codec, frame.sample_rate)
        self.call = self.engine.place_call(self, frame)

    def _set_format(self, codec: str, sample_rate: int) -> None:
        self.codec, self.sample_rate = codec, sample_rate
        bytes_per_s = pp.bytes_per_frame(codec, sample_rate) * 50
        self._audio_bucket = TokenBucket(bytes_per_s * AUDIO_RATE_X, bytes_per_s * AUDIO_BURST_S,
                                         time.monotonic())

    # ── subscriber line ───────────────────────────────────────────────────
    def _register(self, frame: pp.Register) -> None:
        self.number = frame.number
        try:
            self.engine.control.register(self)
        except GatewayError as exc:
            self.number = ""
            self.send_text(pp.build_error(exc.code, exc.message))
            return
        self._set_format(frame.codec, frame.sample_rate)
        self.send_text(pp.build_registered(frame.number))

    def _on_line_text(self, frame: pp.PhoneFrame) -> None:
        control = self.engine.control
        try:
            if isinstance(frame, pp.Answer):
                control.line_answered(self)
            elif isinstance(frame, pp.Reject):
                control.line_rejected(self)
            elif isinstance(frame, pp.Hangup):
                control.line_left(self)
            else:
                raise GatewayError("this line is registered already", "INVALID_STATE")
        except GatewayError as exc:
            self.send_text(pp.build_error(exc.code, exc.message))

    def on_binary(self, data: bytes) -> None:
        call, bucket = self.call, self._audio_bucket
        if call is None or bucket is None:
            if not self.number:
                self.send_text(pp.build_error("INVALID_STATE", "dial before sending audio"))
            return
        sample_bytes = 2 if self.codec == "pcm16" else 1
        if len(data) % sample_bytes:
            self.send_text(pp.build_error("INVALID_AUDIO", "pcm16 audio needs an even byte count"))
            return
        if not bucket.take(time.monotonic(), len(data)):
            self.audio_dropped += len(data)
            return
        if not self.number:
            call.on_phone_audio(data)
        elif call.bridge is not None and call.bridge.callee is self:
            call.bridge.push(CALLEE, data)
