"""RTP loss between a SIP caller and the gateway.

The test is the SIP caller (:mod:`.raw`: hand-written INVITE / ACK / BYE). Its
RTP goes through a UDP relay that drops a chosen, seeded 5 % of the caller's
packets on their way to the gateway. An agent with our SDK answers at 8 kHz
and keeps what it hears. The leg's RTP report must count the dropped packets
as lost and the frames played in their place as concealed, and there must be
no drift: the gateway plays one frame per packet sent, and the recording lines
up with the sent signal at the same lag at its start and at its end, every
packet that arrived heard as it was sent and every one that did not replaced
by one frame: the previous one, attenuated (repeat concealment).

The caller paces its packets on the gateway's media ticks (which the relay
sees: the gateway sends a packet on each), so where a loss meets the jitter
buffer is chosen, not left to chance: with a packet in hand (the loss shows
when the next packet is due) or with the buffer empty at every tick (the loss
is first played around as an underrun, then found lost).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from telcoflow.audio import g711
from telcoflow.audio.align import best_lag
from telcoflow.protocol.rtp import RtpStats
from telcoflow.testing import GatewayThread

from ..interop.signals import noise
from .raw import FRAME, HOST, PTIME, Addr, Dialog, RtpPeer, RtpSource, sdp_media, sdp_offer
from .test_bad_input import LEG_LOGGER, caller_and_agent, rtp_report

RATE = 8000
TRAILER = 100  # at most this many silent packets after the signal, while the agent catches up


# ── the relay ───────────────────────────────────────────────────────────────

class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Addr], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.on_datagram(data, addr)

    def send(self, data: bytes, addr: Addr) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


@dataclass
class Relay:
    """RTP between the caller and the gateway, through two ports of its own.

    Caller -> ``caller_side`` -> ``gateway_side`` -> gateway: the packets whose
    index (their sequence number counted from the first one seen) is in
    ``drop`` are dropped. Gateway -> ``gateway_side`` -> ``caller_side`` ->
    caller: everything passes, and when each of the gateway's packets came
    (with its RTP timestamp) is kept: the gateway sends one on each media tick.
    """

    drop: frozenset[int]
    caller: Addr | None = None
    gateway: Addr | None = None
    forwarded: int = 0
    dropped: list[int] = field(default_factory=list)
    returned: int = 0
    expected: int = 0  # caller packets to see before ``all_seen`` is set
    all_seen: asyncio.Event = field(default_factory=asyncio.Event)
    from_gateway: list[tuple[float, int]] = field(default_factory=list)  # (time, timestamp)
    ticks_seen: asyncio.Event = field(default_factory=asyncio.Event)
    _first_seq: int | None = None
    _caller_side: _Side | None = None
    _gateway_side: _Side | None = None

    @property
    def caller_port(self) -> int:
        assert self._caller_side is not None
        return self._caller_side.port

    @property
    def gateway_port(self) -> int:
        assert self._gateway_side is not None
        return self._gateway_side.port

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        _, self._caller_side = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_caller), local_addr=(HOST, 0))
        _, self._gateway_side = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_gateway), local_addr=(HOST, 0))

    def close(self) -> None:
        for side in (self._caller_side, self._gateway_side):
            if side is not None and side.transport is not None:
                side.transport.close()

    def expect(self, packets: int) -> None:
        """Set ``all_seen`` once ``packets`` of the caller's have been passed or dropped."""
        self.expected = packets
        if self.forwarded + len(self.dropped) >= packets:
            self.all_seen.set()

    def next_tick(self, after: float) -> float:
        """The time of the gateway's first media tick after ``after``: each of its packets
        left on a tick, the one that came soonest after its tick tells the phase."""
        t0, ts0 = self.from_gateway[0]
        tick = min(t - ((ts - ts0) & 0xFFFFFFFF) / RATE for t, ts in self.from_gateway)
        return float(tick + PTIME * np.ceil((after - tick) / PTIME))

    def _from_caller(self, data: bytes, addr: Addr) -> None:
        self.caller = addr
        seq = struct.unpack_from("!H", data, 2)[0]
        if self._first_seq is None:
            self._first_seq = seq
        index = (seq - self._first_seq) & 0xFFFF
        if index in self.drop:
            self.dropped.append(index)
        elif self.gateway is not None and self._gateway_side is not None:
            self._gateway_side.send(data, self.gateway)
            self.forwarded += 1
        if self.expected and self.forwarded + len(self.dropped) >= self.expected:
            self.all_seen.set()

    def _from_gateway(self, data: bytes, addr: Addr) -> None:
        if addr != self.gateway:
            return
        self.from_gateway.append((asyncio.get_running_loop().time(),
                                  struct.unpack_from("!I", data, 4)[0]))
        if len(self.from_gateway) >= 20:
            self.ticks_seen.set()
        if self.caller is not None and self._caller_side is not None:
            self._caller_side.send(data, self.caller)
            self.returned += 1


