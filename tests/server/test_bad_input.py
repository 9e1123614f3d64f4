"""Bad input on every plane gets a clear error and harms nothing else."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from telcoflow.testing import GatewayThread, Phone

from .rawclient import claim_call, command, recv_json, recv_type, request, sm_connect, voice_connect


async def answered_call(gw: GatewayThread, sm: ClientConnection,
                        phone: Phone) -> tuple[dict[str, Any], ClientConnection]:
    """Dial, claim the call on ``sm`` and answer it: the call.in and its voice connection."""
    await phone.dial(gw.number)
    call_in = await claim_call(sm)
    voice = await voice_connect(call_in)
    await command(voice, "call.answer")
    return call_in, voice


async def still_serving(gw: GatewayThread) -> None:
    """A fresh connection still gets a full round trip."""
    ws = await sm_connect(gw)
    reply = await request(ws, {"type": "session.open", "sessionId": "nope"}, "probe")
    assert reply["errorCode"] == "SESSION_NOT_FOUND"
    await ws.close()


@pytest_asyncio.fixture
async def bystander(gateway: GatewayThread) -> AsyncIterator[ClientConnection]:
    ws = await sm_connect(gateway)
    yield ws
    reply = await request(ws, {"type": "session.open", "sessionId": "nope"}, "alive?")
    assert reply["errorCode"] == "SESSION_NOT_FOUND", "the bystander connection was harmed"
    await ws.close()
    await still_serving(gateway)


# ── session-manager plane ──────────────────────────────────────────────────

@pytest.mark.asyncio
@pytest.mark.parametrize(("frame", "code", "words"), [
    ("{not json", "INVALID_REQUEST", "not valid JSON"),
    ('["a", "list"]', "INVALID_REQUEST", "must be a JSON object"),
    ('{"type": 5}', "INVALID_REQUEST", "'type'"),
    ('{"type": "session.ready"}', "INVALID_REQUEST", "missing field 'sessionId'"),
])
async def test_sm_frames_without_req_id_get_an_error_frame(
        gateway: GatewayThread, bystander: ClientConnection, frame: str, code: str,
        words: str) -> None:
    ws = await sm_connect(gateway)
    await ws.send(frame)
    error = await recv_json(ws)
    assert error["type"] == "error" and error["errorCode"] == code
    assert words in error["message"]
    await ws.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(("frame", "words"), [
    ({"type": "session.teleport"}, "unknown message type 'session.teleport'"),
    ({"type": "session.open", "sessionId": 123}, "'sessionId' must be a string, not an integer"),
    ({"type": "session.create", "channel": "FAX", "remoteAddress": "x"}, "channel must be one of"),
    ({"type": "call_flow.setup", "data": {"inboundCall": "SOME"}}, "inboundCall must be one of"),
    ({"type": "call_flow.setup", "data": {"inboundCall": "ALL", "outboundCall": "yes"}},
     "'outboundCall' must be a boolean"),
])
async def test_sm_bad_requests_get_an_error_response(
        gateway: GatewayThread, bystander: ClientConnection, frame: dict[str, object],
        words: str) -> None:
    ws = await sm_connect(gateway)
    reply = await request(ws, frame, "bad-1")
    assert reply["reqId"] == "bad-1" and reply["ok"] is False
    assert reply["errorCode"] == "INVALID_REQUEST"
    assert words in reply["message"]
    await ws.close()


@pytest.mark.asyncio
async def test_requests_before_setup_are_refused(gateway: GatewayThread,
                                                 bystander: ClientConnection) -> None:
    ws = await sm_connect(gateway, setup=False)
    reply = await request(ws, {"type": "session.open", "sessionId": "x"})
    assert reply["ok"] is False and "send 'setup' first" in reply["message"]
    await ws.close()


@pytest.mark.asyncio
async def test_ready_before_open_is_refused(gateway: GatewayThread) -> None:
    ws = await sm_connect(gateway)
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        await phone.dial(gateway.number)
        notify = await recv_type(ws, "session.notify")
        await ws.send(json.dumps({"type": "session.ready", "sessionId": notify["sessionId"]}))
        error = await recv_type(ws, "error")
        assert error["errorCode"] == "SESSION_NOT_OPEN"
        await phone.hangup()
    await ws.close()


@pytest.mark.asyncio
async def test_oversized_sm_frame_closes_with_a_reason(gateway: GatewayThread,
                                                       bystander: ClientConnection) -> None:
    ws = await sm_connect(gateway)
    await ws.send(json.dumps({"type": "session.open", "reqId": "r", "sessionId": "x" * 70_000}))
    with pytest.raises(ConnectionClosed) as info:
        await recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


@pytest.mark.asyncio
async def test_sm_flood_closes_only_the_flooding_connection(gateway: GatewayThread,
                                                            bystander: ClientConnection) -> None:
    ws = await sm_connect(gateway)
    frame = json.dumps({"type": "session.open", "reqId": "f", "sessionId": "x"})
    with pytest.raises(ConnectionClosed) as info:
        for _ in range(5000):
            await ws.send(frame)
        while True:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert "too many frames" in info.value.rcvd.reason


@pytest.mark.asyncio
async def test_binary_on_the_sm_plane_is_refused(gateway: GatewayThread) -> None:
    ws = await sm_connect(gateway)
    await ws.send(b"\x00\x01\x02")
    error = await recv_json(ws)
    assert error["errorCode"] == "INVALID_REQUEST" and "text frames only" in error["message"]
    await ws.close()


# ── voice plane ───────────────────────────────────────────────────────────

@pytest.mark.asyncio
async def test_voice_plane_bad_input(gateway: GatewayThread, bystander: ClientConnection) -> None:
    sm = await sm_connect(gateway)
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        await phone.dial(gateway.number, codec="pcm16", sample_rate=16000)
        call_in = await claim_call(sm)
        voice = await voice_connect(call_in)

        await voice.send(b"\x00" + bytes(640))
        early = await recv_type(voice, "error")
        assert early["data"]["error_code"] == "AUDIO_BEFORE_ANSWER"

        unknown = await command(voice, "call.teleport", "u1")
        assert unknown["success"] is False and unknown["error_code"] == "UNKNOWN_COMMAND"
        assert "call.teleport" in unknown["error_message"]

        whisper = await command(voice, "agent.whisper", "w1")
        assert whisper["error_code"] == "NOT_CONNECTED"

        await voice.send('{"type": "command", "data": {"command_id": "t1", "command": 7}}')
        typed = await recv_type(voice, "command_response")
        assert typed["data"]["error_code"] == "INVALID_REQUEST"
        assert "'command' must be a string" in typed["data"]["error_message"]

        await voice.send("{oops")
        garbled = await recv_type(voice, "error")
        assert "not valid JSON" in garbled["data"]["error_message"]

        assert (await command(voice, "call.answer", "a1"))["success"] is True
        await phone.wait_answered()
        await voice.send(b"\x00\x01")
        short = await recv_type(voice, "error")
        assert short["data"]["error_code"] == "INVALID_AUDIO"
        await voice.send(b"\x00" + bytes(641))
        odd = await recv_type(voice, "error")
        assert "whole 16-bit samples" in odd["data"]["error_message"]

        await phone.hangup()
        event = await recv_type(voice, "call_event")
        assert event["data"]["event"] == "call.terminated"
        with pytest.raises(ConnectionClosed):
            await command(voice, "call.answer", "late")
    with pytest.raises(InvalidStatus) as info:
        await voice_connect(call_in)
    assert info.value.response.status_code == 410
    assert b"has ended" in info.value.response.body
    await sm.close()


@pytest.mark.asyncio
async def test_oversized_voice_frame_closes_with_a_reason(gateway: GatewayThread) -> None:
    sm = await sm_connect(gateway)
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        call_in, voice = await answered_call(gateway, sm, phone)
        await voice.send(b"\x00" + bytes(200_000))
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await voice.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
        # the call survives its agent's mistake: the agent may reconnect
        again = await voice_connect(call_in)
        assert (await command(again, "call.answer", "a2"))["result"]["alreadyAnswered"] is True
        await phone.hangup()
    await sm.close()


# ── auth ───────────────────────────────────────────────────────────────────

@pytest.mark.asyncio
@pytest.mark.parametrize(("headers", "words"), [
    ({"x-api-key": "tfk_wrong", "x-connector-uuid": "x"}, b"invalid API key"),
    ({}, b"missing credentials"),
])
async def test_bad_sm_credentials_get_401_with_a_sentence(gateway: GatewayThread,
                                                          headers: dict[str, str],
                                                          words: bytes) -> None:
    with pytest.raises(InvalidStatus) as info:
        await connect(gateway.ws_url + "/v1/agent/session-manager", additional_headers=headers)
    assert info.value.response.status_code == 401
    assert words in info.value.response.body
    assert b"tfk_wrong" not in info.value.response.body


@pytest.mark.asyncio
async def test_key_of_another_connector_is_refused(gateway: GatewayThread) -> None:
    with pytest.raises(InvalidStatus) as info:
        await connect(gateway.ws_url + "/v1/agent/session-manager", additional_headers={
            "x-api-key": gateway.api_key, "x-connector-uuid": "someone-else"})
    assert info.value.response.status_code == 401


@pytest.mark.asyncio
async def test_forged_and_missing_voice_tokens_are_refused(gateway: GatewayThread) -> None:
    sm = await sm_connect(gateway)
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        await phone.dial(gateway.number)
        call_in = await claim_call(sm)
        v, payload, mac = call_in["token"].split(".")
        for token, words in [(f"{v}.{payload}.{mac[:-2]}xx", b"signature is invalid"),
                             ("garbage", b"malformed")]:
            with pytest.raises(InvalidStatus) as info:
                await voice_connect(call_in, token)
            assert info.value.response.status_code == 401 and words in info.value.response.body
        with pytest.raises(InvalidStatus) as missing:
            await connect(call_in["url"])
        assert missing.value.response.status_code == 401
        await phone.hangup()
    await sm.close()


# ── phone plane ─────────────────────────────────────────────────────────────

@pytest.mark.asyncio
async def test_phone_plane_bad_input(gateway: GatewayThread, bystander: ClientConnection) -> None:
    ws = await connect(gateway.ws_url + "/v1/phone",
                       additional_headers={"Authorization": f"Bearer {gateway.phone_key}"})
    await ws.send(b"\x00\x00")
    assert (await recv_json(ws))["code"] == "INVALID_STATE"
    await ws.send('{"type": "dial", "to": "+1", "codec": "opus"}')
    assert "codec must be one of" in (await recv_json(ws))["message"]
    await ws.send('{"type": "dial", "to": "+1", "codec": "pcmu", "sampleRate": 16000}')
    assert "8000 Hz only" in (await recv_json(ws))["message"]
    await ws.send('{"type": "ring-ring"}')
    assert (await recv_json(ws))["code"] == "UNKNOWN_TYPE"
    await ws.send('{"type": "dial", "to": "+19999999"}')
    hangup = await recv_json(ws)
    assert hangup["reason"] == "NOT_IN_SERVICE" and "+19999999" in hangup["message"]
    await ws.close()
    with pytest.raises(InvalidStatus) as info:
        await connect(gateway.ws_url + "/v1/phone",
                      additional_headers={"Authorization": "Bearer nope"})
    assert info.value.response.status_code == 401


# ── subscriber lines and call control ─────────────────────────────────────

async def phone_ws(gw: GatewayThread) -> ClientConnection:
    return await connect(gw.ws_url + "/v1/phone",
                         additional_headers={"Authorization": f"Bearer {gw.phone_key}"})


@pytest.mark.asyncio
async def test_line_frames_out_of_order_get_specific_errors(gateway: GatewayThread) -> None:
    line = await phone_ws(gateway)
    await line.send(json.dumps({"type": "answer"}))  # not registered yet
    assert (await recv_json(line))["code"] == "INVALID_STATE"
    await line.send(json.dumps({"type": "register", "number": gateway.number}))
    assert await recv_json(line) == {"type": "registered", "number": gateway.number}
    await line.send(json.dumps({"type": "answer"}))  # nothing is ringing
    reply = await recv_json(line)
    assert reply["code"] == "INVALID_STATE" and "no call ringing" in reply["message"]
    await line.send(json.dumps({"type": "dial", "to": gateway.number}))
    assert (await recv_json(line))["code"] == "INVALID_STATE"
    await line.send(b"\x00" * 160)  # audio while idle is ignored, not an error storm
    other = await phone_ws(gateway)
    await other.send(json.dumps({"type": "register", "number": gateway.number}))
    taken = await recv_json(other)
    assert taken["code"] == "NUMBER_IN_USE" and gateway.number in taken["message"]
    await other.close()
    await line.close()
    await still_serving(gateway)


@pytest.mark.asyncio
async def test_bad_connect_arguments_are_refused_and_the_call_goes_on(
        gateway: GatewayThread) -> None:
    sm = await sm_connect(gateway)
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        _, voice = await answered_call(gateway, sm, phone)
        for cid, data in (("c2", {"ringTimeSeconds": 0}), ("c3", {"ringTimeSeconds": "30"})):
            reply = await command(voice, "call.connect", cid, data=data)
            assert not reply["success"] and reply["error_code"] == "INVALID_REQUEST"
            assert "ringTimeSeconds" in reply["error_message"]
        reply = await command(voice, "agent.spy", "c4")
        assert reply["error_code"] == "NOT_CONNECTED"
        assert not phone.hung_up
        await phone.hangup()
    await sm.close()
