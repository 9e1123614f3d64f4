"""The console's fixtures: a gateway with two connectors, echo agents (our SDK) and a
caller in a thread of their own, and Debian's Chromium driven headless by Playwright."""

from __future__ import annotations

import asyncio
import http.client
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import numpy as np
import pytest

from telcoflow.audio.wav import write_wav
from telcoflow.server.config import Connector, GatewayConfig, RecordingsConfig
from telcoflow.testing import GatewayThread
from telcoflow.testing.echo import echo_agent

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "out" / "console"
CHROMIUM = "/usr/bin/chromium"
T = TypeVar("T")

# the fake microphone: a 1 kHz tone burst (150 ms, -12 dBFS) once a second, looped
MIC_RATE = 48000
BURST_S, PERIOD_S = 0.15, 1.0


@dataclass
class Tenant:
    connector: Connector

    @property
    def key(self) -> str:
        return self.connector.api_keys[0]

    @property
    def number(self) -> str:
        return self.connector.numbers[0]


def two_connectors(recordings: Path) -> GatewayConfig:
    tenants = [Connector(str(uuid.uuid4()), [f"tfk_console_{name}_{uuid.uuid4().hex}"],
                         [number], record=True)
               for name, number in (("a", "+15550100"), ("b", "+15550200"))]
    # hold_sound "silence": what the page hears is the echo, never a hold tone
    return GatewayConfig(tenants, [f"tfp_{uuid.uuid4().hex}"], port=0, hold_sound="silence",
                         ring_timeout_s=10.0, recordings=RecordingsConfig(str(recordings)))


class AgentLoop:
    """A thread running an event loop: the connectors' echo agents, and callers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="agents",
                                        daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="package")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with GatewayThread(two_connectors(tmp_path_factory.mktemp("recordings"))) as gateway:
        yield gateway


@pytest.fixture(scope="package")
def tenants(gw: GatewayThread) -> tuple[Tenant, Tenant]:
    return Tenant(gw.config.connectors[0]), Tenant(gw.config.connectors[1])


@pytest.fixture(scope="package")
def agents(gw: GatewayThread, tenants: tuple[Tenant, Tenant]) -> Iterator[AgentLoop]:
    """Echo agents of both connectors, connected before any test calls."""
    loop = AgentLoop()
    stop = loop.run(_event())
    tasks = []
    for tenant in tenants:
        ready = loop.run(_event())
        agent = echo_agent(gw.ws_url, tenant.key, tenant.connector.uuid, 16000, ready, stop)
        tasks.append(asyncio.run_coroutine_threadsafe(agent, loop.loop))
        loop.run(asyncio.wait_for(ready.wait(), 10))
    yield loop
    loop.loop.call_soon_threadsafe(stop.set)
    for task in tasks:
        task.result(10)
    loop.stop()


async def _event() -> asyncio.Event:
    return asyncio.Event()


# ── plain HTTP ──────────────────────────────────────────────────────────────

def request(gw: GatewayThread, method: str, path: str, body: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.config.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read()
    finally:
        conn.close()


def login(gw: GatewayThread, key: str) -> str:
    """A session cookie (``name=value``) for ``key``'s connector."""
    status, headers, _ = request(gw, "POST", "/console/login", urlencode({"key": key}),
                                 {"content-type": "application/x-www-form-urlencoded"})
    assert status == 303, status
    return headers["set-cookie"].split(";", 1)[0]


# ── the browser ─────────────────────────────────────────────────────────────

def mic_wav(path: Path) -> Path:
    t = np.arange(int(MIC_RATE * BURST_S)) / MIC_RATE
    burst = 0.25 * np.sin(2 * np.pi * 1000 * t) * np.hanning(len(t)) ** 0.1
    period = np.zeros(int(MIC_RATE * PERIOD_S))
    period[:len(burst)] = burst
    pcm = (np.tile(period, 4) * 32767).astype(np.int16)
    write_wav(path, pcm, MIC_RATE)
    return path


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium (Debian's) for the console's tests."""
    from playwright.sync_api import sync_playwright
    wav = mic_wav(tmp_path_factory.mktemp("mic") / "bursts.wav")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}",
            "--autoplay-policy=no-user-gesture-required"])
        yield chromium
        chromium.close()
