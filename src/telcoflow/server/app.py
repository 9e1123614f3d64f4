"""The gateway: configuration + engine + one listening socket for every plane."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl

from ..protocol import sm
from ..protocol import voice as vp
from ..protocol.phone import PHONE_PATH
from ..telephony.simulated import PhoneConn
from . import rest
from .auth import Authenticator
from .config import GatewayConfig
from .engine import Engine
from .errors import AuthError, GatewayError
from .netio import HttpRequest, HttpResponse, WsAccept, WsReject, serve
from .sm_ws import SmLink
from .voice_ws import VoiceConn

logger = logging.getLogger(__name__)

SM_PATH = "/v1/agent/session-manager"
_VOICE = re.compile(r"^/v1/voice/([A-Za-z0-9-]{1,64})$")


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.auth = Authenticator(config)
        self.engine = Engine(config, self.auth)
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await serve(self.route, self.config.host, self.config.port,
                                   self._ssl_context())
        if self.config.port == 0:
            self.config.port = self.port
        self.engine.clock.start()
        logger.info("gateway listening on %s", self.config.voice_base_url())

    async def stop(self) -> None:
        self.engine.shutdown()
        if self._server is not None:
            self._server.close()
            await asyncio.sleep(0)  # let close frames reach the transports

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
        try:
            if path == SM_PATH:
                connector = self.auth.connector_for(request.headers, request.peer_cert)
                if not websocket:
                    return HttpResponse(426, b"upgrade required: this endpoint is a WebSocket",
                                        "text/plain")
                return WsAccept(SmLink(self.engine, connector), sm.MAX_FRAME_BYTES)
            if path.startswith("/public/"):
                connector = self.auth.connector_for(request.headers, request.peer_cert)
                return rest.handle(self.engine, connector, request)
            match = _VOICE.match(path)
            if match and websocket:
                return self._voice(match.group(1), request)
            if path == PHONE_PATH and websocket:
                self.auth.check_phone(request.headers)
                return WsAccept(PhoneConn(self.engine), 1 << 16)
        except AuthError as exc:
            return _reject(websocket, exc)
        return _reject(websocket, GatewayError(f"no endpoint at {path}", "NOT_FOUND"), 404)

    def _voice(self, call_id: str, request: HttpRequest) -> WsAccept | WsReject:
        connector_uuid = self.auth.verify_voice_token(request.headers, call_id)
        call = self.engine.calls.get(call_id)
        if call is None or not call.live:
            return WsReject(410, f"call {call_id} has ended or does not exist")
        if call.session.connector_uuid != connector_uuid:
            return WsReject(403, "voice token belongs to another connector")
        return WsAccept(VoiceConn(self.engine, call), vp.MAX_AUDIO_BYTES + 1)


def _reject(websocket: bool, exc: GatewayError,
            status: int | None = None) -> HttpResponse | WsReject:
    code = status or exc.status
    if websocket:
        return WsReject(code, exc.message)
    return rest.json_response(code, {"code": exc.code, "message": exc.message})
