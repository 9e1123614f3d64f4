"""Minimal raw-protocol clients for the gateway tests (no SDK in the way)."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from telcoflow.testing import GatewayThread


async def sm_connect(gw: GatewayThread, rate: int = 16000, setup: bool = True) -> ClientConnection:
    ws = await connect(gw.ws_url + "/v1/agent/session-manager", additional_headers={
        "x-api-key": gw.api_key, "x-connector-uuid": gw.connector_uuid,
        "x-sdk-version": "test"}, compression=None)
    if setup:
        await ws.send(json.dumps({"type": "setup", "data": {"sampleRate": rate,
                                                            "audioMode": "mixed"}}))
        done = await recv_json(ws)
        assert done["type"] == "setup.done"
    return ws


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    import asyncio
    while True:
        msg = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(msg, str):
            data: dict[str, Any] = json.loads(msg)
            return data


async def recv_type(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next text frame of ``kind`` (others, like buffer_request, are skipped)."""
    while True:
        msg = await recv_json(ws, timeout)
        if msg.get("type") == kind:
            return msg


async def request(ws: ClientConnection, frame: dict[str, Any], req_id: str = "r1"
                  ) -> dict[str, Any]:
    await ws.send(json.dumps({**frame, "reqId": req_id}))
    return await recv_type(ws, "response")


async def claim_call(ws: ClientConnection) -> dict[str, Any]:
    """notify → open → ready → call.in, as an SDK does."""
    notify = await recv_type(ws, "session.notify")
    opened = await request(ws, {"type": "session.open", "sessionId": notify["sessionId"]})
    assert opened["ok"], opened
    await ws.send(json.dumps({"type": "session.ready", "sessionId": notify["sessionId"]}))
    return await recv_type(ws, "call.in")


async def voice_connect(call_in: dict[str, Any], token: str | None = None) -> ClientConnection:
    return await connect(call_in["url"], additional_headers={
        "Authorization": f"Bearer {token or call_in['token']}"}, compression=None)


async def command(ws: ClientConnection, name: str, cid: str = "c1",
                  data: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"command_id": cid, "command": name, "timeout_ms": 5000}
    if data is not None:
        body["data"] = data
    await ws.send(json.dumps({"type": "command", "data": body}))
    reply = await recv_type(ws, "command_response")
    assert reply["data"]["command_id"] == cid
    return dict(reply["data"])
