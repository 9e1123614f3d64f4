"""The SDK's WebSocket client against websockets' server protocol, over a fake transport.

The client reads frames with the shared codec (telcoflow.protocol.ws, tested
on its own in tests/protocol/test_ws.py) straight out of its receive buffer;
these check the SDK end as a user relies on it: every message arrives whole
and in order however TCP cuts the byte stream (the handshake response too),
control frames and fragmented messages keep working, the client's own frames
are valid (masked) RFC 6455 frames, protocol violations close the link with
the right code, keepalive pings are answered, and the same over a real socket.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from telcoflow.sdk.ring import ByteRing
from telcoflow.sdk.wsconn import HandshakeRejected, WsConnection, open_ws


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.closed: list[tuple[int | None, str]] = []

    def ws_text(self, data: bytes) -> None:
        self.messages.append(("text", data))

    def ws_binary(self, data: bytes) -> None:
        self.messages.append(("binary", data))

    def ws_closed(self, code: int | None, reason: str) -> None:
        self.closed.append((code, reason))


class Wire:
    """A transport that hands what the client writes to a websockets server protocol."""

    def __init__(self) -> None:
        self.server = ServerProtocol()
        self.frames: list[Frame] = []
        self.request: Request | None = None
        self.closed = False

    def write(self, data: bytes) -> None:
        assert isinstance(data, bytes)
        self.server.receive_data(data)
        for event in self.server.events_received():
            if isinstance(event, Request):
                self.request = event
            elif isinstance(event, Frame):
                self.frames.append(event)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.server.receive_eof()

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def server_bytes(self) -> bytes:
        return b"".join(self.server.data_to_send())


def feed(conn: WsConnection, data: bytes, chunk: int) -> None:
    """Deliver ``data`` as a transport would, at most ``chunk`` bytes per read."""
    at = 0
    while at < len(data):
        buf = conn.get_buffer(-1)
        n = min(chunk, len(buf), len(data) - at)
        buf[:n] = data[at:at + n]
        at += n
        conn.buffer_updated(n)


def connect(max_size: int = 2 ** 20) -> tuple[WsConnection, Wire, Recorder, bytes]:
    """A client whose request reached the server; returns the server's 101 response bytes."""
    recorder = Recorder()
    proto = ClientProtocol(parse_uri("ws://gateway.test/v1/voice"), max_size=max_size)
    conn = WsConnection(proto, recorder, {"Authorization": "Bearer t"}, None, None, max_size)
    wire = Wire()
    conn.connection_made(wire)  # type: ignore[arg-type]
    assert wire.request is not None and wire.request.headers["Authorization"] == "Bearer t"
    wire.server.send_response(wire.server.accept(wire.request))
    return conn, wire, recorder, wire.server_bytes()


@pytest.mark.asyncio
@pytest.mark.parametrize("chunk", [1, 3, 641, 4096, 1 << 20])
async def test_messages_arrive_whole_and_in_order_however_the_stream_is_cut(chunk: int) -> None:
    conn, wire, recorder, response = connect()
    server = wire.server
    audio = bytes([0]) + bytes(range(256)) * 5
    big = np.random.default_rng(7).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    medium = bytes(1000)
    server.send_binary(audio)
    server.send_text(b'{"type":"buffer_request"}')
    server.send_ping(b"hi")
    server.send_binary(big)       # 64-bit length, larger than the receive buffer
    server.send_binary(medium)    # 16-bit length
    server.send_text(b"")
    feed(conn, response + wire.server_bytes(), chunk)  # frames right behind the 101
    assert conn._handshake.done() and conn.is_open
    assert recorder.messages == [("binary", audio), ("text", b'{"type":"buffer_request"}'),
                                 ("binary", big), ("binary", medium), ("text", b"")]
    assert all(type(data) is bytes for _, data in recorder.messages)
    assert [(f.opcode, f.data) for f in wire.frames] == [(Opcode.PONG, b"hi")]


