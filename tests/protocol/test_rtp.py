from __future__ import annotations

import random
import struct
from dataclasses import dataclass, replace

import pytest

from telcoflow.audio import codec
from telcoflow.audio.jitter import JitterBuffer
from telcoflow.protocol.errors import ProtocolError
from telcoflow.protocol.rtp import (
    DtmfDigit,
    DtmfReceiver,
    DtmfSender,
    RemoteAddressChanged,
    RtpError,
    RtpEvent,
    RtpPacket,
    RtpStream,
    TelephoneEvent,
    UnexpectedPayloadType,
)
from telcoflow.protocol.sip.sdp import Direction, Negotiated

REMOTE = ("192.0.2.10", 6000)
TICK = 0.02


def media(**kw: object) -> Negotiated:
    base = Negotiated(remote_address=REMOTE[0], remote_port=REMOTE[1], codec="PCMU",
                      payload_type=0, telephone_event=101, direction=Direction.SENDRECV,
                      ptime=None, recv_payload_type=0, recv_telephone_event=101)
    return replace(base, **kw)  # type: ignore[arg-type]


def receiver(**kw: object) -> RtpStream:
    return RtpStream(media(), ssrc=1, sequence=0, timestamp=0, **kw)  # type: ignore[arg-type]


def sender(ssrc: int = 0xCAFE, sequence: int = 65_000, timestamp: int = 2**32 - 1000,
           **kw: object) -> RtpStream:
    """The remote end: sequence and timestamp start close to their wrap-around."""
    return RtpStream(media(**kw), ssrc=ssrc, sequence=sequence, timestamp=timestamp)


def ulaw_payloads(count: int, size: int = 160, seed: int = 7) -> list[bytes]:
    """Distinct random μ-law payloads (0x7F, μ-law's negative zero, re-encodes as 0xFF)."""
    rng = random.Random(seed)
    codes = [c for c in range(256) if c != 0x7F]
    return [bytes(rng.choices(codes, k=size)) for _ in range(count)]


def play(rx: RtpStream, arrivals: list[tuple[float, bytes]], ticks: int,
         addr: tuple[str, int] = REMOTE) -> tuple[list[bytes | None], list[RtpEvent]]:
    """Deliver datagrams by arrival time and pop one frame per 20 ms tick (deliveries due
    at a tick come first)."""
    arrivals = sorted(arrivals, key=lambda a: a[0])
    frames: list[bytes | None] = []
    events: list[RtpEvent] = []
    i = 0
    for k in range(ticks):
        now = k * TICK
        while i < len(arrivals) and arrivals[i][0] <= now + 1e-9:
            events += rx.receive(arrivals[i][1], addr, arrivals[i][0])
            i += 1
        events += rx.poll(now)
        frames.append(rx.pop_frame(now))
    return frames, events


def sent(tx: RtpStream, payloads: list[bytes], ptime: float = TICK,
         start: float = 0.0) -> list[tuple[float, bytes]]:
    out = []
    for k, p in enumerate(payloads):
        data = tx.packetize(p, start + k * ptime)
        assert data is not None
        out.append((start + k * ptime, data))
    return out


# ── packets ─────────────────────────────────────────────────────────────────

def test_packet_bytes_parsed() -> None:
    data = bytes.fromhex("80 e5 ff ff 00 00 01 40 de ad be ef") + b"\xd5" * 4
    pkt = RtpPacket.parse(data)
    assert pkt == RtpPacket(payload_type=101, sequence=65535, timestamp=320, ssrc=0xDEADBEEF,
                            payload=b"\xd5" * 4, marker=True)
    assert pkt.to_bytes() == data


def test_padding_csrcs_and_extension() -> None:
    pkt = RtpPacket(8, 7, 99, 5, b"abc", False, (1, 2, 3), (0xBEDE, b"\x10\xff\x00\x00"), 5)
    data = pkt.to_bytes()
    assert data[0] == 0x80 | 0x20 | 0x10 | 3 and len(data) == 12 + 12 + 8 + 3 + 5
    assert data[-5:] == b"\x00\x00\x00\x00\x05"
    assert RtpPacket.parse(data) == pkt
    assert RtpPacket.parse(bytearray(data)) == pkt and RtpPacket.parse(memoryview(data)) == pkt


def test_packet_with_padding_only_payload() -> None:
    data = RtpPacket(0, 1, 2, 3, b"", padding=4).to_bytes()
    assert RtpPacket.parse(data).payload == b""


