"""The played position from mark echoes, given the time (MarkLedger is sans-I/O)."""

from __future__ import annotations

from telcoflow.telephony.twilio.media import FRAME_S, MarkLedger


def send(ledger: MarkLedger, frames: int, start: float) -> list[str]:
    """``frames`` media frames on the tick from ``start``; the marks that went out."""
    names = [ledger.frame_sent(start + k * FRAME_S) for k in range(frames)]
    return [n for n in names if n is not None]


def test_between_echoes_the_far_end_is_playing_one_frame_per_tick() -> None:
    ledger = MarkLedger(every=5)
    marks = send(ledger, 12, 10.0)
    assert marks == ["m1", "m2"] and ledger.played(10.0) == 0
    assert ledger.played(10.05) == 2  # 2.5 ticks after the first frame went out
    assert ledger.echoed("m1", 10.1) and ledger.played_frames == 5
    assert ledger.played(10.1) == 5 and ledger.played(10.161) == 8
    assert ledger.played(11.0) == 12  # never more than was sent


def test_a_clear_keeps_what_was_played_and_drops_the_rest() -> None:
    ledger = MarkLedger(every=5)
    send(ledger, 20, 10.0)
    assert ledger.echoed("m1", 10.1)
    ledger.cleared(10.16)  # three more frames played since the echo
    assert (ledger.played_frames, ledger.cleared_frames, ledger.unplayed_frames) == (8, 12, 0)
    assert not ledger.echoed("m2", 10.2)  # the flushed marks come back: they count for nothing
    assert ledger.played(12.0) == 8


def test_a_new_talkspurt_starts_playing_when_its_first_frame_goes_out() -> None:
    ledger = MarkLedger(every=5)
    send(ledger, 5, 10.0)
    assert ledger.echoed("m1", 10.1)
    send(ledger, 5, 20.0)  # long after: the far end had nothing queued
    assert ledger.played(20.0) == 5 and ledger.played(20.041) == 7
