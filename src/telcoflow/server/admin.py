"""Operations endpoints: ``/metrics`` (Prometheus, bearer key), ``/healthz``, ``/readyz``.

Served on the gateway's own port by default; ``[metrics] listen`` moves them to
a listener of their own (plain HTTP, a few connections: a scrape there is not
refused when the public port is full, and the figures need not be reachable
from where callers connect). The probes are answered on the gateway's port in
both cases: ``/readyz`` must describe the port that takes calls.

``/metrics`` refuses every request without one of the ``[metrics] keys`` as
``Authorization: Bearer <key>`` (401, counted as an auth failure of plane
``metrics``): it shows every connector's traffic, so neither an API key nor a
phone key opens it. The probes are unauthenticated: an orchestrator's probe
carries no secret, and they tell one bit (alive; taking calls) that anyone can
learn by trying to connect — no version, no counts, no names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

from .auth import Authenticator
from .metrics import GatewayMetrics
from .netio import HttpRequest, HttpResponse, NetLimits, NetServer, NetTimeouts, serve

METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
PATHS = frozenset((METRICS_PATH, HEALTH_PATH, READY_PATH))
PROBE_PATHS = frozenset((HEALTH_PATH, READY_PATH))

# the admin listener: Prometheus and a few probes, nothing else
ADMIN_LIMITS = NetLimits(max_connections=64, max_pending_per_source=16, backlog=64)


class AdminEndpoints:
    """Answers the three paths; ``readiness()`` is "ready", "starting", "stopping" or
    "overloaded" (admission control refuses new calls)."""

    def __init__(self, metrics: GatewayMetrics | None, keys: list[str], auth: Authenticator,
                 readiness: Callable[[], str]) -> None:
        self.metrics = metrics
        self._keys = [hashlib.sha256(k.encode()).digest() for k in keys]
        self._auth = auth
        self._readiness = readiness

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return _json(405, {"code": "METHOD_NOT_ALLOWED",
                               "message": f"method {request.method} is not allowed here; "
                                          "use GET"}, [("allow", "GET, HEAD")])
        path = request.path
        if path == HEALTH_PATH:
            return _json(200, {"status": "ok"})
        if path == READY_PATH:
            state = self._readiness()
            return _json(200 if state == "ready" else 503, {"status": state})
        if path == METRICS_PATH:
            return self._metrics(request)
        return _json(404, {"code": "NOT_FOUND", "message": f"no endpoint at {path}"})

    def _metrics(self, request: HttpRequest) -> HttpResponse:
        if self.metrics is None:
            return _json(404, {"code": "NOT_FOUND",
                               "message": "metrics are switched off ([metrics] enabled = false)"})
        refusal = self._check(request.headers.get("authorization", ""))
        if refusal is not None:
            return _json(401, {"code": "UNAUTHORIZED", "message": refusal},
                         [("www-authenticate", 'Bearer realm="telcoflow-metrics"')])
        body, content_type = self.metrics.render(request.headers.get("accept", ""))
        return HttpResponse(200, body, content_type, [("cache-control", "no-store")])

    def _check(self, authorization: str) -> str | None:
        """None if the bearer key is a metrics key, else why not (counted, never the key)."""
        if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            self._auth.failures[("metrics", "missing")] += 1
            return "missing credentials: send Authorization: Bearer <metrics key>"
        digest = hashlib.sha256(authorization[7:].strip().encode("utf-8",
                                                                 "surrogateescape")).digest()
        # every key compared, in constant time each: no early exit tells which was close
        if not any([hmac.compare_digest(digest, key) for key in self._keys]):
            self._auth.failures[("metrics", "invalid_key")] += 1
            return ("invalid metrics key" if self._keys else
                    "no metrics key is configured: set [metrics] keys (or TELCOFLOW_METRICS_KEY)")
        return None


async def serve_admin(endpoints: AdminEndpoints, host: str, port: int) -> NetServer:
    """The admin listener: plain HTTP, the three paths only."""
    def route(request: HttpRequest, websocket: bool) -> HttpResponse:
        if websocket:
            return _json(400, {"code": "INVALID_REQUEST",
                               "message": "this listener is plain HTTP"})
        return endpoints.handle(request)

    return await serve(route, host, port, None, timeouts=NetTimeouts(), limits=ADMIN_LIMITS)


def _json(status: int, body: dict[str, str], headers: list[tuple[str, str]] | None = None
          ) -> HttpResponse:
    return HttpResponse(status, json.dumps(body, separators=(",", ":")).encode(),
                        headers=headers or [])