@pytest.mark.parametrize("data, sentence", [
    (b"", "0 bytes is shorter than the 12-byte header"),
    (bytes.fromhex("80 00 00 01 00 00 00 01 00 00 00"), "11 bytes"),
    (bytes.fromhex("40 00 00 01 00 00 00 01 00 00 00 01"), "RTP version 1"),
    (bytes.fromhex("00 00 00 01 00 00 00 01 00 00 00 01"), "RTP version 0"),
    (bytes.fromhex("82 00 00 01 00 00 00 01 00 00 00 01 00 00 00 01"), "2 CSRCs needs 20"),
    (bytes.fromhex("90 00 00 01 00 00 00 01 00 00 00 01 be de"), "extension is cut short"),
    (bytes.fromhex("90 00 00 01 00 00 00 01 00 00 00 01 be de 00 02 00 00 00 00"),
     "extension of 8 bytes runs past"),
    (bytes.fromhex("a0 00 00 01 00 00 00 01 00 00 00 01 ff 00"), "padding count 0"),
    (bytes.fromhex("a0 00 00 01 00 00 00 01 00 00 00 01 ff 03"), "padding count 3 does not fit"),
])
def test_malformed_packets(data: bytes, sentence: str) -> None:
    with pytest.raises(RtpError, match=sentence) as info:
        RtpPacket.parse(data)
    assert isinstance(info.value, ProtocolError) and info.value.code == "RTP_ERROR"


def test_every_truncation_of_a_full_packet_is_refused_or_shorter() -> None:
    full = RtpPacket(8, 1, 2, 3, b"payload", True, (9,), (1, b"\x00" * 4), 3).to_bytes()
    for n in range(len(full)):
        try:
            pkt = RtpPacket.parse(full[:n])
        except RtpError:
            continue
        assert len(pkt.payload) < len(b"payload")  # read as something shorter, never more


def test_junk_never_raises_anything_but_rtp_error() -> None:
    rng = random.Random(3)
    for _ in range(5000):
        data = rng.randbytes(rng.randint(0, 60))
        if data and rng.random() < 0.5:
            data = bytes([0x80 | (data[0] & 0x3F)]) + data[1:]
        try:
            RtpPacket.parse(data)
        except RtpError:
            pass


@pytest.mark.parametrize("pkt", [
    RtpPacket(128, 0, 0, 0), RtpPacket(0, 0, 0, 0, csrcs=tuple(range(16))),
    RtpPacket(0, 0, 0, 0, padding=256), RtpPacket(0, 0, 0, 0, extension=(1, b"abc")),
])
def test_packet_builder_checks_fields(pkt: RtpPacket) -> None:
    with pytest.raises(ValueError):
        pkt.to_bytes()


# ── RFC 4733 ────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("data, event", [
    (bytes.fromhex("01 0a 00 a0"), TelephoneEvent(1, False, 10, 160)),      # '1', update
    (bytes.fromhex("01 8a 03 20"), TelephoneEvent(1, True, 10, 800)),       # '1', end, 100 ms
    (bytes.fromhex("0b bf ff ff"), TelephoneEvent(11, True, 63, 65535)),    # '#', R bit set
    (bytes.fromhex("10 00 00 00"), TelephoneEvent(16, False, 0, 0)),        # flash
])
def test_telephone_event_vectors(data: bytes, event: TelephoneEvent) -> None:
    assert TelephoneEvent.parse(data) == event
    assert TelephoneEvent.parse(event.to_bytes()) == event
    if not data[1] & 0x40:
        assert event.to_bytes() == data
    assert event.digit == ("1" if event.event == 1 else "#" if event.event == 11 else None)


def test_telephone_event_short_payload() -> None:
    with pytest.raises(RtpError, match="3 bytes; it needs 4"):
        TelephoneEvent.parse(b"\x01\x8a\x03")


def _digit_packets(event: int, ts: int, n: int = 5) -> list[TelephoneEvent]:
    ups = [TelephoneEvent(event, False, 10, 160 * (k + 1)) for k in range(n - 1)]
    return ups + [TelephoneEvent(event, True, 10, 160 * n)] * 3


def test_receiver_reports_a_digit_once_with_its_duration() -> None:
    rx = DtmfReceiver()
    got: list[DtmfDigit] = []
    for k, ev in enumerate(_digit_packets(1, 4000)):
        got += rx.feed(ev, 4000, k * TICK)
    assert got == [DtmfDigit("1", 100, True)]
    assert rx.duplicates == 2 and rx.next_deadline() is None


def test_receiver_end_packet_alone_and_flash_ignored() -> None:
    rx = DtmfReceiver()
    assert rx.feed(TelephoneEvent(16, True, 10, 800), 0, 0.0) == []
    assert rx.feed(TelephoneEvent(15, True, 10, 400), 800, 0.1) == [DtmfDigit("D", 50)]


