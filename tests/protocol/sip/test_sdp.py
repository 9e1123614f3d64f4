from __future__ import annotations

import pytest

from telcoflow.protocol.sip import sdp
from telcoflow.protocol.sip.errors import SdpError, SipError
from telcoflow.protocol.sip.sdp import Direction, Negotiated, parse_sdp

LOCAL = ("10.0.0.5", 40000)


def crlf(text: str) -> bytes:
    return "".join(line.strip() + "\r\n" for line in text.strip().splitlines()).encode()


# What SIPp's uac scenario sends (its [media_ip]/[media_port] filled in).
SIPP_UAC = crlf("""
    v=0
    o=user1 53655765 2353687637 IN IP4 127.0.0.1
    s=-
    c=IN IP4 127.0.0.1
    t=0 0
    m=audio 6000 RTP/AVP 0
    a=rtpmap:0 PCMU/8000
""")

# SIPp's uac_pcap scenario: PCMA and telephone-event with a sparse event list.
SIPP_PCAP = crlf("""
    v=0
    o=user1 53655765 2353687637 IN IP4 192.0.2.7
    s=-
    c=IN IP4 192.0.2.7
    t=0 0
    m=audio 6000 RTP/AVP 8 101
    a=rtpmap:8 PCMA/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-11,16
""")

# baresip with its default audio codecs and a video stream.
BARESIP = crlf("""
    v=0
    o=- 1280590347 3086052431 IN IP4 192.168.1.10
    s=-
    c=IN IP4 192.168.1.10
    t=0 0
    m=audio 10002 RTP/AVP 96 9 0 8 101
    b=AS:64
    a=rtpmap:96 opus/48000/2
    a=fmtp:96 stereo=1;sprop-stereo=1
    a=rtpmap:9 G722/8000
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-15
    a=sendrecv
    a=label:1
    a=rtcp-rsize
    a=ptime:20
    m=video 10004 RTP/AVP 97
    a=rtpmap:97 H264/90000
    a=fmtp:97 packetization-mode=0
""")


def offer_with(media: str, session: str = "", conn: str = "c=IN IP4 192.0.2.1") -> bytes:
    return crlf(f"""
        v=0
        o=- 1 1 IN IP4 192.0.2.1
        s=-
        {conn}
        t=0 0
        {session}
        {media}
    """)


def _answer(body: bytes, **kw: object) -> tuple[sdp.SessionDescription, Negotiated]:
    return sdp.answer(parse_sdp(body), *LOCAL, 7, 1, **kw)  # type: ignore[arg-type]


def test_sipp_uac_offer_answered_exactly() -> None:
    ans, neg = _answer(SIPP_UAC)
    assert ans.to_bytes() == crlf("""
        v=0
        o=- 7 1 IN IP4 10.0.0.5
        s=telcoflow
        c=IN IP4 10.0.0.5
        t=0 0
        m=audio 40000 RTP/AVP 0
        a=rtpmap:0 PCMU/8000
        a=ptime:20
        a=sendrecv
    """)
    assert neg == Negotiated(
        remote_address="127.0.0.1", remote_port=6000, codec="PCMU", payload_type=0,
        telephone_event=None, direction=Direction.SENDRECV, ptime=None, recv_payload_type=0,
        recv_telephone_event=None)
    assert neg.may_send and neg.may_receive and neg.engine_codec == "pcmu"


def test_static_payload_type_without_rtpmap() -> None:
    ans, neg = _answer(offer_with("m=audio 5004 RTP/AVP 8 0"))
    assert (neg.codec, neg.payload_type) == ("PCMA", 8)
    assert ans.media[0].formats == ("8",)


def test_sipp_pcap_offer_keeps_telephone_event_and_narrows_its_events() -> None:
    ans, neg = _answer(SIPP_PCAP)
    assert (neg.codec, neg.payload_type, neg.telephone_event) == ("PCMA", 8, 101)
    assert neg.dtmf_events == frozenset(range(12))
    m = ans.media[0]
    assert m.formats == ("8", "101") and m.fmtp(101) == "0-11"
    assert m.rtpmap(101) == sdp.RtpMap(101, "telephone-event", 8000)


