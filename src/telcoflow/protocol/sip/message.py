"""SIP messages (RFC 3261 §7, §20, §25), sans-I/O: read a datagram, build and write one.

What is here
------------
- :class:`Headers`: the header fields of one message, an ordered multi-map with
  case-insensitive names; compact forms (``i``, ``v``, ``m`` …) are expanded when
  a field is added, known names are written in their canonical spelling
  (``Call-ID``, ``CSeq``, ``WWW-Authenticate``), unknown ones as they came.
- :class:`SipUri` (``sip:``, ``sips:``, minimal ``tel:``), :class:`NameAddr`
  (From, To, Contact, Route, Record-Route), :class:`Via` (with RFC 3581
  ``rport``): each has ``parse(text)`` and ``__str__``.
- :class:`SipRequest` / :class:`SipResponse`: plain mutable dataclasses whose
  header values are kept as text; properties (``call_id``, ``cseq``, ``from_``,
  ``to``, ``vias`` …) parse the header they name each time they are read.
  ``serialize()`` writes CRLF line ends and a correct ``Content-Length``.
- :func:`parse_message` reads one UDP datagram; :func:`salvage_request` reads
  just enough of an unreadable request to answer it with an error status.
- :func:`make_response` (RFC 3261 §8.2.6), :func:`make_cancel` (§9.1) and the
  identifiers :func:`new_branch`, :func:`new_tag`, :func:`new_call_id`.

Parsing policy
--------------
Strict about what a UA needs to be right, tolerant where RFC 3261 is:

- tolerated: header names in any case and in compact form, whitespace around
  ``:`` / ``;`` / ``=`` / ``/``, folded header lines (LWS folding), more than
  one space in the start line, a status line without a reason phrase, bare LF
  line ends, CRLFs before the start line, a body longer than
  ``Content-Length`` (truncated, §18.3), no ``Content-Length`` (the body is the
  rest of the datagram, §18.3), no ``Max-Forwards`` (the UA decides on 483);
- refused, with :class:`~.errors.SipParseError` carrying a specific sentence and
  the status to answer with: a header section that is not UTF-8 or holds
  control characters, no empty line after the headers, a bad start line (400),
  a SIP version other than 2.0 (505), a Request-URI scheme other than
  sip/sips/tel (416), a missing, repeated or unreadable Via / From / To /
  Call-ID / CSeq, an unreadable Contact / Route / Record-Route / Max-Forwards /
  Content-Length, a CSeq method that is not the request's method, a
  ``Content-Length`` larger than the body (all 400), a datagram over
  ``max_size`` bytes, a header section over ``max_header_bytes`` or with more
  than ``max_headers`` fields (513 Message Too Large).

:func:`parse_message` raises nothing but ``SipParseError`` for any input (the
tests fuzz it). Builders (``Headers.add``, ``make_response`` …) raise
``ValueError`` for programming mistakes such as a CR or LF inside a value,
which would let one header smuggle in another.

Representation choices
----------------------
- Hosts are kept without IPv6 brackets (``"2001:db8::1"``); ``__str__`` adds them.
- Parameter names are lower-cased (they are case-insensitive); values are kept
  as written, a quoted value with its quotes.
- The user part of a SIP URI is kept unescaped (``%41`` reads as ``A``) and
  escaped again when written; a password is kept as written.
- A header value is kept as received (after unfolding), so parse → serialize →
  parse gives an equal message, and the Request-URI survives
  ``SipUri.parse(str(uri)) == uri``.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from .errors import SipParseError

__all__ = [
    "MAGIC_COOKIE", "MAX_MESSAGE_SIZE", "MAX_HEADER_BYTES", "MAX_HEADERS", "REASON_PHRASES",
    "Addr", "Headers", "SipUri", "NameAddr", "Via", "SipRequest", "SipResponse", "SipMessage",
    "parse_message", "salvage_request", "make_response", "make_cancel", "reason_phrase",
    "split_list", "new_branch", "new_tag", "new_call_id",
]

Addr = tuple[str, int]
"""A transport address: (IP address, port); IPv6 without brackets."""

MAGIC_COOKIE = "z9hG4bK"
"""The prefix of every RFC 3261 branch (§8.1.1.7)."""
MAX_MESSAGE_SIZE = 65535
"""The largest datagram :func:`parse_message` reads by default."""
MAX_HEADER_BYTES = 16384
"""The default cap on the header section (start line and fields), in bytes."""
MAX_HEADERS = 128
"""The default cap on the number of header fields (lines, after unfolding)."""

_DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "SCTP": 5060, "TLS": 5061, "WS": 80, "WSS": 443}

# --------------------------------------------------------------------------- header names

_COMPACT = {
    "i": "call-id", "m": "contact", "f": "from", "t": "to", "v": "via", "l": "content-length",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding",
    "o": "event", "r": "refer-to", "u": "allow-events", "x": "session-expires",
    "a": "accept-contact", "b": "referred-by", "d": "request-disposition", "j": "reject-contact",
    "y": "identity", "n": "identity-info",
}

_KNOWN_NAMES = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Diversion", "Error-Info", "Event", "Expires", "From",
    "History-Info", "Identity", "Identity-Info", "In-Reply-To", "Max-Forwards", "MIME-Version",
    "Min-Expires", "Min-SE", "Organization", "P-Asserted-Identity", "P-Preferred-Identity",
    "Path", "Priority", "Privacy", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To", "Referred-By",
    "Reject-Contact", "Replaces", "Reply-To", "Request-Disposition", "Require", "Retry-After",
    "Route", "RSeq", "Server", "Service-Route", "Session-Expires", "Subject",
    "Subscription-State", "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via",
    "Warning", "WWW-Authenticate",
)
_CANONICAL = {name.lower(): name for name in _KNOWN_NAMES}

# Fields whose grammar is a comma-separated list (``#`` in RFC 3261 §25 and the
# extensions above); the others (From, Date, the authentication fields …) may
# carry commas inside one value and are never split.
_LIST_FIELDS = frozenset({
    "accept", "accept-contact", "accept-encoding", "accept-language", "alert-info", "allow",
    "allow-events", "call-info", "contact", "content-encoding", "content-language",
    "diversion", "error-info", "history-info", "in-reply-to", "p-asserted-identity",
    "p-preferred-identity", "path", "proxy-require", "reason", "record-route",
    "reject-contact", "request-disposition", "require", "route", "service-route",
    "supported", "unsupported", "via", "warning",
})

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~\-]+")
_DIGITS = re.compile(r"[0-9]{1,10}")
_PORT = re.compile(r"[0-9]{1,5}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_VALUE_FORBIDDEN = re.compile(r"[\x00\r\n]")


def _key(name: str) -> str:
    low = name.lower()
    return _COMPACT.get(low, low)


def _show(text: str, limit: int = 40) -> str:
    """``text`` quoted for an error sentence: printable, at most ``limit`` characters."""
    clean = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return f"'{clean}…'" if len(text) > limit else f"'{clean}'"


def split_list(value: str) -> list[str]:
    """The elements of a comma-separated header value, ignoring commas in quotes and ``<>``."""
    if "," not in value:
        value = value.strip()
        return [value] if value else []
    parts: list[str] = []
    quoted = escaped = angle = False
    start = 0
    for i, ch in enumerate(value):
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


class Headers:
    """The header fields of one message, in order, with case-insensitive names.

    Iterating yields ``(name, value)`` per field line. A compact name is
    expanded when a field is added (``add("i", …)`` stores ``Call-ID``), and
    every method accepts either form. For the list fields (Via, Contact, Route,
    Record-Route, Allow, Supported …) :meth:`get` and :meth:`get_all` see the
    comma-separated elements, so ``Via: a, b`` and two ``Via`` lines read alike.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str, str]] = []  # (key, name as written out, value)
        for name, value in fields:
            self.add(name, value)

    @staticmethod
    def canonical(name: str) -> str:
        """How ``name`` is written out: the compact form expanded, known names canonical."""
        key = _key(name)
        return _CANONICAL.get(key, name if key == name.lower() else key)

    @staticmethod
    def _checked(name: str, value: str) -> tuple[str, str, str]:
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not a header field name")
        if _VALUE_FORBIDDEN.search(value):
            raise ValueError(f"the {name} value contains CR, LF or NUL")
        key = _key(name)
        return key, _CANONICAL.get(key, name if key == name.lower() else key), value.strip()

    def _values(self, key: str) -> Iterator[str]:
        return (value for k, _, value in self._fields if k == key)

    def get(self, name: str) -> str | None:
        """The first value of ``name`` (the first list element for list fields), or None."""
        for value in self.get_all(name):
            return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order; list fields are split at their commas."""
        key = _key(name)
        if key in _LIST_FIELDS:
            return [part for value in self._values(key) for part in split_list(value)]
        return list(self._values(key))

    def get_lines(self, name: str) -> list[str]:
        """The values of ``name`` as written, one per field line, never split."""
        return list(self._values(_key(name)))

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Append a field; with ``first`` insert it before the other fields of that name."""
        entry = self._checked(name, value)
        if first:
            for i, (k, _, _) in enumerate(self._fields):
                if k == entry[0]:
                    self._fields.insert(i, entry)
                    return
        self._fields.append(entry)

    def set(self, name: str, value: str) -> None:
        """Make ``value`` the only field of ``name``, where the first one was (or at the end)."""
        entry = self._checked(name, value)
        for i, (k, _, _) in enumerate(self._fields):
            if k == entry[0]:
                self._fields[i] = entry
                self._fields[i + 1:] = [f for f in self._fields[i + 1:] if f[0] != entry[0]]
                return
        self._fields.append(entry)

    def replace_top(self, name: str, value: str) -> None:
        """Replace the first element of a list field (the top Via), keeping the others."""
        entry = self._checked(name, value)
        for i, (k, n, old) in enumerate(self._fields):
            if k == entry[0]:
                rest = split_list(old)[1:] if k in _LIST_FIELDS else []
                self._fields[i] = (k, n, ", ".join([entry[2], *rest]))
                return
        self._fields.append(entry)

    def remove(self, name: str) -> int:
        """Remove every field of ``name``; the number of lines removed."""
        key = _key(name)
        before = len(self._fields)
        self._fields = [f for f in self._fields if f[0] != key]
        return before - len(self._fields)

    def copy(self) -> Headers:
        new = Headers()
        new._fields = list(self._fields)
        return new

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(k == _key(name) for k, _, _ in self._fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((name, value) for _, name, value in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._fields] == [(k, v) for k, _, v in other._fields]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"


# --------------------------------------------------------------------------- hosts, params

_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*)")
_IPV4ISH = re.compile(r"[0-9.]+")


