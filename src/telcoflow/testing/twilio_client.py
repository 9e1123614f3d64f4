"""A Twilio emulator: places a call into the gateway the way Twilio Media Streams does.

Used by the tests and ``telcoflow call --via twilio``::

    async with TwilioCaller(gw.http_url, twilio_auth_token) as caller:
        await caller.dial(to="+15550100", caller="+15550001")
        await caller.wait_answered(timeout=10)      # the gateway's "answered" mark
        await caller.play(samples)                  # int16 at 8 kHz, 20 ms media frames
        heard = caller.received()                   # what this "Twilio" has played
        await caller.hangup()                       # stop + close

``dial`` POSTs the voice webhook with Twilio's form parameters, signed with
``RequestValidator.compute_signature``, reads the TwiML's ``<Stream url>`` and
``<Parameter>``s, opens the WebSocket and sends ``connected`` and ``start``.

It models Twilio's playout: received ``media`` is queued and played 20 ms per
20 ms of its own clock (silence when the queue is empty); each ``mark`` is
echoed once the audio queued before it has played; ``clear`` drops the queue
and echoes every pending mark at once. :attr:`played_frames` counts the media
frames played; :attr:`stale_frames_after_clear` counts the media frames played
after the last ``clear`` before the first silent tick (audio the gateway sent
after it asked for the clear).
"""

from __future__ import annotations

import asyncio
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from types import TracebackType

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ..audio.codec import decode, encode
from ..protocol import twilio as tw
from ..sdk._log import WS_LOGGER

SILENCE = b"\xff" * tw.FRAME_BYTES  # μ-law silence


