"""Call recording: :class:`AudioBufferProcessor` (constructor, properties and
event names of pipecat's processor of that name), fed with explicit times.

Feeding. ``add_user_audio(pcm, now)`` for audio received from the caller at
``now`` (it is placed so that it *ends* at ``now``), ``add_bot_audio(pcm,
now)`` for audio the agent sends at ``now`` (it is *scheduled* to play from
``max(now, end of the bot audio already scheduled)``, like a playout queue),
``truncate_bot(now)`` on an interruption (scheduled bot audio after ``now``
is dropped), ``advance(now)`` to let time pass with no audio. Times are
seconds on any monotonic clock; nothing here reads a clock.

Alignment. Both tracks live on one media clock starting at the recording
start. A track with no audio for a while gets silence, so both tracks always
cover the wall-clock time of the call. Small gaps in the caller's audio up to
``gap_tolerance_ms`` (arrival jitter) are closed instead of filled, so jitter
does not chop speech; longer gaps are filled with silence at their true
place. Each track is resampled to ``sample_rate`` by its own streaming
resampler *after* placement, so resampling latency never shifts a track.

Events (register with ``@processor.event_handler(name)``; handlers may be
plain or ``async`` functions, see :mod:`telcoflow.audio.events`):

* ``on_audio_data(processor, audio, sample_rate, num_channels)``: mono mix
  (saturating) or stereo (user left, bot right); every ``buffer_size`` bytes
  per track when ``buffer_size > 0``, and the rest at ``stop_recording``;
* ``on_track_audio_data(processor, user_audio, bot_audio, sample_rate, 1)``:
  the same span as two mono tracks;
* ``on_user_turn_audio_data`` / ``on_bot_turn_audio_data(processor, audio,
  sample_rate, 1)`` with ``enable_turn_audio=True``: a user turn is speech
  found by a VAD on the user track (start/stop hysteresis), a bot turn a
  run of scheduled bot audio (ending when it has played out, with
  ``bot_turn_gap_ms`` of grace, or at an interruption).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .errors import AudioFormatError, RecorderStateError
from .events import Dispatch, EventEmitter
from .pcm import PCMInput, as_int16, interleave, mix
from .resample import StreamResampler
from .vad import VoiceActivityDetector
from .wav import StrPath, WavWriter

__all__ = ["AudioBufferProcessor", "EVENTS"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

EVENTS = (
    "on_audio_data",
    "on_track_audio_data",
    "on_user_turn_audio_data",
    "on_bot_turn_audio_data",
)
_OPTIONS = {
    "name",
    "gap_tolerance_ms",
    "bot_turn_gap_ms",
    "bot_gap_tolerance_ms",
    "resample_quality",
    "vad_engine",
    "input_sample_rate",
}


class _Track:
    """One party's audio: scheduled input-rate audio -> committed -> resampled output."""

    def __init__(self, t0: float, out_rate: int, quality: str) -> None:
        self.out_rate = out_rate
        self.quality = quality
        self.in_rate = 0
        self.rs: StreamResampler | None = None
        self.origin = t0  # time of input sample 0 of the current rate segment
        self.n_in = 0  # input samples committed in this segment
        self.pending = bytearray()  # scheduled input audio after the committed part
        self.staged = bytearray()  # committed, waiting to be resampled in one batch
        self.out = bytearray()  # output audio not yet emitted
        self.out_total = 0  # output samples produced since the recording start

    def set_rate(self, rate: int) -> None:
        if rate == self.in_rate:
            return
        if self.rs is not None:  # rate change mid-call: close the old segment
            end = self.end_time()
            self._feed(bytes(self.pending))
            self.pending.clear()
            self._resample_staged()
            self._out(self.rs.flush())
            self.origin, self.n_in = end, 0
        self.in_rate = rate
        self.rs = StreamResampler(rate, self.out_rate, self.quality)

    def end_time(self) -> float:
        return self.origin + (self.n_in + len(self.pending) // 2) / max(self.in_rate, 1)

    def committed_time(self) -> float:
        return self.origin + self.n_in / max(self.in_rate, 1)

    def _out(self, data: bytes) -> None:
        self.out += data
        self.out_total += len(data) // 2

    def _feed(self, data: bytes) -> None:
        # Resampling runs on batches of >= 100 ms: a recording need not be low
        # latency, and one soxr call per batch costs far less than one per frame.
        assert self.rs is not None
        self.n_in += len(data) // 2
        if self.rs.is_passthrough:
            self._out(data)
            return
        self.staged += data
        if len(self.staged) >= self.in_rate // 5:  # 100 ms of PCM16
            self._resample_staged()

    def _resample_staged(self) -> None:
        if self.staged and self.rs is not None:
            self._out(self.rs.process(bytes(self.staged)))
            self.staged.clear()

    def write(self, pcm: bytes, start: float, tolerance: float) -> bool:
        """Schedule ``pcm`` at ``start`` (>= end); returns True if a gap was filled."""
        gap = start - self.end_time()
        filled = gap > tolerance
        if filled:
            self.pending += bytes(2 * round(gap * self.in_rate))
        self.pending += pcm
        return filled

    def pad_to(self, t: float) -> None:
        if self.in_rate and t > self.end_time():
            self.pending += bytes(2 * round((t - self.end_time()) * self.in_rate))

    def commit(self, until: float) -> None:
        if not self.in_rate or not self.pending:
            return
        k = min(
            len(self.pending) // 2, max(0, round((until - self.committed_time()) * self.in_rate))
        )
        if k:
            self._feed(bytes(self.pending[: 2 * k]))
            del self.pending[: 2 * k]

    def truncate(self, t: float) -> None:
        keep = max(0, round((t - self.committed_time()) * max(self.in_rate, 1)))
        del self.pending[2 * keep :]

    def flush(self) -> None:
        if self.rs is not None:
            self._feed(bytes(self.pending))
            self.pending.clear()
            self._resample_staged()
            self._out(self.rs.flush())


class AudioBufferProcessor(EventEmitter):
    """Records a call's user and bot audio, aligned, mixed or stereo (see module doc)."""

    def __init__(
        self,
        sample_rate: int | None = None,
        num_channels: int = 1,
        buffer_size: int = 0,
        enable_turn_audio: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(EVENTS)
        unknown = set(kwargs) - _OPTIONS
        if unknown:
            raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(unknown))}")
        if num_channels not in (1, 2):
            raise RecorderStateError(f"num_channels must be 1 or 2, got {num_channels}")
        if buffer_size < 0:
            raise RecorderStateError(f"buffer_size must be >= 0, got {buffer_size}")
        self.name: str = kwargs.get("name", "AudioBufferProcessor")
        self._init_rate = sample_rate
        self._sample_rate = sample_rate or 0
        self._num_channels = num_channels
        self._buffer_size = buffer_size - buffer_size % 2
        self._enable_turn_audio = enable_turn_audio
        self._tol = float(kwargs.get("gap_tolerance_ms", 60)) / 1000.0
        self._bot_grace = float(kwargs.get("bot_turn_gap_ms", 300)) / 1000.0
        # a playout that holds a frame or more of lead plays a chunk that comes this late
        # on without a gap; 0 (the default) places every chunk at its own arrival time
        self._bot_tol = float(kwargs.get("bot_gap_tolerance_ms", 0)) / 1000.0
        self._quality: str = kwargs.get("resample_quality", "HQ")
        self._vad_engine: str = kwargs.get("vad_engine", "webrtc")
        self._input_rate: int | None = kwargs.get("input_sample_rate")
        self._recording = False
        self._t0: float | None = None
        self._last_now = 0.0
        self._user: _Track | None = None
        self._bot: _Track | None = None
        self._emitted = 0  # output samples per track already delivered in chunk events
        self._writers: list[tuple[WavWriter, WavWriter | None, WavWriter | None]] = []
        self._reset_turns()

    def _reset_turns(self) -> None:
        self._vad: VoiceActivityDetector | None = None
        self._user_turn_start: int | None = None
        self._user_hist = bytearray()  # user output audio kept for turns
        self._user_hist_base = 0  # output sample index of _user_hist[0]
        self._user_fed = 0  # user output samples given to the VAD
        self._bot_turn_start: int | None = None
        self._bot_sched_end = 0.0
        self._bot_hist = bytearray()
        self._bot_hist_base = 0
        self._bot_turns: list[tuple[int, int]] = []  # ended turns waiting for their audio

    # -- seed-002 surface ----------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz (0 until known when constructed with ``None``)."""
        return self._sample_rate

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def buffer_size(self) -> int:
        return self._buffer_size

    @property
    def enable_turn_audio(self) -> bool:
        return self._enable_turn_audio

    @property
    def recording(self) -> bool:
        return self._recording

    def has_audio(self) -> bool:
        """True if both the user and the bot buffers hold audio not yet delivered."""
        return bool(self._user and self._user.out and self._bot and self._bot.out)

    def start_recording(self, now: float | None = None) -> Dispatch:
        """Start (or restart) recording; ``now`` is the recording's time zero (default:
        the time of the first audio). ``await`` it or not."""
        self._begin()
        self._recording = True
        self._sample_rate = self._init_rate or 0
        self._t0 = now
        self._user = self._bot = None
        self._emitted = 0
        self._reset_turns()
        if now is not None:
            self._last_now = now
            self._ensure_tracks(now)
        return self._end()

    def stop_recording(self, now: float | None = None) -> Dispatch:
        """Stop at ``now`` (default: the latest time seen): pad both tracks to the same
        length, deliver the remaining audio and close open turns."""
        self._begin()
        if self._recording:
            self._finish(self._last_now if now is None else max(now, self._last_now))
        return self._end()

    # -- feeding -------------------------------------------------------------------------

    def add_user_audio(self, pcm: PCMInput, now: float, sample_rate: int | None = None) -> Dispatch:
        """Caller audio received at ``now`` (PCM16 mono at ``sample_rate``)."""
        self._begin()
        if self._recording:
            data = self._bytes(pcm)
            rate = self._rate(sample_rate)
            user = self._ensure_tracks(now - len(data) / 2 / rate)[0]
            user.set_rate(rate)
            start = max(user.end_time(), now - len(data) / 2 / rate)
            user.write(data, start, self._tol)
            self._advance(now)
        return self._end()

    def add_bot_audio(self, pcm: PCMInput, now: float, sample_rate: int | None = None) -> Dispatch:
        """Agent audio sent at ``now``; it plays after the bot audio already scheduled."""
        self._begin()
        if self._recording:
            data = self._bytes(pcm)
            rate = self._rate(sample_rate)
            bot = self._ensure_tracks(now)[1]
            bot.set_rate(rate)
            start = max(bot.end_time(), now)
            if start - bot.end_time() <= self._bot_tol:
                start = bot.end_time()
            if self._enable_turn_audio and self._bot_turn_start is None:
                self._bot_turn_start = round((start - self._t0_f) * self._sample_rate)
            bot.write(data, start, 0.0)
            self._bot_sched_end = bot.end_time()
            self._advance(now)
        return self._end()

    def truncate_bot(self, now: float) -> Dispatch:
        """Interruption at ``now``: drop bot audio scheduled after it; the bot turn ends."""
        self._begin()
        if self._recording and self._bot is not None:
            self._bot.truncate(max(now, self._bot.committed_time()))
            self._bot_sched_end = min(self._bot_sched_end, self._bot.end_time())
            self._end_bot_turn(round((self._bot_sched_end - self._t0_f) * self._sample_rate))
            self._advance(now)
        return self._end()

    def advance(self, now: float) -> Dispatch:
        """Let time pass to ``now`` with no new audio (fills silence, emits due events)."""
        self._begin()
        if self._recording and self._t0 is not None:
            self._advance(now)
        return self._end()

    # -- WAV output ----------------------------------------------------------------------

    def record_to_wav(
        self, path: StrPath, *, user_path: StrPath | None = None, bot_path: StrPath | None = None
    ) -> None:
        """Stream the recording into WAV files (merged, and optionally each track); the
        files are finalised at ``stop_recording``. Needs a known ``sample_rate``."""
        if not self._sample_rate:
            raise RecorderStateError("record_to_wav needs the processor's sample_rate")
        r = self._sample_rate
        self._writers.append(
            (
                WavWriter(os.fspath(path), r, self._num_channels),
                WavWriter(os.fspath(user_path), r, 1) if user_path is not None else None,
                WavWriter(os.fspath(bot_path), r, 1) if bot_path is not None else None,
            )
        )

    # -- internals -----------------------------------------------------------------------

    @property
    def _t0_f(self) -> float:
        return self._t0 if self._t0 is not None else 0.0

    @staticmethod
    def _bytes(pcm: PCMInput) -> bytes:
        if isinstance(pcm, bytes):
            if len(pcm) % 2:
                raise AudioFormatError(f"PCM16 data must have an even byte count, got {len(pcm)}")
            return pcm
        return as_int16(pcm).astype("<i2").tobytes()

    def _rate(self, sample_rate: int | None) -> int:
        rate = sample_rate or self._input_rate or self._sample_rate
        if not rate:
            raise RecorderStateError("unknown input sample rate: pass sample_rate=")
        if not self._sample_rate:
            self._sample_rate = rate
        return rate

    def _ensure_tracks(self, t: float) -> tuple[_Track, _Track]:
        if self._t0 is None:
            self._t0 = t
            self._last_now = max(self._last_now, t)
        if self._user is None or self._bot is None:
            if not self._sample_rate:
                raise RecorderStateError("sample_rate unknown: pass it to the constructor")
            self._user = _Track(self._t0, self._sample_rate, self._quality)
            self._bot = _Track(self._t0, self._sample_rate, self._quality)
            default = self._input_rate or self._sample_rate
            self._user.set_rate(default)
            self._bot.set_rate(default)
        return self._user, self._bot

    def _advance(self, now: float) -> None:
        user, bot = self._ensure_tracks(now)
        self._last_now = max(self._last_now, now)
        now = self._last_now
        user.pad_to(now - self._tol)
        bot.pad_to(now)
        user.commit(now)
        bot.commit(now)
        self._after_commit(now)

    def _after_commit(self, now: float | None) -> None:
        assert self._user is not None and self._bot is not None
        if self._enable_turn_audio:
            self._turns(now)
        if self._buffer_size:
            while min(len(self._user.out), len(self._bot.out)) >= self._buffer_size:
                self._deliver(self._buffer_size)

    def _deliver(self, nbytes: int) -> None:
        assert self._user is not None and self._bot is not None
        u = bytes(self._user.out[:nbytes])
        b = bytes(self._bot.out[:nbytes])
        del self._user.out[:nbytes]
        del self._bot.out[:nbytes]
        self._emitted += nbytes // 2
        if self._num_channels == 1:
            merged = mix(u, b).astype("<i2").tobytes()
        else:
            merged = interleave(u, b).astype("<i2").tobytes()
        for w, wu, wb in self._writers:
            w.write(merged)
            if wu is not None:
                wu.write(u)
            if wb is not None:
                wb.write(b)
        r = self._sample_rate
        self._emit("on_audio_data", self, merged, r, self._num_channels)
        self._emit("on_track_audio_data", self, u, b, r, 1)

    def _finish(self, now: float) -> None:
        if self._user is None and not self._sample_rate:
            self._recording = False  # nothing was recorded and no rate is known
            return
        user, bot = self._ensure_tracks(now)
        self._last_now = now
        user.commit(now)  # caller audio is all in the past: take what was scheduled
        user.flush()
        bot.truncate(max(now, bot.committed_time()))  # never played: the call ended
        self._bot_sched_end = min(self._bot_sched_end, bot.end_time())
        bot.pad_to(now)
        user.pad_to(now)
        bot.flush()
        user.flush()
        # Equal lengths: pad the shorter track with silence.
        n = max(user.out_total, bot.out_total)
        for tr in (user, bot):
            tr._out(bytes(2 * (n - tr.out_total)))
        if self._enable_turn_audio:
            self._turns(None)
        if self._buffer_size:
            self._after_commit(None)
        rest = min(len(user.out), len(bot.out))
        if rest:
            self._deliver(rest)
        for w, wu, wb in self._writers:
            for x in (w, wu, wb):
                if x is not None:
                    x.close()
        self._writers.clear()
        self._recording = False

    # -- turns ---------------------------------------------------------------------------

    def _turns(self, now: float | None) -> None:
        assert self._user is not None and self._bot is not None
        r = self._sample_rate
        if self._vad is None:
            self._vad = VoiceActivityDetector(r, engine=self._vad_engine)
        # User: run the VAD on user output audio not seen yet.
        user, bot = self._user, self._bot
        new_user = user.out_total - self._user_fed
        if new_user:
            chunk = bytes(user.out[len(user.out) - 2 * new_user :])
            self._user_hist += chunk
            self._user_fed = user.out_total
            events = self._vad.process(chunk)
            if now is None:
                events += self._vad.flush()
            for ev in events:
                pos = round(ev.time * r)
                if ev.kind == "speech_start":
                    self._user_turn_start = pos
                elif self._user_turn_start is not None:
                    self._emit_turn("on_user_turn_audio_data", True, self._user_turn_start, pos)
                    self._user_turn_start = None
        elif now is None and self._user_turn_start is not None:
            for ev in self._vad.flush():
                self._emit_turn(
                    "on_user_turn_audio_data", True, self._user_turn_start, round(ev.time * r)
                )
            self._user_turn_start = None
        keep_from = self._user_turn_start
        if keep_from is None:
            keep_from = self._user_fed - r  # one second of pre-roll for the next turn
        self._trim_hist(True, keep_from)
        # Bot: turns from the schedule.
        new_bot = bot.out_total - (self._bot_hist_base + len(self._bot_hist) // 2)
        if new_bot > 0:
            self._bot_hist += bytes(bot.out[len(bot.out) - 2 * new_bot :])
        if self._bot_turn_start is not None:
            if now is None or now >= self._bot_sched_end + self._bot_grace:
                self._end_bot_turn(round((self._bot_sched_end - self._t0_f) * r))
        while self._bot_turns and (
            now is None or self._bot_turns[0][1] <= self._bot_hist_base + len(self._bot_hist) // 2
        ):
            start, end = self._bot_turns.pop(0)
            self._emit_turn("on_bot_turn_audio_data", False, start, end)
        oldest = self._bot_turns[0][0] if self._bot_turns else self._bot_turn_start
        self._trim_hist(False, oldest if oldest is not None else bot.out_total)

    def _end_bot_turn(self, end: int) -> None:
        if self._enable_turn_audio and self._bot_turn_start is not None:
            if end > self._bot_turn_start:
                self._bot_turns.append((self._bot_turn_start, end))
            self._bot_turn_start = None

    def _emit_turn(self, event: str, user: bool, start: int, end: int) -> None:
        hist = self._user_hist if user else self._bot_hist
        base = self._user_hist_base if user else self._bot_hist_base
        a, b = max(start - base, 0), max(end - base, 0)
        audio = bytes(hist[2 * a : 2 * b])
        if audio:
            self._emit(event, self, audio, self._sample_rate, 1)

    def _trim_hist(self, user: bool, keep_from: int) -> None:
        base = self._user_hist_base if user else self._bot_hist_base
        drop = keep_from - base
        if drop <= 0:
            return
        hist = self._user_hist if user else self._bot_hist
        drop = min(drop, len(hist) // 2)
        del hist[: 2 * drop]
        if user:
            self._user_hist_base += drop
        else:
            self._bot_hist_base += drop
