"""Streaming time compression of PCM16 speech: WSOLA (waveform-similarity overlap-add).

Used by the playout buffer to catch up after the caller fell behind: shortening speech
by picking, for each output hop, the input segment near its nominal position that best
continues the waveform already written, and cross-fading it in. Pitch is kept (segments
are copied, not resampled) and the joins are where the waveforms align, so there is no
click; a pure cut would drop mid-word and click.

Streaming: :meth:`Wsola.process` takes any chunk and returns what is final so far;
:meth:`Wsola.flush` returns the rest *uncompressed*, continuing the last segment
seamlessly (the fading half of the last segment plus the rising half of its natural
continuation is the input itself), so compression can stop at any moment.
Synchronous and vectorised (numpy); one instance per stream.
"""

from __future__ import annotations

import numpy as np

from .errors import AudioError

MAX_SPEED = 2.0


class Wsola:
    def __init__(self, rate: int, speed: float = 1.5, window_ms: float = 20.0,
                 tolerance_ms: float = 5.0) -> None:
        if not 1.0 <= speed <= MAX_SPEED:
            raise AudioError(f"speed must be within 1.0 and {MAX_SPEED}, not {speed}")
        self.hop = max(8, int(rate * window_ms / 2000))   # synthesis hop: half a window
        self.window = 2 * self.hop
        self.tolerance = max(1, int(rate * tolerance_ms / 1000))
        self.speed = speed
        # periodic Hann: two halves overlapping at 50 % add up to exactly 1
        n = np.arange(self.window)
        self._win = (0.5 - 0.5 * np.cos(2 * np.pi * n / self.window)).astype(np.float32)
        self._in = np.zeros(0, dtype=np.float32)
        self._acc = np.zeros(self.hop, dtype=np.float32)  # the last segment's fading half
        self._pos = 0.0          # nominal analysis position of the next segment, in _in
        self._last = -1          # where the last segment started in _in (-1: none yet)
        self.consumed = 0        # input samples taken for good (flush included)
        self.produced = 0        # output samples returned
        # stop compressing once exactly this many samples are saved (None: never): the
        # segment that gets there is placed to land on it rather than where it matches
        # best (its 50 % cross-fade still hides the join), then process() adds no more
        self.goal: int | None = None
        self.reached = False

    @property
    def saved(self) -> int:
        """Input samples skipped so far (the output is that much shorter than the input
        it stands for): the played output reaches input position last + hop."""
        ahead = self._last + self.hop if self._last >= 0 else 0
        return self.consumed + ahead - self.produced

    def process(self, pcm: bytes) -> bytes:
        """Compress ``pcm`` (PCM16 LE); returns the output that is final so far."""
        self._in = np.concatenate([self._in, np.frombuffer(pcm, dtype="<i2")
                                   .astype(np.float32)])
        out: list[np.ndarray] = []
        hop, win, tol = self.hop, self.window, self.tolerance
        emitted = self.produced  # output samples including this call's, so far
        while not self.reached:
            nominal = int(self._pos)
            # the candidates and the last segment's natural continuation must all be here
            if max(nominal + tol, self._last + hop) + win > len(self._in):
                break
            if self._last < 0:
                # the first segment continues what was played before: its rising half is
                # the input itself (no fade-in from zero)
                start = 0
                out.append(self._in[:hop].copy())
            else:
                lo, hi = max(0, nominal - tol), nominal + tol
                start = self._best_start(lo, hi)
                if self.goal is not None:
                    # saved after this segment = consumed + start - emitted
                    exact = self.goal - self.consumed + emitted
                    if lo <= exact <= hi and exact + win <= len(self._in):
                        start, self.reached = exact, True
                out.append(self._acc + self._in[start:start + hop] * self._win[:hop])
            emitted += hop
            self._acc = self._in[start + hop:start + win] * self._win[hop:]
            self._last = start
            self._pos += hop * self.speed
        self._trim()
        return self._emit(out)

    def flush(self) -> bytes:
        """The rest, uncompressed: the input after the last segment's rising half."""
        rest = self._in if self._last < 0 else self._in[self._last + self.hop:]
        self.consumed += len(self._in)
        self._in = np.zeros(0, dtype=np.float32)
        self._acc = np.zeros(self.hop, dtype=np.float32)
        self._pos, self._last = 0.0, -1
        self.goal, self.reached = None, False
        return self._emit([rest])

    def _best_start(self, lo: int, hi: int) -> int:
        """The start in [lo, hi] whose segment best continues the last one's waveform."""
        hop, win = self.hop, self.window
        natural = self._in[self._last + hop:self._last + hop + win]
        span = self._in[lo:hi + win]
        # cross-correlation of every candidate with the natural continuation, normalised
        # by the candidate's energy so a loud stretch does not win for loudness alone
        corr = np.correlate(span, natural, mode="valid")
        energy = np.convolve(span * span, np.ones(win, dtype=np.float32), mode="valid")
        score = corr / np.sqrt(energy + 1e-3)
        return lo + int(np.argmax(score))

    def _trim(self) -> None:
        """Forget input no future segment or flush can reach."""
        if self._last < 0:
            return
        keep_from = max(0, min(int(self._pos) - self.tolerance, self._last))
        if keep_from:
            self._in = self._in[keep_from:]
            self._pos -= keep_from
            self._last -= keep_from
            self.consumed += keep_from

    def _emit(self, parts: list[np.ndarray]) -> bytes:
        if not parts:
            return b""
        samples = np.concatenate(parts)
        self.produced += len(samples)
        out: bytes = np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()
        return out
