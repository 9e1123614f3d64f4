"""The WebSocket codec (telcoflow.protocol.ws) in both roles, against independent peers.

Frames fed to a codec come from websockets' sans-I/O protocol (the other role)
or from ``raw()`` below, a frame builder written for these tests, so that a
codec is never only checked against itself; what a codec sends is read back by
websockets. Every stream is also fed cut into 1-, 3- and 641-byte reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from telcoflow.protocol.ws import (
    MASKING,
    MIN_READ,
    CloseReceived,
    Event,
    PongReceived,
    Role,
    TextMessage,
    WsClosedError,
    WsCodec,
    _python_mask,
    apply_mask,
)

ROLES = [Role.SERVER, Role.CLIENT]
CHUNKS = [None, 1, 3, 641]  # None: the whole stream in one read
KEY = b"\x37\xfa\x21\x3d"


def other(role: Role) -> Role:
    return Role.CLIENT if role is Role.SERVER else Role.SERVER


def peer_for(role: Role) -> Protocol:
    """websockets at the other end of a codec in ``role``."""
    side = Side.CLIENT if role is Role.SERVER else Side.SERVER
    return Protocol(side, state=State.OPEN, max_size=None)


def raw(first: int, payload: bytes, *, masked: bool, length: int | None = None) -> bytes:
    """A frame byte for byte: ``first`` is FIN|RSV|opcode; ``length`` overrides the size."""
    n = len(payload) if length is None else length
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((first, bit | n))
    elif n < 65536:
        head = bytes((first, bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, bit | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    return head + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


def frame_to(role: Role, first: int, payload: bytes) -> bytes:
    """A well-formed frame as the peer of a codec in ``role`` sends it."""
    return raw(first, payload, masked=role is Role.SERVER)


READS = {"mode": "own"}
SHARED = bytearray(1 << 17)


@pytest.fixture(autouse=True, params=["own", "shared"])
def read_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test twice: reads into the codec's own buffer (the SDK), and reads into a
    buffer shared with other connections, handed over with receive_data (the server)."""
    READS["mode"] = request.param
    yield


def feed(codec: WsCodec, data: bytes, chunk: int | None) -> list[Event]:
    """Deliver ``data`` as reads of ``chunk`` bytes (as large as the buffer allows if None)."""
    events: list[Event] = []
    view = memoryview(data)
    while view:
        if READS["mode"] == "own":
            buf = codec.get_buffer(-1)
            n = min(len(buf), len(view), chunk or len(view))
            buf[:n] = view[:n]
            events += codec.buffer_updated(n)
        else:
            n = min(len(SHARED), len(view), chunk or len(view))
            SHARED[:n] = view[:n]
            events += codec.receive_data(memoryview(SHARED)[:n])
            SHARED[:n] = b"\xee" * n  # the next connection's read
        view = view[n:]
    return events


def peer_frames(peer: Protocol, data: bytes) -> list[tuple[Opcode, bytes]]:
    peer.receive_data(data)
    return [(f.opcode, bytes(f.data)) for f in peer.events_received() if isinstance(f, Frame)]


def close_code_sent(role: Role, data: bytes) -> int | None:
    """The code of the close frame in what a codec in ``role`` wrote, if any."""
    for op, payload in peer_frames(peer_for(role), data):
        if op is Opcode.CLOSE:
            return int.from_bytes(payload[:2], "big")
    return None


# ── data frames ────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("role", ROLES)
def test_messages_arrive_whole_and_in_order_however_the_stream_is_cut(
        role: Role, chunk: int | None) -> None:
    rng = np.random.default_rng(5)
    sizes = [0, 1, 125, 126, 127, 1000, 65535, 65536, 70_000]  # 7-, 16- and 64-bit lengths
    payloads = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in sizes]
    stream = b"".join(frame_to(role, 0x82, p) for p in payloads)
    stream += frame_to(role, 0x81, "héllo ☎".encode()) + frame_to(role, 0x81, b"")
    codec = WsCodec(role, max_message=1 << 17)
    events = feed(codec, stream, chunk)
    assert events == [*payloads, TextMessage("héllo ☎", "héllo ☎".encode()),
                      TextMessage("", b"")]
    assert all(type(e) is bytes for e in events[:len(payloads)])
    assert codec.open and codec.data_to_send() == b""


