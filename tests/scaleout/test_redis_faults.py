"""Redis stopped and restarted mid-call (a private redis-server in a temporary directory)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from telcoflow.loadgen.scaleout import free_ports
from telcoflow.testing import Phone, PhoneError

from .agents import echo_agent
from .nodes import Cluster, Node
from .test_cross_node import RATE, echoed


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_ports(1)  # below the ephemeral range: it is bound again later
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir",
             str(self.workdir), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_until(lambda: _answers(client), 10, "redis-server to answer")
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def wait_until(ready: object, timeout: float, what: str) -> None:
    """Poll a condition (Redis state, no event to wait on) until it holds."""
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.02)


def registry_metrics(node: Node, key: str) -> tuple[float, float]:
    """``telcoflow_registry_up`` and the sum of ``telcoflow_registry_errors_total`` in the
    node's /metrics."""
    request = urllib.request.Request(node.http_url + "/metrics",
                                     headers={"authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    up = errors = 0.0
    for line in text.splitlines():
        if line.startswith("telcoflow_registry_up "):
            up = float(line.split()[-1])
        elif line.startswith("telcoflow_registry_errors_total{"):
            errors += float(line.split()[-1])
    return up, errors


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.mark.asyncio
async def test_redis_restarted_mid_call(tmp_path: Path, private_redis: PrivateRedis) -> None:
    with Cluster(tmp_path, names=("a", "b"), url=private_redis.url) as cluster:
        a, b = cluster["a"], cluster["b"]
        async with echo_agent(cluster, a.url), Phone(b.url, cluster.phone_key) as live:
            await live.dial(to=cluster.number, caller="+15550031", sample_rate=RATE)
            await live.wait_answered(timeout=10)

            private_redis.stop()
            for node in (a, b):
                await asyncio.to_thread(node.wait_for, "registry unreachable")
            assert await echoed(live) > 0.99  # media never touches Redis
            up, errors = await asyncio.to_thread(registry_metrics, b, cluster.metrics_key)
            assert up == 0 and errors > 0, (up, errors)
            async with Phone(b.url, cluster.phone_key) as refused:
                with pytest.raises(PhoneError, match="SERVICE_UNAVAILABLE"):
                    await refused.dial(to=cluster.number, caller="+15550032", sample_rate=RATE)

            private_redis.start()  # empty: what the nodes hold is written again
            for node in (a, b):
                await asyncio.to_thread(node.wait_for, "registry reachable again")
            client = private_redis.client()
            channels = [f"{cluster.prefix}:ch:node:{node.node_id}" for node in (a, b)]
            await asyncio.to_thread(wait_until, lambda: all(
                count == 1 for _, count in client.pubsub_numsub(*channels)), 10,
                "both nodes subscribed again")
            up, _ = await asyncio.to_thread(registry_metrics, b, cluster.metrics_key)
            assert up == 1
            async with Phone(b.url, cluster.phone_key) as after:
                await after.dial(to=cluster.number, caller="+15550033", sample_rate=RATE)
                await after.wait_answered(timeout=10)
                assert await echoed(after) > 0.99
                await after.hangup()
            await live.hangup()
            # nothing left open in the registry once every call is over
            held = f"{cluster.prefix}:nodesessions:{b.node_id}"
            await asyncio.to_thread(wait_until, lambda: client.scard(held) == 0, 10,
                                    "empty session set")
            client.close()