def test_receiver_timeout_when_end_packets_are_lost() -> None:
    rx = DtmfReceiver(timeout=0.5)
    assert rx.feed(TelephoneEvent(5, False, 10, 160), 100, 1.0) == []
    assert rx.feed(TelephoneEvent(5, False, 10, 320), 100, 1.02) == []
    assert rx.next_deadline() == pytest.approx(1.52)
    assert rx.poll(1.5) == []
    assert rx.poll(1.52) == [DtmfDigit("5", 40, ended=False)]
    assert rx.feed(TelephoneEvent(5, True, 10, 480), 100, 1.6) == []  # too late: once only


def test_receiver_new_event_ends_the_previous_one() -> None:
    rx = DtmfReceiver()
    rx.feed(TelephoneEvent(2, False, 10, 320), 1000, 0.0)
    got = rx.feed(TelephoneEvent(3, False, 10, 160), 3000, 0.2)
    assert got == [DtmfDigit("2", 40, ended=False)]
    got = rx.feed(TelephoneEvent(3, True, 10, 800), 3000, 0.3)
    assert got == [DtmfDigit("3", 100)]


def test_receiver_ignores_an_older_event_arriving_late() -> None:
    rx = DtmfReceiver()
    rx.feed(TelephoneEvent(4, False, 10, 160), 5000, 0.0)
    assert rx.feed(TelephoneEvent(9, False, 10, 160), 4000, 0.01) == []
    assert rx.feed(TelephoneEvent(4, True, 10, 800), 5000, 0.1) == [DtmfDigit("4", 100)]


def test_sender_cadence_durations_and_one_timestamp_per_event() -> None:
    tx = DtmfSender()
    tx.queue("1#", now=0.0)
    assert tx.pending == 2 and tx.active(0.0)
    timeline = []
    for k in range(30):
        for p in tx.due(k * TICK, 1000 + 160 * k):
            timeline.append((k, p.marker, p.timestamp, p.event.event, p.event.end,
                             p.event.duration))
    first = [(k, m, ts, e, end, d) for k, m, ts, e, end, d in timeline if e == 1]
    assert first == [(0, True, 1000, 1, False, 160), (1, False, 1000, 1, False, 320),
                     (2, False, 1000, 1, False, 480), (3, False, 1000, 1, False, 640),
                     (4, False, 1000, 1, True, 800), (5, False, 1000, 1, True, 800),
                     (6, False, 1000, 1, True, 800)]
    second = [t for t in timeline if t[3] == 11]
    assert second[0] == (10, True, 1000 + 1600, 11, False, 160)  # 100 ms tone + 100 ms pause
    assert [t[0] for t in second] == list(range(10, 17)) and tx.pending == 0
    assert tx.next_deadline() is None and not tx.active(1.0)


def test_sender_never_reuses_a_timestamp_span() -> None:
    tx = DtmfSender(tone_ms=40, gap_ms=40)
    tx.queue("12", 0.0)
    stamps = {p.event.event: p.timestamp for k in range(20) for p in tx.due(k * TICK, 777)}
    assert stamps[1] == 777 and stamps[2] == 777 + 320 + 160


def test_sender_catches_up_when_called_late_and_checks_digits() -> None:
    tx = DtmfSender()
    tx.queue("a", 0.0)
    assert [p.event.duration for p in tx.due(0.0, 0)] == [160]
    late = tx.due(0.5, 0)
    assert [(p.event.end, p.event.duration) for p in late] == [
        (False, 320), (False, 480), (False, 640), (True, 800), (True, 800), (True, 800)]
    assert late[0].event.event == 12
    with pytest.raises(ValueError, match="'x' is not a DTMF digit"):
        tx.queue("1x", 0.0)
    with pytest.raises(ValueError):
        DtmfSender(tone_ms=10)


def test_sender_and_receiver_back_to_back() -> None:
    tx, rx = DtmfSender(tone_ms=80, gap_ms=60), DtmfReceiver()
    tx.queue("0123456789*#ABCD", 0.0)
    got: list[DtmfDigit] = []
    for k in range(400):
        for p in tx.due(k * TICK, 160 * k):
            got += rx.feed(p.event, p.timestamp, k * TICK)
    assert "".join(d.digit for d in got) == "0123456789*#ABCD"
    assert {d.duration_ms for d in got} == {80} and all(d.ended for d in got)


# ── the stream: sending ─────────────────────────────────────────────────────

def test_packetize_sequence_timestamp_marker_and_skip() -> None:
    tx = RtpStream(media(), ssrc=0xABCD, sequence=65534, timestamp=2**32 - 160)
    pkts = [RtpPacket.parse(tx.packetize(b"\xff" * 160, k * TICK) or b"") for k in range(3)]
    assert [(p.sequence, p.timestamp, p.marker) for p in pkts] == [
        (65534, 2**32 - 160, True), (65535, 0, False), (0, 160, False)]
    assert {(p.ssrc, p.payload_type) for p in pkts} == {(0xABCD, 0)}
    tx.skip()
    tx.skip()
    p = RtpPacket.parse(tx.packetize(b"\xff" * 160, 0.1) or b"")
    assert (p.sequence, p.timestamp, p.marker) == (1, 640, True)
    s = tx.stats
    assert (s.packets_sent, s.bytes_sent, s.frames_skipped) == (4, 4 * 172, 2)
    with pytest.raises(ValueError):
        tx.packetize(b"", 0.2)


