"""Who is calling: API keys and mTLS identities → connectors; voice tokens.

Voice tokens are ``v1.<payload>.<mac>`` with a base64url JSON payload
``{"c": call_id, "k": connector_uuid, "e": expiry_unix}`` and an HMAC-SHA256
over it with a per-process secret: opaque to the SDK, bound to one call and
one connector, and expiring. Comparisons are constant-time.

Every refusal is counted in :attr:`Authenticator.failures` by plane and reason
(a short fixed code; never the credential) for the metrics.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import weakref
from collections import Counter
from typing import Any

from .config import Connector, GatewayConfig
from .errors import AuthError


class Authenticator:
    def __init__(self, config: GatewayConfig, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self._ttl = config.token_ttl_s
        self._by_key = {_digest(k): c for c in config.connectors for k in c.api_keys}
        self._by_cn = {cn: c for c in config.connectors for cn in c.cert_common_names}
        self._phone_keys = {_digest(k) for k in config.phone_keys}
        # refusals by (plane, reason); the planes are the callers' (see each method)
        self.failures: Counter[tuple[str, str]] = Counter()
        self._refusals: weakref.WeakSet[AuthError] = weakref.WeakSet()

    def refused(self, plane: str, reason: str, message: str) -> AuthError:
        """Count a refusal and make its error (a door that checks credentials of its own
        counts through here too). ``reason`` is a short fixed code, never the credential."""
        self.failures[(plane, reason)] += 1
        exc = AuthError(message)
        self._refusals.add(exc)
        return exc

    def counted(self, exc: AuthError) -> bool:
        """Whether ``exc`` is a refusal already counted (made by :meth:`refused`)."""
        return exc in self._refusals

    def connector_for(self, headers: dict[str, str], peer_cert: dict[str, Any] | None,
                      plane: str = "agent") -> Connector:
        key = headers.get("x-api-key")
        if key:
            connector = self._by_key.get(_digest(key))
            if connector is None:
                raise self.refused(plane, "invalid_key", "invalid API key")
            claimed = headers.get("x-connector-uuid")
            if not claimed:
                raise self.refused(plane, "missing_connector",
                                   "missing x-connector-uuid: send it with x-api-key")
            # bytes: compare_digest refuses a str with non-ASCII characters (a TypeError)
            if not hmac.compare_digest(claimed.encode("utf-8", "surrogateescape"),
                                       connector.uuid.encode()):
                raise self.refused(plane, "wrong_connector", "the API key does not belong to "
                                   "connector in x-connector-uuid")
            return connector
        if peer_cert is not None:
            for cn in _common_names(peer_cert):
                if cn in self._by_cn:
                    return self._by_cn[cn]
            raise self.refused(plane, "unknown_certificate", "client certificate is valid but "
                               "not registered to any connector")
        raise self.refused(plane, "missing", "missing credentials: send x-api-key and "
                           "x-connector-uuid, or connect with a client certificate")

    def connector_by_key(self, key: str, plane: str) -> Connector:
        """The connector an API key alone belongs to (a person pasting a key into the
        console knows the key, not the connector's uuid). Looked up by the key's digest."""
        connector = self._by_key.get(_digest(key)) if key else None
        if connector is None:
            raise self.refused(plane, "invalid_key" if key else "missing", "invalid API key")
        return connector

    def check_phone(self, headers: dict[str, str], plane: str = "phone") -> None:
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get("x-api-key")
        if not key:
            raise self.refused(plane, "missing", "missing credentials: send Authorization: "
                               "Bearer <phone network key>")
        if _digest(key) not in self._phone_keys:
            raise self.refused(plane, "invalid_key", "invalid phone network key")

    # ── voice tokens ───────────────────────────────────────────────────────
    def issue_voice_token(self, call_id: str, connector_uuid: str, now: float | None = None,
                          ttl: float | None = None) -> str:
        """``ttl`` (seconds) overrides ``token_ttl_s``: a Twilio stream token lives a minute."""
        life = self._ttl if ttl is None else ttl
        expiry = int((now if now is not None else time.time()) + life)
        payload = _b64(json.dumps({"c": call_id, "k": connector_uuid, "e": expiry},
                                  separators=(",", ":")).encode())
        return f"v1.{payload}.{self._mac(payload)}"

    def verify_voice_token(self, headers: dict[str, str], call_id: str,
                           now: float | None = None, plane: str = "voice") -> str:
        """Return the connector uuid the token was issued to, or raise AuthError."""
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise self.refused(plane, "missing", "missing voice token: send Authorization: "
                               "Bearer <token from call.in>")
        parts = auth[7:].strip().split(".")
        if len(parts) != 3 or parts[0] != "v1":
            raise self.refused(plane, "malformed", "voice token is malformed")
        if not hmac.compare_digest(parts[2], self._mac(parts[1])):
            raise self.refused(plane, "bad_signature", "voice token signature is invalid")
        try:
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            raise self.refused(plane, "malformed", "voice token is malformed") from None
        if claims.get("c") != call_id:
            raise self.refused(plane, "other_call", "voice token was issued for another call")
        if int(claims.get("e", 0)) < (now if now is not None else time.time()):
            raise self.refused(plane, "expired", "voice token has expired")
        return str(claims.get("k"))

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _common_names(cert: dict[str, Any]) -> list[str]:
    names = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    names += [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]
    return names


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
