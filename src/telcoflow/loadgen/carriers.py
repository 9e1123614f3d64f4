"""The bench's callers through the cloud carriers' doors: Twilio and AudioCodes.

Each is a :class:`~.phones.BenchPhone` (same marked frames, same timing and
classification of what it hears) that wraps its frames the way the carrier
does: base64 in JSON text frames. So ``telcoflow bench --via twilio`` and
``--via audiocodes`` measure what that wrapping costs the gateway, beside
the simulated phone's binary frames. The carriers send nothing when the agent
is silent (the phone gets a silence frame per tick): Twilio's ``clear`` and
AudioCodes' ``playStream.stop`` count as the silence heard, for the
interrupt time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import urllib.parse
import urllib.request
from time import perf_counter
from xml.etree import ElementTree

from ..sdk.wsconn import open_ws
from .agent import caller_number
from .phones import BenchPhone, _settle

TWILIO_VOICE_PATH = "/v1/twilio/voice"
AUDIOCODES_PATH = "/v1/audiocodes"
# the AudioCodes media format for each bench codec and rate
VAIC_FORMATS = {("pcmu", 8000): "raw/mulaw", ("pcm16", 8000): "raw/lpcm16_8",
                ("pcm16", 16000): "raw/lpcm16", ("pcm16", 24000): "raw/lpcm16_24"}


class BenchTwilio(BenchPhone):
    """A Twilio Media Stream: the signed webhook, then μ-law 8 kHz in JSON."""

    def __init__(self, index: int, codec: str = "pcmu", rate: int = 8000) -> None:
        super().__init__(index, "pcmu", 8000)
        self._sid = "MZ" + secrets.token_hex(16)
        self._seq = 0

    async def call(self, url: str, key: str, number: str, timeout: float) -> None:
        http = url.replace("ws", "http", 1).rstrip("/")
        self.events["dial"] = perf_counter()
        params = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32,
                  "From": caller_number(self.index), "To": number, "CallStatus": "ringing",
                  "Direction": "inbound"}
        stream_url, custom = await asyncio.to_thread(_webhook, http + TWILIO_VOICE_PATH,
                                                     key, params)
        self._ws = await open_ws(stream_url, {}, self, max_size=1 << 16)
        _settle(self._ringing)
        self.events["ringing"] = perf_counter()
        self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self._send({"event": "start", "streamSid": self._sid, "start": {
            "streamSid": self._sid, "accountSid": params["AccountSid"],
            "callSid": params["CallSid"], "tracks": ["inbound"], "customParameters": custom,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        async with asyncio.timeout(timeout):
            await self._answered

    def send(self, seq: int) -> None:
        ws = self._ws
        if ws is None or not ws.is_open or self.hangup_reason is not None:
            return
        payload = base64.b64encode(self._frame(0, self.index, seq, self.samples)).decode()
        self._send({"event": "media", "streamSid": self._sid, "media": {
            "track": "inbound", "chunk": str(seq + 1), "timestamp": str(seq * 20),
            "payload": payload}})
        self.sent_t.append(perf_counter())

    async def hangup(self) -> None:
        ws = self._ws
        if ws is not None and ws.is_open:
            self._send({"event": "stop", "streamSid": self._sid, "stop": {}})
            await ws.close()

    def ws_text(self, data: bytes) -> None:
        message = json.loads(data)
        event = message.get("event")
        if event == "media":
            self.ws_binary(base64.b64decode(message["media"]["payload"]))
        elif event == "clear":  # Twilio drops what it holds: the caller hears silence now
            self.ws_binary(self._silence)
        elif event == "mark":  # played at once: this caller has no playout queue
            name = message["mark"]["name"]
            if name == "answered" and not self._answered.done():
                self.events["answered"] = perf_counter()
                _settle(self._answered)
            self._send({"event": "mark", "streamSid": self._sid, "mark": {"name": name}})

    def _send(self, message: dict[str, object]) -> None:
        ws = self._ws
        if ws is not None and ws.is_open:
            self._seq += 1
            message["sequenceNumber"] = str(self._seq)
            ws.send_text(json.dumps(message, separators=(",", ":")))


class BenchVaic(BenchPhone):
    """An AudioCodes VoiceAI Connect conversation: PCM16 or μ-law in JSON chunks."""

    def __init__(self, index: int, codec: str, rate: int) -> None:
        super().__init__(index, codec, rate)
        self._format = VAIC_FORMATS[(codec, rate)]
        self._conversation = secrets.token_hex(12)

    async def call(self, url: str, key: str, number: str, timeout: float) -> None:
        self.events["dial"] = perf_counter()
        self._ws = await open_ws(url.rstrip("/") + AUDIOCODES_PATH,
                                 {"Authorization": f"Bearer {key}"}, self, max_size=1 << 20)
        _settle(self._ringing)
        self.events["ringing"] = perf_counter()
        self._send({"type": "session.initiate", "botName": number,
                    "caller": caller_number(self.index), "expectAudioMessages": True,
                    "supportedMediaFormats": [self._format]})
        async with asyncio.timeout(timeout):
            await self._answered
        self._send({"type": "userStream.start"})

    def send(self, seq: int) -> None:
        ws = self._ws
        if ws is None or not ws.is_open or self.hangup_reason is not None:
            return
        chunk = base64.b64encode(self._frame(0, self.index, seq, self.samples)).decode()
        self._send({"type": "userStream.chunk", "audioChunk": chunk})
        self.sent_t.append(perf_counter())

    async def hangup(self) -> None:
        ws = self._ws
        if ws is not None and ws.is_open:
            self._send({"type": "userStream.stop"})
            self._send({"type": "session.end", "reasonCode": "client-disconnected",
                        "reason": "bench caller hung up"})
            await ws.close()

    def ws_text(self, data: bytes) -> None:
        message = json.loads(data)
        kind = message.get("type")
        if kind == "playStream.chunk":
            self.ws_binary(base64.b64decode(message["audioChunk"]))
        elif kind == "playStream.stop":  # VAIC drops the rest of the stream: silence now
            self.ws_binary(self._silence)
        elif kind == "session.accepted":
            self.events["answered"] = perf_counter()
            _settle(self._answered)
        elif kind == "session.error":
            self._fail(f"session.error: {message.get('reason')}")

    def _send(self, message: dict[str, object]) -> None:
        ws = self._ws
        if ws is not None and ws.is_open:
            message["conversationId"] = self._conversation
            ws.send_text(json.dumps(message, separators=(",", ":")))


def _webhook(url: str, auth_token: str, params: dict[str, str]) -> tuple[str, dict[str, str]]:
    """POST Twilio's voice webhook, signed as Twilio signs it; the TwiML's stream URL
    and its parameters."""
    from twilio.request_validator import RequestValidator
    signature = RequestValidator(auth_token).compute_signature(url, params)
    request = urllib.request.Request(url, urllib.parse.urlencode(params).encode(), method="POST",
                                     headers={"X-Twilio-Signature": signature,
                                              "Content-Type":
                                                  "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (our URL)
        twiml = ElementTree.fromstring(response.read())
    stream = twiml.find("./Connect/Stream")
    if stream is None:
        raise ConnectionError("the voice webhook's TwiML has no <Connect><Stream>")
    custom = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), custom
