"""SIP messages (protocol/sip/message.py): one UDP datagram in, a message or SipParseError out.

Properties, per input:

- :func:`parse_message` returns a request or response, or raises
  :class:`SipParseError` with a status to answer (and nothing else);
- :func:`salvage_request` never raises (None or a request);
- on a parsed message no header property raises (the module's promise), a
  response to a parsed request can be made, and parse → serialize → parse
  gives the same message (Content-Length aside, which serialize always writes);
- every URI, name-addr and Via read from a parsed message survives
  ``parse(str(x)) == x``; :meth:`SipUri.parse`, :meth:`NameAddr.parse` and
  :meth:`Via.parse` also get the raw header values and raise only SipParseError.

Inputs: requests and responses with every header a UA reads (compact forms,
folded lines, lists, IPv6 hosts, escapes, lying Content-Length ...), then
mutated line by line, field by field and byte by byte.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from telcoflow.protocol.sip.errors import SipParseError
from telcoflow.protocol.sip.message import (
    Headers,
    NameAddr,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    make_response,
    parse_message,
    salvage_request,
)
from telcoflow.protocol.sip.transaction import RequestReceived, TransactionLayer

from .fuzzing import Mutator, budget, expect, fail, seeds

# ── valid-ish messages ──────────────────────────────────────────────────────

# Bases are valid messages (or nearly: a few choices are edge cases); the mutants break
# them, using these values among the generic tricky tokens.
SIP_TOKENS = (
    "[zz]", "999.1.1.1", "1.2.3", "[::1", ":65536", ":0", "%zz", "%41", "a%3Ab", "é", "x:y@",
    "sips", "tel", "http", "SIP/2.0/UDP", "SIP/3.0", "SIP / 2.0", "XIP/2.0", ";branch",
    ";branch=", ";rport=70000", ";received=nope", ";received=[::1]", ";ttl=300", ";tag=",
    ";tag=a;tag=b", ";lr", ";lr;lr", "?x", "?a=b&c", '"unclosed', '"q\\"', "<sip:a@b",
    "*", "*, <sip:a@b>", "2147483648", "99999999999", "-1", " 5 ", "INVITE", "ACK", "x-y",
    "Content-Length", "l", "v", "i", "f", "t", "m", "Via", "CSeq", "Call-ID")

hosts = st.sampled_from(["example.com", "10.0.0.1", "[2001:db8::1]", "[::1]", "host_1",
                         "a.b-c.d", "pc33.atlanta.com"])
ports = st.sampled_from(["", "", ":5060", ":0", ":65535", ": 5062"])
users = st.sampled_from(["", "alice@", "%41lice@", "+15550100@", "a%3Ab@", "bob:secret@",
                         "%C3%A9@"])
uri_params = st.lists(st.sampled_from([";transport=udp", ";lr", ";maddr=10.0.0.2",
                                       ";user=phone", ";TTL=5", ";x="]), max_size=3,
                      unique=True)
uri_headers = st.sampled_from(["", "", "?subject=hi&priority=urgent", "?a=b"])


@st.composite
def uris(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["sip", "sip", "sips", "tel", "SIP"]))
    if scheme == "tel":
        return "tel:" + draw(st.sampled_from(["+1-555-0100", "911", "*#"])) + "".join(
            draw(uri_params))
    return (f"{scheme}:{draw(users)}{draw(hosts)}{draw(ports)}{''.join(draw(uri_params))}"
            f"{draw(uri_headers)}")


displays = st.sampled_from(["", "", "Alice ", '"Alice Smith" ', '"quo\\"te" ', '"é☎" ',
                            "Bob  Smith "])


@st.composite
def name_addrs(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from(["", ";tag=1928301774", ";expires=60", ";q=0.7",
                                ' ; tag = "quoted"']))
    if draw(st.integers(0, 3)) == 0:  # addr-spec form
        return f"{draw(uris())}{tag}"
    return f"{draw(displays)}<{draw(uris())}>{tag}"


@st.composite
def vias(draw: st.DrawFn) -> str:
    transport = draw(st.sampled_from(["UDP", "TCP", "tls", "WS"]))
    params = "".join(draw(st.lists(st.sampled_from(
        [";branch=z9hG4bK776asdhds", ";rport", ";rport=5061", ";received=10.0.0.9",
         ";received=[::1]", ";ttl=16", ";maddr=224.2.0.1", ";x"]), max_size=3, unique=True)))
    version = draw(st.sampled_from(["SIP/2.0", "SIP/2.0", "SIP / 2.0", "sip/2.0"]))
    return f"{version}/{transport} {draw(hosts)}{draw(ports)}{params}"


METHODS = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "X-Y"]
SDP = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
       b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(METHODS))
    if draw(st.integers(0, 3)) == 0:
        status = draw(st.sampled_from(["200", "180", "404", "100", "699"]))
        start = f"SIP/2.0 {status} {draw(st.sampled_from(['OK', '', 'Not Found', 'é']))}"
    else:
        start = f"{method} {draw(uris())} SIP/2.0"
    headers: list[tuple[str, str]] = [
        (draw(st.sampled_from(["Via", "v", "VIA"])),
         ", ".join(draw(st.lists(vias(), min_size=1, max_size=2)))),
        (draw(st.sampled_from(["From", "f"])), draw(name_addrs())),
        (draw(st.sampled_from(["To", "t"])), draw(name_addrs())),
        (draw(st.sampled_from(["Call-ID", "i", "call-id"])),
         draw(st.sampled_from(["a84b4c76e66710@pc33", "x", "~!"]))),
        ("CSeq", f"{draw(st.sampled_from(['314159', '1', '2147483647']))} {method}"),
    ]
    extra = draw(st.lists(st.sampled_from([
        ("Contact", "*"), ("m", "<sip:bob@10.0.0.2:5070;transport=udp>;expires=3600"),
        ("Contact", '"Bob" <sip:bob@[::1]>, <sips:b@h>'), ("Route", "<sip:p1.example.com;lr>"),
        ("Record-Route", "<sip:p2.example.com;lr>, <sip:p3;lr>"), ("Max-Forwards", "70"),
        ("Content-Type", "application/sdp"), ("Supported", "timer, 100rel"),
        ("Allow", "INVITE, ACK"), ("Timestamp", "54"), ("User-Agent", "fuzz/1.0"),
        ("X-Custom", "value;with=params"), ("Authorization", 'Digest username="a", realm="r"'),
    ]), max_size=4, unique=True))
    body = draw(st.sampled_from([b"", SDP, b"hello", b"\xff\xfe"]))
    length = draw(st.sampled_from(["ok", "ok", "ok", "none", "less"]))
    if length != "none":
        value = str(len(body)) if length == "ok" else "0"
        extra.append((draw(st.sampled_from(["Content-Length", "l"])), value))
    lines = [start] + [f"{name}: {value}" for name, value in headers + extra]
    order = draw(st.permutations(range(1, len(lines))))
    lines = [lines[0]] + [lines[i] for i in order]
    eol = draw(st.sampled_from(["\r\n", "\r\n", "\r\n", "\n"]))
    lead = draw(st.sampled_from(["", "", "\r\n"]))
    return (lead + eol.join(lines) + eol + eol).encode() + body


# ── the checks ──────────────────────────────────────────────────────────────

def _without_length(message: SipRequest | SipResponse) -> list[tuple[str, str]]:
    return [(k, v) for k, v in message.headers if k.lower() != "content-length"]


def _same(a: SipRequest | SipResponse, b: SipRequest | SipResponse) -> bool:
    if type(a) is not type(b) or a.body != b.body or _without_length(a) != _without_length(b):
        return False
    if isinstance(a, SipRequest) and isinstance(b, SipRequest):
        return a.method == b.method and a.uri == b.uri
    assert isinstance(a, SipResponse) and isinstance(b, SipResponse)
    return a.status == b.status and a.reason == b.reason


def _survives(name: str, parse: Any, value: Any, data: bytes) -> None:
    again = parse(str(value))
    if again != value:
        raise fail(name, data, f"{value!r} written as {str(value)!r} reads back as {again!r}")


def check_parsed(message: SipRequest | SipResponse, data: bytes) -> None:
    try:  # the module promises these never raise on a parsed message
        message.call_id, message.cseq, message.content_type, message.max_forwards  # noqa: B018
        addresses = [message.from_, message.to, *message.contacts, *message.routes,
                     *message.record_routes]
        hops = message.vias
        message.top_via  # noqa: B018
    except Exception as exc:
        raise fail("sip.parse_message", data, f"a property of the parsed message raised "
                   f"{type(exc).__name__}: {exc}") from exc
    for address in addresses:
        _survives("sip.NameAddr", NameAddr.parse, address, data)
        _survives("sip.SipUri", SipUri.parse, address.uri, data)
    for hop in hops:
        _survives("sip.Via", Via.parse, hop, data)
    if isinstance(message, SipRequest):
        _survives("sip.SipUri", SipUri.parse, message.uri, data)
    try:
        again = parse_message(message.serialize())
        if not _same(message, again) or parse_message(again.serialize()) != again:
            raise fail("sip.parse_message", data, f"serialize → parse changed the message:\n"
                       f"{message.serialize()!r}\n{again.serialize()!r}")
        if isinstance(message, SipRequest):
            response = make_response(message, 200, to_tag="abc", body=b"x")
            if not _same(parse_message(response.serialize()), response):
                raise fail("sip.make_response", data, "the response does not read back")
    except SipParseError as exc:
        raise fail("sip.parse_message", data, f"what serialize wrote does not parse: {exc}"
                   ) from exc


# ── the transaction layer: the SIP stack's door for datagrams ────────────────

PEER = ("10.0.0.9", 5060)
BRANCH = "z9hG4bK776asdhds"  # the branch of the generated Vias: responses can match


class Stack:
    """A transaction layer with client transactions open (an INVITE, an OPTIONS, a BYE we
    sent), answering the requests it gets as a UA core would; the time moves on."""

    def __init__(self) -> None:
        self.layer = TransactionLayer()
        self.now = 0.0
        self.checked: set[bytes] = set()  # retransmissions are the same bytes again
        self.parsed: set[bytes] = set()   # messages whose round trips were checked
        for method in ("INVITE", "OPTIONS", "BYE"):
            self.layer.send_request(SipRequest("INVITE" if method == "INVITE" else method,
                                               SipUri(host="example.com"), Headers([
                ("Via", f"SIP/2.0/UDP 10.0.0.1:5060;branch={BRANCH}"),
                ("From", "<sip:gw@10.0.0.1>;tag=1"), ("To", "<sip:a@example.com>"),
                ("Call-ID", "a84b4c76e66710@pc33"), ("CSeq", f"314159 {method}"),
                ("Max-Forwards", "70")])), PEER, self.now)
        self.sent()

    def receive(self, data: bytes, mutator: Mutator) -> None:
        rng = mutator.rng
        events = expect("sip.TransactionLayer.receive",
                        lambda d: self.layer.receive(d, PEER, self.now), data, (), list,
                        derived=True)
        for event in events or ():
            if isinstance(event, RequestReceived) and event.request.method != "ACK" and \
                    rng.random() < 0.7:  # the UA core answers (once: a fresh transaction)
                status = rng.choice((100, 180, 200, 404, 486))
                self.layer.send_response(make_response(event.request, status, to_tag="ua"),
                                         self.now)
        self.now += rng.choice((0.0, 0.01, 0.1, 0.5, 2.0))
        self.layer.handle_timer(self.now)
        self.sent()

    def sent(self) -> None:
        """What the layer sends (answers, error responses, retransmissions) is SIP."""
        for data, addr in self.layer.datagrams_to_send():
            if data in self.checked:
                continue
            self.checked.add(data)
            # well-formed, whatever a receiver's caps: an answer copies every Via (§8.2.6),
            # so one to a request of 128 fields has more
            try:
                parse_message(data, max_headers=10_000, max_header_bytes=1 << 20)
            except SipParseError:
                try:
                    parse_message(_with_salvage_gaps_filled(data), max_headers=10_000,
                                  max_header_bytes=1 << 20)
                except SipParseError as exc:
                    raise fail("sip.TransactionLayer", data, f"sent to {addr} what does "
                               f"not parse: {exc}") from exc


_GAPS = ((b"from", b"From: <sip:x@invalid>"), (b"to", b"To: <sip:x@invalid>"),
         (b"call-id", b"Call-ID: x"))


def _with_salvage_gaps_filled(data: bytes) -> bytes:
    """An error response to a malformed request lacks the From, To or Call-ID that
    salvage_request could not read (RFC 4475 3.1.2.18: still say why): ``data`` with
    those supplied, so that parse_message checks all the rest (status, Via, CSeq)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not data.startswith((b"SIP/2.0 4", b"SIP/2.0 5", b"SIP/2.0 6")):
        return data
    present = {line.partition(b":")[0].strip().lower() for line in head.split(b"\r\n")[1:]}
    missing = [line for name, line in _GAPS if name not in present]
    return b"\r\n".join([head, *missing]) + sep + body


