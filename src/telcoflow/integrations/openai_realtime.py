"""A bridge from one SDK :class:`~telcoflow.Call` to the OpenAI Realtime API (GA shape).

::

    @session.on_incoming_call
    async def on_call(call: Call) -> None:
        await call.answer()
        await OpenAIRealtimeBridge(call, instructions="Be brief.",
                                   tools={"transfer_to_human", "hang_up"}).run()

What :meth:`OpenAIRealtimeBridge.run` does, until the call or the model ends:

- one ``session.update`` (GA: ``session.type`` ``realtime``, audio only,
  ``audio/pcm`` at 24 kHz both ways, or ``audio/pcmu`` when the call is at
  8 kHz (``g711``), server VAD, the allowed tools);
- the caller's audio (PCM16 at the call's rate) resampled to 24 kHz (or
  μ-law encoded), as ``input_audio_buffer.append``; the model's audio deltas
  resampled to the call's rate (or μ-law decoded) and handed to
  ``call.send_audio``;
- barge-in: on ``input_audio_buffer.speech_started`` while the caller may
  still be hearing the model, ``call.clear_send_audio_buffer()``; then
  ``call.played_ms`` (where the caller stopped hearing, to the frame) less the
  played position at which that item's audio began is what the caller heard
  of it: ``conversation.item.truncate`` with that ``audio_end_ms``;
- tools (only those allowed): ``transfer_to_human`` (``call.connect``),
  ``hang_up`` (``call.disconnect``), ``send_dtmf`` (``call.send_dtmf``); the
  result goes back as a ``function_call_output`` item, then ``response.create``;
- transcripts to ``on_transcript(role, text)``;
- an ``error`` event is logged (API keys redacted) and the bridge goes on,
  unless it is fatal (bad key, beta shape, expired session): then, as when
  the model's socket drops or the model stays silent ``model_timeout_s`` after
  the caller finished speaking (:mod:`.bridging`), the call is ended with
  ``call.disconnect()``;
- an audio delta that is not base64 is dropped and logged once per call.

Figures for reports are in :attr:`OpenAIRealtimeBridge.stats`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..audio.codec import decode, encode
from ..audio.polyphase import PolyphaseResampler
from ..sdk.call import Call, CommandResult
from ..sdk.enums import CallState
from ..sdk.errors import BufferClosedError, BufferFullError, WSSCallClosedError
from .bridging import ModelStalled, ModelWatchdog
from .modelaudio import ModelAudio

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.resources.realtime.realtime import AsyncRealtimeConnection

__all__ = ["TOOLS", "BridgeStats", "OpenAIRealtimeBridge", "OpenAIRealtimeConfigError"]

T = TypeVar("T")
logger = logging.getLogger("telcoflow.integrations.openai_realtime")

MODEL_RATE = 24000
#: ``error`` codes after which the session cannot go on.
FATAL_ERROR_CODES = frozenset({
    "invalid_api_key", "beta_api_shape_disabled", "session_expired", "insufficient_quota",
    "model_not_found",
})
_EMPTY: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
#: The tools a bridge can offer the model, as declared in ``session.update``.
TOOLS: dict[str, dict[str, Any]] = {
    "transfer_to_human": {
        "type": "function", "name": "transfer_to_human",
        "description": "Connect the caller to a human colleague (rings them for up to 30 s).",
        "parameters": _EMPTY,
    },
    "hang_up": {
        "type": "function", "name": "hang_up",
        "description": "End the call for everyone, once the conversation is over.",
        "parameters": _EMPTY,
    },
    "send_dtmf": {
        "type": "function", "name": "send_dtmf",
        "description": "Play touch-tone digits on the call (e.g. to navigate a phone menu).",
        "parameters": {
            "type": "object",
            "properties": {"digits": {"type": "string", "pattern": "^[0-9*#A-D]{1,32}$",
                                      "description": "1 to 32 of 0-9 * # A-D"}},
            "required": ["digits"], "additionalProperties": False,
        },
    },
}
_SECRET = re.compile(r"\b(sk-[A-Za-z0-9_*\-]{4})[A-Za-z0-9_*\-]*")

Transcript = Callable[[str, str], "Awaitable[None] | None"]


class OpenAIRealtimeConfigError(RuntimeError):
    """The bridge cannot be set up (e.g. ``OPENAI_API_KEY`` is not set)."""


class _ModelEnded(Exception):
    """The model's side cannot go on (a fatal ``error`` event)."""


