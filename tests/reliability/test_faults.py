"""Faults around a live call: the caller's connection reset, the caller gone silent on
the network (blackholed: no FIN, no RST, no pong), the gateway restarted under a
connected agent. Each ends what it must, clearly, and leaves the rest working. (The
agent killed mid-call: tests/interop/test_failover.py; the session-manager dropped:
tests/interop/test_lifecycle.py; a peer that stops reading:
tests/server/test_slow_consumer.py.)
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection

from telcoflow.server.config import embedded_defaults
from telcoflow.testing import GatewayThread, Phone

from ..interop.agent_process import scenario_agent, wait_mark
from ..interop.signals import echo_of, noise
from ..server.rawclient import claim_call, recv_type, sm_connect, voice_connect
from ..server.test_netio import client_frame

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

PHONE_UPGRADE = ("GET /v1/phone HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {key}\r\n\r\n")


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def answered(gw: GatewayThread, sm: ClientConnection) -> ClientConnection:
    """Claim the call that is ringing and answer it; the agent's voice connection."""
    voice = await voice_connect(await claim_call(sm))
    await voice.send(json.dumps({"type": "command", "data": {
        "command_id": "a1", "command": "call.answer", "timeout_ms": 5000}}))
    await recv_type(voice, "command_response")
    return voice


async def terminated(voice: ClientConnection) -> dict[str, Any]:
    while True:
        event = await recv_type(voice, "call_event", timeout=15)
        if event["data"]["event"] == "call.terminated":
            return event


async def test_a_caller_whose_connection_is_reset_ends_the_call_cleanly(
        gateway: GatewayThread) -> None:
    sm = await sm_connect(gateway)
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        await phone.dial(gateway.number, "+15550001", "pcm16", 16000)
        voice = await answered(gateway, sm)
        await phone.wait_answered()
        assert phone._ws is not None
        sock = phone._ws.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        phone._ws.transport.abort()  # closed with linger 0: the gateway gets an RST
        await terminated(voice)
        closed = await recv_type(sm, "session.closed", timeout=15)
        assert closed["reason"] == "CALL_TERMINATED"
    async with Phone(gateway.ws_url, gateway.phone_key) as again:  # the next call is fine
        await again.dial(gateway.number, "+15550002", "pcm16", 16000)
        await (await answered(gateway, sm)).close()
        await again.wait_answered()
    await sm.close()


async def test_a_blackholed_caller_is_dropped_by_the_ping_timeout() -> None:
    """The caller's network vanished: nothing comes back, not even a pong. The gateway
    pings it, gives up after the pong timeout, and the agent's call ends."""
    with GatewayThread(ring_timeout_s=10.0, ws_ping_interval_s=0.3,
                       ws_pong_timeout_s=0.3) as gw:
        sm = await sm_connect(gw)
        port = int(gw.ws_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(PHONE_UPGRADE.format(key=gw.phone_key).encode())
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        dial = {"type": "dial", "to": gw.number, "from": "+15550001", "codec": "pcm16",
                "sampleRate": 16000}
        writer.write(client_frame(0x81, json.dumps(dial).encode()))
        voice = await answered(gw, sm)
        # from here on the caller reads nothing and answers no ping
        loop = asyncio.get_running_loop()
        silent_from = loop.time()
        await terminated(voice)
        assert loop.time() - silent_from >= 0.3
        writer.close()
        await sm.close()


async def test_an_agent_reconnects_to_a_restarted_gateway_and_takes_new_calls(
        refsdk_path: Path) -> None:
    config = embedded_defaults(port=free_tcp_port())  # the same address both times
    first = GatewayThread(config, ring_timeout_s=10.0).__enter__()
    stopped = False
    try:
        with scenario_agent(refsdk_path, first, "echo") as agent:
            await wait_mark(agent, "connected")
            first.__exit__(None, None, None)  # the gateway goes away under the agent
            stopped = True
            mark = len(agent.lines)
            with GatewayThread(config, ring_timeout_s=10.0) as second:
                await asyncio.to_thread(agent.wait_for, "Reconnected successfully", 30, mark)
                async with Phone(second.ws_url, second.phone_key) as phone:
                    await phone.dial(second.number, "+15550001", "pcm16", 16000)
                    await phone.wait_answered()
                    sent = noise(0.3, 16000)
                    start = phone.frames_received
                    await phone.play(sent)
                    heard = await echo_of(phone, start, len(sent))
                    await phone.hangup()
    finally:
        if not stopped:
            first.__exit__(None, None, None)
    assert np.array_equal(heard, sent)