def test_baresip_offer_first_supported_codec_in_offer_order() -> None:
    offer = parse_sdp(BARESIP)
    ans, neg = sdp.answer(offer, *LOCAL, 7, 1)
    assert (neg.codec, neg.payload_type, neg.telephone_event, neg.ptime) == ("PCMU", 0, 101, 20)
    assert [(m.media, m.port) for m in ans.media] == [("audio", 40000), ("video", 0)]
    assert ans.media[1].protocol == "RTP/AVP" and ans.media[1].formats == ("97",)
    assert (neg.remote_address, neg.remote_port) == ("192.168.1.10", 10002)
    _, neg = sdp.answer(offer, *LOCAL, 7, 1, codecs=("PCMA",))
    assert (neg.codec, neg.payload_type) == ("PCMA", 8)


def test_dynamic_payload_type_for_pcmu_and_case_insensitive_names() -> None:
    body = offer_with("m=audio 5004 RTP/AVP 96 97\na=rtpmap:96 pcmu/8000\n"
                      "a=rtpmap:97 Telephone-Event/8000")
    _, neg = _answer(body)
    assert (neg.codec, neg.payload_type, neg.telephone_event) == ("PCMU", 96, 97)
    assert neg.dtmf_events == frozenset(range(16))  # no fmtp: 0-15


@pytest.mark.parametrize("media, te", [
    ("m=audio 5004 RTP/AVP 0 101\na=rtpmap:101 telephone-event/48000", None),
    ("m=audio 5004 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\na=fmtp:101 16", None),
    ("m=audio 5004 RTP/AVP 0 100 101\na=rtpmap:100 telephone-event/48000\n"
     "a=rtpmap:101 telephone-event/8000", 101),
])
def test_telephone_event_only_at_8000_with_common_events(media: str, te: int | None) -> None:
    ans, neg = _answer(offer_with(media))
    assert neg.telephone_event == te
    assert ans.media[0].formats == (("0",) if te is None else ("0", str(te)))


@pytest.mark.parametrize("attr, session_attr, conn, ours, answered", [
    ("a=sendonly", "", "192.0.2.1", Direction.RECVONLY, "recvonly"),
    ("a=inactive", "", "192.0.2.1", Direction.INACTIVE, "inactive"),
    ("a=recvonly", "", "192.0.2.1", Direction.SENDONLY, "sendonly"),
    ("", "a=sendonly", "192.0.2.1", Direction.RECVONLY, "recvonly"),
    ("a=sendrecv", "a=inactive", "192.0.2.1", Direction.SENDRECV, "sendrecv"),
    ("", "", "0.0.0.0", Direction.RECVONLY, "recvonly"),
    ("a=recvonly", "", "0.0.0.0", Direction.INACTIVE, "inactive"),
])
def test_hold_offers_mirrored(attr: str, session_attr: str, conn: str, ours: Direction,
                              answered: str) -> None:
    body = offer_with(f"m=audio 5004 RTP/AVP 0\n{attr}", session_attr, f"c=IN IP4 {conn}")
    ans, neg = _answer(body)
    assert neg.direction is ours and ans.media[0].direction is Direction(answered)
    assert f"a={answered}\r\n".encode() in ans.to_bytes()
    assert neg.may_send is ours.sends and neg.may_receive is ours.receives
    if conn == "0.0.0.0":
        assert neg.remote_address == "0.0.0.0" and not neg.may_send


def test_we_hold_the_remote_by_answering_sendonly() -> None:
    ans, neg = _answer(SIPP_UAC, direction=Direction.SENDONLY)
    assert neg.direction is Direction.SENDONLY and neg.may_send and not neg.may_receive
    _, neg = _answer(offer_with("m=audio 5004 RTP/AVP 0\na=sendonly"),
                     direction=Direction.SENDONLY)
    assert neg.direction is Direction.INACTIVE


