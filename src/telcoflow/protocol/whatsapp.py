"""The WhatsApp Cloud API (Meta's Graph API for WhatsApp): sans-I/O, both directions.

Us → Meta: ``POST {base}/{version}/{phone_number_id}/messages`` with a bearer
token and the body :func:`build_send_body` makes from an agent's message
object (``wa.msg.out``'s ``data``, checked by :func:`validate_outbound`); Meta's
answer, a ``messages[].id`` (the wamid) or a Graph error object
``{"error": {message, type, code, error_data, fbtrace_id}}``, is read by
:func:`parse_send_response` into a :class:`SendResult` (the adapter hands it to the
engine as its ``MessageOutcome``: a wire module knows nothing of the engine).

Meta → us: the webhook. A ``GET`` subscription handshake
(``hub.mode=subscribe``, ``hub.verify_token``, ``hub.challenge``:
:func:`verify_subscription`), then ``POST``s signed with the app secret
(``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``:
:func:`check_signature`) whose JSON :func:`parse_webhook` turns into
:class:`InboundMessage` / :class:`StatusUpdate` events::

    {"object": "whatsapp_business_account",
     "entry": [{"id": <WABA id>, "changes": [{"field": "messages", "value": {
         "messaging_product": "whatsapp",
         "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1065..."},
         "contacts": [{"profile": {"name": "Ana"}, "wa_id": "15551234567"}],
         "messages": [{"from": "15551234567", "id": "wamid...", "timestamp": "1700000000",
                       "type": "text", "text": {"body": "hi"}}],
         "statuses": [{"id": "wamid...", "status": "delivered", "timestamp": "...",
                       "recipient_id": "15551234567"}]}}]}]}

Users' numbers come as wa_ids (digits, no ``+``); the gateway speaks E.164
(``+15551234567``) everywhere, so :func:`e164` adds the ``+`` and
:func:`build_send_body` takes it off again.

Everything here raises :class:`WhatsAppError` (a :class:`ProtocolError`) whose
``code`` is the wire code the caller answers with: ``INVALID_PAYLOAD`` for an
agent's message, ``INVALID_REQUEST`` / ``FRAME_TOO_LARGE`` for a webhook body,
``FORBIDDEN`` for a signature or a verify token. No secret (app secret,
verify token, access token, expected signature) is ever put in a message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._json import TooDeep, loads_bounded
from .errors import ProtocolError

WEBHOOK_PATH = "/v1/whatsapp"
SIGNATURE_HEADER = "x-hub-signature-256"   # lower-cased, as HttpRequest.headers holds it
MAX_WEBHOOK_BYTES = 3 * 1024 * 1024  # Meta: a notification may be up to 3 MB (it batches)
MAX_MESSAGE_BYTES = 64 * 1024              # an agent's message object, serialised
MAX_RESPONSE_BYTES = 1024 * 1024           # what we read of the Cloud API's answer
MAX_TEXT_CHARS = 4096                      # the Cloud API's limit on a text body
MAX_CHALLENGE_CHARS = 1024                 # Meta's challenges are short numbers
API_VERSION = re.compile(r"v\d+\.\d+")

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
OUTBOUND_TYPES = ("text", *MEDIA_TYPES, "location", "contacts", "interactive", "template",
                  "reaction")
STATUSES = ("sent", "delivered", "read", "failed")

#: Cloud API error codes that mean "slow down", answered as OVERFLOW: the app's
#: call rate (4), the business account's rate (80007), the number's throughput
#: (130429), too many messages to one user in a short time (131056).
THROTTLED_CODES = frozenset({4, 80007, 130429, 131056})
#: "Re-engagement message": the user's last message is more than 24 hours old.
WINDOW_CLOSED_CODE = 131047
#: The keys of a Graph error object passed on to the agent as ``detail``: Meta's own
#: description of the failure. Copied by name, so nothing else a proxy or a future
#: API version adds to the object travels on unseen.
ERROR_KEYS = ("message", "type", "code", "error_subcode", "error_data", "error_user_title",
              "error_user_msg", "fbtrace_id")


@dataclass(frozen=True, slots=True)
class SendResult:
    """Meta's answer to a send: ``ok`` with its JSON, or refused with one of the wire's
    ``wa.msg.out`` codes, a sentence, and Meta's error object (``detail``)."""

    ok: bool
    content: Any = None
    code: str | None = None
    message: str = ""
    detail: Any = None


