"""The QUIC audio plane (protocol/quic.py): envelope streams and message bodies.

Each stream goes through a fresh :class:`EnvelopeReader` three ways: whole, in
random chunks and byte by byte, then the end of the stream. Properties:

- it returns envelopes or raises :class:`QuicFrameError` (a
  :class:`~telcoflow.protocol.errors.ProtocolError` with a code and a
  sentence), nothing else, within the per-input CPU bound;
- the three ways raise the same error (or none); byte by byte gives every
  envelope before the fault, the other two a prefix of those (an error drops
  what its own ``feed`` had completed), and with no error all three agree;
- the envelopes re-encode to exactly the bytes they were read from;
- :func:`decode` of every envelope returns one of the plane's messages or
  raises :class:`QuicFrameError`.

Inputs: streams of 1-4 envelopes, each a valid message of any type (fields
drawn from the schema itself, enums with values it does not name), a known
or unknown method id around junk, a lying length, or raw junk; then their
byte-level mutants. Bodies are also fuzzed on their own, under their own
method id or another one. Round trips: every message, encoded, read back
equal.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from hypothesis import example, given
from hypothesis import strategies as st

from telcoflow.protocol.quic import (
    MAX_PAYLOAD,
    MESSAGE_TYPES,
    METHOD_IDS,
    AudioFrame,
    Envelope,
    EnvelopeReader,
    LossReport,
    Message,
    MethodId,
    QuicFrameError,
    decode,
    encode,
    encode_raw,
)

from .fuzzing import (
    DERIVED,
    INPUTS,
    Mutator,
    UndocumentedError,
    _show,
    budget,
    expect,
    round_trip_budget,
    seeds,
)

MESSAGE_CLASSES = tuple(METHOD_IDS)
UNKNOWN_IDS = (0, 1, 0xFFFFFFFF, int(MethodId.AUDIO_FRAME) ^ 1, 0xB241B9B0)  # the seed's typo
MAX_BODY = 2048  # small, so lying and oversized lengths are common among mutants
MAX_STREAM = 1024  # bytes: longer mutants cost time (fed byte by byte) and find nothing more
PER_EXAMPLE = 100

# ── messages, drawn from the schema ─────────────────────────────────────────

_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: st.text(max_size=16),
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
}


def _field(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        if field.message_type.GetOptions().map_entry:
            return st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)
        return _fields_of(field.message_type).map(lambda kw: LossReport(**kw))
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        named = [v.number for v in field.enum_type.values]
        return st.sampled_from(named + [len(named), 99, 2**31 - 1, -1])  # open enums
    return _SCALARS[field.type]


def _fields_of(descriptor: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of ``descriptor``'s fields (a protobuf Descriptor), each of its type."""
    return st.fixed_dictionaries({}, optional={f.name: _field(f) for f in descriptor.fields})


def _messages_of(cls: type[Message]) -> st.SearchStrategy[Message]:
    return _fields_of(cls.DESCRIPTOR).map(lambda kw: cls(**kw))


