"""A local fake of the Gemini Live API (``BidiGenerateContent`` over WebSocket).

For tests and key-less trials: it speaks the documented wire protocol
(docs/ai-backends.md, ``../shared/spec/bridge-protocols.md`` sections 4-5)
closely enough that the official ``google-genai`` SDK drives it unchanged::

    async with FakeLiveServer(LiveScript(reply_audio=pcm24k)) as server:
        client = genai.Client(api_key="any", http_options=server.http_options())
        async with client.aio.live.connect(model="gemini-live-2.5-flash-preview") as s:
            ...

What the fake does, as the real service does it:

- TLS on 127.0.0.1 with a self-signed certificate made at start (the SDK
  always dials ``wss://`` when given an API key); ``ca_file`` and
  ``ssl_context()`` let clients trust it.
- The SDK's path ``/ws/google.ai.generativelanguage.{v1,v1beta,v1alpha}.
  GenerativeService.BidiGenerateContent[Constrained]``; any other path gets 404.
- A credential: header ``x-goog-api-key``, ``?key=`` or ``Authorization: Token``.
  None: close 1008; a wrong one (when ``api_key=`` is set): close 1007.
- The first message must be ``setup`` (unknown fields, a missing ``models/``
  model or a non-AUDIO modality close the socket with 1007 and a reason),
  answered by ``setupComplete``.
- Keys are accepted in camelCase or snake_case, as protobuf JSON does (the SDK
  sends ``realtime_input``, ``tool_response``, ``client_content``).
- Server VAD: energy-based, on the PCM16 of ``realtimeInput.audio`` (or the
  legacy ``mediaChunks`` that ADK sends) at the rate
  of its mimeType, counted in audio time (so tests need no sleeps). Speech
  then ``silence_ms`` of silence (or ``audioStreamEnd``, or ``activityEnd``
  with manual VAD) ends the user's turn; ``clientContent`` with
  ``turnComplete`` also asks for a reply. Speech (or ``activityStart``)
  during a reply sends ``serverContent.interrupted`` and stops it, unless
  ``activityHandling`` is ``NO_INTERRUPTION``.
- The reply: after ``reply_delay_ms``, optionally a ``toolCall`` answered by
  ``toolResponse`` with the same id (speech meanwhile: ``toolCallCancellation``);
  a 2.x model ends its turn there (``turnComplete``), a ``gemini-3`` one does not
  until the response came (ADK relies on both behaviours); then ``reply_audio``
  as ``modelTurn`` inlineData chunks paced at real time times ``pace``,
  ``outputTranscription`` / ``inputTranscription`` if the setup asked for them
  and the script has text, ``generationComplete``, and
  ``turnComplete`` with ``usageMetadata``.
- Faults: ``go_away_after_ms`` (``goAway`` then close 1000),
  ``drop_after_ms`` (TCP abort, no close frame), ``stall`` (no reply, ever),
  ``garbage`` (a text frame that is not a message, instead of the reply),
  ``reply_mime`` (the reply labelled with another MIME type).

Everything received is kept, keys in camelCase, in ``server.received``;
``await server.wait_for(predicate)`` waits for a message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ipaddress
import json
import math
import re
import ssl
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["FakeLiveServer", "LiveScript", "LIVE_PATH_RE", "tone"]

OUTPUT_RATE = 24_000
OUTPUT_MIME = "audio/pcm;rate=24000"
LIVE_PATH_RE = re.compile(
    r"^/+ws/google\.ai\.generativelanguage\.(v1|v1beta|v1alpha)\."
    r"GenerativeService\.(BidiGenerateContent|BidiGenerateContentConstrained)$"
)

# Fields the service knows (camelCase); anything else in a setup is refused like
# protobuf JSON refuses it: 1007 'Invalid JSON payload received. Unknown name ...'.
_SETUP_FIELDS = frozenset({
    "model", "generationConfig", "systemInstruction", "tools", "realtimeInputConfig",
    "sessionResumption", "contextWindowCompression", "inputAudioTranscription",
    "outputAudioTranscription", "proactivity", "explicitVadSignal", "historyConfig",
    "avatarConfig", "safetySettings",
})
_CLIENT_MESSAGES = frozenset({"setup", "clientContent", "realtimeInput", "toolResponse"})
_REALTIME_FIELDS = frozenset({
    "audio", "audioStreamEnd", "activityStart", "activityEnd", "text", "video", "mediaChunks",
})
# User data whose keys are the user's own, never renamed.
_OPAQUE = frozenset({"args", "response", "properties", "parametersJsonSchema",
                     "responseJsonSchema", "labels"})


def tone(seconds: float = 0.5, freq: float = 440.0, rate: int = OUTPUT_RATE,
         level: float = 0.3) -> np.ndarray:
    """A sine tone as PCM16 (the default reply, and a handy 'speech' for tests)."""
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype(np.int16)


@dataclass
class LiveScript:
    """What the fake model does. Times are milliseconds; audio is PCM16 mono."""

    reply_audio: np.ndarray = field(default_factory=tone)  # 24 kHz, int16
    reply_delay_ms: float = 200.0      # end of the user's turn → first reply chunk
    reply_text: str | None = None      # outputTranscription (if the setup asks for it)
    input_text: str | None = None      # inputTranscription (if the setup asks for it)
    tool_call: tuple[str, dict[str, Any]] | None = None  # (name, args): on the first turn
    chunk_ms: float = 40.0             # audio per modelTurn message
    pace: float = 1.0                  # 1: real time; 10: ten times faster; inf: unpaced
    # Server VAD on the input audio (audio time, not wall time).
    speech_threshold: float = 500.0    # RMS of a 20 ms frame, in PCM16 units (about -36 dBFS)
    speech_start_ms: float = 40.0      # voiced audio needed to start speech
    silence_ms: float = 500.0          # unvoiced audio that ends it
    # Faults, from setupComplete.
    go_away_after_ms: float | None = None
    go_away_time_left_ms: float = 50.0  # goAway.timeLeft, then the socket closes
    drop_after_ms: float | None = None
    stall: bool = False                # never answer (the socket stays open, input is read)
    garbage: str | None = None         # sent as a text frame instead of the reply
    session_id: str | None = None      # sent in setupComplete if set
    reply_mime: str = OUTPUT_MIME      # a fault when changed: the label, not the bytes


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def normalize(obj: Any) -> Any:
    """snake_case keys → camelCase, recursively, leaving user data alone."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            ck = _camel(k) if isinstance(k, str) else k
            out[ck] = v if ck in _OPAQUE else normalize(v)
        return out
    if isinstance(obj, list):
        return [normalize(x) for x in obj]
    return obj