class WhatsAppError(ProtocolError):
    """A Cloud API message, webhook or answer we refuse; ``code`` is the wire code."""

    def __init__(self, message: str, code: str = "INVALID_REQUEST") -> None:
        super().__init__(message)
        self.code = code


def _payload_error(message: str) -> WhatsAppError:
    return WhatsAppError(message, "INVALID_PAYLOAD")


def e164(wa_id: str) -> str:
    """A wa_id (``15551234567``) as the gateway writes numbers (``+15551234567``)."""
    return wa_id if wa_id.startswith("+") else "+" + wa_id


# ── us → Meta: an agent's message ───────────────────────────────────────────────

def validate_outbound(data: Any) -> str:
    """Check an agent's message object as the Cloud API's ``/messages`` takes it (less
    ``messaging_product`` and ``to``, which the gateway adds) and return its type.

    Checks what makes a message meaningless or ours to refuse (a missing body, an
    empty or overlong text, media that points nowhere, an oversized object); the
    finer rules of interactive and template messages are Meta's to enforce, and its
    refusal comes back as ``REMOTE_ERROR`` with its error object."""
    if not isinstance(data, dict):
        raise _payload_error("the message must be a JSON object (a Cloud API message: "
                             f"'type' and its body), not {_json_kind(data)}")
    _check_size(data)
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise _payload_error("the message has no 'type'; it is one of "
                             + ", ".join(OUTBOUND_TYPES))
    if kind not in OUTBOUND_TYPES:
        raise _payload_error(f"{_show(kind)} is not a message type the gateway sends; "
                             "it is one of " + ", ".join(OUTBOUND_TYPES))
    _check_envelope(data)
    if kind == "contacts":
        _check_contacts(data.get("contacts"))
        return kind
    body = data.get(kind)
    if not isinstance(body, dict):
        raise _payload_error(f"a {kind} message needs a '{kind}' object (its body), "
                             f"not {_json_kind(body)}")
    _CHECKS[kind](kind, body)
    return kind


def is_template(data: Any) -> bool:
    """Templates are the only messages the Cloud API takes outside the 24-hour
    customer-service window."""
    return isinstance(data, dict) and data.get("type") == "template"


