"""Deterministic test signals: tones, noise at a given SNR, speech-like audio, TTS.

Used by the tests, the benchmark and demos; everything is seeded, so a
signal is the same on every run. :func:`tts` speaks real words through the
eSpeak NG library shipped in the optional ``espeakng-loader`` wheel (no
system package, no download); it raises :class:`ImportError` when that
wheel is not installed, check :func:`tts_available` first.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from .pcm import INT16_MAX, INT16_MIN

__all__ = [
    "add_noise",
    "dbfs_to_amplitude",
    "silence",
    "speech_like",
    "to_int16",
    "tone",
    "tts",
    "tts_available",
    "white_noise",
]

FloatArray = npt.NDArray[np.float64]


def dbfs_to_amplitude(dbfs: float) -> float:
    """Peak amplitude (int16 scale) of a full-scale-referenced level in dBFS."""
    return float(32767.0 * 10.0 ** (dbfs / 20.0))


def to_int16(x: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Round and saturate float samples (int16 scale) to int16."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64)), INT16_MIN, INT16_MAX).astype(np.int16)


def silence(seconds: float, rate: int) -> FloatArray:
    return np.zeros(round(seconds * rate))


def tone(freq: float, seconds: float, rate: int, amplitude: float = 10000.0) -> FloatArray:
    """A sine of ``amplitude`` (int16 scale) starting at phase 0."""
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2.0 * np.pi * freq * t)


def white_noise(seconds: float, rate: int, rms: float, seed: int = 0) -> FloatArray:
    """Gaussian white noise of the given RMS (int16 scale)."""
    return np.random.default_rng(seed).normal(0.0, rms, round(seconds * rate))


def add_noise(signal: FloatArray, noise: FloatArray, snr_db: float) -> FloatArray:
    """``signal`` plus ``noise`` scaled so that power(signal)/power(noise) is ``snr_db``."""
    ps = float(np.mean(signal**2))
    pn = float(np.mean(noise[: signal.size] ** 2))
    scale = float(np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0))))
    out: FloatArray = signal + noise[: signal.size] * scale
    return out


def _resonator(x: FloatArray, freq: float, bw: float, rate: int) -> FloatArray:
    # Two-pole resonator y[n] = x[n] + a1 y[n-1] + a2 y[n-2] via scipy-free recursion.
    r = float(np.exp(-np.pi * bw / rate))
    a1 = 2.0 * r * float(np.cos(2.0 * np.pi * freq / rate))
    a2 = -r * r
    y: FloatArray = np.zeros_like(x)
    y1 = y2 = 0.0
    for i, v in enumerate(x.tolist()):
        y0 = v + a1 * y1 + a2 * y2
        y[i] = y0
        y2, y1 = y1, y0
    out: FloatArray = y * (1.0 - r)
    return out


def speech_like(seconds: float, rate: int, seed: int = 0, amplitude: float = 8000.0) -> FloatArray:
    """A voiced-speech proxy: a gliding glottal pulse train through three formants,
    shaped into 4 Hz "syllables". Good enough to drive energy and pitch based
    detectors; use :func:`tts` for real words.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    f0 = 120.0 + 30.0 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + rng.normal(0, 1, n)
    phase = np.cumsum(f0 / rate)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    src = pulses + 0.02 * rng.normal(0, 1, n)
    formants = ((700.0, 110.0), (1220.0, 120.0), (2600.0, 160.0))
    y = sum(_resonator(src, f, bw, rate) / (k + 1) for k, (f, bw) in enumerate(formants))
    env = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0.15, None) ** 0.5
    y = np.asarray(y) * env
    return y * (amplitude / max(float(np.max(np.abs(y))), 1e-9))


_tts_lock = threading.Lock()
_tts_state: dict[str, Any] = {}


def tts_available() -> bool:
    """True when the ``espeakng-loader`` wheel can be imported."""
    try:
        import espeakng_loader  # noqa: F401
    except ImportError:
        return False
    return True


def _tts_init() -> dict[str, Any]:
    if _tts_state:
        return _tts_state
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    sink: list[npt.NDArray[np.int16]] = []
    callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )

    def _collect(wav: Any, n: int, _events: Any) -> int:
        if n > 0 and wav:
            sink.append(np.ctypeslib.as_array(wav, shape=(n,)).astype(np.int16))
        return 0

    cb = callback_type(_collect)
    # 2 = AUDIO_OUTPUT_SYNCHRONOUS: espeak_Synth returns after all audio went to the callback.
    rate = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)
    if rate <= 0:
        raise RuntimeError("eSpeak NG failed to initialise")
    lib.espeak_SetSynthCallback(cb)
    _tts_state.update(lib=lib, cb=cb, sink=sink, rate=rate, voice=None)
    return _tts_state


def tts(
    text: str, rate: int = 16000, voice: str = "en", words_per_minute: int = 160
) -> npt.NDArray[np.int16]:
    """Speak ``text`` with eSpeak NG; mono int16 at ``rate`` (resampled from 22.05 kHz)."""
    from .resample import resample

    with _tts_lock:
        st = _tts_init()
        lib = st["lib"]
        if st["voice"] != voice:
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"unknown eSpeak voice {voice!r}")
            st["voice"] = voice
        lib.espeak_SetParameter(1, words_per_minute, 0)  # 1 = espeakRATE
        st["sink"].clear()
        data = text.encode("utf-8") + b"\0"
        lib.espeak_Synth(data, len(data), 0, 0, 0, 0, None, None)
        lib.espeak_Synchronize()
        pcm = np.concatenate(st["sink"]) if st["sink"] else np.zeros(0, np.int16)
        st["sink"].clear()
        native = int(st["rate"])
    if native == rate:
        return pcm
    return np.frombuffer(resample(pcm, native, rate, "HQ"), dtype="<i2").astype(np.int16)
