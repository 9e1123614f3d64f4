"""Audio DSP benchmark: cost per 20 ms frame and throughput in x real time.

Run: ``.venv/bin/python bench/audio.py`` (``make bench``). Prints one table
with our implementations beside the references in the same run: the stdlib
``audioop`` (Python <= 3.12) for G.711 and ``ratecv``, and
``scipy.signal.resample_poly`` for resampling. Then the VAD accuracy on a
labelled synthetic set (eSpeak NG speech from the ``espeakng-loader`` wheel
under several noise conditions, or a speech-like signal without it).

Per-frame figures come from feeding a 10 s signal frame by frame through one
stateful object (the way a call leg uses it), best of 5 runs. Timings vary
with machine load; the ratios within a run are the stable part.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from telcoflow.audio import g711, synth  # noqa: E402
from telcoflow.audio.jitter import JitterBuffer  # noqa: E402
from telcoflow.audio.polyphase import PolyphaseResampler  # noqa: E402
from telcoflow.audio.quality import AudioQualityMonitor  # noqa: E402
from telcoflow.audio.recorder import AudioBufferProcessor  # noqa: E402
from telcoflow.audio.resample import StreamResampler  # noqa: E402
from telcoflow.audio.vad import VoiceActivityDetector, make_engine  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # Python >= 3.13
        audioop = None  # type: ignore[assignment]
try:
    from scipy.signal import resample_poly
except ImportError:  # pragma: no cover
    resample_poly = None

SECONDS = 10.0
FRAME_S = 0.020
ROWS: list[tuple[str, str, float, str]] = []


def _per_frame(
    frames: list[Any], make: Callable[[], Callable[[Any], Any]], repeat: int = 5
) -> float:
    """Best-of-``repeat`` seconds per frame for a fresh stateful ``make()`` fed all frames."""
    best = float("inf")
    for _ in range(repeat):
        fn = make()
        t0 = time.perf_counter()
        for f in frames:
            fn(f)
        best = min(best, (time.perf_counter() - t0) / len(frames))
    return best


def row(group: str, name: str, seconds: float, note: str = "") -> None:
    ROWS.append((group, name, seconds, note))


def _frames(x: np.ndarray, rate: int) -> list[bytes]:
    n = round(rate * FRAME_S)
    b = x.astype("<i2").tobytes()
    return [b[i : i + 2 * n] for i in range(0, len(b) - 2 * n + 1, 2 * n)]


def _signal(rate: int) -> np.ndarray:
    s = synth.tone(440.0, SECONDS, rate, 6000.0) + synth.white_noise(SECONDS, rate, 800.0, seed=1)
    return synth.to_int16(s)


def bench_g711() -> None:
    frames = _frames(_signal(8000), 8000)
    ucodes = [g711.ulaw_encode(f) for f in frames]
    acodes = [g711.alaw_encode(f) for f in frames]
    cases: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any] | None, list[Any]]] = [
        ("μ-law encode", g711.ulaw_encode, audioop and (lambda f: audioop.lin2ulaw(f, 2)), frames),
        (
            "μ-law decode",
            g711.ulaw_decode_bytes,
            audioop and (lambda c: audioop.ulaw2lin(c, 2)),
            ucodes,
        ),
        ("A-law encode", g711.alaw_encode, audioop and (lambda f: audioop.lin2alaw(f, 2)), frames),
        (
            "A-law decode",
            g711.alaw_decode_bytes,
            audioop and (lambda c: audioop.alaw2lin(c, 2)),
            acodes,
        ),
    ]
    for name, ours, ref, data in cases:
        t = _per_frame(data, lambda ours=ours: ours)
        note = ""
        if ref is not None:
            tr = _per_frame(data, lambda ref=ref: ref)
            note = f"{t / tr:.1f}x audioop"
            row("G.711 (8 kHz)", name + " [audioop]", tr)
        row("G.711 (8 kHz)", name, t, note)
        # Whole-second blocks: the fixed per-call cost amortised.
        blocks = [b"".join(data[i : i + 50]) for i in range(0, len(data), 50)]
        tb = _per_frame(blocks, lambda ours=ours: ours) / 50
        if ref is not None:
            trb = _per_frame(blocks, lambda ref=ref: ref) / 50
            row("G.711 (8 kHz)", name + " 1 s blocks", tb, f"{tb / trb:.1f}x audioop")
        else:
            row("G.711 (8 kHz)", name + " 1 s blocks", tb)


def bench_resample() -> None:
    pairs = [
        (8000, 16000),
        (16000, 8000),
        (8000, 24000),
        (24000, 8000),
        (16000, 24000),
        (24000, 16000),
        (16000, 48000),
        (48000, 16000),
        (24000, 48000),
        (48000, 24000),
    ]
    for a, b in pairs:
        frames = _frames(_signal(a), a)
        arrays = [np.frombuffer(f, "<i2").astype(np.int16) for f in frames]
        label = f"{a // 1000}->{b // 1000} kHz"
        for q in ("HQ", "MQ"):
            t = _per_frame(frames, lambda q=q, a=a, b=b: StreamResampler(a, b, q).process)
            lat = StreamResampler(a, b, q)
            held = 0.0
            for f in frames[:100]:
                lat.process(f)
                held = max(held, lat.latency_ms)
            row("resample", f"{label} soxr {q}", t, f"holds up to {held:.0f} ms")
        t = _per_frame(arrays, lambda a=a, b=b: PolyphaseResampler(a, b).process)
        row("resample", f"{label} polyphase", t, "gateway live path (not issue 4)")
        if audioop is not None:

            def ratecv(a: int = a, b: int = b) -> Callable[[bytes], bytes]:
                state: list[Any] = [None]

                def step(x: bytes) -> bytes:
                    out, state[0] = audioop.ratecv(x, 2, 1, a, b, state[0])
                    return out

                return step

            row("resample", f"{label} [audioop.ratecv]", _per_frame(frames, ratecv), "linear")
        if resample_poly is not None:
            g = np.gcd(a, b)
            up, down = b // g, a // g
            t = _per_frame(
                arrays,
                lambda up=up, down=down: lambda x: resample_poly(x.astype(np.float64), up, down),
            )
            row("resample", f"{label} [scipy resample_poly]", t, "stateless per frame")


def _try(name: str) -> bool:
    try:
        make_engine(name, 16000)
    except Exception:
        return False
    return True


def bench_vad() -> None:
    for rate in (8000, 16000):
        frames = _frames(_signal(rate), rate)
        for engine in ("webrtc", "silero", "energy"):
            if not _try(engine):
                continue
            t = _per_frame(
                frames, lambda e=engine, r=rate: VoiceActivityDetector(r, engine=e).process
            )
            row("VAD", f"{engine} {rate // 1000} kHz", t)


def bench_quality() -> None:
    for rate in (8000, 16000, 24000):
        frames = _frames(_signal(rate), rate)
        t = _per_frame(frames, lambda r=rate: AudioQualityMonitor(r).analyze_audio_chunk)
        row("quality monitor", f"{rate // 1000} kHz", t, "200 ms analysis every 400 ms")


def bench_recorder() -> None:
    for in_rate, out_rate, ch in ((8000, 8000, 1), (8000, 16000, 2), (24000, 16000, 2)):
        frames = _frames(_signal(in_rate), in_rate)

        def make(
            in_rate: int = in_rate, out_rate: int = out_rate, ch: int = ch
        ) -> Callable[[Any], Any]:
            p = AudioBufferProcessor(sample_rate=out_rate, num_channels=ch, buffer_size=32000)
            p.add_event_handler("on_audio_data", lambda *a: None)
            p.start_recording(now=0.0)
            clock = [0.0]

            def feed(f: bytes) -> None:
                clock[0] += FRAME_S
                p.add_user_audio(f, clock[0], in_rate)
                p.add_bot_audio(f, clock[0], in_rate)

            return feed

        t = _per_frame(frames, make)
        row(
            "recorder",
            f"{in_rate // 1000}->{out_rate // 1000} kHz {'stereo' if ch == 2 else 'mono'}",
            t,
            "user+bot frame",
        )


def bench_jitter() -> None:
    frames = _frames(_signal(8000), 8000)

    def make() -> Callable[[Any], Any]:
        jb = JitterBuffer(8000)
        st = {"k": 0}

        def f(fr: bytes) -> None:
            k = st["k"]
            jb.push(fr, k * FRAME_S, seq=k & 0xFFFF)
            jb.pop(k * FRAME_S)
            st["k"] = k + 1

        return f

    row("jitter buffer", "push+pop 8 kHz", _per_frame(frames, make))


# -- VAD accuracy -------------------------------------------------------------------------

SENTENCES = [
    "Hello, thank you for calling. How can I help you today?",
    "I would like to check the status of my order, please.",
    "Sure. Can you give me your order number?",
    "It is four seven two, nine nine one.",
    "Thanks. Your package left the warehouse yesterday afternoon.",
    "Great, when will it arrive?",
    "It should be delivered on Thursday before noon.",
    "Perfect. That's all I needed. Goodbye!",
]


def _labelled(rate: int, condition: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    hop = rate // 100
    parts: list[np.ndarray] = []
    voices = ["en", "en-us", "en+f3", "en-us+m3"]
    for i, s in enumerate(SENTENCES):
        parts.append(np.zeros(int(rng.uniform(0.6, 1.4) * rate)))
        if synth.tts_available():
            sp = synth.tts(s, rate, voice=voices[i % 4]).astype(np.float64)
        else:
            sp = synth.speech_like(2.0, rate, seed=i)
        parts.append(sp * 10 ** (rng.uniform(-12, 0) / 20))
    parts.append(np.zeros(rate))
    clean = np.concatenate(parts)
    clean = clean[: clean.size // hop * hop]
    rms = np.sqrt((clean.reshape(-1, hop) ** 2).mean(axis=1))
    lab = rms > rms.max() * 10 ** (-40 / 20)
    # Pauses shorter than 200 ms inside an utterance count as speech.
    idx = np.flatnonzero(lab)
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        if 1 < b - a <= 20:
            lab[a:b] = True
    speech_power = float(np.mean(clean[np.repeat(lab, hop)] ** 2))
    t = np.arange(clean.size) / rate
    if condition == "clean":
        x = clean + rng.normal(0, 3.0, clean.size)
    elif condition.startswith("white"):
        snr = float(condition[5:])
        x = clean + rng.normal(0, 1, clean.size) * np.sqrt(speech_power / 10 ** (snr / 10))
    elif condition.startswith("pink"):
        snr = float(condition[4:])
        f = np.fft.rfft(rng.normal(0, 1, clean.size))
        f[1:] /= np.sqrt(np.arange(1, f.size))
        f[0] = 0
        pink = np.fft.irfft(f, clean.size)
        x = clean + pink / pink.std() * np.sqrt(speech_power / 10 ** (snr / 10))
    elif condition == "ringback":
        tone = 3000 * (np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t)) * ((t % 3) < 1)
        x = clean + tone * ~np.repeat(lab, hop)
    else:  # hold music: a chord under everything
        chord = sum(2000 * np.sin(2 * np.pi * f0 * t) for f0 in (261.6, 329.6, 392.0, 523.3))
        x = clean + chord * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) * 10 ** (-10 / 20)
    x = synth.to_int16(x)
    if rate == 8000:  # telephone path: through G.711
        x = g711.ulaw_decode(g711.ulaw_encode(x))
    return x, lab


def _state_per_10ms(x: np.ndarray, rate: int, engine: str) -> np.ndarray:
    v = VoiceActivityDetector(rate, engine=engine)
    events = v.process(x) + v.flush()
    n = x.size // (rate // 100)
    state = np.zeros(n, dtype=bool)
    start = None
    for e in events:
        if e.kind == "speech_start":
            start = e.time
        elif start is not None:
            state[int(round(start * 100)) : int(round(e.time * 100))] = True
            start = None
    return state


def vad_accuracy() -> list[str]:
    conditions = ["clean", "white20", "white10", "white5", "pink10", "ringback", "music"]
    engines = [e for e in ("webrtc", "silero", "energy") if _try(e)]
    lines = [
        "VAD accuracy (10 ms frames, detector output after start/stop hysteresis; "
        f"speech source: {'eSpeak NG TTS' if synth.tts_available() else 'speech-like synth'})",
        f"{'rate':>6} {'engine':<7} {'mean acc':>8}  " + "  ".join(f"{c:>9}" for c in conditions),
    ]
    for rate in (8000, 16000):
        data = {c: _labelled(rate, c) for c in conditions}
        for engine in engines:
            accs = []
            for c in conditions:
                x, lab = data[c]
                st = _state_per_10ms(x, rate, engine)
                n = min(st.size, lab.size)
                accs.append(float((st[:n] == lab[:n]).mean()))
            lines.append(
                f"{rate:>6} {engine:<7} {np.mean(accs):>8.3f}  "
                + "  ".join(f"{a:>9.3f}" for a in accs)
            )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-accuracy", action="store_true", help="skip the VAD accuracy set")
    args = ap.parse_args()
    print(
        f"Python {sys.version.split()[0]}, numpy {np.__version__}; "
        f"audioop {'yes' if audioop else 'no'}; scipy {'yes' if resample_poly else 'no'}"
    )
    for fn in (bench_g711, bench_resample, bench_vad, bench_quality, bench_recorder, bench_jitter):
        fn()
    print(f"\n{'group':<16} {'operation':<36} {'µs/frame':>9} {'x realtime':>11}  note")
    print("-" * 96)
    for group, name, sec, note in ROWS:
        print(f"{group:<16} {name:<36} {sec * 1e6:>9.2f} {FRAME_S / sec:>11.0f}  {note}")
    over = [(g, n, s) for g, n, s, _ in ROWS if s > 20e-6 and "[" not in n]
    print(
        f"\nper-frame operations of ours over the 20 µs target: {len(over)}"
        + "".join(f"\n  {g}: {n} {s * 1e6:.1f} µs" for g, n, s in over)
    )
    if not args.no_accuracy:
        print()
        print("\n".join(vad_accuracy()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
