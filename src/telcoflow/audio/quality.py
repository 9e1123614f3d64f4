"""Audio quality monitoring: SNR, THD, clipping and a 0-100 score per chunk.

One :class:`AudioQualityMonitor` per stream; feed it every chunk with
:meth:`~AudioQualityMonitor.analyze_audio_chunk` (PCM16 LE bytes), read the
returned :class:`QualityMetrics`, register alert callbacks, and ask for
:meth:`~AudioQualityMonitor.get_quality_summary` at the end. How each figure
is computed:

Clipping
    Exact count of samples at or beyond ``±clip_level`` (default 32767: both
    rails symmetrically, so audio clipped at -32767, the usual result of
    scaling float audio by 32767, counts on its negative side too).
    ``clipping_percent = 100 * clipped / samples``.

SNR (``snr_db``), two estimators, the one used is in ``snr_method``:

* ``"energy"`` -- the call-level estimate. The powers of 10 ms frames,
  weighted with an exponential fade of time constant ``history_seconds``, are
  split into a quiet and a loud class by Otsu's method on their dB values.
  When the classes are at least 6 dB apart and each holds at least 5 % of
  the (weighted) frames, ``S + N`` is the mean power of the loud ones (of all
  frames when they do not split). The noise power ``N`` is the mean power of
  the *pauses*: runs of ``PAUSE_FRAMES`` (200 ms) or more quiet frames whose
  level holds (std <= 3 dB), faded alike; digital silence an owner skipped
  and reported with :meth:`~AudioQualityMonitor.note_silence` is a pause with
  no noise. ``SNR = 10 log10((S+N - N) / N)``: the SNR of speech against the
  noise in its pauses, and none until a pause was seen within the history
  (speech alone splits into loud vowels and soft consonants 6+ dB apart, and
  soft speech is not noise).
* ``"spectral"`` -- used when there are no pauses to learn the noise from
  (e.g. a continuous test tone). Harmonic analysis of the chunk (below):
  ``SNR = 10 log10(P1 / Pnoise)``, where ``Pnoise`` is the mean power of the
  bins outside the DC, fundamental and harmonic lobes times the number of bins
  in the band (the IEEE 1241 definition: harmonics count neither as signal
  nor as noise).
* ``"none"`` -- neither applies: no pauses learnt yet and the audio is not
  tonal (the fundamental carries under half its power, or the level does not
  hold within 3 dB across the window: speech, noise). The
  spectral figure of speech says nothing of its noise (clean speech reads
  about -4 dB), so ``snr_db`` is still that figure but it raises no
  ``low_snr``, costs the score nothing and is left out of the averages. A
  call's first words are in this state until its pauses give an energy SNR.

THD (``thd_percent``)
    Harmonic analysis: 4-term Blackman-Harris window (sidelobes < -92 dB),
    real FFT, fundamental = strongest peak above the DC lobe; the power of
    each lobe (±5 bins) minus the noise expected in it gives ``P1`` and
    ``Ph`` for harmonics h = 2..10 below Nyquist (a harmonic lobe holding
    less than 4x the noise expected in it counts as 0, so noise is not
    mistaken for distortion);
    ``THD = 100 * sqrt(sum(Ph)) / sqrt(P1)`` (amplitude ratio). It is only
    meaningful for a periodic signal, so it is computed only when the
    fundamental carries at least half of the chunk's power
    and its level holds within 3 dB over the window's 20 ms frames
    (``thd_valid``: tonal); otherwise it is reported as 0. A vowel's harmonics
    are the voice, not distortion, and its level moves from syllable to syllable.

Score (``quality_score``, 0..100)
    ``100 - min(60, 1.5 * max(0, 40 - SNR)) - min(30, 10 * THD%)
    - min(40, 20 * clipping%)``, floored at 0. So 40 dB SNR, no distortion
    and no clipping scores 100; 20 dB SNR alone scores 70.

Cadence: clipping and level are exact per chunk. The harmonic analysis and
the SNR run on the last ``analysis_ms`` (default 200 ms) of audio, once per
``analysis_ms`` of new audio or on every chunk that long (the energy SNR is
refreshed once per second of audio); in between, a chunk's metrics carry the
latest analysis. This keeps the cost per 20 ms
frame low and gives the FFT enough resolution.

Alerts fire for chunks that are not silent (RMS above ``silence_dbfs``):
``low_snr``, ``high_thd`` (valid THD only), ``clipping``, ``low_quality_score``.
Callbacks get every alerting chunk; the log gets one warning when an alert
kind starts and one info line when it clears (no log flood on a bad line), unless
``log_alerts=False`` (an owner that logs the edges itself, with the call's id).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .pcm import PCMInput, as_int16

__all__ = [
    "AudioQualityMonitor",
    "HarmonicAnalysis",
    "QualityAlert",
    "QualityMetrics",
    "QualityThresholds",
    "harmonic_analysis",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_LOBE = 5  # half-width in bins of a Blackman-Harris main lobe, with margin
_MAX_HARMONIC = 10
_BH4 = (0.35875, 0.48829, 0.14128, 0.01168)
_EPS = 1e-20
_I2 = np.dtype("<i2")


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    min_snr_db: float = 20.0
    max_thd_percent: float = 1.0
    max_clipping_percent: float = 0.1
    min_quality_score: float = 60.0


@dataclass(slots=True)
class QualityMetrics:
    snr_db: float
    thd_percent: float
    clipping_percent: float
    quality_score: float
    rms_dbfs: float = -120.0
    peak: int = 0
    clipped_samples: int = 0
    samples: int = 0
    fundamental_hz: float = 0.0
    thd_valid: bool = False
    snr_method: str = "spectral"
    is_silence: bool = False
    chunk_index: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class QualityAlert:
    kind: str  # low_snr | high_thd | clipping | low_quality_score
    value: float
    threshold: float
    metrics: QualityMetrics


@dataclass(frozen=True, slots=True)
class HarmonicAnalysis:
    fundamental_hz: float
    fundamental_power: float
    harmonic_power: float
    noise_power: float
    total_power: float

    @property
    def snr_db(self) -> float:
        return 10.0 * float(
            np.log10(max(self.fundamental_power, _EPS) / max(self.noise_power, _EPS))
        )

    @property
    def thd_percent(self) -> float:
        return 100.0 * float(np.sqrt(self.harmonic_power / max(self.fundamental_power, _EPS)))

    @property
    def fundamental_fraction(self) -> float:
        return self.fundamental_power / max(self.total_power, _EPS)


_windows: dict[int, npt.NDArray[np.float64]] = {}


def _window(n: int) -> npt.NDArray[np.float64]:
    w = _windows.get(n)
    if w is None:
        k = 2.0 * np.pi * np.arange(n) / n
        a0, a1, a2, a3 = _BH4
        w = a0 - a1 * np.cos(k) + a2 * np.cos(2 * k) - a3 * np.cos(3 * k)
        if len(_windows) < 64:
            _windows[n] = w
    return w


def harmonic_analysis(x: npt.ArrayLike, sample_rate: int) -> HarmonicAnalysis:
    """Fundamental, harmonic and noise powers of ``x`` (any scale; ratios are what count)."""
    a = np.asarray(x, dtype=np.float64)
    n = a.size
    if n < 8 * _LOBE:
        return HarmonicAnalysis(0.0, 0.0, 0.0, 0.0, 0.0)
    spec = np.fft.rfft(a * _window(n))  # DC falls in the excluded DC lobe
    p = spec.real * spec.real + spec.imag * spec.imag
    nb = p.size
    k0 = int(np.argmax(p[_LOBE + 1 :])) + _LOBE + 1  # skip the DC lobe
    if p[k0] <= _EPS:
        return HarmonicAnalysis(0.0, 0.0, 0.0, 0.0, 0.0)
    # Parabolic interpolation of the log-power peak gives the frequency between bins.
    frac = 0.0
    if k0 < nb - 1:
        la, lb, lc = (math.log(float(v) + _EPS) for v in p[k0 - 1 : k0 + 2])
        den = la - 2.0 * lb + lc
        frac = 0.5 * (la - lc) / den if den != 0.0 else 0.0
    f0_bins = k0 + frac
    half = max(1, min(_LOBE, int(f0_bins // 2)))  # lobes of close harmonics must not overlap
    h = np.arange(1, _MAX_HARMONIC + 1)
    centers = np.rint(h * f0_bins).astype(np.int64)
    centers = centers[centers + half < nb - 1]
    idx = centers[:, None] + np.arange(-half, half + 1)[None, :]
    used = np.zeros(nb, dtype=bool)
    used[: _LOBE + 1] = True  # DC lobe
    used[-1] = True  # the Nyquist bin has half weight; leave it out
    used[idx.ravel()] = True
    free = p[~used]
    noise_bin = float(free.mean()) if free.size else 0.0
    expected = noise_bin * (2 * half + 1)  # noise power expected inside one lobe
    raw = p[idx].sum(axis=1)
    # A harmonic counts only when its lobe clearly stands above the noise (4x), so
    # noise alone does not read as distortion at low SNR.
    lobe = np.where(raw > 4.0 * expected, raw - expected, 0.0)
    if lobe.size:
        lobe[0] = max(float(raw[0]) - expected, 0.0)
    return HarmonicAnalysis(
        fundamental_hz=f0_bins * sample_rate / n,
        fundamental_power=float(lobe[0]) if lobe.size else 0.0,
        harmonic_power=float(lobe[1:].sum()),
        noise_power=noise_bin * n / 2.0,
        total_power=float(p[_LOBE + 1 :].sum()),
    )


class _FrameHistogram:
    """Exponentially weighted histogram of 10 ms frame powers, for the energy SNR.

    Frames are binned by level (0.5 dB bins, -130..+10 dBFS); each bin keeps a
    weight and the weighted sum of linear powers, so class means are exact and
    the Otsu split costs one pass over 280 bins instead of a sort of the
    history. Older frames fade with time constant ``capacity`` frames.
    """

    LO_DB = -130.0
    STEP_DB = 0.5
    BINS = 280

    def __init__(self, capacity: int) -> None:
        self.counts = np.zeros(self.BINS, dtype=np.float64)
        self.sums = np.zeros(self.BINS, dtype=np.float64)
        self.capacity = capacity
        self._decay = math.exp(-1.0 / capacity)
        self.size = 0  # frames seen (for the minimum-history rule)
        self._centers = self.LO_DB + self.STEP_DB * (np.arange(self.BINS) + 0.5)

    def add(self, powers: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Add normalised frame powers (1.0 = full-scale square wave), vectorised;
        returns their levels in dB."""
        k = powers.size
        if k == 0:
            return powers
        fade = self._decay**k
        self.counts *= fade
        self.sums *= fade
        db = 10.0 * np.log10(powers + 1e-14)
        bins = np.clip(((db - self.LO_DB) / self.STEP_DB).astype(np.int64), 0, self.BINS - 1)
        # Frames within this batch fade too: the newest has weight 1.
        w = self._decay ** np.arange(k - 1, -1, -1, dtype=np.float64)
        self.counts += np.bincount(bins, weights=w, minlength=self.BINS)
        self.sums += np.bincount(bins, weights=w * powers, minlength=self.BINS)
        self.size += k
        return db

    def split(self) -> tuple[float, float, float] | None:
        """Otsu split on levels: (the classes' SNR, the level in dB below which a frame
        is in the quiet class, the loud class's mean power); ``None`` unless two classes
        >= 6 dB apart, >= 5 % each."""
        if self.size < 20:
            return None
        c = self.counts
        n = float(c.sum())
        cv = c * self._centers
        w0 = np.cumsum(c)[:-1]  # frames below split k = 1..BINS-1
        a = np.cumsum(cv)[:-1]
        w1 = n - w0
        ok = (w0 > 0) & (w1 > 0)
        if not ok.any():
            return None
        # Between-class variance w0*w1*(mu0-mu1)^2 == (a*n - w0*T)^2 / (w0*w1).
        between = np.where(
            ok, (a * n - w0 * float(cv.sum())) ** 2 / np.where(ok, w0 * w1, 1.0), -1.0
        )
        k = int(np.argmax(between)) + 1  # bins [0, k) quiet, [k, BINS) loud
        nq, nl = float(c[:k].sum()), float(c[k:].sum())
        if min(nq, nl) < n / 20.0:
            return None
        mean_q = float((c[:k] * self._centers[:k]).sum()) / nq
        mean_l = float((c[k:] * self._centers[k:]).sum()) / nl
        if mean_l - mean_q < 6.0:
            return None
        noise = max(float(self.sums[:k].sum()) / nq, _EPS)
        loud = float(self.sums[k:].sum()) / nl
        return (10.0 * float(np.log10(max(loud - noise, _EPS) / noise)),
                self.LO_DB + self.STEP_DB * k, loud)

    def mean_power(self) -> float:
        """The (faded) mean power of all frames added."""
        n = float(self.counts.sum())
        return float(self.sums.sum()) / n if n > 0.0 else 0.0

    def fade(self, frames: int) -> float:
        """What ``frames`` frames of history fade a weight by."""
        return float(self._decay**frames)

    def clear(self) -> None:
        self.counts[:] = 0.0
        self.sums[:] = 0.0
        self.size = 0


