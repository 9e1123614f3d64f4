"""Conversation latency analysis: caller stops speaking -> agent starts speaking.

Per turn, the *response latency* is the time from the end of the caller's
speech to the start of the agent's speech that answers it; over a call (or
many) we report p50 / p90 / p99. Three inputs:

* a recording: a stereo WAV as :class:`~telcoflow.audio.recorder.AudioBufferProcessor`
  writes it (caller left, agent right) or two mono tracks; each track goes
  through the VAD (:mod:`telcoflow.audio.vad`) to find speech segments;
* speech segments you already have (``turns_from_segments``);
* logs: timestamped lines naming speech events (``parse_log``). JSON lines
  with ``ts``/``event`` (or ``time``/``type``) fields are read directly; text
  lines need a timestamp (ISO 8601 / ``logging``'s asctime, or epoch seconds)
  and one of the event names in :data:`LOG_EVENTS` (our VAD's, pipecat's and
  OpenAI Realtime's names are included; pass your own mapping to extend).

A turn counts when the agent starts after the caller stopped, with no other
agent start in between. An agent start while the caller is still talking is
an *overlap* (barge-in or talk-over) and is counted separately, not as a
latency. Run ``python -m telcoflow.audio.latency FILE...`` for a table.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from .errors import WavError
from .pcm import PCMInput, as_int16
from .vad import VoiceActivityDetector
from .wav import StrPath, read_wav_channels

__all__ = [
    "LOG_EVENTS",
    "LatencyReport",
    "TurnLatency",
    "analyze_log",
    "analyze_recording",
    "analyze_tracks",
    "parse_log",
    "percentile",
    "speech_segments",
    "turns_from_events",
    "turns_from_segments",
]

Kind = Literal["user_start", "user_stop", "agent_start", "agent_stop"]

#: event names recognised in logs, mapped to what they mean
LOG_EVENTS: dict[str, Kind] = {
    "user_speech_start": "user_start",
    "user_speech_stop": "user_stop",
    "agent_speech_start": "agent_start",
    "agent_speech_stop": "agent_stop",
    "UserStartedSpeakingFrame": "user_start",
    "UserStoppedSpeakingFrame": "user_stop",
    "BotStartedSpeakingFrame": "agent_start",
    "BotStoppedSpeakingFrame": "agent_stop",
    "input_audio_buffer.speech_started": "user_start",
    "input_audio_buffer.speech_stopped": "user_stop",
    "output_audio_buffer.started": "agent_start",
    "output_audio_buffer.stopped": "agent_stop",
}

Segment = tuple[float, float]


@dataclass(frozen=True, slots=True)
class TurnLatency:
    index: int
    user_end: float
    agent_start: float

    @property
    def latency(self) -> float:
        return self.agent_start - self.user_end


@dataclass(frozen=True, slots=True)
class LatencyReport:
    turns: tuple[TurnLatency, ...]
    overlaps: int = 0

    @property
    def latencies(self) -> npt.NDArray[np.float64]:
        return np.array([t.latency for t in self.turns], dtype=np.float64)

    def percentile(self, q: float) -> float | None:
        return percentile(self.latencies, q)

    def summary(self) -> dict[str, float | int | None]:
        lat = self.latencies
        return {
            "turns": len(self.turns),
            "overlaps": self.overlaps,
            "p50": percentile(lat, 50),
            "p90": percentile(lat, 90),
            "p99": percentile(lat, 99),
            "mean": float(lat.mean()) if lat.size else None,
            "min": float(lat.min()) if lat.size else None,
            "max": float(lat.max()) if lat.size else None,
        }

    def table(self) -> str:
        s = self.summary()

        def ms(v: float | int | None) -> str:
            return "-" if v is None else f"{1000 * float(v):.0f} ms"

        lines = [f"{'turn':>4}  {'caller end':>10}  {'agent start':>11}  {'latency':>8}"]
        for t in self.turns:
            lines.append(
                f"{t.index:>4}  {t.user_end:>10.3f}  {t.agent_start:>11.3f}  {ms(t.latency):>8}"
            )
        lines.append(
            f"turns={s['turns']} overlaps={s['overlaps']} p50={ms(s['p50'])} "
            f"p90={ms(s['p90'])} p99={ms(s['p99'])}"
        )
        return "\n".join(lines)


def percentile(values: Sequence[float] | npt.NDArray[np.float64], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), ``None`` for no values."""
    a = np.asarray(values, dtype=np.float64)
    return float(np.percentile(a, q)) if a.size else None