class TwilioCallError(Exception):
    """The webhook refused the call, or its TwiML has no stream."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class TwilioCaller:
    def __init__(self, http_base_url: str, auth_token: str, *,
                 account_sid: str = "AC" + "0" * 32) -> None:
        self.voice_url = http_base_url.rstrip("/") + tw.VOICE_PATH
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.call_sid = "CA" + secrets.token_hex(16)
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.stream_url = ""
        self.parameters: dict[str, str] = {}   # the TwiML's <Parameter>s
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.marks_received: list[str] = []    # every mark the gateway sent, in order
        self.marks_echoed: list[str] = []
        self.clears = 0
        self.played_frames = 0                 # media frames played (not silence)
        self.stale_frames_after_clear = 0
        self.quiet_ticks = 0                   # silent playout ticks in a row, until now
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._timeline: list[bytes] = []       # everything played, silence included
        self._queue = bytearray()              # received, not yet played
        self._queued = 0                       # bytes ever queued (mark positions)
        self._consumed = 0                     # bytes ever played or cleared
        self._marks: deque[tuple[int, str]] = deque()
        self._counting_stale = False
        self._seq = 0
        self._chunk = 0
        self._t0 = 0.0
        self._answered = asyncio.Event()
        self._closed = asyncio.Event()
        self._changed = asyncio.Event()

    async def __aenter__(self) -> TwilioCaller:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                        ) -> None:
        if self._ws is not None:
            await self._ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ── the webhook ─────────────────────────────────────────────────────────
    def call_params(self, to: str, caller: str) -> dict[str, str]:
        """The form Twilio POSTs to the voice webhook for an inbound call."""
        return {"CallSid": self.call_sid, "AccountSid": self.account_sid, "From": caller,
                "To": to, "CallStatus": "ringing", "Direction": "inbound",
                "ApiVersion": "2010-04-01"}

    def sign(self, params: dict[str, str], url: str | None = None) -> str:
        from twilio.request_validator import RequestValidator
        return str(RequestValidator(self.auth_token).compute_signature(url or self.voice_url,
                                                                       params))

    async def post_webhook(self, params: dict[str, str], signature: str | None = None
                           ) -> tuple[int, bytes]:
        """POST the voice webhook; ``signature`` None signs it, "" sends none."""
        sig = self.sign(params) if signature is None else signature
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if sig:
            headers["X-Twilio-Signature"] = sig
        body = urllib.parse.urlencode(params).encode()

        def post() -> tuple[int, bytes]:
            request = urllib.request.Request(self.voice_url, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    return int(response.status), bytes(response.read())
            except urllib.error.HTTPError as exc:
                return int(exc.code), bytes(exc.read())

        return await asyncio.to_thread(post)

    async def dial(self, to: str, caller: str = "+15550001", *,
                   tamper: Callable[[dict[str, str]], None] | None = None) -> str:
        """Place the call: webhook, then the stream's ``connected`` and ``start``.
        ``tamper`` may change the custom parameters first (tests). Returns the CallSid."""
        status, body = await self.post_webhook(self.call_params(to, caller))
        if status != 200:
            raise TwilioCallError(f"the voice webhook answered {status}: "
                                  f"{body.decode(errors='replace').strip()}", status)
        try:
            self.stream_url, self.parameters = tw.parse_stream_twiml(body)
        except tw.TwilioFrameError as exc:
            raise TwilioCallError(f"the voice webhook's answer: {exc.message}") from None
        custom = dict(self.parameters)
        if tamper is not None:
            tamper(custom)
        await self.open_stream()
        await self.send_raw(tw.build_connected())
        await self.send_start(custom)
        return self.call_sid

    async def open_stream(self) -> None:
        self._ws = await connect(self.stream_url, compression=None, max_size=1 << 16,
                                 logger=WS_LOGGER)
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        self._tasks += [loop.create_task(self._read()), loop.create_task(self._playout())]

    async def send_start(self, custom: dict[str, str], **fmt: object) -> None:
        spec = tw.StartSpec(self.stream_sid, self.account_sid, self.call_sid, custom)
        for name, value in fmt.items():
            setattr(spec, name, value)
        await self.send_raw(tw.build_start(self._next_seq(), spec))

    async def send_raw(self, text: str | bytes) -> bool:
        """Send one frame as is; False if the socket is closed."""
        if self._ws is None:
            return False
        try:
            await self._ws.send(text)
        except ConnectionClosed:
            return False
        return True

    # ── the call ────────────────────────────────────────────────────────────
    async def wait_answered(self, timeout: float = 10.0) -> None:
        await self._until(lambda: self._answered.is_set() or self._closed.is_set(), timeout,
                          "the answered mark")
        if not self._answered.is_set():
            raise TwilioCallError(f"the stream closed before an answer: {self.close_reason}")

    async def wait_closed(self, timeout: float = 10.0) -> str:
        """Wait for the gateway to close the stream; returns its close reason."""
        await self._until(self._closed.is_set, timeout, "the stream to close")
        return self.close_reason or ""

    async def wait_played(self, frames: int, timeout: float = 10.0) -> None:
        await self._until(lambda: self.played_frames >= frames or self._closed.is_set(), timeout,
                          f"{frames} frames played")

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until everything received has played and every mark is echoed."""
        await self._until(lambda: not self._queue and not self._marks, timeout,
                          "the playout queue to drain")

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0,
                         what: str = "a condition") -> None:
        await self._until(predicate, timeout, what)

    async def play(self, samples: npt.NDArray[np.int16]) -> int:
        """Send ``samples`` (8 kHz) as 20 ms ``media`` frames paced in real time; returns
        the frames sent (fewer if the stream closed first)."""
        n = tw.FRAME_BYTES
        pcm = np.asarray(samples, dtype=np.int16)
        loop = asyncio.get_running_loop()
        start = loop.time()
        count = (len(pcm) + n - 1) // n
        for index in range(count):
            delay = start + index * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = pcm[index * n:(index + 1) * n]
            if len(frame) < n:
                frame = np.concatenate([frame, np.zeros(n - len(frame), np.int16)])
            self._chunk += 1
            timestamp = int((loop.time() - self._t0) * 1000)
            text = tw.build_inbound_media(self._next_seq(), self.stream_sid, self._chunk,
                                          timestamp, encode("pcmu", frame.astype("<i2").tobytes()))
            if self._closed.is_set() or not await self.send_raw(text):
                return index
        return count

    async def send_dtmf(self, digit: str) -> None:
        for key in digit:
            await self.send_raw(tw.build_dtmf(self._next_seq(), self.stream_sid, key))

    async def hangup(self) -> None:
        """Twilio's ``stop``, then close the socket."""
        if self._ws is not None and not self._closed.is_set():
            await self.send_raw(tw.build_stop(self._next_seq(), self.stream_sid,
                                              self.account_sid, self.call_sid))
            await self._ws.close()
            await self._until(self._closed.is_set, 5.0, "the close")

    @property
    def hung_up(self) -> bool:
        return self._closed.is_set()

    @property
    def pending_marks(self) -> int:
        return len(self._marks)

    def received(self) -> npt.NDArray[np.int16]:
        """Everything played so far (silence where nothing was queued), int16 at 8 kHz."""
        if not self._timeline:
            return np.zeros(0, np.int16)
        return np.frombuffer(decode("pcmu", b"".join(self._timeline)), "<i2").copy()

    # ── inside ──────────────────────────────────────────────────────────────
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no {what} within {timeout} s")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    def _pulse(self) -> None:
        self._changed.set()

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                event = tw.parse_outbound(message)
                if isinstance(event, tw.OutMedia):
                    self._queue += event.payload
                    self._queued += len(event.payload)
                elif isinstance(event, tw.OutMark):
                    self.marks_received.append(event.name)
                    if event.name == tw.ANSWERED_MARK:
                        self._answered.set()
                    self._marks.append((self._queued, event.name))
                    await self._echo_played()
                else:
                    self.clears += 1
                    self._consumed += len(self._queue)
                    self._queue.clear()
                    self._counting_stale, self.stale_frames_after_clear = True, 0
                    await self._echo_played()
                self._pulse()
        except ConnectionClosed:
            pass
        finally:
            self.close_code, self.close_reason = self._ws.close_code, self._ws.close_reason
            self._closed.set()
            self._pulse()

    async def _playout(self) -> None:
        loop = asyncio.get_running_loop()
        tick = 0
        while not self._closed.is_set():
            tick += 1
            delay = self._t0 + tick * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._queue:
                n = min(tw.FRAME_BYTES, len(self._queue))
                frame = bytes(self._queue[:n]) + SILENCE[n:]
                del self._queue[:n]
                self._consumed += n
                self.played_frames += 1
                self.quiet_ticks = 0
                if self._counting_stale:
                    self.stale_frames_after_clear += 1
                self._timeline.append(frame)
                await self._echo_played()
            else:
                self._counting_stale = False
                self.quiet_ticks += 1
                self._timeline.append(SILENCE)
            self._pulse()

    async def _echo_played(self) -> None:
        while self._marks and self._marks[0][0] <= self._consumed:
            _, name = self._marks.popleft()
            self.marks_echoed.append(name)
            await self.send_raw(tw.build_mark_echo(self._next_seq(), self.stream_sid, name))

