"""The published SDK on the WA channel (messages through the simulated network), and
``call.error`` reaching its ``CallEvent.CALL_ERROR`` handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from telcoflow.testing import GatewayThread, Phone

from .agent_process import scenario_agent as agent
from .agent_process import wait_mark

USER = "+15557003"


def fields(mark: str, count: int) -> list[str]:
    """A 'MARK what a b {json}' line's fields after 'what'; the last one keeps its spaces."""
    return mark.split(" ", count + 1)[2:]


def content(mark: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fields(mark, 3)[-1])
    return data


@pytest.mark.asyncio
async def test_a_users_message_reaches_the_published_sdk_and_its_answer_comes_back(
        gateway: GatewayThread, refsdk_path: Path) -> None:
    async with Phone(gateway.ws_url, gateway.phone_key) as user:
        await user.register(USER)
        with agent(refsdk_path, gateway, "echo") as proc:
            await wait_mark(proc, "connected")
            await user.send_message(gateway.number, "hello there")
            notify = fields(await wait_mark(proc, "notify"), 2)
            message = await wait_mark(proc, "message")
            sent = fields(await wait_mark(proc, "sent"), 3)
            answer = (await user.wait_message())[0]
            delivered = await wait_mark(proc, "message", nth=2)
            await user.mark_read(answer.message_id)
            read = await wait_mark(proc, "message", nth=3)
    assert notify[1] == "NEW_INCOMING_MESSAGE"
    session_id, sender = fields(message, 3)[:2]
    assert (session_id, sender) == (notify[0], USER)
    assert content(message)["text"] == {"body": "hello there"}
    assert sent[:2] == ["True", "None"]
    wamid = json.loads(sent[2])["messages"][0]["id"]
    assert (answer.sender, answer.message_id) == (gateway.number, wamid)
    assert answer.content == {"type": "text", "text": {"body": "echo: hello there"}}
    for mark, status in ((delivered, "delivered"), (read, "read")):
        assert content(mark) | {"timestamp": "t"} == {
            "type": "status", "id": wamid, "status": status, "recipient": USER,
            "timestamp": "t"}
    assert "Traceback" not in proc.output


@pytest.mark.asyncio
async def test_the_published_sdk_starts_a_conversation_with_a_template(
        gateway: GatewayThread, refsdk_path: Path) -> None:
    async with Phone(gateway.ws_url, gateway.phone_key) as user:
        await user.register(USER)
        with agent(refsdk_path, gateway, "wa_outbound", OUTBOUND_TO=USER) as proc:
            outside = fields(await wait_mark(proc, "sent"), 3)
            template = fields(await wait_mark(proc, "sent", nth=2), 3)
            first = (await user.wait_message())[0]
            await user.send_message(gateway.number, "who is this?")
            echoed = (await user.wait_message(2))[1]
    # a free-form message before the user wrote: the window is closed, and the published
    # SDK turns the code into its MessageErrorCode
    assert outside[:2] == ["False", "SESSION_NOT_OPEN"]
    assert "template" in json.loads(outside[2])["message"]
    assert template[0] == "True" and first.content["type"] == "template"
    assert echoed.content["text"]["body"] == "echo: who is this?"


@pytest.mark.asyncio
async def test_the_published_sdk_is_told_when_the_callers_audio_cannot_be_decoded(
        gateway: GatewayThread, refsdk_path: Path) -> None:
    with agent(refsdk_path, gateway, "echo") as proc:
        await wait_mark(proc, "connected")
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            await phone.dial(gateway.number, "+15550001", "pcm16", 16000)
            await phone.wait_answered()
            await wait_mark(proc, "answered")
            await phone.send_raw_audio(b"\x01\x02\x03")  # pcm16 with an odd byte count
            error = fields(await wait_mark(proc, "call_error"), 1)
            await phone.hangup()
        await wait_mark(proc, "stream_ended")
    assert error == ["CALLER_AUDIO_INVALID"]
