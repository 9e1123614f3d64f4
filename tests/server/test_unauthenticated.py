"""What an unauthenticated (or half-authenticated) peer can send, answered on every plane:
an HTTP status with a sentence, or the plane's error frame, never a silent close, a 500
or a traceback; floods of any frame type closed; a voice token cannot take a live call.

Raw bytes over loopback TCP where the HTTP layer itself is under test.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from telcoflow.protocol import voice as vp
from telcoflow.testing import GatewayThread, Phone

from .rawclient import claim_call, recv_json, recv_type, sm_connect, voice_connect
from .test_netio import client_frame

pytestmark = pytest.mark.asyncio

UPGRADE = ("GET {path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
SM = "/v1/agent/session-manager"
DEEP = "[" * 1000 + "]" * 1000


async def exchange(gw: GatewayThread, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data``; everything the server answers until it closes (or ``timeout``)."""
    port = int(gw.ws_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    out = b""
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                out += chunk
    except TimeoutError:
        out += b"<no close>"
    writer.close()
    return out


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


async def test_head_gets_the_headers_of_a_get_and_no_body(gateway: GatewayThread) -> None:
    answer = await exchange(gateway, b"HEAD /public/v1/sessions HTTP/1.1\r\nHost: gw\r\n"
                                     b"Connection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert status_of(answer) == 401 and b"content-length: " in head.lower()
    assert body == b""


@pytest.mark.parametrize("bad_line", ["bogus-header-without-colon", "x-a: b\r\n bad fold"])
async def test_a_malformed_upgrade_request_gets_400_with_the_reason(
        gateway: GatewayThread, bad_line: str) -> None:
    answer = await exchange(gateway, (UPGRADE.format(path=SM) + bad_line + "\r\n\r\n").encode())
    assert status_of(answer) == 400
    assert b"malformed upgrade request" in answer and not answer.endswith(b"<no close>")


async def test_non_ascii_credentials_get_401_never_500(
        gateway: GatewayThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    for headers in (f"x-api-key: {gateway.api_key}\r\nx-connector-uuid: \u00e9\u00e9\r\n",
                    "x-api-key: k\u00e9y\r\nx-connector-uuid: x\r\n",
                    "Authorization: Bearer t\u00e9st\r\n"):
        answer = await exchange(gateway, (UPGRADE.format(path=SM) + headers + "\r\n")
                                .encode("latin-1"))
        assert status_of(answer) == 401, answer[:80]
    assert "Traceback" not in caplog.text and not caplog.records


async def test_an_api_key_without_its_connector_uuid_is_refused(gateway: GatewayThread) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(gateway.ws_url + SM, additional_headers={"x-api-key": gateway.api_key})
    assert refused.value.response.status_code == 401
    assert b"missing x-connector-uuid" in refused.value.response.body


async def test_json_nested_1000_deep_is_an_invalid_request_on_every_plane(
        gateway: GatewayThread) -> None:
    sm = await sm_connect(gateway)
    await sm.send(DEEP)
    error = await recv_json(sm)
    assert error["errorCode"] == "INVALID_REQUEST" and "nested" in error["message"]
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        await phone.dial(to=gateway.number, caller="+15550001", codec="pcm16",
                         sample_rate=16000)
        voice = await voice_connect(await claim_call(sm))
        await voice.send(DEEP)
        reply = await recv_json(voice)
        assert "nested" in json.dumps(reply)
        assert not phone.hung_up  # the call goes on
        await voice.close()
    line = await connect(gateway.ws_url + "/v1/phone",
                         additional_headers={"Authorization": f"Bearer {gateway.phone_key}"})
    await line.send(DEEP)
    assert "nested" in (await recv_json(line))["message"]
    await line.close()
    await sm.close()


async def flood(ws: ClientConnection, frame: str | bytes) -> tuple[int, int]:
    """Send ``frame`` 300 times; the close code and how many error frames came first."""
    for _ in range(300):
        await ws.send(frame)
    errors = 0
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await recv_json(ws)
            errors += 1
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, errors


async def test_binary_floods_on_the_session_manager_plane_are_closed(
        gateway: GatewayThread) -> None:
    code, errors = await flood(await sm_connect(gateway), b"x")
    assert code == 1008 and errors <= 51


@pytest.mark.parametrize("frame", ['{"type": "ring-ring"}', b"\x00\x00"])
async def test_floods_before_dialling_on_the_phone_plane_are_closed(
        gateway: GatewayThread, frame: str | bytes) -> None:
    line = await connect(gateway.ws_url + "/v1/phone",
                         additional_headers={"Authorization": f"Bearer {gateway.phone_key}"})
    code, errors = await flood(line, frame)
    assert code == 1008 and errors <= 50


async def test_a_copy_of_a_voice_token_cannot_take_a_live_call(gateway: GatewayThread) -> None:
    sm = await sm_connect(gateway)
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        await phone.dial(to=gateway.number, caller="+15550001", codec="pcm16",
                         sample_rate=16000)
        call_in = await claim_call(sm)
        voice = await voice_connect(call_in)
        with pytest.raises(InvalidStatus) as refused:  # the same token, from elsewhere
            await connect(call_in["url"], compression=None, local_addr=("127.0.0.2", 0),
                          additional_headers={"Authorization": f"Bearer {call_in['token']}"})
        assert refused.value.response.status_code == 409
        await voice.send(vp.build_command("c1", "call.answer", 5000))
        answered = await recv_type(voice, "command_response")  # still the agent's link
        assert answered["data"]["success"] is True
        await voice.close()
        again = await voice_connect(call_in)  # the first link gone: a reconnect may use it
        await again.close()
    await sm.close()


async def test_command_and_audio_floods_on_the_voice_plane_are_closed(
        gateway: GatewayThread) -> None:
    sm = await sm_connect(gateway)
    for frame in ("not a command", b"\x09" + bytes(640)):  # junk text; audio on channel 9
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            await phone.dial(to=gateway.number, caller="+15550001", codec="pcm16",
                             sample_rate=16000)
            voice = await voice_connect(await claim_call(sm))
            code, errors = await flood(voice, frame)
            assert code == 1008 and errors <= 51
    await sm.close()


async def test_a_frame_sent_in_the_same_packet_as_the_upgrade_is_read(
        gateway: GatewayThread) -> None:
    """Once an AssertionError inside websockets and no answer at all."""
    setup = json.dumps({"type": "setup", "data": {"sampleRate": 16000, "audioMode": "mixed"}})
    head = (UPGRADE.format(path=SM) + f"x-api-key: {gateway.api_key}\r\n"
            f"x-connector-uuid: {gateway.connector_uuid}\r\n\r\n").encode()
    port = int(gateway.ws_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + client_frame(0x81, setup.encode()))  # one write, one segment
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    first, length = await reader.readexactly(2)
    assert first == 0x81 and length < 126  # an unmasked text frame, short
    reply = json.loads(await reader.readexactly(length))
    assert reply["type"] == "setup.done"
    writer.close()
