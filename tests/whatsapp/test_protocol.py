"""protocol/whatsapp.py: the Cloud API's message objects, answers and webhooks, sans-I/O."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from telcoflow.protocol import whatsapp as wa
from telcoflow.protocol.errors import ProtocolError

from .payloads import (
    CONTACTS,
    DISPLAY,
    INBOUND_BODIES,
    PHONE_NUMBER_ID,
    SENT_WAMID,
    USER,
    WAMID,
    inbound,
    message,
    notification,
    status,
    statuses,
    value,
)


def refused(data: Any) -> str:
    with pytest.raises(wa.WhatsAppError) as info:
        wa.validate_outbound(data)
    assert info.value.code == "INVALID_PAYLOAD"
    return info.value.message


# ── validate_outbound ───────────────────────────────────────────────────────────

@pytest.mark.parametrize("data", [
    {"type": "text", "text": {"body": "hi", "preview_url": False}},
    {"type": "text", "text": {"body": "x" * 4096}},
    {"type": "image", "image": {"id": "1234", "caption": "c"}},
    {"type": "audio", "audio": {"link": "https://example.com/a.ogg"}},
    {"type": "video", "video": {"link": "HTTPS://example.com/v.mp4"}},
    {"type": "document", "document": {"id": "1", "filename": "a.pdf"}},
    {"type": "sticker", "sticker": {"id": "1"}},
    {"type": "location", "location": {"latitude": 37.48, "longitude": -122.14, "name": "x"}},
    {"type": "location", "location": {"latitude": "37.48", "longitude": "-122.14"}},
    {"type": "contacts", "contacts": CONTACTS},
    {"type": "interactive", "interactive": {
        "type": "button", "body": {"text": "Pick one"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]}}},
    {"type": "interactive", "interactive": {
        "type": "list", "body": {"text": "Menu"},
        "action": {"button": "See", "sections": [{"title": "s", "rows": [{"id": "r",
                                                                         "title": "R"}]}]}}},
    {"type": "interactive", "interactive": {
        "type": "cta_url", "body": {"text": "Go"},
        "action": {"name": "cta_url", "parameters": {"display_text": "Site",
                                                     "url": "https://example.com"}}}},
    {"type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}}},
    {"type": "template", "template": {"name": "order", "language": {"code": "en"},
                                      "components": [{"type": "body", "parameters": []}]}},
    {"type": "reaction", "reaction": {"message_id": WAMID, "emoji": "\U0001F44D"}},
    {"type": "reaction", "reaction": {"message_id": WAMID, "emoji": ""}},
    {"type": "text", "text": {"body": "a reply"}, "context": {"message_id": WAMID}},
    {"type": "text", "text": {"body": "hi"}, "messaging_product": "whatsapp",
     "recipient_type": "individual"},
])
def test_whole_messages_pass_with_their_type(data: dict[str, Any]) -> None:
    assert wa.validate_outbound(data) == data["type"]


@pytest.mark.parametrize(("data", "sentence"), [
    (["type", "text"], "must be a JSON object"),
    ("hi", "not a string"),
    (None, "must be a JSON object"),
    ({}, "has no 'type'"),
    ({"text": {"body": "no type"}}, "has no 'type'"),
    ({"type": 3}, "has no 'type'"),
    ({"type": "hologram"}, "'hologram' is not a message type"),
    ({"type": "text"}, "needs a 'text' object"),
    ({"type": "text", "text": "hi"}, "needs a 'text' object (its body), not a string"),
    ({"type": "text", "text": {}}, "text.body must be a string"),
    ({"type": "text", "text": {"body": ""}}, "text.body is empty"),
    ({"type": "text", "text": {"body": "  \n"}}, "text.body is empty"),
    ({"type": "text", "text": {"body": "x" * 4097}}, "4097 characters"),
    ({"type": "image", "image": {"caption": "x"}}, "a media reference to nowhere"),
    ({"type": "audio", "audio": {"id": ""}}, "a media reference to nowhere"),
    ({"type": "video", "video": {"link": "http://example.com/v.mp4"}}, "must be an https URL"),
    ({"type": "document", "document": {"link": "file:///etc/passwd"}}, "must be an https URL"),
    ({"type": "location", "location": {"latitude": 91, "longitude": 0}}, "location.latitude"),
    ({"type": "location", "location": {"latitude": 0}}, "location.longitude"),
    ({"type": "location", "location": {"latitude": True, "longitude": 1}}, "location.latitude"),
    ({"type": "location", "location": {"latitude": "nan", "longitude": 1}},
     "location.latitude"),
    ({"type": "contacts", "contacts": []}, "non-empty 'contacts' array"),
    ({"type": "contacts", "contacts": [{"phones": []}]}, "contacts[0] must be an object"),
    ({"type": "interactive", "interactive": {"action": {}}}, "interactive.type is missing"),
    ({"type": "interactive", "interactive": {"type": "button", "body": {"text": "x"}}},
     "needs an 'action' object"),
    ({"type": "interactive", "interactive": {"type": "button", "body": {"text": "x"},
                                             "action": {"buttons": [{}] * 4}}},
     "1 to 3 buttons"),
    ({"type": "interactive", "interactive": {"type": "list", "body": {"text": "x"},
                                             "action": {"sections": [{}]}}},
     "interactive.action.button"),
    ({"type": "interactive", "interactive": {"type": "button",
                                             "action": {"buttons": [{}]}}}, "body.text"),
    ({"type": "template", "template": {"language": {"code": "en"}}}, "template.name"),
    ({"type": "template", "template": {"name": "x"}}, "template.language.code"),
    ({"type": "template", "template": {"name": "x", "language": {"code": "en"},
                                       "components": {}}}, "components must be an array"),
    ({"type": "reaction", "reaction": {"emoji": "x"}}, "reaction.message_id"),
    ({"type": "reaction", "reaction": {"message_id": WAMID}}, "reaction.emoji"),
    ({"type": "text", "text": {"body": "hi"}, "to": "+15550000000"}, "must not name its own"),
    ({"type": "text", "text": {"body": "hi"}, "messaging_product": "sms"},
     "'messaging_product' can only be"),
    ({"type": "text", "text": {"body": "hi"}, "recipient_type": "group"},
     "'recipient_type' can only be"),
])
def test_junk_is_refused_with_a_specific_sentence(data: Any, sentence: str) -> None:
    assert sentence in refused(data)


def test_an_oversized_message_is_refused_before_anything_else() -> None:
    big = {"type": "template", "template": {"name": "x", "language": {"code": "en"},
                                            "components": [{"pad": "x" * 70_000}]}}
    assert "bytes as JSON; the gateway sends at most 65536" in refused(big)
    assert "65536" in refused({"type": "hologram", "pad": "y" * 70_000})


def test_a_message_that_is_not_json_is_refused() -> None:
    assert "cannot be written as JSON" in refused({"type": "text", "text": {"body": {1, 2}}})


def test_the_error_is_a_protocol_error_with_the_wire_code() -> None:
    with pytest.raises(ProtocolError) as info:
        wa.validate_outbound({"type": "text", "text": {"body": ""}})
    assert info.value.code == "INVALID_PAYLOAD"


def test_templates_are_the_messages_for_outside_the_window() -> None:
    assert wa.is_template({"type": "template", "template": {}})
    assert not wa.is_template({"type": "text", "text": {"body": "x"}})
    assert not wa.is_template(["template"])
    assert not wa.is_template(None)


# ── build_send_body ─────────────────────────────────────────────────────────────

def test_the_send_body_is_the_cloud_apis_with_the_number_in_digits() -> None:
    body = wa.build_send_body("+16505551234", {"type": "text", "text": {"body": "olá 👋"},
                                               "context": {"message_id": WAMID}})
    assert json.loads(body) == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
        "type": "text", "text": {"body": "olá 👋"}, "context": {"message_id": WAMID}}
    assert "olá 👋".encode() in body  # UTF-8, not escaped: smaller
    assert body.startswith(b'{"messaging_product":"whatsapp"')


def test_the_send_body_keeps_the_recipient_whatever_the_data_says() -> None:
    body = json.loads(wa.build_send_body("+1555", {"type": "text", "to": "999",
                                                    "messaging_product": "x"}))
    assert body["to"] == "1555" and body["messaging_product"] == "whatsapp"


# ── parse_send_response ─────────────────────────────────────────────────────────

def graph_error(code: int, message: str, details: str = "", **extra: Any) -> bytes:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "error_data": {"messaging_product": "whatsapp",
                                            "details": details},
                             "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}
    error.update(extra)
    return json.dumps({"error": error}).encode()


def test_a_sent_message_is_ok_with_metas_answer() -> None:
    answer = {"messaging_product": "whatsapp",
              "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
              "messages": [{"id": SENT_WAMID}]}
    outcome = wa.parse_send_response(200, json.dumps(answer).encode())
    assert outcome.ok and outcome.content == answer and outcome.code is None


def test_a_refusal_is_remote_error_with_metas_error_object() -> None:
    outcome = wa.parse_send_response(400, graph_error(
        100, "(#100) Invalid parameter", "Param text['body'] is required", extra_key="x"))
    assert not outcome.ok and outcome.code == "REMOTE_ERROR"
    assert outcome.message == ("the Cloud API refused the message: (#100) Invalid parameter: "
                               "Param text['body'] is required")
    assert outcome.detail == {"message": "(#100) Invalid parameter", "type": "OAuthException",
                              "code": 100,
                              "error_data": {"messaging_product": "whatsapp",
                                             "details": "Param text['body'] is required"},
                              "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}


def test_the_closed_window_is_told_as_such() -> None:
    outcome = wa.parse_send_response(400, graph_error(
        131047, "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number."))
    assert outcome.code == "REMOTE_ERROR" and outcome.detail["code"] == 131047
    assert "more than 24 hours ago" in outcome.message
    assert "only a template message can be sent" in outcome.message


@pytest.mark.parametrize(("status", "code"), [(400, 130429), (400, 131056), (400, 80007),
                                              (400, 4), (429, 1)])
def test_throttling_is_overflow(status: int, code: int) -> None:
    outcome = wa.parse_send_response(status, graph_error(code, f"(#{code}) Rate limit hit"))
    assert outcome.code == "OVERFLOW" and "throttling" in outcome.message
    assert outcome.detail["code"] == code


def test_a_429_without_an_error_object_is_overflow_too() -> None:
    outcome = wa.parse_send_response(429, b"Too Many Requests")
    assert outcome.code == "OVERFLOW" and outcome.detail == {"http_status": 429}


@pytest.mark.parametrize(("status", "body", "sentence"), [
    (502, b"<html>Bad Gateway</html>", "answered HTTP 502 without its error object"),
    (500, b'{"error": "oops"}', "answered HTTP 500 without its error object"),
    (400, b"[]", "answered HTTP 400 without its error object"),
    (200, b"not json", "answered HTTP 200 with a body that is not a JSON object"),
    (200, b"[1]", "answered HTTP 200 with a body that is not a JSON object"),
    (200, b"{" * 100 + b"}" * 100, "not a JSON object"),
    (200, b'{"a":"' + b"x" * (wa.MAX_RESPONSE_BYTES + 1) + b'"}', "not a JSON object"),
])
def test_an_unreadable_answer_is_remote_error(status: int, body: bytes, sentence: str) -> None:
    outcome = wa.parse_send_response(status, body)
    assert not outcome.ok and outcome.code == "REMOTE_ERROR" and sentence in outcome.message


def test_an_error_object_without_a_message_still_makes_a_sentence() -> None:
    outcome = wa.parse_send_response(500, b'{"error": {"code": 131000}}')
    assert outcome.message == "the Cloud API refused the message: no message (code 131000)"


# ── signatures ──────────────────────────────────────────────────────────────────

def test_the_signature_is_metas_hmac_sha256_of_the_raw_body() -> None:
    # a published example: HMAC-SHA256("test", key "secret")
    assert wa.signature("secret", b"test") == (
        "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914")
    body = inbound("text", INBOUND_BODIES["text"])
    expected = hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert wa.signature("app-secret", body) == "sha256=" + expected


def test_a_right_signature_passes_in_either_case_of_hex() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    good = wa.signature("s3cret", body)
    wa.check_signature("s3cret", body, good)
    wa.check_signature("s3cret", body, "sha256=" + good[7:].upper())
    wa.check_signature("s3cret", body, f" {good} ")


@pytest.mark.parametrize(("header", "sentence"), [
    (None, "no X-Hub-Signature-256 header"),
    ("", "no X-Hub-Signature-256 header"),
    ("sha1=abcdef", "malformed"),
    ("sha256=" + "g" * 64, "malformed"),
    ("sha256=" + "a" * 63, "malformed"),
    ("0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914", "malformed"),
    ("sha256=" + "0" * 64, "does not match the body"),
])
def test_a_missing_malformed_or_wrong_signature_is_refused(header: str | None,
                                                           sentence: str) -> None:
    with pytest.raises(wa.WhatsAppError) as info:
        wa.check_signature("s3cret", b"{}", header)
    assert sentence in info.value.message and info.value.code == "FORBIDDEN"
    assert "s3cret" not in info.value.message


def test_a_body_changed_on_the_way_or_signed_with_another_secret_is_refused() -> None:
    body = inbound("text", {"body": "pay 10"})
    header = wa.signature("s3cret", body)
    for secret, sent in (("s3cret", body.replace(b"10", b"99")), ("other", body)):
        with pytest.raises(wa.WhatsAppError, match="does not match the body") as info:
            wa.check_signature(secret, sent, header)
        assert wa.signature(secret, sent)[7:] not in info.value.message


# ── the subscription handshake ──────────────────────────────────────────────────

def test_the_handshake_echoes_the_challenge() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "vt-123",
              "hub.challenge": "1158201444"}
    assert wa.verify_subscription(params, "vt-123") == "1158201444"


@pytest.mark.parametrize(("params", "sentence"), [
    ({"hub.verify_token": "vt", "hub.challenge": "1"}, "hub.mode must be 'subscribe', not "
                                                       "missing"),
    ({"hub.mode": "unsubscribe", "hub.verify_token": "vt", "hub.challenge": "1"},
     "not 'unsubscribe'"),
    ({"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
     "hub.verify_token does not match"),
    ({"hub.mode": "subscribe", "hub.challenge": "1"}, "hub.verify_token does not match"),
    ({"hub.mode": "subscribe", "hub.verify_token": "vt"}, "hub.challenge is missing"),
    ({"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "x" * 2000},
     "at most 1024 printable"),
    ({"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "a\r\nb"},
     "printable"),
])
def test_the_handshake_is_refused_unless_whole_and_ours(params: dict[str, str],
                                                        sentence: str) -> None:
    with pytest.raises(wa.WhatsAppError) as info:
        wa.verify_subscription(params, "vt")
    assert sentence in info.value.message
    assert "'vt'" not in info.value.message


# ── parse_webhook ───────────────────────────────────────────────────────────────

@pytest.mark.parametrize("kind", sorted(INBOUND_BODIES))
def test_every_message_type_becomes_an_inbound_message(kind: str) -> None:
    [event] = wa.parse_webhook(inbound(kind, INBOUND_BODIES[kind]))
    assert isinstance(event, wa.InboundMessage)
    assert (event.phone_number_id, event.display_number) == (PHONE_NUMBER_ID, DISPLAY)
    assert event.sender == USER and event.profile_name == "Sheena Nelson"
    assert event.content == {"id": WAMID, "timestamp": "1739321024", "type": kind,
                             kind: INBOUND_BODIES[kind]}


def test_contacts_a_list_reply_and_a_reply_context_pass_whole() -> None:
    [contacts] = wa.parse_webhook(inbound("contacts", CONTACTS))
    assert isinstance(contacts, wa.InboundMessage) and contacts.content["contacts"] == CONTACTS
    reply = {"type": "list_reply", "list_reply": {"id": "row-2", "title": "Two",
                                                  "description": "the second"}}
    context = {"from": DISPLAY, "id": SENT_WAMID}
    [event] = wa.parse_webhook(inbound("interactive", reply, context=context))
    assert isinstance(event, wa.InboundMessage)
    assert event.content["interactive"] == reply and event.content["context"] == context


def test_unknown_and_unsupported_types_pass_through_with_their_type() -> None:
    errors = [{"code": 131051, "title": "Message type unknown",
               "message": "Message type unknown",
               "error_data": {"details": "Message type is currently not supported."}}]
    [unsupported] = wa.parse_webhook(inbound("unsupported", {"type": "poll_update"},
                                             errors=errors))
    [old_style] = wa.parse_webhook(inbound("unsupported", None, errors=errors))
    [future] = wa.parse_webhook(inbound("hologram", {"depth": 3}))
    assert isinstance(unsupported, wa.InboundMessage)
    assert unsupported.content["type"] == "unsupported"
    assert unsupported.content["unsupported"] == {"type": "poll_update"}
    assert unsupported.content["errors"] == errors
    assert isinstance(old_style, wa.InboundMessage) and "unsupported" not in old_style.content
    assert isinstance(future, wa.InboundMessage)
    assert future.content["hologram"] == {"depth": 3}


def test_a_removed_reaction_has_no_emoji_and_still_passes() -> None:
    [event] = wa.parse_webhook(inbound("reaction", {"message_id": SENT_WAMID}))
    assert isinstance(event, wa.InboundMessage)
    assert event.content["reaction"] == {"message_id": SENT_WAMID}


@pytest.mark.parametrize("state", wa.STATUSES)
def test_statuses_become_status_updates(state: str) -> None:
    pricing = {"billable": True, "pricing_model": "PMP", "category": "service"}
    [event] = wa.parse_webhook(statuses(status(state, pricing=pricing)))
    assert isinstance(event, wa.StatusUpdate)
    assert event.recipient == USER and event.phone_number_id == PHONE_NUMBER_ID
    assert event.content == {"type": "status", "id": SENT_WAMID, "status": state,
                             "timestamp": "1739321025", "recipient": USER}


def test_a_failed_status_carries_its_errors() -> None:
    errors = [{"code": 131026, "title": "Message undeliverable",
               "message": "Message undeliverable",
               "error_data": {"details": "Message Undeliverable."},
               "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/"
                       "error-codes/"}]
    [event] = wa.parse_webhook(statuses(status("failed", errors=errors)))
    assert isinstance(event, wa.StatusUpdate)
    assert event.content["status"] == "failed" and event.content["errors"] == errors


def test_a_batch_keeps_its_order_across_entries_and_changes() -> None:
    second = value(messages=[message("text", {"body": "2"})],
                   statuses=[status("read")])
    second["metadata"]["phone_number_id"] = "999"
    payload = notification(value(messages=[message("text", {"body": "1"})]))
    payload["entry"][0]["changes"].append({"field": "message_template_status_update",
                                           "value": {"event": "APPROVED"}})
    payload["entry"].append({"id": "2", "changes": [{"field": "messages", "value": second}]})
    events = wa.parse_webhook(json.dumps(payload).encode())
    assert [(type(e).__name__, e.phone_number_id) for e in events] == [
        ("InboundMessage", PHONE_NUMBER_ID), ("InboundMessage", "999"), ("StatusUpdate", "999")]
    assert [e.content.get("text", {}).get("body") for e in events[:2]
            if isinstance(e, wa.InboundMessage)] == ["1", "2"]


def test_account_level_errors_are_a_notice() -> None:
    errors = [{"code": 130429, "title": "Rate limit hit", "message": "Rate limit hit"}]
    [event] = wa.parse_webhook(json.dumps(notification(value(errors=errors))).encode())
    assert isinstance(event, wa.ErrorNotice) and event.errors == errors


def test_other_fields_and_empty_entries_yield_nothing() -> None:
    other = notification({"event": "FLAGGED"}, field="account_update")
    assert wa.parse_webhook(json.dumps(other).encode()) == []
    empty = {"object": "whatsapp_business_account", "entry": []}
    assert wa.parse_webhook(json.dumps(empty).encode()) == []
    assert wa.parse_webhook(json.dumps(notification(value())).encode()) == []


def test_a_sender_already_in_e164_and_a_numeric_timestamp_are_read() -> None:
    obj = status("sent", timestamp=1739321025)
    obj["recipient_id"] = USER
    [event] = wa.parse_webhook(statuses(obj))
    assert isinstance(event, wa.StatusUpdate)
    assert event.recipient == USER and event.content["timestamp"] == "1739321025"


def malformed(body: bytes) -> wa.WhatsAppError:
    with pytest.raises(wa.WhatsAppError) as info:
        wa.parse_webhook(body)
    return info.value


def dump(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(("body", "sentence"), [
    (b"", "not valid JSON"),
    (b"{nope", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[" * 10_000 + b"]" * 10_000, "not acceptable JSON"),
    (b"[]", "must be a JSON object, not an array"),
    (dump({"object": "page", "entry": []}), "object must be 'whatsapp_business_account', "
                                             "not 'page'"),
    (dump({"entry": []}), "not missing"),
    (dump({"object": "whatsapp_business_account"}), "entry must be an array"),
    (dump({"object": "whatsapp_business_account", "entry": [1]}), "entry[0] must be an "
                                                                  "object"),
    (dump({"object": "whatsapp_business_account", "entry": [{}]}),
     "entry[0].changes must be an array"),
    (dump({"object": "whatsapp_business_account", "entry": [{"changes": ["x"]}]}),
     "entry[0].changes[0] must be an object"),
    (dump(notification("x")), "entry[0].changes[0].value must be an object"),  # type: ignore[arg-type]
    (dump(notification({"messages": []})), "value.metadata must be an object"),
    (dump(notification({"metadata": {}})), "metadata.phone_number_id must be a non-empty"),
    (dump(notification(value(messages={}))), "value.messages must be an array"),
    (dump(notification(value(messages=[7]))), "messages[0] must be an object"),
    (dump(notification(value(messages=[{"id": WAMID, "type": "text"}]))),
     "messages[0].from must be a non-empty string"),
    (dump(notification(value(messages=[message("text", {"body": "x"}, **{"from": "bob"})]))),
     "from must be the user's number in digits"),
    (dump(notification(value(messages=[message("text", {"body": "x"}, id="")]))),
     "messages[0].id must be a non-empty string"),
    (inbound("text", None), "a text message without its 'text' object"),
    (inbound("text", {"body": 5}), "messages[0].text.body must be a non-empty string"),
    (inbound("image", {"mime_type": "image/png"}), "messages[0].image.id"),
    (inbound("location", {"latitude": "north"}), "numeric latitude and longitude"),
    (inbound("interactive", {"type": "button_reply"}), "interactive.button_reply needs an "
                                                       "'id'"),
    (inbound("contacts", None), "messages[0].contacts must be an array"),
    (inbound("button", {"payload": "x"}), "messages[0].button.text"),
    (statuses({"id": SENT_WAMID, "status": "read", "timestamp": "1"}),
     "statuses[0].recipient_id must be a non-empty string"),
    (statuses(status("read", errors="bad")), "statuses[0].errors must be an array"),
    (statuses(status("read", status=None)), "statuses[0].status must be a non-empty string"),
])
def test_malformed_notifications_are_refused_with_where_and_what(body: bytes,
                                                                 sentence: str) -> None:
    error = malformed(body)
    assert sentence in error.message and error.code == "INVALID_REQUEST"


def test_a_body_over_3_mb_is_refused_unread() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[],"pad":"' + \
        b"x" * wa.MAX_WEBHOOK_BYTES + b'"}'
    error = malformed(body)
    assert error.code == "FRAME_TOO_LARGE" and "the limit is 3145728" in error.message


def test_feeding_every_prefix_of_a_payload_never_raises_anything_but_whatsapp_error() -> None:
    body = inbound("interactive", INBOUND_BODIES["interactive"], context={"id": SENT_WAMID})
    for end in range(len(body)):
        try:
            wa.parse_webhook(body[:end])
        except wa.WhatsAppError:
            pass
    assert len(wa.parse_webhook(body)) == 1
