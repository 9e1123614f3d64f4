"""RTP (RFC 3550) for one G.711 call leg, with RFC 4733 telephone events; sans-I/O.

Pieces, each usable alone:

* :class:`RtpPacket` — parse / build a packet (version 2, padding, CSRC list,
  header extension kept as opaque bytes, marker, payload type, sequence,
  timestamp, SSRC). Anything unreadable raises :class:`RtpError`.
* :class:`TelephoneEvent` — the 4-byte RFC 4733 payload.
* :class:`DtmfReceiver` — event packets in, each digit out once.
* :class:`DtmfSender` — digits in, event payloads out on a 20 ms cadence.
* :class:`RtpStream` — one leg's media: datagrams in, one 20 ms frame out per
  media tick; frames in, datagrams out. It owns a
  :class:`telcoflow.audio.jitter.JitterBuffer`.

Nothing here opens a socket or reads a clock: ``now`` (seconds, any
monotonic origin) is passed in, addresses are ``(host, port)`` tuples, and
the caller sends the bytes it is given to :attr:`RtpStream.remote_addr`.

RtpStream — receiving
---------------------
``receive(datagram, addr, now)`` drops (and counts in :attr:`RtpStream.stats`)
what it cannot use: unreadable packets, RTCP arriving on the RTP port, payload
types other than the negotiated audio and telephone-event ones, and packets
from a source it has not latched to. Audio is decoded to PCM16 and pushed to
the jitter buffer under an extended sequence number; event packets take their
place in the sequence without audio (so they are neither waited for nor
concealed) and go to the :class:`DtmfReceiver`. It returns the
:data:`RtpEvent` s the datagram caused: digits completed, the send address
changed.

Symmetric RTP (RFC 4961 style latching). Before any packet arrives we send
to the SDP's address and port. The first valid packet (readable, negotiated
payload type) from *any* address latches: its source address becomes where
we send and its SSRC the current source — this is what makes callers behind
NAT work. After that:

* from the latched address, any SSRC is accepted; a new SSRC is a new
  source (sequence tracking restarts; counted in ``ssrc_changes``);
* the current SSRC from another address is followed at once (a NAT
  rebinding; ``address_changes``);
* another SSRC from another address is dropped (``foreign``) until it has
  sent ``latch_after`` (default 5) packets in a row with nothing from the
  current source in between; the last of those switches the latch to it.
  A stray or injected stream therefore cannot steal the call while the
  real one is alive, and media that really moved is followed within about
  100 ms.

:meth:`RtpStream.update` (a re-INVITE) with a new SDP address sends there and
opens the latch again.

``pop_frame(now)`` returns exactly one 20 ms frame *in the leg's codec*
(PCMU or PCMA, 160 bytes) — the format the engine's leg speaks, so the UA
hands it to ``engine.leg_audio`` as it is — or ``None`` when there is nothing
to play: before the first audio packet, and once the buffer has run dry and
no audio has arrived for ``idle_after`` seconds (the remote holds us, sends
DTMF only, suppresses silence, or the network is down). Between the two, the
jitter buffer re-chunks any packet time to 20 ms frames (30 ms packets come
out as 20 ms frames with nothing lost), reorders, conceals losses and short
underruns (counted). The first audio after an idle spell starts a fresh
jitter buffer, so latency goes back to the prefill instead of keeping what
the gap added; sequence numbers missing across the spell count as lost.

Hold: we always receive (whatever either side's direction says);
:meth:`RtpStream.drop_buffered` drops what waits for playout, so that what the
remote sent while holding is not played once the call is taken off hold.

RtpStream — sending
-------------------
``packetize(frame, now)`` makes one packet per 20 ms frame with our SSRC,
sequence number (random start, +1 per packet sent) and timestamp (random
start, +160 per frame *whether or not it is sent*); the first packet after
any gap carries the marker bit. It returns ``None`` — the timestamp still
advancing — while we may not send (the remote put us on hold: ``sendonly``,
``inactive`` or ``c=0.0.0.0`` from it), while no address is known, and while
a DTMF event replaces the audio. On a tick with no frame, call ``skip()``.

``send_dtmf(digits, now)`` queues digits; ``dtmf_due(now)`` returns the event
packets due — call it on every media tick, before ``packetize``. Each event
is sent on the stream's SSRC and sequence, with one timestamp (the stream's
at the event's first packet), the marker on that first packet, updates every
20 ms with a growing duration, three end packets and a pause.
"""