def build_send_body(to: str, data: dict[str, Any]) -> bytes:
    """The ``/messages`` request body: ``data`` (already validated) sent to ``to``."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": to.removeprefix("+")}
    body.update((k, v) for k, v in data.items() if k not in body)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _check_size(data: dict[str, Any]) -> None:
    try:
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError, RecursionError):
        raise _payload_error("the message cannot be written as JSON") from None
    if size > MAX_MESSAGE_BYTES:
        raise _payload_error(f"the message is {size} bytes as JSON; the gateway sends at "
                             f"most {MAX_MESSAGE_BYTES}")


def _check_envelope(data: dict[str, Any]) -> None:
    # the recipient is the session's user: a message naming another would be a way
    # around the session's binding, so it is refused rather than quietly overridden
    if "to" in data:
        raise _payload_error("the message must not name its own 'to': it goes to the "
                             "session's user")
    for key, value in (("messaging_product", "whatsapp"), ("recipient_type", "individual")):
        if key in data and data[key] != value:
            raise _payload_error(f"'{key}' can only be {value!r}; the gateway sets it")


def _check_text(kind: str, body: dict[str, Any]) -> None:
    text = body.get("body")
    if not isinstance(text, str):
        raise _payload_error(f"text.body must be a string, not {_json_kind(text)}")
    if not text.strip():
        raise _payload_error("text.body is empty: WhatsApp does not deliver empty messages")
    if len(text) > MAX_TEXT_CHARS:
        raise _payload_error(f"text.body has {len(text)} characters; the Cloud API takes "
                             f"at most {MAX_TEXT_CHARS}")


def _check_media(kind: str, body: dict[str, Any]) -> None:
    media_id, link = body.get("id"), body.get("link")
    if isinstance(media_id, str) and media_id:
        return
    if isinstance(link, str) and link:
        if not link.lower().startswith("https://"):
            raise _payload_error(f"{kind}.link must be an https URL (the Cloud API fetches "
                                 "it from the internet)")
        return
    raise _payload_error(f"{kind} has neither an 'id' (an uploaded media id) nor an https "
                         "'link': a media reference to nowhere")


def _check_location(kind: str, body: dict[str, Any]) -> None:
    for name, bound in (("latitude", 90.0), ("longitude", 180.0)):
        value = _coordinate(body.get(name))
        if value is None or not -bound <= value <= bound:
            raise _payload_error(f"location.{name} must be a number from {-bound:g} to "
                                 f"{bound:g}")


def _coordinate(value: Any) -> float | None:
    """A latitude or longitude as a float: a JSON number, or a decimal string (the
    Cloud API takes both); None for anything else."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return float(value) if _is_number(value) and math.isfinite(value) else None


def _check_contacts(contacts: Any) -> None:
    if not isinstance(contacts, list) or not contacts:
        raise _payload_error("a contacts message needs a non-empty 'contacts' array")
    for i, card in enumerate(contacts):
        if not isinstance(card, dict) or not isinstance(card.get("name"), dict):
            raise _payload_error(f"contacts[{i}] must be an object with a 'name' object")


def _check_interactive(kind: str, body: dict[str, Any]) -> None:
    itype = body.get("type")
    if not isinstance(itype, str) or not itype:
        raise _payload_error("interactive.type is missing (button, list, cta_url, ...)")
    action = body.get("action")
    if not isinstance(action, dict):
        raise _payload_error(f"an interactive {itype} message needs an 'action' object")
    if itype == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise _payload_error("interactive.action.buttons must hold 1 to 3 buttons")
    elif itype == "list":
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
            raise _payload_error("interactive.action.sections must hold 1 to 10 sections")
        if not isinstance(action.get("button"), str) or not action["button"]:
            raise _payload_error("interactive.action.button (the list's button label) "
                                 "is missing")
    if itype in ("button", "list"):
        text = body.get("body")
        if not isinstance(text, dict) or not isinstance(text.get("text"), str) \
                or not text["text"]:
            raise _payload_error(f"an interactive {itype} message needs body.text")


def _check_template(kind: str, body: dict[str, Any]) -> None:
    if not isinstance(body.get("name"), str) or not body["name"]:
        raise _payload_error("template.name is missing (the approved template's name)")
    language = body.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str) \
            or not language["code"]:
        raise _payload_error("template.language.code is missing (e.g. en_US)")
    components = body.get("components", [])
    if not isinstance(components, list):
        raise _payload_error("template.components must be an array")


def _check_reaction(kind: str, body: dict[str, Any]) -> None:
    if not isinstance(body.get("message_id"), str) or not body["message_id"]:
        raise _payload_error("reaction.message_id is missing (the wamid reacted to)")
    # an empty emoji is how the Cloud API removes a reaction
    if not isinstance(body.get("emoji"), str):
        raise _payload_error("reaction.emoji must be a string ('' removes the reaction)")


_CHECKS = {"text": _check_text, "location": _check_location,
           "interactive": _check_interactive, "template": _check_template,
           "reaction": _check_reaction, **{m: _check_media for m in MEDIA_TYPES}}


# ── Meta → us: the answer to a send ─────────────────────────────────────────────

