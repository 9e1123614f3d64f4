"""One agent's QUIC connection to the gateway (docs/quic.md has the wire rules).

Stream kinds, by QUIC stream id:

* client bidi (id % 4 == 0): one request each, answered on the same stream. The
  first (id 0) starts with the authentication line; nothing else is read until it
  checks out, and the connection is closed if it does not within 5 s.
* client uni (id % 4 == 2): one call's audio, bound by its first frame's call_sid.
  When the call ends its stream is stopped (``CALL_ENDED``) and remembered for a few
  seconds, so the audio still in flight on it is dropped quietly, not read as a new
  stream.
* server uni: one per call, its events and (without DATAGRAMs) its audio.
* DATAGRAM frames (RFC 9221, when the client offers them): one AudioFrame each.

A refused stream is stopped (STOP_SENDING) with an :class:`ErrorCode`; the reason
also goes as a ``CallEvent`` ERROR on the call's stream, or on the subscription's
stream for what belongs to no call of this connection. Nothing else is affected.
"""

from __future__ import annotations

import hmac
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic import events
from aioquic.quic.connection import QuicConnection

from ...engine import EngineError
from ...engine.ports import AgentCommand
from ...protocol import quic
from ...quic.codes import AUTH_SCHEME, AUTH_TIMEOUT_S, MAX_AUTH_LINE, ErrorCode, code_for
from ...server.errors import AuthError
from ...server.limits import TokenBucket
from . import commands
from .call_link import ERROR_EVERY_S, AudioFormat, Kind, QuicCallLink
from .streams import AudioStream, RequestStream, StreamBudget
from .subscription import QuicSubscription

if TYPE_CHECKING:
    from .door import QuicDoor

logger = logging.getLogger(__name__)

# new client uni-streams: one per call is the rule (a second one for a call, or one for a
# call that is not ours, is refused); beyond each call's own, this many a second (burst
# twice as many), plus one a second per live call: a stream per packet is refused
UNI_STREAMS_PER_S = 5
MAX_UNBOUND = 64          # client uni-streams open at once whose first frame has not named a call
LATE_S = 5.0              # an ended call's stream (and sid) is remembered this long: late audio
MAX_LATE = 256            # remembered at most (the oldest is forgotten first)
REQUESTS_PER_S = 50       # new request streams per second (burst 100)
DATAGRAM_MAX = 1100       # an envelope bigger than this rides the call's stream instead
# audio waiting in aioquic's DATAGRAM queue (behind its congestion window) is worth little
# once this old: past 100 ms a connection's oldest frames are dropped (late_dropped)
DATAGRAM_QUEUE_FRAMES = 5  # per live call: 100 ms of 20 ms frames
# a call's stream holding this much unacknowledged audio (a client that stopped reading or
# granting flow credit) gets no more: late audio is worthless and memory is bounded
MAX_UNACKED_AUDIO = 256 * 1024


