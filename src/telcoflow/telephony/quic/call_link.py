"""One call on a QUIC connection: the engine's :class:`~telcoflow.engine.ports.AgentLink`.

Out (gateway → client): the call's server-initiated uni-stream carries its
``CallEvent`` s and, unless the connection negotiated QUIC DATAGRAMs, its
``AudioFrame`` s, numbered from 0, one number per 20 ms frame the engine hands
over. In (client → gateway): frames from the call's one client uni-stream (or
DATAGRAMs) are decoded to PCM16 at the call's agent rate; a skipped number is
played as 20 ms of silence first, a stale or repeated one is dropped
(:class:`~telcoflow.protocol.quic.SequenceTracker`), and the counts are reported
when the call ends (a ``LOSS`` event and a log line).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ...audio.codec import decode, encode
from ...audio.polyphase import PolyphaseResampler
from ...engine import Engine, EngineError
from ...engine.ports import AgentEvent, Channel, LinkClose
from ...protocol import quic

logger = logging.getLogger(__name__)

ERROR_EVERY_S = 1.0  # one CallEvent ERROR per code per call this often: a flood stays small
Kind = quic.CallEvent.Kind


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What a call's frames carry: ``codec`` (PCMU, PCMA, PCM16) at ``rate`` Hz."""

    codec: str
    rate: int

    @property
    def frame_bytes(self) -> int:
        return quic.frame_bytes(self.codec, self.rate)


class Wire(Protocol):
    """What a call needs of its QUIC connection."""

    def open_uni(self) -> int: ...
    def send(self, stream_id: int, data: bytes, end: bool = False) -> None: ...
    def send_audio(self, link: QuicCallLink, envelope: bytes) -> None: ...
    def command_answer(self, command_id: str, response: quic.CallCommandResponse) -> None: ...
    def call_closed(self, link: QuicCallLink) -> None: ...


