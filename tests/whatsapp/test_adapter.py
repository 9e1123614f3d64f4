"""telephony/whatsapp.py: the webhook and the sending side, with a stub engine inbox; sends
go over a real loopback socket to FakeCloudApi."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import pytest

from telcoflow.engine.ports import MessageNetwork, MessageOutcome, OutboundMessage
from telcoflow.protocol import whatsapp as wa
from telcoflow.server.app import Gateway
from telcoflow.server.config import WhatsAppConfig, WhatsAppNumber, embedded_defaults
from telcoflow.server.errors import ConfigError
from telcoflow.server.netio import HttpRequest
from telcoflow.telephony import whatsapp as door
from telcoflow.telephony.whatsapp import CloudApiNetwork, http_library
from telcoflow.testing.whatsapp_fake import FakeCloudApi, FakeFailure

from .payloads import (
    ACCESS_TOKEN,
    APP_SECRET,
    BUSINESS,
    INBOUND_BODIES,
    PHONE_NUMBER_ID,
    SENT_WAMID,
    USER,
    VERIFY_TOKEN,
    WAMID,
    inbound,
    message,
    notification,
    status,
    statuses,
    value,
)

NUMBERS = [WhatsAppNumber(BUSINESS, PHONE_NUMBER_ID, ACCESS_TOKEN),
           WhatsAppNumber("+15550002222", "200000000000002", "second-number-token")]
TEXT = {"type": "text", "text": {"body": "Yes, in blue and green."}}


class StubInbox:
    """``engine.messaging`` as the adapter sees it."""

    def __init__(self, outcome: MessageOutcome | None = None) -> None:
        self.outcome = outcome or MessageOutcome(True, {"sessionId": "s-1"})
        self.messages: list[tuple[str, str, dict[str, Any]]] = []
        self.statuses: list[tuple[str, str, dict[str, Any]]] = []
        self.networks: list[MessageNetwork] = []
        self.fail_on: str | None = None   # a message body that makes message_in raise

    def add_network(self, network: MessageNetwork) -> None:
        self.networks.append(network)

    def message_in(self, local: str, sender: str, content: dict[str, Any]) -> MessageOutcome:
        if self.fail_on is not None and content.get("text", {}).get("body") == self.fail_on:
            raise RuntimeError("engine bug")
        self.messages.append((local, sender, content))
        return self.outcome

    def status_in(self, local: str, recipient: str, content: dict[str, Any]) -> None:
        self.statuses.append((local, recipient, content))


def config(**overrides: Any) -> WhatsAppConfig:
    cfg = WhatsAppConfig(APP_SECRET, VERIFY_TOKEN, list(NUMBERS))
    for name, value_ in overrides.items():
        setattr(cfg, name, value_)
    return cfg


def network(inbox: StubInbox | None = None, **overrides: Any) -> CloudApiNetwork:
    return CloudApiNetwork(inbox or StubInbox(), config(**overrides), http_library())


def post(body: bytes, signature: str | None = "sign") -> HttpRequest:
    headers = {"content-type": "application/json", "host": "gw.example.com"}
    if signature == "sign":
        signature = wa.signature(APP_SECRET, body)
    if signature is not None:
        headers["x-hub-signature-256"] = signature
    return HttpRequest("POST", "/v1/whatsapp", headers, body, client=("173.252.1.2", 443))


def get(**params: str) -> HttpRequest:
    return HttpRequest("GET", "/v1/whatsapp?" + urlencode(params), {}, b"",
                       client=("173.252.1.2", 443))


# ── the subscription handshake ──────────────────────────────────────────────────

def test_the_handshake_answers_the_challenge_in_plain_text() -> None:
    answer = network().webhook(get(**{"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                      "hub.challenge": "1158201444"}))
    assert (answer.status, answer.body, answer.content_type) == (200, b"1158201444",
                                                                 "text/plain")


@pytest.mark.parametrize(("params", "sentence"), [
    ({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
     b"hub.verify_token does not match"),
    ({"hub.mode": "subscribe", "hub.challenge": "1"}, b"hub.verify_token does not match"),
    ({"hub.mode": "nope", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
     b"hub.mode must be 'subscribe'"),
    ({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN}, b"hub.challenge is missing"),
])
def test_a_wrong_handshake_is_403_with_a_sentence(params: dict[str, str], sentence: bytes,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    answer = network().webhook(get(**params))
    assert answer.status == 403 and sentence in answer.body
    assert VERIFY_TOKEN.encode() not in answer.body
    assert any("verification" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


def test_other_methods_are_405_with_allow() -> None:
    answer = network().webhook(HttpRequest("PUT", "/v1/whatsapp", {}, b"{}"))
    assert answer.status == 405 and ("Allow", "GET, POST") in answer.headers


# ── notifications ───────────────────────────────────────────────────────────────

@pytest.mark.parametrize(("signature", "sentence"), [
    (None, b"no X-Hub-Signature-256 header"),
    ("sha256=" + "0" * 64, b"does not match the body"),
    ("sha256=nothex", b"malformed"),
])
def test_an_unsigned_or_wrongly_signed_post_is_403_and_reaches_nobody(
        signature: str | None, sentence: bytes) -> None:
    inbox = StubInbox()
    answer = network(inbox).webhook(post(inbound("text", {"body": "hi"}), signature))
    assert answer.status == 403 and sentence in answer.body
    assert inbox.messages == [] and inbox.statuses == []


def test_the_signature_is_checked_before_the_body_is_read() -> None:
    answer = network().webhook(post(b"{not json", "sha256=" + "0" * 64))
    assert answer.status == 403  # not 400: junk from strangers is not parsed


def test_a_body_signed_with_another_apps_secret_is_refused() -> None:
    body = inbound("text", {"body": "hi"})
    answer = network().webhook(post(body, wa.signature("another-app", body)))
    assert answer.status == 403


@pytest.mark.parametrize(("body", "status_", "sentence"), [
    (b"{not json", 400, b"not valid JSON"),
    (b'{"object": "page", "entry": []}', 400, b"object must be 'whatsapp_business_account'"),
    (json.dumps(notification(value(messages=[{"id": WAMID}]))).encode(), 400,
     b"messages[0].from"),
    (b" " * (wa.MAX_WEBHOOK_BYTES + 1), 413, b"the limit is 3145728"),
])
def test_a_signed_but_malformed_body_is_refused_with_the_reason(body: bytes, status_: int,
                                                                sentence: bytes) -> None:
    inbox = StubInbox()
    answer = network(inbox).webhook(post(body))
    assert answer.status == status_ and sentence in answer.body
    assert inbox.messages == []


def test_a_text_message_reaches_the_engine_for_the_business_number() -> None:
    inbox = StubInbox()
    answer = network(inbox).webhook(post(inbound("text", {"body": "hi there"})))
    assert (answer.status, answer.body) == (200, b"")
    assert inbox.messages == [(BUSINESS, USER, {"id": WAMID, "timestamp": "1739321024",
                                                "type": "text",
                                                "text": {"body": "hi there"}})]


@pytest.mark.parametrize("kind", sorted(INBOUND_BODIES))
def test_every_message_type_reaches_the_engine_whole(kind: str) -> None:
    inbox = StubInbox()
    network(inbox).webhook(post(inbound(kind, INBOUND_BODIES[kind])))
    [(_, _, content)] = inbox.messages
    assert content[kind] == INBOUND_BODIES[kind] and "from" not in content


def test_a_status_reaches_the_engine_as_status_in() -> None:
    inbox = StubInbox()
    answer = network(inbox).webhook(post(statuses(status("delivered"))))
    assert answer.status == 200 and inbox.messages == []
    assert inbox.statuses == [(BUSINESS, USER, {"type": "status", "id": SENT_WAMID,
                                                "status": "delivered",
                                                "timestamp": "1739321025",
                                                "recipient": USER})]


def test_a_batch_is_delivered_in_order_to_each_number() -> None:
    inbox = StubInbox()
    second = value(messages=[message("text", {"body": "two"}, id="wamid.2")],
                   statuses=[status("read")])
    second["metadata"]["phone_number_id"] = NUMBERS[1].phone_number_id
    payload = notification(value(messages=[message("text", {"body": "one"}, id="wamid.1")]))
    payload["entry"].append({"id": "x", "changes": [{"field": "messages", "value": second}]})
    network(inbox).webhook(post(json.dumps(payload).encode()))
    assert [(local, c["text"]["body"]) for local, _, c in inbox.messages] == [
        (BUSINESS, "one"), ("+15550002222", "two")]
    assert [(local, c["status"]) for local, _, c in inbox.statuses] == [
        ("+15550002222", "read")]


def test_a_refusal_is_logged_with_its_code_and_meta_still_gets_200(
        caplog: pytest.LogCaptureFixture) -> None:
    inbox = StubInbox(MessageOutcome(False, code="NOT_IN_SERVICE",
                                     message=f"the number {BUSINESS} is not in service"))
    answer = network(inbox).webhook(post(inbound("text", {"body": "hi"})))
    assert answer.status == 200 and len(inbox.messages) == 1
    [line] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert line.levelno == logging.INFO and "NOT_IN_SERVICE" in line.getMessage()


def test_an_unknown_phone_number_id_is_logged_and_answered_200(
        caplog: pytest.LogCaptureFixture) -> None:
    inbox = StubInbox()
    payload = notification(value(messages=[message("text", {"body": "hi"})]))
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "31337"
    answer = network(inbox).webhook(post(json.dumps(payload).encode()))
    assert answer.status == 200 and inbox.messages == []
    assert any("31337" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


def test_metas_redelivery_of_a_message_or_status_is_dropped() -> None:
    inbox = StubInbox()
    net = network(inbox)
    for _ in range(3):
        assert net.webhook(post(inbound("text", {"body": "hi"}))).status == 200
        assert net.webhook(post(statuses(status("delivered")))).status == 200
    net.webhook(post(statuses(status("read"))))
    assert len(inbox.messages) == 1
    assert [c["status"] for _, _, c in inbox.statuses] == ["delivered", "read"]


def test_an_engine_failure_on_one_event_does_not_lose_the_rest(
        caplog: pytest.LogCaptureFixture) -> None:
    inbox = StubInbox()
    inbox.fail_on = "boom"
    payload = notification(value(messages=[message("text", {"body": "boom"}, id="wamid.1"),
                                           message("text", {"body": "fine"}, id="wamid.2")]))
    answer = network(inbox).webhook(post(json.dumps(payload).encode()))
    assert answer.status == 200
    assert [c["text"]["body"] for _, _, c in inbox.messages] == ["fine"]
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_account_errors_are_logged_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    errors = [{"code": 130429, "title": "Rate limit hit"}]
    answer = network().webhook(post(json.dumps(notification(value(errors=errors))).encode()))
    assert answer.status == 200
    assert any("Rate limit hit" in r.getMessage() for r in caplog.records)


def test_it_serves_the_configured_numbers_only() -> None:
    net = network()
    assert net.serves(BUSINESS, USER) and net.serves("+15550002222", "+4915112345678")
    assert not net.serves("+15559999999", USER)


# ── sending through the fake Cloud API ──────────────────────────────────────────

@asynccontextmanager
async def running(inbox: StubInbox | None = None, *, fake: FakeCloudApi | None = None,
                  **overrides: Any) -> AsyncIterator[tuple[CloudApiNetwork, FakeCloudApi]]:
    async with FakeCloudApi(NUMBERS, app_secret=APP_SECRET) as meta:
        used = fake or meta
        if fake is not None:
            await fake.start()
        net = network(inbox, api_base_url=used.base_url, **overrides)
        await net.start()
        try:
            yield net, used
        finally:
            await net.stop()
            if fake is not None:
                await fake.close()


class Outcomes:
    """``done`` for send_message: every call kept, awaitable."""

    def __init__(self) -> None:
        self.calls: list[MessageOutcome] = []
        self.threads: list[asyncio.AbstractEventLoop] = []
        self._news = asyncio.Event()

    def __call__(self, outcome: MessageOutcome) -> None:
        self.calls.append(outcome)
        self.threads.append(asyncio.get_running_loop())
        self._news.set()

    async def wait(self, count: int = 1, timeout: float = 5.0) -> list[MessageOutcome]:
        async with asyncio.timeout(timeout):
            while len(self.calls) < count:
                self._news.clear()
                await self._news.wait()
        return self.calls


def outbound(data: dict[str, Any] | None = None, api_version: str = "v23.0",
             local: str = BUSINESS, remote: str = USER) -> OutboundMessage:
    return OutboundMessage("s-1", "c-1", local, remote, api_version,
                           TEXT if data is None else data)


async def send(net: CloudApiNetwork, message: OutboundMessage) -> MessageOutcome:
    done = Outcomes()
    net.send_message(message, done)
    [outcome] = await done.wait()
    assert done.threads == [asyncio.get_running_loop()]
    return outcome


@pytest.mark.asyncio
async def test_a_message_is_sent_with_the_numbers_token_and_meta_answers_its_wamid() -> None:
    async with running() as (net, meta):
        outcome = await send(net, outbound())
    assert outcome.ok and outcome.content["messages"][0]["id"].startswith("wamid.")
    assert outcome.content["contacts"] == [{"input": "16505551234", "wa_id": "16505551234"}]
    [request] = meta.received
    assert request.ok and request.token == ACCESS_TOKEN
    assert request.path == f"/v23.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": "16505551234", **TEXT}


@pytest.mark.asyncio
async def test_each_number_sends_with_its_own_id_and_token_and_the_default_version() -> None:
    async with running(api_version="v21.0") as (net, meta):
        first = await send(net, outbound(api_version=""))
        second = await send(net, outbound(local="+15550002222", api_version="v22.0"))
    assert first.ok and second.ok
    assert [(r.version, r.phone_number_id, r.token) for r in meta.received] == [
        ("v21.0", PHONE_NUMBER_ID, ACCESS_TOKEN),
        ("v22.0", "200000000000002", "second-number-token")]


@pytest.mark.asyncio
async def test_one_connection_carries_many_sends() -> None:
    async with running() as (net, meta):
        done = Outcomes()
        for _ in range(20):
            net.send_message(outbound(), done)
        outcomes = await done.wait(20)
    assert all(o.ok for o in outcomes) and len(meta.received) == 20
    ids = {o.content["messages"][0]["id"] for o in outcomes}
    assert len(ids) == 20


@pytest.mark.asyncio
async def test_a_meta_refusal_is_remote_error_with_its_error_object() -> None:
    async with running() as (net, meta):
        meta.failures.append(FakeFailure(131026, details="Message Undeliverable."))
        outcome = await send(net, outbound())
    assert not outcome.ok and outcome.code == "REMOTE_ERROR"
    assert outcome.message == ("the Cloud API refused the message: (#131026) Message "
                               "undeliverable: Message Undeliverable.")
    assert outcome.detail["code"] == 131026 and outcome.detail["type"] == "OAuthException"
    assert outcome.detail["fbtrace_id"] and ACCESS_TOKEN not in json.dumps(outcome.detail)


@pytest.mark.asyncio
async def test_the_closed_window_and_throttling_are_told_apart() -> None:
    async with running() as (net, meta):
        meta.enforce_window = True
        closed = await send(net, outbound())
        template = await send(net, outbound({"type": "template", "template": {
            "name": "hello_world", "language": {"code": "en_US"}}}))
        meta.open_window(USER)
        meta.failures.append(FakeFailure(130429))
        throttled = await send(net, outbound())
        meta.failures.append(FakeFailure(4, http_status=429))
        too_many = await send(net, outbound())
        fine = await send(net, outbound())
    assert closed.code == "REMOTE_ERROR" and "24 hours" in closed.message
    assert closed.detail["code"] == 131047
    assert template.ok and template.content["messages"][0]["message_status"] == "accepted"
    assert throttled.code == "OVERFLOW" and too_many.code == "OVERFLOW"
    assert fine.ok


@pytest.mark.asyncio
async def test_a_wrong_token_is_metas_401_as_remote_error() -> None:
    stale = [WhatsAppNumber(BUSINESS, PHONE_NUMBER_ID, "stale-token")]
    async with running(numbers=stale) as (net, meta):
        outcome = await send(net, outbound())
    assert outcome.code == "REMOTE_ERROR" and outcome.detail["code"] == 190
    assert "Invalid OAuth access token" in outcome.message
    assert meta.received[0].status == 401


@pytest.mark.asyncio
async def test_no_answer_in_time_is_remote_error(caplog: pytest.LogCaptureFixture) -> None:
    async with running(timeout_s=0.2) as (net, meta):
        meta.stall = True
        outcome = await send(net, outbound())
        assert len(meta.received) == 1  # it got there; the answer did not come back
    assert outcome.code == "REMOTE_ERROR"
    assert outcome.message == ("the Cloud API did not answer within 0.2 s; the message may "
                               "or may not have been sent")


@pytest.mark.asyncio
async def test_a_slow_answer_within_the_timeout_is_fine() -> None:
    async with running(timeout_s=5.0) as (net, meta):
        meta.failures.append(FakeFailure(0, delay_s=0.05))
        assert (await send(net, outbound())).ok


@pytest.mark.asyncio
async def test_an_unreachable_api_is_remote_error_without_the_token() -> None:
    fake = FakeCloudApi(NUMBERS)
    await fake.start()
    dead = fake.base_url
    await fake.close()  # nothing listens there now
    net = network(api_base_url=dead)
    await net.start()
    try:
        outcome = await send(net, outbound())
    finally:
        await net.stop()
    assert outcome.code == "REMOTE_ERROR"
    assert outcome.message.startswith(f"could not reach the Cloud API at {dead[7:]}: ")
    assert ACCESS_TOKEN not in outcome.message


@pytest.mark.asyncio
async def test_an_answer_that_is_not_json_is_remote_error() -> None:
    async with running() as (net, meta):
        meta.garbage = b"<html>proxy says hi</html>"
        outcome = await send(net, outbound())
    assert outcome.code == "REMOTE_ERROR" and "not a JSON object" in outcome.message


@pytest.mark.asyncio
@pytest.mark.parametrize(("message", "code", "sentence"), [
    (outbound(api_version="23.0"), "INVALID_PAYLOAD", "not a Cloud API version"),
    (outbound(api_version="v23.0/../../me"), "INVALID_PAYLOAD", "not a Cloud API version"),
    (outbound({"type": "image", "image": {}}), "INVALID_PAYLOAD", "a media reference to "
                                                                  "nowhere"),
    (outbound({"type": "text", "text": {"body": ""}}), "INVALID_PAYLOAD", "text.body is empty"),
    (outbound(local="+15559999999"), "INVALID_CHANNEL", "not a WhatsApp number"),
])
async def test_what_cannot_be_sent_is_refused_at_once_and_nothing_leaves(
        message: OutboundMessage, code: str, sentence: str) -> None:
    async with running() as (net, meta):
        done = Outcomes()
        net.send_message(message, done)
        assert len(done.calls) == 1  # at once, before any I/O
        [outcome] = done.calls
    assert outcome.code == code and sentence in outcome.message
    assert meta.received == []


@pytest.mark.asyncio
async def test_before_start_and_after_stop_sends_are_refused() -> None:
    net = network()
    assert (await send(net, outbound())).code == "REMOTE_ERROR"
    await net.start()
    await net.stop()
    outcome = await send(net, outbound())
    assert outcome.code == "REMOTE_ERROR" and "not running" in outcome.message


@pytest.mark.asyncio
async def test_sends_in_flight_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(door, "STOP_GRACE_S", 0.05)
    async with running(timeout_s=5.0) as (net, meta):
        net._max_in_flight = 2
        meta.stall = True
        done = Outcomes()
        for _ in range(3):
            net.send_message(outbound(), done)
        [overflow] = done.calls
        assert overflow.code == "OVERFLOW" and "2 messages are already on their way" in \
            overflow.message
        assert net.in_flight == 2
    assert [o.code for o in done.calls] == ["OVERFLOW", "REMOTE_ERROR", "REMOTE_ERROR"]


@pytest.mark.asyncio
async def test_a_send_accepted_just_before_stop_is_still_told(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(door, "STOP_GRACE_S", 0.05)
    async with running() as (net, meta):
        meta.stall = True
        done = Outcomes()
        net.send_message(outbound(), done)
        await net.stop()  # before the send's task has run at all
    [outcome] = done.calls
    assert outcome.code == "REMOTE_ERROR"


@pytest.mark.asyncio
async def test_a_bug_while_sending_is_internal_error_told_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(status: int, body: bytes) -> MessageOutcome:
        raise KeyError("bug")

    monkeypatch.setattr(wa, "parse_send_response", broken)
    async with running() as (net, _):
        outcome = await send(net, outbound())
    assert outcome.code == "INTERNAL_ERROR"


@pytest.mark.asyncio
async def test_stopping_tells_each_send_in_flight_exactly_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(door, "STOP_GRACE_S", 0.05)
    async with FakeCloudApi(NUMBERS) as meta:
        meta.stall = True
        net = network(api_base_url=meta.base_url, timeout_s=30.0)
        await net.start()
        done = Outcomes()
        net.send_message(outbound(), done)
        net.send_message(outbound(), done)
        await meta.wait_for(lambda r: True)
        await net.stop()
        assert net.in_flight == 0
    assert [o.code for o in done.calls] == ["REMOTE_ERROR", "REMOTE_ERROR"]
    assert all("gateway stopped" in o.message for o in done.calls)


@pytest.mark.asyncio
async def test_a_done_that_raises_is_logged_and_the_send_still_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    called = asyncio.Event()

    def broken(outcome: MessageOutcome) -> None:
        called.set()
        raise RuntimeError("engine bug")

    async with running() as (net, _):
        net.send_message(outbound(), broken)
        await asyncio.wait_for(called.wait(), 5)
    assert any("outcome handling failed" in r.getMessage() for r in caplog.records)


# ── install ─────────────────────────────────────────────────────────────────────

def test_install_routes_the_webhook_and_adds_the_network_to_the_engine() -> None:
    gateway = Gateway(embedded_defaults(port=0))
    net = door.install(gateway, config())
    assert net in gateway.engine.messaging.networks
    assert (net.start, net.stop) in gateway._services
    answer = gateway.route(post(statuses(status("read"))), False)
    assert answer.status == 200  # type: ignore[union-attr]


def test_install_without_an_http_library_says_which_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("httpx2", "httpx"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'telcoflow\[whatsapp\]'"):
        door.install(Gateway(embedded_defaults(port=0)), config())


def test_a_plain_http_api_base_url_off_this_host_is_warned_about(
        caplog: pytest.LogCaptureFixture) -> None:
    door.install(Gateway(embedded_defaults(port=0)),
                 config(api_base_url="http://graph.example.com"))
    assert any("not https" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("url", ["graph.facebook.com", "ftp://graph.facebook.com", "https://"])
def test_an_api_base_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="must be an http"):
        door.install(Gateway(embedded_defaults(port=0)), config(api_base_url=url))


@pytest.mark.asyncio
async def test_a_send_cancelled_before_its_first_step_is_still_told_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(door, "STOP_GRACE_S", 0.0)
    async with running() as (net, meta):
        done = Outcomes()
        net.send_message(outbound(), done)
        for task in list(net._in_flight):
            task.cancel()  # as stop() does to late sends; this one never ran
        await done.wait()
    assert [o.code for o in done.calls] == ["REMOTE_ERROR"] and meta.received == []