from __future__ import annotations

import secrets
import struct
from collections import OrderedDict, deque
from dataclasses import dataclass, fields
from typing import Protocol

from ..audio import codec as audio_codec
from ..audio.jitter import JitterBuffer, JitterStats
from .errors import ProtocolError

__all__ = [
    "DIGITS",
    "DtmfDigit",
    "DtmfReceiver",
    "DtmfSender",
    "EventPayload",
    "MediaParams",
    "RemoteAddressChanged",
    "UnexpectedPayloadType",
    "RtpError",
    "RtpEvent",
    "RtpPacket",
    "RtpStats",
    "RtpStream",
    "TelephoneEvent",
]

Address = tuple[str, int]

_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
_MASK32 = 0xFFFFFFFF
DIGITS = "0123456789*#ABCD"  # RFC 4733 events 0-15
_EVENT_OF = {d: i for i, d in enumerate(DIGITS)}
_CLOCK = 8000
_FRAME_SAMPLES = 160  # 20 ms at 8 kHz; one G.711 byte per sample
_MAX_DROPOUT = 100  # RFC 3550 A.1 style: bigger jumps need a second packet to resync
_MAX_MISORDER = 100


class RtpError(ProtocolError):
    """An RTP or RFC 4733 payload that cannot be read, or a DTMF request the
    negotiated session cannot carry."""

    code = "RTP_ERROR"


