"""The quality monitor on speech: false alerts on clean eSpeak, and the SNR of noisy speech.

Run: ``PYTHONPATH=src .venv/bin/python bench/monitor_speech.py``. Four eSpeak sentences
at 8 and 16 kHz, each through monitors set as a call's watch sets them (300 ms
analysis every 2 s of audio, 200 ms blocks) at ten analysis phases: the monitors that
raised any alert on this clean speech and the blocks judged tonal (both should be 0).
Then the two first sentences in white noise at 6-40 dB (against the voiced frames'
power): the SNR the monitor reports at the end, and its method.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from telcoflow.audio import synth  # noqa: E402
from telcoflow.audio.quality import AudioQualityMonitor, QualityAlert  # noqa: E402

TEXTS = ("Hello, thank you for calling. How can I help you today?",
         "Your order number is four five six seven, and it ships tomorrow morning.",
         "I am sorry, I did not catch that. Could you say it again please?",
         "Please hold while I transfer you to an agent who can help.")


def watch_monitor(rate: int, phase_ms: int = 0) -> AudioQualityMonitor:
    return AudioQualityMonitor(rate, analysis_ms=300, analysis_interval_ms=2000,
                               analysis_phase_ms=phase_ms, log_alerts=False)


def clean(rate: int) -> None:
    alerted, kinds, tonal, voiced = 0, set(), 0, 0
    for text in TEXTS:
        x = synth.tts(text, rate)
        block = rate // 5
        for phase in range(0, 2000, 200):
            mon = watch_monitor(rate, phase)
            seen: list[QualityAlert] = []
            mon.add_alert_callback(seen.append)
            for i in range(0, x.size - block + 1, block):
                m = mon.analyze_audio_chunk(x[i:i + block].tobytes())
                if not m.is_silence:
                    voiced += 1
                    tonal += m.thd_valid
            alerted += bool(seen)
            kinds |= {a.kind for a in seen}
    print(f"{rate} Hz clean eSpeak: monitors with an alert {alerted}/{len(TEXTS) * 10} "
          f"({', '.join(sorted(kinds)) or 'none'}); blocks judged tonal {tonal}/{voiced}")


def noisy(rate: int) -> None:
    speech = np.concatenate([synth.tts(t, rate).astype(np.float64) for t in TEXTS[:2]])
    frame = rate // 100
    frames = speech[: speech.size // frame * frame].reshape(-1, frame)
    power = (frames**2).mean(axis=1)
    voiced = float(power[power > 32768.0**2 * 1e-4].mean())
    for snr in (6, 10, 20, 30, 40):
        noise = synth.white_noise(speech.size / rate, rate, 1.0, seed=2)
        x = synth.to_int16(speech + noise * np.sqrt(voiced / 10 ** (snr / 10)))
        mon = watch_monitor(rate)
        block = rate // 5
        for i in range(0, x.size - block + 1, block):
            m = mon.analyze_audio_chunk(x[i:i + block].tobytes())
        print(f"{rate} Hz eSpeak in white noise at {snr:2d} dB: reported {m.snr_db:5.1f} dB "
              f"({m.snr_method})")


def main() -> None:
    for rate in (8000, 16000):
        clean(rate)
    noisy(16000)


if __name__ == "__main__":
    main()
