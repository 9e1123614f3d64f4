"""Shared fixtures: a real gateway on loopback, the published SDK in isolation."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from telcoflow import (
    Call,
    CallAudioConfig,
    SessionManager,
    SessionManagerConfig,
    SessionNotification,
)
from telcoflow.testing import GatewayThread

from .refsdk import REFSDK_DIR, ensure_refsdk

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def refsdk_path() -> Path:
    """The published SDK in its own directory (installed on first use, never beside ours)."""
    return ensure_refsdk(REFSDK_DIR)


def refsdk_command(script: Path | str, *args: str) -> list[str]:
    """Run a script with only the published SDK importable: no site-packages (-S)."""
    return [sys.executable, "-S", "-u", str(script), *args]


def refsdk_env(refsdk: Path, gw: GatewayThread, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "WSS_"))}
    env.update(PYTHONPATH=str(refsdk), WSS_API_KEY=gw.api_key,
               WSS_CONNECTOR_UUID=gw.connector_uuid, TELCOFLOW_BASE_URL=gw.ws_url, **extra)
    return env


@pytest.fixture
def gateway() -> Iterator[GatewayThread]:
    with GatewayThread(ring_timeout_s=10.0) as gw:
        yield gw


def our_agent(gw: GatewayThread, on_call: Callable[[Call], Awaitable[None]],
              api_key: str | None = None, connector: str | None = None,
              rate: int = 16000) -> SessionManager:
    """Our SDK as an agent of ``gw``: every call offered is claimed and given to
    ``on_call`` (enter the returned manager with ``async with``)."""
    config = SessionManagerConfig.create(api_key=api_key or gw.api_key,
                                         connector_uuid=connector or gw.connector_uuid,
                                         base_url=gw.ws_url,
                                         call_audio=CallAudioConfig(sample_rate=rate))
    sm = SessionManager(config)

    @sm.on_session_notification
    async def offered(noti: SessionNotification) -> None:
        session = await sm.open_session(noti.session_id)
        session.on_incoming_call(on_call)
        await session.ready()

    return sm
