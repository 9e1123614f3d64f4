"""Per-call playout of agent audio: a pull-credit ledger and a jitter prebuffer.

Sans-I/O and clock-free: the media clock calls :meth:`PlayoutBuffer.tick`
once per 20 ms; the voice connection calls :meth:`push` with agent audio and
sends whatever :meth:`credit_to_request` says it may ask for. All sizes are
bytes of PCM16 at the agent connection's rate.

Why a prebuffer: agent audio arrives with jitter relative to our ticks; one
frame of slack at the start of each talkspurt keeps a steady stream steady
instead of stuttering on every late frame. Why credit: the SDK answers every
``buffer_request`` eventually (it blocks until it has audio), so requested but
unanswered bytes are audio already on its way and count towards the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.wsola import Wsola
from .overload import LoadShed

# a frame whose peak stays under this (-45 dBFS) is dropped whole when catching up:
# nobody hears a missing 20 ms of near-silence
QUIET_PEAK = 184
CATCH_UP_SPEED = 1.5  # speech played 1.5x (WSOLA, pitch kept) while catching up
# a talkspurt that ran dry and resumes within this many ticks (100 ms) with a backlog
# (more than the prebuffer at once) was late, not over: the silent ticks put in
# meanwhile delayed the rest of it (an echo or a live stream never gets them back),
# so they are owed, as far as the backlog goes. A longer gap is taken for a pause
# between talkspurts (a TTS agent's next sentence) and owes nothing.
LATE_GAP_TICKS = 5


@dataclass(slots=True)
class PlayoutStats:
    frames_played: int = 0
    bytes_played: int = 0        # agent audio handed to the leg (a talkspurt's tail unpadded)
    frames_silent: int = 0
    underruns: int = 0           # talkspurts that ran dry mid-speech
    bytes_received: int = 0
    bytes_dropped_interrupt: int = 0
    bytes_dropped_overflow: int = 0
    bytes_compressed: int = 0      # agent audio saved by time-compressing speech (catch-up)
    bytes_dropped_quiet: int = 0   # quiet frames skipped to catch up
    bytes_dropped_late: int = 0    # cut because the delay passed the bound even so


class PlayoutBuffer:
    def __init__(self, frame_bytes: int, target_ms: int = 120, prebuffer_ms: int = 40,
                 max_ms: int = 10_000, quantum_ms: int = 60, max_lag_ms: int = 200,
                 compress_from_ms: int = 100, shed: LoadShed | None = None) -> None:
        self.frame_bytes = frame_bytes
        self._shed = shed or LoadShed()  # the process is overloaded: catch up by cuts
        self.target_bytes = max(frame_bytes, frame_bytes * target_ms // 20)
        self.prebuffer_bytes = frame_bytes * max(1, prebuffer_ms // 20)
        self.prebuffer_ticks = max(1, prebuffer_ms // 20)
        self.max_bytes = frame_bytes * max_ms // 20
        # credit is granted in lumps: one buffer_request per ~3 ticks instead of one per
        # tick costs the agent a third of the text frames, and the target stays covered
        self.quantum_bytes = frame_bytes * max(1, min(quantum_ms, target_ms) // 20)
        self.outstanding = 0  # requested from the agent, not yet received
        self.stats = PlayoutStats()
        self._queue = bytearray()
        self._playing = False
        self._waited = 0
        self._hold_partial = False  # a full frame just played: a partial one may be a gap
        # catch-up: how far the caller is behind real time (ticks it never got), bounded;
        # 0: no catch-up (every frame the agent sent is played, however late)
        self.max_lag_bytes = frame_bytes * max_lag_ms // 20
        # speech is compressed only from a lag a listener notices: a jitter hiccup of a
        # frame or two is paid back by quiet frames (inaudible), not by altering speech
        self.compress_from_bytes = max(frame_bytes // 4, frame_bytes * compress_from_ms // 20)
        self.lag = 0
        self._wsola: Wsola | None = None  # made on the first catch-up, kept for the call
        self._compressing = False
        self._saved_base = 0
        self._ready = bytearray()  # compressed output not yet played
        self._late_ticks = -1      # silent ticks since the talkspurt ran dry (-1: it did not)
        # bytes at the queue's tail not yet looked at for quiet frames: while behind, each
        # tick looks only at what came since (the rest is known to be speech), not at the
        # whole queue again (up to target + lag: ~5 % of the gateway at 200 calls behind)
        self._unscanned = 0

    @property
    def playing(self) -> bool:
        """Inside a talkspurt (a ``None`` from :meth:`tick` then means a partial frame is
        held for its rest, not that the talkspurt ended)."""
        return self._playing

    @property
    def queued(self) -> int:
        return len(self._queue)

    def push(self, pcm: bytes) -> int:
        """Queue agent audio; returns the bytes accepted (the rest overflowed)."""
        self.outstanding = max(0, self.outstanding - len(pcm))
        room = self.max_bytes - len(self._queue)
        accepted = pcm if len(pcm) <= room else pcm[:max(0, room)]
        self._queue += accepted
        self._unscanned += len(accepted)
        self.stats.bytes_received += len(accepted)
        if self.lag > self.max_lag_bytes:
            self._cut_late()
        self.stats.bytes_dropped_overflow += len(pcm) - len(accepted)
        return len(accepted)

    def credit_to_request(self) -> int:
        """Bytes to ask the agent for now (whole frames), and book them as outstanding.

        While behind, the target plus the lag: an agent's SDK sends only what it has credit
        for, so the backlog a stall (or a slow credit round trip) left waits there, out of
        reach of the catch-up, until credit beyond the target brings it into the queue."""
        deficit = self.target_bytes + self.lag - len(self._queue) - self.outstanding
        frames = deficit // self.frame_bytes
        if frames <= 0 or frames * self.frame_bytes < self.quantum_bytes:
            return 0
        want = frames * self.frame_bytes
        self.outstanding += want
        return want

    def owe(self, nbytes: int) -> None:
        """The caller missed ``nbytes`` of ticks (the media clock skipped them): the
        agent's audio now reaches them that much later. Catch up by skipping quiet frames,
        then by compressing speech; past the bound, cut. (``max_lag_ms`` 0: never.)"""
        if not self.max_lag_bytes:
            return
        self.lag += nbytes
        if self.lag > self.max_lag_bytes:
            self._cut_late()

    def _cut_late(self) -> None:
        """Past the bound: drop the oldest whole frames (a cut, so the last resort)."""
        self._stop_compressing()
        fb = self.frame_bytes
        excess = self.lag - self.max_lag_bytes
        self._drop_oldest(min(len(self._queue), -(-excess // fb) * fb))

    def interrupt(self) -> int:
        """Drop everything unplayed, at once; returns the bytes dropped."""
        self._stop_compressing()
        self.lag, self._late_ticks = 0, -1
        dropped = len(self._queue)
        self._queue.clear()
        self._unscanned = 0
        self._playing = False
        self._waited = 0
        self._hold_partial = False
        self.stats.bytes_dropped_interrupt += dropped
        return dropped

    def tick(self) -> bytes | None:
        """The next 20 ms to play, or ``None`` for silence."""
        fb = self.frame_bytes
        if not self._playing:
            if not self._queue:
                self._waited = 0
                self._silent_tick()
                return None
            self._waited += 1
            if len(self._queue) < self.prebuffer_bytes and self._waited < self.prebuffer_ticks:
                self._silent_tick()
                return None
            self._playing = True
            # it resumed with a backlog: frames that had been sent while it played silence
            # (a lost frame resumes with none: the stream is shorter, not later)
            backlog = len(self._queue) // fb - self.prebuffer_ticks
            if self._late_ticks > 0 and backlog > 0:
                self.owe(min(self._late_ticks, backlog) * fb)
            self._late_ticks = -1
        if self.lag or self._compressing:
            frame = self._catch_up()
            if frame is not None:
                self.stats.frames_played += 1
                self._hold_partial = True
                return frame
        if len(self._queue) >= fb:
            frame = bytes(self._queue[:fb])
            del self._queue[:fb]
            self.stats.bytes_played += fb
            self._hold_partial = True
        elif self._queue and self._hold_partial:
            # less than a frame left mid-talkspurt: chunks the agent resampled rarely end
            # on a frame, so the rest is usually on its way. Wait one tick for it: padding
            # now would cut a gap inside the frame (a click, and the speech shifted).
            self._hold_partial = False
            self.stats.frames_silent += 1
            return None
        elif self._queue:
            # the tail of a talkspurt: play what is left, padded with silence
            self.stats.bytes_played += len(self._queue)
            frame = bytes(self._queue) + bytes(fb - len(self._queue))
            self._queue.clear()
        else:
            self._playing = False
            self._waited = 0
            self._hold_partial = False
            self.stats.underruns += 1
            self._silent_tick()
            self._late_ticks = 1
            return None
        self.stats.frames_played += 1
        return frame

    def _silent_tick(self) -> None:
        self.stats.frames_silent += 1
        if self._late_ticks >= 0:
            self._late_ticks += 1
            if self._late_ticks > LATE_GAP_TICKS:  # the talkspurt was over: nothing is late
                self._late_ticks, self.lag = -1, 0
                self._stop_compressing()

    # ── catch-up ─────────────────────────────────────────────────────────────
    def _catch_up(self) -> bytes | None:
        """This tick's frame while behind (quiet frames skipped, speech compressed), or
        ``None``: play the queue as usual."""
        fb, queue = self.frame_bytes, self._queue
        if not self._compressing:
            behind = self.lag
            if self.lag >= fb:
                self._skip_quiet()
            # queued enough to compress: what saves the lag at 1.5x (three times it), or
            # the target (credit brings target + lag when the agent has it). Less would
            # compress a frame or two, run dry and leave a seam, again and again.
            enough = max(2 * fb, min(3 * self.lag, self.target_bytes))
            if behind < self.compress_from_bytes or self.lag < fb // 4 or len(queue) < enough:
                return None  # not behind enough to alter speech, or too little queued
            if self._shed.active:
                self._cut_behind()
                return None
            if self._wsola is None:
                self._wsola = Wsola(fb * 25, CATCH_UP_SPEED)
            self._compressing, self._saved_base = True, self._wsola.saved * 2
            # end exactly on whole frames: what follows keeps the agent's 20 ms framing
            self._wsola.goal = self._wsola.saved + -(-self.lag // fb) * fb // 2
        wsola = self._wsola
        assert wsola is not None

        while len(self._ready) < fb and len(queue) >= fb and not wsola.reached:
            chunk = bytes(queue[:fb])
            del queue[:fb]
            self._ready += wsola.process(chunk)
        if wsola.reached:
            self._stop_compressing()
        elif len(self._ready) < fb and len(queue) < fb:
            # the queue is used up. With credit outstanding the rest of the backlog may
            # wait in the agent's SDK for it (a credit round trip away): still owed. With
            # none, nothing is waiting, so nothing is late any more.
            self._stop_compressing()
            if not self.outstanding:
                self.lag = 0
        if len(self._ready) < fb:
            return None
        frame = bytes(self._ready[:fb])
        del self._ready[:fb]
        self.stats.bytes_played += fb
        return frame

    def _cut_behind(self) -> None:
        """The process is overloaded: drop the oldest whole frames queued, up to the lag.
        WSOLA's search costs ~1 ms per frame compressed; with hundreds of calls behind at
        once it was half the gateway's CPU and kept the tick late (a vicious circle)."""
        fb = self.frame_bytes
        self._drop_oldest(min(len(self._queue), self.lag) // fb * fb)

    def _drop_oldest(self, cut: int) -> None:
        """Cut ``cut`` bytes (whole frames) off the front of the queue, off the lag."""
        del self._queue[:cut]
        self._unscanned = min(self._unscanned, len(self._queue))
        self.lag = max(0, self.lag - cut)
        self.stats.bytes_dropped_late += cut
        self.stats.bytes_played += cut  # the agent's stream moved on past it

    def _skip_quiet(self) -> None:
        """Drop whole quiet frames queued (pauses between words), oldest first, up to the
        lag: nobody hears a missing 20 ms of near-silence."""
        fb, queue = self.frame_bytes, self._queue
        frames = len(queue) // fb
        if frames < 2 or not self._unscanned:
            return
        # the frames holding the unscanned tail (one more: the tail need not be aligned)
        first = max(0, frames - min(len(queue), self._unscanned) // fb - 1)
        # (no view of the queue may outlive this line: the queue is resized below)
        peaks = np.abs(np.frombuffer(queue, dtype="<i2", count=(frames - first) * fb // 2,
                                     offset=first * fb).astype(np.int32)
                       .reshape(frames - first, fb // 2)).max(axis=1)
        found = np.flatnonzero(peaks < QUIET_PEAK) + first
        quiet = found[:self.lag // fb]
        for index in quiet[::-1]:  # from the back, so the earlier offsets stay put
            del queue[index * fb:(index + 1) * fb]
        # quiet frames left (the lag did not need them) are looked at again next time
        self._unscanned = len(queue) if len(found) > len(quiet) else len(queue) % fb
        dropped = len(quiet) * fb
        self.lag -= dropped
        self.stats.bytes_dropped_quiet += dropped
        self.stats.bytes_played += dropped

    def _stop_compressing(self) -> int:
        """Caught up (or cut, or out of audio): the compressor's rest, uncompressed, goes
        back in front, then silence up to the agent's next frame boundary (when the
        compression saved part of a frame), so what follows keeps the agent's 20 ms
        framing. Returns the bytes the compression saved."""
        if not self._compressing or self._wsola is None:
            return 0
        self._ready += self._wsola.flush()
        saved = self._wsola.saved * 2 - self._saved_base
        self.lag = max(0, self.lag - saved)
        self.stats.bytes_compressed += saved
        self.stats.bytes_played += saved
        pad = saved % self.frame_bytes  # the output is that much short of a whole frame
        self._ready += bytes(pad)
        self.stats.bytes_played -= pad  # silence of ours, not the agent's audio
        self._queue[:0] = self._ready
        self._ready.clear()
        self._unscanned = len(self._queue)  # what went back in front was never looked at
        self._compressing = False
        return saved

