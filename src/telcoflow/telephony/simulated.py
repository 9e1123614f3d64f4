"""The simulated phone network (``/v1/phone``): an adapter on the engine's ports.

A connection either *dials* once (a caller: its :class:`CallerLeg` is an
inbound call's leg) or *registers* a number (a subscriber line). The network
is a :class:`~telcoflow.engine.ports.Dialler` for registered numbers: when
the engine dials one, the line is offered the call and a :class:`LineLeg`
carries it. Everything a phone says goes to the engine, and the engine's
meanings (ringing, answered, ended with a reason) become the frames of
:mod:`telcoflow.protocol.phone`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..audio.codec import encode
from ..coded_error import CodedError
from ..engine import Engine
from ..engine.ports import (
    AudioFormat,
    DialError,
    DialFailure,
    EndReason,
    MediaError,
    MessageOutcome,
    OutboundMessage,
    PlaysOnArrival,
)
from ..protocol import errors as perr
from ..protocol import phone as pp
from ..server.app import Gateway
from ..server.limits import TokenBucket
from ..server.netio import HttpRequest, WsAccept, WsConnection
from .errors import NumberInUse, TelephonyError
from .line_states import LINE, Line, LineEvent

logger = logging.getLogger(__name__)

SENT_REMEMBERED = 10_000  # agents' message ids a line may still mark read
AUDIO_BURST_S = 1.0   # a phone may run this far ahead of real time
AUDIO_RATE_X = 1.5    # and sustain this multiple of real time
TEXT_PER_S = 50       # control frames a phone may send, sustained (a burst of twice that)
MAX_ERRORS = 50       # refused frames (text or audio) before the connection is closed

_ENDED = Line.ENDED  # checked on every audio frame; an enum lookup costs ~60 ns (3.11)
# the wire's hang-up reasons, per engine reason
_REASON = {reason: getattr(pp, reason.name) for reason in EndReason}


class SimulatedNetwork:
    """The numbers registered by subscriber lines; dials them for the engine, and carries
    WA messages between them and the connectors' numbers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lines: dict[str, PhoneConn] = {}
        self._sent: OrderedDict[str, str] = OrderedDict()  # message id → business number

    def register(self, number: str, conn: PhoneConn) -> None:
        current = self.lines.get(number)
        if current is not None and current is not conn:
            raise NumberInUse(f"the number {number} already has a registered line")
        self.lines[number] = conn

    def unregister(self, number: str, conn: PhoneConn) -> None:
        if self.lines.get(number) is conn:
            del self.lines[number]

    # ── Dialler ──────────────────────────────────────────────────────────────
    def reaches(self, number: str) -> bool:
        return number in self.lines

    def dial(self, call_id: str, number: str, caller: str, ring_s: float) -> LineLeg:
        conn = self.lines.get(number)
        if conn is None:
            raise DialError(DialFailure.UNREACHABLE, f"the subscriber of {number} is "
                            "unreachable: no line is registered for it")
        if conn.leg is not None:
            raise DialError(DialFailure.BUSY, f"the line of {number} is busy")
        conn.leg = LineLeg(conn, call_id)
        conn.send_text(pp.build_incoming(call_id, caller, ring_s))
        return conn.leg


    # ── MessageNetwork ───────────────────────────────────────────────────────
    def serves(self, local: str, remote: str) -> bool:
        return remote in self.lines

    def send_message(self, message: OutboundMessage,
                     done: Callable[[MessageOutcome], None]) -> None:
        conn = self.lines.get(message.remote)
        if conn is None:
            done(MessageOutcome(False, code="REMOTE_ERROR",
                                message=f"{message.remote} has no registered line now"))
            return
        message_id = f"sim.{uuid.uuid4().hex}"
        conn.send_text(pp.build_message(message.local, message_id, message.data))
        self._remember(message_id, message.local)
        done(MessageOutcome(True, {"messages": [{"id": message_id}],
                                   "contacts": [{"input": message.remote,
                                                 "wa_id": message.remote}]}))
        # after the answer, as a carrier's receipt comes after its acceptance
        asyncio.get_running_loop().call_soon(self.status, message_id, message.remote,
                                             "delivered")

    def status(self, message_id: str, recipient: str, status: str) -> None:
        """A receipt for an agent's message, to the agent (statuses in the Cloud API's
        shape, as every network reports them)."""
        local = self._sent.get(message_id)
        if local is not None:
            self.engine.messaging.status_in(local, recipient, status_content(
                message_id, status, recipient, int(self.engine.clock.wall())))

    def _remember(self, message_id: str, local: str) -> None:
        self._sent[message_id] = local
        while len(self._sent) > SENT_REMEMBERED:
            self._sent.popitem(last=False)