def test_random_starts() -> None:
    a, b = RtpStream(media()), RtpStream(media())
    pa = RtpPacket.parse(a.packetize(b"\xff" * 160, 0.0) or b"")
    pb = RtpPacket.parse(b.packetize(b"\xff" * 160, 0.0) or b"")
    assert (pa.ssrc, pa.sequence, pa.timestamp) != (pb.ssrc, pb.sequence, pb.timestamp)


@pytest.mark.parametrize("held", [
    {"direction": Direction.RECVONLY}, {"direction": Direction.INACTIVE},
    {"remote_address": "0.0.0.0"},
])
def test_held_by_the_remote_we_send_nothing_but_time_moves_on(held: dict[str, object]) -> None:
    tx = RtpStream(media(), ssrc=5, sequence=10, timestamp=0)
    assert tx.packetize(b"\xff" * 160, 0.0) is not None
    tx.update(media(**held))
    assert all(tx.packetize(b"\xff" * 160, k * TICK) is None for k in range(1, 6))
    tx.update(media())
    p = RtpPacket.parse(tx.packetize(b"\xff" * 160, 0.12) or b"")
    assert (p.sequence, p.timestamp, p.marker) == (11, 6 * 160, True)
    assert tx.stats.frames_skipped == 5


@dataclass(frozen=True)
class _Params:
    """Any MediaParams: here one that may send but gives no usable address."""

    remote_address: str = "0.0.0.0"
    remote_port: int = 0
    codec: str = "pcmu"
    payload_type: int = 0
    telephone_event: int | None = None
    recv_payload_type: int = 0
    recv_telephone_event: int | None = None
    dtmf_events: frozenset[int] = frozenset()
    may_send: bool = True


def test_no_address_no_packets_until_one_latches() -> None:
    tx = RtpStream(_Params(), ssrc=1, sequence=0, timestamp=0)
    assert tx.remote_addr is None and tx.packetize(b"\xff" * 160, 0.0) is None
    tx.receive(_pkt(9, 1), ("198.51.100.5", 7000), 0.01)
    assert tx.packetize(b"\xff" * 160, 0.02) is not None


def test_no_address_no_packets() -> None:
    tx = RtpStream(media(remote_address="0.0.0.0", remote_port=0,
                         direction=Direction.SENDRECV))
    assert tx.remote_addr is None and tx.packetize(b"\xff" * 160, 0.0) is None


def test_send_dtmf_needs_negotiated_events() -> None:
    with pytest.raises(RtpError, match="did not negotiate telephone-event"):
        RtpStream(media(telephone_event=None)).send_dtmf("1", 0.0)
    tx = RtpStream(media(dtmf_events=frozenset(range(12))))
    with pytest.raises(RtpError, match="does not take the DTMF events for 'AB'"):
        tx.send_dtmf("1BA", 0.0)
    with pytest.raises(ValueError):
        tx.send_dtmf("1-", 0.0)
    assert tx.dtmf_sender.pending == 0


def _tick_sender(tx: RtpStream, ticks: int, audio: bytes = b"\x55" * 160,
                 start: float = 0.0) -> list[tuple[float, bytes]]:
    out = []
    for k in range(ticks):
        now = start + k * TICK
        out += [(now, d) for d in tx.dtmf_due(now)]
        data = tx.packetize(audio, now)
        if data is not None:
            out.append((now, data))
    return out


def test_dtmf_replaces_audio_and_shares_the_sequence() -> None:
    tx = RtpStream(media(), ssrc=9, sequence=100, timestamp=0)
    tx.send_dtmf("7", now=0.04)
    pkts = [RtpPacket.parse(d) for _, d in _tick_sender(tx, 15)]
    assert [p.sequence for p in pkts] == list(range(100, 100 + len(pkts)))
    kinds = ["a" if p.payload_type == 0 else "e" for p in pkts]
    assert "".join(kinds) == "aa" + "e" * 7 + "a" * 6
    events = [p for p in pkts if p.payload_type == 101]
    assert {p.timestamp for p in events} == {320} and events[0].marker
    assert not any(p.marker for p in events[1:])
    resumed = pkts[9]
    assert resumed.marker and resumed.timestamp == 9 * 160
    assert tx.stats.dtmf_packets_sent == 7


def test_dtmf_dropped_while_held() -> None:
    tx = RtpStream(media(direction=Direction.RECVONLY), ssrc=9, sequence=100, timestamp=0)
    tx.send_dtmf("7", 0.0)
    assert _tick_sender(tx, 15) == [] and tx.dtmf_sender.pending == 0


