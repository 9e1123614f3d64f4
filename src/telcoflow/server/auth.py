"""Who is calling: API keys and mTLS identities → connectors; voice tokens.

Voice tokens are ``v1.<payload>.<mac>`` with a base64url JSON payload
``{"c": call_id, "k": connector_uuid, "e": expiry_unix}`` and an HMAC-SHA256
over it with a per-process secret: opaque to the SDK, bound to one call and
one connector, and expiring. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
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

    def connector_for(self, headers: dict[str, str], peer_cert: dict[str, Any] | None) -> Connector:
        key = headers.get("x-api-key")
        if key:
            connector = self._by_key.get(_digest(key))
            if connector is None:
                raise AuthError("invalid API key")
            claimed = headers.get("x-connector-uuid")
            if not claimed:
                raise AuthError("missing x-connector-uuid: send it with x-api-key")
            # bytes: compare_digest refuses a str with non-ASCII characters (a TypeError)
            if not hmac.compare_digest(claimed.encode("utf-8", "surrogateescape"),
                                       connector.uuid.encode()):
                raise AuthError("the API key does not belong to connector in x-connector-uuid")
            return connector
        if peer_cert is not None:
            for cn in _common_names(peer_cert):
                if cn in self._by_cn:
                    return self._by_cn[cn]
            raise AuthError("client certificate is valid but not registered to any connector")
        raise AuthError("missing credentials: send x-api-key and x-connector-uuid, "
                        "or connect with a client certificate")

    def check_phone(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get("x-api-key")
        if not key:
            raise AuthError("missing credentials: send Authorization: Bearer <phone network key>")
        if _digest(key) not in self._phone_keys:
            raise AuthError("invalid phone network key")

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
                           now: float | None = None) -> str:
        """Return the connector uuid the token was issued to, or raise AuthError."""
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise AuthError("missing voice token: send Authorization: Bearer <token from call.in>")
        parts = auth[7:].strip().split(".")
        if len(parts) != 3 or parts[0] != "v1":
            raise AuthError("voice token is malformed")
        if not hmac.compare_digest(parts[2], self._mac(parts[1])):
            raise AuthError("voice token signature is invalid")
        try:
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            raise AuthError("voice token is malformed") from None
        if claims.get("c") != call_id:
            raise AuthError("voice token was issued for another call")
        if int(claims.get("e", 0)) < (now if now is not None else time.time()):
            raise AuthError("voice token has expired")
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
