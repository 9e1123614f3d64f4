"""Live quality of a call's two legs, and its recording feed, on the media clock.

Each answered call gets a :class:`CallWatch`. The call hands it every 20 ms frame
the caller's leg delivers (at the agent's rate, after decoding) and every frame of
the agent's audio it plays; the media tick calls :meth:`CallWatch.tick` once per
20 ms. Each tick takes one frame per leg (silence when the leg had none: a gap,
hold, a bridge), so both legs stay on the media clock and never drift apart.

Every :data:`BLOCK_TICKS` ticks (200 ms) the block of each leg is measured in one
vectorised pass: :class:`~telcoflow.audio.quality.AudioQualityMonitor` (level, SNR,
clipping at both rails, score) and the VAD (:mod:`telcoflow.audio.vad`: talk ratio,
double-talk, silence). A block of exact digital silence skips the monitor. The
cost per leg per tick is in ``docs/benchmarks.md`` (``bench/quality_watch.py``).
Calls answered together are spread: each call's first block is 0-9 ticks longer and
each leg's 2 s spectral analysis falls on a block of its own (from the call id).

Alerts use the seed's thresholds (:class:`~telcoflow.audio.quality.QualityThresholds`
defaults). An alert kind is *raised* the first block it fires and *cleared* on the
first non-silent block without it; each edge is logged (call id, leg, kind and
value: no secrets), counted by the observer, kept in the watch's summary and sent to
the call's agent (``call.quality``) if its link can carry it.

The same 200 ms blocks go to the call's :class:`~.ports.CallRecording` when the
gateway records the call: caller and agent, equal length, consecutive.
"""

from __future__ import annotations

import logging
import math
import zlib
from array import array
from collections import deque
from collections.abc import Callable
from operator import and_, or_
from typing import Any

import numpy as np

from ..audio.quality import AudioQualityMonitor, QualityAlert
from ..audio.vad import VoiceActivityDetector, make_engine
from .overload import LoadShed
from .ports import CallObserver, CallRecording, QualityEvent

logger = logging.getLogger(__name__)

BLOCK_TICKS = 10       # 200 ms measured at once
MAX_AHEAD = 10         # frames a leg may run ahead of the clock before the oldest is dropped
TIMELINE_POINTS = 600  # per leg; a longer call keeps every other point (the step doubles)
MAX_ALERTS = 50        # alert edges kept per leg (counts are kept for all)
_BLOCKS_PER_S = 50 // BLOCK_TICKS
ANALYSIS_MS = 2000     # a leg's spectral analysis: every 2 s of audio
_ANALYSIS_BLOCKS = ANALYSIS_MS // (20 * BLOCK_TICKS)
LEGS = ("caller", "agent")


class WatchCost:
    """What measuring costs, over every call of an engine: CPU seconds spent in the
    blocks' measurement, when the owner gives a CPU clock (the engine itself reads
    none). The gateway gives its loop thread's, so ``/metrics`` and the bench can tell
    the watch's share of the gateway's CPU from the media path's.

    ``paused``: while the media plane sheds load (``shed``, see :mod:`.media`) blocks
    are fed to the recording but not measured, and counted as unmeasured. The watch is
    a third of the gateway's CPU; the calls' audio comes first."""

    def __init__(self, cpu_clock: Callable[[], float] | None = None,
                 shed: LoadShed | None = None) -> None:
        self.cpu_clock = cpu_clock
        self.shed = shed or LoadShed()
        self.seconds = 0.0
        self.blocks = 0  # blocks measured (both legs of a call: one)
        self.unmeasured_s = 0.0  # call-seconds of blocks left unmeasured while paused

    @property
    def paused(self) -> bool:
        return self.shed.active

    @paused.setter
    def paused(self, value: bool) -> None:
        self.shed.active = value


