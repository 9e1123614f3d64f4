"""SDP bodies (RFC 4566) and the offer/answer model (RFC 3264), audio only, sans-I/O.

Reading and writing: :func:`parse_sdp` turns a body into a
:class:`SessionDescription`; :meth:`SessionDescription.to_bytes` writes one
back (CRLF lines in RFC 4566 order). Lines we do not interpret are kept
(``i= u= e= p= b= z= k= r=`` and attributes other than ``rtpmap``, ``fmtp``,
``ptime``, ``maxptime`` and the four direction attributes), so a body
survives a round trip through the dataclasses. Anything unreadable raises
:class:`~.errors.SdpError` with ``status=400`` and a sentence naming the line.

Negotiation, for one RTP audio stream of G.711 at 8000 Hz plus RFC 4733
telephone-events:

* :func:`answer` answers a remote offer (an INVITE or re-INVITE body): the
  first codec *in the offerer's order* that we support, telephone-event with
  the offer's payload number if offered, every other ``m=`` line rejected
  with port 0 (RFC 3264 §6), and our direction mirrored from the offer's
  (§6.1). ``SdpError(status=488)`` when no audio stream can be accepted (the
  UA answers 488 Not Acceptable Here).
* :func:`offer` builds our offer for an outbound call or a re-INVITE;
  :func:`accept_answer` reads the remote answer to it.
* Both return a :class:`Negotiated`: where to send RTP, which payload types,
  and what we may do (hold: when the remote says ``sendonly`` / ``inactive``
  or gives ``c=0.0.0.0``, we must not send).

Packet time. We always *send* 20 ms packets and receive any packet time
(the RTP stream re-chunks). The answer repeats the offer's ``a=ptime`` (what
we would like to receive: whatever the offerer prefers to send) or says 20.

Session versions (RFC 3264 §8): in a dialog, each new description of ours
keeps the ``o=`` session id and increments the version by one when anything
changed, and repeats the previous description unchanged otherwise —
:func:`next_version` does this; :func:`remote_changed` tells whether a
remote re-offer is a new version or a session refresh.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from .errors import SdpError

__all__ = [
    "SUPPORTED_CODECS",
    "Attribute",
    "Connection",
    "Direction",
    "MediaDescription",
    "Negotiated",
    "Origin",
    "RtpMap",
    "SessionDescription",
    "accept_answer",
    "answer",
    "next_version",
    "offer",
    "parse_sdp",
    "remote_changed",
]

SUPPORTED_CODECS = ("PCMU", "PCMA")
CLOCK_RATE = 8000
SEND_PTIME_MS = 20
DEFAULT_EVENTS = frozenset(range(16))  # RFC 4733: 0-9 * # A-D
MAX_BODY_BYTES = 16 * 1024

# RFC 3551 table 4 (audio); what a static payload type means without an rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1), 3: ("GSM", 8000, 1), 4: ("G723", 8000, 1), 5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1), 7: ("LPC", 8000, 1), 8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1),
    10: ("L16", 44100, 2), 11: ("L16", 44100, 1), 12: ("QCELP", 8000, 1), 13: ("CN", 8000, 1),
    14: ("MPA", 90000, 1), 15: ("G728", 8000, 1), 16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1), 18: ("G729", 8000, 1),
}

Attribute = tuple[str, str | None]
"""An ``a=`` line we keep as it is: (name, value), value ``None`` for a flag."""


class Direction(StrEnum):
    """A stream's direction attribute, always from the point of view of its writer."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    def reversed(self) -> Direction:
        """The same stream seen from the other end (sendonly ↔ recvonly)."""
        return Direction.of(self.receives, self.sends)

    def __and__(self, other: object) -> Direction:
        if not isinstance(other, Direction):
            return NotImplemented
        return Direction.of(self.sends and other.sends, self.receives and other.receives)


_DIRECTIONS = {d.value: d for d in Direction}