def _host(text: str, what: str) -> str:
    """A host as written in a URI or Via (IPv6 in brackets); returned without brackets."""
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise SipParseError(f"{what}: {_show(text)} is not an IPv6 address") from None
        return inner
    if _IPV4ISH.fullmatch(text):
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            raise SipParseError(f"{what}: {_show(text)} is not an IPv4 address") from None
        return text
    if not _HOSTNAME.fullmatch(text):
        raise SipParseError(f"{what}: {_show(text)} is not a host name or address")
    return text


def _port(text: str, what: str) -> int:
    if not _PORT.fullmatch(text) or int(text) > 65535:
        raise SipParseError(f"{what}: {_show(text)} is not a port number")
    return int(text)


def _host_port(text: str, what: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"{what}: {_show(text)} opens an IPv6 '[' it never closes")
        host, rest = _host(text[:end + 1], what), text[end + 1:]
    else:
        host_text, colon, port_text = text.partition(":")
        host, rest = _host(host_text, what), (":" + port_text if colon else "")
    if not rest:
        return host, None
    if rest[0] != ":":
        raise SipParseError(f"{what}: {_show(text)} has junk after the host")
    return host, _port(rest[1:].strip(), what)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _quoted_string(text: str, start: int, what: str) -> tuple[str, int]:
    """The unescaped content of the quoted string at ``text[start]`` and the index after it."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise SipParseError(f"{what}: a quoted string is never closed")


_PARAM_VALUE = re.compile(r'[^\s;,"<>]+')


def _header_params(text: str, what: str) -> dict[str, str | None]:
    """``;name=value;flag`` after a URI or sent-by, with whitespace allowed around ; and =."""
    params: dict[str, str | None] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i == n:
            return params
        if text[i] != ";":
            raise SipParseError(f"{what}: {_show(text[i:])} is not a ';' parameter")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        match = _TOKEN.match(text, i)
        if match is None:
            raise SipParseError(f"{what}: a parameter has no name")
        name = match.group().lower()
        i = match.end()
        while i < n and text[i] in " \t":
            i += 1
        value: str | None = None
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == '"':
                _, end = _quoted_string(text, i, what)
                value, i = text[i:end], end
            else:
                vmatch = _PARAM_VALUE.match(text, i)
                if vmatch is None:
                    raise SipParseError(f"{what}: the parameter '{name}' has an empty value")
                value, i = vmatch.group(), vmatch.end()
        if name in params:
            raise SipParseError(f"{what}: the parameter '{name}' appears twice")
        params[name] = value


def _write_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


# --------------------------------------------------------------------------- SipUri

_SCHEMES = ("sip", "sips", "tel")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_URI_FORBIDDEN = re.compile(r'[\s<>"\x00-\x1f\x7f]')
_URI_PARAM = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]+")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_USER_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                       "-_.!~*'()&=+$,;?/")
_TEL_NUMBER = re.compile(r"[0-9A-Fa-f*#+\-.()pPwW]+")


def _unescape(text: str, what: str) -> str:
    if "%" not in text:
        return text
    if _BAD_ESCAPE.search(text):
        raise SipParseError(f"{what}: {_show(text)} has a '%' that is not an escape")
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError(f"{what}: {_show(text)} escapes bytes that are not UTF-8") from None


def _escape_user(user: str) -> str:
    return "".join(c if c in _USER_SAFE else "".join(f"%{b:02X}" for b in c.encode())
                   for c in user)


def _uri_params(text: str, what: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    if not text:
        return params
    for part in text[1:].split(";"):
        name, eq, value = part.partition("=")
        if not _URI_PARAM.fullmatch(name) or (eq and not _URI_PARAM.fullmatch(value)):
            raise SipParseError(f"{what}: {_show(';' + part)} is not a URI parameter")
        name = name.lower()
        if name in params:
            raise SipParseError(f"{what}: the URI parameter '{name}' appears twice")
        params[name] = value if eq else None
    return params


_URI_HEADER = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/:?+$]+")


def _uri_headers(text: str, what: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not (eq and _URI_HEADER.fullmatch(name)) or (value and not _URI_HEADER.fullmatch(value)):
            raise SipParseError(f"{what}: {_show(part)} is not a URI header")
        headers[name] = value
    return headers


@dataclass(slots=True)
class SipUri:
    """A ``sip:`` / ``sips:`` URI (RFC 3261 §19.1), or a minimal ``tel:`` one (RFC 3966).

    ``user`` is unescaped; ``host`` has no IPv6 brackets (empty for tel, whose
    number is the ``user``); ``params`` (lower-case names) and ``headers`` keep
    their values as written.
    """

    scheme: str = "sip"
    user: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Read a URI; SipParseError with 416 for another scheme, 400 for anything malformed."""
        what = f"the URI {_show(text)}"
        if _URI_FORBIDDEN.search(text):
            raise SipParseError(f"{what} contains spaces, quotes, brackets or control characters")
        scheme, colon, rest = text.partition(":")
        if not colon or not _SCHEME.fullmatch(scheme):
            raise SipParseError(f"{what} is not a URI")
        scheme = scheme.lower()
        if scheme not in _SCHEMES:
            raise SipParseError(f"{what}: the scheme '{scheme}' is not supported", 416)
        if scheme == "tel":
            number, semi, ptext = rest.partition(";")
            if not _TEL_NUMBER.fullmatch(number):
                raise SipParseError(f"{what}: {_show(number)} is not a telephone number")
            return cls("tel", number, "", None, _uri_params(semi + ptext, what))
        at = rest.rfind("@")
        userinfo, hostpart = (rest[:at], rest[at + 1:]) if at >= 0 else (None, rest)
        cut = min((i for i in (hostpart.find(";"), hostpart.find("?")) if i >= 0),
                  default=len(hostpart))
        if cut == 0:
            raise SipParseError(f"{what} has no host")
        host, port = _host_port(hostpart[:cut], what)
        ptext, qmark, htext = hostpart[cut:].partition("?")
        params = _uri_params(ptext, what)
        headers = _uri_headers(htext, what) if qmark else {}
        user = password = None
        if userinfo is not None:
            user_text, pcolon, pw = userinfo.partition(":")
            if not user_text:
                raise SipParseError(f"{what} has an empty user part")
            user = _unescape(user_text, what)
            password = pw if pcolon else None
        return cls(scheme, user, host, port, params, headers, password)

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user or ''}{_write_params(self.params)}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(_escape_user(self.user))
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(_bracketed(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(_write_params(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{k}={v}" for k, v in self.headers.items()))
        return "".join(out)

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, upper-cased, or None."""
        value = self.params.get("transport")
        return value.upper() if value else None


# --------------------------------------------------------------------------- NameAddr


@dataclass(slots=True)
class NameAddr:
    """A From / To / Contact / Route value: ``"Display" <uri>;params`` (RFC 3261 §20.10).

    Also read in the addr-spec form (``sip:a@b;tag=1``, where the parameters
    belong to the header, not the URI). Always written in the name-addr form,
    with the display name quoted.
    """

    uri: SipUri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, what: str = "the address") -> NameAddr:
        s = text.strip()
        if not s:
            raise SipParseError(f"{what} is empty")
        display: str | None = None
        if s[0] == '"':
            display, end = _quoted_string(s, 0, what)
            rest = s[end:].lstrip()
            if not rest.startswith("<"):
                raise SipParseError(f"{what}: a quoted display name must be followed by <URI>")
        else:
            lt = s.find("<")
            if lt < 0:
                uri_text, semi, ptext = s.partition(";")
                uri = cls._uri(uri_text.strip(), what)
                return cls(uri, None, _header_params(semi + ptext, what))
            name = s[:lt]
            if '"' in name or ">" in name:
                raise SipParseError(f"{what}: {_show(name)} is not a display name")
            display = " ".join(name.split()) or None
            rest = s[lt:]
        gt = rest.find(">")
        if gt < 0:
            raise SipParseError(f"{what}: '<' is never closed by '>'")
        return cls(cls._uri(rest[1:gt], what), display, _header_params(rest[gt + 1:], what))

    @staticmethod
    def _uri(text: str, what: str) -> SipUri:
        try:
            return SipUri.parse(text)
        except SipParseError as error:
            raise SipParseError(f"{what}: {error}") from None

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (From/To), or None."""
        return self.params.get("tag")

    @tag.setter
    def tag(self, value: str | None) -> None:
        if value is None:
            self.params.pop("tag", None)
        else:
            self.params["tag"] = value

    def __str__(self) -> str:
        uri = f"<{self.uri}>{_write_params(self.params)}"
        if not self.display_name:
            return uri
        name = "".join(" " if c in "\r\n" else c for c in self.display_name)
        name = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{name}" {uri}'


# --------------------------------------------------------------------------- Via

_VIA = re.compile(
    r"\s*([A-Za-z0-9.!%*_+`'~\-]+)\s*/\s*([A-Za-z0-9.!%*_+`'~\-]+)\s*/\s*([A-Za-z0-9.!%*_+`'~\-]+)"
    r"\s+(\[[^\]]*\]|[^\s:;\[\]]+)(?:\s*:\s*([0-9]+))?(.*)", re.S)


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=…;received=…;rport`` (§20.42, RFC 3581).

    ``params["rport"]`` is ``None`` when the client asked for rport without a
    value and the port once a server has filled it in.
    """

    host: str
    port: int | None = None
    transport: str = "UDP"
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        what = f"the Via {_show(text.strip())}"
        match = _VIA.fullmatch(text)
        if match is None:
            raise SipParseError(f"{what} is not 'SIP/2.0/transport host[:port];params'")
        name, version, transport, host_text, port_text, ptext = match.groups()
        if name.upper() != "SIP" or version != "2.0":
            raise SipParseError(f"{what} is not SIP/2.0")
        host = _host(host_text, what)
        port = _port(port_text, what) if port_text is not None else None
        params = _header_params(ptext, what)
        for key in ("branch", "ttl", "maddr", "received"):
            if key in params and params[key] is None:
                raise SipParseError(f"{what}: the parameter '{key}' has no value")
        rport = params.get("rport")
        if rport is not None:
            _port(rport, what)
        ttl = params.get("ttl")
        if ttl is not None and not (_PORT.fullmatch(ttl) and int(ttl) <= 255):
            raise SipParseError(f"{what}: ttl {_show(ttl)} is not 0-255")
        received = params.get("received")
        if received is not None:
            bare = received[1:-1] if received.startswith("[") else received
            try:
                ipaddress.ip_address(bare)
            except ValueError:
                raise SipParseError(f"{what}: received {_show(received)} is not an IP address"
                                    ) from None
        branch = params.get("branch")
        if branch is not None and not _TOKEN.fullmatch(branch):
            raise SipParseError(f"{what}: the branch {_show(branch)} is not a token")
        return cls(host, port, transport.upper(), params)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {_bracketed(self.host)}{port}{_write_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The ``received`` address, without IPv6 brackets, or None."""
        value = self.params.get("received")
        if value is not None and value.startswith("["):
            return value[1:-1]
        return value

    @property
    def rport(self) -> int | None:
        """The ``rport`` port a server filled in, or None (absent, or asked for without value)."""
        value = self.params.get("rport")
        return int(value) if value else None

    @property
    def default_port(self) -> int:
        return _DEFAULT_PORTS.get(self.transport, 5060)

    @property
    def sent_by(self) -> Addr:
        """(host, port) of the sent-by, the port defaulted by transport (5060 for UDP)."""
        return self.host, self.port if self.port is not None else self.default_port

    def response_address(self) -> Addr:
        """Where a response to this hop goes over UDP (RFC 3261 §18.2.2, RFC 3581 §4).

        The ``received`` address (else the sent-by host), at the ``rport`` port
        (else the sent-by port, else 5060). ``maddr`` is not honoured: a
        response never goes to an address the request did not come from once
        ``received`` is set, which the transaction layer always does.
        """
        host = self.received or self.host
        return host, self.rport or self.sent_by[1]


# --------------------------------------------------------------------------- messages

_CSEQ = re.compile(r"\s*([0-9]{1,10})\s+(" + _TOKEN.pattern + r")\s*")
_CALL_ID = re.compile(r"[!-~]+")


def _cseq(value: str) -> tuple[int, str]:
    match = _CSEQ.fullmatch(value)
    if match is None or int(match.group(1)) >= 2 ** 31:
        raise SipParseError(f"the CSeq {_show(value)} is not 'number METHOD'")
    return int(match.group(1)), match.group(2)


class SipMessage:
    """What requests and responses share: their headers, body and header shortcuts.

    Each property reads its header when called (headers are text and may be
    edited); on a message from :func:`parse_message` none of them raises, on
    one built by hand a missing or malformed header raises SipParseError.
    """

    __slots__ = ()
    headers: Headers
    body: bytes

    def _one(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"the message has no {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self._one("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        """(sequence number, method) of the CSeq header."""
        return _cseq(self._one("CSeq"))

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self._one("From"), "the From header")

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self._one("To"), "the To header")

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        return Via.parse(self._one("Via"))

    @property
    def content_type(self) -> str | None:
        """The Content-Type value as written (with its parameters), or None."""
        return self.headers.get("Content-Type")

    @property
    def contacts(self) -> list[NameAddr]:
        """The Contact values; ``Contact: *`` (REGISTER's remove-all) reads as []."""
        values = self.headers.get_all("Contact")
        if values == ["*"]:
            return []
        return [NameAddr.parse(v, "the Contact header") for v in values]

    @property
    def routes(self) -> list[NameAddr]:
        return [NameAddr.parse(v, "the Route header") for v in self.headers.get_all("Route")]

    @property
    def record_routes(self) -> list[NameAddr]:
        return [NameAddr.parse(v, "the Record-Route header")
                for v in self.headers.get_all("Record-Route")]

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        if value is None:
            return None
        if not _DIGITS.fullmatch(value):
            raise SipParseError(f"Max-Forwards {_show(value)} is not a number")
        return int(value)

    def _start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """The message as bytes: CRLF line ends and a Content-Length that matches the body.

        An existing Content-Length field is rewritten in place; if there is
        none, one is written after the other fields.
        """
        lines = [self._start_line()]
        length = f"Content-Length: {len(self.body)}"
        wrote_length = False
        for key, name, value in self.headers._fields:
            if key == "content-length":
                if not wrote_length:
                    lines.append(length)
                    wrote_length = True
                continue
            lines.append(f"{name}: {value}")
        if not wrote_length:
            lines.append(length)
        lines.append("")
        lines.append("")
        return "\r\n".join(lines).encode() + self.body


@dataclass(eq=True)
class SipRequest(SipMessage):
    """A request: ``method`` (case-sensitive, e.g. ``INVITE``), Request-URI, headers, body."""

    method: str
    uri: SipUri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"


@dataclass(eq=True)
class SipResponse(SipMessage):
    """A response: status code, reason phrase (may be empty), headers, body."""

    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"


# --------------------------------------------------------------------------- parsing

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(r"\r?\n")
_VERSION = re.compile(r"SIP/([0-9]{1,9})\.([0-9]{1,9})", re.I)
_STATUS = re.compile(r"[1-6][0-9][0-9]")


def _version(text: str) -> None:
    match = _VERSION.fullmatch(text)
    if match is None:
        raise SipParseError(f"{_show(text)} is not a SIP version: not a SIP message")
    if (int(match.group(1)), int(match.group(2))) != (2, 0):
        raise SipParseError(f"the SIP version {_show(text)} is not supported (only SIP/2.0)", 505)


def _header_lines(text: str, max_headers: int) -> tuple[str, list[tuple[str, str]]]:
    """The start line and the unfolded ``(name, value)`` fields of a header section."""
    lines = _LINE_END.split(text)
    start = lines[0]
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        if _CONTROL.search(line):
            raise SipParseError(f"the header line {_show(line)} contains a control character")
        if line[:1] in (" ", "\t"):
            if not fields:
                raise SipParseError("the first header line starts with whitespace")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _TOKEN.fullmatch(name):
            raise SipParseError(f"the header line {_show(line)} is not 'Name: value'")
        fields.append((name, value.strip()))
        if len(fields) > max_headers:
            raise SipParseError(f"the message has more than {max_headers} header fields", 513)
    return start, fields


def _check_name_addr(headers: Headers, name: str) -> None:
    values = headers.get_all(name)
    if name == "Contact" and "*" in values:
        if values != ["*"]:
            raise SipParseError("Contact '*' is mixed with other Contact values")
        return
    for value in values:
        NameAddr.parse(value, f"the {name} header")


def _first(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise SipParseError(f"the message has no {name} header")
    return value


def _single(headers: Headers, name: str) -> str:
    lines = headers.get_lines(name)
    if not lines:
        raise SipParseError(f"the message has no {name} header")
    if len(lines) > 1:
        raise SipParseError(f"the message has {len(lines)} {name} headers")
    return lines[0]


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE,
                  max_header_bytes: int = MAX_HEADER_BYTES,
                  max_headers: int = MAX_HEADERS) -> SipRequest | SipResponse:
    """Read one SIP message from one UDP datagram.

    Raises :class:`SipParseError` (and nothing else, for any input) whose
    ``status`` is what a UA answers a malformed request with; see the module
    docstring for what is tolerated and what is refused.
    """
    if len(data) > max_size:
        raise SipParseError(f"the message is {len(data)} bytes, over the {max_size} read", 513)
    start = len(data) - len(data.lstrip(b"\r\n"))
    end = _HEADER_END.search(data, start)
    if end is None:
        raise SipParseError("the header section is not ended by an empty line")
    head, body = data[start:end.start()], data[end.end():]
    if len(head) > max_header_bytes:
        raise SipParseError(
            f"the header section is {len(head)} bytes, over the {max_header_bytes} read", 513)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("the header section is not UTF-8 text") from None
    start_line, fields = _header_lines(text, max_headers)
    if _CONTROL.search(start_line):
        raise SipParseError(f"the start line {_show(start_line)} contains a control character")
    headers = Headers(fields)

    message: SipRequest | SipResponse
    if start_line[:4].upper() == "SIP/":
        parts = start_line.split(None, 2)
        _version(parts[0])
        if len(parts) < 2 or not _STATUS.fullmatch(parts[1]):
            raise SipParseError(f"the status line {_show(start_line)} has no status code 100-699")
        message = SipResponse(int(parts[1]), parts[2].strip() if len(parts) > 2 else "", headers)
    else:
        parts = start_line.split()
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
            raise SipParseError(f"the request line {_show(start_line)} is not "
                                "'METHOD Request-URI SIP/2.0'")
        _version(parts[2])
        try:
            uri = SipUri.parse(parts[1])
        except SipParseError as error:
            raise SipParseError(f"the Request-URI cannot be read: {error}", error.status) from None
        message = SipRequest(parts[0], uri, headers)

    # The fields a transaction and a dialog cannot do without, read now so that the
    # properties never raise on a parsed message.
    if not headers.get_all("Via"):
        raise SipParseError("the message has no Via header")
    for via in headers.get_all("Via"):
        Via.parse(via)
    NameAddr.parse(_single(headers, "From"), "the From header")
    NameAddr.parse(_single(headers, "To"), "the To header")
    call_id = _single(headers, "Call-ID")
    if not _CALL_ID.fullmatch(call_id):
        raise SipParseError(f"the Call-ID {_show(call_id)} is empty or not printable ASCII")
    _, method = _cseq(_single(headers, "CSeq"))
    if isinstance(message, SipRequest) and method != message.method:
        raise SipParseError(f"the CSeq method '{method}' is not the request's '{message.method}'")
    for name in ("Contact", "Route", "Record-Route"):
        _check_name_addr(headers, name)
    if "Max-Forwards" in headers:
        hops = _single(headers, "Max-Forwards")
        if not _DIGITS.fullmatch(hops):
            raise SipParseError(f"Max-Forwards {_show(hops)} is not a number")
    if "Content-Length" in headers:
        length_text = _single(headers, "Content-Length")
        if not _DIGITS.fullmatch(length_text):
            raise SipParseError(f"the Content-Length {_show(length_text)} is not a number")
        length = int(length_text)
        if length > len(body):
            raise SipParseError(f"Content-Length says {length} bytes but {len(body)} follow")
        body = body[:length]
    message.body = body
    return message


def salvage_request(data: bytes) -> SipRequest | None:
    """The parts of an unreadable request that an error response needs, or None.

    Reads the Via, From, To, Call-ID and CSeq fields (the first of each; every
    Via) leniently from the first :data:`MAX_MESSAGE_SIZE` bytes. Every Via and
    the CSeq must be readable: an answer goes where the Via says and the sender
    matches it to its request by the Via's branch and the CSeq's method
    (RFC 3261 §17.1.3). From, To and Call-ID are kept when they can be read and
    left out otherwise, so that a request lacking one is still told why
    (RFC 4475 §3.1.2.18). Returns None for a response, an ACK (never
    answered), or an unreadable Via or CSeq. The returned request has no body
    and a placeholder Request-URI; its ``method`` is the CSeq's.
    """
    text = data[:MAX_MESSAGE_SIZE].decode("utf-8", "replace").lstrip("\r\n")
    lines = _LINE_END.split(text)
    if lines[0][:4].upper() == "SIP/" or lines[0].split(" ", 1)[0] == "ACK":
        return None
    wanted: dict[str, list[str]] = {"via": [], "from": [], "to": [], "call-id": [], "cseq": []}
    last: list[str] | None = None
    for line in lines[1:]:
        if not line:
            break
        if line[:1] in (" ", "\t"):
            if last is not None:
                last[-1] = f"{last[-1]} {line.strip()}"
            continue
        name, colon, value = line.partition(":")
        last = wanted.get(_key(name.strip())) if colon else None
        if last is not None:
            last.append(value.strip())
    headers = Headers()
    try:
        for key in ("via", "cseq"):
            values = wanted[key]
            if not values or any(_CONTROL.search(v) for v in values):
                return None
            for value in values if key == "via" else values[:1]:
                headers.add(key, value)
        request = SipRequest("", SipUri(host="invalid"), headers)
        if not request.vias:
            return None
        request.method = request.cseq[1]
    except (SipParseError, ValueError):
        return None
    if request.method == "ACK":
        return None
    for key in ("from", "to", "call-id"):
        value = next(iter(wanted[key]), "")
        if _CONTROL.search(value) or (key == "call-id" and not _CALL_ID.fullmatch(value)):
            continue
        try:
            if key != "call-id":
                NameAddr.parse(value)
            headers.add(key, value)
        except (SipParseError, ValueError):
            continue
    return request


# --------------------------------------------------------------------------- building

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated", 200: "OK", 202: "Accepted",
    204: "No Notification", 300: "Multiple Choices", 301: "Moved Permanently",
    302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request",
    401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 412: "Conditional Request Failed",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    422: "Session Interval Too Small", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 489: "Bad Event",
    491: "Request Pending", 493: "Undecipherable", 500: "Server Internal Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large",
    580: "Precondition Failure", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}
_CLASS_PHRASES = {1: "Provisional", 2: "Success", 3: "Redirection", 4: "Client Error",
                  5: "Server Error", 6: "Global Failure"}


def reason_phrase(status: int) -> str:
    """The usual reason phrase of ``status`` (its class's name for codes not in the table)."""
    return REASON_PHRASES.get(status) or _CLASS_PHRASES.get(status // 100, "Unknown")


def make_response(request: SipRequest, status: int, reason: str | None = None, *,
                  to_tag: str | None = None, headers: Iterable[tuple[str, str]] = (),
                  body: bytes = b"", content_type: str | None = None) -> SipResponse:
    """A response to ``request`` per RFC 3261 §8.2.6.

    Copies every Via (in order, with the ``received``/``rport`` the transaction
    layer stamped), From, To, Call-ID (each if the request has it: one salvaged
    from a malformed datagram may not) and CSeq; adds ``to_tag`` to To unless the
    request's To already has a tag (an in-dialog request keeps its own); copies
    Timestamp into a 100. ``reason`` defaults to :func:`reason_phrase`; control
    characters in it become spaces and it is cut to 200 characters. ``headers``
    are appended after those, then ``Content-Type`` if given. Record-Route is
    not copied: for a dialog-creating response the UA core passes
    ``headers=[("Record-Route", v) for v in request.headers.get_all("Record-Route")]``
    (RFC 3261 §12.1.1).
    """
    if not 100 <= status <= 699:
        raise ValueError(f"{status} is not a SIP status code")
    phrase = reason_phrase(status) if reason is None else reason
    phrase = "".join(" " if _CONTROL.match(c) or c == "\t" else c for c in phrase)[:200].strip()
    out = Headers()
    for line in request.headers.get_lines("Via"):
        out.add("Via", line)
    for name in ("From", "To", "Call-ID"):
        if name not in request.headers:
            continue  # a request salvaged from a malformed datagram may lack one
        line = _single(request.headers, name)
        if name == "To" and to_tag is not None:
            to = NameAddr.parse(line, "the To header")
            if to.tag is None:
                to.tag = to_tag
                line = str(to)
        out.add(name, line)
    out.add("CSeq", _single(request.headers, "CSeq"))
    if status == 100 and "Timestamp" in request.headers:
        out.add("Timestamp", request.headers.get_lines("Timestamp")[0])
    for name, value in headers:
        out.add(name, value)
    if content_type is not None:
        out.set("Content-Type", content_type)
    return SipResponse(status, phrase, out, body)


def make_cancel(request: SipRequest) -> SipRequest:
    """The CANCEL for a request this UA sent (RFC 3261 §9.1).

    Same Request-URI, From, To, Call-ID and CSeq number; the request's top
    Via only (so the same branch, and the transaction layer matches it to the
    INVITE); its Route values; Max-Forwards 70; no body.
    """
    headers = Headers()
    headers.add("Via", _first(request.headers, "Via"))
    for route in request.headers.get_lines("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", _single(request.headers, "From"))
    headers.add("To", _single(request.headers, "To"))
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", f"{request.cseq[0]} CANCEL")
    return SipRequest("CANCEL", request.uri, headers)


def new_branch() -> str:
    """A fresh RFC 3261 branch: the magic cookie and 20 random hex digits (80 bits)."""
    return MAGIC_COOKIE + secrets.token_hex(10)


def new_tag() -> str:
    """A fresh From/To tag: 16 random hex digits (64 bits, RFC 3261 §19.3 wants ≥ 32)."""
    return secrets.token_hex(8)


def new_call_id(host: str) -> str:
    """A fresh Call-ID ``<24 random hex digits>@host``."""
    return f"{secrets.token_hex(12)}@{host}"
