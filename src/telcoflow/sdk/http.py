"""A small REST client (HTTP/1.1 over h11, one connection per request).

The REST plane is used a few times per session at most, so a pooled client
would buy nothing; h11 is already a dependency and keeps parsing sans-I/O.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11

from ._log import get_logger, safe_url
from .errors import WSSConnectionError, error_for_code
from .messages import CloseResult, SessionInfo

logger = get_logger("http_client")

TIMEOUT = 30.0


@dataclass
class HttpResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class HttpClient:
    """REST calls of the SDK, authenticated like the SM-WS."""

    def __init__(self, base_http_url: str, headers: dict[str, str],
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._base = base_http_url.rstrip("/")
        self._headers = headers
        self._ssl = ssl_context

    async def list_sessions(self, channel: str | None = None, remote_address: str | None = None,
                            state: str | None = "OPEN") -> list[SessionInfo]:
        params = {k: v for k, v in (("channel", channel), ("remoteAddress", remote_address),
                                    ("state", state)) if v is not None}
        resp = await self.request("GET", "/public/v1/sessions", params)
        _raise_for_status(resp)
        data = resp.json()
        items = data.get("items", []) if isinstance(data, dict) else []
        return [SessionInfo.from_dict(item) for item in items if isinstance(item, dict)]

    async def close_session(self, session_id: str) -> CloseResult:
        """Close a session; 404 counts as already closed."""
        resp = await self.request("POST", f"/public/v1/sessions/{session_id}/close")
        if resp.status == 404:
            return CloseResult(closed_at=0, reason="NOT_FOUND")
        _raise_for_status(resp)
        data = resp.json() or {}
        return CloseResult(closed_at=int(data.get("closedAt", 0)),
                           reason=str(data.get("reason", "")))

    async def request(self, method: str, path: str,
                      params: dict[str, str] | None = None) -> HttpResponse:
        url = self._base + path + (f"?{urlencode(params)}" if params else "")
        try:
            async with asyncio.timeout(TIMEOUT):
                return await self._exchange(method, url)
        except (OSError, TimeoutError, h11.ProtocolError) as exc:
            raise WSSConnectionError(f"HTTP request failed: {method} {safe_url(url)}: "
                                     f"{type(exc).__name__}") from exc

    async def _exchange(self, method: str, url: str) -> HttpResponse:
        parts = urlsplit(url)
        secure = parts.scheme == "https"
        host = parts.hostname or "localhost"
        port = parts.port or (443 if secure else 80)
        tls = (self._ssl or ssl.create_default_context()) if secure else None
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        try:
            return await _roundtrip(reader, writer, method, parts, host, port, self._headers)
        finally:
            writer.close()


async def _roundtrip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str,
                     parts: Any, host: str, port: int, extra: dict[str, str]) -> HttpResponse:
    conn = h11.Connection(our_role=h11.CLIENT)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = [("Host", f"{host}:{port}"), ("Connection", "close"), ("Content-Length", "0"),
               *extra.items()]
    writer.write(conn.send(h11.Request(method=method, target=target, headers=headers)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()
    status, body = 0, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return HttpResponse(status, bytes(body))


def _raise_for_status(resp: HttpResponse) -> None:
    if 200 <= resp.status < 300:
        return
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = str(data.get("code", "UNKNOWN"))
        message = str(data.get("message", ""))
    else:
        code, message = "UNKNOWN", resp.body.decode("utf-8", "replace")
    raise error_for_code(code, message or f"HTTP {resp.status}")
