"""A simulated phone: places a call into a gateway, plays audio, records what it hears.

Used by ``telcoflow call``, the tests, the demo and the benches::

    async with Phone(gw.ws_url, phone_key) as phone:
        await phone.dial(to="+15550100", caller="+15550001", codec="pcm16", sample_rate=16000)
        await phone.wait_answered(timeout=10)
        await phone.play(samples)            # real time, 20 ms frames
        heard = phone.received()             # int16 samples at the phone's rate
        await phone.hangup()

or, as the number's subscriber line that ``call.connect`` rings::

    async with Phone(gw.ws_url, phone_key) as line:
        await line.register("+15550100", codec="pcmu", answer="auto", answer_after=0.5)
        await line.wait_answered(timeout=10)   # bridged into a call
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ..audio.codec import decode, encode
from ..protocol import phone as pp
from ..sdk._log import WS_LOGGER

logger = logging.getLogger(__name__)


class PhoneError(Exception):
    """The call could not be placed, or ended before the expected point."""


@dataclass
class PhoneEvents:
    call_id: str | None = None
    dialled_at: float | None = None
    ringing_at: float | None = None
    answered_at: float | None = None
    hangup_reason: str | None = None
    hangup_message: str | None = None
    errors: list[dict[str, object]] = field(default_factory=list)  # the error frames' fields
    incoming_at: float | None = None
    incoming_from: str | None = None  # the caller of the call last offered to this line
    calls_offered: int = 0
    frame_arrivals: list[float] = field(default_factory=list)  # perf_counter per frame
    dtmf_heard: str = ""  # the digits the agent played to this phone, in order
    messages: list[pp.MessageReceived] = field(default_factory=list)  # agents' messages
    messages_accepted: int = 0  # this line's messages the network took


class Phone:
    def __init__(self, base_url: str, key: str) -> None:
        self.url = base_url.rstrip("/") + pp.PHONE_PATH
        self._key = key
        self.codec = "pcm16"
        self.sample_rate = 8000
        self.events = PhoneEvents()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._frames: list[bytes] = []
        self._answered = asyncio.Event()
        self._ringing = asyncio.Event()
        self._hung_up = asyncio.Event()
        self._registered = asyncio.Event()
        self._error_seen = asyncio.Event()
        self._incoming = asyncio.Event()
        self._dtmf = asyncio.Event()
        self._message_news = asyncio.Event()  # set by every message-related frame
        self._answer_policy = "manual"
        self._answer_after = 0.0
        self._line_tasks: set[asyncio.Task[None]] = set()
        self._frame_waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def __aenter__(self) -> Phone:
        self._ws = await connect(
            self.url, additional_headers={"Authorization": f"Bearer {self._key}"},
            compression=None, max_size=1 << 16, logger=WS_LOGGER)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                        ) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    # ── signalling ──────────────────────────────────────────────────────────
    async def dial(self, to: str, caller: str = "anonymous", codec: str = "pcm16",
                   sample_rate: int = 8000, timeout: float = 10.0) -> str:
        assert self._ws is not None, "use 'async with Phone(...)'"
        self.codec, self.sample_rate = codec, sample_rate
        self.events.dialled_at = time.perf_counter()
        await self._ws.send(pp.build_dial(to, caller, codec, sample_rate))
        await self._wait_either(self._ringing, timeout, "ringing")
        assert self.events.call_id is not None
        return self.events.call_id

    async def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Press ``digits``, one ``dtmf`` frame each."""
        assert self._ws is not None, "use 'async with Phone(...)'"
        for digit in digits:
            await self._ws.send(pp.build_dtmf(digit, duration_ms))

    async def wait_dtmf(self, count: int, timeout: float = 10.0) -> str:
        """Wait until the agent has played at least ``count`` digits; returns them."""
        async with asyncio.timeout(timeout):
            while len(self.events.dtmf_heard) < count:
                self._dtmf.clear()
                await self._dtmf.wait()
        return self.events.dtmf_heard

    async def wait_answered(self, timeout: float = 10.0) -> None:
        await self._wait_either(self._answered, timeout, "an answer")

    async def wait_hangup(self, timeout: float = 10.0) -> str:
        await asyncio.wait_for(self._hung_up.wait(), timeout)
        return self.events.hangup_reason or "CLOSED"

    async def hangup(self) -> None:
        if self._ws is not None and not self._hung_up.is_set():
            try:
                await self._ws.send(pp.build_hangup_request())
                await self._ws.close()
            except ConnectionClosed:
                pass
        self._hung_up.set()

    async def register(self, number: str, codec: str = "pcm16", sample_rate: int = 8000, *,
                       answer: str = "auto", answer_after: float = 0.0,
                       timeout: float = 10.0) -> None:
        """Become ``number``'s subscriber line. ``answer`` says what it does when rung:
        ``auto`` (answer after ``answer_after`` seconds), ``reject``, ``never`` or
        ``manual`` (the caller of this method calls :meth:`answer` / :meth:`reject`)."""
        assert self._ws is not None, "use 'async with Phone(...)'"
        if answer not in ("auto", "reject", "never", "manual"):
            raise ValueError(f"answer must be auto, reject, never or manual, not {answer!r}")
        self.codec, self.sample_rate = codec, sample_rate
        self._answer_policy, self._answer_after = answer, answer_after
        errors_before = len(self.events.errors)
        self._error_seen.clear()
        await self._ws.send(pp.build_register(number, codec, sample_rate))
        waiters = [asyncio.ensure_future(e.wait()) for e in (self._registered, self._error_seen)]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if not self._registered.is_set():
            refusals = self.events.errors[errors_before:]
            reason = refusals[0].get("message") if refusals else f"no answer in {timeout} s"
            raise PhoneError(f"registration of {number} failed: {reason}")

    # ── messages (a registered line) ────────────────────────────────────────
    async def send_message(self, to: str, content: dict[str, object] | str,
                           timeout: float = 10.0) -> None:
        """Write to business number ``to`` (a string is a text message); returns once the
        network took it, raises :class:`PhoneError` with its reason if it refused."""
        assert self._ws is not None, "use 'async with Phone(...)'"
        if isinstance(content, str):
            content = {"type": "text", "text": {"body": content}}
        accepted, errors = self.events.messages_accepted, len(self.events.errors)
        await self._ws.send(pp.build_send_message(to, content))
        await self._wait_news(lambda: self.events.messages_accepted > accepted
                              or len(self.events.errors) > errors, timeout, "message.accepted")
        if self.events.messages_accepted == accepted:
            raise PhoneError(f"message refused: {self.events.errors[errors].get('message')}")

    async def wait_message(self, count: int = 1, timeout: float = 10.0
                           ) -> list[pp.MessageReceived]:
        """The agents' messages, once ``count`` have come."""
        await self._wait_news(lambda: len(self.events.messages) >= count, timeout,
                              f"{count} messages")
        return self.events.messages[:]

    async def mark_read(self, message_id: str) -> None:
        assert self._ws is not None
        await self._ws.send(pp.build_read(message_id))

    async def _wait_news(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self._message_news.clear()  # single-threaded: nothing arrives between these
            left = deadline - time.monotonic()
            try:
                await asyncio.wait_for(self._message_news.wait(), max(0.0, left))
            except TimeoutError:
                raise PhoneError(f"no {what} within {timeout} s") from None

    async def wait_incoming(self, timeout: float = 10.0) -> str:
        await asyncio.wait_for(self._incoming.wait(), timeout)
        assert self.events.call_id is not None
        return self.events.call_id

    async def answer(self) -> None:
        assert self._ws is not None
        await self._ws.send(pp.build_answer())

    async def reject(self) -> None:
        assert self._ws is not None
        await self._ws.send(pp.build_reject())

    def _on_offer(self) -> None:
        if self._answer_policy in ("never", "manual"):
            return
        if self._answer_policy == "reject":
            action, delay = self.reject, 0.0
        else:
            action, delay = self.answer, self._answer_after

        async def act() -> None:
            await asyncio.sleep(delay)  # the simulated subscriber takes this long to pick up
            try:
                await action()
            except ConnectionClosed:
                pass

        task = asyncio.get_running_loop().create_task(act())
        self._line_tasks.add(task)
        task.add_done_callback(self._line_tasks.discard)

    @property
    def hung_up(self) -> bool:
        return self._hung_up.is_set()

    async def _wait_either(self, event: asyncio.Event, timeout: float, what: str) -> None:
        waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(self._hung_up.wait())}
        done, pending = await asyncio.wait(waiters, timeout=timeout,
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if not event.is_set():
            if self._hung_up.is_set():
                raise PhoneError(f"call ended before {what}: {self.events.hangup_reason} "
                                 f"({self.events.hangup_message})")
            raise PhoneError(f"no {what} within {timeout} s")

    # ── media ────────────────────────────────────────────────────────────────
    @property
    def frame_samples(self) -> int:
        return self.sample_rate // 50

    async def play(self, samples: npt.NDArray[np.int16], *, on_frame_sent: object = None) -> int:
        """Send ``samples`` (at the phone's rate) in 20 ms frames, paced in real time.

        Frames go out on an absolute schedule so pacing does not drift; the
        optional callback gets ``(index, perf_counter)`` for latency benches.
        Returns the number of frames sent (fewer if the call ended first).
        """
        assert self._ws is not None
        n = self.frame_samples
        pcm = np.asarray(samples, dtype=np.int16)
        frames = [pcm[i:i + n] for i in range(0, len(pcm), n)]
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index, frame in enumerate(frames):
            delay = start + index * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._hung_up.is_set():
                return index
            if len(frame) < n:
                frame = np.concatenate([frame, np.zeros(n - len(frame), np.int16)])
            try:
                await self._ws.send(encode(self.codec, frame.astype("<i2").tobytes()))
            except ConnectionClosed:
                return index
            if callable(on_frame_sent):
                on_frame_sent(index, time.perf_counter())
        return len(frames)

    async def send_raw_audio(self, payload: bytes) -> None:
        """One binary frame as it is (a test of what the network does with bad audio)."""
        assert self._ws is not None
        await self._ws.send(payload)

    async def wait_frames(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` frames in total have been heard."""
        if len(self._frames) >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._frame_waiters.append((count, future))
        await asyncio.wait_for(future, timeout)

    def received(self) -> npt.NDArray[np.int16]:
        """Everything heard so far, decoded to int16 at the phone's rate."""
        if not self._frames:
            return np.zeros(0, np.int16)
        pcm = b"".join(decode(self.codec, f) for f in self._frames)
        return np.frombuffer(pcm, dtype="<i2").astype(np.int16)

    @property
    def frames_received(self) -> int:
        return len(self._frames)

    # ── reader ───────────────────────────────────────────────────────────────
    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                if isinstance(message, bytes):
                    self._on_audio(message)
                else:
                    self._on_text(message)
        except ConnectionClosed:
            pass
        finally:
            self._hung_up.set()
            for _, future in self._frame_waiters:
                if not future.done():
                    future.set_exception(PhoneError("the call ended"))

    def _on_audio(self, payload: bytes) -> None:
        self._frames.append(payload)
        self.events.frame_arrivals.append(time.perf_counter())
        count = len(self._frames)
        for item in [w for w in self._frame_waiters if w[0] <= count]:
            self._frame_waiters.remove(item)
            if not item[1].done():
                item[1].set_result(None)

    def _on_text(self, text: str) -> None:
        # a frame that is not a JSON object raises and ends the reader: the gateway sends none
        frame = pp.parse_network_text(text)
        now = time.perf_counter()
        if isinstance(frame, pp.Ringing):
            self.events.call_id, self.events.ringing_at = frame.call_id, now
            self._ringing.set()
        elif isinstance(frame, pp.Registered):
            self._registered.set()
        elif isinstance(frame, pp.Incoming):
            # a line takes one call after another: forget the previous one's outcome
            self._answered.clear()
            self._hung_up.clear()
            self.events.call_id, self.events.incoming_at = frame.call_id, now
            self.events.incoming_from = frame.caller
            self.events.hangup_reason = self.events.hangup_message = None
            self.events.calls_offered += 1
            self._incoming.set()
            self._on_offer()
        elif isinstance(frame, pp.Answered):
            self.events.answered_at = now
            self._answered.set()
        elif isinstance(frame, pp.HungUp):
            self._incoming.clear()  # a line is idle again: wait_incoming waits for the next
            self.events.hangup_reason = frame.reason
            self.events.hangup_message = frame.message
            self._hung_up.set()
        elif isinstance(frame, pp.DtmfPlayed):
            self.events.dtmf_heard += frame.digits
            self._dtmf.set()
        elif isinstance(frame, pp.MessageReceived):
            self.events.messages.append(frame)
            self._message_news.set()
        elif isinstance(frame, pp.MessageAccepted):
            self.events.messages_accepted += 1
            self._message_news.set()
        elif isinstance(frame, pp.LineError):
            self.events.errors.append({"type": "error", "code": frame.code,
                                       "message": frame.message})
            self._error_seen.set()
            self._message_news.set()
            logger.warning("gateway error on phone line: %s %s", frame.code, frame.message)
