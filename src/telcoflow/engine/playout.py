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


@dataclass(slots=True)
class PlayoutStats:
    frames_played: int = 0
    bytes_played: int = 0        # agent audio handed to the leg (a talkspurt's tail unpadded)
    frames_silent: int = 0
    underruns: int = 0           # talkspurts that ran dry mid-speech
    bytes_received: int = 0
    bytes_dropped_interrupt: int = 0
    bytes_dropped_overflow: int = 0


class PlayoutBuffer:
    def __init__(self, frame_bytes: int, target_ms: int = 120, prebuffer_ms: int = 40,
                 max_ms: int = 10_000, quantum_ms: int = 60) -> None:
        self.frame_bytes = frame_bytes
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
        self.stats.bytes_received += len(accepted)
        self.stats.bytes_dropped_overflow += len(pcm) - len(accepted)
        return len(accepted)

    def credit_to_request(self) -> int:
        """Bytes to ask the agent for now (whole frames), and book them as outstanding."""
        deficit = self.target_bytes - len(self._queue) - self.outstanding
        frames = deficit // self.frame_bytes
        if frames <= 0 or frames * self.frame_bytes < self.quantum_bytes:
            return 0
        want = frames * self.frame_bytes
        self.outstanding += want
        return want

    def interrupt(self) -> int:
        """Drop everything unplayed, at once; returns the bytes dropped."""
        dropped = len(self._queue)
        self._queue.clear()
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
                self.stats.frames_silent += 1
                return None
            self._waited += 1
            if len(self._queue) < self.prebuffer_bytes and self._waited < self.prebuffer_ticks:
                self.stats.frames_silent += 1
                return None
            self._playing = True
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
            self.stats.frames_silent += 1
            return None
        self.stats.frames_played += 1
        return frame
