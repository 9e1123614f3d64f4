"""A local fake of the WhatsApp Cloud API, both directions, for tests and key-less trials.

It is a fake of the *documented* Cloud API (Meta's Graph API for WhatsApp), not
a copy of Meta's behaviour in every corner::

    async with FakeCloudApi(numbers, app_secret="s") as meta:
        config = meta.config(verify_token="v")     # api_base_url → the fake
        with GatewayThread(whatsapp=config) as gw:
            await meta.deliver_text(gw.http_url, "+15551234567", "hi")   # a user writes
            ...
            request = await meta.wait_for(lambda r: r.ok)                # the agent answered

The messages endpoint, ``POST /{version}/{phone_number_id}/messages`` on
127.0.0.1 (plain HTTP/1.1, keep-alive, read with ``h11``):

- the path: a version like ``v23.0`` and a known ``phone_number_id``, else a
  Graph error (code 2500 unknown path, code 100 unknown object);
- ``Authorization: Bearer <the number's access token>``: missing or wrong is
  401 with Meta's error object (code 104 / 190);
- the body like Meta checks it: JSON, ``messaging_product: "whatsapp"``, ``to``,
  a known ``type`` with its object (``text.body``, media ``id`` or ``link``...);
  a refusal is 400 with ``{"error": {message, type, code, error_data, fbtrace_id}}``;
- with ``enforce_window``, anything but a template to a user who has not written
  (through :meth:`FakeCloudApi.deliver_message`) is refused with 131047;
- the answer: ``{"messaging_product": "whatsapp", "contacts": [{"input", "wa_id"}],
  "messages": [{"id": "wamid..."}]}``.

Scripted faults: :attr:`FakeCloudApi.failures` (each request takes the first:
an error code, an HTTP status, a delay), :attr:`FakeCloudApi.stall` (never
answer: the client times out), :attr:`FakeCloudApi.garbage` (a 200 that is not JSON).
Every request is kept in :attr:`FakeCloudApi.received`.

The webhook side: :meth:`FakeCloudApi.verify` (the subscription handshake) and
:meth:`FakeCloudApi.deliver` / :meth:`deliver_text` / :meth:`deliver_message` /
:meth:`deliver_status`, which build Meta-shaped notifications and POST them
signed with the app secret (``X-Hub-Signature-256``), or signed wrongly, or not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import secrets
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11

from ..protocol import whatsapp as wa
from ..server.config import WhatsAppConfig, WhatsAppNumber

__all__ = ["FakeAnswer", "FakeCloudApi", "FakeFailure", "FakeRequest", "message_object",
           "status_object", "webhook_payload"]

Json = dict[str, Any]

#: Meta's titles of the errors tests script most (the ``message`` is "(#code) title").
ERROR_TITLES = {
    2: "Service temporarily unavailable",
    100: "Invalid parameter",
    104: "An access token is required to request this resource.",
    190: "Invalid OAuth access token - Cannot parse access token",
    2500: "Unknown path components",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
}
WINDOW_DETAILS = ("Message failed to send because more than 24 hours have passed since the "
                  "customer last replied to this number.")
_PATH = re.compile(r"/([^/]+)/([^/]+)/messages")
_KNOWN_TYPES = frozenset(wa.OUTBOUND_TYPES)
_MAX_REQUEST_BYTES = 1024 * 1024


@dataclass
class FakeFailure:
    """One scripted answer instead of success (``code`` 0: succeed, after ``delay_s``)."""

    code: int = 131047
    http_status: int = 400
    details: str = ""
    delay_s: float = 0.0


@dataclass(frozen=True)
class FakeRequest:
    """One request to the messages endpoint, as the fake saw it and answered it."""

    method: str
    path: str
    headers: dict[str, str]      # lower-cased names
    raw: bytes
    status: int                  # what the fake answered (0: never answered)
    answer: Json

    @property
    def body(self) -> Any:
        try:
            return json.loads(self.raw)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def token(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ")

    @property
    def phone_number_id(self) -> str:
        match = _PATH.fullmatch(self.path)
        return match.group(2) if match else ""

    @property
    def version(self) -> str:
        match = _PATH.fullmatch(self.path)
        return match.group(1) if match else ""


@dataclass(frozen=True)
class FakeAnswer:
    """What the gateway answered a webhook request."""

    status: int
    body: bytes
    message_id: str = ""         # the wamid of the message delivered, if one was

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Refused(Exception):
    def __init__(self, status: int, code: int, details: str = "", subcode: int | None = None
                 ) -> None:
        super().__init__(details)
        self.status, self.code, self.details, self.subcode = status, code, details, subcode


@dataclass
class _Answer:
    status: int
    body: Json = field(default_factory=dict)


class FakeCloudApi:
    """The fake on 127.0.0.1 (an ephemeral port unless ``port`` is given).

    ``numbers`` are the business numbers it serves (number, phone_number_id,
    access_token), as ``[[whatsapp.numbers]]`` lists them for the gateway."""

    def __init__(self, numbers: Iterable[WhatsAppNumber] = (), *,
                 app_secret: str = "fake-app-secret", enforce_window: bool = False,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.numbers = list(numbers) or [
            WhatsAppNumber("+15550001111", "100000000000001", "fake-access-token")]
        self.app_secret = app_secret
        self.enforce_window = enforce_window
        self.host, self.port = host, port
        #: Every request to the messages endpoint, in order, with the fake's answer.
        self.received: list[FakeRequest] = []
        #: Scripted answers: each request takes the first one left.
        self.failures: deque[FakeFailure] = deque()
        #: Read requests but never answer them (until the fake closes).
        self.stall = False
        #: Answer 200 with this body (not JSON) instead of success.
        self.garbage: bytes | None = None
        self._by_id = {n.phone_number_id: n for n in self.numbers}
        self._window: set[str] = set()   # users (digits) who wrote: the 24 h window is open
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()

    # ── lifecycle ─────────────────────────────────────────────────────────────
    async def start(self) -> FakeCloudApi:
        self._closing.clear()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            # Python 3.11's wait_closed() does not wait for the connections' handlers;
            # each ends at once (its peer closed, or _closing ended its stall)
            if self._handlers:
                _, late = await asyncio.wait(set(self._handlers), timeout=5.0)
                for task in late:
                    task.cancel()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeCloudApi:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """For ``[whatsapp] api_base_url``."""
        return f"http://{self.host}:{self.port}"

    def config(self, verify_token: str = "fake-verify-token", **overrides: Any
               ) -> WhatsAppConfig:
        """A gateway's ``[whatsapp]`` pointed at this fake (started first)."""
        cfg = WhatsAppConfig(self.app_secret, verify_token, list(self.numbers),
                             api_base_url=self.base_url)
        for name, value in overrides.items():
            setattr(cfg, name, value)
        return cfg

    # ── observation ───────────────────────────────────────────────────────────
    async def wait_for(self, predicate: Callable[[FakeRequest], bool] | None = None,
                       timeout: float = 5.0) -> FakeRequest:
        """The first request (matching ``predicate``) received, waiting for it."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for request in self.received[seen:]:
                    if predicate is None or predicate(request):
                        return request
                seen = len(self.received)
                self._changed.clear()
                await self._changed.wait()

    def open_window(self, user: str) -> None:
        """``user`` wrote: the 24-hour window is open for them (``enforce_window``)."""
        self._window.add(user.removeprefix("+"))

    # ── the messages endpoint ─────────────────────────────────────────────────
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        try:
            while not self._closing.is_set():
                request = await _read_message(conn, reader, h11.Request)
                if request is None:
                    return
                head, raw = request
                assert isinstance(head, h11.Request)
                answer = await self._answer(head, raw)
                if answer is None:
                    return  # stalled until the fake closes
                body = json.dumps(answer.body).encode()
                if self.garbage is not None and answer.status == 200:
                    body = self.garbage
                writer.write(_response(conn, answer.status, body))
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, head: h11.Request, raw: bytes) -> _Answer | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
        path = urlsplit(head.target.decode("latin-1")).path
        try:
            answer = await self._handle(head.method.decode(), path, headers, raw)
        except _Refused as refused:
            answer = _Answer(refused.status, _error_object(refused.code, refused.details,
                                                           refused.subcode))
        if answer is not None:  # a stalled request was recorded when it stalled
            self._record(FakeRequest(head.method.decode(), path, headers, raw, answer.status,
                                     answer.body))
        return answer

    async def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes
                      ) -> _Answer | None:
        number = self._check_path(method, path)
        self._check_token(number, headers.get("authorization", ""))
        body = _check_body(raw)
        if self.enforce_window and body["type"] != "template" \
                and body["to"].removeprefix("+") not in self._window:
            raise _Refused(400, wa.WINDOW_CLOSED_CODE, WINDOW_DETAILS)
        if self.failures:
            failure = self.failures.popleft()
            if failure.delay_s:
                await asyncio.sleep(failure.delay_s)
            if failure.code:
                raise _Refused(failure.http_status, failure.code, failure.details)
        if self.stall:
            self._record(FakeRequest(method, path, headers, raw, 0, {}))
            await self._closing.wait()
            return None
        return _Answer(200, self._accepted(body))

    def _check_path(self, method: str, path: str) -> WhatsAppNumber:
        match = _PATH.fullmatch(path)
        if match is None or not wa.API_VERSION.fullmatch(match.group(1)):
            raise _Refused(400, 2500, f"Unknown path components: {path}")
        number = self._by_id.get(match.group(2))
        if number is None:
            raise _Refused(400, 100, f"Unsupported {method.lower()} request. Object with ID "
                                     f"'{match.group(2)}' does not exist, cannot be loaded due "
                                     "to missing permissions, or does not support this "
                                     "operation.", subcode=33)
        if method != "POST":
            raise _Refused(400, 100, f"Unsupported {method.lower()} request.")
        return number

    @staticmethod
    def _check_token(number: WhatsAppNumber, authorization: str) -> None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Refused(401, 104)
        if not secrets.compare_digest(token.encode(), number.access_token.encode()):
            raise _Refused(401, 190)

    def _accepted(self, body: Json) -> Json:
        to = str(body["to"])
        wamid = "wamid." + base64.b64encode(f"fake:{to}:{next(self._ids)}".encode()).decode()
        message: Json = {"id": wamid}
        if body["type"] == "template":
            message["message_status"] = "accepted"
        return {"messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.removeprefix("+")}],
                "messages": [message]}

    def _record(self, request: FakeRequest) -> None:
        self.received.append(request)
        self._changed.set()

    # ── the webhook side: what Meta sends a gateway ────────────────────────────
    def number(self, number: str | None = None) -> WhatsAppNumber:
        """The business number (E.164 or phone_number_id) a notification is for."""
        if number is None:
            return self.numbers[0]
        for n in self.numbers:
            if number in (n.number, n.phone_number_id):
                return n
        raise KeyError(f"{number} is not one of the fake's numbers")

    async def verify(self, gateway_url: str, token: str, challenge: str = "1158201444",
                     mode: str = "subscribe") -> FakeAnswer:
        """Meta's subscription handshake: ``GET ?hub.mode&hub.verify_token&hub.challenge``."""
        query = urlencode({"hub.mode": mode, "hub.verify_token": token,
                           "hub.challenge": challenge})
        return await http_request("GET", f"{_webhook_url(gateway_url)}?{query}")

    async def deliver(self, gateway_url: str, payload: Json | bytes, *, sign: bool = True,
                      secret: str | None = None, header: str | None = None,
                      ssl_context: ssl.SSLContext | None = None) -> FakeAnswer:
        """POST a notification as Meta does: JSON (non-ASCII escaped), signed with the app
        secret (or ``secret``); ``sign=False`` omits the signature, ``header`` sends
        that value instead."""
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = [("content-type", "application/json")]
        if header is not None:
            headers.append(("x-hub-signature-256", header))
        elif sign:
            headers.append(("x-hub-signature-256",
                            wa.signature(secret if secret is not None else self.app_secret,
                                         raw)))
        return await http_request("POST", _webhook_url(gateway_url), raw, headers,
                                  ssl_context=ssl_context)

    async def deliver_message(self, gateway_url: str, sender: str, message: Json, *,
                              to: str | None = None, name: str = "Test User",
                              **deliver: Any) -> FakeAnswer:
        """A user's message (``{"type": ..., <type>: {...}}``; ``id`` and ``timestamp``
        added when absent) from ``sender`` to business number ``to``."""
        number = self.number(to)
        obj = message_object(sender, message)
        self.open_window(sender)
        payload = webhook_payload(number, messages=[obj],
                                  contacts=[{"profile": {"name": name},
                                             "wa_id": sender.removeprefix("+")}])
        answer = await self.deliver(gateway_url, payload, **deliver)
        return FakeAnswer(answer.status, answer.body, obj["id"])

    async def deliver_text(self, gateway_url: str, sender: str, text: str, **kwargs: Any
                           ) -> FakeAnswer:
        return await self.deliver_message(gateway_url, sender,
                                          {"type": "text", "text": {"body": text}}, **kwargs)

    async def deliver_status(self, gateway_url: str, recipient: str, message_id: str,
                             status: str = "delivered", *, to: str | None = None,
                             errors: Sequence[Json] | None = None, **deliver: Any
                             ) -> FakeAnswer:
        """A delivery status of ``message_id`` (a wamid the fake answered)."""
        payload = webhook_payload(self.number(to), statuses=[
            status_object(recipient, message_id, status, errors=errors)])
        answer = await self.deliver(gateway_url, payload, **deliver)
        return FakeAnswer(answer.status, answer.body, message_id)


