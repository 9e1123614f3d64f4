"""SIP messages: real peers' messages read and written, every refusal's status, and a fuzz."""

from __future__ import annotations

import random
import re

import pytest

from telcoflow.protocol.errors import ProtocolError
from telcoflow.protocol.sip.errors import SipParseError
from telcoflow.protocol.sip.message import (
    MAGIC_COOKIE,
    Headers,
    NameAddr,
    SipRequest,
    SipResponse,
    SipUri,
    Via,
    make_cancel,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
    reason_phrase,
    salvage_request,
    split_list,
)

from ._msg_samples import (
    ALL,
    BARE_100,
    BARESIP_INVITE,
    CARRIER_200,
    COMPACT_BYE,
    IPV6_REGISTER,
    OPTIONS_PING,
    RFC3261_180,
    SIPP_INVITE,
    TORTURE_WSINV,
    wire,
)


def parse_request(text: str) -> SipRequest:
    message = parse_message(wire(text))
    assert isinstance(message, SipRequest)
    return message


def parse_response(text: str) -> SipResponse:
    message = parse_message(wire(text))
    assert isinstance(message, SipResponse)
    return message


def refusal(data: bytes, **limits: int) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(data, **limits)
    return info.value


# --------------------------------------------------------------------------- real messages


def test_sipp_invite() -> None:
    m = parse_request(SIPP_INVITE)
    assert m.method == "INVITE"
    assert m.uri == SipUri("sip", "service", "127.0.0.1", 5060)
    assert m.call_id == "1-3954@127.0.1.1"
    assert m.cseq == (1, "INVITE")
    assert m.from_.display_name == "sipp" and m.from_.tag == "3954SIPpTag001"
    assert m.to.tag is None and m.to.uri.user == "service"
    assert m.top_via.branch == "z9hG4bK-3954-1-0" and m.top_via.sent_by == ("127.0.1.1", 5061)
    assert m.contacts == [NameAddr(SipUri("sip", "sipp", "127.0.1.1", 5061))]
    assert m.max_forwards == 70
    assert m.content_type == "application/sdp"
    assert m.body.startswith(b"v=0\r\n") and m.body.endswith(b"a=rtpmap:0 PCMU/8000\r\n")
    assert len(m.body) == int(m.headers.get("Content-Length") or 0) == 129


def test_baresip_invite() -> None:
    m = parse_request(BARESIP_INVITE)
    via = m.top_via
    assert "rport" in via.params and via.params["rport"] is None and via.rport is None
    assert m.contacts[0].uri.transport == "UDP"
    assert m.from_.display_name == "Bob"
    assert m.headers.get_all("Allow")[:3] == ["INVITE", "ACK", "BYE"]
    assert len(m.headers.get_all("Allow")) == 11
    assert m.headers.get_all("Supported") == ["replaces", "norefersub", "100rel"]
    assert m.headers.get("User-Agent") == "baresip v3.10.1 (x86_64/Linux)"


def test_rfc3261_180_with_proxies() -> None:
    m = parse_response(RFC3261_180)
    assert (m.status, m.reason) == (180, "Ringing")
    assert [v.host for v in m.vias] == ["server10.biloxi.com", "bigbox3.site3.atlanta.com",
                                        "pc33.atlanta.com"]
    assert [v.received for v in m.vias] == ["192.0.2.3", "192.0.2.2", "192.0.2.1"]
    assert m.top_via.response_address() == ("192.0.2.3", 5060)
    assert [str(r.uri) for r in m.record_routes] == ["sip:server10.biloxi.com;lr",
                                                    "sip:bigbox3.site3.atlanta.com;lr"]
    assert m.record_routes[0].uri.params == {"lr": None}
    assert m.to.tag == "a6c85cf" and m.to.display_name == "Bob"


def test_carrier_200_with_sdp() -> None:
    m = parse_response(CARRIER_200)
    assert m.status == 200
    assert m.top_via.rport == 5060 and m.top_via.received == "203.0.113.5"
    assert m.contacts[0].uri.user == "+15551230000"
    assert m.headers.get_all("Supported") == ["replaces", "timer"]
    assert m.body.endswith(b"a=sendrecv\r\n")