PAUSE_FRAMES = 20  # 200 ms of 10 ms frames in the quiet class: a pause, not a consonant
PAUSE_SPREAD_DB = 3.0  # a pause's frames' levels vary less than this (std)
_STEADY_RATIO = 2.0  # 3 dB: a tone in noise (SNR >= 0 dB) varies under 1.5 dB


def _steady(x: npt.NDArray[np.int16], frame: int) -> bool:
    """Whether the level of ``x`` holds within 3 dB over its 20 ms frames (``frame``
    samples): a tone's does, at any SNR the monitor judges; speech's syllables do not."""
    n = x.size // frame
    if n < 2:
        return True
    f = x[x.size - n * frame:].astype(np.float64).reshape(n, frame)
    powers = np.einsum("ij,ij->i", f, f)
    return bool(powers.max() <= _STEADY_RATIO * powers.min())


@dataclass(frozen=True, slots=True)
class _Analysis:
    """What every chunk until the next analysis reports from it (worked out once)."""

    fundamental_hz: float
    thd_valid: bool
    thd: float
    snr: float  # the energy SNR if there is one, else the spectral one
    method: str

    @classmethod
    def of(cls, ha: HarmonicAnalysis, energy: float | None, steady: bool = True) -> _Analysis:
        # tonal: one frequency carries most of the power and the level holds (a test tone,
        # a hum, a whistle); a vowel passes the first test but not the second
        thd_valid = ha.fundamental_fraction >= 0.5 and steady
        snr, method = (energy, "energy") if energy is not None else (
            ha.snr_db, "spectral" if thd_valid else "none")
        return cls(ha.fundamental_hz, thd_valid, ha.thd_percent if thd_valid else 0.0,
                   float(snr), method)