def status_content(message_id: str, status: str, recipient: str, when: int) -> dict[str, Any]:
    return {"type": "status", "id": message_id, "status": status, "timestamp": str(when),
            "recipient": recipient}


class CallerLeg(PlaysOnArrival):
    """The leg of a caller that dialled in."""

    network = "simulated"  # Leg.network

    def __init__(self, conn: PhoneConn) -> None:
        self.conn = conn

    @property
    def format(self) -> AudioFormat:
        return self.conn.format

    def ringing(self, call_id: str) -> None:
        self.conn.send_text(pp.build_ringing(call_id))

    def answered(self, call_id: str) -> None:
        self.conn.send_text(pp.build_answered(call_id))

    def ended(self, reason: EndReason, message: str) -> None:
        """The network ends the call: tell the phone why, then hang up the line."""
        self.conn.hang_up(_REASON[reason], message)

    def send_audio(self, frame: bytes | None) -> None:
        self.conn.send_audio(frame)

    def send_dtmf(self, digits: str) -> None:
        self.conn.send_text(pp.build_dtmf_played(digits))


class LineLeg(PlaysOnArrival):
    """One call offered to a registered line; the line stays when the call is over."""

    network = "simulated"  # Leg.network

    def __init__(self, conn: PhoneConn, call_id: str) -> None:
        self.conn = conn
        self.call_id = call_id

    @property
    def format(self) -> AudioFormat:
        return self.conn.format

    def ringing(self, call_id: str) -> None:
        pass  # the line was offered the call when it was dialled

    def answered(self, call_id: str) -> None:
        self.conn.send_text(pp.build_answered(call_id))

    def ended(self, reason: EndReason, message: str) -> None:
        if self.conn.leg is self:
            self.conn.leg = None
        self.conn.send_text(pp.build_hangup(_REASON[reason], message, self.call_id))

    def send_audio(self, frame: bytes | None) -> None:
        self.conn.send_audio(frame)

    def send_dtmf(self, digits: str) -> None:
        self.conn.send_text(pp.build_dtmf_played(digits))