@pytest.mark.asyncio
async def test_fragmented_message_is_delivered_once_complete() -> None:
    conn, wire, recorder, response = connect()
    server = wire.server
    server.send_text(b"hel", fin=False)
    server.send_ping(b"p")  # control frames may come between fragments
    server.send_continuation(b"lo ", fin=False)
    server.send_continuation(b"world", fin=True)
    server.send_binary(b"\x00ab")
    feed(conn, response + wire.server_bytes(), 5)
    assert recorder.messages == [("text", b"hello world"), ("binary", b"\x00ab")]
    assert [f.opcode for f in wire.frames] == [Opcode.PONG]


@pytest.mark.asyncio
async def test_client_frames_are_masked_and_valid() -> None:
    conn, wire, _, response = connect()
    feed(conn, response, 1 << 16)
    payloads = [bytes([i % 256]) * n for i, n in enumerate((0, 1, 125, 126, 65535, 65536))]
    for payload in payloads:
        conn.send_binary(payload)
    conn.send_text("héllo")
    conn.send_binary_frames([b"a", b"bc", b"def"])
    got = [(f.opcode, f.data) for f in wire.frames]  # the server refuses unmasked frames
    assert got == ([(Opcode.BINARY, p) for p in payloads] + [(Opcode.TEXT, "héllo".encode())]
                   + [(Opcode.BINARY, p) for p in (b"a", b"bc", b"def")])


@pytest.mark.asyncio
async def test_every_client_frame_has_a_fresh_masking_key() -> None:
    conn, wire, _, response = connect()
    feed(conn, response, 1 << 16)
    sent: list[bytes] = []
    conn._transport = type("T", (), {"write": lambda self, data: sent.append(data)})()
    for _ in range(600):  # more than one refill of the key pool
        conn.send_binary(b"\x00" * 8)
    keys = [frame[2:6] for frame in sent]
    assert len(set(keys)) > 590  # 600 random 32-bit keys: a repeat is very unlikely


@pytest.mark.asyncio
async def test_oversized_message_closes_with_1009() -> None:
    conn, wire, recorder, response = connect(max_size=1000)
    wire.server.send_binary(b"\x00" * 500)
    wire.server.send_binary(b"\x00" * 1001)
    feed(conn, response + wire.server_bytes(), 1 << 16)
    assert recorder.messages == [("binary", b"\x00" * 500)]
    assert not conn.is_open
    assert [(f.opcode, Close.parse(f.data).code) for f in wire.frames] == [
        (Opcode.CLOSE, CloseCode.MESSAGE_TOO_BIG)]


@pytest.mark.asyncio
async def test_masked_frame_from_the_server_is_a_protocol_error() -> None:
    conn, wire, recorder, response = connect()
    masked = Frame(Opcode.BINARY, b"\x00abc").serialize(mask=True)
    feed(conn, response + masked, 1 << 16)
    assert recorder.messages == []
    assert [(f.opcode, Close.parse(f.data).code) for f in wire.frames] == [
        (Opcode.CLOSE, CloseCode.PROTOCOL_ERROR)]


@pytest.mark.asyncio
async def test_invalid_utf8_text_from_the_server_closes_with_1007() -> None:
    conn, wire, recorder, response = connect()
    wire.server.send_text(b"ok")
    wire.server.send_text(b"\xff\xfe")
    feed(conn, response + wire.server_bytes(), 3)
    assert recorder.messages == [("text", b"ok")]
    assert not conn.is_open
    assert [(f.opcode, Close.parse(f.data).code) for f in wire.frames] == [
        (Opcode.CLOSE, CloseCode.INVALID_DATA)]