# ── the stream: receiving ───────────────────────────────────────────────────

def test_nothing_to_play_before_the_first_packet() -> None:
    rx = receiver()
    assert rx.pop_frame(0.0) is None and rx.stats.idle_frames == 1


def test_back_to_back_20ms_exact() -> None:
    tx, rx = sender(), receiver()
    payloads = ulaw_payloads(200)
    frames, _ = play(rx, sent(tx, payloads), 200)
    assert frames[0] == b"\xff" * 160  # prefill: 40 ms buffered before playout starts
    assert frames[1:] == payloads[:199]
    s = rx.stats
    assert (s.lost, s.concealed, s.late, s.underruns, s.audio_packets) == (0, 0, 0, 0, 200)
    assert s.frames_out == 200 and s.prefill_frames == 1 and s.jitter_ms == 0
    assert s.bytes_received == 200 * 172 and s.packets_received == 200


def test_30ms_packets_rechunked_to_20ms_with_nothing_lost() -> None:
    tx, rx = sender(), receiver()
    payloads = ulaw_payloads(200, size=240)
    frames, _ = play(rx, sent(tx, payloads, ptime=0.03), 300)
    audio = b"".join(payloads)
    out = b"".join(f for f in frames if f is not None)
    assert all(f is not None and len(f) == 160 for f in frames)
    start = out.index(audio[:160])
    assert out[start:] == audio[: len(out) - start]
    assert len(out) - start >= len(audio) - 2 * 240  # all but what is still buffered
    s = rx.stats
    assert (s.lost, s.concealed, s.underruns, s.late) == (0, 0, 0, 0)
    assert s.jitter_ms == 0  # arrivals match the timestamps exactly


def test_random_loss_concealed_counted_and_no_drift_over_10000_packets() -> None:
    tx, rx = sender(), receiver()
    n = 10_000
    payloads = ulaw_payloads(n, seed=11)
    rng = random.Random(5)
    arrivals = sent(tx, payloads)
    kept = [a for a in arrivals if rng.random() >= 0.05]
    dropped = n - len(kept)
    frames, _ = play(rx, kept, n + 10)
    index = {p: k for k, p in enumerate(payloads)}
    played = [(tick, index[f]) for tick, f in enumerate(frames) if f in index]
    s = rx.stats
    assert 450 < dropped < 550
    assert s.lost == dropped and s.concealed >= dropped and s.late == 0
    assert len(played) == len(kept)  # every packet received was played, once
    assert [k for _, k in played] == sorted(k for _, k in played)
    delays = [tick - k for tick, k in played]
    assert min(delays) >= 1 and max(delays) <= 6  # bounded by the longest loss burst: no drift
    assert max(delays[-1000:]) == max(delays)  # and not growing at the end
    assert s.overflow_dropped == 0 and s.frames_out + s.idle_frames == n + 10
    assert all(f is None or len(f) == 160 for f in frames)


def test_reordering_within_the_window() -> None:
    tx, rx = sender(), receiver(prefill_ms=60)
    payloads = ulaw_payloads(100)
    arrivals = sent(tx, payloads)
    for i in range(10, 90, 10):  # packet i is held up 25 ms: i+1 overtakes it
        t, data = arrivals[i]
        arrivals[i] = (t + 0.025, data)
    frames, _ = play(rx, arrivals, 100)
    assert frames[:2] == [b"\xff" * 160] * 2 and frames[2:] == payloads[:98]
    s = rx.stats
    assert s.reordered == 8 and (s.lost, s.late, s.concealed, s.duplicated) == (0, 0, 0, 0)


def test_duplicates_dropped() -> None:
    tx, rx = sender(), receiver()
    payloads = ulaw_payloads(50)
    arrivals = sent(tx, payloads)
    arrivals += [(t + 0.005, d) for t, d in arrivals[20:25]]
    frames, _ = play(rx, arrivals, 50)
    assert frames[1:] == payloads[:49] and rx.stats.duplicated == 5


def test_ssrc_flip_is_a_new_source_with_no_loss() -> None:
    a, b = sender(ssrc=1111, sequence=500), sender(ssrc=2222, sequence=40_000, timestamp=7)
    payloads = ulaw_payloads(100)
    arrivals = sent(a, payloads[:50]) + sent(b, payloads[50:], start=50 * TICK)
    rx = receiver()
    frames, _ = play(rx, arrivals, 100)
    assert frames[1:] == payloads[:99]
    s = rx.stats
    assert (s.ssrc_changes, s.lost, s.concealed, s.seq_jumps, s.foreign) == (1, 0, 0, 0, 0)
    assert rx.remote_ssrc == 2222