class PhoneConn:
    """One phone's WebSocket: a caller or a subscriber line."""

    def __init__(self, network: SimulatedNetwork,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.network = network
        self.engine = network.engine
        self.state = Line.IDLE
        self.format = AudioFormat("pcm16", 8000)
        self.number = ""                  # set when this is a registered subscriber line
        self.caller_leg: CallerLeg | None = None
        self.leg: LineLeg | None = None   # the call this line is offered or is in
        self.audio_dropped = 0
        self._conn: WsConnection | None = None
        self._clock = clock
        self._audio_bucket: TokenBucket | None = None
        self._text_bucket = TokenBucket(TEXT_PER_S, 2 * TEXT_PER_S, clock())
        self._errors = 0
        self._silence = b""
        self._sample_bytes = 2

    # ── what the legs send ───────────────────────────────────────────────────
    def send_text(self, text: str) -> None:
        if self._conn is not None:
            self._conn.send_text(text)

    def send_audio(self, frame: bytes | None) -> None:
        if self._conn is not None:
            self._conn.send_binary(self._silence if frame is None else frame)

    def hang_up(self, reason: str, message: str) -> None:
        if self.state is Line.ENDED:
            return
        self.state = Line.ENDED
        self.send_text(pp.build_hangup(reason, message))
        if self._conn is not None:
            self._conn.close(1000, reason)

    # ── WsHandler ────────────────────────────────────────────────────────────
    def on_open(self, conn: WsConnection) -> None:
        self._conn = conn

    def on_close(self, code: int | None, reason: str) -> None:
        self._conn = None
        if self.number:
            self.network.unregister(self.number, self)
            if self.leg is not None:
                self.engine.leg_hung_up(self.leg)
        elif self.caller_leg is not None and self.state is not Line.ENDED:
            self.state = Line.ENDED
            self.engine.leg_hung_up(self.caller_leg)
        self.state = Line.ENDED

    def on_text(self, text: str) -> None:
        if not self._text_bucket.take(self._clock()):
            self._close_flood("too many frames: slow down")
            return
        try:
            frame = pp.parse_phone_text(text)
            self._handle(frame)
        except (perr.ProtocolError, CodedError) as exc:
            self._refused(exc.code, exc.message)

    def _refused(self, code: str, message: str) -> None:
        """An error answered; past ``MAX_ERRORS`` the phone is closed, whatever it sends."""
        self._errors += 1
        if self._errors <= MAX_ERRORS:
            self.send_text(pp.build_error(code, message))
        else:
            self._close_flood("too many invalid frames")

    def _close_flood(self, reason: str) -> None:
        if self._conn is not None:
            self._conn.close(1008, reason)

    def on_binary(self, data: bytes) -> None:
        leg = self.leg if self.number else self.caller_leg
        bucket = self._audio_bucket
        if leg is None or bucket is None or self.state is _ENDED:
            self._audio_refused()
            return
        if len(data) % self._sample_bytes:
            message = "pcm16 audio needs an even byte count"
            self._refused("INVALID_AUDIO", message)
            self.engine.leg_media_error(leg, MediaError.CALLER_AUDIO_INVALID,
                                        f"the caller sent audio that cannot be decoded ({message})"
                                        "; it was dropped")
            return
        if not bucket.take(self._clock(), len(data)):
            self.audio_dropped += len(data)
            return
        self.engine.leg_audio(leg, data)

    def _audio_refused(self) -> None:
        """Audio with no call to go to: the line's table says whether that is an error."""
        try:
            self.state = LINE.step(self.state, LineEvent.AUDIO)
        except TelephonyError as exc:
            self._refused(exc.code, exc.message)

    # ── frames ───────────────────────────────────────────────────────────────
    def _handle(self, frame: pp.PhoneFrame) -> None:
        if isinstance(frame, pp.SendMessage | pp.Read):
            self._message_frame(frame)
            return
        event = _EVENTS[type(frame)]
        state = LINE.step(self.state, event)
        if isinstance(frame, pp.Dial):
            self.state = state
            self._set_format(frame.codec, frame.sample_rate)
            self.caller_leg = CallerLeg(self)
            self.engine.inbound_call(self.caller_leg, frame.to, frame.caller)
        elif isinstance(frame, pp.Register):
            self.network.register(frame.number, self)
            self.state, self.number = state, frame.number
            self._set_format(frame.codec, frame.sample_rate)
            self.send_text(pp.build_registered(frame.number))
        elif isinstance(frame, pp.Dtmf):
            self.state = state
            leg = self.leg if self.number else self.caller_leg
            if leg is not None:
                self.engine.leg_dtmf(leg, frame.digit, frame.duration_ms)
        elif self.number:
            self._line_frame(event)
        else:  # a caller hangs up
            self.state = state
            if self.caller_leg is not None:
                self.engine.leg_hung_up(self.caller_leg)
            if self._conn is not None:
                self._conn.close(1000, "caller hung up")

    def _message_frame(self, frame: pp.SendMessage | pp.Read) -> None:
        if not self.number:
            raise TelephonyError("messages come from a registered line: register a number "
                                 "first", "INVALID_STATE")
        if isinstance(frame, pp.Read):
            self.network.status(frame.message_id, self.number, "read")
            return
        content = {"id": f"sim.{uuid.uuid4().hex}",
                   "timestamp": str(int(self.engine.clock.wall())), **frame.content}
        outcome = self.engine.messaging.message_in(frame.to, self.number, content)
        if not outcome.ok:
            raise TelephonyError(outcome.message, outcome.code or "REFUSED")
        self.send_text(pp.build_message_accepted(frame.to))

    def _line_frame(self, event: LineEvent) -> None:
        leg = self.leg
        if leg is None:
            if event is LineEvent.HANGUP:
                return  # an idle line hanging up: nothing to end
            raise TelephonyError("there is no call ringing on this line", "INVALID_STATE")
        if event is LineEvent.ANSWER:
            self.engine.leg_answered(leg)
        elif event is LineEvent.REJECT:
            self.engine.leg_failed(leg, DialFailure.REJECTED, f"{self.number} declined the call")
        else:
            self.leg = None
            self.engine.leg_hung_up(leg)

    def _set_format(self, codec: str, sample_rate: int) -> None:
        self.format = AudioFormat(codec, sample_rate)
        self._sample_bytes = 2 if codec == "pcm16" else 1
        self._silence = encode(codec, bytes(sample_rate // 50 * 2))
        bytes_per_s = self.format.frame_bytes * 50
        self._audio_bucket = TokenBucket(bytes_per_s * AUDIO_RATE_X, bytes_per_s * AUDIO_BURST_S,
                                         self._clock())


_EVENTS: dict[type, LineEvent] = {
    pp.Dial: LineEvent.DIAL, pp.Register: LineEvent.REGISTER, pp.Answer: LineEvent.ANSWER,
    pp.Reject: LineEvent.REJECT, pp.Hangup: LineEvent.HANGUP, pp.Dtmf: LineEvent.DTMF}


def install(gateway: Gateway) -> SimulatedNetwork:
    """Route ``/v1/phone`` (phone-network keys) and dial registered numbers."""
    network = SimulatedNetwork(gateway.engine)
    gateway.engine.add_dialler(network)
    gateway.engine.messaging.add_network(network, fallback=True)

    def accept(request: HttpRequest) -> WsAccept:
        gateway.auth.check_phone(request.headers)
        return WsAccept(PhoneConn(network), 1 << 16)

    gateway.add_ws_route(pp.PHONE_PATH, accept)
    return network
