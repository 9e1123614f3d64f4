from __future__ import annotations

import logging

import numpy as np
import pytest

from telcoflow.audio import synth
from telcoflow.audio.quality import (
    AudioQualityMonitor,
    QualityAlert,
    QualityThresholds,
    harmonic_analysis,
)


def _tone_with_noise(rate: int, seconds: float, freq: float, snr_db: float, seed: int) -> bytes:
    s = synth.tone(freq, seconds, rate, 10000.0)
    x = synth.add_noise(s, synth.white_noise(seconds, rate, 1.0, seed=seed), snr_db)
    return synth.to_int16(x).tobytes()


@pytest.mark.parametrize("snr", [10.0, 20.0, 30.0, 45.0])
@pytest.mark.parametrize(("rate", "freq"), [(8000, 440.0), (16000, 1234.5), (24000, 300.0)])
def test_spectral_snr_of_tone_in_noise_within_1_db(rate: int, freq: float, snr: float) -> None:
    m = AudioQualityMonitor(rate).analyze_audio_chunk(
        _tone_with_noise(rate, 0.1, freq, snr, seed=int(snr))
    )
    assert m.snr_method == "spectral"
    assert m.snr_db == pytest.approx(snr, abs=1.0)
    assert m.fundamental_hz == pytest.approx(freq, abs=2.0)


@pytest.mark.parametrize("snr", [10.0, 25.0, 40.0])
def test_call_level_snr_from_speech_bursts_and_pauses_within_1_db(snr: float) -> None:
    rate = 8000
    parts = []
    for k in range(4):
        parts += [synth.silence(0.8, rate), synth.tone(300.0 + 70 * k, 1.2, rate, 8000.0)]
    s = np.concatenate(parts)
    noise_rms = np.sqrt(8000.0**2 / 2 / 10 ** (snr / 10))
    x = synth.to_int16(s + synth.white_noise(s.size / rate, rate, noise_rms, seed=5))
    mon = AudioQualityMonitor(rate)
    for i in range(0, x.size, 160):
        m = mon.analyze_audio_chunk(x[i : i + 160].tobytes())
    assert m.snr_method == "energy"
    assert m.snr_db == pytest.approx(snr, abs=1.0)


@pytest.mark.parametrize("thd", [0.3, 1.0, 3.0, 10.0])
def test_thd_within_10_percent_relative(thd: float) -> None:
    rate = 16000
    t = np.arange(1600) / rate
    a = 12000.0
    # Harmonics 2, 3, 5 share the distortion power equally.
    h_amp = a * thd / 100.0 / np.sqrt(3.0)
    x = a * np.sin(2 * np.pi * 500 * t)
    for h, ph in ((2, 0.3), (3, 1.1), (5, 2.0)):
        x += h_amp * np.sin(2 * np.pi * 500 * h * t + ph)
    x += synth.white_noise(0.1, rate, 2.0, seed=1)
    m = AudioQualityMonitor(rate).analyze_audio_chunk(synth.to_int16(x).tobytes())
    assert m.thd_valid
    assert m.thd_percent == pytest.approx(thd, rel=0.10)


