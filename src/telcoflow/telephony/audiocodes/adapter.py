"""AudioCodes VoiceAI Connect as a call ingress: the engine's Leg over VAIC's Bot API.

One :class:`VaicConn` per WebSocket VAIC opens; one :class:`VaicLeg` per
conversation (it outlives a socket: ``session.resume`` re-binds it to a new
one). :class:`AudioCodesIngress` knows the live conversations and runs the
adapter's timers on the engine's timer (:class:`~telcoflow.engine.ports.Timed`):
the resume grace after a socket drop, and the grace after our hang-up.

When VAIC hears what (see docs/audiocodes.md):

- ``session.initiate`` → the engine's ``inbound_call``. ``session.accepted``
  goes out when an agent *answers* (``Leg.answered``), so VAIC connects only a
  call an agent took; ended before that → ``session.error`` with the engine's
  sentence, and the socket closes.
- agent audio: one ``playStream.chunk`` per media tick (paced by the gateway's
  clock) inside a ``playStream.start``/``stop`` pair; the stream stops after
  :data:`STOP_AFTER_TICKS` ticks without agent audio, and at once on an
  interrupt (``clear_audio``); the next audio opens a new ``streamId``.
"""

from __future__ import annotations

import hmac
import logging
from collections import Counter
from collections.abc import Callable

from ...engine import Engine
from ...engine.ports import AudioFormat, EndReason, PlaysOnArrival
from ...protocol import audiocodes as ac
from ...protocol.errors import VaicMessageError
from ...server.config import AudioCodesConfig
from ...server.errors import AuthError
from ...server.limits import TokenBucket
from ...server.netio import HttpRequest, WsAccept, WsConnection

logger = logging.getLogger(__name__)

STOP_AFTER_TICKS = 3       # a play stream ends after 60 ms without agent audio
HANGUP_GRACE_S = 2.0       # after our hang-up, VAIC has this long to send session.end
AUDIO_BURST_S = 1.0        # VAIC may run this far ahead of real time
AUDIO_RATE_X = 1.5         # and sustain this multiple of real time
MESSAGES_PER_S = 200.0     # any message; a 20 ms chunking needs 50
MESSAGE_BURST = 400.0
MAX_BAD_MESSAGES = 50      # refused messages before the socket is closed (1008)
_CODEC = {"pcm16": "pcm16", "pcmu": "pcmu"}


class VaicLeg(PlaysOnArrival):  # chunks go out at playback speed, as VAIC expects
    """One VAIC conversation's leg in a call."""

    network = "audiocodes"  # Leg.network

    def __init__(self, ingress: AudioCodesIngress, cid: str, fmt: ac.MediaFormat,
                 conn: VaicConn) -> None:
        self.ingress = ingress
        self.cid = cid
        self.media = fmt
        self.format = AudioFormat(_CODEC[fmt.codec], fmt.rate)
        self.conn: VaicConn | None = conn
        self.call_id: str | None = None
        self.answered_yet = False
        self.ended_yet = False
        self.start_params: dict[str, object] = {}
        self.stream_id: str | None = None   # the open play stream
        self.streams = 0
        self.stream_bytes = 0               # bytes sent on the open (or last) stream
        self._idle_ticks = 0
        self.frames_dropped = 0             # agent audio with no socket (during a resume grace)

    @property
    def played_ms(self) -> float:
        """How far VAIC has got into the current (or last) play stream, in ms: the bytes
        sent on it ÷ bytes per ms. Chunks go out paced in real time, so this is the played
        position within a tick (the AI bridges truncate the model's reply with it)."""
        return self.stream_bytes / self.media.bytes_per_ms

    def _send(self, text: str) -> None:
        if self.conn is not None:
            self.conn.send_text(text)

    # ── Leg ──────────────────────────────────────────────────────────────────
    def ringing(self, call_id: str) -> None:
        self.call_id = call_id  # VAIC has no ringing: it waits for session.accepted

    def answered(self, call_id: str) -> None:
        self.answered_yet = True
        self._send(ac.build_session_accepted(self.cid, self.media))

    def ended(self, reason: EndReason, message: str) -> None:
        if self.ended_yet:
            return
        self.ended_yet = True
        conn = self.conn
        if conn is None:  # dropped, waiting for a resume: nobody to tell
            self.ingress.forget(self)
            return
        if not self.answered_yet:
            conn.send_text(ac.build_session_error(self.cid, message))
            conn.close(1000, "session declined")
            self.ingress.forget(self)
            return
        self.clear_audio()
        conn.send_text(ac.build_hangup(self.cid, message))
        self.ingress.close_later(conn)  # until VAIC's session.end, or the grace ends

    def send_audio(self, frame: bytes | None) -> None:
        if frame is None:
            if self.stream_id is not None:
                self._idle_ticks += 1
                if self._idle_ticks >= STOP_AFTER_TICKS:
                    self.clear_audio()
            return
        conn = self.conn
        if conn is None:
            self.frames_dropped += 1
            return
        self._idle_ticks = 0
        if self.stream_id is None:
            self.streams += 1
            self.stream_id = str(self.streams)
            self.stream_bytes = 0
            conn.send_text(ac.build_play_stream_start(self.cid, self.stream_id, self.media))
        self.stream_bytes += len(frame)
        conn.send_text(ac.build_play_stream_chunk(self.cid, self.stream_id, frame))

    def send_dtmf(self, digits: str) -> None:
        self._send(ac.build_send_dtmf(self.cid, digits))

    def transfer(self, number: str) -> bool:
        """``call.connect`` to a number no network of ours reaches: VAIC transfers the
        caller there and then ends the session (the caller's hang-up, to the engine)."""
        if self.conn is None:
            return False  # the socket is down, waiting for session.resume
        self._send(ac.build_transfer(self.cid, number))
        return True

    def clear_audio(self) -> None:
        """Stop the play stream now: VAIC drops what it has not played of it."""
        if self.stream_id is not None:
            self._send(ac.build_play_stream_stop(self.cid, self.stream_id))
            self.stream_id = None
            self._idle_ticks = 0

    def detach(self) -> None:
        """The socket went: the play stream died with it."""
        self.conn = None
        self.stream_id = None
        self._idle_ticks = 0


