"""The gateway's HTTP/WebSocket server (server.netio): timeouts, shutdown, frames over TCP.

Socket tests run a real server on loopback with one short timeout (the one
under test) and the others long, and misbehaving clients written with raw
sockets. They wait for events (a frame, EOF) with generous bounds and assert
only lower bounds on elapsed time, so a busy machine makes them slower, not
flaky. The timeout policy itself is tested with a fake clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect

from telcoflow.server.netio import (
    HttpRequest,
    HttpResponse,
    HttpWsProtocol,
    NetServer,
    NetTimeouts,
    Phase,
    TimeoutPolicy,
    Verdict,
    WsAccept,
    WsConnection,
    WsReject,
    serve,
)

LONG = NetTimeouts(handshake=60, idle_http=60, ping_interval=60, pong_timeout=60, close=60)
WAIT = 15.0  # bound on waiting for something that must happen (a busy machine is slow)
UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


# ── a server to talk to ────────────────────────────────────────────────────────

class Echo:
    """Echoes frames; closes with 1008 when told "close me"."""

    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log
        self.conn: WsConnection | None = None

    def on_open(self, conn: WsConnection) -> None:
        self.conn = conn
        self.log.append(("open", None))

    def on_text(self, text: str) -> None:
        assert self.conn is not None
        self.log.append(("text", text))
        if text == "close me":
            self.conn.close(1008, "as asked")
        else:
            self.conn.send_text(text)

    def on_binary(self, data: bytes) -> None:
        assert self.conn is not None
        self.log.append(("binary", data))
        self.conn.send_binary(data)

    def on_close(self, code: int | None, reason: str) -> None:
        self.log.append(("close", (code, reason)))


class App:
    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.closed = asyncio.Event()
        self.handlers: list[Echo] = []

    def route(self, request: HttpRequest, websocket: bool) -> HttpResponse | WsAccept | WsReject:
        if websocket and request.path == "/ws":
            app = self

            class Handler(Echo):
                def on_close(self, code: int | None, reason: str) -> None:
                    super().on_close(code, reason)
                    app.closed.set()

            self.handlers.append(Handler(self.log))
            return WsAccept(self.handlers[-1], max_message_bytes=1 << 17)
        if websocket:
            return WsReject(404, "no such endpoint")
        return HttpResponse(200, b"hello", "text/plain")

    def closes(self) -> list[Any]:
        return [value for kind, value in self.log if kind == "close"]


@asynccontextmanager
async def running(**timeouts: float) -> AsyncIterator[tuple[NetServer, App, int]]:
    app = App()
    server = await serve(app.route, "127.0.0.1", 0, None, dataclasses.replace(LONG, **timeouts))
    try:
        yield server, app, server.sockets[0].getsockname()[1]
    finally:
        await server.shutdown(timeout=1.0)


async def upgraded(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(UPGRADE)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


def client_frame(first: int, payload: bytes) -> bytes:
    """A masked frame, as a client sends it."""
    key = os.urandom(4)
    n = len(payload)
    head = bytes((first, 0x80 | n)) if n < 126 else bytes((first, 0xFE)) + n.to_bytes(2, "big")
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One (unmasked) server frame: (opcode, payload)."""
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), WAIT)
    size = b1 & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, await reader.readexactly(size)


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server ends the connection (closed or aborted)."""
    try:
        return await asyncio.wait_for(reader.read(), WAIT)
    except ConnectionResetError:
        return b""


# ── the timeout policy, on a fake clock ────────────────────────────────────────

POLICY = NetTimeouts(handshake=10, idle_http=30, ping_interval=20, pong_timeout=5, close=3)


def test_request_must_be_complete_within_the_handshake_timeout() -> None:
    policy = TimeoutPolicy(POLICY, now=100.0)
    for t in (101.0, 105.0, 109.9):
        policy.seen = True  # bytes trickling in do not extend the deadline
        assert policy.check(t) is Verdict.WAIT
    policy.seen = True
    assert policy.check(110.0) is Verdict.REQUEST_TIMEOUT


def test_keep_alive_idles_then_a_new_request_gets_its_own_deadline() -> None:
    policy = TimeoutPolicy(POLICY, now=0.0)
    policy.enter(Phase.IDLE, 5.0)
    assert policy.check(34.9) is Verdict.WAIT
    assert policy.check(35.0) is Verdict.IDLE_TIMEOUT
    policy.enter(Phase.IDLE, 40.0)
    policy.seen = True  # the next request starts
    assert policy.check(60.0) is Verdict.WAIT
    assert policy.phase is Phase.REQUEST
    assert policy.check(69.9) is Verdict.WAIT
    assert policy.check(70.0) is Verdict.REQUEST_TIMEOUT


def test_silent_websocket_is_pinged_then_dropped() -> None:
    policy = TimeoutPolicy(POLICY, now=0.0)
    policy.enter(Phase.WEBSOCKET, 0.0)
    assert policy.check(19.9) is Verdict.WAIT
    assert policy.check(20.0) is Verdict.PING
    assert policy.check(24.9) is Verdict.WAIT  # one ping, not one per sweep
    assert policy.check(25.0) is Verdict.PONG_TIMEOUT


def test_answered_ping_or_any_data_keeps_a_websocket() -> None:
    policy = TimeoutPolicy(POLICY, now=0.0)
    policy.enter(Phase.WEBSOCKET, 0.0)
    for t in range(1, 100):  # audio flowing: never a ping
        policy.seen = True
        assert policy.check(float(t)) is Verdict.WAIT
    assert policy.check(118.9) is Verdict.WAIT
    assert policy.check(119.0) is Verdict.PING
    policy.seen = True  # the pong
    assert policy.check(120.0) is Verdict.WAIT
    assert policy.check(130.0) is Verdict.WAIT  # 10 s > pong_timeout: no drop, the peer spoke
    assert policy.check(140.0) is Verdict.PING  # silent again for ping_interval


def test_closing_peer_has_the_close_timeout_whatever_it_sends() -> None:
    policy = TimeoutPolicy(POLICY, now=0.0)
    policy.enter(Phase.CLOSING, 50.0)
    policy.seen = True
    assert policy.check(52.9) is Verdict.WAIT
    policy.seen = True
    assert policy.check(53.0) is Verdict.CLOSE_TIMEOUT


def test_sweep_interval_follows_the_shortest_timeout() -> None:
    assert NetTimeouts().sweep_interval == 1.0
    assert NetTimeouts(close=0.2).sweep_interval == pytest.approx(0.05)
    assert NetTimeouts(handshake=0.001).sweep_interval == 0.01
    defaults = NetTimeouts()
    assert (defaults.handshake, defaults.idle_http, defaults.ping_interval,
            defaults.pong_timeout, defaults.close) == (10, 30, 20, 20, 5)


# ── timeouts over sockets ──────────────────────────────────────────────────────

@pytest.mark.asyncio
@pytest.mark.parametrize("sent", [b"", b"GET /hello HTTP/1.1\r\nHost: te", UPGRADE[:60]],
                         ids=["nothing", "half a request", "half an upgrade"])
async def test_incomplete_request_gets_408_and_is_closed(sent: bytes) -> None:
    async with running(handshake=0.3) as (server, _, port):
        loop = asyncio.get_running_loop()
        start = loop.time()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(sent)
        answer = await read_to_eof(reader)
        assert loop.time() - start >= 0.3
        assert answer.startswith(b"HTTP/1.1 408")
        writer.close()


@pytest.mark.asyncio
async def test_idle_keep_alive_connection_is_closed() -> None:
    async with running(idle_http=0.3) as (_, _, port):
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):  # keep-alive: two requests on one connection
            idle_from = loop.time()  # the server starts idling after this request
            writer.write(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
            assert head.startswith(b"HTTP/1.1 200")
            assert await reader.readexactly(5) == b"hello"
        assert await read_to_eof(reader) == b""
        assert loop.time() - idle_from >= 0.3
        writer.close()


@pytest.mark.asyncio
async def test_websocket_peer_that_answers_no_ping_is_dropped() -> None:
    async with running(ping_interval=0.2, pong_timeout=0.3) as (_, app, port):
        loop = asyncio.get_running_loop()
        start = loop.time()  # before the upgrade, so the server's clock starts after it
        reader, writer = await upgraded(port)
        assert await read_frame(reader) == (0x9, b"")  # the server's ping, left unanswered
        assert await read_to_eof(reader) == b""  # dropped
        assert loop.time() - start >= 0.5
        await asyncio.wait_for(app.closed.wait(), WAIT)
        assert app.closes() == [(1006, "")]
        writer.close()


@pytest.mark.asyncio
async def test_websocket_peer_that_answers_pings_stays() -> None:
    async with running(ping_interval=0.1, pong_timeout=WAIT) as (server, app, port):
        reader, writer = await upgraded(port)
        for _ in range(3):
            opcode, payload = await read_frame(reader)
            assert opcode == 0x9
            writer.write(client_frame(0x8A, payload))  # pong
        writer.write(client_frame(0x81, b"still here"))
        assert await read_frame(reader) == (0x1, b"still here")
        assert server.connections == 1 and app.closes() == []
        writer.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("closed_by", ["handler, on a frame", "server code, on its own"])
async def test_peer_that_does_not_finish_the_close_is_aborted(closed_by: str) -> None:
    async with running(close=0.3) as (_, app, port):
        loop = asyncio.get_running_loop()
        reader, writer = await upgraded(port)
        start = loop.time()  # the server sends its close after this
        if closed_by == "handler, on a frame":
            writer.write(client_frame(0x81, b"close me"))
        else:  # not inside a read: e.g. the engine ending a call
            conn = app.handlers[0].conn
            assert conn is not None
            conn.close(1008, "as asked")
        opcode, payload = await read_frame(reader)
        assert opcode == 0x8 and payload == (1008).to_bytes(2, "big") + b"as asked"
        assert await read_to_eof(reader) == b""  # no close frame back: aborted
        assert loop.time() - start >= 0.3
        await asyncio.wait_for(app.closed.wait(), WAIT)
        writer.close()


@pytest.mark.asyncio
async def test_peer_that_finishes_the_close_is_closed_at_once() -> None:
    async with running() as (_, app, port):  # a 60 s close timeout: must not be what ends it
        reader, writer = await upgraded(port)
        writer.write(client_frame(0x81, b"close me"))
        assert (await read_frame(reader))[0] == 0x8
        writer.write(client_frame(0x88, (1008).to_bytes(2, "big")))
        assert await read_to_eof(reader) == b""
        await asyncio.wait_for(app.closed.wait(), WAIT)
        assert app.closes() == [(1008, "")]
        writer.close()


# ── shutdown ───────────────────────────────────────────────────────────────────

@pytest.mark.asyncio
async def test_shutdown_sends_1001_to_every_websocket_and_ends_every_connection() -> None:
    app = App()
    server = await serve(app.route, "127.0.0.1", 0, None, LONG)
    port = server.sockets[0].getsockname()[1]
    polite = [await connect(f"ws://127.0.0.1:{port}/ws") for _ in range(3)]
    deaf_reader, deaf_writer = await upgraded(port)  # reads the close, never answers it
    http_reader, http_writer = await asyncio.open_connection("127.0.0.1", port)
    http_writer.write(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")
    await asyncio.wait_for(http_reader.readuntil(b"hello"), WAIT)
    assert server.connections == 5

    loop = asyncio.get_running_loop()
    start = loop.time()
    await server.shutdown(timeout=2.0)
    assert loop.time() - start < WAIT
    assert server.connections == 0 and not server.is_serving()
    for ws in polite:
        await asyncio.wait_for(ws.wait_closed(), WAIT)
        assert (ws.close_code, ws.close_reason) == (1001, "server shutting down")
    assert await read_frame(deaf_reader) == (0x8, (1001).to_bytes(2, "big")
                                              + b"server shutting down")
    assert await read_to_eof(deaf_reader) == b""  # aborted once the wait was over
    assert await read_to_eof(http_reader) == b""
    assert sorted(code for code, _ in app.closes()) == [1001, 1001, 1001, 1006]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    deaf_writer.close()
    http_writer.close()


@pytest.mark.asyncio
async def test_shutdown_with_no_connections_returns_at_once() -> None:
    app = App()
    server = await serve(app.route, "127.0.0.1", 0, None, LONG)
    await asyncio.wait_for(server.shutdown(), WAIT)
    assert server.connections == 0


# ── frames over TCP ────────────────────────────────────────────────────────────

@pytest.mark.asyncio
async def test_frames_sent_one_byte_per_segment_arrive_intact() -> None:
    async with running() as (_, app, port):
        reader, writer = await upgraded(port)
        audio = os.urandom(641)
        stream = (client_frame(0x82, audio) + client_frame(0x89, b"ping")
                  + client_frame(0x81, "héllo".encode()))
        for i in range(len(stream)):
            writer.write(stream[i:i + 1])
            await writer.drain()
            await asyncio.sleep(0)  # let the server read this byte on its own
        assert await read_frame(reader) == (0x2, audio)
        assert await read_frame(reader) == (0xA, b"ping")
        assert await read_frame(reader) == (0x1, "héllo".encode())
        assert app.log[1:] == [("binary", audio), ("text", "héllo")]
        writer.close()


class FakeTransport:
    """Enough of asyncio.Transport for HttpWsProtocol, recording what it writes."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("203.0.113.5", 4000) if name == "peername" else default


