from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from telcoflow.audio import latency, synth
from telcoflow.audio.errors import WavError
from telcoflow.audio.recorder import AudioBufferProcessor
from telcoflow.audio.wav import write_wav


def test_turns_from_segments_and_percentiles() -> None:
    user = [(0.0, 1.0), (3.0, 4.0), (6.0, 7.5), (9.0, 10.0)]
    agent = [(1.5, 2.5), (4.25, 5.5), (7.0, 8.0), (11.0, 12.0)]  # third starts while user talks
    r = latency.turns_from_segments(user, agent)
    assert [round(t.latency, 3) for t in r.turns] == [0.5, 0.25, 1.0]
    assert r.overlaps == 1
    s = r.summary()
    assert s["p50"] == pytest.approx(0.5)
    assert s["p90"] == pytest.approx(np.percentile([0.5, 0.25, 1.0], 90))
    assert s["p99"] == pytest.approx(np.percentile([0.5, 0.25, 1.0], 99))
    assert "p50=500 ms" in r.table()


def test_agent_greeting_and_continuations_are_not_turns() -> None:
    r = latency.turns_from_segments([(2.0, 3.0)], [(0.0, 1.5), (3.5, 4.0), (4.2, 5.0)])
    assert [round(t.latency, 3) for t in r.turns] == [0.5]
    assert latency.percentile([], 50) is None


def test_text_and_json_logs() -> None:
    text = [
        "2025-03-01 10:00:00,000 INFO bridge: input_audio_buffer.speech_started",
        "2025-03-01 10:00:01,200 INFO bridge: input_audio_buffer.speech_stopped",
        "2025-03-01 10:00:01,650 INFO bridge: output_audio_buffer.started",
        "2025-03-01 10:00:03,000 INFO unrelated line",
        "2025-03-01T10:00:05.000 DEBUG UserStartedSpeakingFrame",
        "2025-03-01T10:00:06.100 DEBUG UserStoppedSpeakingFrame",
        "2025-03-01T10:00:07.000 DEBUG BotStartedSpeakingFrame",
    ]
    r = latency.analyze_log(text)
    assert [round(t.latency, 3) for t in r.turns] == [0.45, 0.9]
    js = [
        json.dumps({"ts": 100.0, "event": "user_speech_stop"}),
        json.dumps({"ts": 100.3, "event": "agent_speech_start"}),
        json.dumps({"time": "2025-03-01T10:00:00+00:00", "type": "user_speech_stop"}),
        json.dumps({"time": "2025-03-01T10:00:00.700+00:00", "type": "agent_speech_start"}),
        "not json {",
    ]
    r2 = latency.analyze_log(js)
    assert [round(t.latency, 3) for t in r2.turns] == [0.3, 0.7]
    epoch = ["1700000000.250 user_speech_stop", "1700000000.900 agent_speech_start"]
    assert latency.analyze_log(epoch).turns[0].latency == pytest.approx(0.65)


def test_latency_from_a_recording(tmp_path: Path) -> None:
    rate = 8000
    delays = [0.4, 0.8, 1.2]
    p = AudioBufferProcessor(sample_rate=rate, num_channels=2)
    p.record_to_wav(tmp_path / "call.wav")
    p.start_recording(now=0.0)
    t = 0.0
    caller_end: list[float] = []
    for k, delay in enumerate(delays):
        speech = synth.to_int16(synth.speech_like(1.0, rate, seed=k)).tobytes()
        t += 0.5
        for i in range(0, len(speech), 320):  # caller speaks 1 s in 20 ms packets
            t += 0.02
            p.add_user_audio(speech[i : i + 320], t)
        caller_end.append(t)
        t += delay
        p.advance(t)
        answer = synth.to_int16(synth.tone(250.0, 0.8, rate, 6000.0) * np.hanning(6400))
        p.add_bot_audio(answer.tobytes(), t)
        t += 1.0
        p.advance(t)
    p.stop_recording(now=t + 0.5)
    r = latency.analyze_recording(tmp_path / "call.wav")
    assert len(r.turns) == 3
    measured = [tt.latency for tt in r.turns]
    assert measured == pytest.approx(delays, abs=0.12), measured
    mono = tmp_path / "mono.wav"
    write_wav(mono, np.zeros(100, np.int16), rate)
    with pytest.raises(WavError):
        latency.analyze_recording(mono)


def test_cli_prints_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "gw.log"
    log.write_text("1700000000.0 user_speech_stop\n1700000000.5 agent_speech_start\n")
    assert latency.main([str(log)]) == 0
    assert "p50=500 ms" in capsys.readouterr().out
