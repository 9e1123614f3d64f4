"""A bridge from one SDK :class:`~telcoflow.Call` to a Google ADK agent, live.

::

    @session.on_incoming_call
    async def on_call(call: Call) -> None:
        await call.answer()
        await AdkBridge(call, instructions="Be brief.", tools={"hang_up"}).run()

or with an agent of your own (its tools, sub-agents, memory), given the phone's
tools bound to this call::

    agent = Agent(name="desk", model=MODEL, instruction="...",
                  tools=[lookup_booking, *phone_tools(call, {"transfer_to_human"})])
    await AdkBridge(call, agent=agent).run()

What :meth:`AdkBridge.run` does, until the call or the model's session ends:

- one ADK session per call (created, so ``Runner.run_live`` finds it), a
  ``LiveRequestQueue`` fed with the caller's audio resampled to 16 kHz
  (``audio/pcm;rate=16000``, the Live API's input rate);
- the events of ``Runner.run_live`` (``StreamingMode.BIDI``, audio out): model
  audio, at the rate its MIME type names, resampled to the call's rate for
  ``call.send_audio``; ``interrupted`` → ``call.clear_send_audio_buffer()``;
  transcripts to ``on_transcript(role, text)`` (asked for only when given);
- tools run by ADK itself: the phone's (:func:`phone_tools`) act on this call;
- ``greeting``: a first turn sent as text, so the model speaks first (outbound calls);
- audio the bridge cannot play (another encoding or rate range) is dropped and
  logged once per call, with what came; the call goes on;
- the model's session failing (refused, dropped, an error ADK raises), or the model
  staying silent ``model_timeout_s`` after the caller finished speaking
  (:mod:`.bridging`), is logged without keys, and ends the call with
  ``call.disconnect()``; the caller hanging up ends the bridge.

``google-adk`` is the ``adk`` extra. Without ``agent=``, a Gemini key is needed
(``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``, or Vertex AI settings):
:class:`AdkKeyMissing` names them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from google.adk.agents import Agent
from google.adk.agents.live_request_queue import LiveRequestQueue
from google.adk.agents.run_config import RunConfig, StreamingMode
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.genai import types

from ..audio.polyphase import PolyphaseResampler
from ..sdk.call import Call
from ..sdk.enums import CallState
from ..sdk.errors import BufferClosedError, WSSCallClosedError
from .bridging import ModelStalled, ModelWatchdog, until_first
from .calltools import DESCRIPTIONS, DIGITS_HELP, NAMES, run_tool
from .gemini_live import _redact, warm_up  # the same keys to hide: Gemini's
from .modelaudio import ModelAudio, ModelAudioError

__all__ = ["DEFAULT_MODEL", "AdkBridge", "AdkKeyMissing", "AdkStats", "phone_tools"]

logger = logging.getLogger("telcoflow.integrations.adk")

DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
INPUT_RATE = 16_000
OUTPUT_RATE = 24_000
KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
warm_up()  # ADK parses the Live API's messages with google-genai: the same first-use cost
Transcript = Callable[[str, str], Awaitable[None] | None]


class AdkKeyMissing(RuntimeError):
    """No ``agent`` was given and no Gemini key (or Vertex AI setting) is in the environment."""


@dataclass
class AdkStats:
    """What happened on one bridged call."""

    interruptions: int = 0
    tool_calls: int = 0
    generated_ms: float = 0.0   # model audio received
    sent_ms: float = 0.0        # handed to the call
    rejected_chunks: int = 0    # model audio the bridge could not play
    error: str | None = None    # why the model's session ended, if it failed


def _has_credentials() -> bool:
    vertex = os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in {"1", "true"}
    return vertex or any(os.environ.get(name) for name in KEY_VARIABLES)


def phone_tools(call: Call, names: Iterable[str] = NAMES, *,
                on_use: Callable[[str], None] | None = None) -> list[Callable[..., Any]]:
    """The phone's tools, bound to ``call``, as functions ADK declares to the model
    (from their names, signatures and docstrings)."""
    wanted = set(names)
    unknown = wanted - NAMES
    if unknown:
        raise ValueError(f"unknown tools {sorted(unknown)}; known: {sorted(NAMES)}")

    async def use(name: str, **args: Any) -> dict[str, Any]:
        if on_use is not None:
            on_use(name)
        return await run_tool(call, name, args)

    async def transfer_to_human() -> dict[str, Any]:
        return await use("transfer_to_human")

    async def hang_up() -> dict[str, Any]:
        return await use("hang_up")

    async def send_dtmf(digits: str) -> dict[str, Any]:
        return await use("send_dtmf", digits=digits)

    tools: dict[str, Callable[..., Any]] = {
        "transfer_to_human": transfer_to_human, "hang_up": hang_up, "send_dtmf": send_dtmf}
    for name, tool in tools.items():
        tool.__doc__ = DESCRIPTIONS[name]
    send_dtmf.__doc__ = f"{DESCRIPTIONS['send_dtmf']}\n\nArgs:\n  digits: {DIGITS_HELP}"
    return [tools[name] for name in sorted(wanted)]


class AdkBridge:
    """Bridge one answered call to one ADK live run; ``await bridge.run()``."""

    def __init__(self, call: Call, *, agent: Any = None, model: str = DEFAULT_MODEL,
                 instructions: str = "", voice: str | None = None,
                 tools: Iterable[str] = frozenset(), greeting: str | None = None,
                 on_transcript: Transcript | None = None, app_name: str = "telcoflow",
                 user_id: str | None = None, model_timeout_s: float | None = 15.0) -> None:
        self.call = call
        self.stats = AdkStats()
        self.ended_by: str | None = None  # "caller", "hang_up", "model_closed"
        if agent is None:
            if not _has_credentials():
                raise AdkKeyMissing("set GEMINI_API_KEY (or GOOGLE_API_KEY, or Vertex AI's "
                                    "GOOGLE_GENAI_USE_VERTEXAI), or pass agent=")
            agent = Agent(name="phone_agent", model=model, instruction=instructions,
                          tools=phone_tools(call, tools, on_use=self._tool_used))
        self.agent = agent
        self.app_name, self.user_id = app_name, user_id or call.caller_number or "caller"
        self.session_id = call.id or uuid.uuid4().hex
        self.runner = Runner(app_name=app_name, agent=agent,
                             session_service=InMemorySessionService())
        self.voice, self.greeting, self.on_transcript = voice, greeting, on_transcript
        self.rate = call.audio_config.rate
        self._up = PolyphaseResampler(self.rate, INPUT_RATE)
        self._down = ModelAudio(self.rate, OUTPUT_RATE)
        self.watchdog = ModelWatchdog(self.rate, model_timeout_s)

    def _tool_used(self, name: str) -> None:
        self.stats.tool_calls += 1
        if name == "hang_up":
            self.ended_by = "hang_up"

    def run_config(self) -> RunConfig:
        """Audio out, the voice, and transcripts when someone listens for them."""
        config: dict[str, Any] = {"streaming_mode": StreamingMode.BIDI,
                                  "response_modalities": ["AUDIO"]}
        if self.voice:
            config["speech_config"] = types.SpeechConfig(voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=self.voice)))
        if self.on_transcript is not None:
            config["input_audio_transcription"] = types.AudioTranscriptionConfig()
            config["output_audio_transcription"] = types.AudioTranscriptionConfig()
        return RunConfig(**config)

    async def run(self) -> None:
        """Bridge until the caller hangs up, a ``hang_up`` tool call, or the model leaves."""
        await self.runner.session_service.create_session(
            app_name=self.app_name, user_id=self.user_id, session_id=self.session_id)
        queue = LiveRequestQueue()
        if self.greeting:
            queue.send_content(types.Content(role="user", parts=[types.Part(text=self.greeting)]))
        downstream = asyncio.create_task(self._from_model(queue), name="adk-down")
        try:
            done = await until_first(
                asyncio.create_task(self._to_model(queue), name="adk-up"), downstream,
                asyncio.create_task(self.watchdog.run(), name="adk-watchdog"))
        finally:
            queue.close()
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, (WSSCallClosedError,
                                                            BufferClosedError)):
                self._failed(error)
        if self.ended_by is None and downstream in done:
            self.ended_by = "model_closed"
        if self.ended_by != "caller" and self.call.state != CallState.TERMINATED:
            with contextlib.suppress(WSSCallClosedError, BufferClosedError):
                await self.call.disconnect()

    def _failed(self, error: BaseException) -> None:
        # whatever ADK or google-genai raises, the call must not be left hanging
        self.stats.error = _redact(f"{type(error).__name__}: {error}")[:300]
        self.ended_by = "model_stalled" if isinstance(error, ModelStalled) else "model_closed"
        logger.warning("ADK live session for call %s ended: %s; ending the call",
                       self.call.id, self.stats.error)

    # ── caller → model ─────────────────────────────────────────────────────────
    async def _to_model(self, queue: LiveRequestQueue) -> None:
        async for chunk in self.call.audio_stream():
            self.watchdog.caller_audio(chunk)
            pcm = self._up.process(chunk)
            if pcm:
                queue.send_realtime(types.Blob(data=pcm, mime_type=f"audio/pcm;rate={INPUT_RATE}"))
        self.ended_by = self.ended_by or "caller"

    # ── model → caller ─────────────────────────────────────────────────────────
    async def _from_model(self, queue: LiveRequestQueue) -> None:
        async for event in self.runner.run_live(
                user_id=self.user_id, session_id=self.session_id,
                live_request_queue=queue, run_config=self.run_config()):
            self.watchdog.model_event()
            if event.interrupted:
                await self._interrupted()
            for part in (event.content.parts or []) if event.content else []:
                if part.inline_data is not None and part.inline_data.data:
                    await self._audio(part.inline_data.mime_type, part.inline_data.data)
            if event.turn_complete:
                await self._send(self._down.flush())
            await self._transcripts(event)
            if self.ended_by == "hang_up":
                return

    async def _interrupted(self) -> None:
        self.stats.interruptions += 1
        self._down.reset()
        with contextlib.suppress(WSSCallClosedError):
            await self.call.clear_send_audio_buffer()

    async def _audio(self, mime: str | None, data: bytes) -> None:
        try:
            pcm = self._down.to_call(mime, data)
        except ModelAudioError as exc:
            self.stats.rejected_chunks += 1
            if self.stats.rejected_chunks == 1:
                logger.error("call %s: %s; dropping such audio", self.call.id, exc)
            return
        self.stats.generated_ms += len(data) / 2 / self._down.rate * 1000
        await self._send(pcm)

    async def _send(self, pcm: bytes) -> None:
        if pcm:
            self.stats.sent_ms += len(pcm) / 2 / self.rate * 1000
            await self.call.send_audio(pcm)

    async def _transcripts(self, event: Any) -> None:
        if self.on_transcript is None:
            return
        for role, transcription in (("user", event.input_transcription),
                                    ("assistant", event.output_transcription)):
            text = getattr(transcription, "text", None)
            if text and not getattr(event, "partial", False):
                result = self.on_transcript(role, text)
                if inspect.isawaitable(result):
                    await result
