"""A WebSocket peer that stops reading is dropped once the gateway holds more than
WRITE_BUFFER_LIMIT for it, instead of buffering for it forever (server.netio)."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from telcoflow.server import netio

from .test_netio import UPGRADE, WAIT, client_frame, running

pytestmark = pytest.mark.asyncio


async def test_a_peer_that_stops_reading_is_dropped(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.WARNING, "telcoflow.server.netio")
    monkeypatch.setattr(netio, "WRITE_BUFFER_LIMIT", 256 * 1024)
    async with running() as (server, app, port):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(UPGRADE)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101")
        frame = client_frame(0x82, bytes(60_000))  # the server echoes every one of them
        with pytest.raises((ConnectionError, OSError)):
            for _ in range(2000):  # up to 120 MB, never read: the server gives up first
                writer.write(frame)
                await writer.drain()
        await asyncio.wait_for(app.closed.wait(), WAIT)  # the handler heard it closed
        writer.close()
    assert "stopped reading" in caplog.text