# ── the description ─────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>``."""

    username: str
    session_id: str
    version: int
    address: str
    address_type: str = "IP4"
    network_type: str = "IN"

    def text(self) -> str:
        return (f"{self.username} {self.session_id} {self.version} {self.network_type} "
                f"{self.address_type} {self.address}")


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<nettype> <addrtype> <address>``; ``address`` keeps a multicast ``/ttl``."""

    address: str
    address_type: str = "IP4"
    network_type: str = "IN"

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def is_hold(self) -> bool:
        """``0.0.0.0`` (or ``::``): the RFC 2543 way of saying "do not send to me"."""
        return self.host in ("0.0.0.0", "::")

    def text(self) -> str:
        return f"{self.network_type} {self.address_type} {self.address}"


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]``."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def text(self) -> str:
        tail = "" if self.channels is None else f"/{self.channels}"
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"

    def is_(self, encoding: str, clock_rate: int = CLOCK_RATE) -> bool:
        """True for ``encoding`` (case-insensitive), mono, at ``clock_rate``."""
        return (self.encoding.upper() == encoding.upper() and self.clock_rate == clock_rate
                and self.channels in (None, 1))


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One ``m=`` section. ``formats`` are as written (payload type numbers for RTP)."""

    media: str
    port: int
    protocol: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: Connection | None = None
    rtpmaps: tuple[RtpMap, ...] = ()
    fmtps: tuple[tuple[str, str], ...] = ()
    ptime: int | None = None
    maxptime: int | None = None
    direction: Direction | None = None
    attributes: tuple[Attribute, ...] = ()
    lines: tuple[tuple[str, str], ...] = ()  # i= b= k= as written

    @property
    def payload_types(self) -> tuple[int, ...]:
        return tuple(int(f) for f in self.formats if _is_number(f))

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        """The codec of ``payload_type``: its ``a=rtpmap``, else the RFC 3551 static one."""
        for m in self.rtpmaps:
            if m.payload_type == payload_type:
                return m
        static = STATIC_PAYLOAD_TYPES.get(payload_type)
        if static is None:
            return None
        return RtpMap(payload_type, static[0], static[1], None if static[2] == 1 else static[2])

    def fmtp(self, fmt: str | int) -> str | None:
        key = str(fmt)
        for f, params in self.fmtps:
            if f == key:
                return params
        return None


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body. ``direction`` and ``connection`` here are session-level."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    times: tuple[str, ...] = ("0 0",)
    direction: Direction | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    lines: tuple[tuple[str, str], ...] = ()  # i= u= e= p= b= r= z= k= as written
    version: int = 0

    def media_connection(self, index: int) -> Connection | None:
        """The connection that applies to ``media[index]`` (its own, else the session's)."""
        return self.media[index].connection or self.connection

    def media_direction(self, index: int) -> Direction:
        """The direction that applies to ``media[index]`` (sendrecv when none is given)."""
        return self.media[index].direction or self.direction or Direction.SENDRECV

    def to_bytes(self) -> bytes:
        out = [f"v={self.version}", f"o={self.origin.text()}", f"s={self.session_name}"]
        out += _extra(self.lines, "iuep")
        if self.connection is not None:
            out.append(f"c={self.connection.text()}")
        out += _extra(self.lines, "b")
        out += [f"t={t}" for t in self.times]
        out += _extra(self.lines, "rzk")
        # other letters parse_sdp kept at session level (y= ...): written too, not lost
        out += [f"{k}={v}" for k, v in self.lines if k not in "iuepbrzk"]
        if self.direction is not None:
            out.append(f"a={self.direction.value}")
        out += [_attr(a) for a in self.attributes]
        for m in self.media:
            out += _media_lines(m)
        return ("\r\n".join(out) + "\r\n").encode()

    def __bytes__(self) -> bytes:
        return self.to_bytes()