@pytest.mark.asyncio
async def test_keepalive_ping_and_its_pong() -> None:
    recorder = Recorder()
    proto = ClientProtocol(parse_uri("ws://gateway.test/v1/voice"))
    conn = WsConnection(proto, recorder, {}, 20.0, 20.0)
    wire = Wire()
    conn.connection_made(wire)  # type: ignore[arg-type]
    assert wire.request is not None
    wire.server.send_response(wire.server.accept(wire.request))
    feed(conn, wire.server_bytes(), 1 << 16)
    assert set(conn._timers) == {"ping"}  # armed at open
    conn._ping()  # what the timer does
    assert [f.opcode for f in wire.frames] == [Opcode.PING] and "pong" in conn._timers
    ping_timer = conn._timers["ping"]
    feed(conn, wire.server_bytes(), 1)  # websockets answered the ping
    assert "pong" not in conn._timers  # pong seen: no drop ...
    assert conn._timers["ping"] is not ping_timer  # ... and the next ping scheduled
    assert conn.is_open and not wire.closed
    conn.connection_lost(None)
    assert conn._timers == {}


@pytest.mark.asyncio
async def test_server_close_is_answered_and_reported() -> None:
    conn, wire, recorder, response = connect()
    wire.server.send_binary(b"\x00x")
    wire.server.send_close(CloseCode.GOING_AWAY, "bye")
    late = Frame(Opcode.BINARY, b"\x00late").serialize(mask=False)  # after the close: dropped
    feed(conn, response + wire.server_bytes() + late, 3)
    assert recorder.messages == [("binary", b"\x00x")]
    assert [(f.opcode, Close.parse(f.data).code) for f in wire.frames] == [
        (Opcode.CLOSE, CloseCode.GOING_AWAY)]
    with pytest.raises(ConnectionError):
        conn.send_binary(b"\x00")
    conn.eof_received()
    conn.connection_lost(None)
    assert recorder.closed == [(CloseCode.GOING_AWAY, "bye")]


@pytest.mark.asyncio
async def test_refused_upgrade_reports_status_and_body() -> None:
    conn, wire, recorder, _ = connect()
    body = b"invalid token"
    refusal = (b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    feed(conn, refusal, 10)
    with pytest.raises(HandshakeRejected) as info:
        await conn._handshake
    assert info.value.status == 401 and str(info.value) == "invalid token"


@pytest.mark.asyncio
async def test_open_ws_against_a_real_socket_server() -> None:
    """The same client over asyncio's TCP transport (BufferedProtocol reads)."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proto = ServerProtocol()
        while True:
            data = await reader.read(65536)
            if not data:
                break
            proto.receive_data(data)
            for event in proto.events_received():
                if isinstance(event, Request):
                    proto.send_response(proto.accept(event))
                elif isinstance(event, Frame) and event.opcode is Opcode.BINARY:
                    proto.send_binary(bytes(event.data) * 2)  # a reply bigger than the request
                elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                    pass
            for out in proto.data_to_send():
                if out:
                    writer.write(out)
                else:
                    writer.close()
                    return

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    recorder = Recorder()
    got = asyncio.get_running_loop().create_future()

    def on_binary(data: bytes) -> None:
        recorder.messages.append(("binary", data))
        if len(recorder.messages) == 3 and not got.done():
            got.set_result(None)

    recorder.ws_binary = on_binary  # type: ignore[method-assign]
    async with server:
        ws = await open_ws(f"ws://127.0.0.1:{port}/", {}, recorder)
        ws.send_binary_frames([b"\x00" + bytes(639), b"\x01" * 50_000])
        ws.send_binary(b"\x02")
        await asyncio.wait_for(got, 10)
        await ws.close()
    assert recorder.messages == [("binary", (b"\x00" + bytes(639)) * 2),
                                 ("binary", b"\x01" * 100_000), ("binary", b"\x02\x02")]
    assert recorder.closed == [(1000, "")]


def test_ring_counts_bytes_of_a_sample_array() -> None:
    ring = ByteRing(64)
    samples = np.arange(8, dtype=np.int16)
    ring.write(samples.data)  # 8 samples are 16 bytes
    assert len(ring) == 16
    assert ring.take(16, b"\x00") == b"\x00" + samples.tobytes()
