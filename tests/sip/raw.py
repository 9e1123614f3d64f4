"""The test as the gateway's SIP peer: hand-written requests on a plain UDP socket,
an SDP offer, and RTP from sockets of its own.

Nothing here uses the gateway's SIP code. What the gateway sends is read with
the few rules a peer needs (start line, header fields, body), so a test sees
the bytes on the wire rather than what our own parser makes of them.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np

from telcoflow.audio import g711

HOST = "127.0.0.1"
WAIT = 2.0  # how long an answer may take, at most
PTIME = 0.02
FRAME = 160  # samples (and G.711 bytes) per 20 ms packet

Addr = tuple[str, int]


# ── SIP messages ────────────────────────────────────────────────────────────

@dataclass
class Message:
    """One SIP message the gateway sent us."""

    data: bytes
    start: str
    fields: list[tuple[str, str]]  # (name in lower case, value), in order
    body: bytes
    addr: Addr

    @classmethod
    def parse(cls, data: bytes, addr: Addr) -> Message:
        head, _, body = data.partition(b"\r\n\r\n")
        start, *lines = head.decode("utf-8", "replace").split("\r\n")
        fields = [(name.strip().lower(), value.strip())
                  for name, _, value in (line.partition(":") for line in lines)]
        return cls(data, start, fields, body, addr)

    @property
    def status(self) -> int | None:
        """The status code of a response; None for a request."""
        return int(self.start.split()[1]) if self.start.startswith("SIP/2.0 ") else None

    @property
    def reason(self) -> str:
        return self.start.split(" ", 2)[2] if self.status is not None else ""

    @property
    def method(self) -> str | None:
        """The method of a request; None for a response."""
        return None if self.status is not None else self.start.split()[0]

    def header(self, name: str) -> str | None:
        values = self.headers(name)
        return values[0] if values else None

    def headers(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name.lower()]

    @property
    def cseq(self) -> tuple[int, str]:
        number, method = (self.header("CSeq") or "0 ?").split()
        return int(number), method

    def tag(self, name: str = "To") -> str | None:
        match = re.search(r";\s*tag=([^;>\s]+)", self.header(name) or "")
        return match.group(1) if match else None

    def __str__(self) -> str:
        return self.data.decode("utf-8", "replace")


def build(start: str, fields: Iterable[tuple[str, str]], body: bytes = b"", *,
          content_length: int | None = None) -> bytes:
    """A SIP message: ``start``, the fields as given, Content-Length (the body's
    own unless told otherwise, none for -1), the body."""
    lines = [start, *(f"{name}: {value}" for name, value in fields)]
    if content_length != -1:
        lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def uri_of(name_addr: str) -> str:
    match = re.search(r"<([^>]+)>", name_addr)
    return match.group(1) if match else name_addr.split(";")[0].strip()


# ── the socket ──────────────────────────────────────────────────────────────

class SipPeer(asyncio.DatagramProtocol):
    """A UDP socket that talks to the gateway; what arrives waits in an inbox until a
    test takes it (in order, by what it is looking for)."""

    def __init__(self, gateway: Addr) -> None:
        self.gateway = gateway
        self.transport: asyncio.DatagramTransport | None = None
        self._inbox: list[Message] = []
        self._arrived = asyncio.Event()

    @classmethod
    @asynccontextmanager
    async def open(cls, gateway: Addr, host: str = HOST) -> AsyncIterator[SipPeer]:
        peer = cls(gateway)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: peer,
                                                                  local_addr=(host, 0))
        try:
            yield peer
        finally:
            assert peer.transport is not None
            peer.transport.close()

    @property
    def addr(self) -> Addr:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        if data.strip():
            self._inbox.append(Message.parse(data, (addr[0], addr[1])))
            self._arrived.set()

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.gateway)

    async def expect(self, match: Callable[[Message], bool], what: str,
                     timeout: float = WAIT) -> Message:
        """The first message that ``match`` accepts, taken from the inbox (waiting
        up to ``timeout`` for it); the others stay there."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for i, message in enumerate(self._inbox):
                        if match(message):
                            return self._inbox.pop(i)
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            seen = "\n---\n".join(m.start for m in self._inbox) or "nothing"
            raise AssertionError(f"no {what} within {timeout} s; the inbox holds:\n{seen}"
                                 ) from None

    async def response(self, cseq: tuple[int, str], *, final: bool = True,
                       timeout: float = WAIT) -> Message:
        """The next response to the request with ``cseq`` (a final one unless told)."""
        def match(m: Message) -> bool:
            return (m.status is not None and m.cseq == cseq
                    and (m.status >= 200 or not final))
        return await self.expect(match, f"{'final ' if final else ''}response to {cseq}",
                                 timeout)

    async def request(self, method: str, timeout: float = WAIT) -> Message:
        return await self.expect(lambda m: m.method == method, f"{method} request", timeout)

    async def nothing(self, seconds: float, match: Callable[[Message], bool] = lambda m: True,
                      what: str = "message") -> None:
        """Assert that no message ``match`` accepts comes within ``seconds`` (an absence
        is only seen over time)."""
        try:
            found = await self.expect(match, what, seconds)
        except AssertionError:
            return
        raise AssertionError(f"an unexpected {what}:\n{found}")

    def respond(self, request: Message, status: int, reason: str = "OK") -> None:
        """Our response to a request of the gateway's (RFC 3261 §8.2.6: its Via, From,
        To, Call-ID and CSeq copied; a To tag of ours if it had none)."""
        to = request.header("To") or ""
        if request.tag("To") is None:
            to += f";tag={secrets.token_hex(4)}"
        fields = [*(("Via", via) for via in request.headers("Via")),
                  ("From", request.header("From") or ""), ("To", to),
                  ("Call-ID", request.header("Call-ID") or ""),
                  ("CSeq", request.header("CSeq") or "")]
        assert self.transport is not None
        self.transport.sendto(build(f"SIP/2.0 {status} {reason}", fields), request.addr)


