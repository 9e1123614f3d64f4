"""Where development gateways leave their generated credentials for local tools.

One file (mode 0600) holds an entry per gateway, keyed by its base URL, so two
gateways on one machine never take each other's place: ``telcoflow call``,
``telcoflow agent`` and the demo read the entry of the gateway they are pointed at
(``--url`` or ``TELCOFLOW_URL``); with no URL, the only gateway saved, else the one
on the default URL; with several and none chosen, :class:`CredentialsError` names
them. A gateway removes its entry when it stops. Keys are shown once on the
terminal at start and never logged. A gateway with its QUIC door open also
leaves the door's port and its certificate's fingerprint, so ``telcoflow call
--via quic`` needs neither flag.

Why a file in the user's cache directory rather than the working directory: the
tools are run from anywhere (another terminal, another checkout) and the keys must
not land in a repository by accident.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .config import GatewayConfig

DEFAULT_URL = "ws://localhost:8080"


class CredentialsError(Exception):
    """Which gateway's credentials to use cannot be told (the message says what to pass)."""


def credentials_path() -> Path:
    override = os.environ.get("TELCOFLOW_CREDENTIALS")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "telcoflow" / \
        "dev-credentials.json"


def _gateways() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    if "base_url" in data:  # the single-gateway file of earlier versions
        return {str(data["base_url"]): data}
    gateways = data.get("gateways")
    return {str(k): v for k, v in gateways.items() if isinstance(v, dict)} \
        if isinstance(gateways, dict) else {}


def _write(gateways: dict[str, dict[str, Any]]) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"gateways": gateways}, fh)
    return path


def save(config: GatewayConfig) -> Path:
    connector = config.connectors[0]
    url = config.voice_base_url()
    gateways = _gateways()
    gateways[url] = {
        "base_url": url, "api_key": connector.api_keys[0], "connector_uuid": connector.uuid,
        "numbers": connector.numbers,
        "phone_key": config.phone_keys[0] if config.phone_keys else None,
        "twilio_auth_token": config.twilio.auth_token if config.twilio else None,
        "audiocodes_token": config.audiocodes.tokens[0] if config.audiocodes else None,
        # the QUIC door (``serve --quic PORT``), once open: its UDP port on the URL's host
        # and the SHA-256 of its certificate, which clients pin (not a secret)
        "quic_port": config.quic.port if config.quic and config.quic.fingerprint else None,
        "quic_fingerprint": (config.quic.fingerprint or None) if config.quic else None}
    return _write(gateways)


def forget(config: GatewayConfig) -> None:
    """The gateway stopped: its entry goes (tools then say so rather than fail to connect)."""
    gateways = _gateways()
    if gateways.pop(config.voice_base_url(), None) is not None:
        _write(gateways)


def _norm(url: str) -> str:
    return url.rstrip("/").replace("://127.0.0.1:", "://localhost:")


def load(url: str | None = None) -> dict[str, Any]:
    """The saved credentials of the gateway at ``url`` (see the module docstring);
    ``{}`` if none is saved for it."""
    gateways = _gateways()
    if url:
        return next((v for k, v in gateways.items() if _norm(k) == _norm(url)), {})
    if len(gateways) == 1:
        return next(iter(gateways.values()))
    on_default = [v for k, v in gateways.items() if _norm(k) == _norm(DEFAULT_URL)]
    if on_default:
        return on_default[0]
    if gateways:
        raise CredentialsError("several development gateways are saved ("
                               + ", ".join(sorted(gateways)) + "): pass --url")
    return {}