class VaicConn:
    """One WebSocket from VAIC (a WsHandler)."""

    def __init__(self, ingress: AudioCodesIngress) -> None:
        self.ingress = ingress
        self.engine = ingress.engine
        self.leg: VaicLeg | None = None
        self.streaming = False
        self.bad_messages = 0
        self._ws: WsConnection | None = None
        self._closing = False
        now = ingress.clock()
        self._messages = TokenBucket(MESSAGES_PER_S, MESSAGE_BURST, now)
        self._audio: TokenBucket | None = None

    def send_text(self, text: str) -> None:
        if self._ws is not None:
            self._ws.send_text(text)

    def close(self, code: int, reason: str) -> None:
        self._closing = True
        if self._ws is not None:
            self._ws.close(code, reason)

    # ── WsHandler ────────────────────────────────────────────────────────────
    def on_open(self, conn: WsConnection) -> None:
        self._ws = conn

    def on_close(self, code: int | None, reason: str) -> None:
        self._ws = None
        self.ingress.closed(self)
        leg, self.leg = self.leg, None
        if leg is None or leg.conn is not self:
            return
        leg.detach()
        if leg.ended_yet:
            self.ingress.forget(leg)
        elif self._closing:  # we closed it (a policy violation): the call is over
            self.ingress.hang_up(leg)
        else:  # a drop without session.end: VAIC may resume within the grace
            self.ingress.start_grace(leg)

    def on_binary(self, data: bytes) -> None:
        self._refuse(VaicMessageError("VAIC sends JSON text messages only; a binary message "
                                      "was dropped", "BINARY_MESSAGE"))

    def on_text(self, text: str) -> None:
        if not self._messages.take(self.ingress.clock()):
            self.ingress.rejected["MESSAGE_FLOOD"] += 1
            return
        leg = self.leg
        try:
            msg = ac.parse_vaic_text(text, leg.media if leg is not None else None)
            self._handle(msg)
        except VaicMessageError as exc:
            self._refuse(exc)

    def _refuse(self, exc: VaicMessageError) -> None:
        """A message we cannot use: counted, logged (never its audio), and dropped."""
        self.ingress.rejected[exc.code] += 1
        self.bad_messages += 1
        cid = self.leg.cid if self.leg is not None else "-"
        logger.warning("audiocodes %s: refused a message: %s (%s)", cid, exc.message, exc.code)
        if self.leg is None and exc.code != "UNKNOWN_TYPE":
            # no conversation to keep alive: say why and go
            self.close(1008, f"{exc.code}: {exc.message}"[:120])
        elif self.bad_messages > MAX_BAD_MESSAGES:
            self.close(1008, f"too many invalid messages; the last: {exc.code}")

    # ── messages ─────────────────────────────────────────────────────────────
    def _handle(self, msg: ac.VaicMessage) -> None:
        if isinstance(msg, ac.ConnectionValidate):
            self.send_text(ac.build_connection_validated(msg.conversation_id))
            return
        leg = self.leg
        if isinstance(msg, ac.SessionInitiate | ac.SessionResume):
            if leg is not None:
                raise VaicMessageError(f"this socket already carries conversation {leg.cid}",
                                       "SESSION_EXISTS")
            if isinstance(msg, ac.SessionInitiate):
                self._initiate(msg)
            else:
                self._resume(msg)
            return
        if leg is None:
            raise VaicMessageError(f"{_name(msg)} before session.initiate", "NO_SESSION")
        if msg.conversation_id != leg.cid:
            raise VaicMessageError(f"{_name(msg)} for conversation {msg.conversation_id[:64]}, "
                                   f"not this socket's {leg.cid}", "WRONG_CONVERSATION")
        if isinstance(msg, ac.UserStreamChunk):
            self._audio_in(leg, msg.audio)
        elif isinstance(msg, ac.UserStreamStart):
            self.streaming = True
            self.send_text(ac.build_user_stream_started(leg.cid))
        elif isinstance(msg, ac.UserStreamStop):
            self.streaming = False
            self.send_text(ac.build_user_stream_stopped(leg.cid))
        elif isinstance(msg, ac.Activities):
            self._activities(leg, msg.activities)
        elif isinstance(msg, ac.SessionEnd):
            logger.info("audiocodes %s: session.end (%s %s)", leg.cid, msg.reason_code,
                        msg.reason)
            self.leg = None
            leg.detach()
            self.ingress.hang_up(leg)
            self.close(1000, "session ended")

    def _audio_in(self, leg: VaicLeg, audio: bytes) -> None:
        if not self.streaming:
            raise VaicMessageError("userStream.chunk before userStream.start", "CHUNK_BEFORE_START")
        bucket = self._audio
        if bucket is None:
            bps = leg.media.frame_bytes * 50
            bucket = self._audio = TokenBucket(bps * AUDIO_RATE_X, bps * AUDIO_BURST_S,
                                               self.ingress.clock())
        if not bucket.take(self.ingress.clock(), len(audio)):
            self.ingress.rejected["AUDIO_FLOOD"] += 1
            return
        if not leg.ended_yet:
            self.engine.leg_audio(leg, audio)

    def _activities(self, leg: VaicLeg, activities: tuple[ac.Activity, ...]) -> None:
        for activity in activities:
            if activity.name == "dtmf" and isinstance(activity.value, str):
                for digit in activity.value:
                    self.engine.leg_dtmf(leg, digit, 100)
            elif activity.name == "hangup":
                logger.info("audiocodes %s: VAIC hung up (%s)", leg.cid,
                            activity.parameters.get("hangupReason", ""))
                self.ingress.hang_up(leg)
            elif activity.name == "start":
                leg.start_params = dict(activity.parameters)
                logger.debug("audiocodes %s: start %s", leg.cid, activity.parameters)
            else:
                logger.debug("audiocodes %s: activity %s/%s ignored", leg.cid, activity.type,
                             activity.name)

    def _initiate(self, msg: ac.SessionInitiate) -> None:
        cid = msg.conversation_id
        refusal = None
        fmt = ac.choose_format(msg.formats)
        number = self.ingress.number_for(msg.bot_name)
        if cid in self.ingress.conversations:
            refusal = f"conversation {cid} already exists"
        elif fmt is None:
            refusal = (f"none of the offered media formats ({', '.join(msg.formats)[:200]}) is "
                       f"supported; this bot takes {', '.join(ac.PREFERENCE)}")
        elif number is None:
            refusal = f"no number for bot '{msg.bot_name}'"
        if refusal is not None or fmt is None or number is None:
            logger.info("audiocodes %s: session refused: %s", cid, refusal)
            self.ingress.rejected["SESSION_REFUSED"] += 1
            self.send_text(ac.build_session_error(cid, refusal or "refused"))
            self.close(1000, "session refused")
            return
        leg = self.leg = VaicLeg(self.ingress, cid, fmt, self)
        self.ingress.conversations[cid] = leg
        logger.info("audiocodes %s: call from %s for bot '%s' → %s in %s", cid, msg.caller,
                    msg.bot_name, number, fmt.name)
        self.engine.inbound_call(leg, number, msg.caller)

    def _resume(self, msg: ac.SessionResume) -> None:
        leg = self.ingress.conversations.get(msg.conversation_id)
        if leg is None or leg.ended_yet:
            self.ingress.rejected["RESUME_UNKNOWN"] += 1
            self.send_text(ac.build_session_error(msg.conversation_id, "conversation not found"))
            self.close(1000, "conversation not found")
            return
        old = leg.conn
        if old is not None and old is not self:  # VAIC is back before we saw the drop
            old.leg = None
            old.close(1000, "superseded by session.resume")
        self.ingress.cancel_grace(leg)
        leg.detach()
        leg.conn, self.leg = self, leg
        logger.info("audiocodes %s: resumed on a new socket", leg.cid)
        if leg.answered_yet:
            self.send_text(ac.build_session_accepted(leg.cid))
        # still ringing: session.accepted (with its format) goes out on the answer


