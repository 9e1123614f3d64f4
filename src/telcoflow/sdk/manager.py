"""SessionManager: the SDK's entry point (SM-WS link, REST client, session registry)."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from telcoflow.protocol import sm

from ._log import get_logger, safe_url
from ._tasks import TaskSet, invoke
from .call import Call
from .call_flow import CallFlowConfig
from .config import SessionManagerConfig
from .enums import ChannelType, CloseReason, activity_of, channel_of
from .errors import (
    WSSConnectionError,
    WSSSessionAlreadyExists,
    WSSSessionBusy,
    WSSSessionClosed,
    raise_for_response,
)
from .http import HttpClient
from .messages import IncomingMessage, SessionInfo
from .session import Session
from .sm_connection import SessionManagerConnection
from .version import __version__

logger = get_logger("session_manager")

F = TypeVar("F", bound=Callable[..., Any])

# Notifications kept for a handler that is not registered yet.
MAX_BACKLOG = 1000


@dataclass
class SessionNotification:
    """A ``session.notify``: a session you may claim with ``open_session(session_id)``."""

    session_id: str
    remote_address: str
    local_address: str
    channel: str
    activity: str = ""
    created_at: int = 0


def default_base_url() -> str:
    return os.environ.get("TELCOFLOW_BASE_URL") or SessionManager.DEV_DEFAULT_URL


def _ssl_context(config: SessionManagerConfig) -> ssl.SSLContext | None:
    if not (config.cert_path and config.key_path):
        return None
    # Server verification uses the system trust store (SSL_CERT_FILE / SSL_CERT_DIR honoured).
    context = ssl.create_default_context()
    context.load_cert_chain(config.cert_path, config.key_path)
    return context


class SessionManager:
    """Connects on ``async with``; hands out sessions; reconnects by itself.

    Usage: register ``@sm.on_session_notification``, call ``open_session``
    in it, register the session's handlers, ``await session.ready()``.
    """

    DEV_DEFAULT_URL = "ws://localhost:8080"

    def __init__(self, config: SessionManagerConfig) -> None:
        self.config = config
        self._base_url = (config.base_url or default_base_url()).rstrip("/")
        http_base = self._base_url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
        headers = {"x-sdk-version": __version__}
        if config.api_key and config.connector_uuid:
            headers["x-api-key"] = config.api_key
            headers["x-connector-uuid"] = config.connector_uuid
        tls = _ssl_context(config)
        self._http_client = HttpClient(http_base, headers, tls)
        self._sm_connection = SessionManagerConnection(
            f"{self._base_url}/v1/agent/session-manager", headers, config.call_audio,
            self._on_frame, tls)
        self._sm_connection.on_reconnected = self._on_reconnected
        self._registry: dict[str, Session] = {}
        self._calls: set[Call] = set()
        self._notification_handlers: list[Callable[..., Any]] = []
        self._backlog: list[SessionNotification] = []
        self._tasks = TaskSet()
        self._connected = False
        self._closed = False
        self._stopped = asyncio.Event()
        logger.debug("SessionManager init: base_url=%s sample_rate=%s audio_mode=%s",
                     safe_url(self._base_url), config.call_audio.sample_rate,
                     config.call_audio.audio_mode)

    @property
    def id(self) -> str | None:
        """The server's id of the current SM-WS link; None before the first connect."""
        return self._sm_connection.id

    # ── handlers ────────────────────────────────────────────────────────────

    def on_session_notification(self, handler: F) -> F:
        """Decorator: each notification runs the handler in a task of its own.

        Notifications that arrived before any handler was registered (the
        server may send them right after connecting) are delivered now.
        """
        self._notification_handlers.append(handler)
        backlog, self._backlog = self._backlog, []
        for note in backlog:
            self._spawn_notification(note)
        return handler

    def _on_frame(self, frame: sm.ServerFrame) -> None:
        if isinstance(frame, sm.SessionNotify):
            self._notify(frame)
        elif isinstance(frame, sm.CallIn):
            self._call_in(frame)
        elif isinstance(frame, sm.SessionClosed):
            self._session_closed(frame)
        elif isinstance(frame, sm.WaMsgIn):
            session = self._registry.get(frame.session_id)
            if session is None:
                logger.debug("wa.msg.in for unknown session %s dropped", frame.session_id)
                return
            session._deliver_message(IncomingMessage(frame.sender, frame.content))
        elif isinstance(frame, sm.Unknown):
            logger.debug("Ignoring SM-WS frame of unknown type %r", frame.type)

    def _notify(self, frame: sm.SessionNotify) -> None:
        logger.info("Session notification: %s (%s, %s)", frame.session_id, frame.channel,
                    frame.activity)
        note = SessionNotification(frame.session_id, frame.remote_address, frame.local_address,
                                   channel_of(frame.channel), activity_of(frame.activity),
                                   frame.created_at)
        if not self._notification_handlers:
            if len(self._backlog) < MAX_BACKLOG:
                self._backlog.append(note)
            return
        self._spawn_notification(note)

    def _spawn_notification(self, note: SessionNotification) -> None:
        for handler in self._notification_handlers:
            self._tasks.spawn(invoke(handler, (note,), logger, "on_session_notification"),
                              name=f"notify-{note.session_id}")

    def _call_in(self, frame: sm.CallIn) -> None:
        session = self._registry.get(frame.session_id)
        if session is None:
            logger.debug("call.in for unknown session %s dropped", frame.session_id)
            return
        logger.info("Incoming call %s on session %s", frame.call_id, frame.session_id)
        call = Call(frame.call_id, frame.caller, frame.callee, frame.url, frame.token,
                    self.config.call_audio)
        self._calls.add(call)
        call.on_terminated(lambda: self._calls.discard(call))
        session._deliver_call(call)

    def _session_closed(self, frame: sm.SessionClosed) -> None:
        session = self._registry.pop(frame.session_id, None)
        if session is None:
            return
        try:
            reason = CloseReason(frame.reason)
        except ValueError:
            reason = CloseReason.FORCE_CLOSE
        session._close_cause = frame.cause
        session._dispatch_closed(reason, by_server=True)

    async def _on_reconnected(self) -> None:
        """Restore after a reconnect: TELCO sessions are gone, WA sessions are re-claimed.

        Calls that are still alive come back as RESUME notifications.
        """
        for sid, session in list(self._registry.items()):
            if session.channel == ChannelType.TELCO:
                del self._registry[sid]
                session._dispatch_closed(CloseReason.FORCE_CLOSE)
        for sid, session in list(self._registry.items()):
            try:
                resp = await self._sm_connection.request(
                    partial(sm.build_session_open, session_id=sid))
                raise_for_response(resp.ok, resp.error_code, resp.error_content)
                self._sm_connection.send(sm.build_session_ready(sid))
                logger.debug("Reconnect: re-opened session %s", sid)
            except (WSSSessionBusy, WSSSessionClosed) as exc:
                logger.info("Reconnect: session %s lost (%s)", sid, exc)
                self._registry.pop(sid, None)
                session._dispatch_closed(CloseReason.FORCE_CLOSE)
            except Exception:
                logger.exception("Reconnect: could not re-open session %s", sid)

    # ── sessions ────────────────────────────────────────────────────────────

    def _require_connected(self) -> None:
        if not self._connected or self._closed or not self._sm_connection.is_connected():
            raise WSSConnectionError("Session manager is not connected")

    async def open_session(self, session_id: str) -> Session:
        """Claim a session (idempotent: an already-claimed id returns the same Session)."""
        existing = self._registry.get(session_id)
        if existing is not None:
            return existing
        self._require_connected()
        resp = await self._sm_connection.request(
            partial(sm.build_session_open, session_id=session_id))
        raise_for_response(resp.ok, resp.error_code, resp.error_content)
        existing = self._registry.get(session_id)
        if existing is not None:  # a concurrent open_session won the race
            return existing
        content = resp.content if isinstance(resp.content, dict) else {}
        data = content.get("session") if isinstance(content.get("session"), dict) else {}
        assert isinstance(data, dict)
        session = Session(str(data.get("id") or session_id),
                          channel_of(str(data.get("channel", ""))),
                          str(data.get("remoteAddress", "")), str(data.get("localAddress", "")),
                          int(data.get("openedAt") or 0), self._http_client, self._sm_connection)
        session._tasks = self._tasks
        self._registry[session_id] = session
        session._arm_ready_watchdog()
        logger.debug("open_session: %s channel=%s", session_id, session.channel)
        return session

    async def create_session(self, channel: ChannelType | str, remote_address: str) -> Session:
        """Start an SDK-initiated session and claim it."""
        self._require_connected()
        value = channel.value if isinstance(channel, ChannelType) else str(channel)
        resp = await self._sm_connection.request(
            lambda r: sm.build_session_create(r, value, remote_address))
        raise_for_response(resp.ok, resp.error_code, resp.error_content)
        content = resp.content if isinstance(resp.content, dict) else {}
        session_id = str(content.get("sessionId", ""))
        if not content.get("created", True):
            raise WSSSessionAlreadyExists(session_id)
        return await self.open_session(session_id)

    async def list_sessions(self, channel: ChannelType | str | None = None,
                            remote_address: str | None = None) -> list[SessionInfo]:
        """OPEN sessions of this connector (REST)."""
        value = channel.value if isinstance(channel, ChannelType) else channel
        return await self._http_client.list_sessions(channel=value, remote_address=remote_address)

    async def setup_call_flow(self, config: CallFlowConfig) -> None:
        """Push a call flow; send-once (call again after a reconnect if needed)."""
        self._require_connected()
        resp = await self._sm_connection.request(
            lambda r: sm.build_call_flow_setup(r, config.to_frame_data()))
        raise_for_response(resp.ok, resp.error_code, resp.error_content)

    # ── lifecycle ───────────────────────────────────────────────────────────

    async def _connect(self) -> None:
        if self._connected:
            return
        await self._sm_connection.connect()
        self._connected = True
        self._closed = False
        logger.info("SessionManager connected. Id: %s", self.id)

    async def _disconnect(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopped.set()
        await self._sm_connection.close()
        await self._tasks.cancel_all()
        for call in list(self._calls):
            await call._force_close()
        self._calls.clear()
        self._connected = False
        logger.info("SessionManager disconnected")

    async def __aenter__(self) -> SessionManager:
        await self._connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc_val: BaseException | None, exc_tb: TracebackType | None) -> bool:
        await self._disconnect()
        return False

    async def run_forever(self) -> None:
        """Wait until Ctrl+C (SIGINT) or until the manager is closed."""
        loop = asyncio.get_running_loop()
        installed = False
        try:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signal support
        try:
            await self._stopped.wait()
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)

    def _on_sigint(self) -> None:
        logger.info("SIGINT received; disconnecting")
        self._tasks.spawn(self._disconnect())
