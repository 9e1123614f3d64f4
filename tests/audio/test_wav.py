from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from telcoflow.audio.errors import WavError
from telcoflow.audio.wav import WavWriter, read_wav, read_wav_channels, write_wav


def _write_raw(path: Path, raw: bytes, width: int, channels: int, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


def test_roundtrip_mono_and_stereo(tmp_path: Path) -> None:
    x = np.arange(-500, 500, dtype=np.int16) * 60
    write_wav(tmp_path / "m.wav", x, 8000)
    y, rate = read_wav(tmp_path / "m.wav")
    assert rate == 8000 and y.dtype == np.int16 and np.array_equal(x, y)

    st = np.stack([x, -x], axis=1)
    write_wav(tmp_path / "s.wav", st, 16000)
    ch, rate = read_wav_channels(tmp_path / "s.wav")
    assert rate == 16000 and np.array_equal(ch, st)
    mono, _ = read_wav(tmp_path / "s.wav")
    assert np.array_equal(mono, np.zeros_like(x))  # x and -x cancel in the downmix


def test_stereo_downmix_is_average(tmp_path: Path) -> None:
    st = np.array([[1000, 3000], [-32768, -32768], [32767, 32767]], dtype=np.int16)
    write_wav(tmp_path / "s.wav", st, 8000)
    assert read_wav(tmp_path / "s.wav")[0].tolist() == [2000, -32768, 32767]


def test_8bit_unsigned_offset(tmp_path: Path) -> None:
    _write_raw(tmp_path / "u8.wav", bytes([0, 128, 255, 64]), 1, 1, 8000)
    assert read_wav(tmp_path / "u8.wav")[0].tolist() == [-32768, 0, 32512, -16384]


def test_24_and_32_bit(tmp_path: Path) -> None:
    vals = [0x7FFFFF, -0x800000, 0x123456, -1]
    raw24 = b"".join(struct.pack("<i", v)[:3] for v in vals)
    _write_raw(tmp_path / "p24.wav", raw24, 3, 1, 24000)
    y, rate = read_wav(tmp_path / "p24.wav")
    assert rate == 24000 and y.tolist() == [0x7FFF, -0x8000, 0x1234, -1]
    raw32 = struct.pack("<4i", 0x7FFFFFFF, -0x80000000, 0x12345678, 65536)
    _write_raw(tmp_path / "p32.wav", raw32, 4, 1, 48000)
    assert read_wav(tmp_path / "p32.wav")[0].tolist() == [0x7FFF, -0x8000, 0x1234, 1]


def test_extensible_pcm_header(tmp_path: Path) -> None:
    data = struct.pack("<4h", 1, -2, 3, -4)
    guid = b"\x01\x00" + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 2, 8000, 32000, 4, 16, 22, 16, 3) + guid
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    (tmp_path / "ext.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    ch, rate = read_wav_channels(tmp_path / "ext.wav")
    assert rate == 8000 and ch.tolist() == [[1, -2], [3, -4]]


def test_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.wav").write_bytes(b"not a wav at all")
    with pytest.raises(WavError):
        read_wav(tmp_path / "bad.wav")
    with pytest.raises(WavError):
        write_wav(tmp_path / "f.wav", np.zeros(3, np.float32), 8000)
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "missing.wav")


def test_a_live_writer_keeps_the_file_readable_up_to_its_last_header(tmp_path: Path) -> None:
    """``header_every_s``: a recording read while it is written (or after its process
    died) has every sample up to the last header rewrite."""
    path = tmp_path / "live.wav"
    writer = WavWriter(path, 8000, header_every_s=1.0)
    samples = (np.arange(12_000) % 100).astype("<i2")
    for start in range(0, len(samples), 160):
        writer.write(samples[start:start + 160].tobytes())
    heard, rate = read_wav(path)  # not closed: as a crash would leave it
    assert rate == 8000 and np.array_equal(heard, samples[:8000])
    writer.close()
    assert np.array_equal(read_wav(path)[0], samples) and writer.bytes == path.stat().st_size
