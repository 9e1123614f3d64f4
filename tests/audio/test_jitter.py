from __future__ import annotations

import numpy as np
import pytest

from telcoflow.audio.errors import JitterBufferError
from telcoflow.audio.jitter import JitterBuffer, Rechunker

RATE = 8000
FB = 320  # 20 ms at 8 kHz, PCM16


def _frame(k: int) -> bytes:
    """A recognisable 20 ms frame: every sample equals 100 * (k + 1)."""
    return np.full(160, 100 * (k + 1), dtype="<i2").tobytes()


def _value(frame: bytes) -> int:
    return int(np.frombuffer(frame, "<i2")[0])


def test_rechunker_any_sizes_to_exact_frames() -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    r = Rechunker(FB)
    out: list[bytes] = []
    i = 0
    while i < len(data):
        n = int(rng.integers(1, 900))
        out += r.process(data[i : i + n])
        i += n
    assert all(len(f) == FB for f in out)
    tail = r.flush()
    assert b"".join(out + tail)[: len(data)] == data
    assert len(tail) == 1 and len(tail[0]) == FB


def test_in_order_frames_pass_through_after_prefill() -> None:
    jb = JitterBuffer(RATE, prefill_ms=40)
    out = []
    for k in range(10):
        jb.push(_frame(k), now=k * 0.02, seq=k)
        out.append(jb.pop(now=k * 0.02))
    # First pop finds 20 ms < 40 ms prefill: silence; then audio flows in order.
    assert out[0] == bytes(FB)
    assert [_value(f) for f in out[1:]] == [100 * (k + 1) for k in range(9)]
    assert jb.stats.prefill_frames == 1 and jb.stats.lost == 0 and jb.stats.concealed == 0


def test_arbitrary_chunk_sizes_become_exact_frames() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0)
    pcm = np.arange(1600, dtype="<i2").tobytes()
    sizes = [2, 998, 40, 320, 1000, 840]
    pos = 0
    frames = []
    t = 0.0
    for seq, n in enumerate(sizes):
        jb.push(pcm[pos : pos + n], now=t, seq=seq)
        pos += n
        t += 0.02
        while jb.buffered_bytes >= FB:
            frames.append(jb.pop(now=t))
    assert all(len(f) == FB for f in frames)
    assert b"".join(frames) == pcm[: len(frames) * FB]
    assert len(frames) == 10


def test_reordering_within_window() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0, reorder_window=4, max_wait=1.0)
    order = [0, 2, 1, 3, 5, 4]
    for i, s in enumerate(order):
        jb.push(_frame(s), now=i * 0.02, seq=s)
    got = [_value(jb.pop(now=0.2)) for _ in range(6)]
    assert got == [100 * (k + 1) for k in range(6)]
    assert jb.stats.reordered == 2 and jb.stats.lost == 0 and jb.stats.late == 0


def test_loss_detected_by_window_then_late_arrival_dropped() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0, reorder_window=2, max_wait=10.0, conceal="silence")
    for i, s in enumerate([0, 2, 3, 4]):  # seq 1 missing; 3 chunks behind the gap > window 2
        jb.push(_frame(s), now=i * 0.02, seq=s)
    assert jb.stats.lost == 1
    jb.push(_frame(1), now=0.1, seq=1)  # too late now
    assert jb.stats.late == 1
    got = [_value(jb.pop(now=0.2)) for _ in range(5)]
    assert got == [100, 0, 300, 400, 500]
    assert jb.stats.concealed == 1


def test_loss_declared_after_max_wait_using_passed_in_time() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0, reorder_window=50, max_wait=0.06)
    jb.push(_frame(0), now=0.00, seq=0)
    jb.push(_frame(2), now=0.04, seq=2)
    assert jb.stats.lost == 0
    jb.push(_frame(3), now=0.09, seq=3)  # gap has blocked since 0.04: not yet 0.06
    assert jb.stats.lost == 0
    jb.push(_frame(4), now=0.10, seq=4)  # 0.10 - 0.04 >= 0.06: seq 1 is lost
    assert jb.stats.lost == 1


def test_playout_deadline_declares_loss() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0, reorder_window=50, max_wait=5.0)
    jb.push(_frame(0), now=0.0, seq=0)
    jb.push(_frame(2), now=0.01, seq=2)
    assert _value(jb.pop(0.02)) == 100
    concealed = jb.pop(0.04)  # seq 1 is needed now: lost, concealed by a faded repeat
    assert _value(concealed) == 50
    assert _value(jb.pop(0.06)) == 300
    assert jb.stats.lost == 1


def test_duplicates_counted_and_dropped() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0)
    jb.push(_frame(0), now=0.0, seq=0)
    jb.push(_frame(1), now=0.0, seq=1)
    jb.push(_frame(1), now=0.0, seq=1)  # duplicate while held
    jb.pop(0.02)
    jb.push(_frame(0), now=0.03, seq=0)  # duplicate after playout
    assert jb.stats.duplicated == 2 and jb.stats.late == 0
    assert jb.buffered_bytes == FB