def parse_send_response(status: int, body: bytes) -> SendResult:
    """The Cloud API's answer to a ``/messages`` POST as the engine's outcome."""
    obj = _loads_or_none(body)
    if 200 <= status < 300:
        if isinstance(obj, dict):
            return SendResult(ok=True, content=obj)
        return _remote(f"the Cloud API answered HTTP {status} with a body that is not a "
                       "JSON object; whether the message was sent is unknown")
    error = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(error, dict):
        if status == 429:
            return SendResult(False, code="OVERFLOW", detail={"http_status": status},
                                  message="the Cloud API is throttling requests (HTTP 429); "
                                          "try again later")
        return _remote(f"the Cloud API answered HTTP {status} without its error object",
                       {"http_status": status})
    return _refusal(status, error)


def _refusal(status: int, error: dict[str, Any]) -> SendResult:
    detail = {k: error[k] for k in ERROR_KEYS if k in error}
    code = error.get("code")
    said = _error_text(error)
    if code == WINDOW_CLOSED_CODE:
        return _remote("the user last wrote more than 24 hours ago: outside the "
                       "customer-service window only a template message can be sent "
                       f"(Cloud API error {WINDOW_CLOSED_CODE})", detail)
    if status == 429 or code in THROTTLED_CODES:
        return SendResult(False, code="OVERFLOW", detail=detail,
                              message=f"the Cloud API is throttling this number ({said}); "
                                      "try again later")
    return _remote(f"the Cloud API refused the message: {said}", detail)


def _error_text(error: dict[str, Any]) -> str:
    message = error.get("message")
    text = message if isinstance(message, str) and message else "no message"
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    if isinstance(details, str) and details and details not in text:
        text = f"{text}: {details}"
    code = error.get("code")
    if _is_number(code) and f"#{code}" not in text:
        text = f"{text} (code {code})"
    return _clip(text, 300)


def _remote(message: str, detail: Any = None) -> SendResult:
    return SendResult(False, code="REMOTE_ERROR", message=message, detail=detail)


def _loads_or_none(body: bytes) -> Any:
    if len(body) > MAX_RESPONSE_BYTES:
        return None
    try:
        return loads_bounded(body)
    except (ValueError, UnicodeDecodeError):
        return None


# ── Meta → us: the webhook ──────────────────────────────────────────────────────

def signature(app_secret: str, body: bytes) -> str:
    """``X-Hub-Signature-256`` as Meta computes it: HMAC-SHA256 of the raw body, keyed
    with the app secret, in lower-case hex after ``sha256=``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


def check_signature(app_secret: str, body: bytes, header: str | None) -> None:
    """Raise unless ``header`` is the app's signature of ``body`` (compared in constant
    time; the expected value is never told)."""
    if not header:
        raise WhatsAppError("the request has no X-Hub-Signature-256 header; Meta signs "
                            "every webhook POST with the app secret", "FORBIDDEN")
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        raise WhatsAppError("X-Hub-Signature-256 is malformed: it must be 'sha256=' and "
                            "64 hex digits", "FORBIDDEN")
    expected = signature(app_secret, body)[len("sha256="):]
    if not hmac.compare_digest(match.group(1).lower().encode(), expected.encode()):
        raise WhatsAppError("X-Hub-Signature-256 does not match the body: it was not signed "
                            "with this app's secret, or the body was changed on the way",
                            "FORBIDDEN")


def verify_subscription(params: dict[str, str], verify_token: str) -> str:
    """The ``hub.challenge`` to echo when Meta's subscription handshake carries our
    verify token; raises otherwise."""
    mode = params.get("hub.mode")
    if mode != "subscribe":
        raise WhatsAppError("hub.mode must be 'subscribe', not "
                            + ("missing" if mode is None else _show(mode)), "FORBIDDEN")
    token = params.get("hub.verify_token", "")
    if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"),
                               verify_token.encode("utf-8", "surrogateescape")):
        raise WhatsAppError("hub.verify_token does not match the gateway's [whatsapp] "
                            "verify_token", "FORBIDDEN")
    challenge = params.get("hub.challenge", "")
    if not challenge:
        raise WhatsAppError("hub.challenge is missing: there is nothing to echo",
                            "INVALID_REQUEST")
    if len(challenge) > MAX_CHALLENGE_CHARS or not challenge.isprintable():
        raise WhatsAppError(f"hub.challenge must be at most {MAX_CHALLENGE_CHARS} printable "
                            "characters", "INVALID_REQUEST")
    return challenge


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A user's message to one of the business numbers. ``content`` is Meta's message
    object less ``from`` (id, timestamp, type, its typed object, context, ...)."""

    phone_number_id: str
    display_number: str
    sender: str                 # E.164: "+15551234567"
    content: dict[str, Any]
    profile_name: str = ""


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """What became of a message the business sent: ``content`` is ``{"type": "status",
    "id": <wamid>, "status", "timestamp", "recipient"[, "errors"]}``."""

    phone_number_id: str
    display_number: str
    recipient: str              # E.164
    content: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ErrorNotice:
    """An error Meta reports for a number without tying it to a message
    (``value.errors``): worth a log line, nothing for an agent."""

    phone_number_id: str
    display_number: str
    errors: list[Any]


