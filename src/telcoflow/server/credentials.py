"""Where a development gateway leaves its generated credentials for local tools.

The file is written with mode 0600 and read by ``telcoflow call`` and the
demo; keys are shown once on the terminal at start and never logged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .config import GatewayConfig


def credentials_path() -> Path:
    override = os.environ.get("TELCOFLOW_CREDENTIALS")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "telcoflow" / \
        "dev-credentials.json"


def save(config: GatewayConfig) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    connector = config.connectors[0]
    data = {"base_url": config.voice_base_url(), "api_key": connector.api_keys[0],
            "connector_uuid": connector.uuid, "numbers": connector.numbers,
            "phone_key": config.phone_keys[0] if config.phone_keys else None,
            "twilio_auth_token": config.twilio.auth_token if config.twilio else None,
            "audiocodes_token": config.audiocodes.tokens[0] if config.audiocodes else None}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return path


def load() -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(credentials_path().read_text())
        return data
    except (OSError, ValueError):
        return {}