def _extra(lines: Iterable[tuple[str, str]], kinds: str) -> list[str]:
    return [f"{k}={v}" for kind in kinds for k, v in lines if k == kind]


def _attr(a: Attribute) -> str:
    return f"a={a[0]}" if a[1] is None else f"a={a[0]}:{a[1]}"


def _media_lines(m: MediaDescription) -> list[str]:
    port = f"{m.port}" if m.port_count is None else f"{m.port}/{m.port_count}"
    out = [f"m={m.media} {port} {m.protocol} {' '.join(m.formats)}"]
    out += _extra(m.lines, "i")
    if m.connection is not None:
        out.append(f"c={m.connection.text()}")
    out += _extra(m.lines, "bk")
    mapped = {r.payload_type for r in m.rtpmaps}
    done: set[str] = set()
    # Each payload type's rtpmaps once, compared as numbers: a format listed twice, or
    # as "096", wrote them twice (and once more as unlisted), one copy more each round trip.
    written: set[int] = set()
    for fmt in m.formats:  # rtpmap and fmtp of each format together, in format order
        pt = int(fmt) if _is_number(fmt) else -1
        if pt in mapped and pt not in written:
            out += [f"a=rtpmap:{r.text()}" for r in m.rtpmaps if r.payload_type == pt]
            written.add(pt)
        if fmt not in done:
            out += [f"a=fmtp:{f} {p}" for f, p in m.fmtps if f == fmt]
            done.add(fmt)
    listed = set(m.formats)
    out += [f"a=rtpmap:{r.text()}" for r in m.rtpmaps if r.payload_type not in written]
    out += [f"a=fmtp:{f} {p}" for f, p in m.fmtps if f not in listed]
    if m.ptime is not None:
        out.append(f"a=ptime:{m.ptime}")
    if m.maxptime is not None:
        out.append(f"a=maxptime:{m.maxptime}")
    if m.direction is not None:
        out.append(f"a={m.direction.value}")
    out += [_attr(a) for a in m.attributes]
    return out


# ── parsing ─────────────────────────────────────────────────────────────────

def _bad(message: str) -> SdpError:
    return SdpError(message, status=400)


def _is_number(text: str) -> bool:
    """ASCII digits, at most 20 (every number SDP has fits). Not ``str.isdigit()`` alone:
    it accepts "²", which int() refuses (ValueError), and other scripts' digits, which
    int() reads; and int() refuses more than 4300 digits (ValueError) where a bigger bound
    would only cost time."""
    return len(text) <= 20 and text.isascii() and text.isdigit()


