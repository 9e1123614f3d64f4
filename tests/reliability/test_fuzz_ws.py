"""The WebSocket frame codec (protocol/ws.py), both roles, fed arbitrary byte streams.

Each input goes through a fresh codec three times: whole (``receive_data``),
in random chunks (``receive_data``) and byte by byte (``get_buffer`` +
``buffer_updated``, the SDK's path; up to where the codec closes, after which
websockets discards what comes), then the end of the stream. Properties:

- nothing ever raises (a refused frame fails the connection with a close
  code, it does not throw);
- the three ways give the same messages, the same bytes to send and the same
  final state (TCP does not keep write boundaries, the codec must not care);
- every event is well-formed (text is its UTF-8 decoding, close codes are
  ones the RFC allows, no message over ``max_message``), and
  ``needs_attention`` says exactly whether bytes are due or the codec closed.

Inputs: streams of 1-4 frames with every opcode (reserved ones too), RSV
bits, right and wrong masking, minimal and non-minimal and lying lengths,
valid and invalid UTF-8, close frames with every kind of code; then their
byte-level mutants. Round trips: what one role sends, the other receives.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from telcoflow.protocol.ws import (
    CloseReceived,
    Event,
    PongReceived,
    Role,
    TextMessage,
    WsCodec,
    _python_mask,
)

from .fuzzing import (
    DERIVED,
    INPUTS,
    MAX_CPU_PER_INPUT,
    OUTCOMES,
    Mutator,
    UndocumentedError,
    _show,
    budget,
    gc_cpu,
    round_trip_budget,
    seeds,
)

# ── building streams ────────────────────────────────────────────────────────

OPCODES = (0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xB)  # 3 and 0xB are reserved
CLOSE_CODES = (1000, 1001, 1002, 1005, 1006, 1007, 1011, 1015, 999, 1004, 1016, 2999, 3000,
               4999, 5000, 0, 65535)


@dataclass(frozen=True)
class FrameSpec:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes
    length: str  # "min", "16", "64", or "lie" (the declared length is off)
    lie: int
    key: bytes

    def encode(self, masked: bool) -> bytes:
        n = len(self.payload)
        declared = max(0, n + self.lie) if self.length == "lie" else n
        b0 = (0x80 if self.fin else 0) | self.rsv << 4 | self.opcode
        mask_bit = 0x80 if masked else 0
        if self.length == "64" or declared >= 65536:
            head = struct.pack("!BBQ", b0, mask_bit | 127, declared)
        elif self.length == "16" or declared >= 126:
            head = struct.pack("!BBH", b0, mask_bit | 126, declared)
        else:
            head = bytes((b0, mask_bit | declared))
        if not masked:
            return head + self.payload
        return head + self.key + _python_mask(self.payload, self.key)


text_payloads = st.text(max_size=12).map(lambda t: t.encode())
bad_utf8 = st.sampled_from([b"\xff", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b"ok\xf4\x90\x80\x80",
                            b"\xe2\x82", b"\xc0\xaf"])
close_payloads = st.one_of(
    st.builds(lambda code, reason: struct.pack("!H", code) + reason,
              st.sampled_from(CLOSE_CODES), st.one_of(text_payloads, bad_utf8)),
    st.sampled_from([b"", b"\x03", b"\x03\xe8" + b"r" * 124]))


@st.composite
def frame_specs(draw: st.DrawFn) -> FrameSpec:
    opcode = draw(st.sampled_from(OPCODES))
    if opcode == 0x8:
        payload = draw(close_payloads)
    elif opcode in (0x1, 0x0):
        payload = draw(st.one_of(text_payloads, bad_utf8))
    else:
        payload = draw(st.binary(max_size=20))
    return FrameSpec(
        fin=draw(st.booleans()) if opcode in (0x0, 0x1, 0x2) else draw(st.sampled_from(
            [True, True, True, False])),
        rsv=draw(st.sampled_from([0, 0, 0, 0, 1, 4, 7])),
        opcode=opcode, payload=payload,
        length=draw(st.sampled_from(["min", "min", "min", "16", "64", "lie"])),
        lie=draw(st.sampled_from([-1, 1, 5, 200, 70_000])),
        key=draw(st.sampled_from([b"\x00\x00\x00\x00", b"\x37\xfa\x21\x3d", b"\xff\xff\xff\xff"])))


@st.composite
def streams(draw: st.DrawFn) -> list[FrameSpec]:
    specs = draw(st.lists(frame_specs(), min_size=1, max_size=4))
    # whole messages most of the time: a fragment is fine, but a stream of them is junk
    if draw(st.booleans()):
        specs = [FrameSpec(True, 0, s.opcode if s.opcode else 0x2, s.payload, s.length, s.lie,
                           s.key) for s in specs]
    return specs


# ── feeding ─────────────────────────────────────────────────────────────────

MAX_MESSAGE = (64, 1 << 20)


def _frames_out(data: bytes) -> list[tuple[int, bytes]]:
    """The frames a codec wrote, unmasked (a client masks with random keys)."""
    out, pos = [], 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        n, pos = b1 & 0x7F, pos + 2
        if n == 126:
            n, pos = int.from_bytes(data[pos:pos + 2], "big"), pos + 2
        elif n == 127:
            n, pos = int.from_bytes(data[pos:pos + 8], "big"), pos + 8
        if b1 & 0x80:
            key, pos = data[pos:pos + 4], pos + 4
            out.append((b0, _python_mask(data[pos:pos + n], key)))
        else:
            out.append((b0, data[pos:pos + n]))
        pos += n
    return out


def _check_events(events: list[Event], limit: int, name: str, data: bytes) -> None:
    for event in events:
        if type(event) is bytes:
            ok = len(event) <= limit
        elif isinstance(event, TextMessage):
            ok = event.data.decode() == event.text and len(event.data) <= limit
        elif isinstance(event, PongReceived):
            ok = len(event.data) <= 125
        elif isinstance(event, CloseReceived):
            ok = (event.code == 1005 or 1000 <= event.code <= 4999) and isinstance(
                event.reason, str)
        else:
            ok = False
        if not ok:
            raise UndocumentedError(f"{name}: malformed event {event!r}\ninput: {_show(data)}")


def run(role: Role, data: bytes, cuts: list[int] | None, limit: int) -> tuple[Any, ...]:
    """Feed ``data`` (whole, cut at ``cuts``, or byte by byte when ``cuts`` is None), then
    the end of the stream: everything observable, to compare between the three ways."""
    codec = WsCodec(role, max_message=limit, recv_buffer=64)
    events: list[Event] = []
    sent = bytearray()

    def collect(got: list[Event]) -> None:
        attention = codec.needs_attention
        out = codec.data_to_send()
        if attention != (bool(out) or not codec.open):
            raise UndocumentedError(f"needs_attention={attention} with {len(out)} bytes due "
                                    f"and open={codec.open}\ninput: {_show(data)}")
        events.extend(got)
        sent.extend(out)

    if cuts is None:  # the hot loop: needs_attention checked both ways by the other two
        for byte in data:
            codec.get_buffer(-1)[0] = byte
            got = codec.buffer_updated(1)
            if got:
                events.extend(got)
            if codec.needs_attention:
                sent.extend(codec.data_to_send())
                if not codec.open:
                    # closing or failed: websockets discards what follows (the other two
                    # ways feed it and must agree); byte by byte it would only cost time
                    break
    else:
        start = 0
        for cut in [*cuts, len(data)]:
            collect(codec.receive_data(memoryview(data)[start:cut] if cut % 2 else
                                       data[start:cut]))
            start = cut
    state = (codec.open, codec.state, codec.close_code, codec.close_reason,
             codec.transport_close_due)
    codec.receive_eof()
    collect([])
    return (events, _frames_out(bytes(sent)), state, codec.open, codec.state, codec.close_code,
            codec.transport_close_due)


def feed(role: Role, data: bytes, mutator: Mutator, limit: int) -> None:
    name = f"ws.WsCodec({role.name})"
    INPUTS["ws.WsCodec"] += 1  # the parser's count; each role's, for the record
    INPUTS[name] += 1
    DERIVED[name] = "one role of ws.WsCodec"
    rng = mutator.rng
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6)))
                  ) if len(data) > 1 else []
    results = []
    started, collected = time.thread_time(), gc_cpu()
    for how in (None, [], cuts):
        try:
            results.append(run(role, data, how, limit))
        except UndocumentedError:
            raise
        except Exception as exc:
            way = "byte by byte" if how is None else f"cut at {how}"
            raise UndocumentedError(f"{name} fed {way} raised {type(exc).__name__}: {exc}\n"
                                    f"input: {_show(data)}") from exc
    spent = time.thread_time() - started - (gc_cpu() - collected)
    if spent > 3 * MAX_CPU_PER_INPUT:
        raise UndocumentedError(f"{name}: {spent:.3f} s of CPU for one input, fed three "
                                f"ways\ninput: {_show(data)}")
    bytewise, whole, chunked = results
    _check_events(whole[0], limit, name, data)
    if whole != bytewise or whole != chunked:
        other, way = (bytewise, "byte by byte") if whole != bytewise else (
            chunked, f"cut at {cuts}")
        raise UndocumentedError(f"{name}: whole and {way} differ\nwhole: {whole}\n"
                                f"other: {other}\ninput: {_show(data)}")
    # "accepted": still open after the stream (every frame in it was valid)
    outcome = "accepted" if whole[2][0] else "refused"
    OUTCOMES[name, outcome] += 1
    OUTCOMES["ws.WsCodec", outcome] += 1


PER_EXAMPLE = 100
MAX_STREAM = 200  # bytes: longer mutants cost time and find nothing more


@budget(PER_EXAMPLE)
@given(specs=streams(), seed=seeds, big=st.booleans(), server=st.booleans())
@example(specs=[FrameSpec(True, 0, 0x8, b"\x03\xe8\xff", "min", 0, b"\0\0\0\0")], seed=0,
         big=True, server=True)
def test_streams_in_both_roles(specs: list[FrameSpec], seed: int, big: bool,
                               server: bool) -> None:
    """One role per example (half the examples each): a server gets masked frames, a
    client unmasked ones (their mutants break that too)."""
    mutator = Mutator(seed)
    limit = MAX_MESSAGE[big]
    role = Role.SERVER if server else Role.CLIENT
    base = b"".join(spec.encode(server) for spec in specs)
    feed(role, base, mutator, limit)
    for _ in range(PER_EXAMPLE - 1):
        feed(role, mutator.mutate_bytes(base)[:MAX_STREAM], mutator, limit)


# ── round trips ─────────────────────────────────────────────────────────────

messages = st.lists(st.one_of(
    st.text(max_size=200).map(lambda t: ("text", t)),
    st.binary(max_size=300).map(lambda b: ("binary", b)),
    st.lists(st.binary(max_size=50), max_size=4).map(lambda bs: ("frames", bs)),
    st.binary(max_size=125).map(lambda b: ("ping", b)),
    st.sampled_from([70_000, 65_535, 65_536, 126, 125]).map(lambda n: ("binary", bytes(n)))),
    max_size=6)


def _send(codec: WsCodec, kind: str, value: Any) -> tuple[bytes, list[Event]]:
    """The bytes for one message, and what the peer must receive for it."""
    if kind == "text":
        return codec.send_text(value), [TextMessage(value, value.encode())]
    if kind == "binary":
        return codec.send_binary(value), [value]
    if kind == "frames":
        return codec.send_binary_frames(value), list(value)
    return codec.send_ping(value), [PongReceived(value)]


@round_trip_budget()
@given(msgs=messages, from_client=st.booleans(),
       code=st.sampled_from([1000, 1001, 1008, 1011, 3000, 4999]), reason=st.text(max_size=80))
def test_what_one_role_sends_the_other_receives(msgs: list[tuple[str, Any]], from_client: bool,
                                                code: int, reason: str) -> None:
    client, server = WsCodec(Role.CLIENT), WsCodec(Role.SERVER)
    sender, receiver = (client, server) if from_client else (server, client)
    for kind, value in msgs:
        data, expected = _send(sender, kind, value)
        got = receiver.receive_data(data)
        if kind == "ping":  # the receiver answers the ping; the sender gets the pong
            got = sender.receive_data(receiver.data_to_send())
        assert got == expected, (kind, value)
    INPUTS["ws round trip"] += 1
    DERIVED["ws round trip"] = "round trips"
    # the closing handshake: the receiver reports the code and the reason (cut to 123 bytes
    # at a character boundary) and answers; the sender gets the echo
    got = receiver.receive_data(sender.send_close(code, reason))
    trimmed = reason.encode()[:123].decode(errors="ignore")
    assert got == [CloseReceived(code, trimmed)] and not receiver.open
    echo = sender.receive_data(receiver.data_to_send())
    assert echo == [CloseReceived(code, trimmed)]
    assert server.transport_close_due  # a server closes TCP once the handshake is over
