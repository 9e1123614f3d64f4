"""One SIP call leg: the engine's :class:`~telcoflow.engine.ports.Leg` on a dialog + RTP.

Signalling the engine asks for (ringing, answered, ended) goes to the user
agent (:mod:`.ua`), which owns the dialogs and the transaction layer. Media
is handled here, on the engine's media tick: each tick the engine hands the
leg its 20 ms to play (``send_audio``); the leg sends it as one RTP packet
(after any DTMF event packets due), and on the same beat takes the 20 ms the
jitter buffer releases and hands it to the engine (``leg_audio``), so the
uplink runs on the media clock too, whatever the sender's packet time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from ...audio.codec import encode
from ...engine import Engine
from ...engine.ports import AudioFormat, EndReason, MediaError, PlaysOnArrival
from ...protocol.rtp import (
    DtmfDigit,
    RemoteAddressChanged,
    RtpError,
    RtpStats,
    RtpStream,
    UnexpectedPayloadType,
)
from ...protocol.sip.message import SipRequest
from ...protocol.sip.sdp import Direction, Negotiated, SessionDescription
from ...protocol.sip.transaction import ClientTransaction, ServerTransaction
from ...server.config import SipTrunk
from .media import RtpSocket

if TYPE_CHECKING:
    from .ua import SipUa

logger = logging.getLogger(__name__)
_FORMAT = AudioFormat("pcm16", 8000)


class DialogState(StrEnum):
    EARLY = "EARLY"          # INVITE sent or received, no 2xx yet
    CONFIRMED = "CONFIRMED"  # 2xx sent or received (and, for ours, ACKed)
    ENDED = "ENDED"


@dataclass(eq=False)
class SipLeg(PlaysOnArrival):  # no transfer: REFER is not implemented
    ua: SipUa
    engine: Engine
    outbound: bool
    sip_call_id: str
    local_tag: str
    local_uri: str                   # our From (outbound) / To (inbound), without tag
    remote_uri: str
    remote_target: str               # where in-dialog requests go (the remote Contact)
    peer: tuple[str, int]            # where its requests came from / our INVITE went
    rtp: RtpSocket
    invite: SipRequest
    clock: Callable[[], float]
    remote_tag: str | None = None
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 1
    server_tx: ServerTransaction | None = None
    client_tx: ClientTransaction | None = None
    state: DialogState = DialogState.EARLY
    negotiated: Negotiated | None = None
    stream: RtpStream | None = None
    sdp_version: int = 1
    call_id: str | None = None       # the engine's
    offer: SessionDescription | None = None  # the INVITE's: theirs (inbound) or ours
    trunk: SipTrunk | None = None    # the one an outbound call goes through
    auth_tried: bool = False
    _codec: str = "pcmu"             # what goes in our RTP (pcmu / pcma)
    _silence: bytes = b""            # 20 ms of it, encoded
    _rtp_seen_at: float | None = None  # the last RTP packet (or the media start, or hold)
    network = "sip"  # Leg.network (not a field: unannotated)

    # ── the engine's Leg port ────────────────────────────────────────────────
    @property
    def format(self) -> AudioFormat:
        # PCM16: the jitter buffer holds decoded audio, and the engine works in
        # PCM16 anyway; G.711 would cost an encode here and a decode there per frame
        return _FORMAT

    def ringing(self, call_id: str) -> None:
        self.call_id = call_id
        self.ua.send_ringing(self)

    def answered(self, call_id: str) -> None:
        self.call_id = call_id
        if not self.outbound:  # an outbound leg answered itself: nothing to tell it
            self.ua.send_answer(self)

    def ended(self, reason: EndReason, message: str) -> None:
        self.ua.end_leg(self, reason, message)

    def send_audio(self, frame: bytes | None) -> None:
        stream = self.stream
        if stream is None or self.state is not DialogState.CONFIRMED:
            return
        now = self.clock()
        for event in stream.dtmf_due(now):
            self._send(event)
        if self.on_hold:
            stream.skip()
            self._rtp_seen_at = now  # nothing is expected on hold: the clock restarts after
        else:
            if self._rtp_seen_at is None:
                self._rtp_seen_at = now
            elif self.ua.media_silent(self, now - self._rtp_seen_at):
                return
            payload = encode(self._codec, frame) if frame is not None else self._silence
            packet = stream.packetize(payload, now)
            if packet is not None:
                self._send(packet)
        self._uplink(stream, now)

    def send_dtmf(self, digits: str) -> None:
        if self.stream is None:
            return
        try:
            self.stream.send_dtmf(digits, self.clock())
        except RtpError as exc:
            logger.info("DTMF %r not sent on call %s: %s", digits, self.call_id, exc)

    @property
    def receive_stats(self) -> RtpStats | None:
        """The jitter buffer's counters (the engine's optional ReceiveStats: metrics)."""
        return self.stream.stats if self.stream is not None else None

    # ── media ────────────────────────────────────────────────────────────────
    @property
    def on_hold(self) -> bool:
        """The remote put us on hold (sendonly / inactive): no audio either way."""
        n = self.negotiated
        return n is not None and n.direction is not Direction.SENDRECV

    def start_media(self, negotiated: Negotiated) -> None:
        """Use what the offer/answer agreed (again, after a re-INVITE)."""
        held = self.on_hold
        self.negotiated = negotiated
        self._codec = negotiated.engine_codec
        self._silence = encode(self._codec, bytes(320))
        if self.stream is None:
            self.stream = RtpStream(negotiated)
            self.rtp.receiver = self._rtp_received
        else:
            self.stream.update(negotiated)
            if held and not self.on_hold:
                self.stream.drop_buffered()  # the audio sent on hold is not played now

    def stop_media(self) -> None:
        self.rtp.receiver = None
        self.rtp.close()
        if self.stream is not None:
            self._report(self.stream.stats)

    def _report(self, s: RtpStats) -> None:
        """One line per leg at its end: what an operator reads when a caller says
        the audio was choppy (``record.rtp`` holds every counter)."""
        expected = s.audio_packets + s.lost
        logger.info(
            "call %s RTP from %s: %d packets, %d lost (%.1f%%), %d late, %d concealed "
            "frames, jitter %.1f ms; sent %d packets", self.call_id, self.peer[0],
            s.audio_packets, s.lost, 100.0 * s.lost / expected if expected else 0.0, s.late,
            s.concealed, s.jitter_ms, s.packets_sent, extra={"rtp": s, "call_id": self.call_id})

    def _send(self, packet: bytes) -> None:
        stream = self.stream
        if stream is not None and stream.remote_addr is not None:
            self.rtp.send(packet, stream.remote_addr)

    def _rtp_received(self, data: bytes, addr: tuple[str, int]) -> None:
        stream = self.stream
        if stream is None:
            return
        now = self._rtp_seen_at = self.clock()
        for event in stream.receive(data, addr, now):
            self._rtp_event(event)

    def _uplink(self, stream: RtpStream, now: float) -> None:
        for event in stream.poll(now):
            self._rtp_event(event)
        frame = stream.pop_pcm(now)
        if frame is not None and not self.on_hold:
            self.engine.leg_audio(self, frame)

    def _rtp_event(self, event: DtmfDigit | RemoteAddressChanged | UnexpectedPayloadType
                   ) -> None:
        if isinstance(event, DtmfDigit):
            if not self.on_hold:
                self.engine.leg_dtmf(self, event.digit, event.duration_ms)
        elif isinstance(event, UnexpectedPayloadType):
            self.engine.leg_media_error(self, MediaError.CALLER_AUDIO_INVALID,
                                        f"the caller's RTP carries payload type "
                                        f"{event.payload_type}, which was not negotiated: "
                                        "that audio is dropped")
        else:
            logger.info("call %s: RTP now goes to %s (%s)", self.call_id, event.address,
                        event.reason)