@dataclass
class _Totals:
    chunks: int = 0
    samples: int = 0
    clipped: int = 0
    voiced: int = 0  # non-silent chunks, over which SNR and score are averaged
    snr_n: int = 0  # voiced chunks with a known SNR (not "none")
    snr_sum: float = 0.0
    snr_min: float = math.inf
    score_sum: float = 0.0
    score_min: float = math.inf
    thd_n: int = 0
    thd_sum: float = 0.0
    alerts: Counter[str] = field(default_factory=Counter)
    active: set[str] = field(default_factory=set)  # alert kinds currently firing


class AudioQualityMonitor:
    """Per-stream quality analysis of PCM16 chunks (see the module docstring)."""

    def __init__(
        self,
        sample_rate: int = 16000,
        thresholds: QualityThresholds | None = None,
        *,
        history_seconds: float = 10.0,
        analysis_ms: int = 200,
        analysis_interval_ms: int = 400,
        analysis_phase_ms: int = 0,
        clip_level: int = 32767,
        silence_dbfs: float = -60.0,
        log_alerts: bool = True,
    ) -> None:
        self.sample_rate = sample_rate
        self.thresholds = thresholds or QualityThresholds()
        self.clip_level = clip_level
        self.silence_dbfs = silence_dbfs
        # False: the owner logs alert edges itself, with what it knows (a call's id)
        self.log_alerts = log_alerts
        self._frame = max(sample_rate // 100, 1)
        self._hist = _FrameHistogram(max(int(history_seconds * 100), 20))
        self._pending = np.zeros(0, dtype=np.int16)  # < 10 ms left over from framing
        self._window_samples = max(sample_rate * analysis_ms // 1000, 64)
        self._interval_samples = max(sample_rate * analysis_interval_ms // 1000, 1)
        # the periodic analyses come this much sooner after the first one: many streams
        # started together (calls answered in a burst) then spread their analyses over
        # the interval instead of all running theirs in the same 20 ms
        self._phase_samples = sample_rate * analysis_phase_ms // 1000 % self._interval_samples
        # the newest audio, at least a window of it (the spectrum's), as the chunks came
        self._tail: deque[npt.NDArray[np.int16]] = deque()
        self._tail_samples = 0
        # 10 ms frame powers (sums of squares) since the last analysis, for the energy
        # SNR: worked out per chunk (a chunk of whole frames has them from its level's
        # sum), not over all the audio at each analysis
        self._powers: list[npt.NDArray[np.float64]] = []
        self._fresh = 0  # samples since the last analysis
        self._since = 0  # the same, less the first analysis's phase
        self._since_snr = 0  # samples since the energy SNR was last recomputed (every 1 s)
        # the split of the levels: (quiet below this dB, the loud class's mean power)
        self._split: tuple[float, float] | None = None
        self._split_due = True
        # An energy SNR needs pauses to learn the noise from: runs of PAUSE_FRAMES
        # frames in the quiet class. Speech alone splits into loud vowels and soft
        # consonants 6+ dB apart, and soft speech in the quiet class would pass for
        # noise: the noise is the mean power of the pauses' frames (faded like the
        # histogram), and with no pause within the history there is no energy SNR.
        self._noise = [0.0, 0.0]  # faded sum of pause frames' powers, their faded count
        self._quiet_run = 0  # quiet frames at the end of the audio so far
        self._frames_seen = 0
        self._pause_seen_at: int | None = None  # frame count at the last pause's end
        self._history_frames = max(int(history_seconds * 100), 20)
        self._analysis: _Analysis | None = None
        self._callbacks: list[Callable[[QualityAlert], object]] = []
        self._totals = _Totals()
        self.last_metrics: QualityMetrics | None = None

    def add_alert_callback(self, callback: Callable[[QualityAlert], object]) -> None:
        """``callback(alert)`` is called for every alert raised."""
        self._callbacks.append(callback)

    def remove_alert_callback(self, callback: Callable[[QualityAlert], object]) -> None:
        self._callbacks.remove(callback)

    def _analyse(self) -> None:
        # the spectrum is of the last window of audio (or of the last chunk, if longer),
        # however much came since the last analysis: an interval longer than the window
        # must not make the transform longer too (a 2 s FFT costs ~7x a 300 ms one)
        self._since = self._phase_samples if self._analysis is None else 0
        powers = self._powers
        levels = None
        if powers:
            p = np.concatenate(powers) if len(powers) > 1 else powers[0]
            powers.clear()
            if p.size:
                levels = self._hist.add(p / (self._frame * 32768.0**2))
        w = max(self._window_samples, self._tail[-1].size)
        tail = self._tail
        recent = (np.concatenate(tail) if len(tail) > 1 else tail[0])[-w:]
        self._since_snr += self._fresh
        self._fresh = 0
        if self._split_due or self._since_snr >= self.sample_rate:
            split = self._hist.split()
            self._split = None if split is None else split[1:]
            self._since_snr = 0
        if levels is not None:
            self._look_for_pauses(levels)
        self._analysis = _Analysis.of(harmonic_analysis(recent, self.sample_rate),
                                      self._energy_snr(), _steady(recent, 2 * self._frame))

    def note_silence(self, samples: int) -> None:
        """``samples`` of digital silence went by unanalysed (an owner that skips them):
        a pause with no noise in it. Nothing else is counted."""
        frames = samples // self._frame
        self._frames_seen += frames
        fade = self._hist.fade(frames)
        self._noise[0] *= fade
        self._noise[1] = self._noise[1] * fade + frames
        self._quiet_run = 0
        if frames >= PAUSE_FRAMES:
            self._pause_seen_at = self._frames_seen

    def _energy_snr(self) -> float | None:
        """Speech (the loud class) against the noise in its pauses, if both are known."""
        paused = (self._pause_seen_at is not None
                  and self._frames_seen - self._pause_seen_at < self._history_frames)
        # until a pause is seen the split is redone at every analysis: the first one
        # may be of a single block of speech
        self._split_due = not paused
        if not paused:
            return None
        # speech: the loud class, or all of it when the levels do not split (pauses of
        # digital silence the owner skipped, so the histogram holds only speech)
        loud = self._split[1] if self._split is not None else self._hist.mean_power()
        noise = max(self._noise[0] / self._noise[1], _EPS)
        return 10.0 * math.log10(max(loud - noise, _EPS) / noise)

    def _look_for_pauses(self, levels: npt.NDArray[np.float64]) -> None:
        """Learn the noise from the runs of :data:`PAUSE_FRAMES` quiet frames or more in
        ``levels`` (the frames since the last look, in order; a run may span looks)."""
        self._frames_seen += levels.size
        fade = self._hist.fade(levels.size)
        self._noise[0] *= fade
        self._noise[1] *= fade
        if self._split is None:
            self._quiet_run = 0
            return
        quiet = levels < self._split[0]
        edges = np.flatnonzero(np.diff(quiet.view(np.int8), prepend=0, append=0))
        runs = edges.reshape(-1, 2)  # [start, end) of each run of quiet frames
        if not runs.size:
            self._quiet_run = 0
            return
        lengths = runs[:, 1] - runs[:, 0]
        if runs[0, 0] == 0:
            lengths[0] += self._quiet_run
        self._quiet_run = int(lengths[-1]) if runs[-1, 1] == levels.size else 0
        # a pause's level holds (noise, or digital silence); a soft stretch of speech (a
        # fricative, a trailing vowel) falls or rises through it
        pauses = [levels[a:b] for a, b in runs[lengths >= PAUSE_FRAMES]
                  if float(np.std(levels[a:b])) <= PAUSE_SPREAD_DB]
        if pauses:
            self._pause_seen_at = self._frames_seen
            frames = np.concatenate(pauses) if len(pauses) > 1 else pauses[0]
            self._noise[0] += float(np.sum(10.0 ** (frames / 10.0)))
            self._noise[1] += float(frames.size)

    def _frame_powers(self, x16: npt.NDArray[np.int16]) -> None:
        """10 ms frame powers of a chunk that is not whole frames (or follows one that
        was not): framed across chunks, the rest kept for the next."""
        data = np.concatenate((self._pending, x16)) if self._pending.size else x16
        nf = data.size // self._frame
        if nf:
            fr = data[: nf * self._frame].astype(np.float64).reshape(nf, self._frame)
            self._powers.append(np.einsum("ij,ij->i", fr, fr))
        self._pending = data[nf * self._frame :].copy()

    def _keep(self, x16: npt.NDArray[np.int16]) -> None:
        """Keep the newest chunk and as many before it as make up a window."""
        tail = self._tail
        tail.append(x16)
        self._tail_samples += x16.size
        while len(tail) > 1 and self._tail_samples - tail[0].size >= self._window_samples:
            self._tail_samples -= tail.popleft().size

    def analyze_audio_chunk(self, audio_bytes: PCMInput) -> QualityMetrics:
        """Analyse one chunk of PCM16 mono at ``sample_rate``."""
        x16 = as_int16(audio_bytes).reshape(-1)
        n = int(x16.size)
        t = self._totals
        hi = int(x16.max()) if n else 0
        lo = int(x16.min()) if n else 0
        peak = max(hi, -lo)
        clipped = 0
        if peak >= self.clip_level:
            clipped = int(
                np.count_nonzero((x16 >= self.clip_level) | (x16 <= -self.clip_level))
            )
        x = x16.astype(np.float64)
        frame = self._frame
        if n and not n % frame and not self._pending.size:  # whole frames (a watch's blocks)
            xr = x.reshape(n // frame, frame)
            p = np.einsum("ij,ij->i", xr, xr)
            self._powers.append(p)
            ms = float(p.sum()) / n
        else:
            ms = float(np.dot(x, x)) / n if n else 0.0
            self._frame_powers(x16)
        rms_dbfs = 10.0 * math.log10(ms / 32768.0**2 + 1e-12)
        # Spectral analysis and the SNR run once per analysis window of new audio
        # (or on every chunk that is itself at least that long).
        self._keep(x16)
        self._fresh += n
        self._since += n
        if (
            self._analysis is None
            or self._since >= self._interval_samples
            or n >= self._window_samples
        ):
            self._analyse()
        a = self._analysis
        assert a is not None
        thd_valid, thd = a.thd_valid, a.thd
        snr = min(max(a.snr, -20.0), 120.0) if ms != 0.0 else 0.0
        clip_pct = 100.0 * clipped / n if n else 0.0
        known = a.method != "none"  # an SNR that says something (see the module doc)
        score = 100.0 - (min(60.0, 1.5 * max(0.0, 40.0 - snr)) if known else 0.0)
        score = max(score - (min(30.0, 10.0 * thd) + min(40.0, 20.0 * clip_pct)), 0.0)
        silent = rms_dbfs < self.silence_dbfs
        # positional, in QualityMetrics' field order (once per chunk)
        m = QualityMetrics(snr, thd, clip_pct, score, rms_dbfs, peak, clipped, n,
                           a.fundamental_hz, thd_valid, a.method, silent, t.chunks)
        t.chunks += 1
        t.samples += n
        t.clipped += clipped
        if not silent:
            t.voiced += 1
            if known:
                t.snr_n += 1
                t.snr_sum += snr
                t.snr_min = min(t.snr_min, snr)
            t.score_sum += score
            t.score_min = min(t.score_min, score)
            if thd_valid:
                t.thd_n += 1
                t.thd_sum += thd
            self._check_quality_alerts(m)
        self.last_metrics = m
        return m

    def _check_quality_alerts(self, m: QualityMetrics) -> None:
        th = self.thresholds
        active = self._totals.active
        low_snr = m.snr_db < th.min_snr_db and m.snr_method != "none"  # "none": not known
        if (
            not active
            and not low_snr
            and not (m.thd_valid and m.thd_percent > th.max_thd_percent)
            and m.clipping_percent <= th.max_clipping_percent
            and m.quality_score >= th.min_quality_score
        ):
            return
        checks = (
            ("low_snr", low_snr, m.snr_db, th.min_snr_db),
            (
                "high_thd",
                m.thd_valid and m.thd_percent > th.max_thd_percent,
                m.thd_percent,
                th.max_thd_percent,
            ),
            (
                "clipping",
                m.clipping_percent > th.max_clipping_percent,
                m.clipping_percent,
                th.max_clipping_percent,
            ),
            (
                "low_quality_score",
                m.quality_score < th.min_quality_score,
                m.quality_score,
                th.min_quality_score,
            ),
        )
        for kind, bad, value, threshold in checks:
            if not bad:
                if kind in active:
                    active.discard(kind)
                    if self.log_alerts:
                        logger.info("audio quality recovered: %s (%.2f)", kind, value)
                continue
            if kind not in active:  # log on the edge only; callbacks see every chunk
                active.add(kind)
                if self.log_alerts:
                    logger.warning(
                        "audio quality alert %s: %.2f (threshold %.2f)", kind, value, threshold
                    )
            self._totals.alerts[kind] += 1
            alert = QualityAlert(kind, value, threshold, m)
            for cb in list(self._callbacks):
                try:
                    cb(alert)
                except Exception:
                    logger.exception("quality alert callback failed")

    def get_quality_summary(self) -> dict[str, Any]:
        """Totals and averages over all chunks analysed (silent chunks excluded from averages)."""
        t = self._totals
        v = t.voiced
        return {
            "chunks_analyzed": t.chunks,
            "duration_seconds": t.samples / self.sample_rate,
            "average_snr_db": t.snr_sum / t.snr_n if t.snr_n else None,
            "min_snr_db": t.snr_min if t.snr_n else None,
            "average_thd_percent": t.thd_sum / t.thd_n if t.thd_n else None,
            "clipped_samples": t.clipped,
            "clipping_percent": 100.0 * t.clipped / t.samples if t.samples else 0.0,
            "average_quality_score": t.score_sum / v if v else None,
            "min_quality_score": t.score_min if v else None,
            "alerts": dict(t.alerts),
            "total_alerts": sum(t.alerts.values()),
            "active_alerts": sorted(t.active),
            "thresholds": asdict(self.thresholds),
        }

    def reset(self) -> None:
        self._hist.clear()
        self._pending = np.zeros(0, dtype=np.int16)
        self._tail.clear()
        self._tail_samples = 0
        self._powers.clear()
        self._fresh = 0
        self._since = 0
        self._since_snr = 0
        self._split, self._split_due = None, True
        self._noise = [0.0, 0.0]
        self._quiet_run = self._frames_seen = 0
        self._pause_seen_at = None
        self._analysis = None
        self._totals = _Totals()
        self.last_metrics = None
