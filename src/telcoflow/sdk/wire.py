"""Client side of the wire protocol: frames the SDK builds, server frames it reads.

Sans-I/O. Reading is lenient on purpose (missing fields take defaults,
unknown types become :class:`Unknown`) so a newer server never breaks an
older agent; a frame that is not a JSON object raises ``ProtocolError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telcoflow.protocol._json import decode_object, dumps

MAX_TEXT_BYTES = 1024 * 1024


# ── session-manager plane: client → server ─────────────────────────────────

def setup(sample_rate: int, audio_mode: str) -> str:
    return dumps({"type": "setup", "data": {"sampleRate": sample_rate, "audioMode": audio_mode}})


def session_open(req_id: str, session_id: str) -> str:
    return dumps({"type": "session.open", "sessionId": session_id, "reqId": req_id})


def session_create(req_id: str, channel: str, remote_address: str) -> str:
    return dumps({"type": "session.create", "channel": channel, "remoteAddress": remote_address,
                  "reqId": req_id})


def call_flow_setup(req_id: str, data: dict[str, Any]) -> str:
    return dumps({"type": "call_flow.setup", "data": data, "reqId": req_id})


def wa_msg_out(req_id: str, session_id: str, client_msg_id: str, api_version: str,
               data: dict[str, Any]) -> str:
    return dumps({"type": "wa.msg.out", "reqId": req_id,
                  "data": {"sessionId": session_id, "clientMsgId": client_msg_id,
                           "apiVersion": api_version, "data": data}})


def session_ready(session_id: str) -> str:
    return dumps({"type": "session.ready", "sessionId": session_id})


# ── session-manager plane: server → client ─────────────────────────────────

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
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SessionClosed:
    session_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class WaMsgIn:
    session_id: str
    sender: str
    content: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Unknown:
    type: str


SmFrame = SetupDone | Response | SessionNotify | CallIn | SessionClosed | WaMsgIn | Unknown


def _s(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _i(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def parse_sm(text: str | bytes) -> SmFrame:
    obj = decode_object(text, MAX_TEXT_BYTES)
    kind = _s(obj, "type")
    if kind == "response":
        return Response(_s(obj, "reqId"), obj.get("ok") is True, obj.get("content"),
                        obj.get("errorCode") if isinstance(obj.get("errorCode"), str) else None,
                        obj.get("errorContent"))
    if kind == "session.notify":
        return SessionNotify(_s(obj, "sessionId"), _s(obj, "channel"), _s(obj, "remoteAddress"),
                             _s(obj, "localAddress"), _s(obj, "activity"), _i(obj, "createdAt"))
    if kind == "call.in":
        return CallIn(_s(obj, "sessionId"), _s(obj, "callId"), _s(obj, "orgUuid"),
                      _s(obj, "from"), _s(obj, "to"), _s(obj, "url"), _s(obj, "token"))
    if kind == "session.closed":
        return SessionClosed(_s(obj, "sessionId"), _s(obj, "reason"))
    if kind == "wa.msg.in":
        content = obj.get("content")
        return WaMsgIn(_s(obj, "sessionId"), _s(obj, "sender"),
                       content if isinstance(content, dict) else {})
    if kind == "setup.done":
        return SetupDone(_s(obj, "smWsId") or None)
    return Unknown(kind)


# ── voice plane ──────────────────────────────────────────────────────────────

def command(command_id: str, name: str, timeout_ms: int,
            data: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"command_id": command_id, "command": name, "timeout_ms": timeout_ms}
    if data is not None:
        body["data"] = data
    return dumps({"type": "command", "data": body})


@dataclass(frozen=True, slots=True)
class BufferRequest:
    requested_bytes: int
    prefer_frame_bytes: int
    channel_id: int


@dataclass(frozen=True, slots=True)
class CommandResponse:
    command_id: str
    success: bool
    result: Any
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True, slots=True)
class CallEventFrame:
    event: str
    data: dict[str, Any]


VoiceFrame = BufferRequest | CommandResponse | CallEventFrame | Unknown


def parse_voice(text: str | bytes) -> VoiceFrame:
    obj = decode_object(text, MAX_TEXT_BYTES)
    kind = _s(obj, "type")
    raw = obj.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind == "buffer_request":
        return BufferRequest(_i(data, "requested_bytes"), _i(data, "prefer_audio_frame_bytes"),
                             _i(data, "channelId"))
    if kind == "command_response" and "command_id" in data:
        code, message = data.get("error_code"), data.get("error_message")
        return CommandResponse(str(data["command_id"]), bool(data.get("success")),
                               data.get("result"), code if isinstance(code, str) else None,
                               message if isinstance(message, str) else None)
    if kind == "call_event" and isinstance(data.get("event"), str):
        return CallEventFrame(data["event"], {k: v for k, v in data.items() if k != "event"})
    return Unknown(kind)


def split_audio(frame: bytes) -> tuple[int, bytes] | None:
    """``[channel][pcm]`` → ``(channel, pcm)``; frames under 2 bytes carry nothing."""
    if len(frame) < 2:
        return None
    return frame[0], frame[1:]
