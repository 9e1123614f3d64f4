"""Worker processes of one host (``telcoflow serve --workers N``).

Every worker opens the gateway's port with ``SO_REUSEPORT``, so the kernel spreads
agents' session-manager and REST connections and callers over them, and all share
the Redis registry. A call's media stays in the worker that holds its phone leg:
each worker also listens on a port of its own and gives that one in ``call.in``.
"""

from __future__ import annotations

import logging
import os
import socket

from .config import GatewayConfig
from .errors import ConfigError

logger = logging.getLogger(__name__)

WORKER_ENV = "TELCOFLOW_WORKER"  # the worker's index, set by the supervisor


def worker_count(text: str) -> int:
    """``--workers``: a positive number, or ``auto`` (one per core)."""
    if text == "auto":
        return os.cpu_count() or 1
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"--workers must be a positive number or auto, not {text!r}")
    return count


def require_registry(config: GatewayConfig, workers: int) -> None:
    if workers > 1 and config.registry.url is None:
        raise ConfigError(
            f"--workers {workers} needs a shared session registry: run Redis and set "
            '[registry] url = "redis://127.0.0.1:6379/0" in the config file '
            "(docs/scale-out.md); without it, run one worker")


def as_worker(config: GatewayConfig, index: int) -> None:
    """Make ``config`` worker ``index``'s: the shared port, its own voice port (the next
    ports after the shared one; ephemeral when the shared one is), its own node id."""
    if config.public_url:  # one URL cannot name N workers' voice ports
        logger.warning("[server] public_url is ignored with --workers: each worker names "
                       "its own voice port in call.in")
        config.public_url = None
    config.reuse_port = True
    config.voice_port = config.port + 1 + index if config.port else 0
    base = config.registry.node_id or socket.gethostname()
    config.registry.node_id = f"{base}-w{index}"
