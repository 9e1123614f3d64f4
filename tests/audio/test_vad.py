from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from telcoflow.audio import synth
from telcoflow.audio.errors import VADError
from telcoflow.audio.vad import (
    SPEECH_START_THRESHOLD,
    SPEECH_STOP_THRESHOLD,
    VADEvent,
    VoiceActivityDetector,
)


class ScriptedEngine:
    """Engine whose decision is the sign of the frame's first sample (test double)."""

    sample_rate = 8000
    frame_samples = 160

    def is_speech(self, frame: npt.NDArray[np.int16]) -> bool:
        return bool(frame[0] > 0)

    def reset(self) -> None:
        pass


def _frames(pattern: str) -> bytes:
    return b"".join(np.full(160, 1 if c == "1" else 0, "<i2").tobytes() for c in pattern)


def _kinds(events: list[VADEvent]) -> list[tuple[str, float, float]]:
    return [(e.kind, round(e.time, 3), round(e.detected_at, 3)) for e in events]


def test_seed_defaults() -> None:
    assert (SPEECH_START_THRESHOLD, SPEECH_STOP_THRESHOLD) == (2, 3)


def test_hysteresis_start_after_2_stop_after_3() -> None:
    v = VoiceActivityDetector(8000, engine=ScriptedEngine())
    # A 1-frame blip is ignored; 2 speech frames start; a 2-frame pause does not stop;
    # 3 silent frames stop. Times: where it happened / when it was confirmed.
    ev = v.process(_frames("0010011001100011000"))
    assert _kinds(ev) == [
        ("speech_start", 0.1, 0.14),
        ("speech_stop", 0.22, 0.28),
        ("speech_start", 0.28, 0.32),
        ("speech_stop", 0.32, 0.38),
    ]
    assert not v.is_speaking


def test_events_independent_of_chunking_and_start_time() -> None:
    pcm = _frames("000111111000011110000000111")
    whole = VoiceActivityDetector(8000, engine=ScriptedEngine(), start_time=5.0)
    ref = whole.process(pcm) + whole.flush()
    rng = np.random.default_rng(0)
    chunked = VoiceActivityDetector(8000, engine=ScriptedEngine(), start_time=5.0)
    got: list[VADEvent] = []
    i = 0
    while i < len(pcm):
        n = 2 * int(rng.integers(1, 300))
        got += chunked.process(pcm[i : i + n])
        i += n
    got += chunked.flush()
    assert got == ref
    assert [e.kind for e in ref] == ["speech_start", "speech_stop"] * 3
    assert ref[0].time == pytest.approx(5.06)
    assert ref[-1].time == pytest.approx(5.0 + 27 * 0.02)  # closed by flush at the end


def test_callbacks_and_custom_thresholds() -> None:
    starts: list[VADEvent] = []
    stops: list[VADEvent] = []
    v = VoiceActivityDetector(
        8000,
        engine=ScriptedEngine(),
        speech_start_threshold=1,
        speech_stop_threshold=1,
        on_speech_start=starts.append,
        on_speech_stop=stops.append,
    )
    v.process(_frames("0101"))
    assert [e.time for e in starts] == pytest.approx([0.02, 0.06])
    assert [e.time for e in stops] == pytest.approx([0.04])


def _utterance_signal(rate: int) -> tuple[np.ndarray, float, float]:
    if synth.tts_available():
        words = "Hello, I would like to check my order status please."
        speech = synth.tts(words, rate).astype(np.float64)
    else:  # pragma: no cover - espeakng-loader is a dev dependency
        speech = synth.speech_like(2.0, rate, seed=3)
    lead, tail = 1.0, 1.0
    x = np.concatenate([synth.silence(lead, rate), speech, synth.silence(tail, rate)])
    x = x + synth.white_noise(x.size / rate, rate, 30.0, seed=7)  # ~ -60 dBFS line noise
    return synth.to_int16(x), lead, lead + speech.size / rate


@pytest.mark.parametrize("engine", ["webrtc", "energy"])
@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_real_engines_find_the_utterance(engine: str, rate: int) -> None:
    x, start, end = _utterance_signal(rate)
    v = VoiceActivityDetector(rate, engine=engine)
    # Webrtc's noise model needs a moment: prime it on the first 0.5 s of line noise.
    ev = [e for e in v.process(x) + v.flush() if e.time >= 0.5]
    starts = [e.time for e in ev if e.kind == "speech_start"]
    stops = [e.time for e in ev if e.kind == "speech_stop"]
    assert starts and stops
    assert starts[0] == pytest.approx(start, abs=0.15)
    assert stops[-1] == pytest.approx(end, abs=0.35)  # includes the engines' own hangover


def test_silero_ignores_ringback_tone() -> None:
    rate = 8000
    t = np.arange(3 * rate) / rate
    ring = 4000 * (np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t)) * ((t % 2) < 1)
    x = synth.to_int16(ring)
    silero = VoiceActivityDetector(rate, engine="silero")
    assert silero.process(x) + silero.flush() == []


def test_bad_configuration() -> None:
    with pytest.raises(VADError):
        VoiceActivityDetector(8000, engine="nope")
    with pytest.raises(VADError):
        VoiceActivityDetector(8000, engine="webrtc", aggressiveness=7)
    with pytest.raises(VADError):
        VoiceActivityDetector(8000, engine=ScriptedEngine(), speech_stop_threshold=0)