def test_sequence_restart_with_the_same_ssrc_resyncs_after_two_packets() -> None:
    a = sender(ssrc=1111, sequence=500)
    b = sender(ssrc=1111, sequence=30_000)
    payloads = ulaw_payloads(100)
    arrivals = sent(a, payloads[:50]) + sent(b, payloads[50:], start=50 * TICK)
    rx = receiver()
    frames, _ = play(rx, arrivals, 100)
    s = rx.stats
    assert (s.seq_jumps, s.seq_resyncs, s.ssrc_changes) == (1, 1, 0)
    # 50 dropped, 51 resyncs right after 49: the buffer's 20 ms of slack absorbs the gap
    assert payloads[50] not in frames and frames[:51] == [b"\xff" * 160] + payloads[:50]
    assert frames[51:] == payloads[51:]


def test_wrong_payload_type_rtcp_and_junk_are_counted_and_dropped() -> None:
    rx = receiver()
    junk = [
        RtpPacket(18, 1, 0, 9, b"\x00" * 20).to_bytes(),          # G.729: not negotiated
        RtpPacket(8, 2, 0, 9, b"\xd5" * 160).to_bytes(),          # PCMA: not negotiated
        bytes.fromhex("81c80006") + bytes(24),                    # RTCP sender report
        b"\x00\x01hello",                                         # not RTP
        RtpPacket(101, 3, 0, 9, b"\x01").to_bytes(),              # event payload too short
    ]
    said = [rx.receive(d, REMOTE, 0.0) for d in junk]
    # an unnegotiated type is told (the leg reports it to the agent); the rest is silent
    assert said == [[UnexpectedPayloadType(18)], [UnexpectedPayloadType(8)], [], [], []]
    s = rx.stats
    assert (s.wrong_payload_type, s.rtcp, s.malformed) == (2, 1, 2)
    assert s.packets_received == 5 and s.audio_packets == 0
    assert rx.remote_ssrc == 9  # the short event packet was well-formed RTP: it latched


def _pkt(ssrc: int, seq: int, pt: int = 0) -> bytes:
    return RtpPacket(pt, seq, seq * 160, ssrc, b"\xff" * 160).to_bytes()


def test_latching_rules() -> None:
    rx = receiver(latch_after=5)
    a, c, d = ("198.51.100.1", 4000), ("198.51.100.1", 4002), ("203.0.113.9", 9000)
    assert rx.remote_addr == REMOTE
    assert rx.receive(_pkt(1, 1), a, 0.0) == [RemoteAddressChanged(a, "latched")]
    assert rx.remote_addr == a
    assert rx.receive(_pkt(1, 2), c, 0.02) == [RemoteAddressChanged(c, "moved")]
    assert rx.remote_addr == c
    # another SSRC from elsewhere: dropped while the current one keeps talking
    for k in range(4):
        assert rx.receive(_pkt(2, 100 + k), d, 0.04 + k * 0.01) == []
    assert rx.receive(_pkt(1, 3), c, 0.1) == []  # current source: the candidate starts over
    for k in range(4):
        assert rx.receive(_pkt(2, 104 + k), d, 0.12 + k * 0.01) == []
    assert rx.remote_addr == c
    assert rx.receive(_pkt(2, 108), d, 0.2) == [RemoteAddressChanged(d, "new source")]
    assert rx.remote_addr == d and rx.remote_ssrc == 2
    s = rx.stats
    assert (s.foreign, s.ssrc_changes, s.address_changes, s.audio_packets) == (8, 1, 2, 4)
    assert rx.receive(_pkt(1, 4), c, 0.22) == [] and rx.stats.foreign == 9


def test_new_ssrc_from_the_latched_address_is_taken_at_once() -> None:
    rx = receiver()
    rx.receive(_pkt(1, 1), REMOTE, 0.0)
    assert rx.receive(_pkt(2, 900), REMOTE, 0.02) == []
    assert rx.remote_ssrc == 2 and rx.stats.ssrc_changes == 1 and rx.stats.foreign == 0


def test_reinvite_to_a_new_address_reopens_the_latch() -> None:
    rx = receiver()
    rx.receive(_pkt(1, 1), ("198.51.100.1", 4000), 0.0)
    rx.update(media(remote_address="192.0.2.99", remote_port=7000))
    assert rx.remote_addr == ("192.0.2.99", 7000)
    new = ("198.51.100.77", 5000)
    assert rx.receive(_pkt(3, 50), new, 0.1) == [RemoteAddressChanged(new, "latched")]
    rx.update(media(remote_address="192.0.2.99", remote_port=7000, direction=Direction.RECVONLY))
    assert rx.remote_addr == new  # same SDP address: the latch stays


def test_hold_we_still_receive() -> None:
    rx = RtpStream(media(direction=Direction.RECVONLY), ssrc=1, sequence=0, timestamp=0)
    tx = sender()
    payloads = ulaw_payloads(20)
    frames, _ = play(rx, sent(tx, payloads), 20)
    assert frames[1:] == payloads[:19] and rx.packetize(b"\xff" * 160, 0.5) is None


