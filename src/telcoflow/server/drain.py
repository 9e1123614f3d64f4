"""Draining a gateway (``SIGTERM``): new calls refused, live ones given time to end.

A node being replaced or scaled down stops taking calls at once (callers get
``SERVICE_UNAVAILABLE``; ``/readyz`` answers 503 so a load balancer sends the next
ones elsewhere), lets the calls it holds finish for up to the grace period, then
stops: calls still live end for their callers with ``SERVER_SHUTDOWN`` and for
their agents with ``session.closed`` cause ``GATEWAY_SHUTDOWN``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import Gateway

logger = logging.getLogger(__name__)

CHECK_S = 0.1  # how often the live calls are counted while draining


async def drain(gateway: Gateway, grace_s: float) -> int:
    """Refuse new calls and wait up to ``grace_s`` for live ones; returns how many are
    left (the caller's :meth:`Gateway.stop` ends them)."""
    engine = gateway.engine
    engine.refusing = "the gateway is draining: it takes no new calls"
    gateway.readiness = "stopping"
    logger.info("draining: %d call(s) live, grace %.0f s", len(engine.calls), grace_s)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    for _ in range(int(grace_s / CHECK_S) + 1):
        if not engine.calls or loop.time() >= deadline:
            break
        await asyncio.sleep(CHECK_S)
    left = len(engine.calls)
    if left:
        logger.warning("drain grace over: ending %d live call(s) (GATEWAY_SHUTDOWN)", left)
    return left