class QuicCallLink:
    def __init__(self, wire: Wire, engine: Engine, call_id: str, session_id: str,
                 fmt: AudioFormat, clock: Callable[[], float]) -> None:
        self.wire, self.engine = wire, engine
        self.call_id, self.session_id = call_id, session_id
        self.format = fmt
        self.stream_id = wire.open_uni()
        self.attached = False        # the engine knows it as the call's agent link
        self.closed = False
        self.in_stream: int | None = None  # the client's uni-stream for this call
        self.in_ended = False        # its end_of_stream frame came
        self.tracker = quic.SequenceTracker()
        # our frames to the client dropped unsent, too late to be worth sending (they
        # waited over 100 ms in the connection's DATAGRAM queue): in LOSS's late_dropped
        self.late_dropped = 0
        self._clock = clock
        self._out_seq = 0
        self._silence = bytes(fmt.rate // 50 * 2)
        self._upsamplers: dict[str, PolyphaseResampler] = {}
        self._errors: dict[str, float] = {}

    # ── events on the call's stream ──────────────────────────────────────────
    def event(self, kind: int, **fields: Any) -> None:
        if self.closed:
            return
        message = quic.CallEvent(call_sid=self.call_id, kind=kind,  # type: ignore[arg-type]
                                 codec=self.format.codec, sample_rate=self.format.rate,
                                 **fields)
        self.wire.send(self.stream_id, quic.encode(message))

    def error(self, code: str, message: str) -> None:
        """A CallEvent ERROR, at most one per code every ``ERROR_EVERY_S``."""
        now = self._clock()
        last = self._errors.get(code)
        if last is not None and now - last < ERROR_EVERY_S:
            return
        self._errors[code] = now
        self.event(Kind.ERROR, reason=code, message=message)

    def finish(self, reason: str) -> None:
        """The call is over for this link: ENDED, LOSS, then the stream's end."""
        if self.closed:
            return
        report = self.tracker.report()
        report.late_dropped += self.late_dropped
        self.event(Kind.ENDED, reason=reason)
        self.event(Kind.LOSS, loss=report)
        self.closed = True
        self.wire.send(self.stream_id, b"", end=True)
        logger.info("QUIC call %s ended (%s): client audio received %d, missing %d, "
                    "duplicates %d, reordered %d, gaps %d; late audio to it dropped %d",
                    self.call_id, reason, report.received, report.missing,
                    report.duplicates, report.reordered, report.gaps, report.late_dropped)
        self.wire.call_closed(self)

    # ── AgentLink (the engine's port) ────────────────────────────────────────
    def send_audio(self, channel: Channel, pcm: bytes) -> None:
        if channel != Channel.MIXED or self.closed:
            return  # QUIC links are mixed-mode: the other channels are never asked for
        codec = self.format.codec
        payload = pcm if codec == "PCM16" else encode(codec.lower(), pcm)
        frame = quic.AudioFrame(call_sid=self.call_id, payload=payload, codec=codec,
                                sequence_number=self._out_seq)
        self._out_seq += 1
        self.wire.send_audio(self, quic.encode(frame))

    def request_audio(self, nbytes: int, frame_bytes: int) -> None:
        """No credit on this plane: the client paces itself at 20 ms (docs/quic.md)."""

    def call_event(self, event: AgentEvent) -> None:
        """TERMINATED: the ENDED event goes out when the engine closes the link."""

    def call_error(self, code: str, message: str) -> None:
        self.error(code, message)

    def dtmf(self, channel: Channel, digit: str, duration_ms: int) -> None:
        self.event(Kind.DTMF, message=digit, reason=channel.name)

    def playout_position(self, played_bytes: int, played_ms: int, reason: str) -> None:
        """Not carried: an INTERRUPT's answer has the same counts in its result_json."""

    def command_done(self, command_id: str, result: dict[str, Any]) -> None:
        self.wire.command_answer(command_id, quic.CallCommandResponse(
            ok=True, result_json=json.dumps(result, separators=(",", ":"))))

    def command_failed(self, command_id: str, code: str, message: str) -> None:
        self.wire.command_answer(command_id, quic.CallCommandResponse(
            ok=False, error_code=code, error_message=message))

    def close(self, why: LinkClose) -> None:
        if why is LinkClose.CALL_ENDED:
            call = self.engine.calls.get(self.call_id)
            reason = (call.end_reason if call is not None and call.end_reason else "ended")
            self.finish(reason.upper())
        else:  # superseded by a newer link, or the agent left a bridged call
            self.finish(why.name)

    # ── audio from the client ────────────────────────────────────────────────
    def client_frame(self, frame: quic.AudioFrame) -> None:
        """One frame the client sent for this call (stream or DATAGRAM), in any order."""
        if frame.end_of_stream:
            self.in_ended = True
        if not frame.payload and frame.end_of_stream:
            self.tracker.accept(frame.sequence_number)
            return
        try:
            pcm = self._to_pcm(frame)
        except ValueError as exc:
            self.error("INVALID_BODY", str(exc))
            return
        fill = self.tracker.accept(frame.sequence_number)
        if fill is None:
            return  # a duplicate, or its slot already played as silence
        for _ in range(fill):
            if not self._play(self._silence):
                return
        self._play(pcm)

    def _to_pcm(self, frame: quic.AudioFrame) -> bytes:
        codec, payload, rate = frame.codec, frame.payload, self.format.rate
        if codec == "PCM16":
            if len(payload) != rate // 50 * 2:
                raise ValueError(f"a PCM16 frame on this call is 20 ms at {rate} Hz "
                                 f"({rate // 50 * 2} bytes), not {len(payload)} bytes: "
                                 "send PCM16 at the call's sample_rate, or G.711")
            return payload
        if len(payload) != 160:
            raise ValueError(f"a {codec} frame is 20 ms at 8 kHz (160 bytes), not "
                             f"{len(payload)} bytes")
        pcm = decode(codec.lower(), payload)
        if rate == 8000:
            return pcm
        upsampler = self._upsamplers.get(codec)
        if upsampler is None:
            upsampler = self._upsamplers[codec] = PolyphaseResampler(8000, rate)
        return upsampler.process(pcm)

    def _play(self, pcm: bytes) -> bool:
        try:
            self.engine.agent_audio(self, pcm)
        except EngineError as exc:
            # AUDIO_OVERFLOW: the engine already said AGENT_AUDIO_DROPPED (call_error)
            if exc.code != "AUDIO_OVERFLOW":
                self.error(exc.code, exc.message)
            return False
        return True
