"""The QUIC agent client (docs/quic.md)::

    async with QuicAgent("127.0.0.1", 4433, api_key, connector_uuid,
                         fingerprint=fp) as agent:
        await agent.subscribe(codec="PCM16", sample_rate=16000)
        async for event in agent.events():          # every call's CallEvents
            if event.kind == CallEvent.Kind.INCOMING:
                call = agent.call(event.call_sid)
                await call.answer()
                async for frame in call.audio():    # echo
                    call.send(frame.payload, frame.codec)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic import events as qe
from aioquic.quic.configuration import QuicConfiguration
from cryptography.hazmat.primitives.serialization import Encoding

from ..protocol import quic
from .call import QuicCall
from .codes import ALPN, AUTH_SCHEME, ErrorCode

Command = quic.CallCommand.Command


class QuicAgentError(Exception):
    """A request the gateway refused (``code``), or a connection that failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class _Protocol(QuicConnectionProtocol):
    agent: QuicAgent | None = None

    def quic_event_received(self, event: qe.QuicEvent) -> None:
        if self.agent is not None:
            self.agent._on_quic_event(event)


class QuicAgent:
    def __init__(self, host: str, port: int, api_key: str, connector_uuid: str, *,
                 cafile: str | None = None, fingerprint: str | None = None,
                 insecure: bool = False, datagrams: bool = False,
                 server_name: str | None = None, timeout: float = 10.0) -> None:
        """``fingerprint``: the gateway certificate's SHA-256 (hex; ``telcoflow serve``
        prints it) to pin instead of verifying a chain; ``cafile``: a CA to verify with;
        ``insecure``: no check at all (tests on loopback). ``datagrams``: this client's
        audio rides QUIC DATAGRAMs (unreliable: a lost frame stays lost, as RTP) and so
        does the gateway's; by default both ride the calls' uni-streams."""
        self.host, self.port = host, port
        self._auth_line = f"{AUTH_SCHEME} {api_key} {connector_uuid}\n".encode()
        self._fingerprint = fingerprint.replace(":", "").lower() if fingerprint else None
        self._config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN],
                                         server_name=server_name or host,
                                         max_datagram_frame_size=65536 if datagrams else None)
        if cafile:
            self._config.load_verify_locations(cafile)
        if insecure or self._fingerprint:
            self._config.verify_mode = ssl.CERT_NONE
        self.timeout = timeout
        self.datagrams = datagrams
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.errors: list[quic.CallEvent] = []   # the subscription stream's ERROR events
        self.stopped: dict[int, int] = {}        # our stream id → the code it was stopped with
        self._calls: dict[str, QuicCall] = {}
        self._events: asyncio.Queue[quic.CallEvent | None] = asyncio.Queue()
        self._incoming: asyncio.Queue[QuicCall] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[quic.Message]] = {}
        self._readers: dict[int, quic.EnvelopeReader] = {}
        self._call_streams: dict[int, QuicCall] = {}   # gateway uni-stream → its call
        self._audio_streams: dict[int, QuicCall] = {}  # our uni-stream → its call
        self._stopped_news = asyncio.Event()
        self._authed = False
        self._auth_lock = asyncio.Lock()
        self._cm: AbstractAsyncContextManager[QuicConnectionProtocol] | None = None
        self._proto: QuicConnectionProtocol | None = None

    # ── connection ──────────────────────────────────────────────────────────
    async def __aenter__(self) -> QuicAgent:
        self._cm = connect(self.host, self.port, configuration=self._config,
                           create_protocol=_Protocol)
        assert self._cm is not None
        proto = await asyncio.wait_for(self._cm.__aenter__(), self.timeout)
        assert isinstance(proto, _Protocol)
        proto.agent, self._proto = self, proto
        if self._fingerprint is not None:
            self._check_fingerprint(proto)
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                        ) -> None:
        if self._cm is not None:
            cm, self._cm = self._cm, None
            await cm.__aexit__(None, None, None)
        self._connection_over()

    def _check_fingerprint(self, proto: QuicConnectionProtocol) -> None:
        cert = proto._quic.tls._peer_certificate
        got = cert.public_bytes(Encoding.DER) if cert is not None else b""
        if not hmac.compare_digest(hashlib.sha256(got).hexdigest(), self._fingerprint or ""):
            proto.close(error_code=int(ErrorCode.AUTH_FAILED), reason_phrase="certificate")
            raise QuicAgentError("CERTIFICATE_MISMATCH", "the gateway's certificate is not "
                                 "the pinned one: nothing was sent")

    @property
    def _quic(self) -> Any:
        assert self._proto is not None, "use 'async with QuicAgent(...)'"
        return self._proto._quic

    def _transmit(self) -> None:
        if self._proto is not None:
            self._proto.transmit()

    async def close(self, code: int = 0, reason: str = "") -> None:
        if self._proto is not None:
            self._proto.close(error_code=code, reason_phrase=reason)
            await self._proto.wait_closed()

    # ── requests ────────────────────────────────────────────────────────────
    async def subscribe(self, codec: str = "", sample_rate: int = 0,
                        auto_answer: bool = False) -> str:
        """Calls to the connector's numbers are offered here (``events()``); returns the
        subscription id. ``codec``/``sample_rate``: the frames this client wants (empty:
        the far end's G.711 at 8 kHz, else PCM16 at ``sample_rate`` or 16 kHz)."""
        response = await self.request(quic.EventStreamRequest(
            codec=codec, sample_rate=sample_rate, auto_answer=auto_answer))
        assert isinstance(response, quic.EventStreamResponse)
        if not response.ok:
            raise QuicAgentError(response.error_code, response.error_message)
        return response.subscription_id

    async def originate(self, to: str, from_: str = "",
                        default_app_args: Mapping[str, str] | None = None) -> str:
        """Place a call to ``to``; returns its call sid (events: RINGING, then ANSWERED or
        ENDED with the cause). ``default_app_args``: ``codec``, ``sample_rate``."""
        request = quic.OriginateRequest(to=to, default_app_args=dict(default_app_args or {}))
        setattr(request, "from", from_)
        response = await self.request(request)
        assert isinstance(response, quic.OriginateResponse)
        if not response.ok:
            raise QuicAgentError(response.error_code, response.error_message)
        self.call(response.call_sid)
        return response.call_sid

    async def command(self, call_sid: str, command: int, digits: str = "",
                      ring_time_s: int = 0) -> dict[str, Any]:
        response = await self.request(quic.CallCommand(
            call_sid=call_sid, command=command, digits=digits,  # type: ignore[arg-type]
            ring_time_s=ring_time_s))
        assert isinstance(response, quic.CallCommandResponse)
        if not response.ok:
            raise QuicAgentError(response.error_code, response.error_message)
        result: dict[str, Any] = json.loads(response.result_json or "{}")
        return result

    async def answer(self, call_sid: str) -> dict[str, Any]:
        return await self.command(call_sid, Command.ANSWER)

    async def hangup(self, call_sid: str) -> dict[str, Any]:
        return await self.command(call_sid, Command.HANGUP)

    async def request(self, message: quic.Message) -> quic.Message:
        """Send a request on a new bidirectional stream; its answer (an ``Error``
        answer raises :class:`QuicAgentError`)."""
        if self._authed:
            return await self._request(quic.encode(message))
        async with self._auth_lock:  # the first request carries the credentials
            prefix = b"" if self._authed else self._auth_line
            response = await self._request(prefix + quic.encode(message))
            self._authed = True
            return response

    async def _request(self, data: bytes) -> quic.Message:
        if self.closed.is_set():
            raise QuicAgentError("CLOSED", self.close_reason or "the connection is closed")
        stream_id = self._quic.get_next_available_stream_id()
        future: asyncio.Future[quic.Message] = asyncio.get_running_loop().create_future()
        self._pending[stream_id] = future
        self._quic.send_stream_data(stream_id, data, end_stream=True)
        self._transmit()
        response = await asyncio.wait_for(future, self.timeout)
        if isinstance(response, quic.Error):
            raise QuicAgentError(response.code, response.message)
        return response

    # ── calls ───────────────────────────────────────────────────────────────
    def call(self, call_sid: str) -> QuicCall:
        """The call ``call_sid`` (known from an event, or an originate)."""
        call = self._calls.get(call_sid)
        if call is None:
            call = self._calls[call_sid] = QuicCall(self, call_sid)
        return call

    async def events(self) -> AsyncIterator[quic.CallEvent]:
        """Every CallEvent of every call, and the subscription's own ERROR events, until
        the connection closes."""
        while (event := await self._events.get()) is not None:
            yield event

    async def next_call(self, timeout: float = 10.0) -> QuicCall:
        """The next call offered to this subscription (its INCOMING event arrived)."""
        return await asyncio.wait_for(self._incoming.get(), timeout)

    async def wait_stopped(self, call: QuicCall | None = None, stream_id: int | None = None,
                           timeout: float = 10.0) -> int:
        """The code the gateway stopped our stream with (a call's audio stream, or any)."""
        async with asyncio.timeout(timeout):
            while True:
                sid = call._stream_id if call is not None else stream_id
                if sid is not None and sid in self.stopped:
                    return self.stopped[sid]
                self._stopped_news.clear()
                await self._stopped_news.wait()

    # ── for QuicCall and tests: raw sending ─────────────────────────────────
    def open_audio_stream(self, call: QuicCall | None = None) -> int:
        stream_id = int(self._quic.get_next_available_stream_id(is_unidirectional=True))
        self._quic.send_stream_data(stream_id, b"")
        if call is not None:
            self._audio_streams[stream_id] = call
        return stream_id

    def send_stream(self, stream_id: int, data: bytes, end: bool = False) -> None:
        if self.closed.is_set() or stream_id in self.stopped:
            return
        try:
            self._quic.send_stream_data(stream_id, data, end_stream=end)
        except (ValueError, RuntimeError):
            return
        self._transmit()

    def send_datagram(self, envelope: bytes) -> bool:
        """Send ``envelope`` as a DATAGRAM if this connection carries them; False if not."""
        if not self.datagrams or self.closed.is_set() or \
                self._quic._remote_max_datagram_frame_size is None or len(envelope) > 1100:
            return False
        self._quic.send_datagram_frame(envelope)
        self._transmit()
        return True

    # ── events from aioquic ─────────────────────────────────────────────────
    def _on_quic_event(self, event: qe.QuicEvent) -> None:
        if isinstance(event, qe.StreamDataReceived):
            self._on_stream(event.stream_id, event.data, event.end_stream)
        elif isinstance(event, qe.DatagramFrameReceived):
            self._on_datagram(event.data)
        elif isinstance(event, qe.StopSendingReceived):
            self.stopped[event.stream_id] = event.error_code
            call = self._audio_streams.get(event.stream_id)
            if call is not None:
                call.stream_error = event.error_code
            self._stopped_news.set()
        elif isinstance(event, qe.ConnectionTerminated):
            self.close_code, self.close_reason = event.error_code, event.reason_phrase
            self._connection_over()

    def _on_stream(self, stream_id: int, data: bytes, end: bool) -> None:
        reader = self._readers.setdefault(stream_id, quic.EnvelopeReader())
        try:
            envelopes = reader.feed(data)
        except quic.QuicFrameError:
            envelopes = []
        for envelope in envelopes:
            try:
                message = quic.decode(envelope)
            except quic.QuicFrameError:
                continue
            self._dispatch(stream_id, message)
        if end:
            self._readers.pop(stream_id, None)
            call = self._call_streams.pop(stream_id, None)
            if call is not None:
                call.on_stream_end()

    def _dispatch(self, stream_id: int, message: quic.Message) -> None:
        future = self._pending.pop(stream_id, None)
        if future is not None:
            if not future.done():
                future.set_result(message)
            return
        if isinstance(message, quic.AudioFrame):
            self.call(message.call_sid).on_audio(message)
        elif isinstance(message, quic.CallEvent):
            self._on_call_event(stream_id, message)

    def _on_call_event(self, stream_id: int, event: quic.CallEvent) -> None:
        if stream_id % 4 == 0:  # the subscription's own stream: not a call of ours
            self.errors.append(event)
        else:
            call = self.call(event.call_sid)
            self._call_streams[stream_id] = call
            call.on_event(event)
            if event.kind == quic.CallEvent.Kind.INCOMING:
                self._incoming.put_nowait(call)
        self._events.put_nowait(event)

    def _on_datagram(self, data: bytes) -> None:
        try:
            envelopes = quic.EnvelopeReader().feed(data)
            message = quic.decode(envelopes[0]) if len(envelopes) == 1 else None
        except quic.QuicFrameError:
            return
        if isinstance(message, quic.AudioFrame):
            self.call(message.call_sid).on_audio(message)

    def _connection_over(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(QuicAgentError("CLOSED", self.close_reason
                                                    or "the connection closed"))
        for call in self._calls.values():
            call.on_stream_end()
        self._events.put_nowait(None)
