"""Our SDK on the WA channel (the simulated network's lines are the users), and
``call.error`` reaching ``@call.on_call_event(CallEvent.CALL_ERROR)``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from telcoflow import (
    Call,
    CallEvent,
    ChannelType,
    IncomingMessage,
    MessageErrorCode,
    SendMessageResult,
    Session,
    SessionNotification,
)
from telcoflow.sdk import (
    SendWAMessage,
    WrongChannelError,
    WSSChannelNotConfigured,
    WSSSessionAlreadyExists,
)
from telcoflow.testing import GatewayThread, Phone

from .conftest import dialled, manager

USER = "+15557004"
pytestmark = pytest.mark.asyncio


def text(body: str) -> SendWAMessage:
    return SendWAMessage("v23.0", {"type": "text", "text": {"body": body}})


class Inbox:
    """An agent's WA messages as they come, awaitable by count."""

    def __init__(self) -> None:
        self.items: list[IncomingMessage] = []
        self._news = asyncio.Event()

    def __call__(self, message: IncomingMessage) -> None:
        self.items.append(message)
        self._news.set()

    async def wait(self, count: int) -> list[IncomingMessage]:
        while len(self.items) < count:
            self._news.clear()
            await asyncio.wait_for(self._news.wait(), 10)
        return self.items


async def test_a_message_is_offered_claimed_answered_and_its_receipts_follow(
        gateway: GatewayThread) -> None:
    inbox = Inbox()
    sessions: list[Session] = []
    notes: list[SessionNotification] = []
    async with manager(gateway) as sm, Phone(gateway.ws_url, gateway.phone_key) as user:
        @sm.on_session_notification
        async def on_notify(note: SessionNotification) -> None:
            notes.append(note)
            session = await sm.open_session(note.session_id)
            session.on_incoming_message(inbox)
            sessions.append(session)
            await session.ready()

        await user.register(USER)
        await user.send_message(gateway.number, "hello")
        await user.send_message(gateway.number, "anyone?")
        first, second = await inbox.wait(2)
        result = await sessions[0].send_message(text("yes, hello"))
        answer = (await user.wait_message())[0]
        await user.mark_read(answer.message_id)
        receipts = [m.content for m in (await inbox.wait(4))[2:]]
    assert [(n.channel, n.activity, n.remote_address) for n in notes] == [
        ("WA", "NEW_INCOMING_MESSAGE", USER)]
    assert [m.sender for m in (first, second)] == [USER, USER]
    assert [m.content["text"]["body"] for m in (first, second)] == ["hello", "anyone?"]
    assert result.success and result.response_content["messages"][0]["id"] == answer.message_id
    assert answer.content == {"type": "text", "text": {"body": "yes, hello"}}
    assert [(r["type"], r["id"], r["status"]) for r in receipts] == [
        ("status", answer.message_id, "delivered"), ("status", answer.message_id, "read")]


async def test_an_agent_starts_a_conversation_templates_first(gateway: GatewayThread) -> None:
    inbox = Inbox()
    async with manager(gateway) as sm, Phone(gateway.ws_url, gateway.phone_key) as user:
        await user.register(USER)
        session = await sm.create_session(ChannelType.WA, USER)
        session.on_incoming_message(inbox)
        await session.ready()
        early = await session.send_message(text("hi"))
        template = await session.send_message(SendWAMessage("v23.0", {
            "type": "template", "template": {"name": "hello_world",
                                             "language": {"code": "en_US"}}}))
        await user.wait_message()
        await user.send_message(gateway.number, "ok, go on")
        await inbox.wait(2)  # the template's receipt, then the user's message
        later = await session.send_message(text("thanks for replying"))
        with pytest.raises(WSSSessionAlreadyExists) as again:  # one conversation per user
            await sm.create_session(ChannelType.WA, USER)
    assert not early.success and early.error_code == MessageErrorCode.SESSION_NOT_OPEN
    assert "template" in early.error_content["message"]
    assert template.success and later.success
    assert session.id in str(again.value)


async def test_bad_messages_get_the_specs_codes_and_change_nothing(
        gateway: GatewayThread) -> None:
    inbox = Inbox()
    async with manager(gateway) as sm, Phone(gateway.ws_url, gateway.phone_key) as user:
        await user.register(USER)
        session = await sm.create_session(ChannelType.WA, USER)
        session.on_incoming_message(inbox)
        await session.ready()
        await user.send_message(gateway.number, "hi")
        await inbox.wait(1)
        bad: list[SendMessageResult] = []
        for data in ({"type": "text", "text": {"body": ""}},
                     {"type": "text", "text": {"body": "x" * 5000}},
                     {"type": "image", "image": {"caption": "no id, no link"}},
                     {"type": "hologram"}, {"text": {"body": "no type"}}):
            bad.append(await session.send_message(SendWAMessage("v23.0", data)))
        good = await session.send_message(text("still fine"))
        await user.wait_message()
        telco = await sm.create_session(ChannelType.TELCO, USER)
        with pytest.raises(WrongChannelError):
            await telco.send_message(text("a call session takes no messages"))
        with pytest.raises(WSSChannelNotConfigured, match="no WA network"):
            await sm.create_session(ChannelType.WA, "+19995550000")  # no line: no network
    assert [r.error_code for r in bad] == [MessageErrorCode.INVALID_PAYLOAD] * 5
    assert all(r.error_content["message"] for r in bad)
    assert good.success


async def test_a_user_writing_to_an_unrouted_number_is_told(gateway: GatewayThread) -> None:
    async with Phone(gateway.ws_url, gateway.phone_key) as user:
        await user.register(USER)
        with pytest.raises(Exception, match="not in service"):
            await user.send_message("+19990000000", "hello?")


async def test_call_error_reaches_the_handler_and_the_call_goes_on(
        gateway: GatewayThread) -> None:
    errors: list[dict[str, Any]] = []
    got = asyncio.Event()
    async with manager(gateway) as sm:
        @sm.on_session_notification
        async def on_notify(note: SessionNotification) -> None:
            session = await sm.open_session(note.session_id)

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                @call.on_call_event(CallEvent.CALL_ERROR)
                def on_error(data: dict[str, Any]) -> None:
                    errors.append(data)
                    got.set()

                await call.answer()
                async for chunk in call.audio_stream():
                    await call.send_audio(chunk)

            await session.ready()

        async with dialled(gateway) as phone:
            await phone.wait_answered()
            for _ in range(3):  # reported once, not per frame
                await phone.send_raw_audio(b"\x01\x02\x03")
            await asyncio.wait_for(got.wait(), 10)
            start = phone.frames_received
            await phone.wait_frames(start + 10)  # the call goes on
            await phone.hangup()
    assert [e["error_code"] for e in errors] == ["CALLER_AUDIO_INVALID"]
    assert "decoded" in errors[0]["error_message"]