# ── one call, from our side ─────────────────────────────────────────────────

@dataclass
class Dialog:
    """The identifiers every request of one call of ours carries, and the requests."""

    peer: SipPeer
    number: str
    caller: str = "+15550001"
    call_id: str = field(default_factory=lambda: f"{secrets.token_hex(8)}@{HOST}")
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    cseq: int = 1
    remote_tag: str | None = None
    target: str = ""          # the Request-URI: the gateway's Contact once it answered
    invite_branch: str = ""

    def __post_init__(self) -> None:
        if not self.target:
            self.target = "sip:{}@{}:{}".format(self.number, *self.peer.gateway)

    @property
    def to(self) -> str:
        to = "<sip:{}@{}:{}>".format(self.number, *self.peer.gateway)
        return f"{to};tag={self.remote_tag}" if self.remote_tag else to

    def fields(self, method: str, *, cseq: int | None = None, via_branch: str | None = None,
               to: str | None = None) -> list[tuple[str, str]]:
        """Via (with rport), Max-Forwards, From, To, Call-ID, CSeq, Contact. An INVITE's
        new branch is kept: its CANCEL, and the ACK of a failure, use it again."""
        host, port = self.peer.addr
        if via_branch is None:
            via_branch = branch()
            if method == "INVITE":
                self.invite_branch = via_branch
        return [("Via", f"SIP/2.0/UDP {host}:{port};branch={via_branch};rport"),
                ("Max-Forwards", "70"),
                ("From", f'"Caller" <sip:{self.caller}@{host}:{port}>;tag={self.tag}'),
                ("To", to or self.to), ("Call-ID", self.call_id),
                ("CSeq", f"{self.cseq if cseq is None else cseq} {method}"),
                ("Contact", f"<sip:{self.caller}@{host}:{port}>")]

    def message(self, method: str, body: bytes = b"", *,
                extra: Sequence[tuple[str, str]] = (), cseq: int | None = None,
                via_branch: str | None = None, to: str | None = None) -> bytes:
        fields = self.fields(method, cseq=cseq, via_branch=via_branch, to=to)
        if body:
            fields.append(("Content-Type", "application/sdp"))
        return build(f"{method} {self.target} SIP/2.0", [*fields, *extra], body)

    def send(self, method: str, *, cseq: int | None = None, via_branch: str | None = None,
             to: str | None = None) -> tuple[int, str]:
        """Send a bodiless request of this call; its CSeq."""
        self.peer.send(self.message(method, cseq=cseq, via_branch=via_branch, to=to))
        return (self.cseq if cseq is None else cseq, method)

    def invite(self, sdp: bytes, extra: Sequence[tuple[str, str]] = ()) -> bytes:
        """Send an INVITE (a re-INVITE once answered); the datagram, to send it again."""
        if self.remote_tag:
            self.cseq += 1
        data = self.message("INVITE", sdp, extra=extra)
        self.peer.send(data)
        return data

    def ack(self, response: Message) -> None:
        """ACK a final response to our INVITE: a 2xx in a transaction of its own to the
        gateway's Contact (RFC 3261 §13.2.2.4), any other in the INVITE's (§17.1.1.3)."""
        assert response.status is not None and response.status >= 200
        to = response.header("To")
        if response.status < 300:
            self.remote_tag = response.tag("To")
            contact = response.header("Contact")
            if contact:
                self.target = uri_of(contact)
            self.send("ACK", cseq=response.cseq[0])
        else:
            self.send("ACK", cseq=response.cseq[0], via_branch=self.invite_branch, to=to)

    def cancel(self) -> tuple[int, str]:
        """CANCEL our INVITE (its branch, its CSeq number, its To)."""
        return self.send("CANCEL", via_branch=self.invite_branch)

    def bye(self) -> tuple[int, str]:
        self.cseq += 1
        return self.send("BYE")

    async def call(self, sdp: bytes, timeout: float = 5.0) -> Message:
        """INVITE, the final response, its ACK: the response."""
        self.invite(sdp)
        final = await self.peer.response((self.cseq, "INVITE"), timeout=timeout)
        self.ack(final)
        return final


