"""Loggers named as the published SDK's modules, under the ``telcoflow`` hierarchy.

Application code configures e.g. ``telcoflow.voice_session`` exactly as the
SDK page shows. Nothing here ever formats a key, token or certificate.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from ..protocol.ws import NoDebugLogger

ROOT = "telcoflow"

logging.getLogger(ROOT).addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{ROOT}.{name}")


# For websockets, which logs handshake headers (API key, voice token) at DEBUG: never DEBUG.
WS_LOGGER = NoDebugLogger(get_logger("websockets"), {})


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
