"""Per-packet cost of a SIP leg's RTP, against the bare minimum of the same work.

    .venv/bin/python bench/rtp.py

``uplink``: one PCMU packet through :class:`RtpStream` (receive: header,
latching, sequence, decode, jitter buffer; then poll and ``pop_pcm`` on the
tick), as the gateway does 50 times a second per call. ``reference``: only
``RtpPacket.parse`` and a G.711 decode of the same packets, the least any
receiver must do. ``downlink``: ``dtmf_due`` + encode + ``packetize``.
Best of 7 rounds of 20 000 packets.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from telcoflow.audio import codec  # noqa: E402
from telcoflow.protocol.rtp import RtpPacket, RtpStream  # noqa: E402
from telcoflow.protocol.sip.sdp import Direction, Negotiated  # noqa: E402

PACKETS, ROUNDS = 20_000, 7
REMOTE = ("192.0.2.10", 6000)


def media() -> Negotiated:
    return Negotiated(remote_address=REMOTE[0], remote_port=REMOTE[1], codec="PCMU",
                      payload_type=0, telephone_event=101, direction=Direction.SENDRECV,
                      ptime=None, recv_payload_type=0, recv_telephone_event=101)


def packets() -> list[bytes]:
    pcm = bytes(range(256)) + bytes(64)
    payload = codec.encode("pcmu", pcm)
    return [RtpPacket(0, k & 0xFFFF, k * 160, 7, payload).to_bytes() for k in range(PACKETS)]


def uplink(data: list[bytes]) -> float:
    rx = RtpStream(media(), ssrc=1, sequence=0, timestamp=0)
    start = time.perf_counter()
    for k, pkt in enumerate(data):
        now = k * 0.02
        rx.receive(pkt, REMOTE, now + 0.005)
        rx.poll(now + 0.0101)
        rx.pop_pcm(now + 0.0101)
    return time.perf_counter() - start


def reference(data: list[bytes]) -> float:
    start = time.perf_counter()
    for pkt in data:
        codec.decode("pcmu", RtpPacket.parse(pkt).payload)
    return time.perf_counter() - start


def downlink(data: list[bytes]) -> float:
    tx = RtpStream(media(), ssrc=2, sequence=0, timestamp=0)
    pcm = bytes(320)
    start = time.perf_counter()
    for k in range(len(data)):
        now = k * 0.02
        tx.dtmf_due(now)
        tx.packetize(codec.encode("pcmu", pcm), now)
    return time.perf_counter() - start


def best_us(fn: Callable[[list[bytes]], float], data: list[bytes]) -> float:
    return min(fn(data) for _ in range(ROUNDS)) / len(data) * 1e6


def main() -> None:
    data = packets()
    up, ref, down = best_us(uplink, data), best_us(reference, data), best_us(downlink, data)
    print(f"rtp uplink    {up:6.2f} µs/packet  ({up / ref:.2f}× parse+decode alone)")
    print(f"rtp reference {ref:6.2f} µs/packet  (RtpPacket.parse + G.711 decode)")
    print(f"rtp downlink  {down:6.2f} µs/packet  (encode + packetize)")


if __name__ == "__main__":
    main()
