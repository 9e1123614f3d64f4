"""The session-manager WebSocket: one :class:`SmLink` per connected SDK.

It is the engine's :class:`~telcoflow.engine.ports.SessionLink` adapter:
frames in become engine calls, the engine's offers and closings become
frames out. Voice URLs and tokens are made here, where the gateway's
address and keys are known.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from ..engine import Engine, EngineError
from ..engine.ports import Activity, CallOffer, MessageOutcome, SessionEnd, SessionView
from ..protocol import errors as perr
from ..protocol import sm
from ..protocol import whatsapp as wa
from .auth import Authenticator
from .config import Connector
from .limits import TokenBucket
from .netio import WsConnection

logger = logging.getLogger(__name__)

FRAMES_PER_SECOND = 200  # sustained; a burst of 400 is allowed
MAX_ERRORS = 50          # a client that keeps sending garbage is closed


class Cluster(Protocol):
    """Several nodes (:mod:`.cluster`): told of this node's connections, and runs the
    session claims, which may be for a session another node holds."""

    def link_up(self, link: SmLink) -> None: ...
    def link_down(self, link: SmLink) -> None: ...
    def session_request(self, link: SmLink, frame: sm.SessionOpen | sm.SessionReady) -> None: ...


class SmLink:
    def __init__(self, engine: Engine, connector: Connector, auth: Authenticator,
                 voice_base_url: str, clock: Callable[[], float] = time.monotonic,
                 cluster: Cluster | None = None) -> None:
        self.engine = engine
        self.cluster = cluster
        self.connector = connector
        self.auth = auth
        self.voice_base_url = voice_base_url
        self.id = f"smws-{uuid.uuid4()}"
        self.sample_rate = 16000
        self.audio_mode = "mixed"
        self.setup_done = False
        self._conn: WsConnection | None = None
        self._clock = clock
        self._bucket = TokenBucket(FRAMES_PER_SECOND, 2 * FRAMES_PER_SECOND, clock())
        self._errors = 0

    @property
    def connector_uuid(self) -> str:
        return self.connector.uuid

    # ── SessionLink (the engine's port) ──────────────────────────────────────
    def notify(self, session: SessionView, activity: Activity) -> None:
        self.send_text(sm.build_session_notify(session.id, session.channel,
                                               session.remote_address, session.local_address,
                                               activity.value, int(time.time())))

    def offer_call(self, offer: CallOffer) -> None:
        token = self.auth.issue_voice_token(offer.call_id, self.connector.uuid)
        url = f"{self.voice_base_url}/v1/voice/{offer.call_id}"
        self.send_text(sm.build_call_in(offer.session_id, offer.call_id, self.connector.org_uuid,
                                        offer.caller, offer.callee, url, token))

    def session_closed(self, session_id: str, reason: SessionEnd, cause: str | None = None) -> None:
        self.send_text(sm.build_session_closed(session_id, reason.value, cause))

    def deliver_message(self, session_id: str, sender: str, content: dict[str, Any]) -> None:
        self.send_text(sm.build_wa_msg_in(session_id, sender, content))

    # ── WsHandler ────────────────────────────────────────────────────────────
    def on_open(self, conn: WsConnection) -> None:
        self._conn = conn
        logger.info("SM-WS %s connected for connector %s", self.id, self.connector.uuid)

    def on_close(self, code: int | None, reason: str) -> None:
        if self._conn is None:
            return
        self._conn = None
        logger.info("SM-WS %s closed (%s %s)", self.id, code, reason)
        if self.setup_done:
            self.engine.link_down(self)
            if self.cluster is not None:
                self.cluster.link_down(self)

    def on_binary(self, data: bytes) -> None:
        # counted like text: a binary flood gets the same bucket and error budget
        if not self._bucket.take(self._clock()):
            self.close(1008, "too many frames: slow down")
            return
        self._errors += 1
        self._error(None, "INVALID_REQUEST",
                    "the session-manager plane takes JSON text frames only")
        if self._errors > MAX_ERRORS:
            self.close(1008, "too many invalid frames")

    def on_text(self, text: str) -> None:
        if not self._bucket.take(self._clock()):
            self.close(1008, "too many frames: slow down")
            return
        try:
            frame = sm.parse_client_frame(text)
        except perr.ProtocolError as exc:
            self._errors += 1
            self._error(exc.request_id, exc.code if exc.code != "UNKNOWN_TYPE" else
                        "INVALID_REQUEST", exc.message)
            if self._errors > MAX_ERRORS:
                self.close(1008, "too many invalid frames")
            return
        if isinstance(frame, sm.Setup):
            self._setup(frame)
            return
        if not self.setup_done:
            self._error(getattr(frame, "req_id", None), "INVALID_REQUEST",
                        "send 'setup' first: it must be the first frame on this connection")
            return
        try:
            self._dispatch(frame)
        except EngineError as exc:
            self._error(getattr(frame, "req_id", None), exc.code, exc.message,
                        getattr(exc, "bound_id", None))

    def send_text(self, text: str) -> None:
        if self._conn is not None:
            self._conn.send_text(text)

    def close(self, code: int, reason: str) -> None:
        if self._conn is not None:
            self._conn.close(code, reason)

    # ── frames ───────────────────────────────────────────────────────────────
    def _setup(self, frame: sm.Setup) -> None:
        if self.setup_done:
            self._error(None, "INVALID_REQUEST", "setup was already done on this connection")
            return
        self.sample_rate, self.audio_mode = frame.sample_rate, frame.audio_mode
        self.setup_done = True
        self.send_text(sm.build_setup_done(self.id))
        if self.cluster is not None:  # announced first: offers from other nodes may follow
            self.cluster.link_up(self)
        self.engine.link_up(self)

    def _dispatch(self, frame: sm.ClientFrame) -> None:
        engine = self.engine
        if self.cluster is not None and isinstance(frame, sm.SessionOpen | sm.SessionReady):
            self.cluster.session_request(self, frame)
        elif isinstance(frame, sm.SessionOpen):
            session = engine.open_session(self, frame.session_id)
            self.send_text(sm.build_response(frame.req_id, {"session": session.public()}))
        elif isinstance(frame, sm.SessionReady):
            engine.session_ready(self, frame.session_id)
        elif isinstance(frame, sm.SessionCreate):
            sid, created = engine.create_session(self, frame.channel, frame.remote_address)
            self.send_text(sm.build_response(frame.req_id, {"sessionId": sid, "created": created}))
        elif isinstance(frame, sm.CallFlowSetup):
            engine.set_call_flow(self.connector.uuid, frame.inbound_call, frame.outbound_call,
                                 frame.inbound_message, frame.outbound_message)
            self.send_text(sm.build_response(frame.req_id, {
                "inboundCall": frame.inbound_call, "outboundCall": frame.outbound_call,
                "inboundMessage": frame.inbound_message,
                "outboundMessage": frame.outbound_message}))
        elif isinstance(frame, sm.WaMsgOut):
            self._send_message(frame)

    def _send_message(self, frame: sm.WaMsgOut) -> None:
        """``wa.msg.out``: checked here (the message object is the Cloud API's), routed by
        the engine, answered when the network answers."""
        session_id, client_msg_id, api_version, message = _wa_fields(frame.data)
        try:
            wa.validate_outbound(message)
        except perr.ProtocolError as exc:
            raise EngineError(exc.message, "INVALID_PAYLOAD") from None
        req_id = frame.req_id

        def answered(outcome: MessageOutcome) -> None:
            if outcome.ok:
                self.send_text(sm.build_response(req_id, outcome.content))
            else:
                content: dict[str, Any] = {"message": outcome.message}
                if outcome.detail is not None:  # the network's own error object
                    content["error"] = outcome.detail
                self.send_text(sm.build_error_response(req_id, outcome.code or "REMOTE_ERROR",
                                                       outcome.message, content))

        self.engine.messaging.send(self, session_id, client_msg_id, api_version, message,
                                   wa.is_template(message), answered)

    def fail(self, req_id: str | None, code: str, message: str, bound_id: Any = None) -> None:
        """An error answer to request ``req_id`` (None: an ``error`` frame)."""
        self._error(req_id, code, message, bound_id)

    def _error(self, req_id: str | None, code: str, message: str, bound_id: Any = None) -> None:
        if req_id:
            content = {"boundSmWsId": bound_id} if bound_id else None
            self.send_text(sm.build_error_response(req_id, code, message, content))
        else:
            self.send_text(sm.build_error(code, message))


def _wa_fields(data: dict[str, Any]) -> tuple[str, str, str, dict[str, Any]]:
    """``wa.msg.out``'s ``data``: sessionId, clientMsgId, apiVersion and the message."""
    values = [data.get(name) for name in ("sessionId", "clientMsgId", "apiVersion")]
    if not all(isinstance(v, str) for v in values) or not values[0]:
        raise EngineError("wa.msg.out data needs sessionId, clientMsgId and apiVersion "
                          "(strings)", "INVALID_PAYLOAD")
    message = data.get("data")
    if not isinstance(message, dict):
        raise EngineError("wa.msg.out data.data must be the message object, e.g. "
                          '{"type": "text", "text": {"body": "…"}}', "INVALID_PAYLOAD")
    return values[0], values[1], values[2], message  # type: ignore[return-value]