@pytest.mark.parametrize("role", ROLES)
def test_what_websockets_sends_is_read(role: Role) -> None:
    peer = peer_for(role)
    peer.send_binary(b"\x00" * 300)
    peer.send_text(b"ok")
    peer.send_binary(b"\x01" * 70_000)
    codec = WsCodec(role)
    events = feed(codec, b"".join(peer.data_to_send()), 641)
    assert events == [b"\x00" * 300, TextMessage("ok", b"ok"), b"\x01" * 70_000]


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("role", ROLES)
def test_fragments_with_pings_between_them(role: Role, chunk: int | None) -> None:
    word = "wörld".encode()  # the ö is split across two fragments below
    stream = (frame_to(role, 0x01, b"hel") + frame_to(role, 0x89, b"p1")
              + frame_to(role, 0x00, b"lo " + word[:2]) + frame_to(role, 0x89, b"p2")
              + frame_to(role, 0x80, word[2:])
              + frame_to(role, 0x02, b"\x00a") + frame_to(role, 0x8A, b"unasked")
              + frame_to(role, 0x80, b"b") + frame_to(role, 0x82, b"after"))
    codec = WsCodec(role)
    events = feed(codec, stream, chunk)
    assert events == [TextMessage("hello wörld", b"hello " + word), PongReceived(b"unasked"),
                      b"\x00ab", b"after"]
    assert peer_frames(peer_for(role), codec.data_to_send()) == [
        (Opcode.PONG, b"p1"), (Opcode.PONG, b"p2")]
    assert codec.open


@pytest.mark.parametrize("role", ROLES)
def test_pong_goes_out_before_a_frame_sent_after_it(role: Role) -> None:
    codec = WsCodec(role)
    feed(codec, frame_to(role, 0x89, b"ping"), None)
    out = codec.send_binary(b"\x00data")  # the pong is still due: it goes first
    assert peer_frames(peer_for(role), out) == [(Opcode.PONG, b"ping"),
                                                (Opcode.BINARY, b"\x00data")]
    assert codec.data_to_send() == b""


@pytest.mark.parametrize("role", ROLES)
def test_needs_attention_says_when_a_read_left_something_to_do(role: Role) -> None:
    codec = WsCodec(role)
    feed(codec, frame_to(role, 0x82, b"\x00audio"), None)
    assert not codec.needs_attention  # the usual read: only its messages
    feed(codec, frame_to(role, 0x89, b"p"), None)
    assert codec.needs_attention  # a pong is due
    assert codec.data_to_send() and not codec.needs_attention
    feed(codec, frame_to(role, 0x88, b"\x03\xe8"), None)
    assert codec.needs_attention  # the close reply is due, and the codec is closing
    codec.data_to_send()
    assert codec.needs_attention  # still: no longer open


# ── violations ─────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("role", ROLES)
def test_oversized_message_closes_with_1009(role: Role, chunk: int | None) -> None:
    codec = WsCodec(role, max_message=1000)
    stream = frame_to(role, 0x82, b"\x00" * 1000) + frame_to(role, 0x82, b"\x00" * 1001)
    events = feed(codec, stream, chunk)
    assert events == [b"\x00" * 1000]
    assert not codec.open and close_code_sent(role, codec.data_to_send()) == 1009


@pytest.mark.parametrize("role", ROLES)
def test_oversized_message_is_refused_from_its_header(role: Role) -> None:
    codec = WsCodec(role, max_message=1000)
    header_only = raw(0x82, b"", masked=role is Role.SERVER, length=1 << 40)[:10]
    assert feed(codec, header_only, None) == []
    assert close_code_sent(role, codec.data_to_send()) == 1009


@pytest.mark.parametrize("role", ROLES)
def test_oversized_fragmented_message_closes_with_1009(role: Role) -> None:
    codec = WsCodec(role, max_message=1000)
    stream = frame_to(role, 0x02, b"\x00" * 600) + frame_to(role, 0x80, b"\x00" * 401)
    assert feed(codec, stream, 3) == []
    assert close_code_sent(role, codec.data_to_send()) == 1009


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("role", ROLES)
def test_masking_wrong_for_the_role_is_a_protocol_error(role: Role, chunk: int | None) -> None:
    codec = WsCodec(role)
    wrong = raw(0x82, b"\x00abc", masked=role is Role.CLIENT)
    events = feed(codec, frame_to(role, 0x82, b"\x00ok") + wrong, chunk)
    assert events == [b"\x00ok"]
    assert not codec.open and close_code_sent(role, codec.data_to_send()) == 1002
    # websockets' rule: a server closes TCP at once on failure, a client waits for the server
    assert codec.transport_close_due is (role is Role.SERVER)


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("role", ROLES)
def test_invalid_utf8_text_closes_with_1007(role: Role, chunk: int | None) -> None:
    codec = WsCodec(role)
    stream = frame_to(role, 0x81, b"fine") + frame_to(role, 0x81, b"bad \xff")
    stream += frame_to(role, 0x82, b"\x00never delivered")
    events = feed(codec, stream, chunk)
    assert events == [TextMessage("fine", b"fine")]
    assert close_code_sent(role, codec.data_to_send()) == 1007


