"""Connection limits (server.netio.NetLimits): an idle or slowloris flood from one address
cannot stop another address's new call; a full server answers 503 at once; accept()
failures are logged once a while, not once per attempt.

The rule is tested on its own (Admission), then over loopback sockets, a second source
address being 127.0.0.2 (Linux routes all of 127/8 to lo).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from telcoflow.server.netio import Admission, NetLimits, NetServer, serve

from .test_netio import LONG, UPGRADE, WAIT, App, read_to_eof


def test_the_rule_counts_pending_connections_per_source_and_all_connections() -> None:
    admission = Admission(NetLimits(max_connections=5, max_pending_per_source=2))
    assert admission.admit("a") is None and admission.admit("a") is None
    refused = admission.admit("a")
    assert refused is not None and "a has 2 connections" in refused
    assert admission.admit("b") is None  # another address is not affected
    admission.upgraded("a")              # one of a's became a WebSocket: it no longer counts
    assert admission.admit("a") is None
    assert admission.admit("c") is None
    refused = admission.admit("d")
    assert refused is not None and "limit of 5 connections" in refused
    admission.left("a", pending=False)   # the WebSocket closed
    assert admission.admit("d") is None
    for source, pending in (("a", True), ("a", True), ("b", True), ("c", True), ("d", True)):
        admission.left(source, pending)
    assert admission.total == 0 and admission.pending == {}


@asynccontextmanager
async def limited(**limits: int) -> AsyncIterator[tuple[NetServer, int]]:
    server = await serve(App().route, "127.0.0.1", 0, None, LONG, NetLimits(**limits))
    try:
        yield server, server.sockets[0].getsockname()[1]
    finally:
        await server.shutdown(timeout=1.0)


async def open_from(source: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def get_hello(source: str, port: int) -> bytes:
    reader, writer = await open_from(source, port)
    writer.write(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    answer = await read_to_eof(reader)
    writer.close()
    return answer


@pytest.mark.asyncio
async def test_an_idle_flood_from_one_address_leaves_others_served() -> None:
    async with limited(max_pending_per_source=8) as (server, port):
        idle = [await open_from("127.0.0.1", port) for _ in range(8)]  # say nothing
        refused = await get_hello("127.0.0.1", port)
        assert refused.startswith(b"HTTP/1.1 503") and b"not completed a request" in refused
        assert (await get_hello("127.0.0.2", port)).startswith(b"HTTP/1.1 200")
        # an address's WebSockets do not count: the same address upgrades and is served
        idle[0][1].write(UPGRADE)
        head = await asyncio.wait_for(idle[0][0].readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101")
        assert (await get_hello("127.0.0.1", port)).startswith(b"HTTP/1.1 200")
        for _, writer in idle:
            writer.close()
        assert server.admission.total <= 9


@pytest.mark.asyncio
async def test_a_full_server_answers_503_at_once_and_recovers() -> None:
    async with limited(max_connections=4, max_pending_per_source=100) as (server, port):
        held = [await open_from("127.0.0.1", port) for _ in range(4)]
        refused = await get_hello("127.0.0.2", port)
        assert refused.startswith(b"HTTP/1.1 503") and b"limit of 4 connections" in refused
        for reader, writer in held:
            writer.close()
            await read_to_eof(reader)
        assert await server._wait_drained(WAIT)  # the server saw them go
        assert (await get_hello("127.0.0.2", port)).startswith(b"HTTP/1.1 200")


@pytest.mark.asyncio
async def test_accept_failures_are_logged_once_a_while(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "telcoflow.server.netio")
    async with limited() as (server, _):
        loop = asyncio.get_running_loop()
        handler = loop.get_exception_handler()
        assert handler is not None
        for _ in range(1000):  # what asyncio reports per failed accept() when out of fds
            handler(loop, {"message": "socket.accept() out of system resource",
                           "exception": OSError(24, "Too many open files")})
    lines = [r for r in caplog.records if "accept() failed" in r.getMessage()]
    assert len(lines) == 1 and "Too many open files" in lines[0].getMessage()