WebhookEvent = InboundMessage | StatusUpdate | ErrorNotice


def parse_webhook(body: bytes) -> list[WebhookEvent]:
    """The events of one webhook POST, in order. Changes of other fields than
    ``messages`` (template reviews, account updates) are not ours and yield nothing."""
    obj = _decode_webhook(body)
    if obj.get("object") != "whatsapp_business_account":
        raise WhatsAppError("object must be 'whatsapp_business_account', not "
                            + _show(obj.get("object")))
    events: list[WebhookEvent] = []
    for where, value in _message_changes(obj):
        events.extend(_value_events(where, value))
    return events


def _decode_webhook(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_WEBHOOK_BYTES:
        raise WhatsAppError(f"the webhook body is {len(body)} bytes; the limit is "
                            f"{MAX_WEBHOOK_BYTES}", "FRAME_TOO_LARGE")
    try:
        obj = loads_bounded(body)
    except TooDeep as exc:
        raise WhatsAppError(f"the webhook body is not acceptable JSON: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise WhatsAppError(f"the webhook body is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise WhatsAppError(f"the webhook body must be a JSON object, not {_json_kind(obj)}")
    return obj


def _message_changes(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, entry in enumerate(_list(obj, "entry", "the webhook body")):
        if not isinstance(entry, dict):
            raise WhatsAppError(f"entry[{i}] must be an object")
        for j, change in enumerate(_list(entry, "changes", f"entry[{i}]")):
            where = f"entry[{i}].changes[{j}]"
            if not isinstance(change, dict):
                raise WhatsAppError(f"{where} must be an object")
            if change.get("field") != "messages":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                raise WhatsAppError(f"{where}.value must be an object")
            yield f"{where}.value", value


def _value_events(where: str, value: dict[str, Any]) -> Iterator[WebhookEvent]:
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        raise WhatsAppError(f"{where}.metadata must be an object")
    number_id = _str(metadata, "phone_number_id", f"{where}.metadata")
    display = metadata.get("display_phone_number")
    display = display if isinstance(display, str) else ""
    names = _profile_names(where, value)
    for i, message in enumerate(_list(value, "messages", where, required=False)):
        yield _inbound(f"{where}.messages[{i}]", message, number_id, display, names)
    for i, status in enumerate(_list(value, "statuses", where, required=False)):
        yield _status(f"{where}.statuses[{i}]", status, number_id, display)
    errors = _list(value, "errors", where, required=False)
    if errors:
        yield ErrorNotice(number_id, display, errors)


def _profile_names(where: str, value: dict[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in _list(value, "contacts", where, required=False):
        if not isinstance(contact, dict):
            continue  # the profile is a courtesy; a message never depends on it
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        wa_id = contact.get("wa_id")
        if isinstance(wa_id, str) and isinstance(name, str):
            names[wa_id] = name
    return names


_WA_ID = re.compile(r"\+?[0-9]{1,20}")


def _inbound(where: str, message: Any, number_id: str, display: str,
             names: dict[str, str]) -> InboundMessage:
    if not isinstance(message, dict):
        raise WhatsAppError(f"{where} must be an object")
    sender = _str(message, "from", where)
    if not _WA_ID.fullmatch(sender):
        raise WhatsAppError(f"{where}.from must be the user's number in digits (a wa_id), "
                            f"not {_show(sender)}")
    _str(message, "id", where)
    kind = _str(message, "type", where)
    _check_inbound_body(where, kind, message)
    content = {k: v for k, v in message.items() if k != "from"}
    return InboundMessage(number_id, display, e164(sender), content,
                          names.get(sender.removeprefix("+"), ""))


def _check_inbound_body(where: str, kind: str, message: dict[str, Any]) -> None:
    """The typed object of the types we know must have what makes it that message;
    types we do not know yet pass through untouched (Meta adds them)."""
    if kind == "contacts":
        _list(message, "contacts", where)
        return
    if kind not in _INBOUND_FIELDS:
        return
    body = message.get(kind)
    if not isinstance(body, dict):
        raise WhatsAppError(f"{where} is a {kind} message without its '{kind}' object")
    for name in _INBOUND_FIELDS[kind]:
        _str(body, name, f"{where}.{kind}")
    if kind == "location" and not (_is_number(body.get("latitude"))
                                   and _is_number(body.get("longitude"))):
        raise WhatsAppError(f"{where}.location needs numeric latitude and longitude")
    if kind == "interactive":
        reply_kind = body["type"]
        reply = body.get(reply_kind)
        if reply_kind in ("button_reply", "list_reply") and (
                not isinstance(reply, dict) or not isinstance(reply.get("id"), str)):
            raise WhatsAppError(f"{where}.interactive.{reply_kind} needs an 'id'")


#: For each inbound type we check, the string fields its typed object must have.
_INBOUND_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("body",), "location": (), "interactive": ("type",), "button": ("text",),
    "reaction": ("message_id",), **{m: ("id",) for m in MEDIA_TYPES},
}  # "unsupported" is not here: older payloads carry only its errors, no typed object


def _status(where: str, status: Any, number_id: str, display: str) -> StatusUpdate:
    if not isinstance(status, dict):
        raise WhatsAppError(f"{where} must be an object")
    recipient = _str(status, "recipient_id", where)
    content: dict[str, Any] = {
        "type": "status", "id": _str(status, "id", where),
        "status": _str(status, "status", where),
        "timestamp": _str(status, "timestamp", where, number_ok=True),
        "recipient": e164(recipient),
    }
    if "errors" in status:
        content["errors"] = _list(status, "errors", where)
    return StatusUpdate(number_id, display, e164(recipient), content)


# ── small readers ───────────────────────────────────────────────────────────────

def _str(obj: dict[str, Any], name: str, where: str, *, number_ok: bool = False) -> str:
    value = obj.get(name)
    if number_ok and _is_number(value):
        return str(value)  # some senders write timestamps as numbers
    if not isinstance(value, str) or not value:
        raise WhatsAppError(f"{where}.{name} must be a non-empty string, not "
                            f"{_json_kind(value)}")
    return value


def _list(obj: dict[str, Any], name: str, where: str, *, required: bool = True) -> list[Any]:
    value = obj.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise WhatsAppError(f"{where}.{name} must be an array, not {_json_kind(value)}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_kind(value: Any) -> str:
    if value is None:
        return "missing (or null)"
    kinds = {bool: "a boolean", str: "a string", int: "a number", float: "a number",
             list: "an array", dict: "an object"}
    return kinds.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    """A value someone sent, quoted and cut short, for a sentence about it."""
    return _clip(repr(value), 60) if isinstance(value, str) else _json_kind(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