@pytest.mark.parametrize("media, sentence", [
    ("m=audio 5004 RTP/AVP 18 96\na=rtpmap:96 opus/48000/2",
     "audio stream 0 offers G729/8000, opus/48000/2; we speak PCMU/8000, PCMA/8000"),
    ("m=audio 5004 RTP/AVP 97\n", "97 \\(no rtpmap\\)"),
    ("m=audio 5004 RTP/AVP 0\na=rtpmap:0 PCMU/8000/2", "PCMU/8000/2"),
    ("m=audio 5004 RTP/SAVP 0", "uses RTP/SAVP; we only speak RTP/AVP"),
    ("m=video 5004 RTP/AVP 97", "the offer has no audio stream"),
    ("m=audio 0 RTP/AVP 0", "the offer has no audio stream"),
    ("", "the offer has no audio stream"),
])
def test_nothing_acceptable_is_488(media: str, sentence: str) -> None:
    with pytest.raises(SdpError, match=sentence) as info:
        _answer(offer_with(media))
    assert info.value.status == 488 and isinstance(info.value, SipError)


def test_no_common_codec_when_we_restrict_codecs() -> None:
    with pytest.raises(SdpError) as info:
        _answer(SIPP_PCAP, codecs=("PCMU",))
    assert info.value.status == 488 and "we speak PCMU/8000" in info.value.message


def test_first_acceptable_audio_stream_of_several() -> None:
    body = offer_with("m=audio 5004 RTP/SAVP 0\nm=audio 5006 RTP/AVP 18\n"
                      "m=audio 5008 RTP/AVP 8\nc=IN IP4 192.0.2.9\nm=audio 5010 RTP/AVP 0")
    ans, neg = _answer(body)
    assert neg.media_index == 2 and (neg.remote_address, neg.remote_port) == ("192.0.2.9", 5008)
    assert [m.port for m in ans.media] == [0, 0, 40000, 0]
    assert [m.protocol for m in ans.media] == ["RTP/SAVP", "RTP/AVP", "RTP/AVP", "RTP/AVP"]


@pytest.mark.parametrize("ptime, answered, negotiated", [
    ("a=ptime:30", 30, 30), ("", 20, None), ("a=ptime:20.0", 20, 20),
])
def test_ptime_repeated_from_the_offer(ptime: str, answered: int, negotiated: int | None) -> None:
    ans, neg = _answer(offer_with(f"m=audio 5004 RTP/AVP 0\n{ptime}\na=maxptime:60"))
    assert ans.media[0].ptime == answered and neg.ptime == negotiated


def test_ipv6() -> None:
    body = crlf("""
        v=0
        o=- 1 1 IN IP6 2001:db8::1
        s=-
        c=IN IP6 2001:db8::1
        t=0 0
        m=audio 5004 RTP/AVP 0
    """)
    ans, neg = sdp.answer(parse_sdp(body), "2001:db8::5", 4000, 1, 1)
    assert neg.remote_address == "2001:db8::1"
    assert b"c=IN IP6 2001:db8::5\r\n" in ans.to_bytes()
    assert b"o=- 1 1 IN IP6 2001:db8::5\r\n" in ans.to_bytes()


