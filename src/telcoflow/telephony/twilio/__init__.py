"""Twilio Media Streams as a call ingress (docs/twilio.md).

Two endpoints on the gateway's port:

- ``POST /v1/twilio/voice``: the number's "A call comes in" webhook. The
  ``X-Twilio-Signature`` is checked with the account's auth token against the
  public URL of the request and its form parameters (403 if missing or
  wrong). The answer is TwiML ``<Connect><Stream url=".../v1/twilio/media">``
  whose ``<Parameter>``s carry To, From, CallSid and a one-call stream token
  (the gateway's signed-token format, bound to the CallSid, one minute, one use).
- ``/v1/twilio/media``: the stream's WebSocket (:mod:`.media`).

The ``twilio`` library (the ``twilio`` extra) is imported here, lazily: a
gateway without it starts, with the Twilio door closed.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from ...engine import Engine
from ...protocol import twilio as tw
from ...server.app import Gateway
from ...server.config import TwilioConfig
from ...server.errors import AuthError, ConfigError
from ...server.netio import HttpRequest, HttpResponse, WsAccept, WsReject
from .media import MarkLedger, MediaStream, TwilioLeg

__all__ = ["MarkLedger", "MediaStream", "TwilioDoor", "TwilioLeg", "install"]

logger = logging.getLogger(__name__)

STREAM_TOKEN_TTL_S = 60.0          # Twilio opens the stream within a second or two
STREAM_TOKEN_OWNER = "twilio-stream"  # the token's "connector": never a real connector uuid


class TwilioDoor:
    """The webhook and the media streams of one gateway."""

    def __init__(self, gateway: Gateway, config: TwilioConfig, validator: Any,
                 twiml: tuple[Any, Any]) -> None:
        self.gateway = gateway
        self.engine: Engine = gateway.engine
        self.config = config
        self.legs: dict[str, TwilioLeg] = {}   # CallSid → the leg of a live stream
        self._validator = validator
        self._voice_response, self._connect = twiml
        self._used: dict[str, float] = {}     # CallSid → token expiry: a token opens one stream
        # CallSid → (To, From, expiry) as the signed webhook said: the stream's own
        # parameters come back from its far end and are not trusted for routing
        self._signed: dict[str, tuple[str, str, float]] = {}

    # ── the voice webhook ───────────────────────────────────────────────────
    def voice(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(405, b"the Twilio voice webhook takes POST\n", "text/plain",
                                [("Allow", "POST")])
        try:
            params = dict(parse_qsl(request.body.decode(), keep_blank_values=True,
                                    strict_parsing=bool(request.body)))
        except (ValueError, UnicodeDecodeError):
            return HttpResponse(400, b"the body must be form-encoded\n", "text/plain")
        signature = request.headers.get("x-twilio-signature", "")
        url = self.public_url(request)
        try:
            signed = bool(signature) and self._validator.validate(url, params, signature)
        except ValueError:
            # a Host the URL cannot hold ("gw:99999", "["): the validator's urlparse raises,
            # which answered 500; a request whose signature cannot be checked is refused
            signed = False
        if not signed:
            logger.warning("twilio webhook from %s: bad or missing X-Twilio-Signature for %s",
                           request.client, url)
            return HttpResponse(403, b"X-Twilio-Signature is missing or does not match this "
                                b"request\n", "text/plain")
        call_sid, to = params.get("CallSid", ""), params.get("To", "")
        if not call_sid or not to:
            return HttpResponse(400, b"CallSid and To are required\n", "text/plain")
        token = self.gateway.auth.issue_voice_token(call_sid, STREAM_TOKEN_OWNER,
                                                    ttl=STREAM_TOKEN_TTL_S)
        now = time.time()
        for sid in [s for s, (_, _, expiry) in self._signed.items() if expiry < now]:
            del self._signed[sid]
        self._signed[call_sid] = (to, params.get("From", ""), now + STREAM_TOKEN_TTL_S + 1)
        response = self._voice_response()
        connect = self._connect()
        stream = connect.stream(url=self.gateway.config.voice_base_url() + tw.MEDIA_PATH)
        for name, value in (("token", token), ("To", to), ("From", params.get("From", "")),
                            ("CallSid", call_sid)):
            stream.parameter(name=name, value=value)
        response.append(connect)
        return HttpResponse(200, str(response).encode(), "text/xml")

    def public_url(self, request: HttpRequest) -> str:
        """The URL Twilio requested (and signed): ``public_url`` (ws→http, wss→https) if set,
        else this request's Host on our scheme."""
        cfg = self.gateway.config
        if cfg.public_url:
            base = cfg.public_url.rstrip("/")
            if base.startswith("ws"):
                base = "http" + base[2:]
            return base + request.target
        scheme = "https" if cfg.tls else "http"
        host = request.headers.get("host") or f"{cfg.host}:{cfg.port}"
        return f"{scheme}://{host}{request.target}"

    # ── the media stream ────────────────────────────────────────────────────
    def media(self, request: HttpRequest) -> WsAccept | WsReject:
        # Twilio's upgrade carries no credentials we could check: the token in
        # start.customParameters is checked when the stream starts
        return WsAccept(MediaStream(self, self.gateway.clock.now), tw.MAX_FRAME_CHARS + 1)

    def check_stream_token(self, token: str, call_sid: str) -> tuple[str, str]:
        """The (To, From) the signed webhook gave ``call_sid``; AuthError unless ``token`` was
        issued for it, is unexpired and unused."""
        if not token:
            raise AuthError("start.customParameters has no token")
        owner = self.gateway.auth.verify_voice_token({"authorization": f"Bearer {token}"},
                                                     call_sid)
        if owner != STREAM_TOKEN_OWNER:
            raise AuthError("the token is not a Twilio stream token")
        now = time.time()
        for sid in [s for s, expiry in self._used.items() if expiry < now]:
            del self._used[sid]
        if call_sid in self._used:
            raise AuthError(f"a stream for call {call_sid} was already opened with this token")
        signed = self._signed.pop(call_sid, None)
        if signed is None:
            raise AuthError(f"no signed webhook is known for call {call_sid}")
        self._used[call_sid] = now + STREAM_TOKEN_TTL_S + 1
        return signed[0], signed[1]


def install(gateway: Gateway, config: TwilioConfig) -> TwilioDoor | None:
    """Route the webhook and the media WebSocket; None when the twilio library is absent
    and the door was only opened by the embedded defaults."""
    try:
        from twilio.request_validator import RequestValidator
        from twilio.twiml.voice_response import Connect, VoiceResponse
    except ImportError:
        if gateway.config.generated:
            logger.info("the Twilio door is closed: the twilio library is not installed "
                        "(pip install 'telcoflow[twilio]')")
            return None
        raise ConfigError("[twilio] is configured but the twilio library is not installed: "
                          "pip install 'telcoflow[twilio]'") from None
    door = TwilioDoor(gateway, config, RequestValidator(config.auth_token),
                      (VoiceResponse, Connect))
    gateway.add_http_route(tw.VOICE_PATH, door.voice)
    gateway.add_ws_route(tw.MEDIA_PATH, door.media)
    return door
