"""The web console: ``GET /`` and ``/console/…`` on the gateway's port (docs/console.md).

Static files shipped in the package (no build step): live calls with their
quality, recent call records with recording playback and plots, and a browser
softphone on the simulated-phone plane (``/console/phone``).

Who may see it: a person who pastes one of a connector's API keys into the
login form (``POST /console/login``) gets a session cookie (:mod:`.session`:
signed, expiring, HttpOnly, SameSite=Strict, naming that connector and never
holding the key). Every other console path refuses a request without one (401);
``GET /`` without one is the login form, which shows nothing of any connector.
The console's data comes from the REST plane itself: ``/console/api/X`` is
``/public/v1/X`` (GET only) answered by :func:`telcoflow.server.rest.handle`
for the session's connector, so the console can show nothing REST would not.
State-changing requests (login, logout) and the softphone's WebSocket must come
from the console's own origin (``Origin``), on top of SameSite.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from .. import rest
from ..config import Connector, GatewayConfig
from ..errors import (
    AuthError,
    BadRequest,
    ForbiddenError,
    GatewayError,
    MethodNotAllowed,
    NotFoundError,
)
from ..netio import HttpRequest, HttpResponse, WsAccept, WsReject
from .session import COOKIE, SessionSigner, cookie_value, set_cookie
from .softphone import PhoneHandler, SoftphoneConn

if TYPE_CHECKING:
    from ...engine import Engine
    from ..auth import Authenticator

ROOT = "/"
PREFIX = "/console/"
LOGIN = "/console/login"
LOGOUT = "/console/logout"
PHONE = "/console/phone"
STATIC = "/console/static/"
API = "/console/api/"
ME = "/console/api/me"
PLANE = "console"  # in auth failures and the connections gauge

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8"}
# what REST paths look like: no dot segments, no encoded characters (nothing to decode)
_API_PATH = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_.-]+){0,3}$")
# (referrer "same-origin", not "no-referrer": with no-referrer a form POST says Origin: null)
# the page runs our files only; the recording plays from our origin (and a blob: for the
# waveform's decode); no frames, no forms posting elsewhere
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; media-src 'self' blob:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")
_LOGIN_CSP = _CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
_SECURITY = [("x-content-type-options", "nosniff"), ("referrer-policy", "same-origin"),
             ("cache-control", "no-store")]

PhoneFactory = Callable[[], PhoneHandler]
RestAnswer = Callable[[Connector, HttpRequest], HttpResponse]


class Console:
    def __init__(self, config: GatewayConfig, auth: Authenticator, engine: Engine,
                 wall: Callable[[], float], rest_answer: RestAnswer,
                 signer: SessionSigner | None = None) -> None:
        self._config, self._auth, self._engine, self._wall = config, auth, engine, wall
        self._rest = rest_answer  # the gateway's: what /public/ answers, the same way
        self._signer = signer or SessionSigner()
        self._connectors = {c.uuid: c for c in config.connectors}
        self._files = _load_static()
        self.phone_factory: PhoneFactory = self._simulated_phone

    @staticmethod
    def serves(path: str) -> bool:
        return path == ROOT or path.startswith(PREFIX)

    def route(self, request: HttpRequest, websocket: bool) -> HttpResponse | WsAccept | WsReject:
        try:
            if websocket:
                return self._phone(request)
            return self._http(request)
        except GatewayError as exc:
            if websocket:
                return WsReject(exc.status, exc.message)
            return _with(rest.error_response(exc), _SECURITY)

    # ── HTTP ────────────────────────────────────────────────────────────────
    def _http(self, request: HttpRequest) -> HttpResponse:
        path, method = request.path, request.method
        if path == LOGIN:
            _only(method, "POST")
            return self._login(request)
        if path == ROOT:
            _only(method, "GET", "HEAD")
            if self._connector(request) is None:
                return _login_page(200)
            return self._file("index.html")
        connector = self._session(request)
        if path == LOGOUT:
            _only(method, "POST")
            self._check_origin(request)
            return HttpResponse(303, b"", "text/plain", [
                ("location", ROOT), ("set-cookie", set_cookie("", 0, self._secure)), *_SECURITY])
        _only(method, "GET", "HEAD")
        if path.startswith(STATIC):
            return self._file(path[len(STATIC):])
        if path == ME:
            return _with(rest.json_response(200, {"connector": connector.uuid,
                                                  "numbers": connector.numbers}), _SECURITY)
        if path.startswith(API) and _API_PATH.match(path[len(API):]):
            return self._api(connector, request)
        raise NotFoundError(f"no console endpoint at {path}")

    def _login(self, request: HttpRequest) -> HttpResponse:
        self._check_origin(request)
        try:
            form = parse_qs(request.body.decode("utf-8", "replace"), max_num_fields=4)
        except ValueError:  # more fields than a login form has
            raise BadRequest("the login form has one field, key") from None
        key = form.get("key", [""])[-1].strip()
        try:
            connector = self._auth.connector_by_key(key, PLANE)
        except AuthError as exc:
            return _login_page(401, exc.message)
        cookie = self._signer.issue(connector.uuid, self._wall())
        return HttpResponse(303, b"", "text/plain", [
            ("location", ROOT), ("set-cookie", set_cookie(cookie, self._signer.ttl_s,
                                                          self._secure)), *_SECURITY])

    def _api(self, connector: Connector, request: HttpRequest) -> HttpResponse:
        """The REST plane's answer, for the session's connector."""
        target = "/public/v1/" + request.target[len(API):]
        headers = {k: v for k, v in request.headers.items() if k not in ("cookie",)}
        inner = HttpRequest(request.method, target, headers, b"", request.peer_cert,
                            request.client)
        return _with(self._rest(connector, inner), _SECURITY)

    def _file(self, name: str) -> HttpResponse:
        body = self._files.get(name)
        if body is None:
            raise NotFoundError(f"no console file {name[:64]!r}")
        csp = [("content-security-policy", _CSP)] if name.endswith(".html") else []
        return HttpResponse(200, body, _TYPES[name[name.rfind("."):]], [*_SECURITY, *csp])

    # ── the softphone ───────────────────────────────────────────────────────
    def _phone(self, request: HttpRequest) -> WsAccept | WsReject:
        if request.path != PHONE:
            raise NotFoundError(f"no console WebSocket at {request.path}")
        connector = self._session(request)
        self._check_origin(request, required=True)
        return WsAccept(SoftphoneConn(self.phone_factory(), connector.numbers), 1 << 16)

    def _simulated_phone(self) -> PhoneHandler:
        """A phone connection of the gateway's simulated network (imported here: the
        telephony package imports the server's, not the other way round)."""
        from ...telephony.simulated import PhoneConn, SimulatedNetwork
        for dialler in self._engine.diallers:
            if isinstance(dialler, SimulatedNetwork):
                return PhoneConn(dialler)
        raise NotFoundError("this gateway has no simulated phone network")

    # ── who is asking ───────────────────────────────────────────────────────
    def _session(self, request: HttpRequest) -> Connector:
        """The session's connector, or a refusal (401, counted)."""
        connector = self._connector(request)
        if connector is None:
            reason = "invalid_session" if "cookie" in request.headers else "missing"
            raise self._auth.refused(PLANE, reason, "not logged in to the console (or the "
                                     "session expired): open / and paste an API key")
        return connector

    def _connector(self, request: HttpRequest) -> Connector | None:
        value = cookie_value(request.headers.get("cookie", ""))
        uuid = self._signer.verify(value, self._wall()) if value else None
        return self._connectors.get(uuid) if uuid else None

    def _check_origin(self, request: HttpRequest, required: bool = False) -> None:
        """The request comes from a page of this origin (a browser always says which
        for a WebSocket and a POST; ``required``: an absent Origin is refused too). The
        origin is the ``Host`` the browser asked for, or ``public_url``'s (a gateway
        behind a proxy that rewrites ``Host``)."""
        origin = request.headers.get("origin")
        if origin is None and not required:
            return
        host = request.headers.get("host", "")
        parts = urlsplit(origin or "")
        ours = {host, self._public_host} - {""}
        if parts.scheme not in ("http", "https") or parts.netloc not in ours:
            self._auth.failures[(PLANE, "bad_origin")] += 1
            raise ForbiddenError("the request does not come from the console's own page "
                                 "(Origin does not match Host)")

    @property
    def _public_host(self) -> str:
        return urlsplit(self._config.public_url or "").netloc

    @property
    def _secure(self) -> bool:
        return self._config.tls is not None or (self._config.public_url or "").startswith("wss:")


