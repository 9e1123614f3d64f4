"""SIP digest authentication (RFC 2617, RFC 7616; RFC 3261 §22), sans-I/O.

Algorithms ``MD5``, ``SHA-256`` and their ``-sess`` variants; ``qop=auth``
(``auth-int`` is not supported).

Server side — :class:`DigestChallenger` needs no state: each nonce carries
the time it was issued and an HMAC of that time under the challenger's
secret, so any nonce it issued can be checked later (by any process sharing
the secret) and refused as *stale* after ``nonce_ttl`` seconds. ``verify``
raises a :class:`~.errors.DigestError` whose ``status`` says what to answer:

* 400 — credentials that cannot be read (not Digest, a missing or malformed
  parameter, no ``qop=auth``);
* 401 (407 for a proxy) as :class:`~.errors.DigestChallenge`, carrying the
  challenge to send — a stale nonce with a correct response (``stale=true``:
  the client retries without asking its user), a nonce we did not issue,
  another realm, an algorithm we did not offer;
* 403 — an unknown user, or a wrong response.

Exception messages name the user (as the client wrote it) but never a
password, HA1 or the expected response; they are for logs — send the plain
reason phrase ("Forbidden") on the wire, so a caller cannot tell an unknown
user from a wrong password. Responses are compared in constant time.

Being stateless, the challenger does not track ``nc``: a captured
Authorization can be replayed for the same method and URI until its nonce
goes stale. Keep ``nonce_ttl`` short where that matters.

Client side — :func:`authorization` answers a 401/407 challenge from a trunk
for one of our outbound requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import DigestChallenge, DigestError

__all__ = [
    "ALGORITHMS",
    "Challenge",
    "Credentials",
    "DigestChallenger",
    "authorization",
    "digest_response",
    "parse_challenge",
    "parse_credentials",
]

_HASHES = {"MD5": "md5", "SHA-256": "sha256"}  # hashlib names
ALGORITHMS = ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess")
_CANONICAL = {a.upper(): a for a in ALGORITHMS}
_NONCE_BYTES = 32  # 8 time (ms, signed big-endian) + 8 random + 16 HMAC-SHA256 prefix
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_NC = re.compile(r"[0-9a-fA-F]{8}")


def _show(text: str) -> str:
    """A client-supplied string for a log message: quoted, escaped, bounded."""
    return repr(text if len(text) <= 64 else text[:64] + "…")


def _canonical_algorithm(name: str) -> str | None:
    return _CANONICAL.get(name.upper())


def _h(algorithm: str, text: str) -> str:
    base = algorithm.removesuffix("-sess")
    return hashlib.new(_HASHES[base], text.encode("utf-8")).hexdigest()


def digest_response(
    algorithm: str, username: str, realm: str, password: str, method: str, uri: str,
    nonce: str, qop: str | None = None, nc: str | None = None, cnonce: str | None = None,
) -> str:
    """The hex ``response`` value (RFC 7616 §3.4.1; RFC 2069 form when ``qop`` is None).

    ``algorithm`` is one of :data:`ALGORITHMS` (any case); ``qop`` is None or
    ``"auth"``; with ``qop`` (or a ``-sess`` algorithm) ``nc`` and ``cnonce``
    are required.
    """
    alg = _canonical_algorithm(algorithm)
    if alg is None:
        raise DigestError(f"digest algorithm {_show(algorithm)} is not supported "
                          f"(we support {', '.join(ALGORITHMS)})")
    if qop not in (None, "auth"):
        raise DigestError(f"qop {_show(qop)} is not supported (only qop=auth)")
    if (qop is not None or alg.endswith("-sess")) and (nc is None or cnonce is None):
        raise DigestError("qop=auth and -sess algorithms need nc and cnonce")
    ha1 = _h(alg, f"{username}:{realm}:{password}")
    if alg.endswith("-sess"):
        ha1 = _h(alg, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(alg, f"{method}:{uri}")
    if qop is None:
        return _h(alg, f"{ha1}:{nonce}:{ha2}")
    return _h(alg, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# ── header syntax ───────────────────────────────────────────────────────────

def _params(value: str, what: str) -> dict[str, str]:
    """``Digest name=token, name="quoted", ...`` → {lower-case name: value}."""
    text = value.strip()
    scheme, rest = (text.split(None, 1) + ["", ""])[:2]
    if scheme.lower() != "digest":
        raise DigestError(f"{what} uses the {_show(scheme)} scheme; only Digest is accepted",
                          status=400)
    out: dict[str, str] = {}
    i, n = 0, len(rest)
    while True:
        while i < n and rest[i] in " \t\r\n,":
            i += 1
        if i >= n:
            return out
        m = _TOKEN.match(rest, i)
        if m is None:
            raise DigestError(f"{what} has a malformed parameter at {_show(rest[i:i + 20])}",
                              status=400)
        name = m.group().lower()
        i = m.end()
        while i < n and rest[i] in " \t":
            i += 1
        if i >= n or rest[i] != "=":
            raise DigestError(f"{what} parameter {_show(name)} has no '=value'", status=400)
        i += 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            if i >= n:
                raise DigestError(f"{what} parameter {_show(name)} has an unterminated "
                                  "quoted string", status=400)
            i += 1
            val = "".join(chars)
        else:
            m = _TOKEN.match(rest, i)
            if m is None:
                raise DigestError(f"{what} parameter {_show(name)} has no value", status=400)
            val = m.group()
            i = m.end()
        if name in out:
            raise DigestError(f"{what} repeats the parameter {_show(name)}", status=400)
        out[name] = val
        while i < n and rest[i] in " \t\r\n":
            i += 1
        if i < n and rest[i] != ",":
            raise DigestError(f"{what} parameter {_show(name)} is not followed by ','",
                              status=400)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Challenge:
    """A ``WWW-Authenticate`` / ``Proxy-Authenticate`` Digest challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ("auth",)  # offered; () for an RFC 2069 challenge
    opaque: str | None = None
    stale: bool = False

    def to_header(self) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        return "Digest " + ", ".join(parts)


