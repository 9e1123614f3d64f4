"""The session-manager WebSocket: setup, request/response, pushes, reconnection."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import Awaitable, Callable, Mapping

from telcoflow.protocol import sm
from telcoflow.protocol.errors import ProtocolError

from ._log import get_logger, safe_url
from .backoff import ExponentialBackoff
from .config import CallAudioConfig
from .errors import WSSAuthRejected, WSSConnectionError
from .wsconn import HandshakeRejected, WsConnection, open_ws

logger = get_logger("session_manager_connection")

FrameSink = Callable[[sm.ServerFrame], None]


class SessionManagerConnection:
    """One logical SM-WS link that survives drops by reconnecting with back-off.

    Server pushes go to ``on_frame`` synchronously (it must not block);
    ``on_reconnected`` runs after every successful reconnect.
    """

    REQUEST_TIMEOUT = 30.0
    SETUP_TIMEOUT = 10.0
    PING_INTERVAL = 30.0
    PING_TIMEOUT = 10.0

    def __init__(self, url: str, headers: Mapping[str, str], call_audio: CallAudioConfig,
                 on_frame: FrameSink, ssl_context: ssl.SSLContext | None = None) -> None:
        self.url = url
        self._headers = dict(headers)
        self._audio = call_audio
        self._on_frame = on_frame
        self._ssl = ssl_context
        self._ws: WsConnection | None = None
        self._id: str | None = None
        self._connected = False
        self._closing = False
        self._setup_done: asyncio.Future[None] | None = None
        self._pending: dict[str, asyncio.Future[sm.Response]] = {}
        self._reconnect_task: asyncio.Task[None] | None = None
        self.backoff = ExponentialBackoff()
        self.on_reconnected: Callable[[], Awaitable[None]] | None = None
        self.connected_event = asyncio.Event()

    @property
    def id(self) -> str | None:
        """The server's id for the current link (changes on every reconnect)."""
        return self._id

    def is_connected(self) -> bool:
        return self._connected and not self._closing

    # ── connecting ──────────────────────────────────────────────────────────

    async def connect(self) -> None:
        if self._connected:
            return
        loop = asyncio.get_running_loop()
        self._setup_done = loop.create_future()
        try:
            self._ws = await open_ws(self.url, self._headers, self, ssl_context=self._ssl,
                                     ping_interval=self.PING_INTERVAL,
                                     ping_timeout=self.PING_TIMEOUT)
        except ssl.SSLError as exc:
            raise WSSAuthRejected(f"SSL/TLS error during connection: {exc.reason}") from exc
        except HandshakeRejected as exc:
            cls = WSSAuthRejected if exc.status in (401, 403) else WSSConnectionError
            raise cls(str(exc)) from exc
        except (OSError, TimeoutError) as exc:
            raise WSSConnectionError(
                f"Failed to connect to session manager endpoint {safe_url(self.url)}") from exc
        self._ws.send_text(sm.build_setup(self._audio.rate, self._audio.audio_mode.value))
        try:
            await asyncio.wait_for(self._setup_done, self.SETUP_TIMEOUT)
        except (TimeoutError, ConnectionError) as exc:
            self._ws.abort()
            raise WSSConnectionError("Timed out waiting for setup.done from server") from exc
        self._connected = True
        self.connected_event.set()
        self.backoff.reset()
        logger.info("Session manager connected: %s (smWsId=%s)", safe_url(self.url), self._id)

    async def _reconnect(self) -> None:
        while not self._closing:
            delay = self.backoff.next_delay()
            logger.warning("Session manager connection lost; reconnecting in %.2f s", delay)
            await asyncio.sleep(delay)
            try:
                await self.connect()
            except Exception as exc:  # any failure: try again later
                logger.warning("Reconnection attempt failed: %s", exc)
                continue
            logger.info("Reconnected to session manager")
            if self.on_reconnected is not None:
                try:
                    await self.on_reconnected()
                except Exception:
                    logger.exception("Error restoring sessions after reconnect")
            return

    # ── WsHandler ───────────────────────────────────────────────────────────

    def ws_text(self, data: bytes) -> None:
        try:
            frame = sm.parse_server_frame(data)
        except ProtocolError as exc:
            logger.error("Ignoring malformed SM-WS frame: %s", exc.message)
            return
        if isinstance(frame, sm.Response):
            future = self._pending.pop(frame.req_id, None)
            if future is not None and not future.done():
                future.set_result(frame)
            return
        if isinstance(frame, sm.SetupDone):
            self._id = frame.sm_ws_id
            if self._setup_done is not None and not self._setup_done.done():
                self._setup_done.set_result(None)
            return
        logger.debug("SM-WS frame received: %s", type(frame).__name__)
        self._on_frame(frame)

    def ws_binary(self, data: bytes) -> None:
        logger.debug("Ignoring a binary frame on the SM-WS (%d bytes)", len(data))

    def ws_closed(self, code: int | None, reason: str) -> None:
        was_connected = self._connected
        self._connected = False
        self.connected_event.clear()
        self._fail_pending("Session manager connection lost")
        if self._setup_done is not None and not self._setup_done.done():
            self._setup_done.set_exception(ConnectionError("closed before setup.done"))
        logger.info("Session manager connection closed (code=%s)", code)
        if was_connected and not self._closing:
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    # ── sending ─────────────────────────────────────────────────────────────

    def send(self, text: str) -> None:
        """Fire-and-forget frame; raises WSSConnectionError when not connected."""
        if not self.is_connected() or self._ws is None:
            raise WSSConnectionError("Session manager connection is not established")
        try:
            self._ws.send_text(text)
        except ConnectionError as exc:
            raise WSSConnectionError("Failed to send message to session manager server") from exc

    async def request(self, build: Callable[[str], str]) -> sm.Response:
        """Send ``build(req_id)`` and wait for the matching response."""
        req_id = str(uuid.uuid4())
        future: asyncio.Future[sm.Response] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        try:
            self.send(build(req_id))
            return await asyncio.wait_for(future, self.REQUEST_TIMEOUT)
        except TimeoutError:
            raise WSSConnectionError("Timed out waiting for response") from None
        finally:
            self._pending.pop(req_id, None)

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WSSConnectionError(why))

    # ── closing ─────────────────────────────────────────────────────────────

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        task = self._reconnect_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        self._connected = False
        self._fail_pending("Connection closed")
        logger.debug("Session manager connection closed by the application")
