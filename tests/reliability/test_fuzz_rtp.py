"""RTP and RFC 4733 payloads (protocol/rtp.py), and one call leg's stream fed junk datagrams.

Properties: :meth:`RtpPacket.parse` and :meth:`TelephoneEvent.parse` return a
packet / event or raise :class:`RtpError`; a packet built by ``to_bytes``
parses back equal; :meth:`RtpStream.receive` never raises for any datagram from
any address (RTCP, junk, foreign sources, sequence jumps, DTMF events with
any payload), counts each datagram once, and its stream keeps producing
20 ms frames of the leg's codec (``pop_frame``) and valid packets.

Inputs: valid RTP headers (CSRCs, extensions, padding, marker, any payload
type, sequence and timestamp) with random payloads, RTCP packets, raw junk;
mutated bytewise.
"""

from __future__ import annotations

import struct

from hypothesis import example, given
from hypothesis import strategies as st

from telcoflow.protocol.rtp import (
    DtmfDigit,
    RemoteAddressChanged,
    RtpError,
    RtpPacket,
    RtpStream,
    TelephoneEvent,
    UnexpectedPayloadType,
)
from telcoflow.protocol.sip.sdp import Direction, Negotiated

from .fuzzing import DERIVED, INPUTS, Mutator, budget, expect, fail, round_trip_budget, seeds

MEDIA = Negotiated(remote_address="10.0.0.2", remote_port=4000, codec="PCMU", payload_type=0,
                   telephone_event=101, direction=Direction.SENDRECV, ptime=20,
                   recv_payload_type=0, recv_telephone_event=101)
ADDRS = [("10.0.0.2", 4000), ("10.0.0.3", 4000), ("10.0.0.2", 4002)]

packets = st.builds(
    RtpPacket,
    payload_type=st.sampled_from([0, 0, 0, 101, 101, 8, 13, 72, 127]),
    sequence=st.integers(0, 0xFFFF), timestamp=st.integers(0, 2**32 - 1),
    ssrc=st.sampled_from([1, 2, 0xDEADBEEF]),
    payload=st.one_of(st.binary(max_size=200), st.sampled_from([bytes(160), bytes(240)]),
                      st.builds(lambda e, end, v, d: TelephoneEvent(e, end, v, d).to_bytes(),
                                st.integers(0, 255), st.booleans(), st.integers(0, 63),
                                st.integers(0, 0xFFFF))),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=3).map(tuple),
    extension=st.none() | st.tuples(st.integers(0, 0xFFFF),
                                    st.binary(max_size=8).map(lambda b: b + bytes(-len(b) % 4))),
    padding=st.sampled_from([0, 0, 0, 1, 4, 255]))
rtcp = st.builds(lambda pt, body: struct.pack("!BBH", 0x80, pt, len(body) // 4) + body,
                 st.sampled_from([200, 201, 202, 203, 204, 205]), st.binary(max_size=40))
datagrams = st.one_of(packets.map(RtpPacket.to_bytes), packets.map(RtpPacket.to_bytes), rtcp,
                      st.binary(max_size=60))


def feed(stream: RtpStream, data: bytes, addr: tuple[str, int], now: float) -> None:
    packet = expect("rtp.RtpPacket.parse", RtpPacket.parse, data, (RtpError,), RtpPacket)
    expect("rtp.TelephoneEvent.parse", TelephoneEvent.parse,
           data[12:] if packet is None else packet.payload, (RtpError,), TelephoneEvent)
    if packet is not None:
        if RtpPacket.parse(packet.to_bytes()) != packet:
            raise fail("rtp.RtpPacket.parse", data, "does not survive to_bytes")
    before = stream.stats.packets_received
    events = expect("rtp.RtpStream.receive", lambda d: stream.receive(d, addr, now), data, (),
                    list)
    assert events is not None
    if stream.stats.packets_received != before + 1 or not all(
            isinstance(e, DtmfDigit | RemoteAddressChanged | UnexpectedPayloadType)
            for e in events):
        raise fail("rtp.RtpStream.receive", data, f"gave {events!r}")


PER_EXAMPLE = 100


@budget(PER_EXAMPLE)
@given(base=datagrams, seed=seeds)
@example(base=RtpPacket(101, 1, 160, 1, b"\x01\x80\x00\xa0").to_bytes(), seed=0)
def test_datagrams_into_a_stream(base: bytes, seed: int) -> None:
    """Datagrams into one leg's stream, from the expected address and strangers, with the
    media clock ticking: whatever arrives, each tick gives a frame or None."""
    mutator = Mutator(seed)
    rng = mutator.rng
    stream = RtpStream(MEDIA, ssrc=7, sequence=1, timestamp=1, latch_after=2)
    now = 0.0
    for i in range(PER_EXAMPLE):
        data = base if i == 0 else mutator.mutate_bytes(base)
        if i % 4 == 1 and len(base) >= 12:  # the next packet of the same source
            header = struct.pack("!HI", (int.from_bytes(base[2:4], "big") + i) & 0xFFFF,
                                 (int.from_bytes(base[4:8], "big") + 160 * i) & 0xFFFFFFFF)
            data = base[:2] + header + base[8:]
        feed(stream, data, ADDRS[rng.randrange(3)] if rng.random() < 0.2 else ADDRS[0], now)
        now += rng.choice((0.0, 0.001, 0.02, 0.02, 0.5))
        try:  # the media tick after it
            frame = stream.pop_frame(now)
            stream.poll(now)
            sent = stream.packetize(bytes(160), now)
        except Exception as exc:
            raise fail("rtp.RtpStream", data, f"the tick after it raised {exc!r}") from exc
        if frame is not None and len(frame) != 160:
            raise fail("rtp.RtpStream.pop_frame", data, f"a frame of {len(frame)} bytes")
        if sent is not None:
            RtpPacket.parse(sent)


@round_trip_budget()
@given(packet=packets)
def test_packets_round_trip(packet: RtpPacket) -> None:
    INPUTS["rtp round trip"] += 1
    DERIVED["rtp round trip"] = "round trips"
    assert RtpPacket.parse(packet.to_bytes()) == packet


@round_trip_budget()
@given(event=st.integers(0, 255), end=st.booleans(), volume=st.integers(0, 63),
       duration=st.integers(0, 0xFFFF))
def test_telephone_events_round_trip(event: int, end: bool, volume: int, duration: int) -> None:
    INPUTS["rtp round trip"] += 1
    DERIVED["rtp round trip"] = "round trips"
    parsed = TelephoneEvent.parse(TelephoneEvent(event, end, volume, duration).to_bytes())
    assert parsed == TelephoneEvent(event, end, volume, duration)