def _int(text: str, what: str, low: int, high: int) -> int:
    if not _is_number(text):  # rejects signs, spaces, non-ASCII and too many digits
        raise _bad(f"{what} must be a number in {low}..{high}, got {text[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise _bad(f"{what} must be in {low}..{high}, got {value}")
    return value


def _connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3:
        raise _bad(f"c= needs '<nettype> <addrtype> <address>', got {value!r}")
    return Connection(parts[2], parts[1], parts[0])


def _origin(value: str) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise _bad(f"o= needs six fields (username, session id, version, network type, "
                   f"address type, address), got {value!r}")
    version = _int(parts[2], "the o= session version", 0, 2**64 - 1)
    return Origin(parts[0], parts[1], version, parts[5], parts[4], parts[3])


def _media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 4:
        raise _bad(f"m= needs '<media> <port> <proto> <fmt> ...', got {value!r}")
    port_text, _, count_text = parts[1].partition("/")
    port = _int(port_text, "the m= port", 0, 65535)
    count = _int(count_text, "the m= port count", 1, 65535) if count_text else None
    formats = tuple(parts[3:])
    if "RTP/" in parts[2].upper():
        for f in formats:
            _int(f, "an RTP payload type in m=", 0, 127)
    return MediaDescription(media=parts[0], port=port, protocol=parts[2], formats=formats,
                            port_count=count)


def _rtpmap(value: str) -> RtpMap:
    pt_text, _, codec = value.partition(" ")
    pt = _int(pt_text, "the a=rtpmap payload type", 0, 127)
    fields = codec.strip().split("/")
    if len(fields) not in (2, 3) or not fields[0]:
        raise _bad(f"a=rtpmap needs '<pt> <encoding>/<clock rate>[/<channels>]', got {value!r}")
    rate = _int(fields[1], "the a=rtpmap clock rate", 1, 10**9)
    channels = _int(fields[2], "the a=rtpmap channel count", 1, 255) if len(fields) == 3 else None
    return RtpMap(pt, fields[0], rate, channels)


class _Level:
    """The attributes and extra lines of one level (session or one m= section) while parsing."""

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.direction: Direction | None = None
        self.rtpmaps: list[RtpMap] = []
        self.fmtps: list[tuple[str, str]] = []
        self.ptime: int | None = None
        self.maxptime: int | None = None
        self.attributes: list[Attribute] = []
        self.lines: list[tuple[str, str]] = []

    def attribute(self, value: str, media: bool) -> None:
        name, sep, rest = value.partition(":")
        if name in _DIRECTIONS and not sep:
            self.direction = _DIRECTIONS[name]
        elif media and name == "rtpmap":
            self.rtpmaps.append(_rtpmap(rest))
        elif media and name == "fmtp":
            fmt, _, params = rest.partition(" ")
            if not fmt:
                raise _bad(f"a=fmtp needs '<format> <parameters>', got {value!r}")
            self.fmtps.append((fmt, params.strip()))
        elif media and name == "ptime":
            self.ptime = _ms(rest, "a=ptime")
        elif media and name == "maxptime":
            self.maxptime = _ms(rest, "a=maxptime")
        else:
            self.attributes.append((name, rest if sep else None))


def _ms(text: str, what: str) -> int:
    text = text.strip()
    whole, dot, frac = text.partition(".")  # "20.0" is seen in the wild; RFC 4566 says integer
    if dot and not (frac.isdigit() and set(frac) == {"0"}):
        raise _bad(f"{what} must be a whole number of milliseconds, got {text!r}")
    return _int(whole, what, 1, 60_000)


_DEFAULTS = len("s=-\r\nt=0 0\r\n")  # what the writer adds when they are missing


def parse_sdp(body: bytes | str) -> SessionDescription:
    """Read an SDP body; :class:`SdpError` (``status=400``) naming the fault otherwise.

    Accepts CRLF or bare LF line ends and ignores blank lines. Requires ``v=0``
    first and one ``o=`` line; ``s=`` and ``t=`` default to ``-`` and ``0 0``
    when missing. Every ``m=`` section with a non-zero port needs a ``c=`` line,
    its own or the session's.
    """
    if isinstance(body, bytes):
        if len(body) > MAX_BODY_BYTES:
            raise _bad(f"SDP body of {len(body)} bytes is over the {MAX_BODY_BYTES} limit")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(f"SDP body is not UTF-8 (byte {exc.start})") from None
    else:
        text = body
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    # the bound holds for the body as we would write it back (UTF-8, CRLF, s= and t=
    # added): what we accept must read back (found by a million fuzzed inputs: a str
    # body, or bare LF line ends, slipped past a bound on the raw bytes alone)
    written = sum(len(ln.encode("utf-8", "surrogatepass")) + 2 for ln in lines) + _DEFAULTS
    if written > MAX_BODY_BYTES:
        raise _bad(f"SDP body of {written} bytes (as written with CRLF) is over the "
                   f"{MAX_BODY_BYTES} limit")
    if not lines:
        raise _bad("SDP body is empty")
    if lines[0].strip() != "v=0":
        raise _bad(f"SDP must start with 'v=0', got {lines[0][:40]!r}")
    origin: Origin | None = None
    name: str | None = None
    times: list[str] = []
    session = _Level()
    media: list[tuple[MediaDescription, _Level]] = []
    for number, line in enumerate(lines[1:], start=2):
        kind, eq, value = line[:1], line[1:2], line[2:]
        if eq != "=" or not ("a" <= kind <= "z"):
            raise _bad(f"SDP line {number} is not '<letter>=<value>': {line[:40]!r}")
        level = media[-1][1] if media else session
        if kind == "m":
            media.append((_media(value), _Level()))
        elif kind == "a":
            level.attribute(value, bool(media))
        elif kind == "c":
            level.connection = _connection(value)
        elif media:
            if kind in "ibk":
                level.lines.append((kind, value))
            else:
                raise _bad(f"SDP line {number} ({kind}=) cannot appear inside an m= section")
        elif kind == "o":
            if origin is not None:
                raise _bad("SDP has more than one o= line")
            origin = _origin(value)
        elif kind == "s":
            name = value
        elif kind == "t":
            times.append(value)
        elif kind == "v":
            raise _bad(f"SDP line {number} is a second v= line")
        else:
            level.lines.append((kind, value))
    if origin is None:
        raise _bad("SDP has no o= line")
    descriptions = []
    for index, (m, lvl) in enumerate(media):
        desc = replace(
            m, connection=lvl.connection, rtpmaps=tuple(lvl.rtpmaps), fmtps=tuple(lvl.fmtps),
            ptime=lvl.ptime, maxptime=lvl.maxptime, direction=lvl.direction,
            attributes=tuple(lvl.attributes), lines=tuple(lvl.lines))
        if desc.port != 0 and desc.connection is None and session.connection is None:
            raise _bad(f"m= line {index} ({desc.media} port {desc.port}) has no c= line "
                       "and the session has none")
        descriptions.append(desc)
    return SessionDescription(
        origin=origin, session_name="-" if name is None else name,
        connection=session.connection, times=tuple(times) or ("0 0",),
        direction=session.direction, attributes=tuple(session.attributes),
        media=tuple(descriptions), lines=tuple(session.lines))


# ── negotiation ─────────────────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Negotiated:
    """The outcome of an offer/answer exchange for our one audio stream.

    ``payload_type`` / ``telephone_event`` are the numbers we *send* with (the
    remote's); ``recv_payload_type`` / ``recv_telephone_event`` the numbers we
    said we receive (ours). After :func:`answer` they are the same. RFC 3264
    lets them differ after :func:`accept_answer`; receivers accept both.
    """

    remote_address: str          # from c=; "0.0.0.0" or "::" when the remote put us on hold
    remote_port: int
    codec: str                   # "PCMU" or "PCMA"
    payload_type: int
    telephone_event: int | None  # None: the remote does not take RFC 4733 events
    direction: Direction         # OURS: what we may send / receive
    ptime: int | None            # the remote's a=ptime (we send 20 ms packets regardless)
    recv_payload_type: int
    recv_telephone_event: int | None
    dtmf_events: frozenset[int] = DEFAULT_EVENTS  # event codes both sides accept
    media_index: int = 0         # which m= line carries the stream

    @property
    def may_send(self) -> bool:
        """False while the remote holds us (sendonly / inactive / c=0.0.0.0 from it)."""
        return self.direction.sends and self.remote_port != 0 and not _is_hold(
            self.remote_address)

    @property
    def may_receive(self) -> bool:
        return self.direction.receives

    @property
    def engine_codec(self) -> str:
        """The codec's name in :mod:`telcoflow.audio.codec` (``pcmu`` / ``pcma``)."""
        return self.codec.lower()


def _is_hold(address: str) -> bool:
    return address in ("0.0.0.0", "::")


def _address_type(ip: str) -> str:
    try:
        return "IP6" if ipaddress.ip_address(ip).version == 6 else "IP4"
    except ValueError:
        return "IP4"  # a host name: RFC 4566 allows an FQDN here


def _check_codecs(codecs: Sequence[str]) -> tuple[str, ...]:
    wanted = tuple(c.upper() for c in codecs)
    if not wanted or any(c not in SUPPORTED_CODECS for c in wanted):
        raise ValueError(f"codecs must be a non-empty selection of {SUPPORTED_CODECS}, "
                         f"got {tuple(codecs)}")
    return wanted


def _parse_events(text: str | None) -> frozenset[int]:
    """RFC 4733 event list ``0-15,16`` (no fmtp means 0-15); unreadable parts are skipped."""
    if text is None or not text.strip():
        return DEFAULT_EVENTS
    codes: set[int] = set()
    for part in text.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if _is_number(low) and (not dash or _is_number(high)):
            lo, hi = int(low), int(high) if dash else int(low)
            if lo <= hi <= 255:
                codes.update(range(lo, hi + 1))
    return frozenset(codes)


def _format_events(codes: frozenset[int]) -> str:
    out: list[str] = []
    ordered = sorted(codes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(f"{ordered[i]}" if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def _telephone_event(m: MediaDescription) -> int | None:
    for pt in m.payload_types:
        codec = m.rtpmap(pt)
        if codec is not None and codec.is_("telephone-event"):
            return pt
    return None


def _describe(m: MediaDescription) -> str:
    names = []
    for pt in m.payload_types:
        codec = m.rtpmap(pt)
        names.append(f"{pt} (no rtpmap)" if codec is None else codec.text().split(" ", 1)[1])
    return ", ".join(names) or " ".join(m.formats)


def _audio_media(
    pt: int, codec: str, te: int | None, events: frozenset[int], ptime: int | None,
    direction: Direction, port: int, codecs_after: Sequence[tuple[int, str]] = (),
) -> MediaDescription:
    formats = [(pt, codec), *codecs_after]
    rtpmaps = [RtpMap(p, c, CLOCK_RATE) for p, c in formats]
    fmtps: tuple[tuple[str, str], ...] = ()
    if te is not None:
        rtpmaps.append(RtpMap(te, "telephone-event", CLOCK_RATE))
        fmtps = ((str(te), _format_events(events)),)
    numbers = [str(p) for p, _ in formats] + ([] if te is None else [str(te)])
    return MediaDescription(
        media="audio", port=port, protocol="RTP/AVP", formats=tuple(numbers),
        rtpmaps=tuple(rtpmaps), fmtps=fmtps, ptime=ptime, direction=direction)


def _session(
    local_ip: str, session_id: str | int, version: int, media: Sequence[MediaDescription],
    username: str, session_name: str,
) -> SessionDescription:
    kind = _address_type(local_ip)
    return SessionDescription(
        origin=Origin(username, str(session_id), version, local_ip, kind),
        session_name=session_name, connection=Connection(local_ip, kind), media=tuple(media))


def answer(
    offer: SessionDescription,
    local_ip: str,
    local_port: int,
    session_id: str | int,
    version: int,
    codecs: Sequence[str] = SUPPORTED_CODECS,
    *,
    direction: Direction = Direction.SENDRECV,
    dtmf_events: frozenset[int] = DEFAULT_EVENTS,
    username: str = "-",
    session_name: str = "telcoflow",
) -> tuple[SessionDescription, Negotiated]:
    """Answer a remote offer: our description and what was agreed.

    The first ``m=audio`` line over RTP/AVP that offers one of ``codecs`` is
    accepted; within it, the first of the offer's formats we support is chosen
    (the offerer's preference), plus telephone-event/8000 if offered (its
    payload number kept, its event list intersected with ``dtmf_events``).
    All other ``m=`` lines are answered with port 0. Our direction is
    ``direction`` narrowed by the mirror of the offer's (sendonly → recvonly,
    recvonly → sendonly, inactive → inactive; ``c=0.0.0.0`` counts as "the
    offerer does not receive"). ``a=ptime`` repeats the offer's, or says 20.

    Raises :class:`SdpError` 488 when no audio stream is acceptable (no common
    codec, SRTP or another profile only, no audio), 400 when the accepted
    stream has no connection address. ``codecs`` outside PCMU/PCMA is a
    programming error (``ValueError``).
    """
    wanted = _check_codecs(codecs)
    reasons: list[str] = []
    chosen: tuple[int, MediaDescription, int, str] | None = None
    for index, m in enumerate(offer.media):
        if chosen is not None or m.media.lower() != "audio" or m.port == 0:
            continue
        if m.protocol.upper() != "RTP/AVP":
            reasons.append(f"audio stream {index} uses {m.protocol}; we only speak RTP/AVP")
            continue
        for pt in m.payload_types:
            codec = m.rtpmap(pt)
            if codec is not None and any(codec.is_(c) for c in wanted):
                chosen = (index, m, pt, codec.encoding.upper())
                break
        else:
            reasons.append(f"audio stream {index} offers {_describe(m)}; "
                           f"we speak {', '.join(c + '/8000' for c in wanted)}")
    if chosen is None:
        if not reasons:
            reasons.append("the offer has no audio stream")
        raise SdpError("not acceptable: " + "; ".join(reasons), status=488)
    index, m, pt, codec_name = chosen
    conn = offer.media_connection(index)
    if conn is None:  # parse_sdp refuses this; a hand-built description may not
        raise _bad(f"audio stream {index} has no connection address")
    te = _telephone_event(m)
    events = _parse_events(m.fmtp(te)) & dtmf_events if te is not None else frozenset()
    if not events:
        te = None
    remote = offer.media_direction(index)
    if conn.is_hold:
        remote = remote & Direction.SENDONLY  # old-style hold: it does not receive
    ours = direction & remote.reversed()
    media: list[MediaDescription] = []
    for i, other in enumerate(offer.media):
        if i == index:
            media.append(_audio_media(pt, codec_name, te, events, m.ptime or SEND_PTIME_MS,
                                      ours, local_port))
        else:
            media.append(MediaDescription(media=other.media, port=0, protocol=other.protocol,
                                          formats=other.formats[:1]))
    description = _session(local_ip, session_id, version, media, username, session_name)
    negotiated = Negotiated(
        remote_address=conn.host, remote_port=m.port, codec=codec_name, payload_type=pt,
        telephone_event=te, direction=ours, ptime=m.ptime, recv_payload_type=pt,
        recv_telephone_event=te, dtmf_events=events or DEFAULT_EVENTS, media_index=index)
    return description, negotiated


def offer(
    local_ip: str,
    local_port: int,
    session_id: str | int,
    version: int,
    codecs: Sequence[str] = SUPPORTED_CODECS,
    *,
    telephone_event: int | None = 101,
    direction: Direction = Direction.SENDRECV,
    dtmf_events: frozenset[int] = DEFAULT_EVENTS,
    username: str = "-",
    session_name: str = "telcoflow",
) -> SessionDescription:
    """Our offer: one RTP/AVP audio stream with ``codecs`` in our order of preference
    (static payload types 0 / 8), telephone-event on ``telephone_event`` (96-127,
    ``None`` for none), ``a=ptime:20`` and ``direction`` (``sendonly`` to hold the
    remote, ``inactive`` to stop media)."""
    wanted = _check_codecs(codecs)
    if telephone_event is not None and not 96 <= telephone_event <= 127:
        raise ValueError(f"telephone_event must be a dynamic payload type 96-127, "
                         f"got {telephone_event}")
    numbered = [(0 if c == "PCMU" else 8, c) for c in wanted]
    media = _audio_media(numbered[0][0], numbered[0][1], telephone_event, dtmf_events,
                         SEND_PTIME_MS, direction, local_port, numbered[1:])
    return _session(local_ip, session_id, version, [media], username, session_name)


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> Negotiated:
    """Read the remote answer to our ``offer``.

    The answer must keep the offer's ``m=`` lines (RFC 3264 §6): a different
    count is malformed (400). Our audio stream is the offer's first
    ``m=audio`` with a port; its answer with port 0, or with no format we
    offered and support, is a refusal (488). We send with the answer's first
    such format (its preference) and its telephone-event payload type, if any.
    """
    if len(answer.media) != len(offer.media):
        raise _bad(f"the answer has {len(answer.media)} m= lines for the offer's "
                   f"{len(offer.media)}")
    index = next((i for i, m in enumerate(offer.media)
                  if m.media.lower() == "audio" and m.port != 0), None)
    if index is None:
        raise ValueError("our offer has no audio stream")
    ours_m, theirs = offer.media[index], answer.media[index]
    if theirs.port == 0:
        raise SdpError(f"the answer rejected our audio stream (m= line {index}, port 0)",
                       status=488)
    if theirs.media.lower() != "audio" or theirs.protocol.upper() != "RTP/AVP":
        raise _bad(f"the answer's m= line {index} is {theirs.media} {theirs.protocol}, "
                   "not our audio RTP/AVP stream")
    offered = {}
    for pt in ours_m.payload_types:
        codec = ours_m.rtpmap(pt)
        if codec is not None:
            for name in SUPPORTED_CODECS:
                if codec.is_(name):
                    offered[name] = pt
    chosen: tuple[int, str] | None = None
    for pt in theirs.payload_types:
        codec = theirs.rtpmap(pt)
        if codec is not None:
            name = codec.encoding.upper()
            if name in offered and codec.is_(name):
                chosen = (pt, name)
                break
    if chosen is None:
        raise SdpError(f"the answer's audio stream has none of our codecs: {_describe(theirs)}",
                       status=488)
    conn = answer.media_connection(index)
    if conn is None:
        raise _bad(f"the answer's audio stream {index} has no connection address")
    te = _telephone_event(theirs)
    our_te = _telephone_event(ours_m)
    events: frozenset[int] = frozenset()
    if te is not None and our_te is not None:
        events = _parse_events(theirs.fmtp(te)) & _parse_events(ours_m.fmtp(our_te))
    if not events:
        te = our_te = None
    remote = answer.media_direction(index)
    if conn.is_hold:
        remote = remote & Direction.SENDONLY
    ours = offer.media_direction(index) & remote.reversed()
    return Negotiated(
        remote_address=conn.host, remote_port=theirs.port, codec=chosen[1],
        payload_type=chosen[0], telephone_event=te, direction=ours, ptime=theirs.ptime,
        recv_payload_type=offered[chosen[1]], recv_telephone_event=our_te,
        dtmf_events=events or DEFAULT_EVENTS, media_index=index)


# ── versions across a dialog ────────────────────────────────────────────────

def next_version(
    previous: SessionDescription | None, candidate: SessionDescription
) -> SessionDescription:
    """Our next description in a dialog (RFC 3264 §8).

    With no ``previous``, ``candidate`` as it is. Otherwise the previous
    ``o=`` username, session id and address are kept; if nothing else
    differs the previous description is returned unchanged (same version),
    else ``candidate`` with the previous version plus one.
    """
    if previous is None:
        return candidate
    origin = previous.origin
    same = replace(candidate, origin=origin)
    if same == previous:
        return previous
    return replace(candidate, origin=replace(origin, version=previous.origin.version + 1))


def remote_changed(previous: SessionDescription | None, new: SessionDescription) -> bool:
    """False when ``new`` repeats ``previous``'s ``o=`` session id and version: by RFC
    3264 §8 it is then the same description (a session refresh); True otherwise."""
    if previous is None:
        return True
    a, b = previous.origin, new.origin
    return (a.username, a.session_id, a.address, a.version) != (
        b.username, b.session_id, b.address, b.version)

