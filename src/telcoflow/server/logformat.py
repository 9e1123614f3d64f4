"""Structured logs: one JSON object per line (``telcoflow serve --log-format json``).

Each line has ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger`` and
``message``; ``call_id``, ``session_id`` and any other ``extra`` a record was
given (JSON values, dataclasses as objects, anything else as text); and
``exc_info`` / ``stack_info`` as text when present.

No key or token in a line: the code never logs one (DESIGN.md), and this
formatter also scrubs, as a second guard, every string it writes of

- the configured secrets (:func:`config_secrets`: API, phone, metrics keys,
  carrier tokens and passwords), whatever their shape;
- anything shaped like the keys we generate (``tfk_``/``tfp_``/``tft_``/``tfa_``/
  ``tfm_`` + 32 base64url characters) and like our voice tokens
  (``v1.<payload>.<mac>``);
- whatever follows ``Bearer`` (an ``Authorization`` header quoted in an error).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from .config import GatewayConfig

REDACTED = "[REDACTED]"
# the keys config._new_key makes: a "tf?" prefix and secrets.token_urlsafe(24)
_KEY = re.compile(r"\b(tf[a-z])_[A-Za-z0-9_-]{16,}")
# auth.Authenticator.issue_voice_token: v1.<base64url JSON>.<base64url HMAC>
_VOICE_TOKEN = re.compile(r"\bv1\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
_BEARER = re.compile(r"(?i)\b(bearer)\s+(?!<)[^\s\"',;]+")  # not "Bearer <key>" help
_MIN_SECRET = 8  # configured secrets shorter than this are not searched for (too common)

# LogRecord's own attributes: everything else on a record came from ``extra``
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Strings never to write (longest first, so a secret inside another goes too)."""
        merged = set(self._secrets) | {s for s in secrets if len(s) >= _MIN_SECRET}
        self._secrets = sorted(merged, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _KEY.sub(lambda m: f"{m.group(1)}_{REDACTED}", text)
        text = _VOICE_TOKEN.sub(f"v1.{REDACTED}", text)
        return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.scrub(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and name not in out:
                out[name] = self._value(value)
        if record.exc_info:
            out["exc_info"] = self.scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc_info"] = self.scrub(record.exc_text)
        if record.stack_info:
            out["stack_info"] = self.scrub(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))

    def _value(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth < 4:
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return {f.name: self._value(getattr(value, f.name), depth + 1)
                        for f in dataclasses.fields(value)}
            if isinstance(value, dict):
                return {self.scrub(str(k)): self._value(v, depth + 1) for k, v in value.items()}
            if isinstance(value, list | tuple | set | frozenset):
                return [self._value(v, depth + 1) for v in value]
        return self.scrub(str(value))


def config_secrets(config: GatewayConfig) -> list[str]:
    """Every secret a gateway's configuration holds."""
    found = [*config.phone_keys, *config.metrics.keys]
    for connector in config.connectors:
        found += connector.api_keys
    if config.twilio is not None:
        found.append(config.twilio.auth_token)
    if config.audiocodes is not None:
        found += config.audiocodes.tokens
    if config.whatsapp is not None:
        found += [config.whatsapp.app_secret, config.whatsapp.verify_token]
        found += [n.access_token for n in config.whatsapp.numbers]
    if config.sip is not None:
        for trunk in config.sip.trunks:
            found += [p for p in (trunk.password, trunk.out_password) if p]
    return found


def use_json_logs(level: int = logging.INFO, stream: TextIO | None = None) -> JsonFormatter:
    """Log JSON lines to ``stream`` (stderr) from the root logger, replacing its handlers."""
    formatter = JsonFormatter()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return formatter


def redact_config(config: GatewayConfig) -> None:
    """Teach every JSON formatter on the root logger the configuration's secrets (call
    once the configuration is loaded; logging is set up before)."""
    secrets = config_secrets(config)
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            handler.formatter.add_secrets(secrets)