def _name(msg: ac.VaicMessage) -> str:
    return {ac.UserStreamStart: "userStream.start", ac.UserStreamChunk: "userStream.chunk",
            ac.UserStreamStop: "userStream.stop", ac.Activities: "activities",
            ac.SessionEnd: "session.end"}.get(type(msg), type(msg).__name__)


class AudioCodesIngress:
    """The live conversations, and the adapter's timers (a :class:`Timed`)."""

    def __init__(self, engine: Engine, config: AudioCodesConfig, resume_grace_s: float) -> None:
        self.engine = engine
        self.config = config
        self.resume_grace_s = resume_grace_s
        self.hangup_grace_s = HANGUP_GRACE_S
        self.clock: Callable[[], float] = engine.clock.now
        self.conversations: dict[str, VaicLeg] = {}
        self.rejected: Counter[str] = Counter()  # refused messages, per code (for tests/ops)
        self._grace: dict[VaicLeg, float] = {}   # dropped sockets: resume by then
        self._closing: dict[VaicConn, float] = {}  # our hang-up sent: close by then
        self._tokens = [t.encode() for t in config.tokens]

    # ── routing and auth ─────────────────────────────────────────────────────
    def accept(self, request: HttpRequest) -> WsAccept:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip().encode() if auth[:7].lower() == "bearer " else b""
        # compare against every token, constant-time, so timing says nothing of which matched
        ok = False
        for known in self._tokens:
            ok |= hmac.compare_digest(token, known)
        if not token or not ok:
            raise AuthError("missing or invalid bearer token for the AudioCodes endpoint")
        return WsAccept(VaicConn(self), ac.MAX_TEXT_BYTES)

    def number_for(self, bot_name: str) -> str | None:
        return self.config.bots.get(bot_name) or self.config.default_number

    # ── the conversations' lives ─────────────────────────────────────────────
    def hang_up(self, leg: VaicLeg) -> None:
        """VAIC's side left: the engine is told once."""
        self.forget(leg)
        if not leg.ended_yet:
            leg.ended_yet = True
            self.engine.leg_hung_up(leg)

    def forget(self, leg: VaicLeg) -> None:
        if self.conversations.get(leg.cid) is leg:
            del self.conversations[leg.cid]
        self._grace.pop(leg, None)

    def start_grace(self, leg: VaicLeg) -> None:
        logger.info("audiocodes %s: socket dropped; resumable for %g s", leg.cid,
                    self.resume_grace_s)
        self._grace[leg] = self.clock() + self.resume_grace_s
        self.engine.deadline_changed()

    def cancel_grace(self, leg: VaicLeg) -> None:
        self._grace.pop(leg, None)

    def close_later(self, conn: VaicConn) -> None:
        self._closing[conn] = self.clock() + self.hangup_grace_s
        self.engine.deadline_changed()

    def closed(self, conn: VaicConn) -> None:
        self._closing.pop(conn, None)

    # ── Timed ────────────────────────────────────────────────────────────────
    def next_deadline(self) -> float | None:
        if not self._grace and not self._closing:
            return None
        return min((*self._grace.values(), *self._closing.values()))

    def handle_timer(self, now: float) -> None:
        for leg in [leg for leg, due in self._grace.items() if due <= now]:
            logger.info("audiocodes %s: not resumed in %g s; the call ends", leg.cid,
                        self.resume_grace_s)
            self.hang_up(leg)
        for conn in [conn for conn, due in self._closing.items() if due <= now]:
            del self._closing[conn]
            conn.close(1000, "call ended")
