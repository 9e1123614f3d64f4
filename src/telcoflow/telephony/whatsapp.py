"""The WhatsApp Cloud API as a message network (docs/whatsapp.md).

One endpoint on the gateway's port, ``/v1/whatsapp``, given to Meta as the
app's webhook callback URL:

- ``GET``: the subscription handshake; the ``hub.challenge`` is echoed when
  ``hub.verify_token`` is ours (403 otherwise).
- ``POST``: notifications. The ``X-Hub-Signature-256`` is checked against the
  raw body with the app secret before anything is parsed (403 if missing or
  wrong); then each user message goes to ``engine.messaging.message_in`` and
  each delivery status to ``status_in``, for the business number whose
  ``phone_number_id`` the notification names.

And the :class:`~telcoflow.engine.ports.MessageNetwork` port: an agent's
``wa.msg.out`` is POSTed to ``{api_base_url}/{version}/{phone_number_id}/messages``
with the number's access token, and Meta's answer mapped to a
:class:`~telcoflow.engine.ports.MessageOutcome` (:mod:`telcoflow.protocol.whatsapp`).

The HTTP client library (``httpx2``, or ``httpx`` with the same API; the
``whatsapp`` extra) is imported here, lazily: a gateway without
``[whatsapp]`` never loads it. Tokens and the app secret never appear in a
log line or an error message.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from ..engine.ports import MessageNetwork, MessageOutcome, OutboundMessage
from ..protocol import whatsapp as wa
from ..server.app import Gateway
from ..server.config import WhatsAppConfig, WhatsAppNumber
from ..server.errors import ConfigError
from ..server.netio import HttpRequest, HttpResponse

__all__ = ["CloudApiNetwork", "Inbox", "install", "http_library"]

logger = logging.getLogger(__name__)

MAX_IN_FLIGHT = 256        # sends awaiting the Cloud API, per network; more are OVERFLOW
MAX_CONNECTIONS = 64       # to the Cloud API, per network (HTTP/1.1 keep-alive pool)
STOP_GRACE_S = 2.0         # sends still in flight when the gateway stops get this long
REMEMBERED_IDS = 10_000    # webhook ids kept to drop Meta's redeliveries of them


class Inbox(Protocol):
    """What the adapter calls on ``engine.messaging``."""

    def add_network(self, network: MessageNetwork) -> None: ...

    def message_in(self, local: str, sender: str, content: dict[str, Any]) -> MessageOutcome:
        ...

    def status_in(self, local: str, recipient: str, content: dict[str, Any]) -> None: ...


def http_library() -> ModuleType:
    """``httpx2`` (what the ``openai`` SDK brings), else ``httpx``: the same API."""
    for name in ("httpx2", "httpx"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ConfigError("[whatsapp] is configured but no HTTP client library is installed: "
                      "pip install 'telcoflow[whatsapp]'")


class CloudApiNetwork:
    """The webhook and the sending side of the WhatsApp Cloud API, for every configured
    business number. Everything runs on the gateway's loop thread."""

    def __init__(self, inbox: Inbox, config: WhatsAppConfig, http: ModuleType, *,
                 max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.config = config
        self._inbox = inbox
        self._http = http
        self._by_number: dict[str, WhatsAppNumber] = {n.number: n for n in config.numbers}
        self._by_id: dict[str, WhatsAppNumber] = {n.phone_number_id: n
                                                  for n in config.numbers}
        self._max_in_flight = max_in_flight
        self._client: Any = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()

    # ── lifecycle (gateway.add_service) ──────────────────────────────────────
    async def start(self) -> None:
        http = self._http
        self._client = http.AsyncClient(
            timeout=http.Timeout(self.config.timeout_s),
            limits=http.Limits(max_connections=MAX_CONNECTIONS,
                               max_keepalive_connections=MAX_CONNECTIONS // 4),
            follow_redirects=False)  # a bearer token is never replayed to another host

    async def stop(self) -> None:
        client, self._client = self._client, None  # no new sends from here on
        if self._in_flight:
            _, late = await asyncio.wait(set(self._in_flight), timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()  # its done() is told the gateway stopped
            if late:
                await asyncio.wait(late)
        if client is not None:
            await client.aclose()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # ── MessageNetwork ───────────────────────────────────────────────────────
    def serves(self, local: str, remote: str) -> bool:
        return local in self._by_number

    def send_message(self, message: OutboundMessage,
                     done: Callable[[MessageOutcome], None]) -> None:
        tell = _Once(done, message)
        refusal, prepared = self._prepare(message)
        if refusal is not None:
            tell(refusal)
            return
        assert prepared is not None
        # the client is taken now: stop() may clear it before the task first runs
        task = asyncio.get_running_loop().create_task(
            self._send(tell, self._client, *prepared))
        self._in_flight.add(task)
        task.add_done_callback(lambda ended: self._ended(ended, tell))

    def _ended(self, task: asyncio.Task[None], tell: _Once) -> None:
        self._in_flight.discard(task)
        # a task cancelled by stop() (even before its first step) has not told yet
        tell(_fail("REMOTE_ERROR", "the gateway stopped before the Cloud API answered; "
                                   "the message may or may not have been sent"))

    def _prepare(self, message: OutboundMessage
                 ) -> tuple[MessageOutcome | None, tuple[str, str, bytes] | None]:
        """(refusal, None) or (None, (url, token, body)) for ``message``."""
        number = self._by_number.get(message.local)
        if number is None:
            return _fail("INVALID_CHANNEL", f"{message.local} is not a WhatsApp number of "
                                            "this gateway ([[whatsapp.numbers]])"), None
        version = message.api_version or self.config.api_version
        if not wa.API_VERSION.fullmatch(version):
            return _fail("INVALID_PAYLOAD", f"apiVersion {version[:40]!r} is not a Cloud "
                                            "API version such as v23.0"), None
        try:
            wa.validate_outbound(message.data)
            body = wa.build_send_body(message.remote, message.data)
        except wa.WhatsAppError as exc:
            return _fail(exc.code, exc.message), None
        if self._client is None:
            return _fail("REMOTE_ERROR", "the WhatsApp door is not running (the gateway "
                                         "is starting or stopping)"), None
        if len(self._in_flight) >= self._max_in_flight:
            return _fail("OVERFLOW", f"{len(self._in_flight)} messages are already on their "
                                     "way to the Cloud API; try again shortly"), None
        base = self.config.api_base_url.rstrip("/")
        url = f"{base}/{version}/{number.phone_number_id}/messages"
        return None, (url, number.access_token, body)

    async def _send(self, tell: _Once, client: Any, url: str, token: str, body: bytes
                    ) -> None:
        try:
            outcome = await self._post(client, url, token, body)
        except Exception:  # our bug: done must still hear, once
            logger.exception("whatsapp send of %s failed", tell.message.client_msg_id)
            outcome = _fail("INTERNAL_ERROR", "the gateway failed while sending the message; "
                                              "it may or may not have been sent")
        tell(outcome)

    async def _post(self, client: Any, url: str, token: str, body: bytes) -> MessageOutcome:
        http = self._http
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        try:
            # the library's timeout bounds each phase (connect, write, each read); this
            # bounds the whole send, which is what timeout_s promises
            async with asyncio.timeout(self.config.timeout_s):
                async with client.stream("POST", url, content=body,
                                         headers=headers) as response:
                    data = await _read_capped(response, wa.MAX_RESPONSE_BYTES)
                    result = wa.parse_send_response(response.status_code, data)
                    return MessageOutcome(result.ok, result.content, result.code,
                                          result.message, result.detail)
        except (TimeoutError, http.TimeoutException):
            return _fail("REMOTE_ERROR", f"the Cloud API did not answer within "
                                         f"{self.config.timeout_s:g} s; the message may or "
                                         "may not have been sent")
        except http.HTTPError as exc:
            # the library's sentence names the failure (refused, DNS, TLS); headers are
            # never in it, and the token is scrubbed should a future version add them
            said = _scrub(str(exc) or type(exc).__name__, token)
            host = urlsplit(url).netloc
            return _fail("REMOTE_ERROR", f"could not reach the Cloud API at {host}: {said}")

    # ── the webhook ──────────────────────────────────────────────────────────
    def webhook(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET":
            return self._verify(request)
        if request.method == "POST":
            return self._notified(request)
        return _text(405, "the WhatsApp webhook takes GET (verification) and POST "
                          "(notifications)", [("Allow", "GET, POST")])

    def _verify(self, request: HttpRequest) -> HttpResponse:
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        try:
            challenge = wa.verify_subscription(params, self.config.verify_token)
        except wa.WhatsAppError as exc:
            logger.warning("whatsapp webhook verification from %s refused: %s",
                           _client(request), exc.message)
            return _text(403, exc.message)
        logger.info("whatsapp webhook subscription verified")
        # the challenge is the caller's own text echoed: never let a browser sniff it as HTML
        return HttpResponse(200, challenge.encode(), "text/plain",
                            [("X-Content-Type-Options", "nosniff")])

    def _notified(self, request: HttpRequest) -> HttpResponse:
        try:
            wa.check_signature(self.config.app_secret, request.body,
                               request.headers.get(wa.SIGNATURE_HEADER))
        except wa.WhatsAppError as exc:
            logger.warning("whatsapp webhook POST from %s refused: %s", _client(request),
                           exc.message)
            return _text(403, exc.message)
        try:
            events = wa.parse_webhook(request.body)
        except wa.WhatsAppError as exc:
            logger.warning("whatsapp webhook POST refused: %s", exc.message)
            return _text(413 if exc.code == "FRAME_TOO_LARGE" else 400, exc.message)
        for event in events:
            self._dispatch(event)
        # 200 whatever the engine made of each event: Meta redelivers a notification
        # that did not get a 2xx, with growing delays, for days, and a refusal (no agent,
        # quota) would not be different the next time
        return HttpResponse(200, b"", "text/plain")

    def _dispatch(self, event: wa.WebhookEvent) -> None:
        number = self._by_id.get(event.phone_number_id)
        if number is None:
            logger.warning("whatsapp notification for phone_number_id %s (%s), which is not "
                           "in [[whatsapp.numbers]]: dropped", event.phone_number_id,
                           event.display_number or "no display number")
            return
        try:
            if isinstance(event, wa.InboundMessage):
                self._message_in(number, event)
            elif isinstance(event, wa.StatusUpdate):
                self._status_in(number, event)
            else:
                logger.warning("whatsapp reports errors for %s: %s", number.number,
                               event.errors)
        except Exception:  # one event's failure must not lose the rest of the batch
            logger.exception("whatsapp notification for %s failed", number.number)

    def _message_in(self, number: WhatsAppNumber, event: wa.InboundMessage) -> None:
        wamid = str(event.content.get("id"))
        if self._again(wamid):
            logger.debug("whatsapp message %s delivered again by Meta: dropped", wamid)
            return
        outcome = self._inbox.message_in(number.number, event.sender, event.content)
        if not outcome.ok:
            logger.info("whatsapp message %s to %s refused: %s %s", wamid, number.number,
                        outcome.code, outcome.message)

    def _status_in(self, number: WhatsAppNumber, event: wa.StatusUpdate) -> None:
        if self._again(f"{event.content['id']}/{event.content['status']}"):
            return
        self._inbox.status_in(number.number, event.recipient, event.content)

    def _again(self, key: str) -> bool:
        """True if ``key`` was seen lately (Meta redelivers what it thinks was lost)."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > REMEMBERED_IDS:
            self._seen.popitem(last=False)
        return False


def install(gateway: Gateway, config: WhatsAppConfig) -> CloudApiNetwork:
    """Route ``/v1/whatsapp``, add the network to the engine and its HTTP client to the
    gateway's services."""
    http = http_library()
    inbox = gateway.engine.messaging
    _check_base_url(config.api_base_url)
    network = CloudApiNetwork(inbox, config, http)
    gateway.add_http_route(wa.WEBHOOK_PATH, network.webhook, max_body=wa.MAX_WEBHOOK_BYTES)
    gateway.add_service(network.start, network.stop)
    inbox.add_network(network)
    return network


def _check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"[whatsapp] api_base_url {base_url!r} must be an http(s) URL such "
                          "as https://graph.facebook.com")
    if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("[whatsapp] api_base_url %s is not https: the access tokens would "
                       "travel unencrypted", base_url)


async def _read_capped(response: Any, limit: int) -> bytes:
    """The body, or its first ``limit`` + 1 bytes (then not a JSON answer we read)."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > limit:
            break
    return bytes(data)


class _Once:
    """A send's ``done``, called at most once whichever way the send ends."""

    __slots__ = ("done", "message", "told")

    def __init__(self, done: Callable[[MessageOutcome], None], message: OutboundMessage
                 ) -> None:
        self.done, self.message, self.told = done, message, False

    def __call__(self, outcome: MessageOutcome) -> None:
        if self.told:
            return
        self.told = True
        message = self.message
        if outcome.ok:
            logger.debug("whatsapp message %s of session %s sent", message.client_msg_id,
                         message.session_id)
        else:
            logger.info("whatsapp message %s of session %s not sent: %s %s",
                        message.client_msg_id, message.session_id, outcome.code,
                        outcome.message)
        try:
            self.done(outcome)
        except Exception:  # the engine's bug; the task must still end cleanly
            logger.exception("whatsapp send outcome handling failed")


def _fail(code: str, message: str) -> MessageOutcome:
    return MessageOutcome(False, code=code, message=message)


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _text(status: int, message: str, headers: list[tuple[str, str]] | None = None
          ) -> HttpResponse:
    return HttpResponse(status, (message + "\n").encode(), "text/plain", headers or [])


def _client(request: HttpRequest) -> str:
    return request.client[0] if request.client else "?"