class LegMeter:
    """One leg's monitor, VAD and running figures."""

    def __init__(self, name: str, rate: int, vad_engine: str = "webrtc",
                 analysis_phase_ms: int = 0) -> None:
        self.name = name
        # level and clipping exact per block; the spectral analysis (a 300 ms FFT) and the
        # energy SNR every 2 s of audio: the FFT is most of the monitor's cost, and an SNR
        # alert a second or two late is still in time
        self.monitor = AudioQualityMonitor(rate, analysis_ms=300,
                                           analysis_interval_ms=ANALYSIS_MS,
                                           analysis_phase_ms=analysis_phase_ms,
                                           log_alerts=False)  # logged here, with the call
        # the VAD runs at a rate its engine takes natively; 24 kHz is taken down to 8 kHz
        # by keeping every third sample (no filter: folded-down high band is harmless to
        # a speech/no-speech decision, and the VAD's own resampler costs more than the
        # rest of the watch)
        self._decimate = 1 if _native(rate) == rate or rate % 8000 else rate // 8000
        vad_rate = rate // self._decimate
        # 30 ms VAD frames: a third fewer calls into the VAD than 20 ms ones, for the same
        # decisions (a talk ratio needs no finer grain); the detector carries the rest of
        # a block over to the next
        options = {"frame_ms": 30} if vad_engine in ("webrtc", "energy") else {}
        engine = make_engine(vad_engine, _native(vad_rate), **options)
        self.vad = VoiceActivityDetector(vad_rate, engine=engine)
        self._vad_frame = engine.frame_samples * self._decimate  # at ``rate``
        self._skipped = 0  # samples of silent blocks not given to the VAD, under a frame
        self._fired: list[QualityAlert] = []
        self.monitor.add_alert_callback(self._fired.append)
        self.active: set[str] = set()
        self.level_dbfs = -120.0
        self.snr_db: float | None = None     # of the last non-silent block
        self.score: float | None = None
        self.frames = 0
        self.talk_frames = 0
        self.turns = 0                      # talkspurts the VAD found
        self.alerts: list[dict[str, Any]] = []
        self.alert_counts: dict[str, int] = {}
        # the timeline, a point a second: columns of 4-byte numbers (NaN: none yet), not
        # a dict per point (~330 bytes): 200 calls an hour long kept 80 MB of dicts
        self._points: tuple[array[int], array[float], array[float], array[float]] = (
            array("i"), array("f"), array("f"), array("f"))  # t, level, SNR, score
        self._step = 1                      # seconds between timeline points
        self._second_power = 0.0
        self._second_blocks = 0

    def measure(self, block: bytes, silent: bool, at_s: float
                ) -> tuple[list[bool], list[QualityEvent]]:
        """Measure one block; returns the VAD's per-frame decisions and the alert edges."""
        events: list[QualityEvent] = []
        pcm = np.frombuffer(block, "<i2")
        if silent:
            self.level_dbfs = -120.0
            power = 0.0
            self.monitor.note_silence(pcm.size)  # a pause with no noise in it
        else:
            m = self.monitor.analyze_audio_chunk(pcm)
            self.level_dbfs = m.rms_dbfs
            power = 10.0 ** (m.rms_dbfs / 10.0)
            if not m.is_silence:
                if m.snr_method != "none":  # "none": first words, no SNR known yet
                    self.snr_db = m.snr_db
                self.score = m.quality_score
                events = self._edges(m.clipping_percent, at_s)
        if silent and not self.vad.is_speaking:  # digital silence: nothing to ask the VAD
            self._skipped += len(block) // 2
            frames, self._skipped = divmod(self._skipped, self._vad_frame)
            decisions = [False] * frames
        else:
            edges = self.vad.process(pcm[::self._decimate] if self._decimate > 1 else pcm)
            if edges:
                self.turns += sum(e.kind == "speech_start" for e in edges)
            decisions = self.vad.decisions  # per VAD frame (double-talk needs both legs')
        self.frames += len(decisions)
        self.talk_frames += sum(decisions)
        self._second(power, at_s)
        return decisions, events

    def _edges(self, clipping_pct: float, at_s: float) -> list[QualityEvent]:
        if not self._fired and not self.active:  # (most blocks) nothing fired, none to clear
            return []
        fired = {a.kind: a for a in self._fired}
        self._fired.clear()
        events = []
        for kind, alert in fired.items():
            if kind not in self.active:
                self.active.add(kind)
                events.append(QualityEvent(self.name, kind, "raised", round(alert.value, 2),
                                           alert.threshold, round(at_s, 2)))
        for kind in tuple(self.active - fired.keys()):
            self.active.discard(kind)
            value = clipping_pct if kind == "clipping" else (
                self.score if kind == "low_quality_score" else self.snr_db)
            events.append(QualityEvent(self.name, kind, "cleared", round(value or 0.0, 2), 0.0,
                                       round(at_s, 2)))
        for event in events:
            if event.state == "raised":
                self.alert_counts[event.kind] = self.alert_counts.get(event.kind, 0) + 1
            if len(self.alerts) < MAX_ALERTS:
                self.alerts.append(event.public())
        return events

    def _second(self, power: float, at_s: float) -> None:
        """One timeline point per second (per ``_step`` seconds once the call is long)."""
        self._second_power += power
        self._second_blocks += 1
        if self._second_blocks < _BLOCKS_PER_S * self._step:
            return
        mean = self._second_power / self._second_blocks
        points = self._points
        points[0].append(round(at_s))
        points[1].append(_db(mean))
        points[2].append(_nan(self.snr_db))
        points[3].append(_nan(self.score))
        self._second_power, self._second_blocks = 0.0, 0
        if len(points[0]) >= TIMELINE_POINTS:
            for column in points:
                del column[1::2]
            self._step *= 2

    @property
    def timeline(self) -> list[dict[str, Any]]:
        """The points, JSON-ready (``snrDb`` / ``score`` None until the leg spoke)."""
        t, level, snr, score = self._points
        return [{"t": t[i], "levelDbfs": round(level[i], 1), "snrDb": _round(_none(snr[i])),
                 "score": _round(_none(score[i]))} for i in range(len(t))]

    def summary(self, timeline: bool = True) -> dict[str, Any]:
        s = self.monitor.get_quality_summary()
        out: dict[str, Any] = {
            "levelDbfs": round(self.level_dbfs, 1), "snrDb": _round(self.snr_db),
            "clippingPct": round(float(s["clipping_percent"]), 3),
            "score": _round(self.score), "averageScore": _round(s["average_quality_score"]),
            "minScore": _round(s["min_quality_score"]), "averageSnrDb": _round(s["average_snr_db"]),
            "talkRatio": round(self.talk_frames / self.frames, 3) if self.frames else 0.0,
            "turns": self.turns, "activeAlerts": sorted(self.active),
            "alertCounts": dict(self.alert_counts), "alerts": list(self.alerts)}
        if timeline:
            out["timeline"] = self.timeline
        return out