@pytest.mark.parametrize("role", ROLES)
def test_invalid_utf8_in_a_fragment_fails_before_the_message_ends(role: Role) -> None:
    codec = WsCodec(role)
    events = feed(codec, frame_to(role, 0x01, b"ok") + frame_to(role, 0x00, b"\xc3\x28"), 1)
    assert events == [] and not codec.open
    assert close_code_sent(role, codec.data_to_send()) == 1007


@pytest.mark.parametrize("first", [0xC2, 0xA2, 0x92, 0x83, 0x87, 0x8B, 0x8F],
                         ids=["rsv1", "rsv2", "rsv3", "op3", "op7", "opB", "opF"])
@pytest.mark.parametrize("role", ROLES)
def test_reserved_bits_and_unknown_opcodes_are_protocol_errors(role: Role, first: int) -> None:
    codec = WsCodec(role)
    events = feed(codec, frame_to(role, first, b"xy") + frame_to(role, 0x82, b"late"), 1)
    assert events == []
    assert close_code_sent(role, codec.data_to_send()) == 1002


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("stream", [
    pytest.param(lambda role: frame_to(role, 0x89, b"x" * 126), id="control frame too long"),
    pytest.param(lambda role: frame_to(role, 0x09, b"x"), id="fragmented ping"),
    pytest.param(lambda role: frame_to(role, 0x80, b"x"), id="continuation out of nowhere"),
    pytest.param(lambda role: frame_to(role, 0x01, b"a") + frame_to(role, 0x82, b"b"),
                 id="new message inside a fragmented one"),
    pytest.param(lambda role: frame_to(role, 0x88, b"\x03\xe8"[:1]), id="close payload of 1"),
    pytest.param(lambda role: frame_to(role, 0x88, (999).to_bytes(2, "big")),
                 id="close code 999"),
])
def test_other_protocol_errors(role: Role, stream: object) -> None:
    codec = WsCodec(role)
    assert callable(stream)
    assert feed(codec, stream(role), 3) == []
    assert close_code_sent(role, codec.data_to_send()) == 1002


@pytest.mark.parametrize("role", ROLES)
def test_http_instead_of_frames_is_a_protocol_error(role: Role) -> None:
    codec = WsCodec(role)
    assert feed(codec, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1) == []
    assert not codec.open and close_code_sent(role, codec.data_to_send()) == 1002


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("role", ROLES)
def test_junk_never_raises_and_ends_the_connection(role: Role, seed: int) -> None:
    junk = np.random.default_rng(seed).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    codec = WsCodec(role, max_message=1 << 16)
    feed(codec, junk, 7)
    codec.receive_eof()
    assert not codec.open and codec.state is State.CLOSED
    assert close_code_sent(role, codec.data_to_send()) in (None, 1002, 1007, 1009)
    with pytest.raises(WsClosedError):
        codec.send_binary(b"x")


# ── closing ────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("role", ROLES)
def test_close_handshake_started_here(role: Role, chunk: int | None) -> None:
    codec, peer = WsCodec(role), WsCodec(other(role))
    out = codec.send_close(1000, "bye")
    assert not codec.open and codec.close_expected
    assert feed(peer, out, chunk) == [CloseReceived(1000, "bye")]
    # the peer may still have sent data before it saw the close: that is delivered
    reply = frame_to(role, 0x82, b"\x00late") + peer.data_to_send()
    assert feed(codec, reply, chunk) == [b"\x00late", CloseReceived(1000, "bye")]
    assert codec.close_code == 1000 and codec.close_reason == "bye"
    assert codec.data_to_send() == b""  # no second close frame
    if role is Role.SERVER:
        assert codec.transport_close_due  # the server closes TCP once the handshake is done
    else:
        assert not codec.transport_close_due  # the client waits for the server's TCP close
        codec.receive_eof()
        assert codec.transport_close_due and codec.state is State.CLOSED


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("role", ROLES)
def test_close_handshake_started_by_the_peer(role: Role, chunk: int | None) -> None:
    codec = WsCodec(role)
    stream = (frame_to(role, 0x82, b"\x00x") + frame_to(role, 0x88, b"\x03\xe9going away")
              + frame_to(role, 0x82, b"\x00after the close"))
    events = feed(codec, stream, chunk)
    assert events == [b"\x00x", CloseReceived(1001, "going away")]
    assert close_code_sent(role, codec.data_to_send()) == 1001  # echoed
    assert not codec.open and codec.close_code == 1001
    with pytest.raises(WsClosedError):
        codec.send_text("too late")
    assert codec.send_close(1000) == b""  # already closing: nothing more to send