def turns_from_events(events: Iterable[tuple[float, Kind]]) -> LatencyReport:
    """Turns from a time-ordered stream of speech events."""
    turns: list[TurnLatency] = []
    overlaps = 0
    user_speaking = False
    last_user_stop: float | None = None
    for t, kind in sorted(events, key=lambda e: e[0]):
        if kind == "user_start":
            user_speaking = True
        elif kind == "user_stop":
            user_speaking = False
            last_user_stop = t
        elif kind == "agent_start":
            if user_speaking:
                overlaps += 1
            elif last_user_stop is not None:
                turns.append(TurnLatency(len(turns), last_user_stop, t))
            last_user_stop = None
    return LatencyReport(tuple(turns), overlaps)


def turns_from_segments(user: Sequence[Segment], agent: Sequence[Segment]) -> LatencyReport:
    """Turns from speech segments ``(start, end)`` of each party."""
    ev: list[tuple[float, Kind]] = []
    for a, b in user:
        ev += [(a, "user_start"), (b, "user_stop")]
    for a, b in agent:
        ev += [(a, "agent_start"), (b, "agent_stop")]
    # At equal times, stops come before starts (a turn handed over exactly).
    order = {"user_stop": 0, "agent_stop": 0, "user_start": 1, "agent_start": 1}
    ev.sort(key=lambda e: (e[0], order[e[1]]))
    return turns_from_events(ev)


def speech_segments(
    pcm: PCMInput, sample_rate: int, *, engine: str = "webrtc", min_gap: float = 0.3
) -> list[Segment]:
    """Speech segments of a mono track; pauses shorter than ``min_gap`` are bridged."""
    v = VoiceActivityDetector(sample_rate, engine=engine)
    segs: list[Segment] = []
    start: float | None = None
    for e in v.process(as_int16(pcm).reshape(-1)) + v.flush():
        if e.kind == "speech_start":
            start = e.time
        elif start is not None:
            if segs and start - segs[-1][1] < min_gap:
                segs[-1] = (segs[-1][0], e.time)
            else:
                segs.append((start, e.time))
            start = None
    return segs


def analyze_tracks(
    user: PCMInput, agent: PCMInput, sample_rate: int, *, engine: str = "webrtc"
) -> LatencyReport:
    """Latency per turn from a caller track and an agent track on the same clock."""
    return turns_from_segments(
        speech_segments(user, sample_rate, engine=engine),
        speech_segments(agent, sample_rate, engine=engine),
    )


def analyze_recording(path: StrPath, *, engine: str = "webrtc") -> LatencyReport:
    """Latency per turn from a stereo WAV: caller left, agent right."""
    frames, rate = read_wav_channels(path)
    if frames.shape[1] != 2:
        raise WavError(f"{path!s}: need a stereo recording (caller left, agent right)")
    return analyze_tracks(
        np.ascontiguousarray(frames[:, 0]), np.ascontiguousarray(frames[:, 1]), rate, engine=engine
    )


_TS = re.compile(
    r"(?P<iso>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
    r"|(?<![\w.])(?P<epoch>\d{9,11}\.\d+)(?![\w.])"
)


def _parse_ts(text: str) -> float | None:
    m = _TS.search(text)
    if m is None:
        return None
    if m.group("epoch"):
        return float(m.group("epoch"))
    iso = m.group("iso").replace(",", ".").replace(" ", "T").replace("Z", "+00:00")
    return datetime.fromisoformat(iso).timestamp()


def parse_log(
    lines: Iterable[str], events: dict[str, Kind] | None = None
) -> list[tuple[float, Kind]]:
    """Timestamped speech events from log lines (JSON lines or text, see module doc)."""
    names = LOG_EVENTS if events is None else events
    pattern = re.compile("|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)))
    out: list[tuple[float, Kind]] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                name = obj.get("event", obj.get("type"))
                ts = obj.get("ts", obj.get("time", obj.get("timestamp")))
                if isinstance(name, str) and name in names and ts is not None:
                    t = float(ts) if isinstance(ts, int | float) else _parse_ts(str(ts))
                    if t is not None:
                        out.append((t, names[name]))
                continue
        m = pattern.search(line)
        if m is None:
            continue
        t = _parse_ts(line)
        if t is not None:
            out.append((t, names[m.group(0)]))
    return out


def analyze_log(lines: Iterable[str], events: dict[str, Kind] | None = None) -> LatencyReport:
    return turns_from_events(parse_log(lines, events))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m telcoflow.audio.latency RECORDING.wav|LOGFILE ...", file=sys.stderr)
        return 2
    for path in args:
        if path.lower().endswith(".wav"):
            report = analyze_recording(path)
        else:
            with open(path, encoding="utf-8", errors="replace") as f:
                report = analyze_log(f)
        print(f"== {path}")
        print(report.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
