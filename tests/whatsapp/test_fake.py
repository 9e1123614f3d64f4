"""testing/whatsapp_fake.py answers like the documented Cloud API: what a client is told."""

from __future__ import annotations

import json
from typing import Any

import pytest

from telcoflow.server.config import WhatsAppNumber
from telcoflow.testing.whatsapp_fake import FakeCloudApi, FakeFailure, http_request

pytestmark = pytest.mark.asyncio

NUMBER = WhatsAppNumber("+15550001111", "100000000000001", "tok-1")
TEXT = {"messaging_product": "whatsapp", "to": "16505551234", "type": "text",
        "text": {"body": "hi"}}


async def post(meta: FakeCloudApi, body: Any, *, token: str | None = "tok-1",
               path: str = "/v23.0/100000000000001/messages") -> tuple[int, Any]:
    headers = [("content-type", "application/json")]
    if token is not None:
        headers.append(("authorization", f"Bearer {token}"))
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = await http_request("POST", meta.base_url + path, raw, headers)
    return answer.status, json.loads(answer.body)


async def test_a_valid_send_gets_a_wamid_and_is_recorded() -> None:
    async with FakeCloudApi([NUMBER]) as meta:
        status, body = await post(meta, TEXT)
    assert status == 200
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "16505551234", "wa_id": "16505551234"}]
    assert body["messages"][0]["id"].startswith("wamid.")
    [request] = meta.received
    assert request.ok and request.body == TEXT and request.token == "tok-1"
    assert (request.version, request.phone_number_id) == ("v23.0", "100000000000001")


@pytest.mark.parametrize(("token", "code"), [(None, 104), ("wrong", 190)])
async def test_a_missing_or_wrong_token_is_401_with_metas_error_object(token: str | None,
                                                                       code: int) -> None:
    async with FakeCloudApi([NUMBER]) as meta:
        status, body = await post(meta, TEXT, token=token)
    assert status == 401
    error = body["error"]
    assert error["code"] == code and error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{code}) ") and error["fbtrace_id"]
    assert error["error_data"]["messaging_product"] == "whatsapp"


@pytest.mark.parametrize(("path", "code"), [
    ("/23.0/100000000000001/messages", 2500),
    ("/v23.0/999/messages", 100),
    ("/v23.0/100000000000001/media", 2500),
])
async def test_a_wrong_path_is_a_graph_error(path: str, code: int) -> None:
    async with FakeCloudApi([NUMBER]) as meta:
        status, body = await post(meta, TEXT, path=path)
    assert status == 400 and body["error"]["code"] == code


@pytest.mark.parametrize(("body", "details"), [
    (b"{", "not valid JSON"),
    ({**TEXT, "messaging_product": None}, "messaging_product is required"),
    ({**TEXT, "to": ""}, "The parameter to is required"),
    ({**TEXT, "type": "hologram"}, "Param type must be one of"),
    ({**TEXT, "text": {}}, "text['body'] is required"),
    ({**TEXT, "type": "image", "image": {"caption": "x"}}, "either id or link"),
    ({**TEXT, "type": "template", "template": {}}, "template['name']"),
    ({**TEXT, "type": "contacts"}, "contacts is required"),
])
async def test_a_body_meta_would_refuse_is_400_code_100(body: Any, details: str) -> None:
    async with FakeCloudApi([NUMBER]) as meta:
        status, answer = await post(meta, body)
    assert status == 400 and answer["error"]["code"] == 100
    assert details in answer["error"]["error_data"]["details"]


async def test_scripted_failures_are_taken_in_order() -> None:
    async with FakeCloudApi([NUMBER]) as meta:
        meta.failures.extend([FakeFailure(130429), FakeFailure(2, http_status=503)])
        answers = [await post(meta, TEXT) for _ in range(3)]
    assert [(s, b.get("error", {}).get("code")) for s, b in answers] == [
        (400, 130429), (503, 2), (200, None)]


async def test_the_window_is_enforced_when_asked() -> None:
    async with FakeCloudApi([NUMBER], enforce_window=True) as meta:
        closed = await post(meta, TEXT)
        template = await post(meta, {**TEXT, "type": "template", "template": {
            "name": "hello_world", "language": {"code": "en_US"}}})
        meta.open_window("+16505551234")
        opened = await post(meta, TEXT)
    assert closed[0] == 400 and closed[1]["error"]["code"] == 131047
    assert template[0] == 200 and template[1]["messages"][0]["message_status"] == "accepted"
    assert opened[0] == 200