def test_dropping_the_buffered_audio_plays_only_what_comes_after() -> None:
    """Taken off hold: what arrived while held and still waits for playout is dropped."""
    tx, rx = sender(), receiver()
    payloads = ulaw_payloads(40)
    arrivals = sent(tx, payloads)
    held, _ = play(rx, arrivals[:20], 20)
    assert held[-1] == payloads[18]  # payload 19 waits in the buffer
    rx.drop_buffered()
    frames = []
    for k in range(20, 40):
        rx.receive(arrivals[k][1], REMOTE, arrivals[k][0])
        frames.append(rx.pop_frame(k * TICK))
    assert frames[0] == b"\xff" * 160  # a fresh prefill …
    assert frames[1:] == payloads[20:39]  # … then what came after, never payload 19
    s = rx.stats
    assert s.lost == 0 and s.late == 0 and s.audio_packets == 40


def test_idle_then_resume_after_a_gap_restarts_playout() -> None:
    tx, rx = sender(), receiver()
    payloads = ulaw_payloads(100)
    arrivals = sent(tx, payloads)
    talk = arrivals[:40] + arrivals[60:]  # 20 packets (400 ms) never arrive
    frames, _ = play(rx, talk, 100)
    assert frames[:41] == [b"\xff" * 160] + payloads[:40]
    assert frames[41:43] != payloads[40:42]  # concealment, then nothing to play
    assert frames[45:60] == [None] * 15
    assert frames[60] == b"\xff" * 160  # a fresh prefill …
    assert frames[61:] == payloads[60:99]  # … and the same 20 ms delay as at the start
    s = rx.stats
    assert s.lost == 20 and s.late == 0 and s.prefill_frames == 2


def test_a_lone_packet_under_the_prefill_goes_idle() -> None:
    tx, rx = sender(), receiver()
    frames, _ = play(rx, sent(tx, ulaw_payloads(1)), 10)
    assert frames[:4] == [b"\xff" * 160] * 4 and frames[4:] == [None] * 6


def test_a_late_packet_does_not_restart_playout() -> None:
    tx, rx = sender(), receiver()
    arrivals = sent(tx, ulaw_payloads(30))
    frames, _ = play(rx, arrivals[:20] + [(1.0, arrivals[5][1])], 60)
    assert frames[-1] is None and rx.stats.late == 1


def test_jitter_rfc3550() -> None:
    tx, rx = sender(), receiver(prefill_ms=60)
    arrivals = [(t + (0.005 if k % 2 else -0.005) + 0.01, d)
                for k, (t, d) in enumerate(sent(tx, ulaw_payloads(300)))]
    play(rx, arrivals, 300)
    assert 9.0 < rx.stats.jitter_ms < 10.01  # |D| is 10 ms for every pair


def test_empty_audio_payload_takes_its_place() -> None:
    tx, rx = sender(), receiver()
    payloads = ulaw_payloads(30)
    arrivals = sent(tx, payloads)
    pkt = RtpPacket.parse(arrivals[10][1])
    arrivals[10] = (arrivals[10][0], replace(pkt, payload=b"").to_bytes())
    frames, _ = play(rx, arrivals, 30)
    assert frames[1:11] == payloads[:10] and frames[11:] == payloads[11:30]
    assert rx.stats.lost == 0


def test_dtmf_through_two_streams_in_order_without_audio_loss() -> None:
    tx, rx = sender(), receiver()
    tx.send_dtmf("1#9", now=0.1)
    arrivals = _tick_sender(tx, 120)
    frames, events = play(rx, arrivals, 120)
    digits = [e for e in events if isinstance(e, DtmfDigit)]
    assert digits == [DtmfDigit("1", 100), DtmfDigit("#", 100), DtmfDigit("9", 100)]
    s = rx.stats
    assert (s.lost, s.dtmf_digits, s.dtmf_packets, s.seq_jumps) == (0, 3, 21, 0)
    assert rx.dtmf_receiver.duplicates == 6


def test_events_interleaved_with_audio_are_not_lost_audio() -> None:
    """A sender that keeps sending audio during an event: the event packets take
    sequence numbers between audio packets; the buffer must not wait for them."""
    rx = receiver()
    payloads = ulaw_payloads(60)
    arrivals, seq = [], 0
    for k, p in enumerate(payloads):
        arrivals.append((k * TICK, RtpPacket(0, seq, k * 160, 7, p).to_bytes()))
        seq += 1
        if 20 <= k < 27:
            ev = TelephoneEvent(5, k >= 24, 10, min(k - 19, 5) * 160)
            arrivals.append((k * TICK + 0.001,
                             RtpPacket(101, seq, 20 * 160, 7, ev.to_bytes()).to_bytes()))
            seq += 1
    frames, events = play(rx, arrivals, 60)
    assert frames[1:] == payloads[:59]
    assert events == [DtmfDigit("5", 100)]
    s = rx.stats
    assert (s.lost, s.concealed, s.underruns) == (0, 0, 0)


