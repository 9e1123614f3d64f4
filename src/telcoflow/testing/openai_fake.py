"""A local fake of the OpenAI Realtime API (GA shape) over WebSocket.

For tests and key-less trials: the real ``openai`` SDK talks to it as it
talks to ``wss://api.openai.com/v1/realtime``::

    async with FakeRealtimeServer(FakeScript(reply_audio=pcm24k)) as server:
        client = AsyncOpenAI(api_key="x", websocket_base_url=server.websocket_base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            ...

What it does (bridge-protocols.md sections 3 and 5):

- handshake: path ``/v1/realtime`` with a ``model`` query parameter (404/400
  otherwise) and ``Authorization: Bearer <non-empty>`` (401 otherwise). An
  ``OpenAI-Beta: realtime=v1`` header, or a ``session.update`` in the beta
  shape, gets an ``error`` with code ``beta_api_shape_disabled`` and close 4000;
- ``session.update`` (GA): merged into the session and echoed as
  ``session.updated``; the audio formats are checked;
- server VAD driven by energy on the appended audio (PCM16 24 kHz, or G.711
  μ-law/A-law 8 kHz), with the session's ``prefix_padding_ms`` and
  ``silence_duration_ms``: ``speech_started`` → ``speech_stopped`` →
  ``committed`` → a scripted response; speech during a response cancels it
  (``response.done`` status ``cancelled``, reason ``turn_detected``) when
  ``interrupt_response`` is on. ``turn_detection: null`` turns VAD off
  (``input_audio_buffer.commit`` + ``response.create`` by hand);
- a response streams ``script.reply_audio`` in the session's output format,
  paced at ``script.pace`` times real time, with transcript deltas; or first a
  scripted function call, answered by a ``function_call_output`` item and
  ``response.create``;
- ``conversation.item.truncate`` is checked against the audio generated for
  the item (unknown item or ``audio_end_ms`` beyond it is an ``error``);
- faults: ``fail_with_error``, ``drop_after_ms``, ``stall``/``stall_after``,
  ``corrupt_audio``, ``garbage``.

Everything received is in :attr:`FakeRealtimeServer.received`; everything
sent in :attr:`FakeRealtimeServer.sent`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import http
import itertools
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import numpy.typing as npt
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from ..audio.resample import resample

__all__ = ["FakeRealtimeServer", "FakeScript", "Truncation", "encode_reply"]

Event = dict[str, Any]
Predicate = Callable[[Event], bool]

#: The formats GA accepts and their sample rates.
FORMAT_RATES = {"audio/pcm": 24000, "audio/pcmu": 8000, "audio/pcma": 8000}
#: Top-level session keys that only the beta shape has.
BETA_SESSION_KEYS = frozenset({
    "modalities", "input_audio_format", "output_audio_format", "voice",
    "turn_detection", "input_audio_transcription",
})
BETA_CLOSE_CODE = 4000
DEFAULT_TURN_DETECTION: Event = {
    "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
    "silence_duration_ms": 500, "create_response": True, "interrupt_response": True,
    "idle_timeout_ms": None,
}


@dataclass
class FakeScript:
    """What the fake says and how it misbehaves. All fields are optional."""

    #: The reply: PCM16 mono at 24 kHz (int16 array or bytes); encoded to the
    #: session's output format (resampled to 8 kHz for μ-law/A-law).
    reply_audio: npt.NDArray[np.int16] | bytes = b""
    #: Its transcript, sent as one ``output_audio_transcript.delta`` per word.
    reply_transcript: str = "Hello from the fake."
    #: Wait between ``response.created`` and the first audio delta.
    reply_delay_ms: float = 0.0
    #: Audio per ``response.output_audio.delta``.
    chunk_ms: int = 40
    #: 1.0 sends the audio at real time, 4.0 four times faster; 0 or inf: at once.
    pace: float = 1.0
    #: RMS (in int16 units) above which a 10 ms input frame counts as speech.
    energy_threshold: float = 500.0
    #: Speech this long (ms) before ``speech_started`` is sent.
    min_speech_ms: int = 20
    #: ``(name, arguments_json)``: the first response calls this tool and the
    #: fake waits for a ``function_call_output`` item and ``response.create``.
    tool_call: tuple[str, str] | None = None
    #: ``error`` object sent instead of the first response (``type``, ``code``,
    #: ``message``; ``param`` and ``event_id`` default to None).
    fail_with_error: Mapping[str, Any] | None = None
    #: Abort the TCP connection this long after the handshake (no close frame).
    drop_after_ms: float | None = None
    #: Send nothing after ``session.created`` (the fake still reads and records).
    stall: bool = False
    #: Send each audio delta as text that is not base64 (a broken model or proxy).
    corrupt_audio: bool = False
    #: A text frame sent instead of the first response (not a valid event).
    garbage: str | None = None
    #: Send nothing after the first event of this type was sent.
    stall_after: str | None = None


@dataclass(frozen=True)
class Truncation:
    item_id: str
    audio_end_ms: int


def encode_reply(pcm24k: npt.NDArray[np.int16] | bytes, fmt: Mapping[str, Any]) -> bytes:
    """The reply audio in a GA format object: what the fake's deltas add up to."""
    raw = pcm24k.astype("<i2").tobytes() if isinstance(pcm24k, np.ndarray) else bytes(pcm24k)
    kind = fmt.get("type", "audio/pcm")
    if kind == "audio/pcm":
        return raw
    pcm8k = resample(raw, 24000, 8000) if raw else b""
    samples = np.frombuffer(pcm8k, dtype="<i2")
    return ulaw_encode(samples) if kind == "audio/pcmu" else alaw_encode(samples)


