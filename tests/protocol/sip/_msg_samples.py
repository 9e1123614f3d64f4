"""Real-world SIP messages for the message and transaction tests.

Written as text with ``\\n`` line ends; :func:`wire` turns them into datagrams
(CRLF, and ``{length}`` replaced by the body's length).
"""

from __future__ import annotations


def wire(text: str, *, crlf: bool = True) -> bytes:
    """A datagram from a sample: CRLF line ends, ``{length}`` = the body's byte length."""
    head, sep, body = text.partition("\n\n")
    eol = "\r\n" if crlf else "\n"
    body_bytes = body.replace("\n", eol).encode()
    head = head.replace("{length}", str(len(body_bytes)))
    return (head.replace("\n", eol) + eol + eol).encode() + body_bytes


# SIPp's built-in "uac" scenario, as it goes out (sipp -sn uac).
SIPP_INVITE = """\
INVITE sip:service@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-3954-1-0
From: sipp <sip:sipp@127.0.1.1:5061>;tag=3954SIPpTag001
To: service <sip:service@127.0.0.1:5060>
Call-ID: 1-3954@127.0.1.1
CSeq: 1 INVITE
Contact: sip:sipp@127.0.1.1:5061
Max-Forwards: 70
Subject: Performance Test
Content-Type: application/sdp
Content-Length: {length}

v=0
o=user1 53655765 2353687637 IN IP4 127.0.1.1
s=-
c=IN IP4 127.0.1.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

# baresip 3.x calling a gateway: rport, Allow/Supported lists, a transport URI parameter.
BARESIP_INVITE = """\
INVITE sip:agent@192.168.1.10 SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK8d1e8b0b7c9a4f2e;rport
Contact: <sip:bob-0x55d5c2a8@192.168.1.20:5060;transport=udp>
Max-Forwards: 70
To: <sip:agent@192.168.1.10>
From: "Bob" <sip:bob@example.com>;tag=a7f1b3c9d2e84f10
Call-ID: 3b4b6c9e8f2a1d7c
CSeq: 32981 INVITE
User-Agent: baresip v3.10.1 (x86_64/Linux)
Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER
Supported: replaces,norefersub,100rel
Content-Type: application/sdp
Content-Length: {length}

v=0
o=- 1897318436 2373843592 IN IP4 192.168.1.20
s=-
c=IN IP4 192.168.1.20
t=0 0
m=audio 10132 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
"""

# RFC 3261 §24.2, F8: Bob's 180 on its way back through two proxies.
RFC3261_180 = """\
SIP/2.0 180 Ringing
Via: SIP/2.0/UDP server10.biloxi.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3
Via: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1
Record-Route: <sip:server10.biloxi.com;lr>, <sip:bigbox3.site3.atlanta.com;lr>
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.com
Contact: <sip:bob@192.0.2.4>
CSeq: 314159 INVITE
Content-Length: 0

"""

# A carrier's 200 OK with SDP, answering our INVITE (one Via: ours).
CARRIER_200 = """\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKgw0001;rport=5060;received=203.0.113.5
Record-Route: <sip:198.51.100.7;lr;ftag=gw-tag-1>
From: "Gateway" <sip:gateway@203.0.113.5>;tag=gw-tag-1
To: <sip:+15551230000@carrier.example.net>;tag=as5f3e2a1b
Call-ID: 6f1c2b3a4d5e6f70@203.0.113.5
CSeq: 1 INVITE
Contact: <sip:+15551230000@198.51.100.9:5060>
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY
Supported: replaces, timer
Content-Type: application/sdp
Content-Length: {length}

v=0
o=root 1234 1235 IN IP4 198.51.100.9
s=carrier
c=IN IP4 198.51.100.9
t=0 0
m=audio 17828 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=ptime:20
a=sendrecv
"""

# A trunk's OPTIONS keep-alive.
OPTIONS_PING = """\
OPTIONS sip:gateway@203.0.113.5:5060 SIP/2.0
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-524287-1---c4f1b0a5c6fd1a4e;rport
Max-Forwards: 70
Contact: <sip:ping@198.51.100.7:5060>
To: <sip:gateway@203.0.113.5:5060>
From: <sip:ping@198.51.100.7:5060>;tag=c3a6b7e1
Call-ID: ODk3NjQ3MjY0ZDA5ZGNiYzA0
CSeq: 1 OPTIONS
User-Agent: Zoiper rv2.10.20.2
Content-Length: 0

"""

# RFC 4475 §3.1.1.1 ("wsinv"): odd case, whitespace, folding, compact forms, a
# comma-separated Via list and escapes in quoted strings.
TORTURE_WSINV = """\
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : {length}
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
"""

# Compact forms throughout, as some phones send them to fit a UDP datagram.
COMPACT_BYE = """\
BYE sip:agent@192.168.1.10:5060 SIP/2.0
v: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKcompact1;rport
f: <sip:bob@example.com>;tag=a7f1b3c9d2e84f10
t: <sip:agent@192.168.1.10>;tag=gw77
i: 3b4b6c9e8f2a1d7c
CSeq: 32982 BYE
m: <sip:bob@192.168.1.20>
k: timer
l: 0

"""

# RFC 5118 §4.1-style REGISTER over IPv6.
IPV6_REGISTER = """\
REGISTER sip:[2001:db8::10] SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=81x2
Via: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3-111;rport
Call-ID: SSG9559905523997077@hlau_4100
Max-Forwards: 70
Contact: "Caller" <sip:caller@[2001:db8::1]:5070>
CSeq: 98176 REGISTER
Content-Length: 0

"""

# A 100 with no reason phrase at all and extra spaces.
BARE_100 = """\
SIP/2.0   100
Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKgw0001;rport=5060
From: <sip:gateway@203.0.113.5>;tag=gw-tag-1
To: <sip:+15551230000@carrier.example.net>
Call-ID: 6f1c2b3a4d5e6f70@203.0.113.5
CSeq: 1 INVITE
Content-Length: 0

"""

ALL = {
    "sipp_invite": SIPP_INVITE,
    "baresip_invite": BARESIP_INVITE,
    "rfc3261_180": RFC3261_180,
    "carrier_200": CARRIER_200,
    "options_ping": OPTIONS_PING,
    "torture_wsinv": TORTURE_WSINV,
    "compact_bye": COMPACT_BYE,
    "ipv6_register": IPV6_REGISTER,
    "bare_100": BARE_100,
}