def test_digits_between_talkspurts_with_sequence_gaps_are_not_lost_audio() -> None:
    """SIPp replays recorded digits after its recorded speech: each pcap keeps its
    own sequence numbers, so they jump while no audio plays. Nothing was lost
    that anyone could hear: no loss, no concealment (a live call said 27 %)."""
    rx = receiver()
    speech = [(k * TICK, RtpPacket(0, 100 + k, k * 160, 7, p).to_bytes())
              for k, p in enumerate(ulaw_payloads(50))]
    digits = []
    for d, (start, seq) in enumerate(((1.5, 7984), (1.9, 8042), (2.3, 8100))):
        for j in range(8):
            ev = TelephoneEvent(d + 1, j >= 5, 10, min(j + 1, 5) * 160)
            digits.append((start + min(j, 5) * TICK,
                           RtpPacket(101, seq + j, 20_000 * (d + 1), 7, ev.to_bytes()).to_bytes()))
    frames, events = play(rx, speech + digits, 140)
    assert [e.digit for e in events if isinstance(e, DtmfDigit)] == ["1", "2", "3"]
    alone = receiver()
    frames_alone, _ = play(alone, speech, 140)
    assert frames == frames_alone  # the digits change nothing the agent hears
    s, a = rx.stats, alone.stats
    assert s.lost == 0 and (s.concealed, s.frames_out) == (a.concealed, a.frames_out)


def test_dtmf_timeout_through_poll() -> None:
    rx = receiver(dtmf_timeout=0.2)
    ev = TelephoneEvent(3, False, 10, 160)
    assert rx.receive(RtpPacket(101, 1, 0, 7, ev.to_bytes()).to_bytes(), REMOTE, 1.0) == []
    assert rx.next_deadline() == pytest.approx(1.2)
    assert rx.poll(1.1) == []
    assert rx.poll(1.21) == [DtmfDigit("3", 20, ended=False)]
    assert rx.stats.dtmf_digits == 1 and rx.next_deadline() is None


def test_pcma_stream_and_codec_change_on_reinvite() -> None:
    rx = RtpStream(media(codec="PCMA", payload_type=8, recv_payload_type=8), ssrc=1,
                   sequence=0, timestamp=0)
    alaw = [codec.encode("pcma", struct.pack("<160h", *([k * 50] * 160))) for k in range(20)]
    frames, _ = play(rx, [(k * TICK, RtpPacket(8, k, k * 160, 3, p).to_bytes())
                          for k, p in enumerate(alaw)], 20)
    assert frames[1:] == alaw[:19]
    rx.update(media())
    assert rx.receive(RtpPacket(8, 20, 3200, 3, alaw[0]).to_bytes(), REMOTE, 0.4) == [
        UnexpectedPayloadType(8)]
    assert rx.stats.wrong_payload_type == 1
    with pytest.raises(ValueError):
        RtpStream(media(codec="G722"))


def test_answer_to_our_offer_payload_types_both_accepted() -> None:
    rx = RtpStream(media(telephone_event=96, recv_telephone_event=101), ssrc=1, sequence=0,
                   timestamp=0)
    for k, pt in enumerate((96, 101)):
        ev = TelephoneEvent(k, True, 10, 800)
        assert rx.receive(RtpPacket(pt, k, 1000 * k, 7, ev.to_bytes()).to_bytes(), REMOTE,
                          k * 0.1) == [DtmfDigit(str(k), 100)]


def test_jitter_buffer_push_empty() -> None:
    jb = JitterBuffer(8000, prefill_ms=0, reorder_window=8, max_wait=10.0)
    frame = b"\x10\x00" * 160
    jb.push(frame, 0.0, 0)
    jb.push_empty(0.0, 2)  # held behind the gap at 1
    jb.push(frame, 0.0, 1)
    jb.push_empty(0.0, 3)
    jb.push(frame, 0.0, 4)
    jb.push_empty(0.0, 1)  # already consumed: nothing happens
    assert [jb.pop(0.0) for _ in range(3)] == [frame] * 3
    jb.pop(0.0)  # an underrun: nothing held behind, nothing declared lost
    assert (jb.stats.lost, jb.stats.concealed, jb.stats.received) == (0, 1, 3)
    jb.push(frame, 0.0, 6)  # held behind 5 …
    assert jb.buffered_bytes == 0
    jb.push_empty(0.0, 5)  # … and released at once when 5 turns out to be empty
    assert jb.buffered_bytes == 320 and jb.stats.lost == 0
