"""ModelAudio: a model's labelled PCM to the call's rate; what cannot be played is named."""

from __future__ import annotations

import numpy as np
import pytest

from telcoflow.integrations.modelaudio import ModelAudio, ModelAudioError, parse_mime

from ..interop.signals import best_lag, chirp


@pytest.mark.parametrize(("mime", "rate"), [
    ("audio/pcm;rate=24000", 24000), ("audio/pcm; rate=16000", 16000), ("audio/pcm", 24000),
    (None, 24000), ("audio/L16;rate=8000", 8000)])
def test_pcm_types_and_their_rates(mime: str | None, rate: int) -> None:
    assert parse_mime(mime, 24000) == rate


@pytest.mark.parametrize(("mime", "says"), [
    ("audio/mpeg", "'audio/mpeg'"), ("audio/pcm;rate=abc", "'abc'"),
    ("audio/pcm;rate=4000", "4000 Hz"), ("audio/pcm;rate=96000", "96000 Hz")])
def test_what_cannot_be_played_is_named(mime: str, says: str) -> None:
    with pytest.raises(ModelAudioError, match=says):
        ModelAudio(16000).to_call(mime, b"\0\0")


def test_a_chunk_at_another_rate_is_resampled_from_its_own_rate() -> None:
    """A 16 kHz reply labelled as such reaches a 16 kHz call unchanged in pitch and length."""
    reply = chirp(0.5, 16000)
    audio = ModelAudio(16000, default_rate=24000)
    pcm = b"".join(audio.to_call("audio/pcm;rate=16000", reply[i:i + 640].tobytes())
                   for i in range(0, len(reply), 640)) + audio.flush()
    out = np.frombuffer(pcm, "<i2")
    assert abs(len(out) - len(reply)) <= 32
    assert best_lag(out, reply[:7000])[1] > 0.99


def test_a_sample_split_across_chunks_is_kept_whole() -> None:
    reply = chirp(0.2, 24000)
    data = reply.tobytes()
    audio = ModelAudio(24000)
    pieces = [data[i:i + 999] for i in range(0, len(data), 999)]  # odd sizes
    out = np.frombuffer(b"".join(audio.to_call(None, p) for p in pieces) + audio.flush(), "<i2")
    assert best_lag(out, reply[:4000])[1] > 0.999