@pytest.mark.parametrize("role", ROLES)
def test_empty_close_frame_means_1005(role: Role) -> None:
    codec = WsCodec(role)
    assert feed(codec, frame_to(role, 0x88, b""), None) == [CloseReceived(1005, "")]


@pytest.mark.parametrize("role", ROLES)
def test_stream_ending_mid_frame_is_abnormal(role: Role) -> None:
    codec = WsCodec(role)
    feed(codec, frame_to(role, 0x82, b"\x00" * 50)[:20], None)
    assert codec.close_code is None
    codec.receive_eof()
    assert not codec.open and codec.close_code == 1006
    assert codec.data_to_send() == b""  # nothing to say to a peer that is gone


@pytest.mark.parametrize("role", ROLES)
def test_close_reason_is_cut_to_fit_and_bad_codes_are_refused(role: Role) -> None:
    codec = WsCodec(role)
    with pytest.raises(ValueError):
        codec.send_close(1006)
    assert codec.open
    out = codec.send_close(4000, "é" * 100)  # 200 bytes of UTF-8: too long for a close frame
    ((op, payload),) = peer_frames(peer_for(role), out)
    assert op is Opcode.CLOSE and int.from_bytes(payload[:2], "big") == 4000
    assert payload[2:].decode() == "é" * 61  # 122 bytes: whole characters only


# ── sending ────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("role", ROLES)
def test_round_trip_between_the_two_roles(role: Role) -> None:
    sender, receiver = WsCodec(other(role)), WsCodec(role, max_message=1 << 17)
    sizes = [0, 1, 125, 126, 127, 255, 256, 257, 321, 641, 1921, 65535, 65536, 70_000]
    payloads = [os.urandom(n) for n in sizes]
    out = b"".join(sender.send_binary(p) for p in payloads)
    out += sender.send_text("tëxt") + sender.send_binary_frames([b"a", b"bc", b""])
    out += sender.send_ping(b"hi")
    expected: list[Event] = [*payloads, TextMessage("tëxt", "tëxt".encode()), b"a", b"bc", b""]
    assert feed(receiver, out, 641) == expected
    assert feed(sender, receiver.data_to_send(), 1) == [PongReceived(b"hi")]


@pytest.mark.parametrize("role", ROLES)
def test_what_a_codec_sends_websockets_reads(role: Role) -> None:
    """Independent check of our frames: masked from a client, plain from a server."""
    codec = WsCodec(role)
    samples = np.arange(160, dtype=np.int16)
    out = (codec.send_binary(b"\x01" * 70_000) + codec.send_text("hi")
           + codec.send_binary(samples.data))  # a view of 2-byte items: counted in bytes
    got = peer_frames(peer_for(role), out)  # websockets, as the other role, refuses bad masking
    assert got == [(Opcode.BINARY, b"\x01" * 70_000), (Opcode.TEXT, b"hi"),
                   (Opcode.BINARY, samples.tobytes())]


def test_client_frames_have_fresh_masking_keys() -> None:
    codec = WsCodec(Role.CLIENT)
    keys = {codec.send_binary(b"\x00" * 8)[2:6] for _ in range(600)}  # > 2 refills of the pool
    assert len(keys) > 590  # 600 random 32-bit keys: a repeat is very unlikely


@pytest.mark.parametrize("mask", [apply_mask, _python_mask])
@pytest.mark.parametrize("n", [*range(0, 300), 321, 641, 1281, 1920, 1921, 70_000])
def test_apply_mask_is_xor_with_the_repeated_key(mask: Callable[..., bytes], n: int) -> None:
    data = os.urandom(n)
    expected = bytes(b ^ KEY[i % 4] for i, b in enumerate(data))
    assert mask(data, KEY) == expected
    assert mask(memoryview(bytearray(data)), bytearray(KEY)) == expected
    assert mask(expected, KEY) == data


def test_masking_is_the_c_function() -> None:
    """The hot path masks with websockets' C function (10 % of a gateway's CPU without it);
    a websockets release that moves it must fail here, not slow every call down."""
    assert MASKING == "websockets C"


def test_receive_buffer_grows_for_a_big_frame_then_shrinks() -> None:
    codec = WsCodec(Role.CLIENT, recv_buffer=8192)
    assert feed(codec, frame_to(Role.CLIENT, 0x82, b"\x00" * 100_000), 1000) == [
        b"\x00" * 100_000]
    assert MIN_READ <= len(codec.get_buffer()) <= 8192
