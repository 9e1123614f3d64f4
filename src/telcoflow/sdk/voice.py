"""The voice WebSocket of one call: commands, caller audio in, agent audio out.

Everything runs in the connection's read callback: audio goes to
per-channel queues, ``buffer_request`` grants are answered at once from the
ring buffer, command responses resolve their futures. No task, lock or poll
per call; ``send_audio`` with credit outstanding writes to the socket itself.
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any

from telcoflow.protocol import voice as vp
from telcoflow.protocol.errors import ProtocolError

from ._log import get_logger, safe_url
from ._tasks import BACKGROUND
from .config import DEFAULT_BUFFER_SIZE
from .errors import (
    WSSAuthRejected,
    WSSCallCommandError,
    WSSCallCommandTimeoutError,
    WSSConnectionError,
    WSSSessionError,
)
from .ring import OutboundAudio
from .version import __version__
from .wsconn import HandshakeRejected, WsConnection, open_ws

logger = get_logger("voice_session")

# Extra seconds we wait past the deadline we gave the server (covers a hung server only).
SERVER_TIMEOUT_SLACK = 5.0
# Unread caller audio kept per channel (20 ms chunks): one minute, then the oldest goes.
MAX_QUEUED_CHUNKS = 3000
_CHANNEL0 = b"\x00"

EventCallback = Callable[[str, dict[str, Any]], Awaitable[None] | None]


class BufferSize(int):
    """An int that may also be awaited, so both documented call styles work.

    ``size = call.get_send_audio_buffer_size()`` and
    ``size = await call.get_send_audio_buffer_size()`` give the same number.
    """

    def __await__(self) -> Generator[Any, None, int]:
        return int(self)
        yield  # pragma: no cover - makes this a generator


class AudioChannel:
    """Caller audio of one channel, in arrival order, until ``closed`` and drained.

    Read through :class:`ChannelStream`; a reader of an empty channel waits
    on a future that the next push (or close) resolves.
    """

    __slots__ = ("_chunks", "_waiters", "_loop", "closed", "dropped")

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._waiters: list[asyncio.Future[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self.dropped = 0

    def push(self, chunk: bytes) -> None:
        chunks = self._chunks
        if len(chunks) >= MAX_QUEUED_CHUNKS:
            chunks.popleft()
            self.dropped += 1
            if self.dropped == 1:
                logger.warning("Caller audio is not being read; dropping the oldest chunks")
        chunks.append(chunk)
        if self._waiters:
            self._wake()

    def close(self, *, drop: bool = False) -> None:
        self.closed = True
        if drop:
            self._chunks.clear()
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def waiter(self) -> asyncio.Future[None]:
        """A future resolved by the next push or close (await it, then look again)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiters.append(waiter)
        return waiter


class ChannelStream:
    """``async for chunk in ...`` over one :class:`AudioChannel`.

    ``__anext__`` is the whole read path: a queued chunk is returned without
    suspending, an empty channel is waited on directly (no inner coroutine).
    """

    def __init__(self, channel: AudioChannel | None) -> None:
        self._channel = channel

    def __aiter__(self) -> ChannelStream:
        return self

    async def _open(self) -> AudioChannel:
        """The channel, for a stream created before it was known."""
        raise StopAsyncIteration

    async def __anext__(self) -> bytes:
        channel = self._channel
        if channel is None:
            channel = self._channel = await self._open()
        chunks = channel._chunks
        while not chunks:
            if channel.closed:
                raise StopAsyncIteration
            await channel.waiter()
        return chunks.popleft()