class _ProtocolError(Exception):
    def __init__(self, code: str, message: str, param: str | None = None,
                 type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.code, self.message, self.param, self.type = code, message, param, type_


class _BetaShape(Exception):
    pass


def _merge(base: Event, patch: Mapping[str, Any]) -> None:
    """Objects are merged field by field, except an audio ``format``, which is replaced
    whole (``{"type": "audio/pcmu"}`` has no rate to keep)."""
    for key, value in patch.items():
        if key != "format" and isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _check_format(fmt: Any, param: str) -> None:
    if not isinstance(fmt, Mapping) or fmt.get("type") not in FORMAT_RATES:
        raise _ProtocolError("invalid_value", f"Invalid value for '{param}.type'.", f"{param}.type")
    if fmt["type"] == "audio/pcm" and fmt.get("rate", 24000) != 24000:
        raise _ProtocolError("invalid_value", "audio/pcm supports only rate 24000.",
                             f"{param}.rate")


class _Session:
    """One WebSocket connection: the session state and its event loop."""

    def __init__(self, server: FakeRealtimeServer, ws: ServerConnection, model: str) -> None:
        self.server, self.ws, self.script = server, ws, server.script
        self.session: Event = {
            "type": "realtime", "object": "realtime.session", "id": server._id("sess"),
            "model": model, "instructions": "", "output_modalities": ["audio"],
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 24000},
                          "turn_detection": dict(DEFAULT_TURN_DETECTION),
                          "transcription": None, "noise_reduction": None},
                "output": {"format": {"type": "audio/pcm", "rate": 24000},
                           "voice": "marin", "speed": 1.0},
            },
            "tools": [], "tool_choice": "auto",
        }
        self.muted = False
        self.responses = 0
        self.response_task: asyncio.Task[None] | None = None
        self.response_id: str | None = None
        self.items: dict[str, Event] = {}
        self.generated_ms: dict[str, float] = {}
        self.pending_calls: set[str] = set()
        self.tool_called = False
        self.last_item_id: str | None = None
        # input timeline and VAD
        self.in_samples = 0
        self.buffer_samples = 0
        self.leftover = b""
        self.frame_tail = np.zeros(0, dtype=np.int16)
        self.speaking = False
        self.voiced_ms = 0
        self.silence_ms = 0
        self.user_item_id: str | None = None

    # -- sending ---------------------------------------------------------------
    async def send(self, event: Event) -> None:
        if self.muted:
            return
        event.setdefault("event_id", self.server._id("event"))
        self.server.sent.append(event)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps(event))
        stall_after = self.script.stall_after or ("session.created" if self.script.stall else None)
        if event["type"] == stall_after:
            self.muted = True

    async def error(self, code: str, message: str, *, param: str | None = None,
                    event_id: str | None = None, type_: str = "invalid_request_error") -> None:
        await self.send({"type": "error", "error": {
            "type": type_, "code": code, "message": message, "param": param,
            "event_id": event_id}})

    # -- formats -----------------------------------------------------------------
    @property
    def in_format(self) -> Event:
        fmt: Event = self.session["audio"]["input"]["format"]
        return fmt

    @property
    def out_format(self) -> Event:
        fmt: Event = self.session["audio"]["output"]["format"]
        return fmt

    @property
    def turn_detection(self) -> Event | None:
        td: Event | None = self.session["audio"]["input"].get("turn_detection")
        return td

    # -- main loop ---------------------------------------------------------------
    async def run(self) -> None:
        await self.send({"type": "session.created", "session": copy.deepcopy(self.session)})
        dropper = None
        if self.script.drop_after_ms is not None:
            dropper = asyncio.create_task(self._drop(self.script.drop_after_ms / 1000))
        try:
            async for message in self.ws:
                try:
                    event = json.loads(message)
                    if not isinstance(event, dict):
                        raise ValueError("not an object")
                except ValueError:
                    await self.error("invalid_json", "The event is not a JSON object.")
                    continue
                self.server._record(event)
                try:
                    await self.handle(event)
                except _ProtocolError as exc:
                    await self.error(exc.code, exc.message, param=exc.param,
                                     event_id=event.get("event_id"), type_=exc.type)
                except _BetaShape:
                    await self.refuse_beta(event.get("event_id"))
                    return
        except ConnectionClosed:
            pass
        finally:
            if dropper is not None:
                dropper.cancel()
            if self.response_task is not None:
                self.response_task.cancel()

    async def _drop(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.server.drops += 1
        self.muted = True
        self.ws.transport.abort()

    async def refuse_beta(self, event_id: str | None = None) -> None:
        await self.error("beta_api_shape_disabled",
                         "The Realtime beta API shape is no longer supported; use the GA shape "
                         "(session.type = 'realtime').", event_id=event_id)
        await self.ws.close(BETA_CLOSE_CODE, "beta_api_shape_disabled")

    async def handle(self, event: Event) -> None:
        kind = event.get("type")
        handler = {
            "session.update": self.on_session_update,
            "input_audio_buffer.append": self.on_append,
            "input_audio_buffer.commit": self.on_commit,
            "input_audio_buffer.clear": self.on_clear,
            "conversation.item.create": self.on_item_create,
            "conversation.item.truncate": self.on_truncate,
            "response.create": self.on_response_create,
            "response.cancel": self.on_response_cancel,
        }.get(kind if isinstance(kind, str) else "")
        if handler is None:
            raise _ProtocolError("invalid_value", f"Invalid value: '{kind}'. Unknown event type.",
                                 "type")
        await handler(event)

    # -- session -----------------------------------------------------------------
    async def on_session_update(self, event: Event) -> None:
        patch = event.get("session")
        if not isinstance(patch, Mapping):
            raise _ProtocolError("missing_required_parameter", "Missing 'session'.", "session")
        if BETA_SESSION_KEYS & patch.keys():
            raise _BetaShape()
        if "type" not in patch:
            raise _ProtocolError("missing_required_parameter",
                                 "Missing required parameter: 'session.type'.", "session.type")
        if patch["type"] != "realtime":
            raise _ProtocolError("invalid_value", "session.type must be 'realtime'.",
                                 "session.type")
        audio = patch.get("audio") or {}
        for side in ("input", "output"):
            fmt = (audio.get(side) or {}).get("format")
            if fmt is not None:
                _check_format(fmt, f"session.audio.{side}.format")
        merged = copy.deepcopy(self.session)
        _merge(merged, patch)
        td = merged["audio"]["input"].get("turn_detection")
        if td is not None:
            merged["audio"]["input"]["turn_detection"] = {**DEFAULT_TURN_DETECTION, **td}
        self.session = merged
        self.server.sessions.append(copy.deepcopy(merged))
        await self.send({"type": "session.updated", "session": copy.deepcopy(merged)})

    # -- input audio ---------------------------------------------------------------
    def _decode(self, data: bytes) -> npt.NDArray[np.int16]:
        kind = self.in_format["type"]
        if kind == "audio/pcmu":
            return ulaw_decode(data)
        if kind == "audio/pcma":
            return alaw_decode(data)
        data = self.leftover + data
        cut = len(data) - len(data) % 2
        self.leftover = data[cut:]
        return np.frombuffer(data[:cut], dtype="<i2").astype(np.int16)

    def _ms(self, samples: int) -> int:
        return int(samples * 1000 // FORMAT_RATES[self.in_format["type"]])

    async def on_append(self, event: Event) -> None:
        try:
            data = base64.b64decode(event.get("audio") or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _ProtocolError("invalid_value", "'audio' is not valid base64.", "audio") from exc
        samples = self._decode(data)
        self.buffer_samples += samples.size
        td = self.turn_detection
        if td is None:
            self.in_samples += samples.size
            return
        rate = FORMAT_RATES[self.in_format["type"]]
        frame = rate // 100
        pcm = np.concatenate([self.frame_tail, samples]) if self.frame_tail.size else samples
        whole = pcm.size - pcm.size % frame
        self.frame_tail = pcm[whole:].copy()
        base = self.in_samples - (pcm.size - samples.size)
        self.in_samples += samples.size
        frames = pcm[:whole].astype(np.float64).reshape(-1, frame)
        rms = np.sqrt(np.mean(frames * frames, axis=1)) if whole else np.zeros(0)
        for i, level in enumerate(rms):
            end_ms = self._ms(base + (i + 1) * frame)
            await self._vad_frame(bool(level >= self.script.energy_threshold), end_ms, td)

    async def _vad_frame(self, voiced: bool, end_ms: int, td: Event) -> None:
        if not self.speaking:
            self.voiced_ms = self.voiced_ms + 10 if voiced else 0
            if self.voiced_ms >= self.script.min_speech_ms:
                self.speaking, self.silence_ms = True, 0
                start = end_ms - self.voiced_ms
                self.user_item_id = self.server._id("item")
                await self.send({
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": max(0, start - int(td.get("prefix_padding_ms") or 0)),
                    "item_id": self.user_item_id})
                if self.response_task is not None and td.get("interrupt_response", True):
                    await self.cancel_response("turn_detected")
            return
        self.silence_ms = 0 if voiced else self.silence_ms + 10
        if self.silence_ms >= int(td.get("silence_duration_ms") or 500):
            self.speaking, self.voiced_ms = False, 0
            item_id = self.user_item_id or self.server._id("item")
            await self.send({"type": "input_audio_buffer.speech_stopped",
                             "audio_end_ms": end_ms, "item_id": item_id})
            await self.commit(item_id)
            if td.get("create_response", True) and self.response_task is None:
                await self.start_response()

    async def commit(self, item_id: str) -> None:
        previous, self.last_item_id = self.last_item_id, item_id
        self.buffer_samples = 0
        await self.send({"type": "input_audio_buffer.committed",
                         "previous_item_id": previous, "item_id": item_id})
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user",
                "status": "completed", "content": [{"type": "input_audio", "transcript": None}]}
        self.items[item_id] = item
        await self.send({"type": "conversation.item.added", "previous_item_id": previous,
                         "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": previous,
                         "item": item})

    async def on_commit(self, event: Event) -> None:
        if self._ms(self.buffer_samples) < 100:
            raise _ProtocolError(
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {self._ms(self.buffer_samples)}ms of audio.")
        await self.commit(self.user_item_id if self.speaking and self.user_item_id
                          else self.server._id("item"))
        self.speaking = False

    async def on_clear(self, event: Event) -> None:
        self.buffer_samples, self.speaking, self.voiced_ms = 0, False, 0
        await self.send({"type": "input_audio_buffer.cleared"})

    # -- conversation --------------------------------------------------------------
    async def on_item_create(self, event: Event) -> None:
        item = event.get("item")
        if not isinstance(item, Mapping) or "type" not in item:
            raise _ProtocolError("missing_required_parameter", "Missing 'item.type'.", "item.type")
        item = copy.deepcopy(dict(item))
        if item["type"] == "function_call_output":
            if item.get("call_id") not in self.pending_calls:
                raise _ProtocolError("invalid_value",
                                     f"No function call with call_id '{item.get('call_id')}'.",
                                     "item.call_id")
            self.pending_calls.discard(item["call_id"])
        elif item["type"] not in ("message", "function_call"):
            raise _ProtocolError("invalid_value", f"Invalid item type '{item['type']}'.",
                                 "item.type")
        item.setdefault("id", self.server._id("item"))
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        previous, self.last_item_id = self.last_item_id, item["id"]
        self.items[item["id"]] = item
        await self.send({"type": "conversation.item.added", "previous_item_id": previous,
                         "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": previous,
                         "item": item})

    async def on_truncate(self, event: Event) -> None:
        item_id = event.get("item_id")
        end = event.get("audio_end_ms")
        if not isinstance(item_id, str) or item_id not in self.items:
            raise _ProtocolError("invalid_value",
                                 f"Item with item_id '{item_id}' not found.", "item_id")
        item = self.items[item_id]
        if item.get("role") != "assistant" or item_id not in self.generated_ms:
            raise _ProtocolError("invalid_value", "Only assistant audio items can be truncated.",
                                 "item_id")
        if event.get("content_index", 0) != 0:
            raise _ProtocolError("invalid_value", "content_index must be 0.", "content_index")
        if not isinstance(end, int) or isinstance(end, bool) or end < 0:
            raise _ProtocolError("invalid_value", "audio_end_ms must be a non-negative integer.",
                                 "audio_end_ms")
        generated = self.generated_ms[item_id]
        if end > generated:
            raise _ProtocolError(
                "invalid_value",
                f"Audio content of {math.floor(generated)}ms is already shorter than "
                f"{end}ms: audio_end_ms exceeds the audio generated for item '{item_id}'.",
                "audio_end_ms")
        self.server.truncations.append(Truncation(item_id, end))
        self.generated_ms[item_id] = float(end)
        await self.send({"type": "conversation.item.truncated", "item_id": item_id,
                         "content_index": 0, "audio_end_ms": end})

    # -- responses -----------------------------------------------------------------
    async def on_response_create(self, event: Event) -> None:
        if self.response_task is not None:
            raise _ProtocolError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.response_id}.")
        await self.start_response()

    async def on_response_cancel(self, event: Event) -> None:
        wanted = event.get("response_id")
        if self.response_task is None or (wanted and wanted != self.response_id):
            raise _ProtocolError("response_cancel_not_active",
                                 "Cancellation failed: no active response found.")
        await self.cancel_response("client_cancelled")

    async def start_response(self) -> None:
        self.responses += 1
        if self.script.fail_with_error is not None and self.responses == 1:
            err = {"type": "server_error", "code": None, "message": "scripted failure",
                   "param": None, "event_id": None, **self.script.fail_with_error}
            await self.send({"type": "error", "error": err})
            return
        if self.script.garbage is not None and self.responses == 1:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(self.script.garbage)
            return
        rid = self.response_id = self.server._id("resp")
        await self.send({"type": "response.created",
                         "response": self._response(rid, "in_progress")})
        self.response_task = asyncio.create_task(self._respond(rid))

    def _response(self, rid: str, status: str, output: list[Event] | None = None,
                  reason: str | None = None) -> Event:
        details = None
        if status != "in_progress" and status != "completed":
            details = {"type": status, "reason": reason}
        return {"id": rid, "object": "realtime.response", "status": status,
                "status_details": details, "output": output or [],
                "conversation_id": None, "output_modalities": ["audio"],
                "audio": {"output": {"format": copy.deepcopy(self.out_format),
                                     "voice": self.session["audio"]["output"]["voice"]}},
                "usage": None}

    async def cancel_response(self, reason: str) -> None:
        task, rid = self.response_task, self.response_id
        if task is None or rid is None:
            return
        self.response_task = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.server.cancelled.append((rid, reason))
        await self.send({"type": "response.done",
                         "response": self._response(rid, "cancelled", reason=reason)})

    async def _respond(self, rid: str) -> None:
        if self.script.tool_call is not None and not self.tool_called:
            self.tool_called = True
            output = await self._call_tool(rid)
        else:
            output = await self._speak(rid)
        self.response_task = None
        await self.send({"type": "response.done",
                         "response": self._response(rid, "completed", output=output)})

    async def _call_tool(self, rid: str) -> list[Event]:
        assert self.script.tool_call is not None
        name, arguments = self.script.tool_call
        call_id, item_id = self.server._id("call"), self.server._id("item")
        item = {"id": item_id, "object": "realtime.item", "type": "function_call",
                "status": "in_progress", "call_id": call_id, "name": name, "arguments": ""}
        self.items[item_id] = item
        self.pending_calls.add(call_id)
        where = {"response_id": rid, "item_id": item_id, "output_index": 0}
        await self.send({"type": "response.output_item.added", "response_id": rid,
                         "output_index": 0, "item": dict(item)})
        await self.send({"type": "conversation.item.added", "previous_item_id": self.last_item_id,
                         "item": dict(item)})
        self.last_item_id = item_id
        step = max(1, len(arguments) // 3)
        for i in range(0, len(arguments), step):
            await self.send({"type": "response.function_call_arguments.delta", **where,
                             "call_id": call_id, "delta": arguments[i:i + step]})
        await self.send({"type": "response.function_call_arguments.done", **where,
                         "call_id": call_id, "name": name, "arguments": arguments})
        item.update(status="completed", arguments=arguments)
        await self.send({"type": "response.output_item.done", "response_id": rid,
                         "output_index": 0, "item": dict(item)})
        await self.send({"type": "conversation.item.done", "previous_item_id": None,
                         "item": dict(item)})
        return [dict(item)]

    async def _speak(self, rid: str) -> list[Event]:
        script = self.script
        if script.reply_delay_ms > 0:
            await asyncio.sleep(script.reply_delay_ms / 1000)
        fmt = self.out_format
        audio = encode_reply(script.reply_audio, fmt)
        bytes_per_ms = FORMAT_RATES[fmt["type"]] // 1000 * (2 if fmt["type"] == "audio/pcm" else 1)
        item_id = self.server._id("item")
        transcript = script.reply_transcript
        item = {"id": item_id, "object": "realtime.item", "type": "message",
                "role": "assistant", "status": "in_progress",
                "content": [{"type": "output_audio", "transcript": ""}]}
        self.items[item_id] = item
        self.generated_ms[item_id] = 0.0
        where = {"response_id": rid, "item_id": item_id, "output_index": 0}
        await self.send({"type": "response.output_item.added", "response_id": rid,
                         "output_index": 0, "item": copy.deepcopy(item)})
        await self.send({"type": "conversation.item.added", "previous_item_id": self.last_item_id,
                         "item": copy.deepcopy(item)})
        self.last_item_id = item_id
        await self.send({"type": "response.content_part.added", **where, "content_index": 0,
                         "part": {"type": "audio", "transcript": ""}})
        chunk = max(1, script.chunk_ms) * bytes_per_ms
        words = iter(w + " " for w in transcript.split())
        paced = 0 < script.pace < math.inf
        t0 = time.monotonic()
        sent = 0
        for n, start in enumerate(range(0, len(audio), chunk)):
            if paced:
                due = t0 + n * script.chunk_ms / 1000 / script.pace
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            piece = audio[start:start + chunk]
            delta = "%%not-base64%%" if script.corrupt_audio else \
                base64.b64encode(piece).decode("ascii")
            await self.send({"type": "response.output_audio.delta", **where, "content_index": 0,
                             "delta": delta})
            sent += len(piece)
            self.generated_ms[item_id] = sent / bytes_per_ms
            word = next(words, None)
            if word is not None:
                await self.send({"type": "response.output_audio_transcript.delta", **where,
                                 "content_index": 0, "delta": word})
        for word in words:
            await self.send({"type": "response.output_audio_transcript.delta", **where,
                             "content_index": 0, "delta": word})
        await self.send({"type": "response.output_audio.done", **where, "content_index": 0})
        await self.send({"type": "response.output_audio_transcript.done", **where,
                         "content_index": 0, "transcript": transcript})
        part = {"type": "audio", "transcript": transcript}
        await self.send({"type": "response.content_part.done", **where, "content_index": 0,
                         "part": part})
        item.update(status="completed", content=[{"type": "output_audio",
                                                  "transcript": transcript}])
        await self.send({"type": "response.output_item.done", "response_id": rid,
                         "output_index": 0, "item": copy.deepcopy(item)})
        await self.send({"type": "conversation.item.done", "previous_item_id": None,
                         "item": copy.deepcopy(item)})
        return [copy.deepcopy(item)]


class FakeRealtimeServer:
    """The fake on 127.0.0.1 (an ephemeral port unless ``port`` is given).

    ``async with FakeRealtimeServer(script) as server:`` starts it; point the SDK
    at :attr:`websocket_base_url` (or ``OPENAI_BASE_URL`` = :attr:`base_url`).
    """

    def __init__(self, script: FakeScript | None = None, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.script = script or FakeScript()
        self.host, self.port = host, port
        #: Client events received, over all connections, in order.
        self.received: list[Event] = []
        #: Server events sent, over all connections, in order.
        self.sent: list[Event] = []
        #: Accepted ``conversation.item.truncate`` requests.
        self.truncations: list[Truncation] = []
        #: ``(response_id, reason)`` of each cancelled response.
        self.cancelled: list[tuple[str, str]] = []
        #: The session after each accepted ``session.update``.
        self.sessions: list[Event] = []
        #: ``(status, reason)`` of refused handshakes.
        self.refused: list[tuple[int, str]] = []
        #: The request of each accepted WebSocket handshake.
        self.requests: list[Request] = []
        #: Connections aborted by ``script.drop_after_ms``.
        self.drops = 0
        self._server: Server | None = None
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> FakeRealtimeServer:
        self._server = await serve(self._handler, self.host, self.port,
                                   process_request=self._check_request, max_size=None,
                                   compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeRealtimeServer:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def websocket_base_url(self) -> str:
        """For ``AsyncOpenAI(websocket_base_url=...)``: the SDK appends ``/realtime``."""
        return f"ws://{self.host}:{self.port}/v1"

    @property
    def base_url(self) -> str:
        """For ``AsyncOpenAI(base_url=...)`` or ``OPENAI_BASE_URL`` (the SDK maps http→ws)."""
        return f"http://{self.host}:{self.port}/v1"

    # -- observation -------------------------------------------------------------------
    def _record(self, event: Event) -> None:
        self.received.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Predicate | str, timeout: float = 5.0) -> Event:
        """The first received event matching ``predicate`` (or of that type), waiting for it."""
        match: Predicate = ((lambda e: e.get("type") == predicate)
                            if isinstance(predicate, str) else predicate)
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for event in self.received[seen:]:
                    if match(event):
                        return event
                seen = len(self.received)
                self._changed.clear()
                await self._changed.wait()

    def received_types(self) -> list[str]:
        return [str(e.get("type")) for e in self.received]

    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    # -- handshake and connections --------------------------------------------------------
    def _refuse(self, conn: ServerConnection, status: http.HTTPStatus, code: str,
                message: str) -> Response:
        self.refused.append((int(status), code))
        body = json.dumps({"error": {"type": "invalid_request_error", "code": code,
                                     "message": message, "param": None}})
        response = conn.respond(status, body + "\n")
        response.headers["Content-Type"] = "application/json"
        return response

    def _check_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path.rstrip("/") != "/v1/realtime":
            return self._refuse(conn, http.HTTPStatus.NOT_FOUND, "not_found",
                                f"No route for {url.path}.")
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._refuse(conn, http.HTTPStatus.UNAUTHORIZED, "invalid_api_key",
                                "You didn't provide an API key (Authorization: Bearer <key>).")
        query = parse_qs(url.query)
        if not query.get("model", [""])[0] and "call_id" not in query:
            return self._refuse(conn, http.HTTPStatus.BAD_REQUEST, "missing_model",
                                "The 'model' query parameter is required.")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        self.requests.append(request)
        model = parse_qs(urlsplit(request.path).query).get("model", ["gpt-realtime"])[0]
        session = _Session(self, ws, model)
        if request.headers.get("OpenAI-Beta", "").strip().lower() == "realtime=v1":
            await session.refuse_beta()
            return
        await session.run()


def main(argv: list[str] | None = None) -> None:
    """``python -m telcoflow.testing.openai_fake``: serve the fake until interrupted."""
    import argparse

    from ..audio.synth import speech_like, to_int16, tts, tts_available
    from ..audio.wav import read_wav

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--say", default="Hello, this is the fake OpenAI Realtime server.",
                        help="the reply's transcript (spoken with eSpeak NG when available)")
    parser.add_argument("--wav", help="reply audio from a WAV file (resampled to 24 kHz)")
    parser.add_argument("--pace", type=float, default=1.0, help="times real time; 0: at once")
    args = parser.parse_args(argv)
    if args.wav:
        pcm, rate = read_wav(args.wav)
        audio = np.frombuffer(resample(pcm, rate, 24000), dtype="<i2").astype(np.int16)
    elif tts_available():
        audio = tts(args.say, rate=24000)
    else:
        audio = to_int16(speech_like(2.0, 24000))
    script = FakeScript(reply_audio=audio, reply_transcript=args.say, pace=args.pace)

    async def serve_forever() -> None:
        async with FakeRealtimeServer(script, port=args.port) as server:
            print(f"OpenAI Realtime fake on {server.websocket_base_url} "
                  f"(OPENAI_BASE_URL={server.base_url}, any API key)", flush=True)
            await asyncio.Future()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever())


if __name__ == "__main__":
    main()
