"""A QUIC connection's standing with the engine: its :class:`~telcoflow.engine.ports.SessionLink`.

One per authenticated connection, made up when the client first subscribes
(``EventStreamRequest``) or originates. A subscribed link claims every call it is
offered (``open_session`` + ``session_ready``, as an SDK answers ``session.notify``),
then the engine hands it the call (``offer_call``) and the connection opens the
call's uni-stream. The egress format of a call is chosen here, before the claim,
because the engine fixes the call's agent rate from :attr:`sample_rate` when it
hands the call over.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Protocol

from ...engine import Engine, EngineError
from ...engine.call_states import CallState
from ...engine.ports import Activity, CallOffer, SessionEnd, SessionView
from ...protocol import quic
from .call_link import AudioFormat, Kind, QuicCallLink

logger = logging.getLogger(__name__)

MAX_CALLS = 64           # per connection: offers beyond are left to other agents
DEFAULT_RATE = 16000     # PCM16 when neither the client nor the far end says otherwise
_G711 = {"pcmu": "PCMU", "pcma": "PCMA"}


class Host(Protocol):
    """What the link needs of its connection."""

    calls: dict[str, QuicCallLink]

    def new_call(self, call_id: str, session_id: str, fmt: AudioFormat) -> QuicCallLink: ...
    def answer(self, link: QuicCallLink) -> None: ...


def choose_format(codec: str, rate: int, leg_codec: str | None) -> AudioFormat:
    """The egress format: the client's choice if it made one, else the far end's G.711 at
    8 kHz, else PCM16 at ``rate`` (the client's, or 16 kHz)."""
    codec = codec.upper()
    if codec in ("PCMU", "PCMA"):
        return AudioFormat(codec, 8000)
    if not codec and leg_codec in _G711:
        return AudioFormat(_G711[leg_codec], 8000)
    return AudioFormat("PCM16", rate or DEFAULT_RATE)


class QuicSubscription:
    def __init__(self, engine: Engine, connector_uuid: str, host: Host,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.engine, self.host, self._loop = engine, host, loop
        self.id = f"quic-{uuid.uuid4()}"
        self._connector_uuid = connector_uuid
        self.audio_mode = "mixed"
        self.subscribed = False
        self.up = False
        self.codec, self.rate, self.auto_answer = "", 0, False
        self._next_rate = DEFAULT_RATE  # what the engine reads while we claim a call
        self._formats: dict[str, AudioFormat] = {}   # session id → the call's format
        self.ringing: dict[str, QuicCallLink] = {}   # session id → an originated call
        self._causes: dict[str, str] = {}            # session id → why it never connected

    @property
    def connector_uuid(self) -> str:
        return self._connector_uuid

    @property
    def sample_rate(self) -> int:
        return self._next_rate

    # ── requests ────────────────────────────────────────────────────────────
    def subscribe(self, request: quic.EventStreamRequest) -> quic.EventStreamResponse:
        codec = request.codec.upper()
        if codec not in ("", *quic.AUDIO_CODECS):
            return quic.EventStreamResponse(ok=False, error_code="INVALID_REQUEST",
                                            error_message=f"codec {request.codec[:20]!r} "
                                            "is not PCMU, PCMA or PCM16 (or empty)")
        if request.sample_rate and request.sample_rate not in quic.PCM16_RATES:
            return quic.EventStreamResponse(ok=False, error_code="INVALID_REQUEST",
                                            error_message=f"sample_rate {request.sample_rate}"
                                            f" is not one of {sorted(quic.PCM16_RATES)}")
        if self.subscribed:
            return quic.EventStreamResponse(ok=False, error_code="ALREADY_SUBSCRIBED",
                                            error_message="this connection is subscribed "
                                            "already: one subscription per connection")
        self.codec, self.rate, self.auto_answer = codec, request.sample_rate, request.auto_answer
        self.subscribed = True
        self.link_up()  # (again, if it originated first: waiting calls are offered now)
        return quic.EventStreamResponse(ok=True, subscription_id=self.id)

    def originate(self, request: quic.OriginateRequest) -> quic.OriginateResponse:
        args = dict(request.default_app_args)
        try:
            fmt = self._originate_format(args)
            self._check_from(getattr(request, "from"))
            if len(self.host.calls) + len(self.ringing) >= MAX_CALLS:
                raise EngineError(f"this connection holds {MAX_CALLS} calls, its limit",
                                  "LIMIT_EXCEEDED")
            self.link_up()
            session_id, created = self.engine.create_session(self, "TELCO", request.to)
            if not created:
                raise EngineError(f"a call to {request.to} placed by this connector is "
                                  "already under way", "CALL_IN_PROGRESS")
            return self._dial(session_id, fmt)
        except EngineError as exc:
            return quic.OriginateResponse(ok=False, error_code=exc.code,
                                          error_message=exc.message)

    def _originate_format(self, args: dict[str, str]) -> AudioFormat:
        codec = args.get("codec", self.codec).upper()
        rate_text = args.get("sample_rate", "")
        rate = int(rate_text) if rate_text.isdigit() else self.rate
        if codec not in ("", *quic.AUDIO_CODECS) or (rate_text and rate not in quic.PCM16_RATES):
            raise EngineError("default_app_args: codec must be PCMU, PCMA or PCM16 and "
                              f"sample_rate one of {sorted(quic.PCM16_RATES)}",
                              "INVALID_REQUEST")
        if codec in ("PCMU", "PCMA") and rate not in (0, 8000):
            raise EngineError(f"{codec} is 8000 Hz, not {rate}", "INVALID_REQUEST")
        # the far end's codec is not known before it answers: without a choice, PCM16
        return choose_format(codec, rate, None)

    def _check_from(self, caller: str) -> None:
        numbers = self.engine.connectors[self._connector_uuid].numbers
        if caller and caller not in numbers:
            raise EngineError(f"from must be one of this connector's numbers "
                              f"({', '.join(numbers)}) or empty", "INVALID_REQUEST")

    def _dial(self, session_id: str, fmt: AudioFormat) -> quic.OriginateResponse:
        self._formats[session_id] = fmt
        self._next_rate = fmt.rate
        self.engine.open_session(self, session_id)
        self.engine.session_ready(self, session_id)  # the engine dials now
        session = self.engine.sessions.get(session_id, self._connector_uuid)
        if session is None or not session.is_open or session.call_id is None:
            cause = session.close_reason if session is not None else None
            self._formats.pop(session_id, None)
            return quic.OriginateResponse(ok=False, error_code=self._causes.pop(
                session_id, cause or "CALL_FAILED"), error_message="the call was not placed")
        link = self.host.new_call(session.call_id, session_id, fmt)
        self.ringing[session_id] = link
        link.event(Kind.RINGING, callee=session.remote_address, caller=session.local_address)
        return quic.OriginateResponse(ok=True, call_sid=session.call_id)

    # ── SessionLink (the engine's port) ──────────────────────────────────────
    def link_up(self) -> None:
        self.up = True
        self.engine.link_up(self)

    def notify(self, session: SessionView, activity: Activity) -> None:
        if not self.subscribed or session.channel != "TELCO":
            return
        # claimed on the next turn of the loop, not inside the engine's own call to us
        self._loop.call_soon(self._claim, session.id, activity)

    def _claim(self, session_id: str, activity: Activity) -> None:
        if not self.up or len(self.host.calls) + len(self.ringing) >= MAX_CALLS:
            return
        fmt = self._format_for(session_id)
        if fmt is None:
            return
        self._formats[session_id] = fmt
        self._next_rate = fmt.rate
        try:
            self.engine.open_session(self, session_id)
            self.engine.session_ready(self, session_id)
        except EngineError as exc:  # another agent took it first, or it ended meanwhile
            self._formats.pop(session_id, None)
            logger.debug("QUIC %s did not claim session %s (%s): %s", self.id, session_id,
                          activity.value, exc.message)

    def _format_for(self, session_id: str) -> AudioFormat | None:
        session = self.engine.sessions.get(session_id, self._connector_uuid)
        call = self.engine.calls.get(session.call_id) if session and session.call_id else None
        if call is None or not call.live:
            return None
        fmt = choose_format(self.codec, self.rate, call.caller_leg.format.codec)
        if call.playout is not None and fmt.rate != call.agent_rate:
            # a live call's agent rate is fixed (a RESUME): its G.711 or PCM16 at that rate
            fmt = fmt if fmt.codec != "PCM16" and call.agent_rate == 8000 \
                else AudioFormat("PCM16", call.agent_rate)
        return fmt

    def offer_call(self, offer: CallOffer) -> None:
        link = self.ringing.pop(offer.session_id, None)
        fmt = self._formats.pop(offer.session_id, None) or AudioFormat("PCM16", self._next_rate)
        if link is None:
            link = self.host.new_call(offer.call_id, offer.session_id, fmt)
        call = self.engine.calls.get(offer.call_id)
        answered = call is not None and call.state is CallState.ANSWERED
        try:
            self.engine.agent_attach(offer.call_id, link)
        except EngineError as exc:
            link.finish(exc.code)
            return
        link.attached = True
        if call is not None and call.outbound:
            link.event(Kind.ANSWERED, caller=offer.caller, callee=offer.callee)
            return
        link.event(Kind.INCOMING, caller=offer.caller, callee=offer.callee,
                   reason="RESUME" if answered else "")
        if answered:
            link.event(Kind.ANSWERED, caller=offer.caller, callee=offer.callee)
        elif self.auto_answer:
            # as if the client had sent CallCommand ANSWER, once this offer is out
            self._loop.call_soon(self.host.answer, link)

    def session_closed(self, session_id: str, reason: SessionEnd, cause: str | None = None) -> None:
        self._formats.pop(session_id, None)
        link = self.ringing.pop(session_id, None)
        if link is not None:  # an originated call that never connected
            link.finish(cause or reason.value)
        elif cause:  # refused while dialling, inside _dial: it reads the cause back
            self._causes[session_id] = cause

    def deliver_message(self, session_id: str, sender: str, content: dict[str, Any]) -> None:
        """WA messages are not carried on the QUIC plane."""

    def down(self) -> None:
        if self.up:
            self.up = False
            self.engine.link_down(self)