def b64decode(data: str) -> bytes:
    """Standard or URL-safe base64, padded or not (the SDK sends URL-safe)."""
    s = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def _rate_of(mime: str) -> int | None:
    parts = [p.strip() for p in mime.split(";")]
    if parts[0].lower() not in ("audio/pcm", "audio/l16"):
        return None
    for p in parts[1:]:
        if p.startswith("rate="):
            try:
                return int(p[5:])
            except ValueError:
                return None
    return 16_000


def _duration(ms: float) -> str:
    return f"{ms / 1000:.3f}s"


def _make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (also its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "telcoflow gemini fake")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_file, key_file


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason


class _Session:
    """One connection: the setup, the VAD, the reply task."""

    def __init__(self, server: FakeLiveServer, ws: ServerConnection) -> None:
        self.server, self.ws, self.script = server, ws, server.script
        self.setup: dict[str, Any] = {}
        self.in_speech = False
        self.voiced_ms = 0.0
        self.silent_ms = 0.0
        self.turns = 0
        self.reply: asyncio.Task[None] | None = None
        self.pending_tool: tuple[str, asyncio.Future[dict[str, Any]]] | None = None
        self.tasks: list[asyncio.Task[None]] = []

    # --- sending -------------------------------------------------------------------
    async def send(self, msg: dict[str, Any]) -> None:
        self.server.sent.append(msg)
        await self.ws.send(json.dumps(msg))

    # --- main loop -----------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._serve()
        except _Close as c:
            reason = c.reason.encode()[:123].decode(errors="ignore")  # a close frame's limit
            await self.ws.close(c.code, reason)
        except ConnectionClosed:
            pass
        finally:
            for t in [*self.tasks, *([self.reply] if self.reply else [])]:
                t.cancel()
            for t in self.tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _serve(self) -> None:
        first = await self._recv()  # the service reads the setup before refusing a key
        self._check_auth()
        if "setup" not in first:
            raise _Close(1007, "The first message must be a setup message.")
        self._check_setup(first["setup"])
        self.setup = first["setup"]
        self.server.setups.append(self.setup)
        done: dict[str, Any] = {}
        if self.script.session_id:
            done["sessionId"] = self.script.session_id
        await self.send({"setupComplete": done})
        if self.script.go_away_after_ms is not None:
            self.tasks.append(asyncio.create_task(self._go_away(self.script.go_away_after_ms)))
        if self.script.drop_after_ms is not None:
            self.tasks.append(asyncio.create_task(self._drop(self.script.drop_after_ms)))
        while True:
            msg = await self._recv()
            await self._handle(msg)

    async def _recv(self) -> dict[str, Any]:
        raw = await self.ws.recv()
        try:
            parsed: Any = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise _Close(1007, f"Invalid JSON payload received. {e}") from None
        if not isinstance(parsed, dict):
            raise _Close(1007, "Invalid JSON payload received. Expected an object.")
        self.server.received_raw.append(raw if isinstance(raw, str) else raw.decode())
        msg: dict[str, Any] = normalize(parsed)
        self.server._record(msg)
        unknown = set(msg) - _CLIENT_MESSAGES
        if unknown:
            raise _Close(1007, f'Invalid JSON payload received. Unknown name "{min(unknown)}":'
                         " Cannot find field.")
        if len(msg) != 1:
            raise _Close(1007, "Invalid JSON payload received. A message must set exactly one of"
                         " setup, clientContent, realtimeInput, toolResponse.")
        return msg

    def _check_auth(self) -> None:
        req = self.ws.request
        assert req is not None
        key = req.headers.get("x-goog-api-key", "").strip()
        query = parse_qs(urlsplit(req.path).query)
        key = key or (query.get("key") or [""])[0].strip()
        auth = req.headers.get("Authorization", "")
        token = auth[6:].strip() if auth.startswith("Token ") else ""
        if not key and not token:
            raise _Close(1008, "Method doesn't allow unregistered callers. Please use API Key"
                         " or other form of API consumer identity to call this API.")
        expected = self.server.api_key
        if key and expected is not None and key != expected:
            raise _Close(1007, "API key not valid. Please pass a valid API key.")

    def _check_setup(self, setup: Any) -> None:
        if not isinstance(setup, dict):
            raise _Close(1007, "Invalid JSON payload received. setup must be an object.")
        unknown = set(setup) - _SETUP_FIELDS
        if unknown:
            raise _Close(1007, f'Invalid JSON payload received. Unknown name "{min(unknown)}"'
                         " at 'setup': Cannot find field.")
        model = setup.get("model")
        if not isinstance(model, str) or not model.startswith("models/") or model == "models/":
            raise _Close(1007, f"Request contains an invalid argument: model {model!r}"
                         " must be of the form models/{model}.")
        if self.server.models is not None and model.removeprefix("models/") not in \
                self.server.models:
            raise _Close(1008, f"{model} is not found for API version v1, or is not"
                         " supported for bidiGenerateContent.")
        modalities = (setup.get("generationConfig") or {}).get("responseModalities")
        if modalities is not None and [str(m).upper() for m in modalities] != ["AUDIO"]:
            raise _Close(1007, "Request contains an invalid argument: this fake model"
                         " answers with responseModalities [AUDIO] only.")

    # --- client messages ----------------------------------------------------------
    @property
    def _manual_vad(self) -> bool:
        ric = self.setup.get("realtimeInputConfig") or {}
        return bool((ric.get("automaticActivityDetection") or {}).get("disabled"))

    @property
    def _barge_in(self) -> bool:
        ric = self.setup.get("realtimeInputConfig") or {}
        return ric.get("activityHandling") != "NO_INTERRUPTION"

    async def _handle(self, msg: dict[str, Any]) -> None:
        if "setup" in msg:
            raise _Close(1007, "setup must be the first message only.")
        if "realtimeInput" in msg:
            await self._realtime(msg["realtimeInput"])
        elif "clientContent" in msg:
            if msg["clientContent"].get("turnComplete"):
                await self._end_of_turn()
        elif "toolResponse" in msg:
            for fr in msg["toolResponse"].get("functionResponses") or []:
                if self.pending_tool and fr.get("id") == self.pending_tool[0]:
                    fut = self.pending_tool[1]
                    if not fut.done():
                        fut.set_result(fr)

    async def _realtime(self, ri: dict[str, Any]) -> None:
        unknown = set(ri) - _REALTIME_FIELDS
        if unknown:
            raise _Close(1007, f'Invalid JSON payload received. Unknown name "{min(unknown)}"'
                         " at 'realtime_input': Cannot find field.")
        if len(ri) != 1:
            raise _Close(1007, "realtimeInput must set exactly one field.")
        blobs = [ri["audio"]] if "audio" in ri else list(ri.get("mediaChunks") or [])
        for blob in blobs:
            await self._audio(blob)
        if "activityStart" in ri:
            if not self._manual_vad:
                raise _Close(1007, "activityStart needs automaticActivityDetection.disabled.")
            await self._speech_started()
        elif "activityEnd" in ri:
            if not self._manual_vad:
                raise _Close(1007, "activityEnd needs automaticActivityDetection.disabled.")
            await self._speech_ended()
        elif "audioStreamEnd" in ri:
            if self._manual_vad:
                raise _Close(1007, "audioStreamEnd needs automatic activity detection.")
            if self.in_speech:
                await self._speech_ended()

    async def _audio(self, blob: dict[str, Any]) -> None:
        mime = str(blob.get("mimeType", ""))
        rate = _rate_of(mime)
        if rate is None or not 8000 <= rate <= 48000:
            raise _Close(1007, f"Unsupported audio mimeType {mime!r}: send audio/pcm;rate=16000.")
        try:
            pcm = b64decode(str(blob.get("data", "")))
        except ValueError:
            raise _Close(1007, "Invalid value at 'realtime_input.audio.data' (TYPE_BYTES),"
                         " Base64 decoding failed.") from None
        if len(pcm) % 2:
            raise _Close(1007, "PCM16 audio must be a whole number of samples.")
        self.server.audio_in.extend(pcm)
        if self._manual_vad:
            return
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        frame = max(1, rate // 50)  # 20 ms
        for start in range(0, len(samples), frame):
            chunk = samples[start:start + frame]
            ms = 1000.0 * len(chunk) / rate
            voiced = float(np.sqrt(np.mean(chunk * chunk))) >= self.script.speech_threshold
            if voiced:
                self.voiced_ms += ms
                self.silent_ms = 0.0
                if not self.in_speech and self.voiced_ms >= self.script.speech_start_ms:
                    await self._speech_started()
            else:
                self.voiced_ms = 0.0
                if self.in_speech:
                    self.silent_ms += ms
                    if self.silent_ms >= self.script.silence_ms:
                        await self._speech_ended()

    async def _speech_started(self) -> None:
        self.in_speech = True
        self.silent_ms = 0.0
        self.server.events.append("speech_started")
        if self.pending_tool is not None:
            call_id, fut = self.pending_tool
            if not fut.done():
                fut.cancel()
                await self.send({"toolCallCancellation": {"ids": [call_id]}})
        if self.reply is not None and not self.reply.done() and self._barge_in:
            self.reply.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reply
            self.reply = None
            self.server.events.append("interrupted")
            await self.send({"serverContent": {"interrupted": True}})

    async def _speech_ended(self) -> None:
        self.in_speech = False
        self.voiced_ms = self.silent_ms = 0.0
        self.server.events.append("speech_ended")
        await self._end_of_turn()

    async def _end_of_turn(self) -> None:
        if self.reply is not None and not self.reply.done():
            if not self._barge_in:
                return  # NO_INTERRUPTION: the current reply goes on
            self.reply.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reply
            self.server.events.append("interrupted")
            await self.send({"serverContent": {"interrupted": True}})
        self.turns += 1
        self.reply = asyncio.create_task(self._reply(self.turns))

    # --- the model's turn ---------------------------------------------------------
    async def _reply(self, turn: int) -> None:
        if self.script.stall:
            self.server.events.append("stalled")
            return
        with contextlib.suppress(ConnectionClosed):  # the client left mid-reply
            await self._speak(turn)

    async def _speak(self, turn: int) -> None:
        s = self.script
        if s.input_text and "inputAudioTranscription" in self.setup:
            await self.send({"serverContent": {"inputTranscription": {"text": s.input_text}}})
        await asyncio.sleep(s.reply_delay_ms / 1000)
        if s.garbage is not None:
            self.server.events.append("garbage")
            await self.ws.send(s.garbage)
            return
        if s.tool_call is not None and turn == 1:
            name, args = s.tool_call
            call_id = f"function-call-{uuid.uuid4().hex[:16]}"
            fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self.pending_tool = (call_id, fut)
            await self.send({"toolCall": {"functionCalls": [
                {"id": call_id, "name": name, "args": args}]}})
            if "gemini-3" not in str(self.setup.get("model", "")):
                await self.send({"serverContent": {"turnComplete": True}})
            try:
                await fut
            finally:
                self.pending_tool = None
        self.server.events.append("reply_started")
        audio = np.ascontiguousarray(s.reply_audio, dtype="<i2")
        step = max(1, int(OUTPUT_RATE * s.chunk_ms / 1000))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i, start in enumerate(range(0, len(audio), step)):
            if math.isfinite(s.pace) and i:
                delay = t0 + i * s.chunk_ms / 1000 / s.pace - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            data = base64.b64encode(audio[start:start + step].tobytes()).decode()
            await self.send({"serverContent": {"modelTurn": {"parts": [
                {"inlineData": {"mimeType": s.reply_mime, "data": data}}]}}})
            if i == 0 and s.reply_text and "outputAudioTranscription" in self.setup:
                await self.send({"serverContent": {"outputTranscription": {"text": s.reply_text}}})
        await self.send({"serverContent": {"generationComplete": True}})
        if math.isfinite(s.pace):  # the last chunk's playback time
            end = t0 + len(audio) / OUTPUT_RATE / s.pace
            await asyncio.sleep(max(0.0, end - loop.time()))
        out_tokens = max(1, len(audio) * 25 // OUTPUT_RATE)
        self.server.events.append("reply_done")
        await self.send({"serverContent": {"turnComplete": True}, "usageMetadata": {
            "promptTokenCount": 10 * turn, "responseTokenCount": out_tokens,
            "totalTokenCount": 10 * turn + out_tokens,
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": out_tokens}]}})

    # --- faults -------------------------------------------------------------------
    async def _go_away(self, after_ms: float) -> None:
        await asyncio.sleep(after_ms / 1000)
        left = self.script.go_away_time_left_ms
        await self.send({"goAway": {"timeLeft": _duration(left)}})
        await asyncio.sleep(left / 1000)
        self.server.events.append("go_away_closed")
        await self.ws.close(1000, "Session time limit reached.")

    async def _drop(self, after_ms: float) -> None:
        await asyncio.sleep(after_ms / 1000)
        self.server.events.append("dropped")
        self.ws.transport.abort()


class FakeLiveServer:
    """The fake service; ``async with FakeLiveServer(script) as server:``.

    ``api_key``: if set, the only key accepted (others close with 1007); if None,
    any non-empty key. ``models``: if set, the model ids accepted.
    """

    def __init__(self, script: LiveScript | None = None, *, api_key: str | None = None,
                 models: set[str] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.script = script or LiveScript()
        self.api_key = api_key
        self.models = models
        self.host, self.port = host, port
        self.received: list[dict[str, Any]] = []  # client messages, keys in camelCase
        self.received_raw: list[str] = []         # the same, as the client sent them
        self.sent: list[dict[str, Any]] = []      # server messages
        self.setups: list[dict[str, Any]] = []
        self.events: list[str] = []               # speech_started, interrupted, reply_done...
        self.audio_in = bytearray()               # every PCM16 byte received, all rates
        self.requests: list[Request] = []         # the handshakes (path, headers)
        self.ca_file: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: Server | None = None
        self._changed = asyncio.Event()

    # --- addresses ---------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """What to give ``genai.Client(http_options={"base_url": ...})``."""
        return f"https://{self.host}:{self.port}"

    path = "/ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent"

    @property
    def url(self) -> str:
        """The full WebSocket URL the SDK (v1, API key) dials."""
        return f"wss://{self.host}:{self.port}{self.path}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate."""
        assert self.ca_file is not None, "the server is not started"
        return ssl.create_default_context(cafile=str(self.ca_file))

    def http_options(self, **extra: Any) -> dict[str, Any]:
        """``genai.Client(api_key=..., http_options=server.http_options())``."""
        return {"base_url": self.base_url, "async_client_args": {"ssl": self.ssl_context()},
                **extra}

    def env(self) -> dict[str, str]:
        """Environment that points an unchanged google-genai program here (any API key)."""
        assert self.ca_file is not None, "the server is not started"
        return {"GOOGLE_GEMINI_BASE_URL": self.base_url, "SSL_CERT_FILE": str(self.ca_file)}

    # --- lifecycle ---------------------------------------------------------------
    async def start(self) -> FakeLiveServer:
        self._tmp = tempfile.TemporaryDirectory(prefix="gemini-fake-")
        cert, key = _make_cert(Path(self._tmp.name))
        self.ca_file = cert
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self._server = await serve(self._handler, self.host, self.port, ssl=ctx,
                                   process_request=self._process_request,
                                   max_size=16 * 2**20, ping_interval=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> FakeLiveServer:
        return await self.start()

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # --- observation -------------------------------------------------------------
    def _record(self, msg: dict[str, Any]) -> None:
        self.received.append(msg)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[dict[str, Any]], Any],
                       timeout: float = 5.0) -> dict[str, Any]:
        """The first received message (past or future) for which ``predicate`` is true."""
        async def scan() -> dict[str, Any]:
            seen = 0
            while True:
                for msg in self.received[seen:]:
                    if predicate(msg):
                        return msg
                seen = len(self.received)
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(scan(), timeout)

    # --- connection --------------------------------------------------------------
    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        if not LIVE_PATH_RE.match(urlsplit(request.path).path):
            body = b"404. That's an error. The requested URL was not found on this server.\n"
            return Response(404, "Not Found", Headers([("Content-Type", "text/plain"),
                                                       ("Content-Length", str(len(body)))]),
                            body)
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        await _Session(self, ws).run()


async def _main(port: int, seconds: float, pace: float) -> None:
    async with FakeLiveServer(LiveScript(reply_audio=tone(seconds), pace=pace),
                              port=port) as server:
        print(f"Gemini Live fake on {server.url}")
        for k, v in server.env().items():
            print(f"export {k}={v}")
        print("export GEMINI_API_KEY=anything  # and unset GOOGLE_GENAI_USE_VERTEXAI", flush=True)
        await asyncio.Future()  # until Ctrl-C


def main(argv: list[str] | None = None) -> None:
    """``python -m telcoflow.testing.gemini_fake [--port N]``: a fake for key-less trials."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    ap.add_argument("--reply-seconds", type=float, default=1.0, help="the reply tone's length")
    ap.add_argument("--pace", type=float, default=1.0, help="reply speed, 1 = real time")
    args = ap.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.port, args.reply_seconds, args.pace))


if __name__ == "__main__":
    main()