# ── Meta-shaped webhook objects ──────────────────────────────────────────────────

def webhook_payload(number: WhatsAppNumber, *, messages: Sequence[Json] = (),
                    statuses: Sequence[Json] = (), contacts: Sequence[Json] = (),
                    waba_id: str = "102290129340398") -> Json:
    """One notification of the ``messages`` field for ``number``."""
    value: Json = {"messaging_product": "whatsapp",
                   "metadata": {"display_phone_number": number.number.removeprefix("+"),
                                "phone_number_id": number.phone_number_id}}
    if contacts:
        value["contacts"] = list(contacts)
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}]}


def message_object(sender: str, message: Mapping[str, Any]) -> Json:
    """A user's message as the webhook carries it: ``from`` (a wa_id), ``id``,
    ``timestamp``, then ``message``'s fields."""
    obj: Json = {"from": sender.removeprefix("+"),
                 "id": "wamid." + base64.b64encode(secrets.token_bytes(18)).decode(),
                 "timestamp": str(int(time.time()))}
    obj.update(message)
    return obj


def status_object(recipient: str, message_id: str, status: str = "delivered", *,
                  errors: Sequence[Json] | None = None) -> Json:
    obj: Json = {"id": message_id, "status": status, "timestamp": str(int(time.time())),
                 "recipient_id": recipient.removeprefix("+")}
    if status in ("sent", "delivered"):
        obj["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if errors is not None:
        obj["errors"] = list(errors)
    return obj


# ── HTTP/1.1 over asyncio with h11 (both ends) ───────────────────────────────────

async def http_request(method: str, url: str, body: bytes = b"",
                       headers: Sequence[tuple[str, str]] = (), *,
                       ssl_context: ssl.SSLContext | None = None, timeout: float = 10.0
                       ) -> FakeAnswer:
    """One request on a fresh connection (closed after it)."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            host, port, ssl=(ssl_context or ssl.create_default_context()) if https else None)
        try:
            conn = h11.Connection(h11.CLIENT)
            head = [("host", parts.netloc), ("content-length", str(len(body))),
                    ("connection", "close"), *headers]
            out = conn.send(h11.Request(method=method, target=target, headers=head)) or b""
            if body:
                out += conn.send(h11.Data(data=body)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
            writer.write(out)
            await writer.drain()
            answer = await _read_message(conn, reader, h11.Response)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
    if answer is None:
        raise ConnectionError(f"{url} closed the connection without answering")
    response, data = answer
    assert isinstance(response, h11.Response)
    return FakeAnswer(response.status_code, data)


async def _read_message(conn: h11.Connection, reader: asyncio.StreamReader,
                        kind: type[h11.Request] | type[h11.Response]
                        ) -> tuple[h11.Request | h11.Response, bytes] | None:
    """The next request (or response) and its body; None if the peer closed first."""
    head: h11.Request | h11.Response | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
            continue
        if isinstance(event, kind):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > _MAX_REQUEST_BYTES:
                raise h11.RemoteProtocolError("body too large")
        elif isinstance(event, h11.EndOfMessage):
            return (head, bytes(body)) if head is not None else None
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


def _response(conn: h11.Connection, status: int, body: bytes) -> bytes:
    headers = [("content-type", "application/json; charset=UTF-8"),
               ("content-length", str(len(body)))]
    out = conn.send(h11.Response(status_code=status, headers=headers)) or b""
    out += conn.send(h11.Data(data=body)) or b""
    return out + (conn.send(h11.EndOfMessage()) or b"")


def _error_object(code: int, details: str = "", subcode: int | None = None) -> Json:
    title = ERROR_TITLES.get(code, "Unknown error")
    error: Json = {"message": f"(#{code}) {title}", "type": "OAuthException", "code": code,
                   "error_data": {"messaging_product": "whatsapp", "details": details or title},
                   "fbtrace_id": "A" + secrets.token_urlsafe(15)}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def _check_body(raw: bytes) -> Json:
    """The request body as Meta reads it, or the 400 it answers."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise _Refused(400, 100, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _Refused(400, 100, "The request body must be a JSON object.")
    if body.get("messaging_product") != "whatsapp":
        raise _Refused(400, 100, "The parameter messaging_product is required.")
    to = body.get("to")
    if not isinstance(to, str) or not re.fullmatch(r"\+?[0-9]{5,20}", to):
        raise _Refused(400, 100, "The parameter to is required.")
    kind = body.get("type", "text")  # Meta's default type is text
    if kind not in _KNOWN_TYPES:
        raise _Refused(400, 100, f"Param type must be one of {sorted(_KNOWN_TYPES)}.")
    _check_typed_object(kind, body)
    body["type"] = kind
    return body


def _check_typed_object(kind: str, body: Json) -> None:
    obj = body.get(kind)
    if kind == "contacts":
        if not isinstance(obj, list) or not obj:
            raise _Refused(400, 100, "The parameter contacts is required.")
        return
    if not isinstance(obj, dict):
        raise _Refused(400, 100, f"The parameter {kind} is required.")
    if kind == "text" and (not isinstance(obj.get("body"), str) or not obj["body"]):
        raise _Refused(400, 100, "The parameter text['body'] is required.")
    if kind in wa.MEDIA_TYPES and not (obj.get("id") or obj.get("link")):
        raise _Refused(400, 100, f"Param {kind} must contain either id or link.")
    if kind == "template" and not obj.get("name"):
        raise _Refused(400, 100, "The parameter template['name'] is required.")


def _webhook_url(gateway_url: str) -> str:
    """``gateway_url`` itself if it has a path, else its ``/v1/whatsapp``."""
    return gateway_url if urlsplit(gateway_url).path not in ("", "/") \
        else gateway_url.rstrip("/") + wa.WEBHOOK_PATH
