"""Console sessions: signed, expiring cookies bound to one connector (sans-I/O).

A session is ``v1.<payload>.<mac>``: a base64url JSON payload ``{"c": connector
uuid, "e": expiry (unix s)}`` and an HMAC-SHA256 over it with a per-process
secret. The server keeps nothing per session, so a console left open (or a
thousand logins) costs no memory, and a restart logs everyone out. The API key
that opened the session is never in it: the cookie names the connector only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets

COOKIE = "tfconsole"
# the signing secret every process of one gateway shares (workers, nodes): a cookie
# one worker issued is then good on the next connection, which the kernel may give
# to another worker; unset, each process signs with its own (a restart logs out)
SECRET_ENV = "TELCOFLOW_CONSOLE_SECRET"
SESSION_TTL_S = 12 * 3600
MAX_COOKIE_CHARS = 512  # ours are ~150; a longer value is not one of ours, not parsed


class SessionSigner:
    def __init__(self, secret: bytes | None = None, ttl_s: int = SESSION_TTL_S) -> None:
        shared = os.environ.get(SECRET_ENV, "")
        self._secret = secret or (hashlib.sha256(shared.encode()).digest() if shared
                                  else secrets.token_bytes(32))
        self.ttl_s = ttl_s

    def issue(self, connector_uuid: str, now: float) -> str:
        payload = _b64(json.dumps({"c": connector_uuid, "e": int(now) + self.ttl_s},
                                  separators=(",", ":")).encode())
        return f"v1.{payload}.{self._mac(payload)}"

    def verify(self, value: str, now: float) -> str | None:
        """The connector uuid of a valid, unexpired session; None for anything else."""
        parts = value.split(".")
        if len(value) > MAX_COOKIE_CHARS or len(parts) != 3 or parts[0] != "v1":
            return None
        if not hmac.compare_digest(parts[2].encode(), self._mac(parts[1]).encode()):
            return None
        try:  # signed by us, so well-formed; checked anyway (a changed format, a bug)
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            connector, expiry = str(claims["c"]), int(claims["e"])
        except (ValueError, KeyError, TypeError):
            return None
        return connector if expiry > now else None

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())


def cookie_value(header: str) -> str | None:
    """Our cookie's value in a ``Cookie`` header (other cookies of the host ignored)."""
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE:
            return value
    return None


def set_cookie(value: str, max_age: int, secure: bool) -> str:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it)."""
    flags = "; Secure" if secure else ""
    return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{flags}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
