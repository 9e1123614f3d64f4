"""Fixtures of the SDK tests: agents in-process or as example scripts."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np

from telcoflow import SessionManager, SessionManagerConfig
from telcoflow.testing import GatewayThread, Phone

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def example_command(name: str, *args: str) -> list[str]:
    return [sys.executable, "-u", str(EXAMPLES / name), *args]


def example_env(gw: GatewayThread, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSS_")}
    env.update(WSS_API_KEY=gw.api_key, WSS_CONNECTOR_UUID=gw.connector_uuid,
               TELCOFLOW_BASE_URL=gw.ws_url, PYTHONPATH=str(EXAMPLES), **extra)
    return env


def config_for(gw: GatewayThread, rate: int = 16000, **audio: object) -> SessionManagerConfig:
    from telcoflow import CallAudioConfig
    return SessionManagerConfig.create(api_key=gw.api_key, connector_uuid=gw.connector_uuid,
                                       base_url=gw.ws_url,
                                       call_audio=CallAudioConfig(sample_rate=rate, **audio))  # type: ignore[arg-type]


@asynccontextmanager
async def dialled(gw: GatewayThread, rate: int = 16000) -> AsyncIterator[Phone]:
    """A phone that has dialled the gateway's number (not necessarily answered)."""
    async with Phone(gw.ws_url, gw.phone_key) as phone:
        await phone.dial(to=gw.number, caller="+15550001", codec="pcm16", sample_rate=rate)
        yield phone


@asynccontextmanager
async def manager(gw: GatewayThread, rate: int = 16000) -> AsyncIterator[SessionManager]:
    async with SessionManager(config_for(gw, rate)) as sm:
        yield sm


def noise(seconds: float, rate: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-8000, 8000, int(seconds * rate)).astype(np.int16)


def find(heard: np.ndarray, sent: np.ndarray) -> int:
    """Offset of ``sent`` inside ``heard`` (exact match of its first 20 ms), or -1."""
    probe = sent[: max(1, len(sent) // 50)]
    n = len(probe)
    for lag in np.flatnonzero(heard[: max(0, len(heard) - n + 1)] == probe[0]):
        if np.array_equal(heard[lag:lag + n], probe):
            return int(lag)
    return -1