# ── packets ─────────────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. ``padding`` is the number of padding bytes it carried (or is
    to be built with, count byte included); ``extension`` is (profile, data)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        n = len(data)
        if n < 12:
            raise RtpError(f"RTP packet of {n} bytes is shorter than the 12-byte header")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if b0 >> 6 != 2:
            raise RtpError(f"RTP version {b0 >> 6}; only version 2 is spoken")
        cc = b0 & 0x0F
        pos = 12 + 4 * cc
        if n < pos:
            raise RtpError(f"RTP header with {cc} CSRCs needs {pos} bytes; the packet has {n}")
        csrcs = struct.unpack_from(f"!{cc}I", data, 12) if cc else ()
        extension = None
        if b0 & 0x10:
            if n < pos + 4:
                raise RtpError("RTP header extension is cut short")
            profile, words = struct.unpack_from("!HH", data, pos)
            end = pos + 4 + 4 * words
            if n < end:
                raise RtpError(f"RTP header extension of {4 * words} bytes runs past the "
                               f"packet's {n} bytes")
            extension = (profile, bytes(data[pos + 4:end]))
            pos = end
        end = n
        padding = 0
        if b0 & 0x20:
            padding = data[n - 1]
            if padding == 0 or padding > n - pos:
                raise RtpError(f"RTP padding count {padding} does not fit the "
                               f"{n - pos} bytes after the header")
            end = n - padding
        return cls(b1 & 0x7F, seq, ts, ssrc, bytes(data[pos:end]), bool(b1 & 0x80),
                   tuple(csrcs), extension, padding)

    def to_bytes(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type must be 0..127, got {self.payload_type}")
        if len(self.csrcs) > 15:
            raise ValueError("at most 15 CSRCs")
        if not 0 <= self.padding <= 255:
            raise ValueError("padding must be 0..255 bytes")
        b0 = 0x80 | len(self.csrcs) | (0x20 if self.padding else 0)
        parts = [b"", *(struct.pack("!I", c) for c in self.csrcs)]
        if self.extension is not None:
            profile, data = self.extension
            if len(data) % 4:
                raise ValueError("header extension data must be whole 32-bit words")
            b0 |= 0x10
            parts.append(struct.pack("!HH", profile, len(data) // 4) + data)
        parts[0] = _HEADER.pack(b0, self.payload_type | (0x80 if self.marker else 0),
                                self.sequence, self.timestamp, self.ssrc)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """An RFC 4733 event payload: ``duration`` in timestamp units, ``volume`` in -dBm0."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise RtpError(f"telephone-event payload of {len(payload)} bytes; it needs 4")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def to_bytes(self) -> bytes:
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | (self.volume & 0x3F),
                           self.duration)

    @property
    def digit(self) -> str | None:
        """``0-9 * # A-D`` for events 0-15; None for any other event (flash, tones)."""
        return DIGITS[self.event] if self.event < 16 else None


# ── DTMF ────────────────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A digit the remote pressed. ``ended`` is False when its end packets never came
    and it was reported after the timeout (or when the next event began)."""

    digit: str
    duration_ms: int
    ended: bool = True


@dataclass(slots=True)
class _Tone:
    key: tuple[int, int]  # (ssrc, RTP timestamp): one event
    event: int
    duration: int
    last_seen: float


class DtmfReceiver:
    """RFC 4733 events in, each digit out once, in order.

    An event is identified by its SSRC and RTP timestamp. It is reported when
    its first end packet arrives (the redundant end packets and any late
    update are then ignored), when a newer event starts, or ``timeout``
    seconds after its last packet (see :meth:`poll`). Events other than
    0-15 are consumed silently.
    """

    def __init__(self, clock_rate: int = _CLOCK, timeout: float = 0.5) -> None:
        self.clock_rate = clock_rate
        self.timeout = timeout
        self.duplicates = 0  # packets of an event already reported
        self._current: _Tone | None = None
        self._done: OrderedDict[tuple[int, int], None] = OrderedDict()

    def feed(self, event: TelephoneEvent, timestamp: int, now: float,
             ssrc: int = 0) -> list[DtmfDigit]:
        """One event packet (with its RTP timestamp) received at ``now``."""
        out = self.poll(now)
        key = (ssrc, timestamp)
        if key in self._done:
            self.duplicates += 1
            return out
        cur = self._current
        if cur is not None and cur.key != key:
            if cur.key[0] == ssrc and (timestamp - cur.key[1]) & _MASK32 >= 1 << 31:
                self.duplicates += 1  # an older event than the one in progress: too late
                return out
            self._finish(cur, out, ended=False)
            cur = None
        if cur is None:
            cur = self._current = _Tone(key, event.event, event.duration, now)
        else:
            cur.duration = max(cur.duration, event.duration)
            cur.last_seen = now
        if event.end:
            self._finish(cur, out, ended=True)
        return out

    def poll(self, now: float) -> list[DtmfDigit]:
        """The event in progress, if its packets stopped ``timeout`` seconds ago."""
        out: list[DtmfDigit] = []
        cur = self._current
        if cur is not None and now - cur.last_seen >= self.timeout:
            self._finish(cur, out, ended=False)
        return out

    def next_deadline(self) -> float | None:
        cur = self._current
        return None if cur is None else cur.last_seen + self.timeout

    def _finish(self, tone: _Tone, out: list[DtmfDigit], ended: bool) -> None:
        if self._current is tone:
            self._current = None
        self._done[tone.key] = None
        if len(self._done) > 32:
            self._done.popitem(last=False)
        if tone.event < 16:
            ms = round(tone.duration * 1000 / self.clock_rate)
            out.append(DtmfDigit(DIGITS[tone.event], ms, ended))


@dataclass(frozen=True, slots=True)
class EventPayload:
    """One RFC 4733 packet to send: the RTP marker bit, timestamp and payload."""

    marker: bool
    timestamp: int
    event: TelephoneEvent


def _event_codes(digits: str) -> list[int]:
    codes = []
    for d in digits:
        code = _EVENT_OF.get(d.upper())
        if code is None:
            raise ValueError(f"{d!r} is not a DTMF digit (0-9 * # A-D)")
        codes.append(code)
    return codes


class DtmfSender:
    """Digits in, RFC 4733 event payloads out, on a ``interval`` cadence.

    Each digit is one event of ``tone_ms``: a first packet (marker) at its
    start, an update every ``interval`` with a growing duration, the last
    one with the end bit and the full duration, repeated twice more at the
    cadence (three end packets); the next digit starts ``gap_ms`` after the
    tone ends. Every packet of an event carries the timestamp given to
    :meth:`due` at its first packet; a later event never reuses an earlier
    one's timestamp span.
    """

    def __init__(self, *, clock_rate: int = _CLOCK, interval: float = 0.02,
                 tone_ms: int = 100, gap_ms: int = 100, volume: int = 10) -> None:
        if interval <= 0 or tone_ms < interval * 1000 or gap_ms < 0 or not 0 <= volume <= 63:
            raise ValueError("need interval > 0, tone_ms >= interval, gap_ms >= 0, volume 0-63")
        self.interval = interval
        self._spi = round(clock_rate * interval)  # samples per interval
        self._n = max(1, round(tone_ms / (interval * 1000)))  # intervals per tone
        self._gap = gap_ms / 1000
        self._volume = volume
        self._queue: deque[int] = deque()
        self._next_start = float("-inf")
        self._cur: tuple[int, float, int] | None = None  # (event, start, timestamp)
        self._k = 0  # packets of the current event sent
        self._prev_end: int | None = None  # timestamp + duration of the last event
        self._busy_until = float("-inf")  # when the last event's last packet was due

    def queue(self, digits: str, now: float) -> None:
        """Add ``digits`` (0-9 * # A-D, any case) to send after those already queued."""
        codes = _event_codes(digits)
        if self._cur is None and not self._queue:
            self._next_start = max(self._next_start, now)
        self._queue.extend(codes)

    @property
    def pending(self) -> int:
        """Digits queued or being sent."""
        return len(self._queue) + (self._cur is not None)

    def active(self, now: float) -> bool:
        """True from an event's first packet to its last (the tick of the last end
        packet included), and when one is due to start at ``now``."""
        eps = self.interval / 4
        if self._cur is not None or now <= self._busy_until + eps:
            return True
        return bool(self._queue) and now + eps >= self._next_start

    def next_deadline(self) -> float | None:
        if self._cur is not None:
            return self._cur[1] + self._k * self.interval
        return self._next_start if self._queue else None

    def clear(self) -> None:
        """Forget queued digits (the event in progress still ends properly)."""
        self._queue.clear()

    def due(self, now: float, timestamp: int) -> list[EventPayload]:
        """The packets due at ``now``; ``timestamp`` is the stream's RTP timestamp now."""
        out: list[EventPayload] = []
        eps = self.interval / 4  # a tick that fires a little early is on time
        n = self._n
        while True:
            if self._cur is None:
                if not self._queue or now + eps < self._next_start:
                    return out
                ts = timestamp & _MASK32
                if self._prev_end is not None and (ts - self._prev_end) & _MASK32 >= 1 << 31:
                    ts = self._prev_end  # the caller's clock did not move: keep events apart
                self._cur = (self._queue.popleft(), now, ts)
                self._k = 0
            event, start, ts = self._cur
            k = self._k
            if now + eps < start + k * self.interval:
                return out
            if k < n - 1:
                ev = TelephoneEvent(event, False, self._volume, (k + 1) * self._spi)
            else:
                ev = TelephoneEvent(event, True, self._volume, n * self._spi)
            out.append(EventPayload(k == 0, ts, ev))
            self._k = k + 1
            if self._k >= n + 2:
                self._cur = None
                self._busy_until = start + (n + 1) * self.interval
                self._prev_end = (ts + n * self._spi + self._spi) & _MASK32
                self._next_start = max(start + n * self.interval + self._gap,
                                       start + (n + 2) * self.interval)


# ── the stream ──────────────────────────────────────────────────────────────

class MediaParams(Protocol):
    """What :class:`RtpStream` needs from a negotiation; ``sdp.Negotiated`` is one."""

    @property
    def remote_address(self) -> str: ...
    @property
    def remote_port(self) -> int: ...
    @property
    def codec(self) -> str: ...
    @property
    def payload_type(self) -> int: ...
    @property
    def telephone_event(self) -> int | None: ...
    @property
    def recv_payload_type(self) -> int: ...
    @property
    def recv_telephone_event(self) -> int | None: ...
    @property
    def dtmf_events(self) -> frozenset[int]: ...
    @property
    def may_send(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RemoteAddressChanged:
    """Where we send changed: ``reason`` is ``latched`` (the first packet), ``moved``
    (the same SSRC from a new address) or ``new source`` (another SSRC took over)."""

    address: Address
    reason: str


@dataclass(frozen=True, slots=True)
class UnexpectedPayloadType:
    """A packet of a payload type the answer did not negotiate (dropped, counted): the
    far end sends audio we cannot decode."""

    payload_type: int


RtpEvent = DtmfDigit | RemoteAddressChanged | UnexpectedPayloadType


@dataclass(frozen=True, slots=True)
class RtpStats:
    """Counters of one stream (a snapshot; see :attr:`RtpStream.stats`)."""

    # datagrams handed to receive()
    packets_received: int = 0
    bytes_received: int = 0
    audio_packets: int = 0
    dtmf_packets: int = 0
    malformed: int = 0           # not RTP v2, cut short, bad padding, bad event payload
    rtcp: int = 0                # RTCP on the RTP port: ignored
    wrong_payload_type: int = 0  # neither the negotiated audio nor telephone-event type
    foreign: int = 0             # another source while latched (see the module doc)
    seq_jumps: int = 0           # dropped: a sequence jump not (yet) confirmed by a second
    ssrc_changes: int = 0
    address_changes: int = 0
    seq_resyncs: int = 0         # the same SSRC restarted its sequence numbers
    dtmf_digits: int = 0
    # playout (the jitter buffer's counters, summed over its restarts)
    late: int = 0
    lost: int = 0
    concealed: int = 0
    duplicated: int = 0
    reordered: int = 0
    underruns: int = 0
    overflow_dropped: int = 0
    prefill_frames: int = 0
    frames_out: int = 0          # frames pop_frame returned
    idle_frames: int = 0         # pop_frame calls that returned None
    jitter_ms: float = 0.0       # RFC 3550 A.8 interarrival jitter of the audio
    # sending
    packets_sent: int = 0
    bytes_sent: int = 0
    dtmf_packets_sent: int = 0
    frames_skipped: int = 0      # ticks with no packet: skip(), hold, DTMF, no address


_JB_FIELDS = ("late", "lost", "concealed", "duplicated", "reordered", "underruns",
              "overflow_dropped", "prefill_frames")


class RtpStream:
    """One call leg's RTP: see the module documentation for every rule."""

    def __init__(
        self,
        media: MediaParams,
        *,
        ssrc: int | None = None,
        sequence: int | None = None,
        timestamp: int | None = None,
        latch_after: int = 5,
        idle_after: float = 0.08,
        dtmf_timeout: float = 0.5,
        tone_ms: int = 100,
        gap_ms: int = 100,
        prefill_ms: int = 40,
        reorder_window: int = 8,
        max_wait: float = 0.1,
        max_delay_ms: int = 400,
    ) -> None:
        if latch_after < 1 or idle_after <= 0:
            raise ValueError("latch_after must be >= 1 and idle_after > 0")
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc & _MASK32
        self._seq = secrets.randbits(16) if sequence is None else sequence & 0xFFFF
        self._ts = secrets.randbits(32) if timestamp is None else timestamp & _MASK32
        self._latch_after = latch_after
        self._idle_after = idle_after
        self._jb_options = (prefill_ms, reorder_window, max_wait, max_delay_ms)
        self._jb = self._new_jitter_buffer()
        # Less than this much buffered and no audio for idle_after: nothing more will play.
        self._playable = max(self._jb.prefill_bytes, self._jb.frame_bytes)
        self._retired = JitterStats()
        self._frames_out = 0
        self.dtmf_receiver = DtmfReceiver(_CLOCK, dtmf_timeout)
        self.dtmf_sender = DtmfSender(tone_ms=tone_ms, gap_ms=gap_ms)
        self._n: dict[str, int] = {f.name: 0 for f in fields(RtpStats)
                                   if f.type in ("int", int)}
        # receive state
        self._latched = False
        self._src_ssrc: int | None = None
        self._src_addr: Address | None = None
        self._candidate: tuple[Address, int, int] | None = None  # addr, ssrc, packets
        self._seq_max = 0
        self._ext_max = -1
        self._bad_seq: int | None = None
        self._top = -1  # highest extended sequence number handed to the jitter buffer
        self._idle = True
        self._last_audio: float | None = None
        self._transit: float | None = None
        self._jitter = 0.0
        # send state
        self._talking = False
        self._sdp_remote: Address | None = None
        self._remote: Address | None = None
        self._apply(media)

    def _new_jitter_buffer(self) -> JitterBuffer:
        prefill_ms, reorder_window, max_wait, max_delay_ms = self._jb_options
        return JitterBuffer(_CLOCK, frame_ms=20, prefill_ms=prefill_ms,
                            reorder_window=reorder_window, max_wait=max_wait,
                            max_delay_ms=max_delay_ms, conceal="repeat", seq_bits=None)

    def _apply(self, media: MediaParams) -> None:
        name = media.codec.lower()
        if name not in ("pcmu", "pcma"):
            raise ValueError(f"RtpStream speaks PCMU or PCMA, not {media.codec!r}")
        self.media = media
        self._codec = name
        self._audio_pts = {media.payload_type, media.recv_payload_type}
        self._event_pts = {p for p in (media.telephone_event, media.recv_telephone_event)
                           if p is not None}
        if self._audio_pts & self._event_pts:
            raise ValueError("the audio and telephone-event payload types must differ")
        endpoint = (media.remote_address, media.remote_port)
        if endpoint != self._sdp_remote:
            self._sdp_remote = endpoint
            usable = media.remote_port != 0 and media.remote_address not in ("0.0.0.0", "::")
            self._remote = endpoint if usable else self._remote
            self._latched = False
            self._candidate = None
        if media.telephone_event is None:
            self.dtmf_sender.clear()

    def update(self, media: MediaParams) -> None:
        """A new negotiation for the same leg (re-INVITE): codec, payload types,
        direction; a new remote address is sent to and re-opens the latch."""
        self._apply(media)

    # -- properties ------------------------------------------------------------------------

    @property
    def remote_addr(self) -> Address | None:
        """Where to send our packets (None: nowhere known yet)."""
        return self._remote

    @property
    def remote_ssrc(self) -> int | None:
        return self._src_ssrc

    @property
    def timestamp(self) -> int:
        """The RTP timestamp the next frame will carry."""
        return self._ts

    @property
    def stats(self) -> RtpStats:
        jb = self._jb.stats
        merged = {k: getattr(self._retired, k) + getattr(jb, k) for k in _JB_FIELDS}
        counts = dict(self._n)
        merged["lost"] += counts.pop("lost")
        merged["late"] += counts.pop("late")
        for k in _JB_FIELDS:
            counts.pop(k, None)
        return RtpStats(**counts, **merged, jitter_ms=self._jitter / (_CLOCK / 1000))

    # -- receiving ---------------------------------------------------------------------------

    def receive(self, datagram: bytes, addr: Address, now: float) -> list[RtpEvent]:
        """One UDP datagram from ``addr`` at ``now``: what it caused (digits, latching)."""
        n = self._n
        n["packets_received"] += 1
        n["bytes_received"] += len(datagram)
        if len(datagram) >= 2 and datagram[0] >> 6 == 2 and 64 <= datagram[1] & 0x7F <= 95:
            n["rtcp"] += 1  # RFC 5761: packet types 192-223 sit where RTP has PT 64-95
            return []
        if len(datagram) > 12 and datagram[0] == 0x80:
            # version 2, no padding, extension or CSRCs: what phones send, read here
            _, b1, seq, timestamp, ssrc = _HEADER.unpack_from(datagram)
            pt, payload = b1 & 0x7F, datagram[12:]
        else:
            try:
                pkt = RtpPacket.parse(datagram)
            except RtpError:
                n["malformed"] += 1
                return []
            pt, seq, timestamp, ssrc, payload = (pkt.payload_type, pkt.sequence,
                                                 pkt.timestamp, pkt.ssrc, pkt.payload)
        is_audio = pt in self._audio_pts
        if not is_audio and pt not in self._event_pts:
            n["wrong_payload_type"] += 1
            return [UnexpectedPayloadType(pt)]
        events: list[RtpEvent] = []
        new_source = self._admit(ssrc, addr, events)
        if new_source is None:
            n["foreign"] += 1
            return events
        ext = self._extend(seq, new_source)
        if ext is None:
            n["seq_jumps"] += 1
            return events
        top_before = self._top
        if ext > top_before:
            self._top = ext
        if is_audio:
            self._audio(payload, timestamp, ext, top_before, now)
        else:
            self._event(payload, timestamp, ssrc, ext, now, events)
        return events

    def _admit(self, ssrc: int, addr: Address, events: list[RtpEvent]) -> bool | None:
        """Latching: None to drop the packet, else whether it starts a new source."""
        if not self._latched:
            self._latched = True
            self._candidate = None
            self._src_addr = addr
            if addr != self._remote:
                self._remote = addr
                events.append(RemoteAddressChanged(addr, "latched"))
            return self._new_source(ssrc)
        if addr == self._src_addr:
            self._candidate = None
            return self._new_source(ssrc)
        if ssrc == self._src_ssrc:  # the same stream from a new address: NAT rebinding
            self._candidate = None
            self._move(addr, "moved", events)
            return False
        cand = self._candidate
        count = cand[2] + 1 if cand is not None and cand[:2] == (addr, ssrc) else 1
        if count < self._latch_after:
            self._candidate = (addr, ssrc, count)
            return None
        self._candidate = None
        self._move(addr, "new source", events)
        return self._new_source(ssrc)

    def _move(self, addr: Address, reason: str, events: list[RtpEvent]) -> None:
        self._src_addr = addr
        self._remote = addr
        self._n["address_changes"] += 1
        events.append(RemoteAddressChanged(addr, reason))

    def _new_source(self, ssrc: int) -> bool:
        if ssrc == self._src_ssrc:
            return False
        if self._src_ssrc is not None:
            self._n["ssrc_changes"] += 1
        self._src_ssrc = ssrc
        return True

    def _extend(self, seq: int, new_source: bool) -> int | None:
        """The jitter buffer's sequence number for ``seq``: the current source's numbers
        unwrapped, continuing the previous source's; None to drop (an unconfirmed jump)."""
        if not new_source:
            delta = ((seq - self._seq_max + 0x8000) & 0xFFFF) - 0x8000
            if -_MAX_MISORDER <= delta <= _MAX_DROPOUT:
                ext = self._ext_max + delta
                if delta > 0:
                    self._seq_max, self._ext_max = seq, ext
                return ext
            if seq != self._bad_seq:
                self._bad_seq = (seq + 1) & 0xFFFF
                return None
            self._n["seq_resyncs"] += 1
        self._bad_seq = None
        self._transit = None
        self._seq_max = seq
        self._ext_max = self._top + 1
        return self._ext_max

    def _audio(self, payload: bytes, timestamp: int, ext: int, top_before: int,
               now: float) -> None:
        n = self._n
        if self._idle:
            if ext <= top_before:
                n["late"] += 1  # an old packet must not restart playout
                return
            n["lost"] += ext - top_before - 1 if top_before >= 0 else 0
            self._restart_jitter_buffer()
            self._idle = False
        n["audio_packets"] += 1
        if not payload:
            self._jb.push_empty(now, ext)
            return
        self._jb.push(audio_codec.decode(self._codec, payload), now, ext)
        self._last_audio = now
        # RFC 3550 A.8, in timestamp units; the 32-bit timestamp difference is signed.
        transit = now * _CLOCK - timestamp
        if self._transit is not None:
            d = transit - self._transit
            d = (d + 2**31) % 2**32 - 2**31
            self._jitter += (abs(d) - self._jitter) / 16
        self._transit = transit

    def _event(self, payload: bytes, timestamp: int, ssrc: int, ext: int, now: float,
               events: list[RtpEvent]) -> None:
        n = self._n
        if not self._idle:
            # in a talkspurt an event takes the place of audio: the buffer must not
            # wait for it; between talkspurts there is no playout to keep in order
            # (and a sender's jumps there, SIPp's recorded digits, are no loss)
            self._jb.push_empty(now, ext)
        try:
            event = TelephoneEvent.parse(payload)
        except RtpError:
            n["malformed"] += 1
            return
        n["dtmf_packets"] += 1
        digits = self.dtmf_receiver.feed(event, timestamp, now, ssrc)
        n["dtmf_digits"] += len(digits)
        events.extend(digits)

    def drop_buffered(self) -> None:
        """Drop the audio waiting for playout; it starts afresh with the next audio
        packet (a call taken off hold: what the remote sent while holding it is not
        played after)."""
        self._restart_jitter_buffer()
        self._idle = True

    def _restart_jitter_buffer(self) -> None:
        old = self._jb.stats
        for k in _JB_FIELDS:
            setattr(self._retired, k, getattr(self._retired, k) + getattr(old, k))
        self._jb = self._new_jitter_buffer()

    def poll(self, now: float) -> list[RtpEvent]:
        """Events that time makes happen (a digit whose end packets never came): call
        on every media tick, or at :meth:`next_deadline`."""
        digits = self.dtmf_receiver.poll(now)
        self._n["dtmf_digits"] += len(digits)
        return list(digits)

    def next_deadline(self) -> float | None:
        """When :meth:`poll` or :meth:`dtmf_due` next has something to do."""
        times = [t for t in (self.dtmf_receiver.next_deadline(),
                             self.dtmf_sender.next_deadline()) if t is not None]
        return min(times) if times else None

    def pop_frame(self, now: float) -> bytes | None:
        """The 20 ms frame to play at this media tick, in the leg's codec (160 bytes of
        PCMU or PCMA), or None when there is nothing to play (see the module doc)."""
        pcm = self.pop_pcm(now)
        return None if pcm is None else audio_codec.encode(self._codec, pcm)

    def pop_pcm(self, now: float) -> bytes | None:
        """:meth:`pop_frame` as PCM16 (320 bytes), as the jitter buffer holds it."""
        if self._idle or self._last_audio is None or (
                now - self._last_audio >= self._idle_after
                and self._jb.buffered_bytes < self._playable):
            self._idle = True
            self._n["idle_frames"] += 1
            return None
        self._n["frames_out"] += 1
        return self._jb.pop(now)

    # -- sending -----------------------------------------------------------------------------

    def packetize(self, frame: bytes, now: float) -> bytes | None:
        """The RTP packet carrying ``frame`` (20 ms in the leg's codec), or None when
        nothing may be sent this tick (hold, no address, a DTMF event playing); the
        timestamp advances by the frame's samples either way."""
        if not frame:
            raise ValueError("an empty frame: call skip() for a tick without audio")
        ts = self._ts
        self._ts = (ts + len(frame)) & _MASK32
        if self._remote is None or not self.media.may_send or self.dtmf_sender.active(now):
            self._talking = False
            self._n["frames_skipped"] += 1
            return None
        marker = 0 if self._talking else 0x80
        self._talking = True
        data = _HEADER.pack(0x80, self.media.payload_type | marker, self._seq, ts,
                            self.ssrc) + frame
        self._seq = (self._seq + 1) & 0xFFFF
        self._n["packets_sent"] += 1
        self._n["bytes_sent"] += len(data)
        return data

    def skip(self) -> None:
        """A tick with no frame to send: the timestamp moves on 20 ms, and the next
        packet carries the marker (a new talkspurt)."""
        self._ts = (self._ts + _FRAME_SAMPLES) & _MASK32
        self._talking = False
        self._n["frames_skipped"] += 1

    def send_dtmf(self, digits: str, now: float) -> None:
        """Queue ``digits`` (0-9 * # A-D) as RFC 4733 events; :meth:`dtmf_due` sends them.
        :class:`RtpError` when the remote took no telephone-event, or not these events;
        ``ValueError`` for characters that are not digits."""
        te = self.media.telephone_event
        if te is None:
            raise RtpError("the remote side did not negotiate telephone-event; "
                           "DTMF cannot be sent as RFC 4733 events")
        refused = sorted({d for d, c in zip(digits, _event_codes(digits), strict=True)
                          if c not in self.media.dtmf_events})
        if refused:
            raise RtpError(f"the remote side does not take the DTMF events for "
                           f"{''.join(refused)!r}")
        self.dtmf_sender.queue(digits, now)

    def dtmf_due(self, now: float) -> list[bytes]:
        """The event packets due at ``now`` (dropped, but still paced, while we may not
        send). Call on every media tick, before :meth:`packetize`."""
        due = self.dtmf_sender.due(now, self._ts)
        te = self.media.telephone_event
        if not due or te is None:
            return []
        if self._remote is None or not self.media.may_send:
            return []
        out = []
        for p in due:
            data = _HEADER.pack(0x80, te | (0x80 if p.marker else 0), self._seq,
                                p.timestamp, self.ssrc) + p.event.to_bytes()
            self._seq = (self._seq + 1) & 0xFFFF
            self._n["dtmf_packets_sent"] += 1
            self._n["packets_sent"] += 1
            self._n["bytes_sent"] += len(data)
            out.append(data)
        return out