def sdp_offer(rtp_port: int, direction: str = "sendrecv", version: int = 1,
              payload_types: Sequence[int] = (0, 8, 101)) -> bytes:
    """An offer of PCMU, PCMA and telephone-event at ``HOST:rtp_port``."""
    maps = {0: "PCMU/8000", 8: "PCMA/8000", 101: "telephone-event/8000", 18: "G729/8000"}
    lines = ["v=0", f"o=test 4242 {version} IN IP4 {HOST}", "s=-", f"c=IN IP4 {HOST}", "t=0 0",
             f"m=audio {rtp_port} RTP/AVP {' '.join(map(str, payload_types))}",
             *(f"a=rtpmap:{pt} {maps[pt]}" for pt in payload_types)]
    if 101 in payload_types:
        lines.append("a=fmtp:101 0-16")
    lines += ["a=ptime:20", f"a={direction}", ""]
    return "\r\n".join(lines).encode()


def sdp_media(body: bytes) -> tuple[Addr, str]:
    """Where an SDP sends its audio, and its direction."""
    text = body.decode()
    address = re.search(r"^c=IN IP4 (\S+)", text, re.M)
    port = re.search(r"^m=audio (\d+)", text, re.M)
    direction = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", text, re.M)
    assert address and port, f"no audio address in the SDP:\n{text}"
    return (address.group(1), int(port.group(1))), direction.group(1) if direction else "sendrecv"


# ── RTP ─────────────────────────────────────────────────────────────────────

class RtpPeer:
    """A plain UDP socket for RTP: ``drain`` reads whatever the kernel holds for it
    right now, so what arrived before a point in the signalling can be told apart
    from what came after."""

    def __init__(self, host: str = HOST) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RtpPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes, to: Addr) -> None:
        self.sock.sendto(data, to)

    def drain(self) -> list[bytes]:
        packets = []
        while True:
            try:
                packets.append(self.sock.recv(4096))
            except BlockingIOError:
                return packets

    async def recv(self, timeout: float = WAIT) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.sock_recv(self.sock, 4096), timeout)
        except TimeoutError:
            raise AssertionError(f"no RTP on port {self.port} within {timeout} s") from None


@dataclass
class RtpSource:
    """One SSRC's packets: the sequence number and timestamp go on as they are made."""

    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    seq: int = field(default_factory=lambda: secrets.randbits(16))
    ts: int = field(default_factory=lambda: secrets.randbits(32))

    def packet(self, payload: bytes, pt: int = 0, *, marker: bool = False,
               advance: bool = True) -> bytes:
        data = struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), self.seq, self.ts,
                           self.ssrc) + payload
        if advance:
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts = (self.ts + len(payload)) & 0xFFFFFFFF
        return data

    def dtmf(self, digit: int, pt: int = 101) -> list[bytes]:
        """An RFC 4733 event of 100 ms: two updates, then the end packet three times."""
        packets = []
        for i, duration in enumerate((320, 640, 800, 800, 800)):
            end = 0x80 if i >= 2 else 0
            payload = struct.pack("!BBH", digit, end | 10, duration)
            packets.append(struct.pack("!BBHII", 0x80, pt | (0x80 if i == 0 else 0), self.seq,
                                       self.ts, self.ssrc) + payload)
            self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 800) & 0xFFFFFFFF
        return packets


def rtp_header(data: bytes) -> tuple[int, int, int, int]:
    """(payload type, sequence number, timestamp, SSRC) of an RTP packet."""
    first, second, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
    return second & 0x7F, seq, ts, ssrc


def pcmu_tone(amplitude: int, frames: int, freq: float = 400.0) -> list[bytes]:
    """A tone in 20 ms PCMU frames."""
    t = np.arange(frames * FRAME) / 8000
    pcm = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    codes = g711.ulaw_encode(pcm)
    return [codes[i * FRAME:(i + 1) * FRAME] for i in range(frames)]


Send = tuple[RtpPeer, bytes, Addr]


async def paced(slots: Iterable[Sequence[Send]], ptime: float = PTIME) -> int:
    """Send each slot's packets ``ptime`` after the previous slot's, on the sender's
    clock (as a phone does); the number of slots."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    for n, slot in enumerate(slots, 1):
        delay = start + (n - 1) * ptime - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        for peer, data, to in slot:
            peer.send(data, to)
    return n