# ── the call ────────────────────────────────────────────────────────────────

@dataclass
class Outcome:
    sent: int                  # RTP packets the caller sent (signal and trailer)
    forwarded: int             # those the relay passed on to the gateway
    dropped: list[int]         # their indices, as the relay dropped them
    heard: npt.NDArray[np.int16]
    report: RtpStats


async def lossy_call(gw: GatewayThread, caplog: pytest.LogCaptureFixture,
                     signal: npt.NDArray[np.uint8], drop: frozenset[int],
                     arrive: Callable[[int], float]) -> Outcome:
    """``signal`` (PCMU) sent in 20 ms packets through a relay dropping ``drop``; then
    silent packets until the agent heard the signal's length and half a second more.
    Packet ``n`` is sent ``arrive(n)`` seconds after a media tick of the gateway's (the
    first one 100 ms after the call is answered and the ticks are known)."""
    caplog.set_level(logging.INFO, logger=LEG_LOGGER)
    packets = len(signal) // FRAME
    relay, source = Relay(drop), RtpSource()
    await relay.open()
    try:
        with RtpPeer() as rtp:
            async with caller_and_agent(gw) as (peer, agent):
                dialog = Dialog(peer, gw.number)
                answered = await dialog.call(sdp_offer(relay.gateway_port, payload_types=(0,)))
                assert answered.status == 200, str(answered)
                relay.gateway, _ = sdp_media(answered.body)
                await agent.until(lambda: bool(agent.calls), "call")
                call = agent.calls[0]
                await asyncio.wait_for(relay.ticks_seen.wait(), 5)

                loop = asyncio.get_running_loop()
                silence = bytes([0xFF]) * FRAME
                start, sent = relay.next_tick(after=loop.time() + 0.1), 0
                heard_enough = 2 * (packets + 25) * FRAME
                while sent < packets or (len(call.heard) < heard_enough
                                         and sent < packets + TRAILER):
                    delay = start + arrive(sent) - loop.time()  # the sender's clock
                    if delay > 0:
                        await asyncio.sleep(delay)
                    payload = signal[sent * FRAME:(sent + 1) * FRAME].tobytes() or silence
                    rtp.send(source.packet(payload, marker=sent == 0), (HOST, relay.caller_port))
                    sent += 1
                relay.expect(sent)
                await asyncio.wait_for(relay.all_seen.wait(), 2)
                assert (await peer.response(dialog.bye())).status == 200
                await agent.until(lambda: call.ended, "the end of the call")
    finally:
        relay.close()
    assert relay.returned > 0, "the gateway's RTP never came back through the relay"
    return Outcome(sent, relay.forwarded, relay.dropped, np.frombuffer(bytes(call.heard), "<i2"),
                   rtp_report(caplog, call.call.id))


def frame_at(audio: npt.NDArray[np.int16], start: int) -> npt.NDArray[np.float64]:
    """The 20 ms of ``audio`` from ``start`` (zeros past its end)."""
    out = np.zeros(FRAME)
    part = audio[start:start + FRAME]
    out[:len(part)] = part
    return out