BROKEN = [
    (b"", "empty"),
    (b"o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n", "must start with 'v=0'"),
    (b"v=1\r\n", "must start with 'v=0'"),
    (b"v=0\r\ns=-\r\n", "no o= line"),
    (b"v=0\r\no=- 1 IN IP4 1.2.3.4\r\n", "o= needs six fields"),
    (b"v=0\r\no=- 1 x IN IP4 1.2.3.4\r\n", "session version must be a number"),
    (b"v=0\r\no=- 1 1 IN IP4 a\r\no=- 1 1 IN IP4 a\r\n", "more than one o="),
    (offer_with("m=audio 5004 RTP/AVP 0") + b"garbage\r\n", "line 7 is not '<letter>=<value>'"),
    (offer_with("m=audio 5004 RTP/AVP 0") + b"A=b\r\n", "is not '<letter>=<value>'"),
    (b"v=0\r\no=- 1 1 IN IP4 a\r\nv=0\r\n", "line 3 is a second v= line"),
    (offer_with("m=audio 5004 RTP/AVP 0") + b"v=0\r\n", "\\(v=\\) cannot appear inside"),
    (offer_with("m=audio 5004 RTP/AVP 0") + b"t=0 0\r\n", "cannot appear inside an m="),
    (offer_with("m=audio x RTP/AVP 0"), "m= port must be a number"),
    (offer_with("m=audio 70000 RTP/AVP 0"), "m= port must be in 0..65535"),
    (offer_with("m=audio 5004/0 RTP/AVP 0"), "port count must be in"),
    (offer_with("m=audio 5004 RTP/AVP"), "m= needs"),
    (offer_with("m=audio 5004 RTP/AVP PCMU"), "payload type in m= must be a number"),
    (offer_with("m=audio 5004 RTP/AVP 200"), "payload type in m= must be in 0..127"),
    (offer_with("m=audio 5004 RTP/AVP 0\na=rtpmap:0 PCMU"), "a=rtpmap needs"),
    (offer_with("m=audio 5004 RTP/AVP 0\na=rtpmap:x PCMU/8000"), "rtpmap payload type"),
    (offer_with("m=audio 5004 RTP/AVP 0\na=rtpmap:0 PCMU/fast"), "clock rate must be"),
    (offer_with("m=audio 5004 RTP/AVP 0\na=fmtp:"), "a=fmtp needs"),
    (offer_with("m=audio 5004 RTP/AVP 0\na=ptime:twenty"), "a=ptime must be a number"),
    (offer_with("m=audio 5004 RTP/AVP 0\na=ptime:20.5"), "whole number of milliseconds"),
    (offer_with("m=audio 5004 RTP/AVP 0\na=maxptime:0"), "a=maxptime must be in"),
    (offer_with("m=audio 5004 RTP/AVP 0", conn="c=IN IP4"), "c= needs"),
    (offer_with("m=audio 5004 RTP/AVP 0", conn=""), "has no c= line"),
    (b"v=0\r\no=- 1 1 IN IP4 \xff\r\n", "not UTF-8"),
    (b"v=0\r\n" + b"a=x\r\n" * 5000, "over the 16384 limit"),
]


@pytest.mark.parametrize("body, sentence", BROKEN)
def test_malformed_bodies_are_400(body: bytes, sentence: str) -> None:
    with pytest.raises(SdpError, match=sentence) as info:
        _answer(body)
    assert info.value.status == 400


def test_port_zero_stream_needs_no_connection_and_lf_lines_are_read() -> None:
    body = b"v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=video 0 RTP/AVP 31\n" \
           b"m=audio 5004 RTP/AVP 0\nc=IN IP4 192.0.2.3\n\n"
    ans, neg = _answer(body)
    assert neg.media_index == 1 and ans.media[0].port == 0


def test_parse_keeps_what_it_does_not_interpret() -> None:
    body = crlf("""
        v=0
        o=- 1 2 IN IP4 192.0.2.1
        s=call
        i=info
        u=http://example.com/
        c=IN IP4 192.0.2.1
        b=CT:128
        t=0 0
        r=7d 1h 0 25h
        a=tool:sipp
        a=group:BUNDLE 0
        m=audio 5004 RTP/AVP 0 13
        i=voice
        b=AS:80
        a=rtpmap:13 CN/8000
        a=ssrc:1234 cname:x
        a=rtcp-mux
        a=recvonly
    """)
    d = parse_sdp(body)
    assert d.lines == (("i", "info"), ("u", "http://example.com/"), ("b", "CT:128"),
                       ("r", "7d 1h 0 25h"))
    assert d.attributes == (("tool", "sipp"), ("group", "BUNDLE 0"))
    m = d.media[0]
    assert m.attributes == (("ssrc", "1234 cname:x"), ("rtcp-mux", None))
    assert m.lines == (("i", "voice"), ("b", "AS:80")) and m.direction is Direction.RECVONLY
    assert m.rtpmap(0) == sdp.RtpMap(0, "PCMU", 8000) and m.rtpmap(13) == sdp.RtpMap(13, "CN", 8000)
    assert m.rtpmap(111) is None and m.fmtp(0) is None
    assert parse_sdp(d.to_bytes()) == d
    assert bytes(d) == d.to_bytes()


