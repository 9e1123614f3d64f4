"""The gateway: configuration + engine + one listening socket for every plane.

The agent planes (session manager, voice, REST) are built in. Phone-side
adapters register their own routes (:meth:`Gateway.add_ws_route`) and
diallers (``gateway.engine.add_dialler``); nothing here names one.

Operations (:mod:`.admin`): ``/healthz`` and ``/readyz`` on the gateway's port,
``/metrics`` there too or on a listener of its own (``[metrics] listen``). The
metrics (:mod:`.metrics`) observe the engine; WebSocket connections are counted
here by plane, and refused credentials by :class:`~.auth.Authenticator`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import ssl
import time
from collections.abc import Awaitable, Callable

from ..engine import Engine
from ..protocol import sm
from ..protocol import voice as vp
from . import rest
from .admin import METRICS_PATH, PATHS, PROBE_PATHS, AdminEndpoints, serve_admin
from .auth import Authenticator
from .cluster.node import ClusterNode
from .config import Connector, GatewayConfig
from .console import Console
from .errors import AuthError, GatewayError, NotFoundError
from .metrics import GatewayMetrics, Sources
from .netio import (
    HttpRequest,
    HttpResponse,
    NetLimits,
    NetServer,
    NetTimeouts,
    WsAccept,
    WsConnection,
    WsHandler,
    WsReject,
    serve,
)
from .records import CallRecords, FanOut
from .sm_ws import SmLink
from .stalls import StallWatch
from .voice_ws import VoiceConn

logger = logging.getLogger(__name__)

SM_PATH = "/v1/agent/session-manager"
_VOICE = re.compile(r"^/v1/voice/([A-Za-z0-9-]{1,64})$")

WsRoute = Callable[[HttpRequest], "WsAccept | WsReject"]
HttpRoute = Callable[[HttpRequest], HttpResponse]
Service = Callable[[], Awaitable[None]]


class LoopClock:
    """The engine's clock: the event loop's (which its timers run on) once started."""

    def __init__(self) -> None:
        self.now: Callable[[], float] = time.monotonic
        self.wall: Callable[[], float] = time.time


class EngineDriver:
    """Holds the engine's only timer handle: armed at ``next_deadline()``, re-armed
    after every firing and whenever the engine says a deadline came earlier."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self._engine, self._loop = engine, loop
        self._handle: asyncio.TimerHandle | None = None
        self._armed = math.inf
        engine.set_waker(self.arm)

    def arm(self) -> None:
        deadline = self._engine.next_deadline()
        if deadline is None or deadline >= self._armed:
            return  # an armed timer that finds nothing due just re-arms
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._armed = self._loop.call_at(deadline, self._fire), deadline

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._armed = None, math.inf

    def _fire(self) -> None:
        # A loop may run a timer before its deadline by its clock's resolution (uvloop's
        # clock counts whole milliseconds); the deadline is due by the loop's own rule, so
        # the engine is told it is. Without this the engine finds nothing due yet and the
        # re-armed timer fires again at once, spinning for up to a millisecond per tick.
        now = max(self._loop.time(), self._armed)
        self._handle, self._armed = None, math.inf
        try:
            self._engine.handle_timer(now)
        except Exception:  # a bug in one timer's handling must not stop every call's clock
            logger.exception("engine timer handling failed")
        self.arm()


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.auth = Authenticator(config)
        self.clock = LoopClock()
        self.metrics = GatewayMetrics() if config.metrics.enabled else None
        # call records (REST, the console) and recordings observe the engine beside metrics
        self.stalls = StallWatch()  # why media ticks ran late (logged, and on /metrics)
        self.records = CallRecords.for_gateway(
            config, lambda connector: self.engine.live_reports(connector, quality=True),
            lambda: self.clock.wall())
        self.engine = Engine(config.engine_settings(), self.clock,
                             FanOut(*(o for o in (self.metrics, self.records, self.stalls)
                                      if o is not None)))
        self.engine.recorder = self.records.recorder
        # the watch's CPU, on the loop's thread (where it runs): its share of the gateway's
        self.engine.watch_cost.cpu_clock = time.thread_time
        self.admin = AdminEndpoints(self.metrics, config.metrics.keys, self.auth,
                                    self._readiness)
        self.console = Console(config, self.auth, self.engine, lambda: self.clock.wall(),
                               self.rest_answer)
        self.readiness = "starting"  # /readyz: "ready" between start() and stop()
        self._ws_routes: dict[str, WsRoute] = {}
        self._http_routes: dict[str, HttpRoute] = {}
        self._body_bytes: dict[str, int] = {}
        self._services: list[tuple[Service, Service]] = []
        self._server: NetServer | None = None
        self._admin_server: NetServer | None = None
        self._voice_server: NetServer | None = None
        self._driver: EngineDriver | None = None
        self.cluster: ClusterNode | None = None  # [registry] url: several nodes share sessions

    def _readiness(self) -> str:
        """/readyz: "overloaded" (503) while new calls are refused (admission control,
        or ``max_calls`` reached): a load balancer sends the next caller elsewhere."""
        if self.readiness == "ready" and self.engine.full() is not None:
            return "overloaded"
        return self.readiness

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def admin_port(self) -> int | None:
        """The admin listener's port (``[metrics] listen``), None without one."""
        if self._admin_server is None:
            return None
        return int(self._admin_server.sockets[0].getsockname()[1])

    def add_ws_route(self, path: str, accept: WsRoute) -> None:
        """A phone-side adapter's WebSocket endpoint; ``accept`` authenticates."""
        if path in self._ws_routes or path in (SM_PATH,) or path in PATHS:
            raise ValueError(f"{path} is already routed")
        self._ws_routes[path] = accept

    def add_http_route(self, path: str, handle: HttpRoute, max_body: int | None = None) -> None:
        """A phone-side adapter's plain HTTP endpoint (a carrier's webhook); ``handle``
        authenticates and answers every method itself. ``max_body`` raises the request
        body's bound for this path (a webhook that batches)."""
        if path in self._http_routes or path in self._ws_routes or path == SM_PATH \
                or path in PATHS:
            raise ValueError(f"{path} is already routed")
        self._http_routes[path] = handle
        if max_body is not None:
            self._body_bytes[path] = max_body

    def add_service(self, start: Service, stop: Service) -> None:
        """An adapter's own listener (a UDP socket, say): started with the gateway, stopped
        after its calls have ended."""
        self._services.append((start, stop))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.clock.now = loop.time
        self._driver = EngineDriver(self.engine, loop)
        self.stalls.start()
        cfg = self.config
        timeouts = NetTimeouts(ping_interval=cfg.ws_ping_interval_s,
                               pong_timeout=cfg.ws_pong_timeout_s)
        limits = NetLimits(cfg.max_connections, cfg.max_pending_per_source,
                           cfg.listen_backlog, self._body_bytes)
        self._server = await serve(self.route, cfg.host, cfg.port, self._ssl_context(),
                                   timeouts=timeouts, limits=limits, reuse_port=cfg.reuse_port)
        if cfg.voice_port is not None:  # a worker: its calls' voice connections come here
            self._voice_server = await serve(self.route, cfg.host, cfg.voice_port,
                                             self._ssl_context(), timeouts=timeouts,
                                             limits=limits)
            cfg.voice_port = int(self._voice_server.sockets[0].getsockname()[1])
        for start, _ in self._services:
            await start()
        if self.config.port == 0:
            self.config.port = self.port
        if cfg.registry.url is not None:  # after the port is known: it is advertised
            self.cluster = ClusterNode(self, cfg.registry)
            try:
                await self.cluster.start()
            except Exception:
                self.cluster = None
                await self._server.shutdown(timeout=1.0)
                raise
        server = self._server
        if self.metrics is not None:
            cluster = self.cluster
            self.metrics.sources = Sources(self.engine, self.auth.failures.items,
                                           lambda: server.connections,
                                           None if cluster is None else lambda: cluster.healthy,
                                           self.stalls)
        mcfg = cfg.metrics
        if mcfg.host is not None:
            self._admin_server = await serve_admin(self.admin, mcfg.host, mcfg.port)
            mcfg.port = self.admin_port or mcfg.port
            logger.info("metrics and probes on http://%s:%d", mcfg.host, mcfg.port)
        self.readiness = "ready"
        logger.info("gateway listening on %s%s", cfg.listen_url(), "" if cfg.voice_port is None
                    else f" (this worker's calls' voice on {cfg.voice_base_url()})")

    async def stop(self) -> None:
        self.readiness = "stopping"  # /readyz answers 503 from now until the port closes
        self.engine.shutdown()
        if self.cluster is not None:
            await self.cluster.stop()
        for _, stop in reversed(self._services):
            await stop()
        if self._driver is not None:
            self._driver.stop()
        self.stalls.stop()
        if self._server is not None:
            await self._server.shutdown(code=1001, reason="server shutting down", timeout=2.0)
        if self._admin_server is not None:
            await self._admin_server.shutdown(timeout=1.0)
        if self._voice_server is not None:
            await self._voice_server.shutdown(code=1001, reason="server shutting down",
                                              timeout=2.0)

    def _ssl_context(self) -> ssl.SSLContext | None:
        tls = self.config.tls
        if tls is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls.cert, tls.key)
        if tls.client_ca:
            ctx.load_verify_locations(tls.client_ca)
            # API-key clients connect without a certificate; mTLS ones present one
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    # ── routing ────────────────────────────────────────────────────────────
    def route(self, request: HttpRequest, websocket: bool) -> HttpResponse | WsAccept | WsReject:
        path = request.path
        plane = "phone"  # a carrier door's, unless one of ours below
        try:
            if path == SM_PATH:
                plane = "session_manager"
                connector = self.auth.connector_for(request.headers, request.peer_cert, plane)
                if not websocket:
                    return HttpResponse(426, b"upgrade required: this endpoint is a WebSocket",
                                        "text/plain")
                return self._counted(WsAccept(SmLink(self.engine, connector, self.auth,
                                                     self.config.voice_base_url(),
                                                     cluster=self.cluster),
                                              sm.MAX_FRAME_BYTES), plane)
            if Console.serves(path):  # the web console: its own session cookies
                plane = "console"
                return self._counted(self.console.route(request, websocket), plane)
            if path.startswith("/public/"):
                plane = "rest"
                connector = self.auth.connector_for(request.headers, request.peer_cert, plane)
                return self.rest_answer(connector, request)
            if path in PROBE_PATHS or path == METRICS_PATH and self._admin_server is None:
                if websocket:
                    return WsReject(400, f"{path} is plain HTTP, not a WebSocket")
                return self.admin.handle(request)
            match = _VOICE.match(path)
            if match and websocket:
                plane = "voice"
                return self._counted(self._voice(match.group(1), request), plane)
            accept = self._ws_routes.get(path)
            if accept is not None and websocket:
                return self._counted(self._door_refusal(accept(request)), plane)
            handle = self._http_routes.get(path)
            if handle is not None and not websocket:
                return self._door_refusal(handle(request))
        except AuthError as exc:
            if not self.auth.counted(exc):  # a carrier door checked its own credentials
                self.auth.failures[(plane, "refused")] += 1
            return _reject(websocket, exc)
        return _reject(websocket, NotFoundError(f"no endpoint at {path}"))

    def rest_answer(self, connector: Connector, request: HttpRequest) -> HttpResponse:
        """The REST plane's answer for an authenticated connector (``/public/`` and the
        console's ``/console/api/``)."""
        if self.cluster is not None:  # sessions are listed and closed across the nodes
            answer = self.cluster.rest(connector, request)
            if answer is not None:
                return answer
        return rest.handle(self.engine, connector, request, self.records,
                           self.config.recordings.max_served_mb << 20)

    def _door_refusal(self, outcome: _Outcome) -> _Outcome:
        """Count a carrier door's own refusal (a bad webhook signature: 401 / 403)."""
        if not isinstance(outcome, WsAccept) and outcome.status in (401, 403):
            self.auth.failures[("phone", "refused")] += 1
        return outcome

    def _counted(self, outcome: _Outcome, plane: str) -> _Outcome:
        """An accepted WebSocket is counted in ``telcoflow_connections`` while open."""
        if isinstance(outcome, WsAccept) and self.metrics is not None:
            outcome.handler = _CountedHandler(outcome.handler, plane, self.metrics)
        return outcome

    def _voice(self, call_id: str, request: HttpRequest) -> WsAccept | WsReject:
        connector_uuid = self.auth.verify_voice_token(request.headers, call_id)
        owner = self.engine.call_connector(call_id)
        if owner is None:
            return WsReject(410, f"call {call_id} has ended or does not exist")
        if owner != connector_uuid:
            self.auth.failures[("voice", "wrong_connector")] += 1
            return WsReject(403, "voice token belongs to another connector")
        token_id = hashlib.sha256(request.headers.get("authorization", "").encode(
            "utf-8", "surrogateescape")).digest()
        source = request.client[0] if request.client else ""
        current = self.engine.agent_link(call_id)
        if current is not None and getattr(current, "token_id", None) == token_id \
                and getattr(current, "source", None) != source:
            # a copy of the token used from another address cannot take a live call from
            # its agent. The same agent may open it again (the published SDK retries a
            # voice connection it gave up on: the new one replaces the old), a newer
            # call.in's token (a RESUME claim) supersedes it, and once the link is gone
            # the agent may reconnect with it within agent_reconnect_grace_s.
            return WsReject(409, f"call {call_id} already has a voice connection opened "
                                 "with this token from another address")
        return WsAccept(VoiceConn(self.engine, call_id, token_id=token_id, source=source),
                        vp.MAX_AUDIO_BYTES + 1)


_Outcome = HttpResponse | WsAccept | WsReject


class _CountedHandler:
    """A WebSocket handler counted from open to close. Frames go straight to the
    handler's own bound methods (set here): no extra call on the per-frame path."""

    __slots__ = ("on_text", "on_binary", "_handler", "_plane", "_metrics", "_open")

    def __init__(self, handler: WsHandler, plane: str, metrics: GatewayMetrics) -> None:
        self.on_text = handler.on_text
        self.on_binary = handler.on_binary
        self._handler, self._plane, self._metrics = handler, plane, metrics
        self._open = False

    def on_open(self, conn: WsConnection) -> None:
        self._open = True
        self._metrics.connection_opened(self._plane)
        self._handler.on_open(conn)

    def on_close(self, code: int | None, reason: str) -> None:
        if self._open:
            self._open = False
            self._metrics.connection_closed(self._plane)
        self._handler.on_close(code, reason)


def _reject(websocket: bool, exc: GatewayError) -> HttpResponse | WsReject:
    if websocket:
        return WsReject(exc.status, exc.message)
    return rest.error_response(exc)