def correlation(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(np.dot(a, b) / (np.sqrt(np.dot(a, a) * np.dot(b, b)) or 1.0))


def between_ticks(n: int) -> float:
    """Packets land 10 ms before a tick: the first waits a tick for the prefill, and
    the buffer keeps one packet in hand (a loss shows when the next one is due)."""
    return n * PTIME - 0.010


def after_ticks(n: int) -> float:
    """The first two packets land together before a tick, the rest 5 ms after the tick
    before theirs: the buffer starts on them and is empty at every tick after, so a
    loss is first played around as an underrun, then found lost."""
    return n * PTIME - (0.025 if n == 1 else 0.015)


@pytest.mark.asyncio
@pytest.mark.parametrize(("seconds", "loss", "arrive"),
                         [(4.0, 0.05, between_ticks), (4.0, 0.05, after_ticks),
                          (2.0, 0.0, between_ticks)],
                         ids=["5% dropped, between ticks", "5% dropped, after ticks",
                              "none dropped"])
async def test_dropped_packets_are_counted_concealed_and_do_not_shift_the_audio(
        sip_gateway: GatewayThread, caplog: pytest.LogCaptureFixture, seconds: float,
        loss: float, arrive: Callable[[int], float]) -> None:
    pcmu = np.frombuffer(g711.ulaw_encode(noise(seconds, RATE, amplitude=6000)), np.uint8)
    sent = g711.ulaw_decode(pcmu)  # what a lossless path delivers, sample for sample
    packets = len(pcmu) // FRAME
    rng = np.random.default_rng(2024)
    # 5 % of the signal's packets, clear of its first and last ten (a loss there would
    # be at the edge of the stream, where no later packet shows it)
    drop = frozenset(int(i) for i in rng.choice(np.arange(10, packets - 10),
                                                round(packets * loss), replace=False))

    out = await lossy_call(sip_gateway, caplog, pcmu, drop, arrive)
    rtp, heard = out.report, out.heard
    print(f"\nsent {out.sent} packets, the relay dropped {len(out.dropped)}: {rtp}")

    assert sorted(out.dropped) == sorted(drop) and out.forwarded == out.sent - len(drop)
    # the losses counted, and concealed (the BYE may overtake the last packet)
    assert out.forwarded - 1 <= rtp.audio_packets <= out.forwarded, (out.forwarded, rtp)
    assert rtp.lost == len(drop), rtp
    assert rtp.concealed >= rtp.lost and rtp.late == 0, rtp
    # Concealment beyond the losses: underruns before a packet that came late and was
    # still played, each delaying what follows by a frame. On loopback there are none
    # unless the machine stalls the sender for more than a frame.
    delayed = rtp.concealed - rtp.lost
    assert delayed <= 3, f"{delayed} frames of concealment for no loss: {rtp}"
    if arrive is after_ticks and drop:
        assert rtp.underruns > 0, f"no loss came at an empty buffer: {rtp}"
    # a frame played for each packet sent: concealment filled every gap (frames_out
    # also has the jitter buffer's prefill; the BYE leaves about as many buffered)
    assert abs(rtp.frames_out - out.sent - delayed) <= 3, (rtp.frames_out, out.sent, rtp)
    assert abs(len(heard) // FRAME - rtp.frames_out) <= 3, (len(heard) // FRAME, rtp)

    # where the signal's first and last seconds are in the recording
    lag, start_correlation = best_lag(heard, sent[:RATE])
    end_lag, end_correlation = best_lag(heard, sent[-RATE:])
    end_lag -= len(sent) - RATE
    print(f"lag {lag} at the start, {end_lag} at the end (correlation "
          f"{start_correlation:.3f} / {end_correlation:.3f}); heard {len(heard) // FRAME} frames")
    assert 0 <= lag < RATE // 2, f"the signal starts {lag} samples into the recording"
    assert len(heard) >= lag + len(sent), (len(heard), lag)

    # Every packet that arrived is heard as it was sent, at that lag (or whole frames
    # later, after an underrun counted above) ...
    want = sent.astype(np.float64).reshape(packets, FRAME)
    kept = [i for i in range(packets) if i not in drop]
    later: dict[int, int] = {}
    for i in kept:
        match = [correlation(frame_at(heard, lag + FRAME * (i + m)), want[i])
                 for m in range(delayed + 1)]
        later[i] = int(np.argmax(match))
        assert match[later[i]] > 0.99, f"frame {i} is not heard: {match}"
    steps = [later[i] for i in kept]
    assert steps == sorted(steps), f"audio heard earlier than before: {steps}"
    # ... so there is no drift: the last second is where the first was, but for those.
    # The last second's best lag is where most of its frames are: a stall in its final
    # frames delays only them (steps[-1] would then not be the second's lag).
    last_second = [later[i] for i in kept if i >= packets - RATE // FRAME]
    end_step = max(set(last_second), key=last_second.count)
    assert abs(end_lag - (lag + FRAME * end_step)) <= 1, \
        f"drift: lag {lag} at the start, {end_lag} at the end ({end_step} frames delayed)"
    # Each packet that did not arrive is replaced by one frame, no more: the audio on
    # either side of a loss is at the same lag ...
    for i in sorted(drop):
        before = max(k for k in kept if k < i)
        after = min(k for k in kept if k > i)
        assert later[before] == later[after], f"the loss of packet {i} delayed the audio"
        # ... and that frame is the last one before it, attenuated (repeat
        # concealment): not silence, not the audio that followed
        concealed = frame_at(heard, lag + FRAME * (i + later[before]))
        similar = correlation(concealed, want[before])
        ratio = np.sqrt(np.mean(concealed ** 2) / np.mean(want[before] ** 2))
        assert similar > 0.95 and 0.1 < ratio < 0.75, \
            f"packet {i} lost: what is heard instead correlates {similar:.3f} with " \
            f"packet {before}, at {ratio:.2f} of its level"
