"""Session-manager plane (SM-WS): both directions of the agent's control link.

Sans-I/O, one section per direction:

* client → server: the ``build_*`` helpers the SDK sends with, and
  :func:`parse_client_frame`, the gateway's strict reading (a typed request
  or a :mod:`.errors` exception carrying the ``reqId`` when one was readable);
* server → client: the ``build_*`` helpers the gateway sends with, and
  :func:`parse_server_frame`, the SDK's lenient reading (missing fields take
  defaults, unknown types become :class:`Unknown`, so a newer server never
  breaks an older agent; only a frame that is not a JSON object raises).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from ._json import CLIENT_READ_LIMIT, decode_object, dumps, field, int_or_zero, str_or_empty
from ._json import Unknown as Unknown  # re-exported: the SDK matches sm.Unknown
from .errors import MalformedFrame, UnknownMessageType

MAX_FRAME_BYTES = 64 * 1024
SAMPLE_RATES = (8000, 16000, 24000)
AUDIO_MODES = ("mixed", "isolated")
CHANNELS = ("TELCO", "WA")
INBOUND_CALL_MODES = ("ALL", "MISSED_ONLY", "NO")


# ── client → server ─────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Setup:
    sample_rate: int
    audio_mode: str


@dataclass(frozen=True, slots=True)
class SessionOpen:
    req_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class SessionCreate:
    req_id: str
    channel: str
    remote_address: str


@dataclass(frozen=True, slots=True)
class CallFlowSetup:
    req_id: str
    inbound_call: str
    outbound_call: bool
    inbound_message: bool
    outbound_message: bool


@dataclass(frozen=True, slots=True)
class WaMsgOut:
    req_id: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionReady:
    session_id: str


ClientFrame = Setup | SessionOpen | SessionCreate | CallFlowSetup | WaMsgOut | SessionReady


def parse_client_frame(text: str | bytes) -> ClientFrame:
    """The gateway's strict reading of one client frame."""
    obj = decode_object(text, MAX_FRAME_BYTES)
    kind = obj.get("type")
    raw_req = obj.get("reqId")
    req_id = raw_req if isinstance(raw_req, str) else None
    if not isinstance(kind, str):
        raise MalformedFrame("frame is missing a string field 'type'", req_id)
    parser = _PARSERS.get(kind)
    if parser is None:
        raise UnknownMessageType(f"unknown message type '{kind[:64]}'", req_id)
    if kind in _REQUESTS:
        if req_id is None or not req_id:
            raise MalformedFrame(f"'{kind}' request is missing a string field 'reqId'")
    frame: ClientFrame = parser(obj, req_id or "")
    return frame


def _setup(obj: dict[str, Any], _: str) -> Setup:
    data = field(obj, "data", dict, where="setup")
    rate = field(data, "sampleRate", int, where="setup.data")
    if rate not in SAMPLE_RATES:
        raise MalformedFrame(f"setup.data.sampleRate must be one of {SAMPLE_RATES}, not {rate}")
    mode = field(data, "audioMode", str, where="setup.data", required=False, default="mixed")
    if mode not in AUDIO_MODES:
        raise MalformedFrame(f"setup.data.audioMode must be one of {AUDIO_MODES}, not '{mode}'")
    return Setup(rate, mode)


def _open(obj: dict[str, Any], req_id: str) -> SessionOpen:
    sid = field(obj, "sessionId", str, where="session.open", request_id=req_id)
    return SessionOpen(req_id, sid)


def _create(obj: dict[str, Any], req_id: str) -> SessionCreate:
    channel = field(obj, "channel", str, where="session.create", request_id=req_id)
    if channel not in CHANNELS:
        raise MalformedFrame(f"session.create channel must be one of {CHANNELS}", req_id)
    remote = field(obj, "remoteAddress", str, where="session.create", request_id=req_id)
    if not remote:
        raise MalformedFrame("session.create remoteAddress must not be empty", req_id)
    return SessionCreate(req_id, channel, remote)


def _call_flow(obj: dict[str, Any], req_id: str) -> CallFlowSetup:
    where = "call_flow.setup.data"
    data = field(obj, "data", dict, where="call_flow.setup", request_id=req_id)
    inbound = field(data, "inboundCall", str, where=where, request_id=req_id,
                    required=False, default="ALL")
    if inbound not in INBOUND_CALL_MODES:
        raise MalformedFrame(f"{where}.inboundCall must be one of {INBOUND_CALL_MODES}", req_id)
    flags = [field(data, name, bool, where=where, request_id=req_id, required=False, default=False)
             for name in ("outboundCall", "inboundMessage", "outboundMessage")]
    return CallFlowSetup(req_id, inbound, *flags)


def _wa_out(obj: dict[str, Any], req_id: str) -> WaMsgOut:
    return WaMsgOut(req_id, field(obj, "data", dict, where="wa.msg.out", request_id=req_id))


def _ready(obj: dict[str, Any], _: str) -> SessionReady:
    return SessionReady(field(obj, "sessionId", str, where="session.ready"))


_PARSERS: dict[str, Callable[[dict[str, Any], str], ClientFrame]] = {
    "setup": _setup,
    "session.open": _open,
    "session.create": _create,
    "call_flow.setup": _call_flow,
    "wa.msg.out": _wa_out,
    "session.ready": _ready,
}
_REQUESTS = frozenset({"session.open", "session.create", "call_flow.setup", "wa.msg.out"})


def build_setup(sample_rate: int, audio_mode: str) -> str:
    return dumps({"type": "setup", "data": {"sampleRate": sample_rate, "audioMode": audio_mode}})


def build_session_open(req_id: str, session_id: str) -> str:
    return dumps({"type": "session.open", "sessionId": session_id, "reqId": req_id})


