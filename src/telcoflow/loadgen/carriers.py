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
import secrets
import urllib.parse
import urllib.request
from time import perf_counter

from ..protocol import audiocodes as ac
from ..protocol import twilio as tw
from ..sdk.wsconn import open_ws
from .agent import caller_number
from .phones import BenchPhone, _settle

# the AudioCodes media format for each bench codec and rate
VAIC_FORMATS = {("pcmu", 8000): "raw/mulaw", ("pcm16", 8000): "raw/lpcm16_8",
                ("pcm16", 16000): "raw/lpcm16", ("pcm16", 24000): "raw/lpcm16_24"}


class BenchTwilio(BenchPhone):
    """A Twilio Media Stream: the signed webhook, then μ-law 8 kHz in JSON."""

    def __init__(self, index: int, codec: str = "pcmu", rate: int = 8000) -> None:
        super().__init__(index, "pcmu", 8000)
        self._sid = "MZ" + secrets.token_hex(16)
        self._call_sid = "CA" + secrets.token_hex(16)
        self._seq = 0

    async def call(self, url: str, key: str, number: str, timeout: float) -> None:
        http = url.replace("ws", "http", 1).rstrip("/")
        self.events["dial"] = perf_counter()
        params = {"CallSid": self._call_sid, "AccountSid": ACCOUNT_SID,
                  "From": caller_number(self.index), "To": number, "CallStatus": "ringing",
                  "Direction": "inbound"}
        stream_url, custom = await asyncio.to_thread(_webhook, http + tw.VOICE_PATH, key, params)
        self._ws = await open_ws(stream_url, {}, self, max_size=1 << 16)
        _settle(self._ringing)
        self.events["ringing"] = perf_counter()
        self._send(tw.build_connected())
        self._send(tw.build_start(self._next(), tw.StartSpec(self._sid, ACCOUNT_SID,
                                                             self._call_sid, custom)))
        async with asyncio.timeout(timeout):
            await self._answered

    def send(self, seq: int) -> None:
        ws = self._ws
        if ws is None or not ws.is_open or self.hangup_reason is not None:
            return
        frame = self._frame(0, self.index, seq, self.samples)
        self._send(tw.build_inbound_media(self._next(), self._sid, seq + 1, seq * 20, frame))
        self.sent_t.append(perf_counter())

    async def hangup(self) -> None:
        ws = self._ws
        if ws is not None and ws.is_open:
            self._send(tw.build_stop(self._next(), self._sid, ACCOUNT_SID, self._call_sid))
            await ws.close()

    def ws_text(self, data: bytes) -> None:
        event = tw.parse_outbound(data)
        if isinstance(event, tw.OutMedia):
            self.ws_binary(event.payload)
        elif isinstance(event, tw.Clear):  # Twilio drops what it holds: silence now
            self.ws_binary(self._silence)
        else:  # a mark, played at once: this caller has no playout queue
            if event.name == tw.ANSWERED_MARK and not self._answered.done():
                self.events["answered"] = perf_counter()
                _settle(self._answered)
            self._send(tw.build_mark_echo(self._next(), self._sid, event.name))

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _send(self, text: str) -> None:
        ws = self._ws
        if ws is not None and ws.is_open:
            ws.send_text(text)


class BenchVaic(BenchPhone):
    """An AudioCodes VoiceAI Connect conversation: PCM16 or μ-law in JSON chunks."""

    def __init__(self, index: int, codec: str, rate: int) -> None:
        super().__init__(index, codec, rate)
        self._format = VAIC_FORMATS[(codec, rate)]
        self._cid = secrets.token_hex(12)

    async def call(self, url: str, key: str, number: str, timeout: float) -> None:
        self.events["dial"] = perf_counter()
        self._ws = await open_ws(url.rstrip("/") + ac.AUDIOCODES_PATH,
                                 {"Authorization": f"Bearer {key}"}, self, max_size=1 << 20)
        _settle(self._ringing)
        self.events["ringing"] = perf_counter()
        self._send(ac.vaic_session_initiate(self._cid, number, caller_number(self.index),
                                            [self._format]))
        async with asyncio.timeout(timeout):
            await self._answered
        self._send(ac.vaic_user_stream_start(self._cid))

    def send(self, seq: int) -> None:
        ws = self._ws
        if ws is None or not ws.is_open or self.hangup_reason is not None:
            return
        frame = self._frame(0, self.index, seq, self.samples)
        self._send(ac.vaic_user_stream_chunk(self._cid, frame))
        self.sent_t.append(perf_counter())

    async def hangup(self) -> None:
        ws = self._ws
        if ws is not None and ws.is_open:
            self._send(ac.vaic_user_stream_stop(self._cid))
            self._send(ac.vaic_session_end(self._cid, reason="bench caller hung up"))
            await ws.close()

    def ws_text(self, data: bytes) -> None:
        message = ac.parse_bot_text(data)
        if isinstance(message, ac.PlayChunk):
            self.ws_binary(message.audio)
        elif isinstance(message, ac.PlayStop):  # VAIC drops the rest of the stream: silence
            self.ws_binary(self._silence)
        elif isinstance(message, ac.Accepted):
            self.events["answered"] = perf_counter()
            _settle(self._answered)
        elif isinstance(message, ac.Refused):
            self._fail(f"session.error: {message.reason}")

    def _send(self, text: str) -> None:
        ws = self._ws
        if ws is not None and ws.is_open:
            ws.send_text(text)


ACCOUNT_SID = "AC" + "0" * 32


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
        return tw.parse_stream_twiml(response.read())