@pytest.mark.parametrize("body", [SIPP_UAC, SIPP_PCAP, BARESIP])
def test_round_trips(body: bytes) -> None:
    d = parse_sdp(body)
    assert parse_sdp(d.to_bytes()) == d
    assert parse_sdp(body.decode()) == d
    ans, _ = sdp.answer(d, *LOCAL, 7, 1)
    assert parse_sdp(ans.to_bytes()) == ans
    assert parse_sdp(ans.to_bytes()).to_bytes() == ans.to_bytes()


def test_our_written_offer_is_canonical_text() -> None:
    body = sdp.offer(*LOCAL, 99, 3).to_bytes()
    assert body == crlf("""
        v=0
        o=- 99 3 IN IP4 10.0.0.5
        s=telcoflow
        c=IN IP4 10.0.0.5
        t=0 0
        m=audio 40000 RTP/AVP 0 8 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-15
        a=ptime:20
        a=sendrecv
    """)
    assert parse_sdp(body).to_bytes() == body


# ── our offers ──────────────────────────────────────────────────────────────

def test_offer_answer_accept_between_two_of_us() -> None:
    ours = sdp.offer("10.0.0.5", 40000, 1, 1, codecs=("PCMA", "PCMU"))
    theirs, their_view = sdp.answer(parse_sdp(ours.to_bytes()), "10.0.0.9", 50000, 2, 1)
    neg = sdp.accept_answer(ours, parse_sdp(theirs.to_bytes()))
    assert (neg.codec, neg.payload_type, neg.telephone_event) == ("PCMA", 8, 101)
    assert (neg.remote_address, neg.remote_port, neg.direction) == (
        "10.0.0.9", 50000, Direction.SENDRECV)
    assert (their_view.remote_address, their_view.remote_port) == ("10.0.0.5", 40000)


def answer_with(media: str, conn: str = "c=IN IP4 192.0.2.50") -> sdp.SessionDescription:
    return parse_sdp(offer_with(media, conn=conn))


def test_accept_answer_uses_the_answers_numbers_to_send() -> None:
    ours = sdp.offer(*LOCAL, 1, 1)
    neg = sdp.accept_answer(ours, answer_with(
        "m=audio 7078 RTP/AVP 8 96\na=rtpmap:96 telephone-event/8000\na=fmtp:96 0-11\n"
        "a=ptime:30"))
    assert (neg.payload_type, neg.recv_payload_type) == (8, 8)
    assert (neg.telephone_event, neg.recv_telephone_event) == (96, 101)
    assert neg.dtmf_events == frozenset(range(12)) and neg.ptime == 30
    assert (neg.remote_address, neg.remote_port) == ("192.0.2.50", 7078)


def test_accept_answer_without_telephone_event() -> None:
    neg = sdp.accept_answer(sdp.offer(*LOCAL, 1, 1), answer_with("m=audio 7078 RTP/AVP 0"))
    assert neg.telephone_event is None and neg.recv_telephone_event is None


@pytest.mark.parametrize("offered, answered, ours", [
    (Direction.SENDRECV, "a=recvonly", Direction.SENDONLY),
    (Direction.SENDRECV, "a=sendonly", Direction.RECVONLY),
    (Direction.SENDONLY, "a=recvonly", Direction.SENDONLY),
    (Direction.SENDONLY, "a=inactive", Direction.INACTIVE),
    (Direction.INACTIVE, "a=inactive", Direction.INACTIVE),
    # answers RFC 3264 does not allow still cannot widen what we offered
    (Direction.SENDONLY, "a=sendrecv", Direction.SENDONLY),
    (Direction.RECVONLY, "a=sendrecv", Direction.RECVONLY),
])
def test_accept_answer_directions(offered: Direction, answered: str, ours: Direction) -> None:
    neg = sdp.accept_answer(sdp.offer(*LOCAL, 1, 1, direction=offered),
                            answer_with(f"m=audio 7078 RTP/AVP 0\n{answered}"))
    assert neg.direction is ours


