from __future__ import annotations

import warnings

import numpy as np
import pytest

from telcoflow.audio import g711
from telcoflow.audio.errors import AudioError, AudioFormatError

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # Python >= 3.13
        audioop = None  # type: ignore[assignment]

needs_audioop = pytest.mark.skipif(audioop is None, reason="audioop oracle needs Python < 3.13")


@needs_audioop
def test_ulaw_encode_matches_audioop_for_every_int16() -> None:
    assert g711.ulaw_encode(ALL_INT16) == audioop.lin2ulaw(ALL_INT16.tobytes(), 2)


@needs_audioop
def test_alaw_encode_matches_audioop_for_every_int16() -> None:
    assert g711.alaw_encode(ALL_INT16) == audioop.lin2alaw(ALL_INT16.tobytes(), 2)


@needs_audioop
def test_decoders_match_audioop_for_every_code() -> None:
    assert g711.ulaw_decode(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES, 2)
    assert g711.alaw_decode(ALL_CODES).tobytes() == audioop.alaw2lin(ALL_CODES, 2)
    assert g711.ulaw_decode_bytes(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)
    assert g711.alaw_decode_bytes(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


def test_known_itu_values_without_oracle() -> None:
    # Facts of G.711 that hold on any Python: silence codes, extremes, sign bit.
    assert g711.ulaw_encode(np.array([0], np.int16)) == b"\xff"
    assert g711.alaw_encode(np.array([0], np.int16)) == b"\xd5"
    assert g711.ulaw_decode(b"\xff\x7f\x80\x00").tolist() == [0, 0, 32124, -32124]
    assert g711.alaw_decode(b"\xd5\x55\xaa\x2a").tolist() == [8, -8, 32256, -32256]
    assert g711.ulaw_encode(np.array([32767, -32768], np.int16)) == b"\x80\x00"
    assert g711.alaw_encode(np.array([32767, -32768], np.int16)) == b"\xaa\x2a"


@pytest.mark.parametrize(
    ("enc", "dec"),
    [(g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)],
)
def test_roundtrip_code_is_stable_and_monotonic(enc, dec) -> None:  # type: ignore[no-untyped-def]
    # decode(encode(decode(c))) == decode(c): decoded values are reconstruction points.
    decoded = dec(ALL_CODES)
    assert np.array_equal(dec(enc(decoded)), decoded)
    # Decoding the encoded ramp is monotonic non-decreasing.
    ramp = dec(enc(ALL_INT16)).astype(np.int32)
    assert np.all(np.diff(ramp) >= 0)
    # Quantisation error stays within G.711's largest step (1024 for A-law/μ-law top segment).
    assert np.abs(ramp - ALL_INT16.astype(np.int32)).max() <= 1024


def test_bytes_and_array_inputs_agree() -> None:
    x = (np.sin(np.arange(160) / 5) * 20000).astype(np.int16)
    assert g711.ulaw_encode(x) == g711.ulaw_encode(x.tobytes())
    assert g711.alaw_encode(x) == g711.alaw_encode(bytearray(x.tobytes()))
    assert len(g711.ulaw_encode(x)) == 160


def test_transcoders_equal_decode_then_encode() -> None:
    assert g711.ulaw_to_alaw(ALL_CODES) == g711.alaw_encode(g711.ulaw_decode(ALL_CODES))
    assert g711.alaw_to_ulaw(ALL_CODES) == g711.ulaw_encode(g711.alaw_decode(ALL_CODES))


def test_bad_input_raises_audio_errors() -> None:
    with pytest.raises(AudioFormatError):
        g711.ulaw_encode(b"\x00\x00\x00")
    with pytest.raises(AudioError):
        g711.alaw_encode(np.zeros(4, dtype=np.float32))  # type: ignore[arg-type,unused-ignore]


def test_no_audioop_import_in_source() -> None:
    import telcoflow.audio.g711 as mod

    with open(mod.__file__, encoding="utf-8") as f:
        src = f.read()
    assert "import audioop" not in src


@pytest.mark.parametrize("n", [0, 1, 2, 159, 160, 513])
def test_decode_pair_table_handles_any_length_and_array_input(n: int) -> None:
    codes = (ALL_CODES * 3)[:n]
    ref_u = g711._ULAW_DEC[np.frombuffer(codes, np.uint8)]
    ref_a = g711._ALAW_DEC[np.frombuffer(codes, np.uint8)]
    assert np.array_equal(g711.ulaw_decode(codes), ref_u)
    assert np.array_equal(g711.alaw_decode(codes), ref_a)
    assert g711.ulaw_decode_bytes(codes) == ref_u.astype("<i2").tobytes()
    rev = np.frombuffer(codes, np.uint8)[::-1]  # non-contiguous view
    assert np.array_equal(g711.alaw_decode(rev), ref_a[::-1])
    assert g711.ulaw_decode(codes).dtype == np.int16