ROUND_TRIPS_PER_EXAMPLE = 12  # the full check of an accepted message costs ten parses


def feed(data: bytes, mutator: Mutator, stack: Stack | None = None) -> None:
    if stack is not None and mutator.rng.random() < 0.15:  # some: it costs as much again
        stack.receive(data, mutator)
    message = expect("sip.parse_message", parse_message, data, (SipParseError,),
                     (SipRequest, SipResponse))
    salvaged = expect("sip.salvage_request", salvage_request, data, (),
                      (SipRequest, type(None)))
    if salvaged is not None:  # enough to answer with an error
        expect("sip.make_response(salvaged)", lambda r: make_response(r, 400), salvaged, (),
               SipResponse, derived=True)
    if message is not None:
        if stack is None:
            check_parsed(message, data)
        elif len(stack.parsed) < ROUND_TRIPS_PER_EXAMPLE:  # the distinct ones, some
            written = message.serialize()
            if written not in stack.parsed:
                stack.parsed.add(written)
                check_parsed(message, data)
    if mutator.rng.random() < 0.85:
        return
    # a header value and the Request-URI on their own, as the dialog layer reads them
    lines = data.decode("utf-8", "replace").split("\n")
    value = lines[mutator.rng.randrange(len(lines))].partition(":")[2].strip()
    expect("sip.NameAddr.parse", NameAddr.parse, value, (SipParseError,), NameAddr,
           derived=True)
    expect("sip.Via.parse", Via.parse, value, (SipParseError,), Via, derived=True)
    parts = lines[0].split(" ")
    expect("sip.SipUri.parse", SipUri.parse, parts[1] if len(parts) > 1 else parts[0],
           (SipParseError,), SipUri, derived=True)


PER_EXAMPLE = 150


@budget(PER_EXAMPLE, share=0.95)
@given(base=messages(), seed=seeds)
@example(base=b"INVITE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\nf: <sip:a@b>;tag=1"
              b"\r\nt: <sip:b@c>\r\ni: x\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n", seed=0)
def test_sip_messages(base: bytes, seed: int) -> None:
    mutator = Mutator(seed, SIP_TOKENS)
    stack = Stack()
    feed(base, mutator, stack)
    text = base.decode("utf-8", "surrogateescape")
    for i in range(PER_EXAMPLE - 1):
        if i % 3 == 0:
            mutant = mutator.mutate_bytes(base)
        elif i % 3 == 1:
            mutant = mutator.mutate_lines(text).encode("utf-8", "surrogateescape")
        else:
            mutant = mutator.mutate_text(text).encode("utf-8", "surrogateescape")
        feed(mutant, mutator, stack)


@budget(PER_EXAMPLE, share=0.05)
@given(base=st.binary(max_size=300), seed=seeds)
def test_sip_junk(base: bytes, seed: int) -> None:
    mutator = Mutator(seed)
    feed(base, mutator)
    for _ in range(PER_EXAMPLE - 1):
        feed(mutator.mutate_bytes(base), mutator)