def test_rfc4475_wsinv_torture() -> None:
    m = parse_request(TORTURE_WSINV)
    assert m.to.tag == "1918181833n" and m.to.uri.host == "chair-dnrc.example.com"
    assert m.from_.display_name == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert m.cseq == (9, "INVITE")
    assert m.uri.params == {"unknownparam": None}
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    contact = m.contacts[0]
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert m.routes[0].uri.params == {"lr": None, "unknownwith": "value",
                                      "unknown-no-value": None}
    assert len(m.body) == 150


def test_compact_forms_are_expanded() -> None:
    m = parse_request(COMPACT_BYE)
    assert [name for name, _ in m.headers] == [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Supported", "Content-Length"]
    assert m.call_id == "3b4b6c9e8f2a1d7c" and m.to.tag == "gw77"
    assert m.headers.get("i") == m.headers.get("call-ID") == "3b4b6c9e8f2a1d7c"
    assert b"\r\nCall-ID: 3b4b6c9e8f2a1d7c\r\n" in m.serialize()


def test_ipv6_hosts() -> None:
    m = parse_request(IPV6_REGISTER)
    assert m.uri.host == "2001:db8::10" and str(m.uri) == "sip:[2001:db8::10]"
    via = m.top_via
    assert via.sent_by == ("2001:db8::9:1", 5070)
    assert str(via) == "SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3-111;rport"
    assert m.contacts[0].uri.host == "2001:db8::1" and m.contacts[0].uri.port == 5070
    assert m.from_.uri.user == "user" and m.from_.tag == "81x2"  # addr-spec form


def test_missing_reason_phrase_and_extra_spaces() -> None:
    m = parse_response(BARE_100)
    assert (m.status, m.reason) == (100, "")
    again = parse_message(m.serialize())
    assert isinstance(again, SipResponse) and again.status == 100
    spaced = wire(OPTIONS_PING).replace(b"OPTIONS sip:", b"OPTIONS    sip:", 1)
    assert parse_message(spaced).cseq == (1, "OPTIONS")


def test_bare_lf_line_ends_and_leading_crlf() -> None:
    m = parse_message(b"\r\n\r\n" + wire(SIPP_INVITE, crlf=False))
    assert isinstance(m, SipRequest) and m.cseq == (1, "INVITE")
    assert m.body.startswith(b"v=0\no=")


def test_body_longer_than_content_length_is_truncated() -> None:
    m = parse_message(wire(OPTIONS_PING) + b"trailing junk")
    assert m.body == b""


def test_no_content_length_takes_the_rest_of_the_datagram() -> None:
    data = wire(OPTIONS_PING).replace(b"Content-Length: 0\r\n", b"") + b"hello"
    assert parse_message(data).body == b"hello"


def test_max_forwards_is_optional() -> None:
    m = parse_message(wire(OPTIONS_PING).replace(b"Max-Forwards: 70\r\n", b""))
    assert m.max_forwards is None


@pytest.mark.parametrize("name", sorted(ALL))
def test_round_trip(name: str) -> None:
    first = parse_message(wire(ALL[name]))
    data = first.serialize()
    second = parse_message(data)
    assert second == first
    assert second.serialize() == data
    assert data.count(b"\r\n\r\n") >= 1 and b"\n" not in data.replace(b"\r\n", b"")[:data.find(
        b"\r\n\r\n")]


def test_serialize_writes_one_correct_content_length() -> None:
    m = parse_request(SIPP_INVITE)
    m.body = b"v=0\r\n"
    data = m.serialize()
    assert data.count(b"Content-Length") == 1 and b"\r\nContent-Length: 5\r\n" in data
    m.headers.remove("Content-Length")
    assert m.serialize().endswith(b"Content-Length: 5\r\n\r\nv=0\r\n")
    bare = SipResponse(200, "OK", Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bKx")]))
    assert bare.serialize() == (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
                                b"Content-Length: 0\r\n\r\n")


# --------------------------------------------------------------------------- Headers


def test_headers_names_are_case_insensitive_and_canonical() -> None:
    h = Headers([("call-id", "a"), ("CSEQ", "1 INVITE"), ("www-authenticate", "Digest x=1"),
                 ("X-Custom-thing", "y"), ("l", "0")])
    assert [name for name, _ in h] == ["Call-ID", "CSeq", "WWW-Authenticate", "X-Custom-thing",
                                       "Content-Length"]
    assert h.get("CALL-ID") == h.get("i") == "a"
    assert "x-custom-THING" in h and "Contact" not in h
    assert Headers.canonical("v") == "Via" and Headers.canonical("x-Foo") == "x-Foo"


def test_headers_list_fields_split_respecting_quotes_and_brackets() -> None:
    h = Headers()
    h.add("Contact", '"Smith, John" <sip:j@x>;q=0.5, <sip:a,b@y>')
    h.add("m", "<sip:z@z>")
    h.add("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2")
    h.add("WWW-Authenticate", 'Digest realm="a, b", nonce="n"')
    h.add("Date", "Sat, 13 Nov 2010 23:29:00 GMT")
    assert h.get_all("Contact") == ['"Smith, John" <sip:j@x>;q=0.5', "<sip:a,b@y>", "<sip:z@z>"]
    assert h.get("Via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    assert len(h.get_all("Via")) == 2 and len(h.get_lines("Via")) == 1
    assert h.get_all("WWW-Authenticate") == ['Digest realm="a, b", nonce="n"']
    assert h.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert split_list(' a , "x,\\"y" ,, b ') == ["a", '"x,\\"y"', "b"]


def test_headers_set_add_remove_replace_top() -> None:
    h = Headers([("Via", "v1, v2"), ("To", "t"), ("Route", "r1"), ("Route", "r2")])
    h.add("Via", "v0", first=True)
    assert h.get_all("Via") == ["v0", "v1", "v2"]
    h.replace_top("Via", "V0")
    h.replace_top("v", "w0")
    assert h.get_all("Via") == ["w0", "v1", "v2"]
    h.set("Route", "only")
    assert list(h)[3:] == [("Route", "only")]
    assert h.remove("via") == 2 and "Via" not in h
    h.set("Max-Forwards", "70")
    assert list(h)[-1] == ("Max-Forwards", "70")
    assert len(h) == 3 and h.copy() == h and h.copy() is not h


@pytest.mark.parametrize("name, value", [("Subject", "a\r\nVia: evil"), ("Subject", "a\nb"),
                                         ("Subject", "a\x00"), ("Bad Name", "v"), ("", "v")])
def test_headers_refuse_injection(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        Headers().add(name, value)


# --------------------------------------------------------------------------- SipUri


@pytest.mark.parametrize("text, uri, out", [
    ("sip:alice@atlanta.com", SipUri("sip", "alice", "atlanta.com"), None),
    ("SIP:alice@atlanta.com:5070;transport=TCP;lr",
     SipUri("sip", "alice", "atlanta.com", 5070, {"transport": "TCP", "lr": None}),
     "sip:alice@atlanta.com:5070;transport=TCP;lr"),
    ("sips:bob:secret@[2001:db8::1]:5061", SipUri("sips", "bob", "2001:db8::1", 5061,
                                                  password="secret"), None),
    ("sip:%61lice@x.org", SipUri("sip", "alice", "x.org"), "sip:alice@x.org"),
    ("sip:alice%20smith@x.org", SipUri("sip", "alice smith", "x.org"), None),
    ("sip:+1-212-555-1212;phone-context=x@gw.com;user=phone",
     SipUri("sip", "+1-212-555-1212;phone-context=x", "gw.com", None, {"user": "phone"}), None),
    ("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
     SipUri("sip", None, "atlanta.com", None, {"method": "REGISTER"},
            {"to": "alice%40atlanta.com"}), None),
    ("sip:192.0.2.4", SipUri("sip", None, "192.0.2.4"), None),
    ("tel:+1-201-555-0123;phone-context=example.com",
     SipUri("tel", "+1-201-555-0123", "", None, {"phone-context": "example.com"}), None),
])
def test_uri_parse_and_write(text: str, uri: SipUri, out: str | None) -> None:
    parsed = SipUri.parse(text)
    assert parsed == uri
    assert str(parsed) == (out or text)
    assert SipUri.parse(str(parsed)) == parsed


def test_uri_escapes_what_the_user_part_cannot_hold() -> None:
    uri = SipUri("sip", "a b@c#é", "h")
    assert str(uri) == "sip:a%20b%40c%23%C3%A9@h"
    assert SipUri.parse(str(uri)) == uri


@pytest.mark.parametrize("text, status", [
    ("mailto:alice@atlanta.com", 416), ("http://x", 416), ("sip:", 400), ("sip:@host", 400),
    ("sip:host:99999", 400), ("sip:host:5a", 400), ("sip:[::1", 400), ("sip:[zz::1]", 400),
    ("sip:%zz@x", 400), ("sip:%ff@x", 400), ("sip:1.2.3.999", 400), ("sip:a b@x", 400),
    ("sip:host;;lr", 400), ("sip:host;lr;lr", 400), ("no-colon", 400), ("tel:", 400),
    ("sip:ho$t", 400), ("sip:host?x", 400),
])
def test_uri_refusals(text: str, status: int) -> None:
    with pytest.raises(SipParseError) as info:
        SipUri.parse(text)
    assert info.value.status == status


# --------------------------------------------------------------------------- NameAddr


@pytest.mark.parametrize("text, display, uri, params, out", [
    ('"Alice" <sip:alice@a.com>;tag=1928', "Alice", "sip:alice@a.com", {"tag": "1928"}, None),
    ("Bob  Smith <sip:bob@b.com>", "Bob Smith", "sip:bob@b.com", {},
     '"Bob Smith" <sip:bob@b.com>'),
    ("<sip:c@c.com;transport=udp>;expires=60", None, "sip:c@c.com;transport=udp",
     {"expires": "60"}, None),
    ("sip:d@d.com;tag=xyz", None, "sip:d@d.com", {"tag": "xyz"}, "<sip:d@d.com>;tag=xyz"),
    ('"A \\"q\\" \\\\ b"<sip:e@e.com> ; tag = t ; +sip.instance="<urn:uuid:1;2>"',
     'A "q" \\ b', "sip:e@e.com", {"tag": "t", "+sip.instance": '"<urn:uuid:1;2>"'},
     '"A \\"q\\" \\\\ b" <sip:e@e.com>;tag=t;+sip.instance="<urn:uuid:1;2>"'),
    ("tel:+15551234;tag=9", None, "tel:+15551234", {"tag": "9"}, "<tel:+15551234>;tag=9"),
    ('"" <sip:f@f.com>', "", "sip:f@f.com", {}, "<sip:f@f.com>"),
])
def test_name_addr(text: str, display: str | None, uri: str, params: dict[str, str | None],
                   out: str | None) -> None:
    na = NameAddr.parse(text)
    assert (na.display_name, str(na.uri), na.params) == (display, uri, params)
    assert str(na) == (out or text)
    again = NameAddr.parse(str(na))
    assert (again.uri, again.params) == (na.uri, na.params)
    assert (again.display_name or None) == (na.display_name or None)


def test_name_addr_tag_property() -> None:
    na = NameAddr.parse("<sip:a@b>")
    assert na.tag is None
    na.tag = "t1"
    assert str(na) == "<sip:a@b>;tag=t1"
    na.tag = None
    assert str(na) == "<sip:a@b>"
    assert str(NameAddr(SipUri(host="h"), 'evil"\r\nVia: x')) == '"evil\\"  Via: x" <sip:h>'


@pytest.mark.parametrize("text", [
    "", '"unterminated <sip:a@b>', '"Alice" sip:a@b', "<sip:a@b", "Al>ice <sip:a@b>",
    "<sip:a@b> junk", "<sip:a@b>;tag=1;tag=2", "<sip:a@b>;=x", "<sip:a@b>;tag=",
    "<mailto:a@b>",
])
def test_name_addr_refusals(text: str) -> None:
    with pytest.raises(SipParseError):
        NameAddr.parse(text)


# --------------------------------------------------------------------------- Via


def test_via_fields_and_rport() -> None:
    via = Via.parse("SIP/2.0/udp 10.0.0.1:5062;branch=z9hG4bKx;rport;maddr=224.2.0.1;ttl=16")
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "10.0.0.1", 5062,
                                                               "z9hG4bKx")
    assert via.params["rport"] is None and via.rport is None
    assert via.params["maddr"] == "224.2.0.1" and via.params["ttl"] == "16"
    assert via.response_address() == ("10.0.0.1", 5062)  # maddr is not honoured
    via.params["rport"] = "40000"
    via.params["received"] = "198.51.100.1"
    assert via.response_address() == ("198.51.100.1", 40000)
    assert str(via) == ("SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKx;rport=40000;"
                        "maddr=224.2.0.1;ttl=16;received=198.51.100.1")
    assert Via.parse(str(via)) == via


@pytest.mark.parametrize("text, sent_by, response_address", [
    ("SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK1", ("pc33.atlanta.com", 5060),
     ("pc33.atlanta.com", 5060)),
    ("SIP/2.0/TLS pc33.atlanta.com;branch=z9hG4bK1", ("pc33.atlanta.com", 5061),
     ("pc33.atlanta.com", 5061)),
    ("SIP/2.0/UDP h:5070;received=192.0.2.9", ("h", 5070), ("192.0.2.9", 5070)),
    ("SIP/2.0/UDP h;rport=1234;received=192.0.2.9", ("h", 5060), ("192.0.2.9", 1234)),
    ("SIP / 2.0 / UDP [2001:db8::1] : 5070 ; branch = z9hG4bK2 ; received=2001:db8::2",
     ("2001:db8::1", 5070), ("2001:db8::2", 5070)),
    ("SIP/2.0/UDP [2001:db8::1];received=[2001:db8::3];rport=9", ("2001:db8::1", 5060),
     ("2001:db8::3", 9)),
])
def test_via_addresses(text: str, sent_by: tuple[str, int],
                       response_address: tuple[str, int]) -> None:
    via = Via.parse(text)
    assert via.sent_by == sent_by
    assert via.response_address() == response_address


@pytest.mark.parametrize("text", [
    "SIP/2.0/UDP", "SIP/3.0/UDP h", "XIP/2.0/UDP h", "SIP/2.0 h", "SIP/2.0/UDP h:99999",
    "SIP/2.0/UDP h;rport=x", "SIP/2.0/UDP h;received=host.example", "SIP/2.0/UDP h;branch",
    "SIP/2.0/UDP h;ttl=300", "SIP/2.0/UDP 2001:db8::1", "SIP/2.0/UDP h junk",
    'SIP/2.0/UDP h;branch="z9hG4bK"',
])
def test_via_refusals(text: str) -> None:
    with pytest.raises(SipParseError):
        Via.parse(text)


# --------------------------------------------------------------------------- refusals


def _swap(old: bytes, new: bytes, sample: str = OPTIONS_PING) -> bytes:
    data = wire(sample)
    assert old in data
    return data.replace(old, new, 1)


@pytest.mark.parametrize("data, status, sentence", [
    (_swap(b"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-524287-1---c4f1b0a5c6fd1a4e;"
           b"rport\r\n", b""), 400, "no Via header"),
    (_swap(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0/UDP bad host"), 400, "Via"),
    (_swap(b"From:", b"From: <sip:x@y>;tag=2\r\nFrom:"), 400, "2 From headers"),
    (_swap(b"From: <sip:ping@198.51.100.7:5060>", b"From: <sip:ping@198.51.100.7:5060"), 400,
     "From header"),
    (_swap(b"To: <sip:gateway@203.0.113.5:5060>\r\n", b""), 400, "no To header"),
    (_swap(b"Call-ID: ODk3NjQ3MjY0ZDA5ZGNiYzA0\r\n", b""), 400, "no Call-ID header"),
    (_swap(b"Call-ID: ODk3NjQ3MjY0ZDA5ZGNiYzA0", b"Call-ID: two words"), 400, "Call-ID"),
    (_swap(b"CSeq: 1 OPTIONS\r\n", b""), 400, "no CSeq header"),
    (_swap(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"), 400, "is not 'number METHOD'"),
    (_swap(b"CSeq: 1 OPTIONS", b"CSeq: 4294967296 OPTIONS"), 400, "CSeq"),
    (_swap(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"), 400, "CSeq method 'INVITE'"),
    (_swap(b"Content-Length: 0", b"Content-Length: 10"), 400, "Content-Length says 10"),
    (_swap(b"Content-Length: 0", b"Content-Length: -1"), 400, "Content-Length"),
    (_swap(b"Content-Length: 0", b"Content-Length: 0\r\nl: 0"), 400, "2 Content-Length"),
    (_swap(b"Max-Forwards: 70", b"Max-Forwards: seventy"), 400, "Max-Forwards"),
    (_swap(b"Contact: <sip:ping@198.51.100.7:5060>", b"Contact: <sip:ping@"), 400, "Contact"),
    (_swap(b"Contact: <sip:ping@198.51.100.7:5060>", b"Contact: *, <sip:a@b>"), 400, "'*'"),
    (_swap(b"Max-Forwards: 70", b"Route: sip:a@b;lr, <junk"), 400, "Route"),
    (_swap(b"User-Agent: Zoiper", b"User-Agent: Zoi\xffper"), 400, "not UTF-8"),
    (_swap(b"User-Agent: Zoiper", b"User-Agent: Zoi\x00per"), 400, "control character"),
    (_swap(b"User-Agent: Zoiper", b"User-Agent: Zoi\rper"), 400, "control character"),
    (_swap(b"User-Agent: Zoiper", b"User-Agent Zoiper"), 400, "is not 'Name: value'"),
    (_swap(b"User-Agent: Zoiper", b"User Agent: Zoiper"), 400, "is not 'Name: value'"),
    (_swap(b"Via:", b" Via:"), 400, "starts with whitespace"),
    (_swap(b"OPTIONS sip:gateway@203.0.113.5:5060 SIP/2.0",
           b"OPTIONS sip:gateway@203.0.113.5:5060 SIP/3.0"), 505, "SIP/3.0"),
    (_swap(b"OPTIONS sip:gateway@203.0.113.5:5060 SIP/2.0",
           b"OPTIONS sip:gateway@203.0.113.5:5060 HTTP/1.1"), 400, "not a SIP version"),
    (_swap(b"OPTIONS sip:gateway@203.0.113.5:5060 SIP/2.0",
           b"OPTIONS mailto:gateway@example.com SIP/2.0"), 416, "scheme 'mailto'"),
    (_swap(b"OPTIONS sip:gateway@203.0.113.5:5060 SIP/2.0",
           b"OPTIONS sip:gateway@203.0.113.5:5060"), 400, "is not 'METHOD Request-URI SIP/2.0'"),
    (_swap(b"OPTIONS sip:gateway@203.0.113.5:5060 SIP/2.0",
           b"OPT<IONS sip:gateway@203.0.113.5:5060 SIP/2.0"), 400, "request line"),
    (_swap(b"SIP/2.0   100", b"SIP/2.0 99 Odd", BARE_100), 400, "status code 100-699"),
    (_swap(b"SIP/2.0   100", b"SIP/2.0 1000", BARE_100), 400, "status code 100-699"),
    (_swap(b"SIP/2.0   100", b"SIP/2.5 100", BARE_100), 505, "SIP/2.5"),
    (wire(OPTIONS_PING)[:-2], 400, "not ended by an empty line"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), 400, "not"),
    (b"", 400, "not ended by an empty line"),
    (b"\r\n\r\n\r\n\r\n", 400, "not"),
])
def test_refusals_carry_a_specific_sentence_and_status(data: bytes, status: int,
                                                       sentence: str) -> None:
    error = refusal(data)
    assert error.status == status
    assert sentence in str(error)
    assert isinstance(error, ProtocolError) and error.code == "SIP_PARSE_ERROR"


def test_size_limits_answer_513() -> None:
    big = wire(OPTIONS_PING) + b"x" * 65535
    assert refusal(big).status == 513
    many = _swap(b"Content-Length: 0", b"X-A: 1\r\n" * 200 + b"Content-Length: 0")
    assert refusal(many).status == 513 and "more than 128 header fields" in str(refusal(many))
    assert parse_message(many, max_headers=300).headers.get("X-A") == "1"
    assert refusal(wire(SIPP_INVITE), max_header_bytes=200).status == 513
    assert refusal(wire(SIPP_INVITE), max_size=300).status == 513


# --------------------------------------------------------------------------- salvage


def test_salvage_reads_what_an_error_response_needs() -> None:
    data = _swap(b"Content-Length: 0", b"Content-Length: 99")
    request = salvage_request(data)
    assert request is not None and request.method == "OPTIONS"
    response = make_response(request, 400, str(refusal(data)))
    assert response.reason == "Content-Length says 99 bytes but 0 follow"
    assert response.headers.get("Call-ID") == "ODk3NjQ3MjY0ZDA5ZGNiYzA0"
    assert response.cseq == (1, "OPTIONS") and len(response.vias) == 1


def test_salvage_reads_compact_and_folded_fields() -> None:
    data = wire(TORTURE_WSINV).replace(b"SIP/2.0\r\n", b"SIP/9.0\r\n", 1)
    request = salvage_request(data)
    assert request is not None
    assert len(request.vias) == 3 and request.cseq == (9, "INVITE")


@pytest.mark.parametrize("data, kept", [
    (_swap(b"Call-ID: ODk3NjQ3MjY0ZDA5ZGNiYzA0\r\n", b""), ["From", "To"]),
    (_swap(b"Call-ID: ODk3NjQ3MjY0ZDA5ZGNiYzA0", b"Call-ID: "), ["From", "To"]),
    (_swap(b"From: <sip:ping@198.51.100.7:5060>", b"From: <sip:ping@"), ["To", "Call-ID"]),
    (_swap(b"To: <sip:gateway@203.0.113.5:5060>\r\n", b""), ["From", "Call-ID"]),
])
def test_salvage_keeps_what_can_be_read_of_from_to_and_call_id(
        data: bytes, kept: list[str]) -> None:
    """RFC 4475 §3.1.2.18: a request without Call-ID, From or To is still answered 400
    (its Via and CSeq carry the answer back to its transaction); what is missing or
    unreadable is left out of the answer."""
    request = salvage_request(data)
    assert request is not None and request.method == "OPTIONS"
    response = make_response(request, 400, "x", to_tag="t")
    names = {name for name, _ in response.headers}
    assert names == {"Via", "CSeq", *kept}
    if "To" in kept:
        assert response.to.tag == "t"


@pytest.mark.parametrize("data", [
    wire(CARRIER_200).replace(b"Content-Length: 194", b"Content-Length: 999"),
    _swap(b"CSeq: 1 OPTIONS\r\n", b""),
    _swap(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"),
    _swap(b"CSeq: 1 OPTIONS", b"CSeq: 1 ACK"),
    _swap(b"OPTIONS sip:", b"ACK sip:"),
    _swap(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0/UDP bad host"),
    b"\x00\x01garbage",
    b"",
])
def test_salvage_gives_up_when_no_answer_could_be_matched(data: bytes) -> None:
    assert salvage_request(data) is None


# --------------------------------------------------------------------------- building


def test_make_response_follows_8_2_6() -> None:
    request = parse_request(RFC3261_180.replace("SIP/2.0 180 Ringing",
                                                "INVITE sip:bob@biloxi.com SIP/2.0").replace(
        "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf", "To: Bob <sip:bob@biloxi.com>").replace(
        "Content-Length: 0", "Timestamp: 54\nContent-Length: 0"))
    ringing = make_response(request, 180, to_tag="b0b")
    assert ringing.reason == "Ringing"
    assert ringing.headers.get_lines("Via") == request.headers.get_lines("Via")
    assert ringing.headers.get("From") == request.headers.get("From")
    assert ringing.to.tag == "b0b" and ringing.to.uri == request.to.uri
    assert (ringing.call_id, ringing.cseq) == (request.call_id, request.cseq)
    assert "Timestamp" not in ringing.headers and "Record-Route" not in ringing.headers
    assert "Contact" not in ringing.headers
    trying = make_response(request, 100)
    assert trying.headers.get("Timestamp") == "54" and trying.to.tag is None
    ok = make_response(request, 200, "Fine", to_tag="b0b", body=b"v=0\r\n",
                       content_type="application/sdp",
                       headers=[("Contact", "<sip:gw@192.0.2.4>"),
                                *[("Record-Route", v) for v in
                                  request.headers.get_all("Record-Route")]])
    data = ok.serialize()
    assert data.startswith(b"SIP/2.0 200 Fine\r\n")
    assert data.endswith(b"Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n")
    assert [str(r.uri) for r in ok.record_routes] == [str(r.uri) for r in request.record_routes]


def test_make_response_keeps_an_existing_to_tag_and_sanitises_the_reason() -> None:
    bye = parse_request(COMPACT_BYE)
    response = make_response(bye, 200, to_tag="other")
    assert response.to.tag == "gw77"
    assert response.headers.get("To") == bye.headers.get("To")
    assert make_response(bye, 400, "bad\r\nVia: x\x00").reason == "bad  Via: x"
    assert make_response(bye, 299).reason == "Success"
    assert make_response(bye, 486).reason == "Busy Here" == reason_phrase(486)
    with pytest.raises(ValueError):
        make_response(bye, 700)


def test_make_cancel_follows_9_1() -> None:
    invite = parse_request(SIPP_INVITE)
    invite.headers.add("Route", "<sip:proxy.example.com;lr>")
    invite.headers.add("Via", "SIP/2.0/UDP other;branch=z9hG4bKlower")
    cancel = make_cancel(invite)
    assert cancel.method == "CANCEL" and cancel.uri == invite.uri
    assert cancel.headers.get_all("Via") == [invite.headers.get_all("Via")[0]]
    assert cancel.cseq == (1, "CANCEL")
    for name in ("From", "To", "Call-ID"):
        assert cancel.headers.get(name) == invite.headers.get(name)
    assert cancel.headers.get("Route") == "<sip:proxy.example.com;lr>"
    assert cancel.max_forwards == 70 and cancel.body == b""
    assert parse_message(cancel.serialize()).serialize() == cancel.serialize()


def test_identifiers() -> None:
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(b.startswith(MAGIC_COOKIE) and len(b) >= len(MAGIC_COOKIE) + 16 for b in branches)
    assert all(re.fullmatch(r"[0-9a-f]{16}", new_tag()) for _ in range(10))
    call_id = new_call_id("gw.example.com")
    assert call_id.endswith("@gw.example.com") and call_id != new_call_id("gw.example.com")


# --------------------------------------------------------------------------- fuzz

_SPECIALS = b' \t\r\n:;,<>"\\@[]=/%?&*.0z\x00\x7f\xff\xc3\xa9'


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        pos = rng.randrange(len(out) + 1)
        kind = rng.randrange(8)
        if kind == 0 and out:
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif kind == 1:
            out[pos:pos] = bytes([rng.choice(_SPECIALS)])
        elif kind == 2:
            del out[pos:pos + rng.randint(1, 8)]
        elif kind == 3:
            del out[pos:]
        elif kind == 4:
            out[pos:pos] = bytes(rng.choice(_SPECIALS) for _ in range(rng.randint(1, 8)))
        elif kind == 5:  # duplicate a line
            lines = bytes(out).split(b"\r\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
            out = bytearray(b"\r\n".join(lines))
        elif kind == 6:  # swap two lines
            lines = bytes(out).split(b"\r\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            out = bytearray(b"\r\n".join(lines))
        else:
            out[pos:pos] = rng.randbytes(rng.randint(1, 16))
    return bytes(out)


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_only_sip_parse_errors(seed: int) -> None:
    rng = random.Random(seed)
    samples = [wire(text) for text in ALL.values()]
    accepted = 0
    for _ in range(1500):
        data = _mutate(rng, rng.choice(samples)) if rng.random() < 0.95 else rng.randbytes(
            rng.randint(0, 300))
        salvaged = salvage_request(data)  # never raises either
        if salvaged is not None:
            make_response(salvaged, 400, "x").serialize()
        try:
            message = parse_message(data)
        except SipParseError as error:
            assert 400 <= error.status <= 599 and str(error)
            continue
        accepted += 1
        # An accepted message is whole: its shortcuts read, and it writes back the same.
        message.call_id, message.cseq, message.from_, message.to, message.top_via  # noqa: B018
        message.contacts, message.routes, message.record_routes, message.max_forwards  # noqa: B018
        written = message.serialize()
        again = parse_message(written)
        assert again.serialize() == written
        if isinstance(message, SipRequest):
            make_response(message, 200, to_tag="t").serialize()
    assert accepted > 50  # the mutations leave some messages readable
