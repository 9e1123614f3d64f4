"""A bridge from one SDK :class:`~telcoflow.Call` to the Gemini Live API (``google-genai``).

::

    @session.on_incoming_call
    async def on_call(call: Call) -> None:
        await call.answer()
        await GeminiLiveBridge(call, instructions="Be brief.", tools={"hang_up"}).run()

What :meth:`GeminiLiveBridge.run` does, until the call or the model's socket ends:

- the caller's audio (PCM16 at the call's rate) resampled to 16 kHz by one streaming
  resampler kept for the whole call, sent as ``send_realtime_input(audio=Blob(...,
  "audio/pcm;rate=16000"))``;
- the model's audio (24 kHz) resampled to the call's rate, to ``call.send_audio``;
  every model turn (google-genai's ``session.receive()`` ends at each ``turnComplete``,
  so the bridge keeps calling it);
- ``interrupted`` (the caller barged in) → ``call.clear_send_audio_buffer()``;
- ``greeting``: a first user turn sent as text, so the model speaks first (outbound calls);
- audio the bridge cannot play (labelled with another encoding, or a rate outside
  8-48 kHz) is dropped and logged once per call with what came; a chunk at another
  PCM rate is resampled from the rate its MIME type names; the call goes on;
- tool calls, for the allowed tools only (``transfer_to_human`` → ``call.connect``,
  ``hang_up`` → ``call.disconnect``, ``send_dtmf`` → ``call.send_dtmf``), answered by
  ``send_tool_response`` with the call's ``id`` (``hang_up`` ends the bridge);
- transcripts (asked for only when ``on_transcript`` is given) to
  ``on_transcript(role, text)``, ``role`` being ``"user"`` or ``"assistant"``;
- the model's socket dropping (or refusing the session), or the model staying silent
  ``model_timeout_s`` after the caller finished speaking (:mod:`.bridging`), is logged,
  without keys, and ends the call with ``call.disconnect()``; the caller hanging up
  ends the bridge.

Without ``client=``, ``GEMINI_API_KEY`` is required: :class:`GeminiKeyMissing` names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from google import genai
from google.genai import errors, types

from ..audio.polyphase import PolyphaseResampler
from ..sdk.call import Call
from ..sdk.enums import CallState
from ..sdk.errors import BufferClosedError, WSSCallClosedError
from .bridging import ModelStalled, ModelWatchdog, until_first
from .calltools import DESCRIPTIONS, DIGITS_HELP, run_tool
from .modelaudio import ModelAudio, ModelAudioError

__all__ = ["DEFAULT_MODEL", "TOOLS", "GeminiKeyMissing", "GeminiLiveBridge", "warm_up"]

logger = logging.getLogger("telcoflow.integrations.gemini_live")

DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
INPUT_RATE = 16_000
OUTPUT_RATE = 24_000
_NO_ARGS = types.Schema(type=types.Type.OBJECT, properties={})
#: The tools a bridge can offer the model.
TOOLS: dict[str, types.FunctionDeclaration] = {
    "transfer_to_human": types.FunctionDeclaration(
        name="transfer_to_human", parameters=_NO_ARGS,
        description=DESCRIPTIONS["transfer_to_human"]),
    "hang_up": types.FunctionDeclaration(
        name="hang_up", parameters=_NO_ARGS, description=DESCRIPTIONS["hang_up"]),
    "send_dtmf": types.FunctionDeclaration(
        name="send_dtmf", description=DESCRIPTIONS["send_dtmf"],
        parameters=types.Schema(type=types.Type.OBJECT, required=["digits"], properties={
            "digits": types.Schema(type=types.Type.STRING, description=DIGITS_HELP)})),
}
Transcript = Callable[[str, str], Awaitable[None] | None]
_KEYISH = re.compile(r"(key=|api[_-]?key[\"':= ]+)[^&\s\"']+", re.IGNORECASE)


def warm_up() -> None:
    """Parse one model message the way ``session.receive()`` does, once per process.

    google-genai builds the validators of its response models on first use: about
    50 ms for the first ``LiveServerMessage`` on a 2-core machine, which otherwise
    delays the first model reply of the first call (``bench/ai_turns.py``: first
    turn's model → agent 56 ms, the others 1.5 ms). That path is the SDK's private
    one (``_live_converters``, ``_from_response``), so a version that moved it only
    loses the warm-up, and the public ``model_validate`` does most of it instead.
    """
    sample = {"serverContent": {"modelTurn": {"parts": [{"inlineData": {
        "mimeType": "audio/pcm;rate=24000", "data": "AAA="}}]}, "turnComplete": True,
        "interrupted": False, "inputTranscription": {"text": "."},
        "outputTranscription": {"text": "."}},
        "toolCall": {"functionCalls": [{"id": "0", "name": "hang_up", "args": {}}]}}
    try:
        from google.genai import _live_converters
        types.LiveServerMessage._from_response(
            response=_live_converters._LiveServerMessage_from_mldev(sample), kwargs={})
    except Exception:  # noqa: BLE001 - only the warm-up is lost
        with contextlib.suppress(Exception):
            types.LiveServerMessage.model_validate({"server_content": {"turn_complete": True}})


warm_up()


class GeminiKeyMissing(RuntimeError):
    """No ``client`` was given and ``GEMINI_API_KEY`` is not set."""


def _redact(text: str) -> str:
    return _KEYISH.sub(r"\1<redacted>", text)


class GeminiLiveBridge:
    """Bridge one answered call to one Gemini Live session; ``await bridge.run()``."""

    def __init__(self, call: Call, *, client: genai.Client | None = None,
                 model: str = DEFAULT_MODEL, instructions: str = "", voice: str | None = None,
                 tools: Iterable[str] = frozenset(), greeting: str | None = None,
                 on_transcript: Transcript | None = None,
                 model_timeout_s: float | None = 15.0) -> None:
        unknown = set(tools) - set(TOOLS)
        if unknown:
            raise ValueError(f"unknown tools {sorted(unknown)}; known: {sorted(TOOLS)}")
        if client is None:
            key = os.environ.get("GEMINI_API_KEY")
            if not key:
                raise GeminiKeyMissing("GEMINI_API_KEY is not set: export it (a Gemini API"
                                       " key) or pass client=genai.Client(...)")
            client = genai.Client(api_key=key)
        self.call, self.client, self.model = call, client, model
        self.instructions, self.voice, self.tools = instructions, voice, frozenset(tools)
        self.greeting, self.on_transcript = greeting, on_transcript
        self.rate = call.audio_config.rate
        self._up = PolyphaseResampler(self.rate, INPUT_RATE)
        self._down = ModelAudio(self.rate, OUTPUT_RATE)
        self.ended_by: str | None = None  # "caller", "hang_up", "model_closed"
        self.interruptions = 0
        self.tool_calls: list[str] = []
        self.rejected_chunks = 0  # model audio that could not be played
        self.error: str | None = None  # why the model's session ended, if it failed
        self.watchdog = ModelWatchdog(self.rate, model_timeout_s)

    def live_config(self) -> types.LiveConnectConfig:
        """The session's setup: audio out, the instructions, voice, tools, transcripts."""
        config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
        if self.instructions:
            config.system_instruction = types.Content(parts=[types.Part(text=self.instructions)])
        if self.voice:
            config.speech_config = types.SpeechConfig(voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=self.voice)))
        if self.tools:
            config.tools = [types.Tool(function_declarations=[
                TOOLS[name] for name in sorted(self.tools)])]
        if self.on_transcript is not None:
            config.input_audio_transcription = types.AudioTranscriptionConfig()
            config.output_audio_transcription = types.AudioTranscriptionConfig()
        return config

    async def run(self) -> None:
        """Bridge until the caller hangs up, a ``hang_up`` tool call, or the model leaves."""
        try:
            async with self.client.aio.live.connect(model=self.model,
                                                    config=self.live_config()) as session:
                if self.greeting:
                    await session.send_client_content(turns=types.Content(
                        role="user", parts=[types.Part(text=self.greeting)]), turn_complete=True)
                done = await until_first(
                    asyncio.create_task(self._to_model(session), name="gemini-up"),
                    asyncio.create_task(self._from_model(session), name="gemini-down"),
                    asyncio.create_task(self.watchdog.run(), name="gemini-watchdog"))
                for task in done:
                    task.result()  # a model error surfaces here
        except (WSSCallClosedError, BufferClosedError):
            self.ended_by = self.ended_by or "caller"  # the call ended under the bridge
        except Exception as exc:  # whatever the model's side raised, the call must not hang
            self._failed(exc)
        if self.ended_by != "caller" and self.call.state != CallState.TERMINATED:
            with contextlib.suppress(WSSCallClosedError, BufferClosedError):
                await self.call.disconnect()

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, errors.APIError):
            detail = f"APIError {exc.code} {exc.status or ''}"
        elif isinstance(exc, ModelStalled):
            detail = str(exc)
        else:  # e.g. a message that is not JSON: its type and first words, keys redacted
            detail = f"{type(exc).__name__}: {str(exc)[:120]}"
        self.error = _redact(detail).strip()
        logger.warning("Gemini Live session for call %s ended: %s; ending the call",
                       self.call.id, self.error)
        self.ended_by = "model_stalled" if isinstance(exc, ModelStalled) else "model_closed"

    # ── caller → model ─────────────────────────────────────────────────────────
    async def _to_model(self, session: Any) -> None:
        async for chunk in self.call.audio_stream():
            self.watchdog.caller_audio(chunk)
            pcm = self._up.process(chunk)
            if pcm:
                await session.send_realtime_input(
                    audio=types.Blob(data=pcm, mime_type=f"audio/pcm;rate={INPUT_RATE}"))
        self.ended_by = self.ended_by or "caller"

    # ── model → caller ─────────────────────────────────────────────────────────
    async def _from_model(self, session: Any) -> None:
        while self.ended_by is None:
            async for message in session.receive():  # one model turn
                self.watchdog.model_event()
                if message.tool_call is not None:
                    await self._tools(session, message.tool_call)
                    if self.ended_by is not None:
                        return
                content = message.server_content
                if content is not None:
                    await self._content(content)

    async def _content(self, content: types.LiveServerContent) -> None:
        if content.interrupted:
            self.interruptions += 1
            self._down.reset()
            with contextlib.suppress(WSSCallClosedError):
                await self.call.clear_send_audio_buffer()
        if content.model_turn is not None:
            for part in content.model_turn.parts or []:
                if part.inline_data is not None and part.inline_data.data:
                    await self._audio(part.inline_data.mime_type, part.inline_data.data)
        if content.turn_complete:
            tail = self._down.flush()
            if tail:
                await self.call.send_audio(tail)
        if content.input_transcription is not None and content.input_transcription.text:
            await self._transcript("user", content.input_transcription.text)
        if content.output_transcription is not None and content.output_transcription.text:
            await self._transcript("assistant", content.output_transcription.text)

    async def _audio(self, mime: str | None, data: bytes) -> None:
        try:
            pcm = self._down.to_call(mime, data)
        except ModelAudioError as exc:
            self.rejected_chunks += 1
            if self.rejected_chunks == 1:
                logger.error("call %s: %s; dropping such audio", self.call.id, exc)
            return
        if pcm:
            await self.call.send_audio(pcm)

    async def _transcript(self, role: str, text: str) -> None:
        if self.on_transcript is None:
            return
        result = self.on_transcript(role, text)
        if inspect.isawaitable(result):
            await result

    async def _tools(self, session: Any, tool_call: types.LiveServerToolCall) -> None:
        replies = []
        for fc in tool_call.function_calls or []:
            name = fc.name or ""
            self.tool_calls.append(name)
            response = await self._tool(name, dict(fc.args or {}))
            replies.append(types.FunctionResponse(id=fc.id, name=name, response=response))
        if replies:
            await session.send_tool_response(function_responses=replies)
        if self.ended_by == "hang_up":
            await self.call.disconnect()

    async def _tool(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name not in self.tools:
            return {"error": f"tool {name!r} is not available"}
        if name == "hang_up":  # the bridge hangs up once the model has its answer
            self.ended_by = "hang_up"
            return {"result": "the call is ending"}
        return await run_tool(self.call, name, args)
