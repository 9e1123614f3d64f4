"""The REST plane: listing and closing sessions, per connector."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from telcoflow.server.config import Connector, GatewayConfig
from telcoflow.testing import GatewayThread, Phone

from .rawclient import claim_call, recv_type, sm_connect

OTHER_KEY = "tfk_other_connector_key_0000"


@pytest.fixture
def two_connectors() -> Iterator[GatewayThread]:
    config = GatewayConfig([Connector("conn-a", ["tfk_a_key_000000000000"], ["+15550100"]),
                            Connector("conn-b", [OTHER_KEY], ["+15550200"])],
                           ["tfp_phone_key_000000000"], port=0)
    with GatewayThread(config) as gw:
        yield gw


def http(gw: GatewayThread, method: str, path: str, key: str | None = None,
         connector: str | None = None) -> tuple[int, Any]:
    headers = {"x-api-key": key or gw.api_key, "x-connector-uuid": connector or gw.connector_uuid}
    req = urllib.request.Request(gw.http_url + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.asyncio
async def test_list_filters_and_close(two_connectors: GatewayThread) -> None:
    gw = two_connectors
    sm = await sm_connect(gw)
    async with Phone(gw.ws_url, gw.phone_key) as a1, Phone(gw.ws_url, gw.phone_key) as a2, \
            Phone(gw.ws_url, gw.phone_key) as b1:
        await a1.dial("+15550100", "+111")
        await a2.dial("+15550100", "+222")
        await b1.dial("+15550200", "+333")
        call_in = await claim_call(sm)

        status, body = http(gw, "GET", "/public/v1/sessions?state=OPEN")
        assert status == 200
        assert sorted(i["remoteAddress"] for i in body["items"]) == ["+111", "+222"]
        item = body["items"][0]
        assert set(item) >= {"id", "channel", "initiator", "state", "remoteAddress",
                             "localAddress", "openedAt", "closedAt"}
        assert item["channel"] == "TELCO" and item["initiator"] == "CONNECTOR"

        _, only = http(gw, "GET", "/public/v1/sessions?remoteAddress=%2B222")
        assert [i["remoteAddress"] for i in only["items"]] == ["+222"]
        _, theirs = http(gw, "GET", "/public/v1/sessions", OTHER_KEY, "conn-b")
        assert [i["remoteAddress"] for i in theirs["items"]] == ["+333"]

        sid = call_in["sessionId"]
        status, closed = http(gw, "POST", f"/public/v1/sessions/{sid}/close")
        assert status == 200 and closed["reason"] == "SDK_REQUEST"
        assert isinstance(closed["closedAt"], int)
        pushed = await recv_type(sm, "session.closed")
        assert pushed == {"type": "session.closed", "sessionId": sid, "reason": "SDK_REQUEST"}
        assert await a1.wait_hangup() == "CONNECTOR_CLOSED"

        again = http(gw, "POST", f"/public/v1/sessions/{sid}/close")
        assert again == (200, closed)
        _, after = http(gw, "GET", "/public/v1/sessions?state=CLOSED")
        assert [i["id"] for i in after["items"]] == [sid]

        # another connector cannot see or close it
        status, err = http(gw, "POST", f"/public/v1/sessions/{sid}/close", OTHER_KEY,
                                 "conn-b")
        assert status == 404 and err["code"] == "SESSION_NOT_FOUND"
    await sm.close()


@pytest.mark.parametrize(("method", "path", "key", "status", "code"), [
    ("GET", "/public/v1/sessions", "tfk_bad", 401, "UNAUTHORIZED"),
    ("POST", "/public/v1/sessions", None, 405, "METHOD_NOT_ALLOWED"),
    ("GET", "/public/v1/sessions?state=MAYBE", None, 400, "INVALID_REQUEST"),
    ("POST", "/public/v1/sessions/nope/close", None, 404, "SESSION_NOT_FOUND"),
    ("GET", "/public/v1/elsewhere", None, 404, "NOT_FOUND"),
])
def test_rest_errors_are_json_with_a_code_and_a_sentence(gateway: GatewayThread, method: str,
                                                         path: str, key: str | None, status: int,
                                                         code: str) -> None:
    got, body = http(gateway, method, path, key)
    assert got == status
    assert body["code"] == code and len(body["message"]) > 10
    assert "tfk_bad" not in body["message"]
