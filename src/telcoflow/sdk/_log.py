"""Loggers named as the published SDK's modules, under the ``telcoflow`` hierarchy.

Application code configures e.g. ``telcoflow.voice_session`` exactly as the
SDK page shows. Nothing here ever formats a key, token or certificate.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = "telcoflow"

logging.getLogger(ROOT).addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{ROOT}.{name}")


class _NoFrameDump(logging.LoggerAdapter[logging.Logger]):
    """Hands websockets a logger that can never emit DEBUG.

    websockets logs every frame and handshake header at DEBUG; those carry the
    API key and the voice token, so that level is switched off for good (it
    also spares the per-frame formatting cost when an app enables DEBUG).
    """

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]
                ) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


WS_LOGGER = _NoFrameDump(get_logger("websockets"), {})


def safe_url(url: str) -> str:
    """The URL without user info, query or fragment (where a token could hide)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