@dataclass
class BridgeStats:
    """What happened on one bridged call (times in milliseconds)."""

    #: Caller ``speech_stopped`` → the reply's first audio handed to the call, per turn.
    latencies_ms: list[float] = field(default_factory=list)
    #: Barge-ins that cut the model's audio short.
    interruptions: int = 0
    #: ``(item_id, audio_end_ms)`` of each ``conversation.item.truncate`` sent.
    truncations: list[tuple[str, int]] = field(default_factory=list)
    #: Model audio received, and handed to the call (at the call's rate).
    generated_ms: float = 0.0
    sent_ms: float = 0.0
    #: Agent audio the caller heard since the answer (the last position known).
    played_ms: int = 0
    #: Tool calls run: ``(name, output)``.
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    #: ``error`` events from the model: ``code: message`` (keys redacted).
    errors: list[str] = field(default_factory=list)
    #: Model audio that could not be played (dropped, logged once).
    rejected_chunks: int = 0


@dataclass
class _Item:
    """One assistant audio item as the caller hears it."""

    item_id: str
    start_ms: float          # played position at which its audio begins
    generated_ms: float = 0.0  # model audio received
    sent_samples: int = 0    # handed to the call (call rate)
    done: bool = False
    cut: bool = False


class _Pcm24:
    """The model's audio as PCM16 at 24 kHz, resampled from and to the call's rate."""

    def __init__(self, call_rate: int) -> None:
        self.format: dict[str, Any] = {"type": "audio/pcm", "rate": MODEL_RATE}
        self._up = PolyphaseResampler(call_rate, MODEL_RATE)
        self._down = ModelAudio(call_rate, MODEL_RATE)

    def to_model(self, pcm: bytes) -> bytes:
        return self._up.process(pcm)

    def to_call(self, data: bytes) -> bytes:
        return self._down.to_call(None, data)

    def ms(self, data: bytes) -> float:
        return len(data) / (2 * MODEL_RATE / 1000)

    def flush(self) -> bytes:
        return self._down.flush()

    def reset(self) -> None:
        self._down.reset()


class _G711:
    """An 8 kHz call's audio as G.711 both ways: no resampling, a third of the bytes,
    and the same samples the phone line carries (μ-law round trips exactly)."""

    def __init__(self, codec: str = "pcmu") -> None:
        self.codec = codec
        self.format: dict[str, Any] = {"type": f"audio/{codec}"}

    def to_model(self, pcm: bytes) -> bytes:
        return encode(self.codec, pcm)

    def to_call(self, data: bytes) -> bytes:
        return decode(self.codec, data)

    def ms(self, data: bytes) -> float:
        return len(data) / 8

    def flush(self) -> bytes:
        return b""

    def reset(self) -> None:
        pass


def _redact(text: str) -> str:
    return _SECRET.sub(r"\1…", text)


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