class CallWatch:
    """A call's two :class:`LegMeter` s, fed frame by frame and measured per block."""

    def __init__(self, call_id: str, rate: int, observer: CallObserver,
                 agent: Callable[[], Any], recording: CallRecording | None = None,
                 vad_engine: str = "webrtc", cost: WatchCost | None = None) -> None:
        self.call_id = call_id
        self._cost = cost or WatchCost()
        self.rate = rate
        self._observer = observer
        self._agent = agent  # the call's agent link now (it changes on a reconnect)
        self.recording = recording
        # Calls answered together (a burst of dials, a trunk coming back) must not measure
        # in the same ticks for the rest of their lives: each call's first block is made
        # longer by a phase of its own (0-9 ticks; shorter, its first analysis would be of
        # too little audio to judge) and each leg's 2 s spectral analysis
        # falls on a block of its own (the two legs 1 s apart), from the call id's hash.
        spread = zlib.crc32(call_id.encode())
        self._block_ticks = BLOCK_TICKS + spread % BLOCK_TICKS
        block = 20 * BLOCK_TICKS
        phase = spread // BLOCK_TICKS % _ANALYSIS_BLOCKS
        self.caller = LegMeter("caller", rate, vad_engine, phase * block)
        self.agent = LegMeter("agent", rate, vad_engine,
                              (phase + _ANALYSIS_BLOCKS // 2) % _ANALYSIS_BLOCKS * block)
        frame = rate // 50 * 2
        self._silence = bytes(frame)
        self._silent_block = bytes(frame * (2 * BLOCK_TICKS))  # the first block's too
        # frames given and not yet taken by a tick, and this block's frames, per leg
        # (bounded: a leg running MAX_AHEAD frames ahead of the clock loses its oldest)
        self._caller_in: deque[bytes] = deque(maxlen=MAX_AHEAD)
        self._agent_in: deque[bytes] = deque(maxlen=MAX_AHEAD)
        self._caller_block: list[bytes] = []
        self._agent_block: list[bytes] = []
        self.ticks = 0
        self.dropped = 0        # frames a leg sent beyond MAX_AHEAD (dropped, so no drift)
        self.double_talk = 0    # VAD frames both legs spoke in
        self.both_silent = 0
        self.unmeasured_s = 0.0  # blocks not measured: the watch was paused (overload)
        self.closed = False

    # ── fed by the call ──────────────────────────────────────────────────────
    # (called per frame: the push is written out in each, not shared through a call)
    def caller_frame(self, frame: bytes) -> None:
        self._push(self._caller_in, frame)

    def agent_frame(self, frame: bytes | None) -> None:
        if frame is not None:
            self._push(self._agent_in, frame)

    def _push(self, fifo: deque[bytes], frame: bytes) -> None:
        if len(fifo) == MAX_AHEAD:  # the deque drops the oldest as this one goes in
            self.dropped += 1
        fifo.append(frame)

    def tick(self, agent: bytes | None = None) -> None:
        """One 20 ms of media time: a frame per leg (silence if it had none). ``agent``:
        the agent's frame played in this tick, as if given to :meth:`agent_frame` first
        (one call a tick, not two)."""
        fifo = self._agent_in
        if fifo:  # frames given earlier go first
            self.agent_frame(agent)
            agent = fifo.popleft()
        elif agent is None:
            agent = self._silence
        self._agent_block.append(agent)
        caller, block = self._caller_in, self._caller_block
        block.append(caller.popleft() if caller else self._silence)
        self.ticks += 1
        if len(block) >= self._block_ticks:
            self._block_ticks = BLOCK_TICKS
            self._measure()

    def close(self) -> None:
        """The call ended: measure what is left and close the recording."""
        if self.closed:
            return
        self.closed = True
        if self._caller_block:
            self._measure()
        if self.recording is not None:
            try:
                self.recording.close()
            except Exception:
                logger.exception("closing the recording of call %s failed", self.call_id)

    # ── per block ────────────────────────────────────────────────────────────
    def _measure(self) -> None:
        c, a = b"".join(self._caller_block), b"".join(self._agent_block)
        self._caller_block.clear()
        self._agent_block.clear()
        cost = self._cost
        if cost.paused:  # the process is behind: the audio first (recorded all the same)
            seconds = len(c) / (2 * self.rate)
            self.unmeasured_s += seconds
            cost.unmeasured_s += seconds
        else:
            self._measure_legs(c, a, cost)
        if self.recording is not None:
            try:
                self.recording.write(c, a)
            except Exception:  # a full disk stops the recording, never the call
                logger.exception("recording call %s failed; recording stopped", self.call_id)
                self.recording = None

    def _measure_legs(self, c: bytes, a: bytes, cost: WatchCost) -> None:
        at_s = self.ticks / 50
        cpu = cost.cpu_clock
        started = cpu() if cpu is not None else 0.0
        dc, caller_events = self.caller.measure(c, c == self._silent_block[:len(c)], at_s)
        da, agent_events = self.agent.measure(a, a == self._silent_block[:len(a)], at_s)
        # VAD frames side by side (the shorter leg's count): both spoke, neither did
        self.double_talk += sum(map(and_, dc, da))
        self.both_silent += min(len(dc), len(da)) - sum(map(or_, dc, da))
        cost.blocks += 1
        if cpu is not None:
            cost.seconds += cpu() - started
        if caller_events or agent_events:
            for event in caller_events + agent_events:
                self._tell(event)

    def _tell(self, event: QualityEvent) -> None:
        log = logger.warning if event.state == "raised" else logger.info
        log("call %s: %s leg quality %s %s (%.2f, threshold %.2f)", self.call_id, event.leg,
            event.kind, event.state, event.value, event.threshold)
        if event.state == "raised":
            self._observer.quality_alert(event.leg, event.kind)
        send = getattr(self._agent(), "quality_event", None)
        if send is not None:
            send(event)

    # ── read ─────────────────────────────────────────────────────────────────
    def summary(self, timeline: bool = True) -> dict[str, Any]:
        """JSON-ready figures of both legs (camelCase keys)."""
        frames = min(self.caller.frames, self.agent.frames)
        return {"caller": self.caller.summary(timeline), "agent": self.agent.summary(timeline),
                "doubleTalkRatio": round(self.double_talk / frames, 3) if frames else 0.0,
                "silenceRatio": round(self.both_silent / frames, 3) if frames else 0.0,
                "seconds": round(self.ticks / 50, 2), "droppedFrames": self.dropped,
                "unmeasuredSeconds": round(self.unmeasured_s, 2)}


def _native(rate: int) -> int:
    return rate if rate in (8000, 16000, 32000, 48000) else 16000


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _db(power: float) -> float:
    return round(10.0 * math.log10(power), 1) if power > 1e-12 else -120.0