class GatewayConnection(QuicConnectionProtocol):
    def __init__(self, quic_conn: QuicConnection, stream_handler: Any = None, *,
                 door: QuicDoor) -> None:
        super().__init__(quic_conn, stream_handler)
        self.door = door
        self.engine = door.engine
        self.calls: dict[str, QuicCallLink] = {}
        self.sub: QuicSubscription | None = None
        self.connector_uuid: str | None = None
        self._requests: dict[int, RequestStream] = {}
        self._audio: dict[int, AudioStream] = {}
        self._unbound: set[int] = set()       # audio streams whose first frame has not come
        self._late_streams: dict[int, float] = {}  # an ended call's stream → when forgotten
        self._late_calls: dict[str, float] = {}    # an ended call's sid → when forgotten
        self._datagram_owners: deque[QuicCallLink | None] = deque()  # of aioquic's queue
        self._commands: dict[str, tuple[int | None, str, QuicCallLink]] = {}
        self._sub_stream: int | None = None
        self._errors: dict[str, float] = {}
        now = self._loop.time()
        self._uni_budget = StreamBudget(UNI_STREAMS_PER_S, 2 * UNI_STREAMS_PER_S, now)
        self._req_bucket = TokenBucket(REQUESTS_PER_S, 2 * REQUESTS_PER_S, now)
        self._auth_timer = self._loop.call_later(AUTH_TIMEOUT_S, self._auth_timeout)
        self._gone = False
        door.opened(self)

    # ── transport ────────────────────────────────────────────────────────────
    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            if event.stream_id % 4 == 0:
                self._on_request(event.stream_id, event.data, event.end_stream)
            elif event.stream_id % 4 == 2:
                self._on_audio(event.stream_id, event.data, event.end_stream)
        elif isinstance(event, events.DatagramFrameReceived):
            self._on_datagram(event.data)
        elif isinstance(event, events.StreamReset):
            self._requests.pop(event.stream_id, None)
            self._audio.pop(event.stream_id, None)
            self._unbound.discard(event.stream_id)
            self._late_streams.pop(event.stream_id, None)
        elif isinstance(event, events.ConnectionTerminated):
            logger.info("QUIC connection closed (%#x %s)", event.error_code,
                        event.reason_phrase[:80])
            self._teardown()

    def shut(self, code: ErrorCode, reason: str) -> None:
        """Close the connection with an application error code (teardown follows)."""
        if not self._gone:
            self.close(error_code=int(code), reason_phrase=reason)
            self._teardown()

    def open_uni(self) -> int:
        stream_id = self._quic.get_next_available_stream_id(is_unidirectional=True)
        self._quic.send_stream_data(stream_id, b"")  # takes the id: the next call gets another
        return stream_id

    def send(self, stream_id: int, data: bytes, end: bool = False) -> None:
        if self._gone:
            return
        try:
            self._quic.send_stream_data(stream_id, data, end)
        except (ValueError, RuntimeError):  # the client stopped or reset that stream
            return
        self.transmit()

    def send_audio(self, link: QuicCallLink, envelope: bytes) -> None:
        remote_max = self._quic._remote_max_datagram_frame_size
        if remote_max is not None and len(envelope) <= min(remote_max, DATAGRAM_MAX):
            if not self._gone:
                self._bound_datagrams()
                self._datagram_owners.append(link)
                self._quic.send_datagram_frame(envelope)
                self.transmit()
        elif self._unacked(link.stream_id) < MAX_UNACKED_AUDIO:
            self.send(link.stream_id, envelope)

    def _bound_datagrams(self) -> None:
        """Make room for one more DATAGRAM: past ``DATAGRAM_QUEUE_FRAMES`` per live call
        (100 ms of audio) waiting to be sent, the oldest are dropped and counted as their
        calls' ``late_dropped``. Real-time audio must not queue behind a congestion window
        (a slow or stalled path): the frames after it would all be as late."""
        # aioquic (1.7) keeps the DATAGRAMs it could not send yet in this private deque and
        # has no public way to see or bound it. Without it (another aioquic) nothing is
        # dropped here: the audio then queues in aioquic as it did before.
        pending = getattr(self._quic, "_datagrams_pending", None)
        owners = self._datagram_owners
        if not isinstance(pending, deque):
            owners.clear()
            return
        # aioquic takes from the left as it sends and only we append: the owners of what
        # is still pending are the newest len(pending) of ours
        while len(owners) > len(pending):
            owners.popleft()
        if len(owners) < len(pending):  # not ours alone: what is unknown is nobody's
            owners.extendleft([None] * (len(pending) - len(owners)))
        limit = DATAGRAM_QUEUE_FRAMES * max(1, len(self.calls))
        while len(pending) >= limit:
            pending.popleft()
            owner = owners.popleft()
            if owner is not None:
                owner.late_dropped += 1

    def _unacked(self, stream_id: int) -> int:
        stream = self._quic._streams.get(stream_id)  # aioquic exposes no public count
        return len(stream.sender._buffer) if stream is not None else 0

    def _refuse_stream(self, stream_id: int, code: ErrorCode) -> None:
        try:
            self._quic.stop_stream(stream_id, int(code))
        except ValueError:
            return
        self.transmit()

    # ── calls (call_link.Wire, subscription.Host) ────────────────────────────
    def new_call(self, call_id: str, session_id: str, fmt: AudioFormat) -> QuicCallLink:
        link = QuicCallLink(self, self.engine, call_id, session_id, fmt, self._loop.time)
        self.calls[call_id] = link
        self._late_calls.pop(call_id, None)  # taken again (a RESUME): its audio is wanted
        self._uni_budget.credit(self._loop.time(), len(self.calls))  # its audio stream
        return link

    def call_closed(self, link: QuicCallLink) -> None:
        if self.calls.get(link.call_id) is link:
            del self.calls[link.call_id]
        self._forget_late()
        for stream_id in [s for s, a in self._audio.items() if a.link is link]:
            # the client may still be sending on it (audio in flight as the call ended):
            # stop it once, and drop what still comes on it quietly
            del self._audio[stream_id]
            self._remember(self._late_streams, stream_id)
            self._refuse_stream(stream_id, ErrorCode.CALL_ENDED)
        self._remember(self._late_calls, link.call_id)

    def _remember(self, late: dict[Any, float], key: Any) -> None:
        late.pop(key, None)  # (re)added at the end: the dict stays in time order
        late[key] = self._loop.time() + LATE_S
        while len(late) > MAX_LATE:
            del late[next(iter(late))]

    def _forget_late(self) -> None:
        """Forget the ended calls' streams and sids older than ``LATE_S`` (oldest first)."""
        now = self._loop.time()
        for late in (self._late_streams, self._late_calls):
            _forget_before(late, now)

    def answer(self, link: QuicCallLink) -> None:
        self._run_command(None, link, "call.answer", AgentCommand(
            f"auto-{link.call_id}", "call.answer", commands.COMMAND_TIMEOUT_S))

    def command_answer(self, command_id: str, response: quic.CallCommandResponse) -> None:
        entry = self._commands.pop(command_id, None)
        if entry is None:
            return
        stream_id, name, link = entry
        if stream_id is not None:
            self.send(stream_id, quic.encode(response), end=True)
        elif not response.ok:
            link.error(response.error_code, response.error_message)
        if response.ok and name == "call.answer":
            link.event(Kind.ANSWERED)

    # ── requests ─────────────────────────────────────────────────────────────
    def _on_request(self, stream_id: int, data: bytes, end: bool) -> None:
        state = self._requests.get(stream_id)
        if state is None:
            if self.connector_uuid is None and stream_id != 0:
                self.shut(ErrorCode.AUTH_REQUIRED, "authenticate on stream 0 first")
                return
            if not self._req_bucket.take(self._loop.time()):
                self._refuse_stream(stream_id, ErrorCode.LIMIT_EXCEEDED)
                self.send(stream_id, quic.encode(quic.Error(
                    code="LIMIT_EXCEEDED", message="too many requests: slow down")), end=True)
                return
            state = self._requests[stream_id] = RequestStream()
        if state.done:
            return
        if self.connector_uuid is None:
            rest = self._auth_data(state, data, end)
            if rest is None:
                return
            data = rest
        try:
            envelopes = state.reader.feed(data)
            if not envelopes and end:
                state.reader.at_eof()
                raise quic.QuicFrameError("MALFORMED", "the stream ended without a request")
        except quic.QuicFrameError as exc:
            self._request_failed(stream_id, state, exc.code, exc.message)
            return
        if envelopes:
            state.done = True
            self._requests.pop(stream_id, None)
            self._handle(stream_id, envelopes[0])

    def _request_failed(self, stream_id: int, state: RequestStream, code: str,
                        message: str) -> None:
        state.done = True
        self._requests.pop(stream_id, None)
        self.send(stream_id, quic.encode(quic.Error(code=code, message=message)), end=True)

    def _handle(self, stream_id: int, envelope: quic.Envelope) -> None:
        try:
            message = quic.decode(envelope)
        except quic.QuicFrameError as exc:
            self.send(stream_id, quic.encode(quic.Error(code=exc.code, message=exc.message)),
                      end=True)
            return
        sub = self._subscription()
        if isinstance(message, quic.EventStreamRequest):
            response = sub.subscribe(message)
            if response.ok:
                self._sub_stream = stream_id  # stays open: the subscription's own stream
            self.send(stream_id, quic.encode(response), end=not response.ok)
        elif isinstance(message, quic.OriginateRequest):
            self.send(stream_id, quic.encode(sub.originate(message)), end=True)
        elif isinstance(message, quic.CallCommand):
            self._command(stream_id, message)
        else:
            self.send(stream_id, quic.encode(quic.Error(
                code="UNEXPECTED_MESSAGE", message=f"{type(message).__name__} is not a "
                "request: send EventStreamRequest, OriginateRequest or CallCommand")), end=True)

    def _command(self, stream_id: int, command: quic.CallCommand) -> None:
        link = self.calls.get(command.call_sid)
        problem = commands.check(command)
        if link is None or link.closed:
            problem = ("CALL_NOT_FOUND", f"call {command.call_sid[:64]!r} is not one of "
                       "this connection's calls (ended, or never offered to it)")
        if problem is not None:
            self.send(stream_id, quic.encode(quic.CallCommandResponse(
                ok=False, error_code=problem[0], error_message=problem[1])), end=True)
            return
        assert link is not None
        name = commands.ENGINE_NAMES[command.command]
        if not link.attached:  # an originated call still ringing: only HANGUP applies
            self._ringing_command(stream_id, link, name)
            return
        self._run_command(stream_id, link, name, AgentCommand(
            f"q{stream_id}", name, commands.COMMAND_TIMEOUT_S,
            float(command.ring_time_s or commands.DEFAULT_RING_S), command.digits))

    def _run_command(self, stream_id: int | None, link: QuicCallLink, name: str,
                     command: AgentCommand) -> None:
        self._commands[command.command_id] = (stream_id, name, link)
        self.engine.command(link, command)

    def _ringing_command(self, stream_id: int, link: QuicCallLink, name: str) -> None:
        response = quic.CallCommandResponse(ok=False, error_code="INVALID_STATE",
                                            error_message="the call is still ringing")
        if name == "call.disconnect" and self.connector_uuid is not None:
            try:
                self.engine.close_session(self.connector_uuid, link.session_id)
                response = quic.CallCommandResponse(ok=True, result_json="{}")
            except EngineError as exc:
                response = quic.CallCommandResponse(ok=False, error_code=exc.code,
                                                    error_message=exc.message)
        self.send(stream_id, quic.encode(response), end=True)

    def _subscription(self) -> QuicSubscription:
        if self.sub is None:
            assert self.connector_uuid is not None
            self.sub = QuicSubscription(self.engine, self.connector_uuid, self, self._loop)
        return self.sub

    # ── authentication ───────────────────────────────────────────────────────
    def _auth_data(self, state: RequestStream, data: bytes, end: bool) -> bytes | None:
        """Bytes after the authentication line once it checks out; None until then."""
        line = state.auth_line
        line += data
        newline = line.find(b"\n")
        if newline < 0:
            if len(line) >= MAX_AUTH_LINE or end:
                self.shut(ErrorCode.AUTH_REQUIRED, "the first stream must start with "
                          f"'{AUTH_SCHEME} <api key> <connector uuid>\\n'")
            return None
        rest = bytes(line[newline + 1:])
        fields = bytes(line[:newline]).decode("utf-8", "replace").split()
        line.clear()
        if len(fields) != 3 or not hmac.compare_digest(fields[0].lower(),
                                                       AUTH_SCHEME.lower()):
            self.shut(ErrorCode.AUTH_REQUIRED, "the first stream must start with "
                      f"'{AUTH_SCHEME} <api key> <connector uuid>\\n'")
            return None
        try:
            connector = self.door.auth.connector_for(
                {"x-api-key": fields[1], "x-connector-uuid": fields[2]}, None, "quic")
        except AuthError as exc:  # its message never holds the key
            logger.info("QUIC connection refused: %s", exc.message)
            self.shut(ErrorCode.AUTH_FAILED, exc.message)
            return None
        self.connector_uuid = connector.uuid
        self._auth_timer.cancel()
        logger.info("QUIC connection authenticated for connector %s", connector.uuid)
        return rest

    def _auth_timeout(self) -> None:
        if self.connector_uuid is None:
            self.shut(ErrorCode.AUTH_TIMEOUT, f"not authenticated within {AUTH_TIMEOUT_S:g} s")

    # ── audio in ─────────────────────────────────────────────────────────────
    def _on_audio(self, stream_id: int, data: bytes, end: bool) -> None:
        if self.connector_uuid is None:
            self.shut(ErrorCode.AUTH_REQUIRED, "authenticate on stream 0 first")
            return
        self._audio_data(stream_id, data, end)
        if end:  # the client ended the stream: nothing more comes on it
            self._audio.pop(stream_id, None)
            self._unbound.discard(stream_id)
            self._late_streams.pop(stream_id, None)

    def _audio_data(self, stream_id: int, data: bytes, end: bool) -> None:
        state = self._audio.get(stream_id)
        if state is None:
            if stream_id in self._late_streams:
                self._forget_late()
            if stream_id in self._late_streams:
                return  # an ended call's stream: its late audio is dropped quietly
            state = self._audio[stream_id] = AudioStream()
            if len(self._unbound) >= MAX_UNBOUND:
                self._refuse(stream_id, state, "STREAM_REFUSED", f"{MAX_UNBOUND} uni-streams "
                             "have not named their call yet: open one per call, not one per "
                             "packet", None)
            elif not self._uni_budget.take(self._loop.time(), len(self.calls)):
                self._refuse(stream_id, state, "STREAM_REFUSED", "too many uni-streams per "
                             "second: open one per call, not one per packet", None)
            else:
                self._unbound.add(stream_id)
        if state.refused:
            return
        try:
            envelopes = state.reader.feed(data)
            if end:
                state.reader.at_eof()
        except quic.QuicFrameError as exc:
            envelopes = []
            self._refuse(stream_id, state, exc.code, exc.message, None)
        for envelope in envelopes:
            self._stream_frame(stream_id, state, envelope)
            if state.refused:
                return

    def _stream_frame(self, stream_id: int, state: AudioStream,
                      envelope: quic.Envelope) -> None:
        frame = self._audio_frame(envelope, lambda code, why, sid: self._refuse(
            stream_id, state, code, why, sid))
        if frame is None:
            return
        link = state.link
        if link is None:
            link = self.calls.get(frame.call_sid)
            if (link is None or link.closed) and self._ended_here(frame.call_sid):
                # a stream opened for a call of ours that has just ended: nothing to refuse
                self._audio.pop(stream_id, None)
                self._unbound.discard(stream_id)
                self._remember(self._late_streams, stream_id)
                self._refuse_stream(stream_id, ErrorCode.CALL_ENDED)
                self._uni_budget.credit(self._loop.time(), len(self.calls))
                state.refused = True
                return
            if link is None or link.closed:
                self._refuse(stream_id, state, "NOT_YOUR_CALL", f"call {frame.call_sid[:64]!r}"
                             " is not one of this connection's calls", frame.call_sid)
                return
            if link.in_stream is not None:
                self._refuse(stream_id, state, "STREAM_REFUSED", f"call {link.call_id} has its"
                             f" uni-stream already (stream {link.in_stream}): one per call, not"
                             " one per packet", link.call_id)
                return
            link.in_stream, state.link = stream_id, link
            self._unbound.discard(stream_id)
        elif frame.call_sid != link.call_id:
            self._refuse(stream_id, state, "NOT_YOUR_CALL", f"this stream carries call "
                         f"{link.call_id}'s audio, not call {frame.call_sid[:64]!r}'s",
                         link.call_id)
            return
        if link.in_ended:
            self._refuse(stream_id, state, "AFTER_END_OF_STREAM", "a frame after the one "
                         "with end_of_stream: the call's audio from the client is over",
                         link.call_id)
            return
        link.client_frame(frame)

    def _on_datagram(self, data: bytes) -> None:
        if self.connector_uuid is None:
            self.shut(ErrorCode.AUTH_REQUIRED, "authenticate on stream 0 first")
            return
        reader = quic.EnvelopeReader(quic.MAX_PAYLOAD + 512)
        try:
            envelopes = reader.feed(data)
            reader.at_eof()
            if len(envelopes) != 1:
                raise quic.QuicFrameError("MALFORMED", "a DATAGRAM holds exactly one envelope")
        except quic.QuicFrameError as exc:
            self._error(exc.code, exc.message, None)
            return
        frame = self._audio_frame(envelopes[0], self._error)
        if frame is None:
            return
        link = self.calls.get(frame.call_sid)
        if (link is None or link.closed) and self._ended_here(frame.call_sid):
            return  # late audio of a call of ours that has just ended: dropped quietly
        if link is None or link.closed:
            self._error("NOT_YOUR_CALL", f"call {frame.call_sid[:64]!r} is not one of this "
                        "connection's calls", frame.call_sid)
        elif link.in_ended:
            link.error("AFTER_END_OF_STREAM", "a frame after the one with end_of_stream")
        else:
            link.client_frame(frame)

    def _ended_here(self, call_sid: str) -> bool:
        """``call_sid`` is a call of this connection that ended less than LATE_S ago."""
        self._forget_late()
        return call_sid in self._late_calls

    def _audio_frame(self, envelope: quic.Envelope, fail: Any) -> quic.AudioFrame | None:
        try:
            message = quic.decode(envelope)
        except quic.QuicFrameError as exc:
            fail(exc.code, exc.message, None)
            return None
        if not isinstance(message, quic.AudioFrame):
            fail("UNEXPECTED_MESSAGE", f"{type(message).__name__} on an audio stream: "
                 "requests go on bidirectional streams", None)
            return None
        return message

    def _refuse(self, stream_id: int, state: AudioStream, code: str, message: str,
                call_sid: str | None) -> None:
        """Stop the stream with ``code``; the reason goes where the client will read it."""
        state.refused = True
        self._unbound.discard(stream_id)
        self._refuse_stream(stream_id, code_for(code))
        self._error(code, f"stream {stream_id}: {message}", call_sid)

    def _error(self, code: str, message: str, call_sid: str | None) -> None:
        """A CallEvent ERROR: on the call's stream if it is ours, else the subscription's."""
        link = self.calls.get(call_sid) if call_sid else None
        if link is not None:
            link.error(code, message)
            return
        now = self._loop.time()
        if self._sub_stream is None or now - self._errors.get(code, -ERROR_EVERY_S) \
                < ERROR_EVERY_S:
            return
        self._errors[code] = now
        self.send(self._sub_stream, quic.encode(quic.CallEvent(
            call_sid=call_sid or "", kind=Kind.ERROR, reason=code, message=message)))

    # ── the end ──────────────────────────────────────────────────────────────
    def _teardown(self) -> None:
        """The connection is gone: its calls follow the engine's agent-loss rules."""
        if self._gone:
            return
        self._gone = True
        self._auth_timer.cancel()
        for link in list(self.calls.values()):
            link.closed = True
            if link.attached:
                self.engine.agent_detach(link)
        self.calls.clear()
        if self.sub is not None:
            self.sub.down()
        self.door.closed(self)


def _forget_before(late: dict[Any, float], now: float) -> None:
    """Drop the entries of ``late`` whose time has come (they were added in time order)."""
    while late:
        key = next(iter(late))
        if late[key] > now:
            return
        del late[key]