def parse_challenge(value: str) -> Challenge:
    """Read a Digest challenge; :class:`DigestError` (400) when it cannot be used."""
    p = _params(value, "the challenge")
    missing = [k for k in ("realm", "nonce") if k not in p]
    if missing:
        raise DigestError(f"the challenge lacks {', '.join(missing)}", status=400)
    qop = tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip())
    return Challenge(realm=p["realm"], nonce=p["nonce"], algorithm=p.get("algorithm", "MD5"),
                     qop=qop, opaque=p.get("opaque"), stale=p.get("stale", "").lower() == "true")


@dataclass(frozen=True, slots=True)
class Credentials:
    """An ``Authorization`` / ``Proxy-Authorization`` Digest value."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None  # None: not given (means MD5)
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    def to_header(self) -> str:
        parts = [f"username={_quote(self.username)}", f"realm={_quote(self.realm)}",
                 f"nonce={_quote(self.nonce)}", f"uri={_quote(self.uri)}",
                 f"response={_quote(self.response)}"]
        if self.algorithm is not None:
            parts.append(f"algorithm={self.algorithm}")
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        return "Digest " + ", ".join(parts)


def parse_credentials(value: str) -> Credentials:
    """Read Digest credentials; :class:`DigestError` (400) naming what is wrong."""
    p = _params(value, "the Authorization header")
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
    if missing:
        raise DigestError(f"the Authorization header lacks {', '.join(missing)}", status=400)
    qop = p.get("qop")
    nc = p.get("nc")
    if qop is not None:
        qop = qop.lower()
        if nc is None or "cnonce" not in p:
            raise DigestError("qop is given without nc and cnonce", status=400)
        if not _NC.fullmatch(nc):
            raise DigestError(f"nc must be 8 hex digits, got {_show(nc)}", status=400)
    return Credentials(username=p["username"], realm=p["realm"], nonce=p["nonce"], uri=p["uri"],
                       response=p["response"], algorithm=p.get("algorithm"), qop=qop, nc=nc,
                       cnonce=p.get("cnonce"), opaque=p.get("opaque"))


# ── client ──────────────────────────────────────────────────────────────────

def authorization(
    challenge_header: str, method: str, uri: str, username: str, password: str,
    cnonce: str, nc: int = 1,
) -> str:
    """The ``Authorization`` (or ``Proxy-Authorization``) value answering a trunk's
    401/407 challenge for our ``method`` request to ``uri``.

    Uses ``qop=auth`` when offered (with ``cnonce`` and ``nc``: 1 for the first
    request under this nonce, +1 for each further one), the RFC 2069 form when
    the challenge offers no qop. :class:`DigestError` when the challenge cannot
    be answered (unknown algorithm, only ``auth-int``).
    """
    ch = parse_challenge(challenge_header)
    alg = _canonical_algorithm(ch.algorithm)
    if alg is None:
        raise DigestError(f"the challenge asks for algorithm {_show(ch.algorithm)}; "
                          f"we support {', '.join(ALGORITHMS)}")
    if not 1 <= nc <= 0xFFFFFFFF:
        raise ValueError(f"nc must be 1..0xFFFFFFFF, got {nc}")
    qop: str | None = None
    if ch.qop:
        if "auth" not in ch.qop:
            raise DigestError(f"the challenge offers qop {_show(','.join(ch.qop))}; "
                              "we support only qop=auth")
        qop = "auth"
    use_cnonce = qop is not None or alg.endswith("-sess")
    nc_text = f"{nc:08x}" if use_cnonce else None
    response = digest_response(alg, username, ch.realm, password, method, uri, ch.nonce,
                               qop, nc_text, cnonce if use_cnonce else None)
    return Credentials(
        username=username, realm=ch.realm, nonce=ch.nonce, uri=uri, response=response,
        algorithm=ch.algorithm, qop=qop, nc=nc_text, cnonce=cnonce if use_cnonce else None,
        opaque=ch.opaque).to_header()


# ── server ──────────────────────────────────────────────────────────────────

PasswordLookup = Callable[[str], str | None]
"""username → its password in our realm, or None for an unknown user."""


class DigestChallenger:
    """Stateless digest challenges and checks for one realm.

    ``secret`` keys the nonce HMAC (random per process when omitted; share it
    between processes that must accept each other's nonces). ``algorithms``
    are offered in order of preference, one challenge each (RFC 7616 §3.7);
    MD5 alone by default, since most SIP peers know nothing else.
    ``proxy=True`` makes the challenge status 407 (Proxy-Authenticate).
    """

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes | None = None,
        algorithms: Sequence[str] = ("MD5",),
        nonce_ttl: float = 300.0,
        proxy: bool = False,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not realm or '"' in realm or "\\" in realm:
            raise ValueError("realm must be non-empty, without quotes or backslashes")
        canonical = [_canonical_algorithm(a) for a in algorithms]
        if not canonical or any(a is None for a in canonical):
            raise ValueError(f"algorithms must be a non-empty selection of {ALGORITHMS}, "
                             f"got {tuple(algorithms)}")
        if nonce_ttl <= 0:
            raise ValueError("nonce_ttl must be positive")
        self.realm = realm
        self.algorithms: tuple[str, ...] = tuple(a for a in canonical if a is not None)
        self.nonce_ttl = nonce_ttl
        self.status = 407 if proxy else 401
        self._secret = secret if secret is not None else os.urandom(32)
        self._random = random

    # -- nonces ----------------------------------------------------------------------------

    def _mac(self, stamp: bytes) -> bytes:
        msg = b"telcoflow-digest-nonce\0" + self.realm.encode() + b"\0" + stamp
        return hmac.new(self._secret, msg, hashlib.sha256).digest()[:16]

    def nonce(self, now: float) -> str:
        """A new nonce issued at ``now`` (seconds, the same clock ``verify`` is given)."""
        stamp = int(now * 1000).to_bytes(8, "big", signed=True) + self._random(8)
        return base64.urlsafe_b64encode(stamp + self._mac(stamp)).decode().rstrip("=")

    def _nonce_age(self, nonce: str, now: float) -> float | None:
        """Seconds since we issued ``nonce``; None if we did not issue it."""
        if len(nonce) != 43:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=")
        except (ValueError, TypeError):
            return None
        if len(raw) != _NONCE_BYTES or not hmac.compare_digest(raw[16:], self._mac(raw[:16])):
            return None
        age = now - int.from_bytes(raw[:8], "big", signed=True) / 1000
        return age if age >= -1.0 else None  # issued "in the future": a clock we do not share

    # -- challenges ------------------------------------------------------------------------

    def challenges(self, now: float, *, stale: bool = False) -> list[str]:
        """One challenge header value per algorithm, preferred first, sharing one nonce."""
        nonce = self.nonce(now)
        return [Challenge(self.realm, nonce, alg, ("auth",), stale=stale).to_header()
                for alg in self.algorithms]

    def challenge(self, now: float, *, stale: bool = False) -> str:
        """The preferred challenge: the WWW-Authenticate (Proxy-Authenticate) value."""
        return self.challenges(now, stale=stale)[0]

    def _retry(self, message: str, now: float, stale: bool = False) -> DigestChallenge:
        return DigestChallenge(message, self.challenge(now, stale=stale), status=self.status)

    def verify(
        self, authorization: str, method: str, credentials: PasswordLookup, now: float
    ) -> str:
        """Check an Authorization (Proxy-Authorization) value for a ``method`` request;
        the authenticated username, or a :class:`DigestError` (see the module doc)."""
        cred = parse_credentials(authorization)
        if cred.qop is None:
            raise DigestError("credentials without qop=auth (RFC 2069 form) are not accepted; "
                              "the challenge asked for qop=auth", status=400)
        if cred.qop != "auth":
            raise DigestError(f"qop {_show(cred.qop)} is not supported (only qop=auth)",
                              status=400)
        if cred.realm != self.realm:
            raise self._retry(f"the credentials are for realm {_show(cred.realm)}, "
                              f"not {_show(self.realm)}", now)
        alg = _canonical_algorithm(cred.algorithm or "MD5")
        if alg is None or alg not in self.algorithms:
            raise self._retry(f"algorithm {_show(cred.algorithm or 'MD5')} was not offered "
                              f"(we offer {', '.join(self.algorithms)})", now)
        age = self._nonce_age(cred.nonce, now)
        if age is None:
            raise self._retry("the nonce was not issued by this server", now)
        password = credentials(cred.username)
        if password is None:
            raise DigestError(f"unknown user {_show(cred.username)}", status=403)
        expected = digest_response(alg, cred.username, self.realm, password, method, cred.uri,
                                   cred.nonce, cred.qop, cred.nc, cred.cnonce)
        if not hmac.compare_digest(expected.encode(), cred.response.lower().encode()):
            raise DigestError(f"wrong digest response for user {_show(cred.username)}",
                              status=403)
        if age > self.nonce_ttl:
            raise self._retry(f"the nonce is {age:.0f} s old (limit {self.nonce_ttl:.0f} s)",
                              now, stale=True)
        return cred.username
