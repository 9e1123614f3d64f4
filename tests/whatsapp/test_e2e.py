"""WhatsApp end to end: FakeCloudApi plays Meta (webhooks in, the messages endpoint out), a
real gateway on loopback, our SDK as the agent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio

from telcoflow import (
    MessageErrorCode,
    Session,
    SessionManager,
    SessionManagerConfig,
    SessionNotification,
)
from telcoflow.sdk.messages import SendWAMessage
from telcoflow.server.config import WhatsAppNumber, embedded_defaults
from telcoflow.testing import GatewayThread
from telcoflow.testing.whatsapp_fake import (
    FakeCloudApi,
    FakeFailure,
    message_object,
    webhook_payload,
)

from ..sdk.test_messaging import Inbox
from .payloads import E2E_ACCESS_TOKEN, E2E_APP_SECRET, E2E_VERIFY_TOKEN

pytestmark = pytest.mark.asyncio

USER = "+16505551234"
PHONE_NUMBER_ID = "106540352242922"




@pytest_asyncio.fixture
async def meta() -> AsyncIterator[FakeCloudApi]:
    config = embedded_defaults(port=0)
    number = WhatsAppNumber(config.connectors[0].numbers[0], PHONE_NUMBER_ID, E2E_ACCESS_TOKEN)
    async with FakeCloudApi([number], app_secret=E2E_APP_SECRET) as fake:
        yield fake


@pytest.fixture
def gateway(meta: FakeCloudApi) -> Iterator[GatewayThread]:
    config = embedded_defaults(port=0)
    config.connectors[0].numbers = [meta.numbers[0].number]
    whatsapp = meta.config(verify_token=E2E_VERIFY_TOKEN, timeout_s=5.0)
    with GatewayThread(config, whatsapp=whatsapp) as gw:
        yield gw


@asynccontextmanager
async def agent(gw: GatewayThread, inbox: Inbox) -> AsyncIterator[list[Session]]:
    """Our SDK, claiming every conversation it is offered."""
    sessions: list[Session] = []
    sm = SessionManager(SessionManagerConfig.create(
        api_key=gw.api_key, connector_uuid=gw.connector_uuid, base_url=gw.ws_url))
    async with sm:
        @sm.on_session_notification
        async def on_notify(note: SessionNotification) -> None:
            session = await sm.open_session(note.session_id)
            session.on_incoming_message(inbox)
            sessions.append(session)
            await session.ready()

        yield sessions


def text(body: str) -> SendWAMessage:
    return SendWAMessage("v23.0", {"type": "text", "text": {"body": body}})


async def test_meta_verifies_the_webhook(gateway: GatewayThread, meta: FakeCloudApi) -> None:
    good = await meta.verify(gateway.http_url, E2E_VERIFY_TOKEN, "4242")
    bad = await meta.verify(gateway.http_url, "guess", "4242")
    assert (good.status, good.text) == (200, "4242")
    assert bad.status == 403 and "verify_token does not match" in bad.text


async def test_a_user_writes_the_agent_answers_and_the_receipt_follows(
        gateway: GatewayThread, meta: FakeCloudApi) -> None:
    inbox = Inbox()
    async with agent(gateway, inbox) as sessions:
        delivered = await meta.deliver_text(gateway.http_url, USER, "Do you ship to Lisbon?")
        assert delivered.status == 200
        [first] = await inbox.wait(1)
        result = await sessions[0].send_message(text("We do, in 3 days."))
        assert result.success and result.response_content is not None, result
        wamid = result.response_content["messages"][0]["id"]
        receipt = await meta.deliver_status(gateway.http_url, USER, wamid, "read")
        assert receipt.status == 200
        _, read = await inbox.wait(2)
    assert first.sender == USER
    assert first.content == {"id": delivered.message_id, "timestamp": first.content["timestamp"],
                             "type": "text", "text": {"body": "Do you ship to Lisbon?"}}
    [request] = meta.received
    assert request.token == E2E_ACCESS_TOKEN and request.phone_number_id == PHONE_NUMBER_ID
    assert request.body == {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": USER[1:], "type": "text",
                            "text": {"body": "We do, in 3 days."}}
    assert read.sender == USER
    assert read.content == {"type": "status", "id": wamid, "status": "read",
                            "timestamp": read.content["timestamp"], "recipient": USER}


async def test_metas_refusal_reaches_the_agent_with_its_error_object(
        gateway: GatewayThread, meta: FakeCloudApi) -> None:
    inbox = Inbox()
    async with agent(gateway, inbox) as sessions:
        await meta.deliver_text(gateway.http_url, USER, "hello")
        await inbox.wait(1)
        meta.failures.append(FakeFailure(131026, details="Message Undeliverable."))
        refused = await sessions[0].send_message(text("are you there?"))
        meta.failures.append(FakeFailure(130429))
        throttled = await sessions[0].send_message(text("are you there?"))
        bad = await sessions[0].send_message(SendWAMessage("v23.0", {
            "type": "image", "image": {"caption": "no id, no link"}}))
    assert not refused.success and refused.error_code == MessageErrorCode.REMOTE_ERROR
    content: Any = refused.error_content
    assert content["error"]["code"] == 131026 and "Message Undeliverable" in content["message"]
    assert throttled.error_code == MessageErrorCode.OVERFLOW
    assert bad.error_code == MessageErrorCode.INVALID_PAYLOAD
    assert len(meta.received) == 2  # the bad one never left the gateway


async def test_a_forged_notification_reaches_no_agent(gateway: GatewayThread,
                                                      meta: FakeCloudApi) -> None:
    inbox = Inbox()
    async with agent(gateway, inbox):
        unsigned = await meta.deliver_text(gateway.http_url, USER, "forged", sign=False)
        wrong = await meta.deliver_text(gateway.http_url, USER, "forged", secret="guess")
        real = await meta.deliver_text(gateway.http_url, USER, "real")
        [only] = await inbox.wait(1)
    assert (unsigned.status, wrong.status, real.status) == (403, 403, 200)
    assert "X-Hub-Signature-256" in unsigned.text and "does not match" in wrong.text
    assert only.content["text"]["body"] == "real"


async def test_a_batch_past_the_http_fronts_usual_bound_is_taken_and_one_past_3_mb_is_not(
        gateway: GatewayThread, meta: FakeCloudApi) -> None:
    # Meta batches notifications (up to 3 MB); other HTTP endpoints stay bound to 64 KiB
    inbox = Inbox()
    number = meta.numbers[0]
    batch = [message_object(USER, {"type": "text", "text": {"body": f"{n:03} " + "x" * 2000}})
             for n in range(100)]
    async with agent(gateway, inbox):
        big = await meta.deliver(gateway.http_url, webhook_payload(number, messages=batch))
        messages = await inbox.wait(100)
        huge = await meta.deliver(gateway.http_url, b"{" + b" " * (3 * 1024 * 1024) + b"}")
    assert big.status == 200 and len(messages) == 100
    assert [m.content["text"]["body"][:3] for m in messages] == [f"{n:03}" for n in range(100)]
    assert huge.status == 413