def test_accept_answer_with_old_style_hold_address() -> None:
    neg = sdp.accept_answer(sdp.offer(*LOCAL, 1, 1),
                            answer_with("m=audio 7078 RTP/AVP 0", conn="c=IN IP4 0.0.0.0"))
    assert not neg.may_send and neg.may_receive


@pytest.mark.parametrize("media, status, sentence", [
    ("m=audio 0 RTP/AVP 0", 488, "rejected our audio stream"),
    ("m=audio 7078 RTP/AVP 18", 488, "none of our codecs: G729/8000"),
    ("m=audio 7078 RTP/AVP 0\nm=video 0 RTP/AVP 31", 400, "2 m= lines for the offer's 1"),
    ("m=video 7078 RTP/AVP 0", 400, "not our audio RTP/AVP stream"),
])
def test_accept_answer_refusals(media: str, status: int, sentence: str) -> None:
    with pytest.raises(SdpError, match=sentence) as info:
        sdp.accept_answer(sdp.offer(*LOCAL, 1, 1), answer_with(media))
    assert info.value.status == status


def test_accept_answer_ignores_a_codec_we_did_not_offer() -> None:
    ours = sdp.offer(*LOCAL, 1, 1, codecs=("PCMU",))
    with pytest.raises(SdpError) as info:
        sdp.accept_answer(ours, answer_with("m=audio 7078 RTP/AVP 8"))
    assert info.value.status == 488


def test_offer_options_checked() -> None:
    with pytest.raises(ValueError):
        sdp.offer(*LOCAL, 1, 1, codecs=("G729",))
    with pytest.raises(ValueError):
        sdp.offer(*LOCAL, 1, 1, codecs=())
    with pytest.raises(ValueError):
        sdp.offer(*LOCAL, 1, 1, telephone_event=8)
    off = sdp.offer(*LOCAL, 1, 1, telephone_event=None, direction=Direction.SENDONLY)
    assert off.media[0].formats == ("0", "8") and off.media[0].direction is Direction.SENDONLY


# ── versions ────────────────────────────────────────────────────────────────

def test_session_version_increments_only_on_change() -> None:
    first = sdp.offer(*LOCAL, 555, 1)
    assert sdp.next_version(None, first) is first
    same = sdp.offer(*LOCAL, 999, 42)  # same media, any id/version
    assert sdp.next_version(first, same) is first
    held = sdp.next_version(first, sdp.offer(*LOCAL, 999, 42, direction=Direction.SENDONLY))
    assert (held.origin.session_id, held.origin.version) == ("555", 2)
    assert held.media[0].direction is Direction.SENDONLY
    resumed = sdp.next_version(held, sdp.offer(*LOCAL, 0, 0))
    assert resumed.origin.version == 3


def test_reinvite_answer_versions() -> None:
    first, _ = _answer(BARESIP)
    again, _ = sdp.answer(parse_sdp(BARESIP), *LOCAL, 7, 1)
    assert sdp.next_version(first, again) is first
    hold = BARESIP.replace(b"a=sendrecv", b"a=sendonly")
    changed, neg = sdp.answer(parse_sdp(hold), *LOCAL, 7, 1)
    assert sdp.next_version(first, changed).origin.version == 2 and not neg.may_send


def test_remote_changed() -> None:
    a = parse_sdp(BARESIP)
    assert sdp.remote_changed(None, a)
    assert not sdp.remote_changed(a, parse_sdp(BARESIP))
    bumped = parse_sdp(BARESIP.replace(b"3086052431", b"3086052432"))
    assert sdp.remote_changed(a, bumped)


def test_direction_algebra() -> None:
    for d in Direction:
        assert d.reversed().reversed() is d
        assert Direction.of(d.sends, d.receives) is d
        assert d & Direction.SENDRECV is d and d & Direction.INACTIVE is Direction.INACTIVE
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.SENDONLY & Direction.RECVONLY is Direction.INACTIVE
