"""A built-in AudioCodes VoiceAI Connect (VAIC) emulator: a caller through the Bot API.

Used by the tests and ``telcoflow call --via audiocodes``::

    async with VaicCaller(gw.ws_url, token, formats=("raw/lpcm16_24", "raw/mulaw")) as c:
        await c.dial("my-bot", caller="+15550001")   # session.initiate
        await c.wait_answered(timeout=10)             # session.accepted
        await c.play(samples)                         # int16 at c.rate, real time
        heard = c.received()                          # what VAIC has played so far
        await c.hangup()                              # activities hangup + session.end

VAIC's playout, as modelled here: the chunks of a play stream are buffered
and played 20 ms per 20 ms of this client's clock, starting when the first
chunk arrives (and again after the buffer ran dry). ``playStream.stop`` ends
the stream: what of it was not played yet is *dropped* (counted in
``dropped_ms``). That is how barge-in works in this model: the gateway stops
the stream when the agent interrupts. :meth:`received` is the played audio
of every stream, back to back (no silence for the gaps between streams).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ..audio.codec import decode, encode
from ..protocol import audiocodes as ac
from ..sdk._log import WS_LOGGER

logger = logging.getLogger(__name__)


class VaicError(Exception):
    """The session was refused, or ended before the expected point."""


@dataclass
class VaicEvents:
    accepted_at: float | None = None
    refused: str | None = None                   # session.error's reason
    play_starts: list[tuple[str, float]] = field(default_factory=list)  # (streamId, perf)
    play_stops: list[tuple[str, float]] = field(default_factory=list)
    chunks: int = 0
    activities: list[dict[str, Any]] = field(default_factory=list)  # the bot's
    user_stream_acks: list[bool] = field(default_factory=list)
    validated: bool = False
    closed: tuple[int | None, str] | None = None  # the gateway's close code and reason


class VaicCaller:
    def __init__(self, ws_base_url: str, token: str,
                 formats: tuple[str, ...] = ("raw/lpcm16_24", "raw/lpcm16", "raw/mulaw")) -> None:
        self.url = ws_base_url.rstrip("/") + ac.AUDIOCODES_PATH
        self._token = token
        self.formats = formats
        self.conversation_id = str(uuid.uuid4())
        self.format: ac.MediaFormat | None = None
        self.events = VaicEvents()
        self.end_reason: str | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._answered = asyncio.Event()
        self._ended = asyncio.Event()     # hung up by the bot, refused, or the socket closed
        self._resumed = asyncio.Event()
        self._changed = asyncio.Event()   # any message arrived
        self._we_ended = False
        self._dropping = False
        # the playout model
        self._stream: str | None = None
        self._buf = bytearray()           # PCM16 of the open stream not yet played
        self._clock = 0.0                 # loop time up to which the buffer has been played
        self._played: list[bytes] = []
        self._played_bytes = 0
        self.dropped_ms = 0.0

    async def __aenter__(self) -> VaicCaller:
        await self._connect()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                        ) -> None:
        self._we_ended = True
        await self._close()

    async def _connect(self) -> None:
        self._ws = await connect(self.url,
                                 additional_headers={"Authorization": f"Bearer {self._token}"},
                                 compression=None, max_size=1 << 20, logger=WS_LOGGER)
        self._reader = asyncio.create_task(self._read(self._ws))

    async def _close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _send(self, text: str) -> None:
        assert self._ws is not None, "use 'async with VaicCaller(...)'"
        await self._ws.send(text)

    # ── signalling ──────────────────────────────────────────────────────────
    async def dial(self, to_bot_or_number: str, caller: str = "anonymous",
                   start_params: dict[str, Any] | None = None) -> str:
        """``session.initiate`` with ``botName`` and our formats (then ``activities start``
        when ``start_params`` is given); returns the conversation id."""
        cid = self.conversation_id
        await self._send(ac.vaic_session_initiate(cid, to_bot_or_number, caller, self.formats))
        if start_params is not None:
            await self._send(ac.vaic_activity(cid, "start", parameters=start_params))
        return cid

    async def wait_answered(self, timeout: float = 10.0) -> None:
        await self._wait_either(self._answered, timeout, "session.accepted")

    async def wait_hangup(self, timeout: float = 10.0) -> str:
        await asyncio.wait_for(self._ended.wait(), timeout)
        return self.end_reason or ""

    @property
    def rate(self) -> int:
        if self.format is None:
            raise VaicError("no session.accepted yet: the format is not agreed")
        return self.format.rate

    @property
    def hung_up(self) -> bool:
        return self._ended.is_set()

    async def send_dtmf(self, digits: str) -> None:
        """One ``dtmf`` activity per digit, in order."""
        for digit in digits:
            await self._send(ac.vaic_activity(self.conversation_id, "dtmf", digit))

    async def hangup(self) -> None:
        """The caller hangs up: ``activities hangup``, then ``session.end`` (only the
        latter when the bot hung up first)."""
        self._we_ended = True
        if self._ws is not None:
            try:
                if not self._ended.is_set():  # (after the bot's hang-up: only session.end)
                    await self._send(ac.vaic_activity(self.conversation_id, "hangup",
                                                      parameters={"hangupReason": "caller"}))
                await self._send(ac.vaic_session_end(self.conversation_id))
            except ConnectionClosed:
                pass
        await self._close()
        self._ended.set()

    async def send_session_end(self, reason_code: str = "client-disconnected") -> None:
        await self._send(ac.vaic_session_end(self.conversation_id, reason_code))

    async def drop(self) -> None:
        """The socket drops (no session.end): the gateway keeps the call for a resume."""
        self._dropping = True
        await self._close()
        self._stop_stream()
        self._dropping = False

    async def resume(self, timeout: float = 10.0) -> None:
        """A new socket and ``session.resume``; waits for ``session.accepted``."""
        self._resumed.clear()
        if self._ws is not None and self._reader is not None and not self._reader.done():
            await self.drop()
        await self._connect()
        await self._send(ac.vaic_session_resume(self.conversation_id))
        await self._wait_either(self._resumed, timeout, "session.accepted (resume)")

    async def send_raw(self, text: str) -> None:
        """Anything, as it is (the tests' bad input)."""
        await self._send(text)

    async def validate(self, timeout: float = 5.0) -> bool:
        await self._send(ac.vaic_connection_validate())
        await self.wait_for(lambda: self.events.validated, timeout)
        return True

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Until ``predicate()`` holds, re-checked as each message arrives."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def _wait_either(self, event: asyncio.Event, timeout: float, what: str) -> None:
        waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(self._ended.wait())}
        _, pending = await asyncio.wait(waiters, timeout=timeout,
                                        return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if not event.is_set():
            if self._ended.is_set():
                raise VaicError(f"session ended before {what}: {self.end_reason}")
            raise VaicError(f"no {what} within {timeout} s")

    # ── media ────────────────────────────────────────────────────────────────
    async def play(self, samples: npt.NDArray[np.int16]) -> int:
        """``userStream.start``, 20 ms chunks paced on our own clock, ``userStream.stop``;
        returns the chunks sent (fewer if the call ended)."""
        fmt = self.format
        if fmt is None:
            raise VaicError("no session.accepted yet")
        cid, n = self.conversation_id, fmt.rate // 50
        pcm = np.asarray(samples, dtype=np.int16)
        loop = asyncio.get_running_loop()
        sent = 0
        try:
            await self._send(ac.vaic_user_stream_start(cid))
            start = loop.time()
            for sent, i in enumerate(range(0, len(pcm), n)):
                delay = start + sent * 0.02 - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._ended.is_set():
                    return sent
                frame = pcm[i:i + n].astype("<i2").tobytes()
                await self._send(ac.vaic_user_stream_chunk(cid, encode(fmt.codec, frame)))
            sent = -(-len(pcm) // n)
            await self._send(ac.vaic_user_stream_stop(cid))
        except ConnectionClosed:
            pass
        return sent

    def received(self) -> npt.NDArray[np.int16]:
        """What VAIC has played so far (every stream's played part, back to back)."""
        self._advance(asyncio.get_running_loop().time())
        return np.frombuffer(b"".join(self._played), dtype="<i2").astype(np.int16)

    async def wait_received(self, samples: int, timeout: float = 10.0) -> npt.NDArray[np.int16]:
        """Until ``samples`` have been played (or the timeout: the caller's check then
        shows what is missing)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._advance(loop.time())
            have = self._played_bytes // 2
            left = deadline - loop.time()
            if have >= samples or left <= 0:
                return self.received()
            buffered = have + len(self._buf) // 2
            if buffered >= samples and self.format is not None:
                # the audio is here: VAIC plays it at its own pace
                await asyncio.sleep(min(left, (samples - have) / self.format.rate + 0.001))
                continue
            self._changed.clear()
            try:
                async with asyncio.timeout(left):
                    await self._changed.wait()
            except TimeoutError:
                pass

    def _advance(self, now: float) -> None:
        if not self._buf or self.format is None:
            self._clock = now
            return
        can = int((now - self._clock) * self.format.rate) * 2
        take = min(len(self._buf), max(0, can))
        if take:
            self._played.append(bytes(self._buf[:take]))
            self._played_bytes += take
            del self._buf[:take]
        if self._buf:
            self._clock += take / 2 / self.format.rate
        else:
            self._clock = now  # ran dry: the next chunk plays when it arrives

    def _stop_stream(self) -> None:
        if self.format is not None:
            self._advance(asyncio.get_running_loop().time())
            self.dropped_ms += len(self._buf) / 2 / self.format.rate * 1000
        self._buf.clear()
        self._stream = None

    # ── reader ───────────────────────────────────────────────────────────────
    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if isinstance(message, str):
                    self._on_text(message)
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            if ws is self._ws and not self._dropping:
                self.events.closed = (ws.close_code, ws.close_reason or "")
                if self.end_reason is None and not self._we_ended:
                    self.end_reason = f"closed: {ws.close_code} {ws.close_reason or ''}".strip()
                self._ended.set()
            self._changed.set()

    def _on_text(self, text: str) -> None:
        msg = ac.parse_bot_text(text)
        now = time.perf_counter()
        if isinstance(msg, ac.PlayChunk):
            if msg.stream_id == self._stream and self.format is not None:
                self._advance(asyncio.get_running_loop().time())
                self._buf += decode(self.format.codec, msg.audio)
                self.events.chunks += 1
        elif isinstance(msg, ac.PlayStart):
            if self._stream is not None:
                logger.warning("playStream.start %s while %s is open", msg.stream_id,
                               self._stream)
                self._stop_stream()
            self._advance(asyncio.get_running_loop().time())
            self._stream = msg.stream_id
            self.events.play_starts.append((msg.stream_id, now))
        elif isinstance(msg, ac.PlayStop):
            self.events.play_stops.append((msg.stream_id, now))
            if msg.stream_id == self._stream:
                self._stop_stream()
        elif isinstance(msg, ac.Accepted):
            if msg.media_format:
                self.format = ac.FORMATS.get(msg.media_format)
                self.events.accepted_at = now
                self._answered.set()
            self._resumed.set()
        elif isinstance(msg, ac.Refused):
            self.events.refused = self.end_reason = msg.reason
            self._ended.set()
        elif isinstance(msg, ac.BotActivities):
            self.events.activities.extend(msg.activities)
            for activity in msg.activities:
                if activity.get("name") == "hangup":
                    params = activity.get("activityParams") or {}
                    self.end_reason = str(params.get("hangupReason") or "hangup")
                    self._ended.set()
        elif isinstance(msg, ac.UserStreamAck):
            self.events.user_stream_acks.append(msg.started)
        elif isinstance(msg, ac.Validated):
            self.events.validated = msg.success
