"""A voice call: lazy voice connection, commands, audio, events, cross-node handoff."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..protocol import voice as vp
from ..protocol.voice import PlayoutPosition as PlayoutPosition
from ._log import get_logger
from ._tasks import BACKGROUND, TaskSet, invoke
from .call_states import CALL_STATES, CallStep
from .config import CallAudioConfig
from .enums import CALL_ERROR, CALL_TERMINATED, CallEvent, CallState
from .errors import (
    BufferClosedError,
    WSSCallClosedError,
    WSSCallCommandError,
    WSSCallCommandTimeoutError,
    WSSCallError,
    WSSCallStateError,
    WSSSessionError,
)
from .voice import AudioChannel, BufferSize, ChannelStream, _VoiceConnection

if TYPE_CHECKING:
    from .session import Session

logger = get_logger("call")

F = TypeVar("F", bound=Callable[..., Any])
_DTMF = CallEvent.DTMF.value
_QUALITY = CallEvent.QUALITY.value
_ON_DTMF = "dtmf digit"  # on_dtmf handlers, apart from on_call_event(CallEvent.DTMF)'s
_ON_POSITION = "playout position"

COMMAND_TIMEOUT = 10


@dataclass
class CommandResult:
    """Outcome of a voice command; truthy on success (``if await call.answer(): ...``)."""

    success: bool
    error_code: str | None = None
    error_message: str | None = None
    payload: Any = None

    def __bool__(self) -> bool:
        return self.success


@dataclass(frozen=True)
class DtmfDigit:
    """Ours: a key a party pressed. ``channel`` 1 is the caller, 2 the callee (as in
    isolated audio); ``duration_ms`` is how long it was held."""

    digit: str
    duration_ms: int
    channel: int = 1


DTMF_DIGITS = frozenset("0123456789*#ABCD")


class Call:
    """One voice call: ``NEW → OPENING → LIVE → TERMINATED``.

    The voice connection opens on the first command or ``send_audio``; until
    then the call can be handed to another process with :meth:`to_json`.
    """

    def __init__(self, id: str, caller_number: str, callee_number: str, session_url: str,
                 session_token: str, audio_config: CallAudioConfig | None = None) -> None:
        self.id = id
        self.caller_number = caller_number
        self.callee_number = callee_number
        self._session_url = session_url
        self._session_token = session_token
        self._audio_config = audio_config if audio_config is not None else CallAudioConfig()
        self._state = CallState.NEW
        self._voice: _VoiceConnection | None = None
        self._open_lock = asyncio.Lock()
        self._settled = asyncio.Event()  # set once LIVE or TERMINATED: audio_stream waits on it
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        self._played = PlayoutPosition(0, 0, "")
        self._terminated_fired = False
        self._tasks: TaskSet = BACKGROUND
        # Weak: the session holds its call, and an ended call must not wait for the cyclic GC.
        self._session_ref: weakref.ref[Session] | None = None

    def __repr__(self) -> str:
        return f"<Call {self.id} {self._state.value} from {self.caller_number}>"

    @property
    def state(self) -> CallState:
        return self._state

    @property
    def voice_session(self) -> _VoiceConnection | None:
        return self._voice

    @property
    def audio_config(self) -> CallAudioConfig:
        return self._audio_config

    @property
    def _session(self) -> Session | None:
        """The session that delivered this call (the published SDK's attribute), if alive."""
        return self._session_ref() if self._session_ref is not None else None

    @_session.setter
    def _session(self, session: Session | None) -> None:
        self._session_ref = weakref.ref(session) if session is not None else None

    # ── handoff ─────────────────────────────────────────────────────────────

    def to_json(self) -> str:
        """Serialise a NEW call for another process; WSSCallStateError otherwise."""
        if self._state != CallState.NEW:
            raise WSSCallStateError(
                f"to_json() requires CallState.NEW; current state is {self._state}")
        return json.dumps({"channel": "TELCO", "id": self.id, "caller": self.caller_number,
                           "callee": self.callee_number, "session_url": self._session_url,
                           "session_token": self._session_token})

    @classmethod
    def from_json(cls, data: str | bytes, audio_config: CallAudioConfig | None = None) -> Call:
        """Rebuild a NEW call from :meth:`to_json` output (audio config is this node's own)."""
        d = json.loads(data)
        return cls(id=d["id"], caller_number=d["caller"], callee_number=d["callee"],
                   session_url=d["session_url"], session_token=d["session_token"],
                   audio_config=audio_config)

    # ── voice connection ────────────────────────────────────────────────────

    async def _ensure_voice_open(self) -> _VoiceConnection:
        if self._state == CallState.LIVE and self._voice is not None:
            return self._voice
        async with self._open_lock:
            if self._state == CallState.TERMINATED:
                raise WSSCallClosedError()
            if self._state == CallState.LIVE and self._voice is not None:
                return self._voice
            self._state = CALL_STATES.step(self._state, CallStep.OPEN)
            voice = _VoiceConnection(self._session_url, self._session_token,
                                     self._audio_config.buffer_size)
            try:
                await voice.connect()
            except Exception as exc:
                if self._state is not CallState.TERMINATED:  # a retry or a handoff stays possible
                    self._state = CALL_STATES.step(self._state, CallStep.OPEN_FAILED)
                raise WSSCallError(f"Failed to open voice session: {exc}") from exc
            if self._state is CallState.TERMINATED:  # ended while its link was opening
                await voice.close()
                raise WSSCallClosedError()
            voice.on_event(self._on_voice_event)
            voice._on_close(self._on_voice_closed)
            self._voice = voice
            self._state = CALL_STATES.step(self._state, CallStep.OPENED)
            self._settled.set()
            logger.debug("Call %s voice connection open (LIVE)", self.id)
            return voice

    def _on_voice_event(self, event: str, data: dict[str, Any]) -> None:
        if event == CALL_TERMINATED:
            self._terminate()
        elif event == CALL_ERROR:
            self._emit(CALL_ERROR, (data,))
        elif event == vp.PLAYOUT_POSITION:
            self._heard(data["position"])
        elif event == _QUALITY:
            self._emit(_QUALITY, (data,))
        elif event == _DTMF:
            self._emit(_DTMF, (data,))
            digit = DtmfDigit(str(data.get("digit", "")), int(data.get("duration_ms") or 0),
                              int(data.get("channel") or 1))
            self._emit(_ON_DTMF, (digit,))
        else:
            logger.debug("Unknown call event: %s", event)

    def _on_voice_closed(self) -> None:
        self._terminate()

    def _terminate(self) -> None:
        """Enter TERMINATED; on_terminated handlers run exactly once, whatever the cause."""
        self._state = CALL_STATES.step(self._state, CallStep.TERMINATE)
        self._settled.set()
        if self._voice is not None:
            self._voice._end_streams()
        if not self._terminated_fired:
            self._terminated_fired = True
            logger.info("Call %s terminated", self.id)
            self._emit(CALL_TERMINATED, ())
            # No event comes after this one. Handlers often close over the call (the
            # manager's on_terminated does, so do on_dtmf handlers that answer with
            # audio): dropping them frees an ended call by reference counting.
            self._handlers = {}

    def _emit(self, event: str, args: tuple[Any, ...]) -> None:
        handlers = list(self._handlers.get(event, ()))
        if handlers:
            try:
                self._tasks.spawn(self._run_handlers(event, handlers, args))
            except RuntimeError:  # no running loop (interpreter shutting down)
                pass

    async def _run_handlers(self, event: str, handlers: list[Callable[..., Any]],
                            args: tuple[Any, ...]) -> None:
        for handler in handlers:
            await invoke(handler, args, logger, f"call event {event}")

    # ── events ──────────────────────────────────────────────────────────────

    def on_call_event(self, event_name: CallEvent | str) -> Callable[[F], F]:
        """Decorator: ``@call.on_call_event(CallEvent.CALL_ERROR)`` gets the event's data dict."""
        key = event_name.value if isinstance(event_name, CallEvent) else event_name
        if key not in {e.value for e in CallEvent}:
            raise ValueError(f"Unknown call event: {event_name!r}")

        def register(func: F) -> F:
            return self._add_handler(key, func)

        return register

    def on_terminated(self, func: F) -> F:
        """Decorator: called with no arguments once the call has ended.

        Registered after the call already ended, it is called right away, so
        a handler set up just after ``answer()`` cannot miss a quick hang-up.
        """
        return self._add_handler(CALL_TERMINATED, func)

    def on_playout_position(self, func: F) -> F:
        """Ours. Decorator: called with a :class:`PlayoutPosition` (how much of the agent's
        audio the caller has heard) when a talkspurt ends and when the agent interrupts."""
        return self._add_handler(_ON_POSITION, func)

    @property
    def played_ms(self) -> int:
        """Ours. Milliseconds of the agent's audio the caller has heard since the answer,
        as last reported (after :meth:`clear_send_audio_buffer`: where playback stopped)."""
        return self._played.played_ms

    async def playout_position(self) -> PlayoutPosition:
        """Ours. Ask the gateway how much of the agent's audio the caller has heard now."""
        voice = await self._ensure_voice_open()
        try:
            result = await voice.send_command(command="playout.position",
                                              response_timeout_seconds=COMMAND_TIMEOUT)
        except WSSSessionError as exc:
            raise WSSCallClosedError() from exc
        self._heard_result(result, "request")
        return self._played

    def _heard(self, position: PlayoutPosition) -> None:
        self._played = position
        self._emit(_ON_POSITION, (position,))

    def _heard_result(self, result: Any, reason: str) -> None:
        if isinstance(result, dict) and isinstance(result.get("playedMs"), int):
            self._played = PlayoutPosition(int(result.get("playedBytes") or 0),
                                           int(result["playedMs"]), reason)

    def on_dtmf(self, func: F) -> F:
        """Ours. Decorator: called with a :class:`DtmfDigit` for each key a party presses
        (RFC 4733 digits on a SIP leg, ``dtmf`` frames on the simulated phone)."""
        return self._add_handler(_ON_DTMF, func)

    def _add_handler(self, key: str, func: F) -> F:
        if not self._terminated_fired:
            self._handlers.setdefault(key, []).append(func)
        elif key == CALL_TERMINATED:  # the call has ended: run it now, keep nothing
            self._tasks.spawn(self._run_handlers(key, [func], ()))
        return func

    # ── commands ────────────────────────────────────────────────────────────

    async def _run_command(self, command: str, deadline: float,
                           data: dict[str, Any] | None = None) -> CommandResult:
        voice = await self._ensure_voice_open()
        try:
            payload = await voice.send_command(command=command, response_timeout_seconds=deadline,
                                               data=data)
        except WSSCallCommandError as exc:
            return CommandResult(False, exc.error_code, exc.error_message)
        except WSSCallCommandTimeoutError as exc:
            return CommandResult(False, "TIMEOUT", str(exc))
        except WSSSessionError as exc:
            raise WSSCallClosedError() from exc
        return CommandResult(True, payload=payload)

    async def answer(self) -> CommandResult:
        return await self._run_command("call.answer", COMMAND_TIMEOUT)

    async def connect(self, *, ring_time_seconds: int = 60) -> CommandResult:
        """Ring the callee and bridge a 3-way call; falsy ``CALL_UNANSWERED`` if nobody answers."""
        if ring_time_seconds <= 0 or ring_time_seconds > 120:
            raise ValueError("ring_time_seconds must be between 1 and 120")
        return await self._run_command("call.connect", ring_time_seconds,
                                       {"ringTimeSeconds": ring_time_seconds})

    async def send_dtmf(self, digits: str) -> CommandResult:
        """Ours. Play DTMF ``digits`` (1..32 of 0-9 * # A-D) to every party that hears the
        agent now; truthy once the gateway has queued them."""
        if not 1 <= len(digits) <= 32 or not set(digits) <= DTMF_DIGITS:
            raise ValueError("digits must be 1..32 of 0-9 * # A-D")
        return await self._run_command("call.dtmf", COMMAND_TIMEOUT, {"digits": digits})

    async def whisper(self) -> CommandResult:
        return await self._run_command("agent.whisper", COMMAND_TIMEOUT)

    async def barge(self) -> CommandResult:
        return await self._run_command("agent.barge", COMMAND_TIMEOUT)

    async def spy(self) -> CommandResult:
        return await self._run_command("agent.spy", COMMAND_TIMEOUT)

    async def disconnect(self) -> CommandResult:
        """End the call for every party; a no-op success once terminated."""
        if self._state == CallState.TERMINATED:
            return CommandResult(True)
        result = await self._run_command("call.disconnect", COMMAND_TIMEOUT)
        if result:
            await self._finish()
        return result

    async def close(self) -> CommandResult:
        """Leave the call (ends it unless connected); a no-op success if never opened or ended."""
        if self._state == CallState.TERMINATED or self._voice is None:
            self._terminate()
            return CommandResult(True)
        result = await self._run_command("call.close", COMMAND_TIMEOUT)
        if result:
            await self._finish()
        return result

    async def _finish(self) -> None:
        self._terminate()
        if self._voice is not None:
            await self._voice.close()

    async def _force_close(self) -> None:
        self._terminate()
        if self._voice is not None:
            await self._voice.close()

    # ── audio ───────────────────────────────────────────────────────────────

    async def send_audio(self, audio_data: bytes) -> None:
        """Queue PCM16 audio; sent as the server asks for it.

        Raises BufferFullError when the ring buffer cannot take it all and
        BufferClosedError once the call has ended.
        """
        voice = self._voice
        if voice is None or self._state is not CallState.LIVE:
            if self._state is CallState.TERMINATED:
                raise BufferClosedError("Call has ended; audio can no longer be sent")
            try:
                voice = await self._ensure_voice_open()
            except WSSCallClosedError:
                raise BufferClosedError("Call has ended; audio can no longer be sent") from None
        voice.write_audio(audio_data)

    def get_send_audio_buffer_size(self) -> BufferSize:
        """Bytes queued for sending; usable with or without ``await``."""
        return self._voice.get_send_audio_buffer_size() if self._voice else BufferSize(0)

    async def clear_send_audio_buffer(self) -> int:
        """Drop queued agent audio, tell the server to drop its unplayed audio (agent.interrupt).

        Returns the number of bytes dropped here.
        """
        if self._state == CallState.TERMINATED:
            raise WSSCallClosedError()
        voice = await self._ensure_voice_open()
        dropped = voice.drop_send_audio()
        try:
            result = await voice.send_command(command="agent.interrupt",
                                              response_timeout_seconds=COMMAND_TIMEOUT)
        except WSSSessionError as exc:
            raise WSSCallClosedError() from exc
        self._heard_result(result, "interrupt")  # ours: where the caller stopped hearing
        return dropped

    def audio_stream(self, channel_id: int = 0) -> AsyncIterator[bytes]:
        """Caller audio as ``bytes`` chunks; waits for the voice connection if not open yet."""
        return _CallAudioStream(self, channel_id)


class _CallAudioStream(ChannelStream):
    """A channel stream that first waits for the call's voice link (if not open yet)."""

    def __init__(self, call: Call, channel_id: int) -> None:
        super().__init__(None)
        self._call = call
        self._channel_id = channel_id

    async def _open(self) -> AudioChannel:
        call = self._call
        await call._settled.wait()
        if call._voice is None:
            raise StopAsyncIteration
        return call._voice._channel(self._channel_id)