def test_underrun_conceals_with_fading_repeat_then_silence() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0)
    jb.push(np.full(160, 800, "<i2").tobytes(), now=0.0, seq=0)
    vals = [_value(jb.pop(now=0.02 * k)) for k in range(6)]
    assert vals == [800, 400, 200, 100, 0, 0]
    assert jb.stats.underruns == 5 and jb.stats.concealed == 5


def test_sequence_wraparound() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0)
    seqs = [65533, 65534, 65535, 0, 1]
    for i, s in enumerate(seqs):
        jb.push(_frame(i), now=i * 0.02, seq=s)
    got = [_value(jb.pop(1.0)) for _ in range(5)]
    assert got == [100, 200, 300, 400, 500]
    assert jb.stats.lost == 0 and jb.stats.late == 0


def test_delay_bounded_by_dropping_oldest() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0, max_delay_ms=100)
    jb.push(_frame(0), 0.0, seq=0)
    jb.pop(0.0)
    for k in range(1, 20):  # a burst of 380 ms, faster than real time
        jb.push(_frame(k), 0.01, seq=k)
    assert jb.delay_ms <= 100
    assert jb.stats.overflow_dropped == 19 - 5
    assert _value(jb.pop(0.02)) == 100 * 16  # frames 15..19 kept


def test_jitter_estimate_zero_for_steady_arrivals_and_grows_with_jitter() -> None:
    steady = JitterBuffer(RATE)
    for k in range(50):
        steady.push(_frame(k), now=1.0 + 0.02 * k, seq=k)
    assert steady.stats.jitter_ms == pytest.approx(0.0, abs=1e-6)
    jittery = JitterBuffer(RATE)
    rng = np.random.default_rng(0)
    for k in range(200):
        jittery.push(_frame(k), now=1.0 + 0.02 * k + rng.uniform(0, 0.01), seq=k)
    assert 1.0 < jittery.stats.jitter_ms < 10.0


def test_flush_returns_everything_in_whole_frames() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0, reorder_window=10, max_wait=10)
    jb.push(_frame(0), 0.0, seq=0)
    jb.push(_frame(2)[:100], 0.0, seq=2)
    frames = jb.flush()
    # 320 bytes + lost seq 1 concealed at the last chunk size (100) + 100 bytes, padded.
    assert [len(f) for f in frames] == [FB, FB]
    assert _value(frames[0]) == 100 and jb.stats.lost == 1
    tail = np.frombuffer(frames[1], "<i2")
    assert tail[50:100].tolist() == [300] * 50 and not tail[100:].any()


def test_bad_config_and_input() -> None:
    with pytest.raises(JitterBufferError):
        JitterBuffer(RATE, conceal="magic")
    with pytest.raises(JitterBufferError):
        JitterBuffer(RATE).push(b"\x00", 0.0)


def test_a_loss_played_around_as_an_underrun_is_not_concealed_twice() -> None:
    """Packets come just after the ticks (the buffer at its low point): packet 3 is
    missing at its tick, an underrun conceals it, and when 4 shows it lost that
    concealment stands for it. Concealing it again would play two frames for one
    lost packet and delay the rest of the stream 20 ms for good."""
    jb = JitterBuffer(RATE, prefill_ms=40, seq_bits=None)
    jb.push(_frame(0), 0.0, seq=0)
    jb.push(_frame(1), 0.0, seq=1)
    out = [jb.pop(0.0), jb.pop(0.02)]
    jb.push(_frame(2), 0.021, seq=2)
    out.append(jb.pop(0.04))
    out.append(jb.pop(0.06))  # seq 3 is not there: an underrun
    for k in (4, 5, 6):
        jb.push(_frame(k), 0.001 + 0.02 * (k - 1), seq=k)
        out.append(jb.pop(0.02 * k))
    assert [_value(f) for f in out] == [100, 200, 300, 150, 500, 600, 700]
    assert (jb.stats.lost, jb.stats.underruns, jb.stats.concealed) == (1, 1, 1)


def test_an_underrun_covers_only_what_it_played_of_a_longer_loss() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0, seq_bits=None)
    jb.push(_frame(0), 0.0, seq=0)
    out = [jb.pop(0.0), jb.pop(0.02)]  # seq 1 missing: an underrun
    jb.push(_frame(4), 0.03, seq=4)  # 1, 2 and 3 lost: two more frames to conceal
    out += [jb.pop(0.02 * k) for k in (2, 3, 4)]
    assert [_value(f) for f in out] == [100, 50, 25, 12, 500]
    assert (jb.stats.lost, jb.stats.underruns, jb.stats.concealed) == (3, 1, 3)


def test_a_late_chunk_after_an_underrun_is_still_played() -> None:
    jb = JitterBuffer(RATE, prefill_ms=0, seq_bits=None)
    jb.push(_frame(0), 0.0, seq=0)
    out = [jb.pop(0.0), jb.pop(0.02)]  # seq 1 late: an underrun
    jb.push(_frame(1), 0.03, seq=1)
    jb.push(_frame(3), 0.03, seq=3)  # 2 lost once 1 has played: concealed
    out += [jb.pop(0.02 * k) for k in (2, 3, 4)]
    assert [_value(f) for f in out] == [100, 50, 200, 100, 400]
    assert (jb.stats.lost, jb.stats.underruns, jb.stats.concealed, jb.stats.late) == (1, 1, 2, 0)