class OpenAIRealtimeBridge:
    """Bridge one answered :class:`Call` to an OpenAI Realtime session; see the module doc."""

    def __init__(self, call: Call, *, client: AsyncOpenAI | None = None,
                 model: str = "gpt-realtime", instructions: str = "",
                 voice: str | None = None, tools: Iterable[str] = frozenset(),
                 on_transcript: Transcript | None = None,
                 input_transcription_model: str | None = None,
                 ring_time_seconds: int = 30, greeting: str | None = None,
                 model_timeout_s: float | None = 15.0, g711: bool | None = None) -> None:
        unknown = set(tools) - TOOLS.keys()
        if unknown:
            raise ValueError(f"unknown tools {sorted(unknown)}; known: {sorted(TOOLS)}")
        if client is None:
            if not os.environ.get("OPENAI_API_KEY"):
                raise OpenAIRealtimeConfigError(
                    "OPENAI_API_KEY is not set: export it or pass client=AsyncOpenAI(api_key=...)")
            from openai import AsyncOpenAI
            client = AsyncOpenAI()
        self.call = call
        self.client = client
        self.model = model
        self.instructions = instructions
        self.voice = voice
        self.tools = frozenset(tools)
        self.on_transcript = on_transcript
        self.input_transcription_model = input_transcription_model
        self.ring_time_seconds = ring_time_seconds
        #: Speak first (an outbound call: the callee says "hello?" and waits): the
        #: model is asked for a response at once, with this as its instructions.
        self.greeting = greeting
        self.rate = call.audio_config.rate
        self.stats = BridgeStats()
        #: Why :meth:`run` returned: ``call_ended``, ``model_disconnected``, ``model_error``
        #: or ``model_stalled``.
        self.end_reason: str | None = None
        #: ``audio/pcmu`` both ways when the call is at 8 kHz (``g711=None``: so), else
        #: ``audio/pcm`` at 24 kHz.
        self.g711 = self.rate == 8000 if g711 is None else g711
        if self.g711 and self.rate != 8000:
            raise ValueError("g711=True needs a call at 8000 Hz (CallAudioConfig)")
        self._wire: _Pcm24 | _G711 = _G711() if self.g711 else _Pcm24(self.rate)
        self.watchdog = ModelWatchdog(self.rate, model_timeout_s)
        self._queued_samples = 0     # agent audio handed to the call, on the played timeline
        self._item: _Item | None = None
        self._cut_items: set[str] = set()
        self._speech_stopped_at: float | None = None
        self._tool_tasks: dict[str, list[tuple[str, asyncio.Task[str]]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._conn: AsyncRealtimeConnection | None = None

    # ── session ────────────────────────────────────────────────────────────

    def session_config(self) -> dict[str, Any]:
        """The GA ``session`` object sent in ``session.update``."""
        fmt = self._wire.format
        audio_in: dict[str, Any] = {
            "format": fmt,
            "turn_detection": {"type": "server_vad", "create_response": True,
                               "interrupt_response": True},
        }
        if self.input_transcription_model:
            audio_in["transcription"] = {"model": self.input_transcription_model}
        audio_out: dict[str, Any] = {"format": dict(fmt)}
        if self.voice:
            audio_out["voice"] = self.voice
        session: dict[str, Any] = {
            "type": "realtime", "model": self.model, "output_modalities": ["audio"],
            "audio": {"input": audio_in, "output": audio_out},
        }
        if self.instructions:
            session["instructions"] = self.instructions
        if self.tools:
            session["tools"] = [TOOLS[name] for name in sorted(self.tools)]
            session["tool_choice"] = "auto"
        return session

    async def run(self) -> None:
        """Bridge until the call ends (or the model's side ends: then the call is ended)."""
        call = self.call
        try:
            async with self.client.realtime.connect(model=self.model) as conn:
                self._conn = conn
                await conn.session.update(session=self.session_config())  # type: ignore[arg-type]
                if self.greeting is not None:
                    await conn.response.create(response={"instructions": self.greeting})
                links = (asyncio.create_task(self._uplink(conn), name="openai-uplink"),
                         asyncio.create_task(self._downlink(conn), name="openai-downlink"),
                         asyncio.create_task(self.watchdog.run(), name="openai-watchdog"))
                try:
                    await asyncio.wait(links, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (*links, *self._tasks):
                        task.cancel()
                    results = await asyncio.gather(*links, *self._tasks, return_exceptions=True)
                failure = next((r for r in results[:len(links)] if isinstance(r, BaseException)
                                and not isinstance(r, asyncio.CancelledError)), None)
        except (TimeoutError, OSError) as exc:  # could not even connect
            failure = exc
        except Exception as exc:
            if type(exc).__module__.startswith(("websockets", "openai")):
                failure = exc
            else:
                raise
        finally:
            self._conn = None
            self.stats.played_ms = call.played_ms
        if call.state is CallState.TERMINATED:
            self.end_reason = self.end_reason or "call_ended"
            logger.info("Call %s: bridge ended with the call", call.id)
            return
        if isinstance(failure, ModelStalled):
            self.end_reason = "model_stalled"
        elif isinstance(failure, _ModelEnded) or (failure is not None and not isinstance(
                failure, (OSError, ConnectionError, TimeoutError))
                and not type(failure).__module__.startswith("websockets")):
            self.end_reason = "model_error"  # a fatal error event, or one it could not read
        self.end_reason = self.end_reason or "model_disconnected"
        logger.warning("Call %s: the model's connection ended (%s); ending the call", call.id,
                       _redact(f"{type(failure).__name__}: {failure}") if failure else "closed")
        with contextlib.suppress(Exception):
            await call.disconnect()
        self.stats.played_ms = call.played_ms

    # ── caller → model ─────────────────────────────────────────────────────

    async def _uplink(self, conn: AsyncRealtimeConnection) -> None:
        async for chunk in self.call.audio_stream():
            self.watchdog.caller_audio(chunk)
            data = self._wire.to_model(chunk)
            if data:
                await conn.input_audio_buffer.append(audio=base64.b64encode(data).decode("ascii"))

    # ── model → caller ─────────────────────────────────────────────────────

    async def _downlink(self, conn: AsyncRealtimeConnection) -> None:
        async for event in conn:
            self.watchdog.model_event()
            try:
                await self._on_event(conn, event)
            except (WSSCallClosedError, BufferClosedError):
                if self.call.state is CallState.TERMINATED:
                    return
                raise

    async def _on_event(self, conn: AsyncRealtimeConnection, event: Any) -> None:
        kind = _field(event, "type")
        if kind == "response.output_audio.delta":
            try:
                data = base64.b64decode(event.delta, validate=True)
            except (binascii.Error, ValueError):
                self._bad_audio(f"an audio delta that is not base64 ({len(event.delta)} chars)")
                return
            await self._on_audio(event.item_id, data)
        elif kind == "response.output_audio.done":
            item = self._item
            if item is not None and item.item_id == event.item_id and not item.cut:
                await self._to_call(item, self._wire.flush())
                item.done = True
        elif kind == "input_audio_buffer.speech_started":
            self._speech_stopped_at = None
            await self._barge_in(conn)
        elif kind == "input_audio_buffer.speech_stopped":
            self._speech_stopped_at = time.monotonic()
        elif kind == "response.function_call_arguments.done":
            task = self._spawn(self._run_tool(event.name, event.arguments))
            self._tool_tasks.setdefault(event.response_id, []).append((event.call_id, task))
        elif kind == "response.done":
            pending = self._tool_tasks.pop(_field(event.response, "id", ""), None)
            if pending:
                self._spawn(self._answer_tools(conn, pending))
        elif kind == "response.output_audio_transcript.done":
            await self._transcript("assistant", event.transcript)
        elif kind == "conversation.item.input_audio_transcription.completed":
            await self._transcript("user", event.transcript)
        elif kind == "error":
            self._on_error(event.error)

    async def _on_audio(self, item_id: str, data: bytes) -> None:
        if item_id in self._cut_items:
            return  # the caller interrupted it: what is still coming is not played
        item = self._item
        if item is None or item.item_id != item_id:
            if item is not None and not item.done and not item.cut:
                await self._to_call(item, self._wire.flush())
            item = self._item = _Item(item_id, self._queued_samples * 1000 / self.rate)
        ms = self._wire.ms(data)
        item.generated_ms += ms
        self.stats.generated_ms += ms
        await self._to_call(item, self._wire.to_call(data))

    def _bad_audio(self, what: str) -> None:
        self.stats.rejected_chunks += 1
        if self.stats.rejected_chunks == 1:
            logger.error("Call %s: the model sent %s; dropping such audio", self.call.id, what)

    async def _to_call(self, item: _Item, pcm: bytes) -> None:
        if not pcm:
            return
        if item.sent_samples == 0 and self._speech_stopped_at is not None:
            self.stats.latencies_ms.append((time.monotonic() - self._speech_stopped_at) * 1000)
            self._speech_stopped_at = None
        while True:
            try:
                await self.call.send_audio(pcm)
                break
            except BufferFullError:  # the model runs faster than real time: let it drain
                await asyncio.sleep(0.02)
        samples = len(pcm) // 2
        item.sent_samples += samples
        self._queued_samples += samples
        self.stats.sent_ms += samples * 1000 / self.rate

    async def _barge_in(self, conn: AsyncRealtimeConnection) -> None:
        item = self._item
        if item is None or item.cut:
            return
        end_ms = item.start_ms + item.sent_samples * 1000 / self.rate
        if item.done and self.call.played_ms >= end_ms - 1:
            return  # already heard to its end
        await self.call.clear_send_audio_buffer()
        played = self.call.played_ms
        self._wire.reset()
        self._queued_samples = played * self.rate // 1000  # nothing is queued any more
        item.cut = True
        self._cut_items.add(item.item_id)
        heard = played - item.start_ms
        if heard >= item.generated_ms and item.done:
            return
        audio_end_ms = int(min(max(0.0, heard), item.generated_ms))
        self.stats.interruptions += 1
        self.stats.truncations.append((item.item_id, audio_end_ms))
        logger.info("Call %s: caller barged in; %d ms of %s heard", self.call.id, audio_end_ms,
                    item.item_id)
        await conn.conversation.item.truncate(item_id=item.item_id, content_index=0,
                                              audio_end_ms=audio_end_ms)

    # ── tools ──────────────────────────────────────────────────────────────

    async def _run_tool(self, name: str, arguments: str) -> str:
        call = self.call
        # recorded before it runs: hang_up ends the call, and this task with it
        entry = len(self.stats.tool_calls)
        self.stats.tool_calls.append((name, ""))
        if name not in self.tools:
            output = {"ok": False, "error": f"tool {name!r} is not available"}
        else:
            try:
                args = json.loads(arguments or "{}")
                result: CommandResult
                if name == "transfer_to_human":
                    result = await call.connect(ring_time_seconds=self.ring_time_seconds)
                elif name == "hang_up":
                    result = await call.disconnect()
                else:
                    result = await call.send_dtmf(str(args.get("digits", "")))
                output = {"ok": result.success}
                if not result.success:
                    output.update(error=result.error_code, message=result.error_message)
            except (ValueError, AttributeError) as exc:
                output = {"ok": False, "error": f"bad arguments: {exc}"}
            except WSSCallClosedError:
                output = {"ok": False, "error": "the call has ended"}
        text = json.dumps(output)
        self.stats.tool_calls[entry] = (name, text)
        logger.info("Call %s: tool %s → %s", call.id, name, text)
        return text

    async def _answer_tools(self, conn: AsyncRealtimeConnection,
                            pending: list[tuple[str, asyncio.Task[str]]]) -> None:
        outputs = [(call_id, await task) for call_id, task in pending]
        if self.call.state is CallState.TERMINATED:
            return
        for call_id, output in outputs:
            await conn.conversation.item.create(
                item={"type": "function_call_output", "call_id": call_id, "output": output})
        await conn.response.create()

    # ── transcripts, errors ────────────────────────────────────────────────

    async def _transcript(self, role: str, text: str | None) -> None:
        if self.on_transcript is None or not text:
            return
        try:
            result = self.on_transcript(role, text)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("Call %s: on_transcript failed", self.call.id)

    def _on_error(self, error: Any) -> None:
        code = _field(error, "code") or _field(error, "type") or "error"
        text = _redact(f"{code}: {_field(error, 'message', '')}")
        self.stats.errors.append(text)
        logger.warning("Call %s: model error %s", self.call.id, text)
        if code in FATAL_ERROR_CODES:
            raise _ModelEnded(text)

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
