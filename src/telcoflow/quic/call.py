"""One call as a :class:`~telcoflow.quic.QuicAgent` sees it: its events, its audio in,
and its audio out, paced at 20 ms with contiguous sequence numbers."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..protocol import quic

if TYPE_CHECKING:
    from .client import QuicAgent

Kind = quic.CallEvent.Kind
FRAME_S = 0.020
MAX_LAG_S = 0.060  # behind schedule by more than this (a stalled loop): restart the clock


class QuicCall:
    """A call on a :class:`QuicAgent`; get it with ``agent.call(call_sid)``."""

    def __init__(self, agent: QuicAgent, call_sid: str) -> None:
        self.agent = agent
        self.call_sid = call_sid
        self.codec = "PCM16"
        self.sample_rate = 16000
        self.caller = self.callee = ""
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.gateway_loss: quic.LossReport | None = None  # the gateway's count of ours
        self.tracker = quic.SequenceTracker()            # our count of the gateway's
        self.errors: list[quic.CallEvent] = []
        self.stream_error: int | None = None  # the code our audio stream was stopped with
        self.frames_sent = 0
        self._events: asyncio.Queue[quic.CallEvent | None] = asyncio.Queue()
        self._audio: asyncio.Queue[quic.AudioFrame | None] = asyncio.Queue()
        self._out: deque[tuple[bytes, str, bool]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sender: asyncio.Task[None] | None = None
        self._stream_id: int | None = None
        self._seq = 0
        self._eos_queued = False

    # ── in ──────────────────────────────────────────────────────────────────
    async def events(self) -> AsyncIterator[quic.CallEvent]:
        """This call's events, in order, until the gateway ends its stream."""
        while (event := await self._events.get()) is not None:
            yield event

    async def audio(self) -> AsyncIterator[quic.AudioFrame]:
        """The gateway's frames for this call as they arrive (a lost one is simply not
        there: :attr:`tracker` counts it; play it as 20 ms of silence)."""
        while (frame := await self._audio.get()) is not None:
            yield frame

    async def wait_ended(self, timeout: float = 10.0) -> str:
        await asyncio.wait_for(self.ended.wait(), timeout)
        return self.end_reason

    def on_event(self, event: quic.CallEvent) -> None:
        if event.codec:
            self.codec, self.sample_rate = event.codec, event.sample_rate or self.sample_rate
        if event.kind in (Kind.INCOMING, Kind.RINGING) and event.caller:
            self.caller, self.callee = event.caller, event.callee
        if event.kind == Kind.ANSWERED:
            self.answered.set()
        elif event.kind == Kind.ERROR:
            self.errors.append(event)
        elif event.kind == Kind.ENDED:
            self.end_reason = event.reason
        elif event.kind == Kind.LOSS:
            self.gateway_loss = event.loss
        self._events.put_nowait(event)

    def on_audio(self, frame: quic.AudioFrame) -> None:
        if self.tracker.accept(frame.sequence_number) is not None:
            self._audio.put_nowait(frame)

    def on_stream_end(self) -> None:
        """The gateway ended the call's stream: the call is over for us."""
        if not self.ended.is_set():
            self.ended.set()
            self._events.put_nowait(None)
            self._audio.put_nowait(None)
            self._stop_sender()

    # ── out ─────────────────────────────────────────────────────────────────
    def send(self, data: bytes, codec: str | None = None) -> int:
        """Queue ``data`` (``codec``, default the call's; PCM16 at the call's rate) as
        20 ms frames, the last padded with silence; returns the frames queued."""
        if self._eos_queued:
            raise RuntimeError("end() was called: this call's audio stream is over")
        codec = codec or self.codec
        size = quic.frame_bytes(codec, 8000 if codec != "PCM16" else self.sample_rate)
        pad = quic.silence(codec, 8000 if codec != "PCM16" else self.sample_rate)
        count = 0
        for start in range(0, len(data), size):
            chunk = data[start:start + size]
            self._out.append((chunk + pad[len(chunk):], codec, False))
            count += 1
        self._kick()
        return count

    async def end(self) -> None:
        """The last frame (``end_of_stream``), once everything queued is sent."""
        if not self._eos_queued:
            self._eos_queued = True
            self._out.append((b"", self.codec, True))
            self._kick()
        await self.drain()

    async def drain(self) -> None:
        """Wait until every queued frame has been sent."""
        await self._idle.wait()

    async def answer(self) -> dict[str, object]:
        return await self.agent.answer(self.call_sid)

    async def hangup(self) -> dict[str, object]:
        return await self.agent.hangup(self.call_sid)

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._pace())

    def _stop_sender(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
        self._out.clear()
        self._idle.set()

    async def _pace(self) -> None:
        """One frame every 20 ms by the loop's clock (late by more than ``MAX_LAG_S``,
        or back from idle: the schedule restarts rather than bursting to catch up)."""
        loop = asyncio.get_running_loop()
        due: float | None = None
        while True:
            if not self._out:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                due = None
                continue
            now = loop.time()
            if due is None or now - due > MAX_LAG_S:
                due = now
            elif due > now:
                await asyncio.sleep(due - now)
            payload, codec, eos = self._out.popleft()
            self._write(payload, codec, eos)
            due += FRAME_S
            if eos:
                self._idle.set()
                return

    def _write(self, payload: bytes, codec: str, eos: bool) -> None:
        frame = quic.AudioFrame(call_sid=self.call_sid, payload=payload, codec=codec,
                                sequence_number=self._seq, end_of_stream=eos)
        self._seq += 1
        self.frames_sent += 0 if eos else 1
        envelope = quic.encode(frame)
        # the end goes on the stream even with DATAGRAMs: it must not be lost
        if not eos and self.agent.send_datagram(envelope):
            return
        if self._stream_id is None:
            self._stream_id = self.agent.open_audio_stream(self)
        self.agent.send_stream(self._stream_id, envelope, end=eos)