def build_session_create(req_id: str, channel: str, remote_address: str) -> str:
    return dumps({"type": "session.create", "channel": channel, "remoteAddress": remote_address,
                  "reqId": req_id})


def build_call_flow_setup(req_id: str, data: dict[str, Any]) -> str:
    return dumps({"type": "call_flow.setup", "data": data, "reqId": req_id})


def build_wa_msg_out(req_id: str, session_id: str, client_msg_id: str, api_version: str,
                     data: dict[str, Any]) -> str:
    return dumps({"type": "wa.msg.out", "reqId": req_id,
                  "data": {"sessionId": session_id, "clientMsgId": client_msg_id,
                           "apiVersion": api_version, "data": data}})


def build_session_ready(session_id: str) -> str:
    return dumps({"type": "session.ready", "sessionId": session_id})


# ── server → client ─────────────────────────────────────────────────────────

def build_setup_done(sm_ws_id: str) -> str:
    return dumps({"type": "setup.done", "smWsId": sm_ws_id})


def build_response(req_id: str, content: Any = None) -> str:
    return dumps({"type": "response", "reqId": req_id, "ok": True, "content": content})


def build_error_response(req_id: str, code: str, message: str,
                         error_content: Any = None) -> str:
    content = error_content if error_content is not None else {"message": message}
    return dumps({"type": "response", "reqId": req_id, "ok": False, "content": None,
                  "errorCode": code, "errorContent": content, "message": message})


def build_error(code: str, message: str) -> str:
    """An error about a frame that carried no ``reqId`` (clients ignore unknown types)."""
    return dumps({"type": "error", "errorCode": code, "message": message})


def build_session_notify(session_id: str, channel: str, remote: str, local: str,
                         activity: str, created_at: int) -> str:
    return dumps({"type": "session.notify", "sessionId": session_id, "channel": channel,
                  "remoteAddress": remote, "localAddress": local, "activity": activity,
                  "createdAt": created_at})


def build_call_in(session_id: str, call_id: str, org_uuid: str, caller: str, callee: str,
                  url: str, token: str) -> str:
    return dumps({"type": "call.in", "sessionId": session_id, "callId": call_id,
                  "orgUuid": org_uuid, "from": caller, "to": callee, "url": url, "token": token})


def build_session_closed(session_id: str, reason: str, cause: str | None = None) -> str:
    """``cause`` (ours, ignored by the published SDK) says why an outbound call never
    connected: CALL_UNANSWERED, CALL_REJECTED or CALLEE_BUSY."""
    frame: dict[str, Any] = {"type": "session.closed", "sessionId": session_id, "reason": reason}
    if cause is not None:
        frame["cause"] = cause
    return dumps(frame)


def build_wa_msg_in(session_id: str, sender: str, content: dict[str, Any]) -> str:
    """An inbound WA message; the gateway sends none yet, the SDK already reads it."""
    return dumps({"type": "wa.msg.in", "sessionId": session_id, "sender": sender,
                  "content": content})


@dataclass(frozen=True, slots=True)
class SetupDone:
    sm_ws_id: str | None


@dataclass(frozen=True, slots=True)
class Response:
    req_id: str
    ok: bool
    content: Any
    error_code: str | None
    error_content: Any


@dataclass(frozen=True, slots=True)
class SessionNotify:
    session_id: str
    channel: str
    remote_address: str
    local_address: str
    activity: str
    created_at: int


@dataclass(frozen=True, slots=True)
class CallIn:
    session_id: str
    call_id: str
    org_uuid: str
    caller: str
    callee: str
    url: str
    token: str = dataclass_field(repr=False)  # a bearer credential: kept out of logs


@dataclass(frozen=True, slots=True)
class SessionClosed:
    session_id: str
    reason: str
    cause: str | None = None


@dataclass(frozen=True, slots=True)
class WaMsgIn:
    session_id: str
    sender: str
    content: dict[str, Any]


# ``error`` frames (no reqId to answer) read as Unknown("error"): clients ignore them.
ServerFrame = SetupDone | Response | SessionNotify | CallIn | SessionClosed | WaMsgIn | Unknown


def parse_server_frame(text: str | bytes) -> ServerFrame:
    """The SDK's lenient reading of one server frame."""
    obj = decode_object(text, CLIENT_READ_LIMIT)
    kind = str_or_empty(obj, "type")
    if kind == "response":
        code = obj.get("errorCode")
        return Response(str_or_empty(obj, "reqId"), obj.get("ok") is True, obj.get("content"),
                        code if isinstance(code, str) else None, obj.get("errorContent"))
    if kind == "session.notify":
        return SessionNotify(str_or_empty(obj, "sessionId"), str_or_empty(obj, "channel"),
                             str_or_empty(obj, "remoteAddress"), str_or_empty(obj, "localAddress"),
                             str_or_empty(obj, "activity"), int_or_zero(obj, "createdAt"))
    if kind == "call.in":
        return CallIn(str_or_empty(obj, "sessionId"), str_or_empty(obj, "callId"),
                      str_or_empty(obj, "orgUuid"), str_or_empty(obj, "from"),
                      str_or_empty(obj, "to"), str_or_empty(obj, "url"),
                      str_or_empty(obj, "token"))
    if kind == "session.closed":
        return SessionClosed(str_or_empty(obj, "sessionId"), str_or_empty(obj, "reason"),
                             str_or_empty(obj, "cause") or None)
    if kind == "wa.msg.in":
        content = obj.get("content")
        return WaMsgIn(str_or_empty(obj, "sessionId"), str_or_empty(obj, "sender"),
                       content if isinstance(content, dict) else {})
    if kind == "setup.done":
        return SetupDone(str_or_empty(obj, "smWsId") or None)
    return Unknown(kind)
