"""The ``/v1/twilio/media`` WebSocket: one Twilio Media Stream, one caller leg.

Twilio sends ``connected`` then ``start`` (its ``customParameters`` carry the
one-call token the voice webhook issued, and To / From); the leg then enters
the engine with ``inbound_call(leg, To, From)``. Caller audio (``media``,
base64 μ-law 8 kHz) goes to ``engine.leg_audio`` as it comes; keys
(``dtmf``) to ``engine.leg_dtmf``; ``stop`` or a lost socket hang the leg up.

Outbound, the gateway keeps the playout on its one media clock: each tick's
frame goes out as one 20 ms ``media`` frame followed by a ``mark`` (nothing
for a silent tick). Twilio echoes a mark once the audio queued before it has
played, so :class:`MarkLedger` knows exactly how many frames the caller has
heard (:attr:`TwilioLeg.played_frames`). On answer a ``mark`` named
``answered`` tells the far end the agent took the call. An interrupt sends
``clear`` at once; the marks it flushes come back but count as not played.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...engine import Engine
from ...engine.ports import AudioFormat, EndReason
from ...protocol import twilio as tw
from ...server.errors import AuthError
from ...server.limits import TokenBucket
from ...server.netio import WsConnection

if TYPE_CHECKING:
    from . import TwilioDoor

logger = logging.getLogger(__name__)

FORMAT = AudioFormat("pcmu", 8000)
# a mark after every 5th frame (and at each talkspurt's end): between echoes the
# position is interpolated (the far end plays what it holds back to back), so it
# stays within a frame; a mark per frame was exact but cost the gateway 25 % more
# per call (`telcoflow bench --via twilio`: 0.419 against 0.345 CPU-s per call-minute)
MARK_EVERY_FRAMES = 5
LEAD_FRAMES = 1              # frames Twilio gets ahead of the media clock (Leg.lead_frames)
FRAME_S = 0.02
ANSWERED_MARK = tw.ANSWERED_MARK
DTMF_DURATION_MS = 100       # Twilio does not say how long a key was held
AUDIO_BURST_S = 1.0          # the far end may run this far ahead of real time
AUDIO_RATE_X = 1.5           # and sustain this multiple of real time; more audio is dropped
START_WITHIN_S = 10.0        # the stream token comes in `start`: until then, nobody is known
FRAME_RATE = 200.0           # frames/s sustained (Twilio sends ~100: media + mark echoes)
FRAME_BURST = 400.0          # beyond the bucket the stream is closed as a flood
MAX_FLUSHED = 4096           # flushed mark names remembered until echoed

CLOSE_NORMAL, CLOSE_UNSUPPORTED, CLOSE_POLICY = 1000, 1003, 1008


def close_reason(text: str) -> str:
    """A WebSocket close reason: at most 123 bytes of UTF-8."""
    raw = text.encode()
    return text if len(raw) <= 123 else raw[:120].decode(errors="ignore") + "..."


class MarkLedger:
    """What the far end has played, from the marks we sent and it echoed (sans-I/O).

    Each mark closes a *segment*: the media frames sent since the previous mark.
    An echo means every segment up to and including that mark has played (marks
    come back in order). ``clear`` drops every segment still pending; their
    marks, echoed by the flush, count for nothing. So ``played_frames`` is the
    number of media frames the caller has heard; frames whose mark echo is in
    flight when a ``clear`` goes out are counted as not played (at most the
    round trip's worth, a frame on a good link).

    Between echoes, :meth:`played` adds the frames the far end has been playing
    since the last echo (or since the first frame of a run went out): it plays
    what it holds back to back, one frame per 20 ms, never more than was sent.
    """

    def __init__(self, every: int = MARK_EVERY_FRAMES) -> None:
        self.every = every
        self.sent_frames = 0       # media frames sent
        self.played_frames = 0     # media frames the far end has played
        self.cleared_frames = 0    # media frames a clear dropped unplayed
        self.unknown_echoes = 0
        self._pending: deque[tuple[str, int]] = deque()  # (mark name, frames in its segment)
        self._names: set[str] = set()
        self._flushed: set[str] = set()
        self._since_mark = 0
        self._count = 0
        self._anchor = 0.0         # when the far end's current run of playing began

    def played(self, now: float) -> int:
        """Frames heard by ``now``: confirmed, plus those played since (interpolated)."""
        since = int((now - self._anchor) / FRAME_S + 1e-6)
        return self.played_frames + max(0, min(self.unplayed_frames, since))

    @property
    def unplayed_frames(self) -> int:
        """Frames sent whose playing the far end has not yet confirmed."""
        return sum(n for _, n in self._pending) + self._since_mark

    @property
    def marks_pending(self) -> int:
        return len(self._pending)

    def frame_sent(self, now: float) -> str | None:
        """A media frame went out; returns the name of the mark to send after it, if due."""
        if not self.unplayed_frames:
            self._anchor = now  # nothing was queued there: it starts playing this one now
        self.sent_frames += 1
        self._since_mark += 1
        return self.mark() if self._since_mark >= self.every else None

    def segment_end(self) -> str | None:
        """A silent tick: close the talkspurt with a mark if frames went out since the last."""
        return self.mark() if self._since_mark else None

    def mark(self, name: str | None = None) -> str:
        if name is None:
            self._count += 1
            name = f"m{self._count}"
        self._pending.append((name, self._since_mark))
        self._names.add(name)
        self._since_mark = 0
        return name

    def echoed(self, name: str, now: float) -> bool:
        """The far end echoed ``name``; True if it advanced the played position."""
        if name in self._flushed:
            self._flushed.discard(name)
            return False
        if name not in self._names:
            self.unknown_echoes += 1
            return False
        while self._pending:
            pending, frames = self._pending.popleft()
            self._names.discard(pending)
            self.played_frames += frames
            if pending == name:
                break
        self._anchor = now
        return True

    def cleared(self, now: float) -> None:
        """A ``clear`` went out: what was played by now counts, the rest was dropped."""
        extra = self.played(now) - self.played_frames
        self.played_frames += extra
        self.cleared_frames += self.unplayed_frames - extra
        if len(self._flushed) < MAX_FLUSHED:
            self._flushed.update(self._names)
        self._pending.clear()
        self._names.clear()
        self._since_mark = 0


class TwilioLeg:
    """The engine's :class:`~telcoflow.engine.ports.Leg` for one Twilio caller."""

    network = "twilio"  # Leg.network

    def __init__(self, stream: MediaStream, call_sid: str) -> None:
        self.stream = stream
        self.call_sid = call_sid
        self.call_id: str | None = None
        self.ledger = MarkLedger()

    @property
    def format(self) -> AudioFormat:
        return FORMAT

    @property
    def played_frames(self) -> int:
        """20 ms frames of gateway audio the caller has heard, confirmed by Twilio's mark
        echoes and interpolated between them (see :class:`MarkLedger`). Frames dropped by a
        ``clear`` never count. The AI bridges truncate the model's reply there."""
        return self.ledger.played(self.stream.now())

    @property
    def sent_frames(self) -> int:
        return self.ledger.sent_frames

    def ringing(self, call_id: str) -> None:
        self.call_id = call_id  # Twilio has answered already; the caller hears silence

    def answered(self, call_id: str) -> None:
        self.stream.send_mark(self.ledger.mark(ANSWERED_MARK))

    def ended(self, reason: EndReason, message: str) -> None:
        self.stream.end(f"{reason.value}: {message}")

    def send_audio(self, frame: bytes | None) -> None:
        stream = self.stream
        if frame is None:
            name = self.ledger.segment_end()
        else:
            stream.send_text(stream.writer.media(frame))
            name = self.ledger.frame_sent(self.stream.now())
        if name is not None:
            stream.send_mark(name)

    def send_dtmf(self, digits: str) -> None:
        # Media Streams has no outbound DTMF (bridge-protocols.md §1): say so, once per call
        if not self.stream.dtmf_warned:
            self.stream.dtmf_warned = True
            logger.warning("call %s: Twilio Media Streams cannot play DTMF to the caller; "
                           "digits %r not sent", self.call_id, digits)

    @property
    def lead_frames(self) -> int:
        """Twilio queues what it is sent and plays it in order: one frame ahead at a
        talkspurt's start lets it ride out a tick that comes late."""
        return LEAD_FRAMES

    @property
    def held_frames(self) -> int:
        """Frames Twilio has queued and not yet played (from the mark echoes)."""
        return self.ledger.sent_frames - self.ledger.cleared_frames - self.played_frames

    def transfer(self, number: str) -> bool:
        return False  # a Media Stream cannot redirect its call (Twilio's REST API can)

    def clear_audio(self) -> None:
        self.stream.send_text(self.stream.writer.clear())
        self.ledger.cleared(self.stream.now())


class MediaStream:
    """One ``/v1/twilio/media`` WebSocket (a netio ``WsHandler``)."""

    def __init__(self, door: TwilioDoor, clock: Callable[[], float] = time.monotonic) -> None:
        self.door = door
        self.engine: Engine = door.engine
        self.inbound = tw.InboundStream()
        self.leg: TwilioLeg | None = None
        self.writer = tw.OutboundWriter("")
        self.ended = False
        self.dtmf_warned = False
        self.audio_dropped = 0       # inbound bytes over the audio rate limit
        self.ignored_frames = 0      # frames of events we do not know (forward compatible)
        self.close_reason = ""
        self._conn: WsConnection | None = None
        self._start_timer: asyncio.TimerHandle | None = None
        self._clock = clock
        self.now = clock
        now = clock()
        self._frames = TokenBucket(FRAME_RATE, FRAME_BURST, now)
        bytes_per_s = FORMAT.frame_bytes * 50
        self._audio = TokenBucket(bytes_per_s * AUDIO_RATE_X, bytes_per_s * AUDIO_BURST_S, now)

    # ── what the leg sends ──────────────────────────────────────────────────
    def send_text(self, text: str) -> None:
        if self._conn is not None:
            self._conn.send_text(text)

    def send_mark(self, name: str) -> None:
        self.send_text(self.writer.mark(name))

    def end(self, reason: str) -> None:
        """The engine ended the leg: close the socket with why."""
        self.ended = True
        self.close(CLOSE_NORMAL, reason)

    def close(self, code: int, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = close_reason(reason)
        if self._conn is not None:
            self._conn.close(code, close_reason(reason))

    # ── WsHandler ───────────────────────────────────────────────────────────
    def on_open(self, conn: WsConnection) -> None:
        self._conn = conn
        # the upgrade carries no credentials (Twilio sends the token in `start`): a
        # socket that never starts is closed, however well it answers pings
        self._start_timer = asyncio.get_running_loop().call_later(START_WITHIN_S,
                                                                  self._start_overdue)

    def _start_overdue(self) -> None:
        if self.leg is None and not self.ended:
            self._refuse(CLOSE_POLICY, f"no valid start within {START_WITHIN_S:g} s")

    def on_close(self, code: int | None, reason: str) -> None:
        self._conn = None
        if self._start_timer is not None:
            self._start_timer.cancel()
        self._hang_up()

    def on_binary(self, data: bytes) -> None:
        self._refuse(CLOSE_UNSUPPORTED, "Media Streams frames are JSON text, not binary")

    def on_text(self, text: str) -> None:
        if self.ended:
            return
        if not self._frames.take(self._clock()):
            self._refuse(CLOSE_POLICY, f"FLOOD: more than {FRAME_RATE:.0f} frames/s "
                         f"(burst {FRAME_BURST:.0f})")
            return
        try:
            event = self.inbound.feed(text)
        except tw.TwilioFrameError as exc:
            if exc.code == "UNKNOWN_EVENT":  # Twilio may add events: skip, keep the call
                self.ignored_frames += 1
                if self.ignored_frames == 1:
                    logger.warning("twilio stream %s: ignoring %s", self.writer.stream_sid, exc)
                return
            self._refuse(CLOSE_POLICY, str(exc))
            return
        leg = self.leg
        if isinstance(event, tw.Media):
            if leg is None:
                return
            if self._audio.take(self._clock(), len(event.payload)):
                self.engine.leg_audio(leg, event.payload)
            else:
                self.audio_dropped += len(event.payload)
        elif isinstance(event, tw.MarkEcho):
            if leg is not None:
                leg.ledger.echoed(event.name, self._clock())
        elif isinstance(event, tw.Dtmf):
            if leg is not None:
                self.engine.leg_dtmf(leg, event.digit, DTMF_DURATION_MS)
        elif isinstance(event, tw.Start):
            self._start(event)
        elif isinstance(event, tw.Stop):
            self._hang_up()
            self.close(CLOSE_NORMAL, "stream stopped")

    # ── inside ──────────────────────────────────────────────────────────────
    def _start(self, start: tw.Start) -> None:
        params = start.custom_parameters
        try:
            to, caller = self.door.check_stream_token(params.get("token", ""), start.call_sid)
        except AuthError as exc:
            self._refuse(CLOSE_POLICY, f"stream token refused: {exc.message}")
            return
        self.writer = tw.OutboundWriter(start.stream_sid)
        self.leg = leg = TwilioLeg(self, start.call_sid)
        self.door.legs[start.call_sid] = leg
        self.engine.inbound_call(leg, to, caller or "anonymous")

    def _hang_up(self) -> None:
        leg = self.leg
        if leg is not None:
            self.door.legs.pop(leg.call_sid, None)
        if leg is not None and not self.ended:
            self.ended = True
            self.engine.leg_hung_up(leg)
        self.ended = True

    def _refuse(self, code: int, reason: str) -> None:
        logger.warning("twilio stream %s: closing: %s", self.writer.stream_sid or "-", reason)
        self._hang_up()
        self.close(code, reason)
