"""The REST plane, for the authenticated connector: ``/public/v1/sessions`` and
``/public/v1/calls`` (call records and recordings, :mod:`.records`).

A connector only ever sees its own calls: another connector's call id answers 404,
exactly as an unknown one does, so ids do not leak. A call id must look like one of
ours (a UUID) before anything is looked up; a recording's file path is made from the
connector and that id on the server side."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs

from ..coded_error import CodedError
from ..engine import Engine
from .config import Connector
from .errors import (
    BadRequest,
    Conflict,
    MethodNotAllowed,
    NotFoundError,
    RangeNotSatisfiable,
    TooLarge,
)
from .netio import HttpRequest, HttpResponse
from .recordings import CALL_ID
from .records import CallRecords

_CLOSE = re.compile(r"^/public/v1/sessions/([^/]+)/close$")
_CALL = re.compile(r"^/public/v1/calls/([^/]*)(/recording)?$")
DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
RANGE_CHUNK = 1 << 20  # the most one ranged request of a recording gets
_RANGE = re.compile(r"^bytes=(\d{0,15})-(\d{0,15})$")


def json_response(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(body, separators=(",", ":")).encode())


def error_response(exc: CodedError) -> HttpResponse:
    return json_response(exc.status, {"code": exc.code, "message": exc.message})


def handle(engine: Engine, connector: Connector, request: HttpRequest,
           records: CallRecords | None = None, max_recording: int = 64 << 20) -> HttpResponse:
    try:
        if records is not None and (request.path == "/public/v1/calls"
                                    or request.path.startswith("/public/v1/calls/")):
            return _calls(records, connector, request, max_recording)
        return _route(engine, connector, request)
    except CodedError as exc:
        return error_response(exc)


def _calls(records: CallRecords, connector: Connector, request: HttpRequest,
           max_recording: int) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        raise _method(request.method, "GET")
    if request.path == "/public/v1/calls":
        return _list_calls(records, connector.uuid, request.query)
    match = _CALL.match(request.path)
    if match is None:
        raise NotFoundError(f"no endpoint at {request.path}")
    call_id = match.group(1)
    if not CALL_ID.match(call_id):
        raise BadRequest("the call id must be one of the gateway's call ids (a lower-case "
                         "UUID)")
    record = records.find(connector.uuid, call_id)
    if match.group(2) is None:
        if record is None:
            raise NotFoundError(f"no call {call_id} for this connector")
        return HttpResponse(200, record)
    return _recording(records, connector.uuid, call_id, record, max_recording,
                      request.headers.get("range"))


def _list_calls(records: CallRecords, connector: str, query_text: str) -> HttpResponse:
    query = {k: v[-1] for k, v in parse_qs(query_text).items()}
    state = query.get("state")
    if state not in (None, "live", "ended"):
        raise BadRequest("the state filter must be live or ended")
    limit_text = query.get("limit", str(DEFAULT_LIMIT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    limit = int(limit_text)
    items: list[bytes] = []
    if state in (None, "live"):
        items = [json.dumps(r, separators=(",", ":")).encode()
                 for r in records.live(connector)[:limit]]
    if state in (None, "ended"):
        items += records.ended(connector, limit - len(items))
    # the ended records are kept serialised: the list is joined, not re-encoded
    return HttpResponse(200, b'{"items":[' + b",".join(items) + b"]}")


def _recording(records: CallRecords, connector: str, call_id: str, record: bytes | None,
               max_bytes: int, request_range: str | None) -> HttpResponse:
    recorder = records.recorder
    path = recorder.path(connector, call_id) if recorder is not None else None
    if recorder is None or connector not in recorder.connectors or path is None:
        raise NotFoundError("this connector's calls are not recorded (record = true in its "
                            "[[connectors]] entry turns recording on)")
    if record is not None and json.loads(record).get("endedAt") is None:
        raise Conflict(f"call {call_id} is still live: its recording is served once it ends")
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            span = byte_range(request_range, size, max_bytes)
            f.seek(span[0] if span else 0)
            body = f.read(span[1] - span[0] + 1 if span else size)
    except FileNotFoundError:
        raise NotFoundError(f"no recording of call {call_id} for this connector") from None
    headers = [("accept-ranges", "bytes"),
               ("content-disposition", f'attachment; filename="{call_id}.wav"')]
    if span is None:
        return HttpResponse(200, body, "audio/wav", headers)
    headers.append(("content-range", f"bytes {span[0]}-{span[1]}/{size}"))
    return HttpResponse(206, body, "audio/wav", headers)


def byte_range(header: str | None, size: int, max_bytes: int) -> tuple[int, int] | None:
    """The one byte range asked for (inclusive, at most ``RANGE_CHUNK`` long: a player
    asks for the next one), or None for the whole file, which is capped at ``max_bytes``."""
    if header is None:
        if size > max_bytes:
            raise TooLarge(f"the recording is {size} bytes; whole recordings over {max_bytes} "
                           "bytes are not served in one answer ([recordings] max_served_mb): "
                           "ask for it in parts with Range: bytes=START-END")
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiable("Range must be one span: bytes=START-END, bytes=START- "
                                  "or bytes=-SUFFIX")
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        start = max(0, size - int(last))
        end = size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"the recording has {size} bytes; the range asked for is "
                                  "outside it")
    return start, min(end, start + RANGE_CHUNK - 1)


def _route(engine: Engine, connector: Connector, request: HttpRequest) -> HttpResponse:
    path = request.path
    if path == "/public/v1/sessions":
        if request.method != "GET":
            raise _method(request.method, "GET")
        sessions = engine.sessions.find(connector.uuid, *list_filters(request))
        return json_response(200, {"items": [s.public() for s in sessions]})
    match = _CLOSE.match(path)
    if match:
        if request.method != "POST":
            raise _method(request.method, "POST")
        session = engine.close_session(connector.uuid, match.group(1))
        return json_response(200, {"closedAt": session.closed_at or int(time.time()),
                                   "reason": session.close_reason})
    raise NotFoundError(f"no endpoint at {path}")


def list_filters(request: HttpRequest) -> tuple[str | None, str | None, str | None]:
    """A session list's query: channel, remoteAddress and state (OPEN or CLOSED)."""
    query = {k: v[-1] for k, v in parse_qs(request.query).items()}
    state = query.get("state")
    if state is not None and state not in ("OPEN", "CLOSED"):
        raise BadRequest("the state filter must be OPEN or CLOSED")
    return query.get("channel"), query.get("remoteAddress"), state


def _method(got: str, allowed: str) -> MethodNotAllowed:
    return MethodNotAllowed(f"method {got} is not allowed here; use {allowed}")
