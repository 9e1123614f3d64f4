"""PlayoutBuffer: credit accounting, prebuffer, underruns, interrupts (no clock needed)."""

from __future__ import annotations

from telcoflow.engine.playout import PlayoutBuffer

FB = 640  # 20 ms at 16 kHz


def frame(value: int) -> bytes:
    return bytes([value]) * FB


def test_credit_keeps_queued_plus_outstanding_at_the_target() -> None:
    buf = PlayoutBuffer(FB, target_ms=100, prebuffer_ms=40, quantum_ms=20)
    assert buf.credit_to_request() == 5 * FB
    assert buf.credit_to_request() == 0  # already asked; the agent owes us 5 frames
    buf.push(frame(1) + frame(2))
    assert buf.outstanding == 3 * FB and buf.queued == 2 * FB
    assert buf.credit_to_request() == 0
    assert buf.tick() == frame(1)
    assert buf.credit_to_request() == FB


def test_credit_is_granted_in_quanta() -> None:
    buf = PlayoutBuffer(FB, target_ms=120, quantum_ms=60)
    assert buf.credit_to_request() == 6 * FB
    buf.push(frame(1) * 6)
    buf.tick()
    buf.tick()
    assert buf.credit_to_request() == 0  # two frames short: not worth a request yet
    buf.tick()
    assert buf.credit_to_request() == 3 * FB


def test_prebuffer_waits_for_two_frames_or_two_ticks() -> None:
    buf = PlayoutBuffer(FB, prebuffer_ms=40)
    buf.push(frame(1))
    assert buf.tick() is None  # one frame, first tick: wait for company
    assert buf.tick() == frame(1)  # nobody came: play what there is
    buf.push(frame(2) + frame(3))
    assert buf.tick() == frame(2)  # a talkspurt of two starts at once


def test_underrun_counts_and_rebuffers() -> None:
    buf = PlayoutBuffer(FB, prebuffer_ms=40)
    buf.push(frame(1) + frame(2))
    assert [buf.tick(), buf.tick()] == [frame(1), frame(2)]
    assert buf.tick() is None
    assert buf.stats.underruns == 1


def test_interrupt_drops_everything_at_once_and_counts_it() -> None:
    buf = PlayoutBuffer(FB)
    buf.push(frame(1) * 10)
    buf.tick()
    assert buf.interrupt() == buf.stats.bytes_dropped_interrupt > 0
    assert buf.tick() is None and buf.queued == 0


def test_partial_tail_is_padded_and_overflow_is_refused() -> None:
    buf = PlayoutBuffer(FB, prebuffer_ms=20, max_ms=40)
    assert buf.push(frame(9) * 3) == 2 * FB
    assert buf.stats.bytes_dropped_overflow == FB
    buf.interrupt()
    buf.push(b"\x07" * 100)
    assert buf.tick() == b"\x07" * 100 + bytes(FB - 100)


def test_a_partial_frame_mid_talkspurt_waits_one_tick_for_its_rest() -> None:
    # an agent's resampled chunks end off the frame grid; its next chunk is a little late
    buf = PlayoutBuffer(FB, prebuffer_ms=20)
    buf.push(frame(1) + b"\x02" * 300)
    assert buf.tick() == frame(1)
    assert buf.tick() is None and buf.playing  # held, not padded: no gap inside a frame
    buf.push(b"\x02" * (FB - 300) + b"\x03" * 100)
    assert buf.tick() == b"\x02" * FB
    assert buf.tick() is None and buf.playing  # the 100 bytes wait once more
    assert buf.tick() == b"\x03" * 100 + bytes(FB - 100)  # nothing came: the tail
    assert buf.tick() is None and not buf.playing
    assert buf.stats.bytes_played == 2 * FB + 100 and buf.stats.underruns == 1
