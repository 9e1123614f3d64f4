"""The REST plane: ``/public/v1/sessions`` for the authenticated connector."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs

from ..coded_error import CodedError
from ..engine import Engine
from .config import Connector
from .errors import BadRequest, MethodNotAllowed, NotFoundError
from .netio import HttpRequest, HttpResponse

_CLOSE = re.compile(r"^/public/v1/sessions/([^/]+)/close$")


def json_response(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(body, separators=(",", ":")).encode())


def error_response(exc: CodedError) -> HttpResponse:
    return json_response(exc.status, {"code": exc.code, "message": exc.message})


def handle(engine: Engine, connector: Connector, request: HttpRequest) -> HttpResponse:
    try:
        return _route(engine, connector, request)
    except CodedError as exc:
        return error_response(exc)


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