def read_into(proto: HttpWsProtocol, data: bytes, chunk: int) -> None:
    """What the event loop does for a BufferedProtocol, ``chunk`` bytes per read."""
    at = 0
    while at < len(data):
        buf = proto.get_buffer(-1)
        n = min(chunk, len(buf), len(data) - at)
        buf[:n] = data[at:at + n]
        at += n
        proto.buffer_updated(n)


@pytest.mark.asyncio
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 641, 5000])
async def test_every_read_boundary_is_handled(chunk: int) -> None:
    """No socket: each read is exactly ``chunk`` bytes, so frames and the request head
    are cut everywhere (a server that dropped a partial frame would lose messages)."""
    app = App()
    server = NetServer(app.route, LONG)
    proto = HttpWsProtocol(app.route, server)
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    audio = [os.urandom(n) for n in (1, 125, 126, 641, 1921, 70_000)]
    frames = b"".join(client_frame(0x82, a) if len(a) < 65536 else
                      bytes((0x82, 0xFF)) + len(a).to_bytes(8, "big") + bytes(4) + a
                      for a in audio)  # the last one: 64-bit length, all-zero mask
    read_into(proto, UPGRADE + frames + client_frame(0x81, b"done"), chunk)
    assert transport.written.startswith(b"HTTP/1.1 101")
    assert app.log == [("open", None), *[("binary", a) for a in audio], ("text", "done")]
    assert not transport.closed
    server.close()