def _only(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise MethodNotAllowed(f"method {method} is not allowed here; use {' or '.join(allowed)}")


def _with(response: HttpResponse, headers: list[tuple[str, str]]) -> HttpResponse:
    response.headers = [*response.headers, *headers]
    return response


def _load_static() -> dict[str, bytes]:
    """Every shipped file, read once (a few tens of kB): served from memory."""
    folder = resources.files(__package__).joinpath("static")
    return {entry.name: entry.read_bytes() for entry in folder.iterdir()
            if entry.is_file() and entry.name[entry.name.rfind("."):] in _TYPES}


_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Telcoflow console: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px system-ui,sans-serif;background:#f4f5f7;display:grid;place-items:center;
min-height:90vh}}form{{background:#fff;padding:2em;border-radius:8px;
box-shadow:0 1px 4px #0002;width:24em}}input{{width:100%;box-sizing:border-box;padding:.5em;
margin:.5em 0 1em;font-family:monospace}}button{{padding:.5em 1.5em}}
.error{{color:#b00020}}</style></head>
<body><form method="post" action="{action}" id="login">
<h1>Telcoflow console</h1>
<label for="key">A connector's API key</label>
<input id="key" name="key" type="password" autocomplete="off" required autofocus>
<p class="error" id="error">{error}</p>
<button type="submit">Log in</button>
<p><small>The key is checked once; the browser keeps a session cookie for this connector,
never the key.</small></p></form></body></html>
"""


def _login_page(status: int, error: str = "") -> HttpResponse:
    body = _LOGIN_PAGE.format(action=LOGIN, error=html.escape(error)).encode()
    return HttpResponse(status, body, _TYPES[".html"],
                        [*_SECURITY, ("content-security-policy", _LOGIN_CSP)])


__all__ = ["COOKIE", "Console", "SessionSigner"]