class _VoiceConnection:
    """The per-call voice WebSocket (public alias: ``VoiceSession``)."""

    def __init__(self, url: str, token: str, buffer_size: int = DEFAULT_BUFFER_SIZE,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.url = url
        self.token = token
        self._ssl = ssl_context
        self._out = OutboundAudio(buffer_size)
        self._channels: dict[int, AudioChannel] = {}
        # Resolved with the response, or None when the link closes first; never with an
        # exception: see _outcome.
        self._pending: dict[str, asyncio.Future[vp.CommandResponse | None]] = {}
        self._callbacks: list[EventCallback] = []
        self._close_hooks: list[Callable[[], None]] = []
        self._ws: WsConnection | None = None
        self._connected = False
        self._closed = False
        self._ended = False

    def __repr__(self) -> str:
        return f"<VoiceSession {safe_url(self.url)} connected={self._connected}>"

    # ── connection ──────────────────────────────────────────────────────────

    async def connect(self) -> None:
        if self._connected:
            return
        headers = {"Authorization": f"Bearer {self.token}", "x-sdk-version": __version__}
        try:
            self._ws = await open_ws(self.url, headers, self, ssl_context=self._ssl)
        except HandshakeRejected as exc:
            cls = WSSAuthRejected if exc.status in (401, 403) else WSSConnectionError
            raise cls(f"Failed to establish voice session: {exc}") from exc
        except (OSError, TimeoutError) as exc:
            raise WSSConnectionError("Failed to establish voice session") from exc
        self._connected = True
        self._closed = False
        logger.debug("Voice session established: %s", safe_url(self.url))

    def is_connected(self) -> bool:
        return self._connected and not self._closed

    def on_event(self, callback: EventCallback) -> None:
        """Register ``callback(event_name, extra_data)`` for ``call_event`` frames."""
        self._callbacks.append(callback)

    def _on_close(self, hook: Callable[[], None]) -> None:
        self._close_hooks.append(hook)

    async def close(self) -> None:
        """Close the link; pending commands fail, audio streams end. Idempotent."""
        if self._closed:
            return
        if self._ws is not None:
            await self._ws.close()
        self._shutdown()

    def _end_streams(self) -> None:
        """The call is over: audio streams stop now, unread audio is discarded.

        Without this a reader could still be handed a chunk after the call
        ended and fail on send_audio (BufferClosedError) for no fault of its own.
        """
        for channel in self._channels.values():
            channel.close(drop=True)
        self._ended = True

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connected = False
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_result(None)  # send_command raises WSSSessionError
        for channel in self._channels.values():
            channel.close()
        self._out.ring.close()  # drops what is queued and frees the buffer
        # Nothing is dispatched after this. The callbacks and hooks are bound methods of
        # the Call, which holds this connection, and the socket holds it as its handler:
        # letting go of them here frees an ended call by reference counting, at once,
        # instead of at the next full collection (and what is freed includes the
        # socket's receive buffer, even if the application keeps the Call).
        hooks, self._close_hooks, self._callbacks = self._close_hooks, [], []
        self._ws = None
        for hook in hooks:
            hook()

    # ── WsHandler: called from data_received ───────────────────────────────

    def ws_binary(self, data: bytes) -> None:
        if len(data) < 2:
            return
        channel = self._channels.get(data[0])
        if channel is None:
            channel = self._channel(data[0])
        channel.push(data[1:])

    def ws_text(self, data: bytes) -> None:
        try:
            frame = vp.parse_server_text(data)
        except ProtocolError as exc:
            logger.debug("Ignoring malformed voice frame: %s", exc.message)
            return
        if isinstance(frame, vp.BufferRequest):
            if frame.channel_id == 0:
                self._out.grant(frame.requested_bytes, frame.prefer_frame_bytes)
                self._pump()
        elif isinstance(frame, vp.CommandResponse):
            self._resolve(frame)
        elif isinstance(frame, vp.CallEventFrame):
            logger.info("Call event: %s", frame.event)
            self._dispatch_event(frame.event, frame.data)
        elif isinstance(frame, vp.PlayoutPosition):
            self._dispatch_event(vp.PLAYOUT_POSITION, {"position": frame})
        else:
            logger.debug("Ignoring voice frame of type %r", frame.type)

    def ws_closed(self, code: int | None, reason: str) -> None:
        logger.debug("Voice session closed by peer (code=%s)", code)
        self._shutdown()

    # ── commands ────────────────────────────────────────────────────────────

    async def send_command(self, *, command: str, response_timeout_seconds: float = 30,
                           data: dict[str, Any] | None = None) -> Any:
        """Send a command and return the server's result payload.

        Raises WSSSessionError (link closed), WSSCallCommandError (success=false)
        or WSSCallCommandTimeoutError.
        """
        if self._closed:
            raise WSSSessionError("Voice session is closed (call terminated)")
        if not self._connected or self._ws is None:
            raise WSSSessionError("Voice session is not established")
        command_id = str(uuid.uuid4())
        future: asyncio.Future[vp.CommandResponse | None] = (
            asyncio.get_running_loop().create_future())
        self._pending[command_id] = future
        timeout_ms = int(response_timeout_seconds * 1000)
        try:
            self._ws.send_text(vp.build_command(command_id, command, timeout_ms, data))
            logger.debug("Sent command %s (command_id=%s)", command, command_id)
            response = await asyncio.wait_for(future,
                                              response_timeout_seconds + SERVER_TIMEOUT_SLACK)
        except TimeoutError:
            raise WSSCallCommandTimeoutError("No response received from server") from None
        except ConnectionError as exc:
            raise WSSSessionError("Voice session closed") from exc
        finally:
            self._pending.pop(command_id, None)
        return _outcome(response)

    def _resolve(self, frame: vp.CommandResponse) -> None:
        future = self._pending.pop(frame.command_id, None)
        if future is not None and not future.done():
            future.set_result(frame)

    def _dispatch_event(self, event: str, data: dict[str, Any]) -> None:
        for callback in self._callbacks:
            try:
                result = callback(event, data)
                if inspect.isawaitable(result):
                    BACKGROUND.spawn(_await(result))
            except Exception:
                logger.exception("Error in voice event callback")

    # ── outgoing audio ──────────────────────────────────────────────────────

    def write_audio(self, audio_data: bytes | bytearray | memoryview) -> None:
        """Queue agent audio (all or nothing); BufferFullError / BufferClosedError.

        With credit outstanding the due frames go out right here, in one write.
        """
        out = self._out
        out.ring.write(audio_data)
        if out.owed:
            self._pump()

    async def send_audio(self, audio_data: bytes) -> None:
        self.write_audio(audio_data)

    def _pump(self) -> None:
        ws = self._ws
        if ws is None or not ws.is_open:
            return
        frames = self._out.due_frames(_CHANNEL0)
        if frames:
            ws.send_binary_frames(frames)

    def get_send_audio_buffer_size(self) -> BufferSize:
        return BufferSize(len(self._out.ring))

    def drop_send_audio(self) -> int:
        dropped = self._out.ring.clear()
        if dropped:
            logger.debug("Cleared %d bytes from outgoing buffer", dropped)
        return dropped

    async def clear_send_audio_buffer(self) -> int:
        return self.drop_send_audio()

    # ── incoming audio ──────────────────────────────────────────────────────

    def _channel(self, channel_id: int) -> AudioChannel:
        channel = self._channels.get(channel_id)
        if channel is None:
            channel = self._channels[channel_id] = AudioChannel()
            if self._closed or self._ended:
                channel.close()
        return channel

    def audio_stream(self, channel_id: int = 0) -> AsyncIterator[bytes]:
        """Caller audio of ``channel_id`` (0 = primary); ends when the link closes."""
        return ChannelStream(self._channel(channel_id))


def _outcome(response: vp.CommandResponse | None) -> Any:
    """A command's result payload, or its error raised (None: the link closed first).

    Raised here rather than set on the future: a future holding an exception
    sits in a reference cycle with the frames of that exception's traceback
    (asyncio.wait_for's holds the future), and those frames hold the Call that
    awaited the command, so an ended call would wait for the cyclic GC.
    """
    if response is None:
        raise WSSSessionError("Voice session closed")
    if response.success:
        return response.result
    if response.error_code == "TIMEOUT":
        raise WSSCallCommandTimeoutError(response.error_message or "Command timed out")
    raise WSSCallCommandError(response.error_message or "Command failed",
                              error_code=response.error_code,
                              error_message=response.error_message)


async def _await(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("Error in voice event callback")


VoiceSession = _VoiceConnection