def test_a_sparse_analysis_reads_the_last_window_not_all_since_the_last_one() -> None:
    """Analysed every 2 s, on a 300 ms window: the distortion figures are of the audio
    just heard, so distortion that ended is no longer reported."""
    rate = 16000
    t = np.arange(2 * rate) / rate
    tone = 12000.0 * np.sin(2 * np.pi * 500 * t)
    x = np.where(t < 1.6, np.clip(2 * tone, -14000, 14000), tone)  # clipped, then clean
    pcm = synth.to_int16(x).tobytes()
    mon = AudioQualityMonitor(rate, analysis_ms=300, analysis_interval_ms=2000)
    mon.analyze_audio_chunk(bytes(rate // 5 * 2))  # the first chunk is analysed at once
    chunk = rate // 5 * 2  # 200 ms blocks, as the quality watch feeds them
    for i in range(0, len(pcm), chunk):
        m = mon.analyze_audio_chunk(pcm[i:i + chunk])
    assert m.thd_valid and m.thd_percent < 0.1  # (the whole 2 s: ~19 %)


def test_clipping_exact_count() -> None:
    rate = 8000
    x = synth.to_int16(synth.tone(440.0, 0.1, rate, 20000.0))
    idx = np.random.default_rng(3).choice(x.size, 37, replace=False)
    x[idx[:20]] = 32767
    x[idx[20:]] = -32768
    m = AudioQualityMonitor(rate).analyze_audio_chunk(x.tobytes())
    assert m.clipped_samples == 37
    assert m.clipping_percent == pytest.approx(100.0 * 37 / x.size)
    # Just below the rails is not clipping.
    y = synth.to_int16(synth.tone(440.0, 0.1, rate, 32766.0))
    assert AudioQualityMonitor(rate).analyze_audio_chunk(y.tobytes()).clipped_samples == 0


def test_clipping_counts_both_rails_the_same() -> None:
    # float audio scaled by 32767 and clipped: its rails are +32767 and -32767
    rate = 8000
    x = np.clip(synth.tone(440.0, 0.1, rate, 3.0), -1.0, 1.0)
    pcm = np.round(x * 32767).astype(np.int16)
    top, bottom = int(np.count_nonzero(pcm == 32767)), int(np.count_nonzero(pcm == -32767))
    assert top > 0 and abs(top - bottom) <= 2  # the sine's two halves
    assert AudioQualityMonitor(rate).analyze_audio_chunk(pcm.tobytes()).clipped_samples == \
        top + bottom


def test_score_formula_and_alert_callbacks(caplog: pytest.LogCaptureFixture) -> None:
    rate = 16000
    th = QualityThresholds(min_snr_db=20.0, max_thd_percent=1.0, max_clipping_percent=0.1)
    mon = AudioQualityMonitor(rate, th)
    alerts: list[QualityAlert] = []
    mon.add_alert_callback(alerts.append)
    clean = mon.analyze_audio_chunk(_tone_with_noise(rate, 0.2, 1000.0, 50.0, seed=1))
    assert clean.quality_score == pytest.approx(100.0 - 10.0 * clean.thd_percent, abs=0.01)
    assert alerts == []
    mon.reset()
    with caplog.at_level(logging.WARNING, logger="telcoflow.audio.quality"):
        for _ in range(3):
            noisy = mon.analyze_audio_chunk(_tone_with_noise(rate, 0.2, 1000.0, 12.0, seed=2))
    assert noisy.quality_score == pytest.approx(100.0 - 1.5 * (40.0 - noisy.snr_db), abs=2.0)
    kinds = [a.kind for a in alerts]
    assert kinds.count("low_snr") == 3 and kinds.count("low_quality_score") == 3
    # The log warns once per alert kind, not once per chunk.
    assert sum("low_snr" in r.getMessage() for r in caplog.records) == 1
    summary = mon.get_quality_summary()
    assert summary["chunks_analyzed"] == 3
    assert summary["alerts"]["low_snr"] == 3
    assert summary["average_snr_db"] == pytest.approx(12.0, abs=1.0)


def test_clipping_alert_and_broken_callback_does_not_break_monitor() -> None:
    mon = AudioQualityMonitor(8000)
    seen: list[str] = []

    def bad(_: QualityAlert) -> None:
        raise RuntimeError("boom")

    mon.add_alert_callback(bad)
    mon.add_alert_callback(lambda a: seen.append(a.kind))
    x = synth.to_int16(synth.tone(440.0, 0.1, 8000, 40000.0))  # heavily clipped
    m = mon.analyze_audio_chunk(x.tobytes())
    assert m.clipping_percent > 10
    assert "clipping" in seen


def test_silence_raises_no_alert_and_thd_invalid_for_noise() -> None:
    mon = AudioQualityMonitor(8000)
    fired: list[QualityAlert] = []
    mon.add_alert_callback(fired.append)
    m = mon.analyze_audio_chunk(bytes(320))
    assert m.is_silence and fired == []
    n = synth.to_int16(synth.white_noise(0.1, 8000, 3000.0, seed=9))
    m2 = AudioQualityMonitor(8000).analyze_audio_chunk(n.tobytes())
    assert not m2.thd_valid and m2.thd_percent == 0.0


def test_harmonic_analysis_pure_tone() -> None:
    t = np.arange(4000) / 8000
    ha = harmonic_analysis(10000 * np.sin(2 * np.pi * 1000 * t), 8000)
    assert ha.fundamental_hz == pytest.approx(1000.0, abs=0.5)
    assert ha.thd_percent < 0.01
    assert ha.snr_db > 100


def test_the_analysis_phase_moves_the_periodic_analyses_not_their_interval() -> None:
    """``analysis_phase_ms``: the first analysis runs on the first chunk as ever, and the
    periodic ones come that much sooner, then every interval: streams started together
    spread their spectral analyses instead of running them all in the same chunk."""
    rate = 16000
    chunk = synth.to_int16(synth.tone(500.0, 0.2, rate, 8000.0)).tobytes()

    def analysed_chunks(phase_ms: int) -> list[int]:
        mon = AudioQualityMonitor(rate, analysis_ms=300, analysis_interval_ms=2000,
                                  analysis_phase_ms=phase_ms)
        seen, at = [], None
        for n in range(31):
            mon.analyze_audio_chunk(chunk)
            if mon._analysis is not at:
                seen.append(n)
                at = mon._analysis
        return seen

    assert analysed_chunks(0) == [0, 10, 20, 30]
    assert analysed_chunks(600) == [0, 7, 17, 27]
    assert analysed_chunks(2600) == analysed_chunks(600)  # taken modulo the interval


def test_first_words_without_pauses_have_no_snr_yet_and_raise_no_low_snr() -> None:
    """Before pauses give an energy SNR, audio that is not tonal (speech, noise) has no
    SNR worth the name: the spectral figure of clean speech is about -4 dB. It is
    reported with ``snr_method`` "none", raises no ``low_snr``, costs the score nothing
    and stays out of the averages; a tone in noise is still judged by its spectrum."""
    rate = 16000
    rng = np.random.default_rng(5)
    words = (rng.normal(0, 3000, rate // 5)).astype(np.int16).tobytes()  # no pause in it
    mon = AudioQualityMonitor(rate, analysis_ms=300, analysis_interval_ms=2000)
    alerts: list[QualityAlert] = []
    mon.add_alert_callback(alerts.append)
    m = mon.analyze_audio_chunk(words)
    assert m.snr_method == "none" and not m.is_silence
    assert m.quality_score == pytest.approx(100.0) and alerts == []
    summary = mon.get_quality_summary()
    assert summary["average_snr_db"] is None and summary["min_snr_db"] is None
    tone = AudioQualityMonitor(rate).analyze_audio_chunk(
        _tone_with_noise(rate, 0.2, 1000.0, 12.0, seed=2))
    assert tone.snr_method == "spectral" and tone.snr_db == pytest.approx(12.0, abs=1.0)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_speech_is_not_tonal_its_voice_is_neither_distortion_nor_a_spectral_snr(
        rate: int) -> None:
    """A vowel is periodic enough for its fundamental to carry half the power, but its
    level moves from syllable to syllable: it must not read as a tone (its harmonics as
    THD, its spectrum as an SNR). eSpeak's clean voice, analysed at every 200 ms block
    as a call's watch would at its 2 s turns, raises nothing; a steady tone still is
    tonal."""
    speech = synth.tts("Hello, thank you for calling. Your order number is four five six "
                       "seven, and it ships tomorrow morning. Please hold while I transfer "
                       "you to an agent who can help.", rate)
    mon = AudioQualityMonitor(rate, analysis_ms=300, analysis_interval_ms=200)
    alerts: list[QualityAlert] = []
    mon.add_alert_callback(alerts.append)
    block = rate // 5
    voiced = 0
    for i in range(0, speech.size - block + 1, block):
        m = mon.analyze_audio_chunk(speech[i:i + block].tobytes())
        if not m.is_silence:
            voiced += 1
            assert not m.thd_valid and m.snr_method != "spectral", (i / rate, m)
    assert voiced >= 20 and alerts == []
    hum = AudioQualityMonitor(rate).analyze_audio_chunk(
        _tone_with_noise(rate, 0.3, 120.0, 15.0, seed=3))
    assert hum.thd_valid and hum.snr_method == "spectral"


@pytest.mark.parametrize("snr", [10.0, 20.0, 30.0, 40.0])
def test_the_snr_of_noisy_speech_is_its_pauses_noise_within_2_5_db(snr: float) -> None:
    """Speech against the noise in its pauses: the noise is measured in the pauses
    themselves (200 ms or more of steady quiet frames), not as the mean of everything
    quiet, where soft speech passed for noise (30 dB read as 18-24 dB). Until the first
    pause there is no energy SNR at all."""
    rate = 16000
    speech = np.concatenate([synth.tts(text, rate).astype(np.float64) for text in (
        "Hello, thank you for calling. How can I help you today?",
        "Your order number is four five six seven, and it ships tomorrow morning.")])
    frames = speech[: speech.size // 160 * 160].reshape(-1, 160)
    power = (frames**2).mean(axis=1)
    voiced = float(power[power > 32768.0**2 * 1e-4].mean())  # frames above -40 dBFS
    noise = synth.white_noise(speech.size / rate, rate, 1.0, seed=2)
    x = synth.to_int16(speech + noise * np.sqrt(voiced / 10 ** (snr / 10)))
    mon = AudioQualityMonitor(rate, analysis_ms=300, analysis_interval_ms=2000)
    methods = []
    for i in range(0, x.size - 3200 + 1, 3200):
        m = mon.analyze_audio_chunk(x[i:i + 3200].tobytes())
        methods.append(m.snr_method)
    assert methods[0] == "none"  # first words: no pause yet
    assert m.snr_method == "energy" and m.snr_db == pytest.approx(snr, abs=2.5)
