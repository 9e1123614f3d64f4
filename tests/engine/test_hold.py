"""The hold sound a caller hears while the call waits for an agent (engine.hold)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from telcoflow.audio.wav import write_wav
from telcoflow.engine.hold import HoldSound
from telcoflow.server.config import ConfigError, embedded_defaults, validate


def frames(sound: HoldSound, rate: int, n: int) -> np.ndarray:
    loop = sound.loop(rate)
    assert loop is not None
    return np.frombuffer(b"".join(loop.next_frame() for _ in range(n)), "<i2")


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_the_tone_beeps_softly_every_three_seconds_in_whole_frames(rate: int) -> None:
    pcm = frames(HoldSound(), rate, 300)  # 6 s
    assert len(pcm) == 300 * rate // 50
    per_frame = np.abs(pcm.reshape(300, -1)).max(axis=1)
    beeping = per_frame > 0
    assert beeping[:12].all() and not beeping[14:150].any()  # 0.25 s on, then quiet
    assert beeping[150:162].all()                            # and again at 3 s
    assert 1000 < per_frame.max() < 2500                     # about -26 dBFS


def test_silence_is_no_sound_at_all() -> None:
    assert HoldSound("silence").loop(16000) is None


def test_a_wav_loops_at_the_calls_rate(tmp_path: Path) -> None:
    path = tmp_path / "music.wav"
    write_wav(path, np.full(4000, 1000, np.int16), 8000)  # 0.5 s at 8 kHz
    pcm = frames(HoldSound(str(path)), 16000, 60)  # 1.2 s at 16 kHz: it looped
    assert np.count_nonzero(np.abs(pcm) > 500) > 16000 * 0.9


def test_a_hold_sound_that_is_neither_is_refused_at_start(tmp_path: Path) -> None:
    cfg = embedded_defaults(port=0)
    cfg.hold_sound = str(tmp_path / "missing.wav")
    with pytest.raises(ConfigError, match="hold_sound"):
        validate(cfg)
