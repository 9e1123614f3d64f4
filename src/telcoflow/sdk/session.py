"""A claimed session (a call or a WA conversation): handlers, ready(), close."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from telcoflow.protocol import sm

from ._log import get_logger
from ._tasks import BACKGROUND, TaskSet, invoke
from .enums import CallState, ChannelType, CloseReason
from .errors import (
    BufferClosedError,
    WrongChannelError,
    WSSCallClosedError,
    WSSError,
    WSSMessageError,
)
from .messages import (
    BaseSendMessage,
    IncomingMessage,
    SendMessageResult,
    SendWAMessage,
    message_error_code,
)

if TYPE_CHECKING:
    from .call import Call
    from .http import HttpClient
    from .sm_connection import SessionManagerConnection

logger = get_logger("session")

F = TypeVar("F", bound=Callable[..., Any])

# Seconds after open_session before warning that ready() was never called.
READY_WATCHDOG_SECONDS = 30.0


class Session:
    """A claimed session. Register handlers first, then ``await session.ready()``."""

    def __init__(self, session_id: str, channel: ChannelType | str, remote_address: str = "",
                 local_address: str = "", opened_at: int = 0,
                 http_client: HttpClient | None = None,
                 sm_connection: SessionManagerConnection | None = None) -> None:
        self.id = session_id
        self.channel = channel
        self.remote_address = remote_address
        self.local_address = local_address
        self.opened_at = opened_at
        self._http = http_client
        self._sm = sm_connection
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        self._call: Call | None = None
        self._ready_sent = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False
        self._close_reason: CloseReason | None = None
        self._close_cause: str | None = None
        self._closed_event = asyncio.Event()
        self._inbox: deque[IncomingMessage] = deque()
        self._inbox_task: asyncio.Task[Any] | None = None
        self._tasks: TaskSet = BACKGROUND

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.channel} closed={self._closed}>"

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> CloseReason | None:
        return self._close_reason

    @property
    def close_cause(self) -> str | None:
        """Ours: why an outbound call never connected (``CALL_UNANSWERED``,
        ``CALL_REJECTED``, ``CALLEE_BUSY``), when the server said."""
        return self._close_cause

    # ── handler registration ────────────────────────────────────────────────

    def _register(self, key: str, func: F) -> F:
        if not self._closed:  # a closed session delivers nothing more: keep nothing
            self._handlers.setdefault(key, []).append(func)
        return func

    def on_incoming_call(self, func: F) -> F:
        """TELCO: called with the :class:`Call`, in a task of its own."""
        return self._register("incoming_call", func)

    def on_incoming_message(self, func: F) -> F:
        """WA: called with each :class:`IncomingMessage`, one at a time, in order."""
        return self._register("incoming_message", func)

    def on_closed(self, func: F) -> F:
        """Called with the :class:`CloseReason` when the session closes."""
        return self._register("closed", func)

    async def _fire(self, key: str, *args: Any) -> None:
        await _run_all(list(self._handlers.get(key, ())), key, args)

    # ── readiness ───────────────────────────────────────────────────────────

    async def ready(self) -> None:
        """Tell the server to start delivering events. Idempotent; no-op once closed."""
        self._cancel_watchdog()
        if self._ready_sent or self._closed:
            return
        if self._sm is None:
            raise RuntimeError("No SM-WS connection on this session")
        self._ready_sent = True
        logger.debug("Session %s: ready", self.id)
        self._sm.send(sm.build_session_ready(self.id))

    def _arm_ready_watchdog(self, delay: float | None = None) -> None:
        delay = READY_WATCHDOG_SECONDS if delay is None else delay
        self._cancel_watchdog()
        self._watchdog = asyncio.get_running_loop().call_later(delay, self._warn_not_ready, delay)

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _warn_not_ready(self, delay: float) -> None:
        self._watchdog = None
        if not self._ready_sent and not self._closed:
            logger.warning(
                "Session %s opened %.0fs ago but ready() was never called; no server events "
                "(calls, messages) are delivered until you `await session.ready()`.",
                self.id, delay)

    # ── deliveries from the manager ─────────────────────────────────────────

    def _deliver_call(self, call: Call) -> None:
        call._session = self
        call._tasks = self._tasks
        self._call = call
        # Taken now: a session.closed right behind the call.in must not take them away.
        handlers = list(self._handlers.get("incoming_call", ()))
        self._tasks.spawn(self._run_call(call, handlers), name=f"call-{call.id}")

    async def _run_call(self, call: Call, handlers: list[Callable[..., Any]]) -> None:
        for handler in handlers:
            try:
                result = handler(call)
                if inspect.isawaitable(result):
                    await result
            except (BufferClosedError, WSSCallClosedError) as exc:
                if call.state != CallState.TERMINATED:
                    logger.exception("Error in on_incoming_call handler")
                else:  # the caller hung up mid-handler: the normal end of a call
                    logger.info("Call %s handler stopped: the call has ended (%s)",
                                call.id, type(exc).__name__)
            except Exception:
                logger.exception("Error in on_incoming_call handler")

    def _deliver_message(self, message: IncomingMessage) -> None:
        self._inbox.append(message)
        if self._inbox_task is None or self._inbox_task.done():
            self._inbox_task = self._tasks.spawn(self._drain_inbox())

    async def _drain_inbox(self) -> None:
        while self._inbox:
            await self._fire("incoming_message", self._inbox.popleft())
        if self._closed:  # its last message handled (see _dispatch_closed)
            self._handlers.pop("incoming_message", None)

    def _dispatch_closed(self, reason: CloseReason, *, by_server: bool = False) -> None:
        if self._closed:
            return
        logger.debug("Session %s closed: %s", self.id, reason)
        self._cancel_watchdog()
        self._closed = True
        self._close_reason = reason
        self._closed_event.set()
        call = self._call
        if by_server and call is not None and call._voice is None:
            call._terminate()  # nothing will ever open this call's voice link now
        # Nothing new is delivered to a closed session. Its handlers often close over it
        # (an on_incoming_call that answers and then closes the session): dropping them
        # frees an ended session, and its call, by reference counting. Messages already
        # queued are still handled; _drain_inbox drops their handlers after the last one.
        closed = self._handlers.pop("closed", [])
        self._handlers.pop("incoming_call", None)
        if not self._inbox:
            self._handlers.pop("incoming_message", None)
        self._tasks.spawn(_run_all(closed, "closed", (reason,)))

    # ── API ─────────────────────────────────────────────────────────────────

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    async def close(self, *, drain_timeout: float = 5.0, confirm_timeout: float = 10.0) -> None:
        """Close the session and wait for the server's confirmation (else close locally).

        A TELCO session whose call is live leaves the call (``call.close``);
        otherwise the REST close endpoint is used. ``drain_timeout`` is accepted
        for compatibility and unused.
        """
        if self._closed:
            return
        call = self._call
        try:
            if self.channel == ChannelType.TELCO and call is not None and call._voice is not None:
                await call.close()
            elif self._http is not None:
                await self._http.close_session(self.id)
        except WSSError as exc:
            logger.warning("Session %s: close request failed: %s", self.id, exc)
        try:
            await asyncio.wait_for(self._closed_event.wait(), confirm_timeout)
        except TimeoutError:
            logger.warning("Session %s: no close confirmation from server; closing locally",
                           self.id)
            self._dispatch_closed(CloseReason.SDK_REQUEST)

    async def send_message(self, content: BaseSendMessage) -> SendMessageResult:
        """Send a WA message and wait for the server's answer."""
        if self.channel != ChannelType.WA:
            raise WrongChannelError("send_message() is only valid on WA sessions")
        if not isinstance(content, SendWAMessage):
            raise WSSMessageError(
                f"Type of content {type(content)} is not supported by current session")
        if self._sm is None:
            raise RuntimeError("No SM-WS connection on this session")
        msg_id = str(uuid.uuid4())
        logger.debug("Session %s: send_message client_msg_id=%s", self.id, msg_id)
        resp = await self._sm.request(lambda req_id: sm.build_wa_msg_out(
            req_id, self.id, msg_id, content.api_version, content.data))
        if resp.ok:
            return SendMessageResult(success=True, response_content=resp.content)
        return SendMessageResult(success=False, error_code=message_error_code(resp.error_code),
                                 error_content=resp.error_content)


async def _run_all(handlers: list[Callable[..., Any]], key: str, args: tuple[Any, ...]) -> None:
    for handler in handlers:
        await invoke(handler, args, logger, f"session {key}")