audio_frames = st.builds(
    AudioFrame, call_sid=st.text(min_size=1, max_size=24),
    payload=st.one_of(st.binary(max_size=MAX_PAYLOAD // 4).map(lambda b: b[:len(b) // 2 * 2]),
                      st.sampled_from([b"", b"\xff" * 160, bytes(MAX_PAYLOAD)])),
    codec=st.sampled_from(["PCMU", "PCMA", "PCM16"]),
    sequence_number=st.integers(0, 2**64 - 1), end_of_stream=st.booleans())
messages: st.SearchStrategy[Message] = st.one_of(
    audio_frames, *(_messages_of(cls) for cls in MESSAGE_CLASSES))

# ── streams ─────────────────────────────────────────────────────────────────

method_ids = st.one_of(st.sampled_from(list(MethodId)), st.sampled_from(UNKNOWN_IDS))
pieces = st.one_of(
    messages.map(encode), messages.map(encode),
    st.builds(encode_raw, method_ids, st.binary(max_size=40)),
    st.builds(lambda n, m: n.to_bytes(4, "little") + int(m).to_bytes(4, "little"),
              st.sampled_from([0, 1, 3, 4, 5, MAX_BODY + 4, MAX_BODY + 5, 2**31, 2**32 - 1]),
              method_ids),
    st.binary(max_size=20))
streams = st.lists(pieces, min_size=1, max_size=4).map(lambda p: b"".join(p)[:MAX_STREAM])


def _read(chunks: list[bytes]) -> tuple[list[Envelope], QuicFrameError | None]:
    reader = EnvelopeReader(MAX_BODY)
    out: list[Envelope] = []
    try:
        for chunk in chunks:
            out.extend(reader.feed(chunk))
        reader.at_eof()
    except QuicFrameError as exc:
        if reader.buffered:
            raise UndocumentedError(f"{reader.buffered} bytes still buffered after "
                                    f"{exc.code}") from exc
        return out, exc
    return out, None


def read_three_ways(data: bytes, cuts: list[int], got: list[Envelope]) -> list[Envelope]:
    """Byte by byte's envelopes (also put in ``got``, for :func:`decode`), checked against
    the two other ways; raises its error after them."""
    bytewise, error = _read([data[i:i + 1] for i in range(len(data))])
    got.extend(bytewise)
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    for way, (envelopes, other) in (("whole", _read([data])), (f"cut at {cuts}",
                                                                _read(chunks))):
        code, other_code = (None if e is None else e.code for e in (error, other))
        if code != other_code or envelopes != bytewise[:len(envelopes)] or (
                code is None and envelopes != bytewise):
            raise UndocumentedError(f"byte by byte and {way} differ: {code} {bytewise}\n"
                                    f"{way}: {other_code} {envelopes}")
    read_back = b"".join(encode_raw(*e) for e in bytewise)
    if not data.startswith(read_back) or (error is None and read_back != data):
        raise UndocumentedError(f"the envelopes do not re-encode to the input: {bytewise}")
    if error is not None:
        raise error
    return bytewise


def feed(data: bytes, mutator: Mutator) -> None:
    rng = mutator.rng
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6)))
                  ) if len(data) > 1 else []
    got: list[Envelope] = []
    expect("quic.EnvelopeReader", lambda d: read_three_ways(d, cuts, got), data,
           (QuicFrameError,), list)
    for envelope in got:  # accepted or not, what came before any fault
        expect("quic.decode", decode, envelope, (QuicFrameError,), MESSAGE_CLASSES)


@budget(PER_EXAMPLE)
@given(base=streams, seed=seeds)
@example(base=encode(AudioFrame(call_sid="c", payload=b"\xff" * 160, codec="PCMU")), seed=0)
def test_streams_three_ways(base: bytes, seed: int) -> None:
    mutator = Mutator(seed)
    for i in range(PER_EXAMPLE):
        feed(base if i == 0 else mutator.mutate_bytes(base)[:MAX_STREAM], mutator)


@budget(PER_EXAMPLE)
@given(message=messages, seed=seeds)
def test_bodies(message: Message, seed: int) -> None:
    """A message's body mutated, mostly under its own method id (so the schema's own
    parser is reached), sometimes under another or an unknown one."""
    mutator = Mutator(seed)
    rng = mutator.rng
    body = message.SerializeToString()
    own = METHOD_IDS[type(message)]
    for i in range(PER_EXAMPLE):
        method_id = own if rng.random() < 0.85 else rng.choice((*MethodId, *UNKNOWN_IDS))
        data = body if i == 0 else mutator.mutate_bytes(body)
        expect("quic.decode", decode, Envelope(method_id, data), (QuicFrameError,),
               MESSAGE_CLASSES)


@round_trip_budget()
@given(sent=st.lists(st.one_of(audio_frames, messages.filter(
    lambda m: not isinstance(m, AudioFrame))), min_size=1, max_size=4))
def test_messages_round_trip(sent: list[Message]) -> None:
    INPUTS["quic round trip"] += 1
    DERIVED["quic round trip"] = "round trips"
    data = b"".join(encode(m) for m in sent)
    reader = EnvelopeReader()
    half = len(data) // 2
    received = [decode(e) for e in reader.feed(data[:half]) + reader.feed(data[half:])]
    reader.at_eof()
    assert received == sent, _show(data)
    assert MESSAGE_TYPES[METHOD_IDS[type(sent[0])]] is type(sent[0])
