"""The Redis registry on its own: atomic claims, records, and a clear error at start."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from telcoflow.server.cluster import RegistryUnavailable
from telcoflow.server.cluster.redis_registry import RedisRegistry
from telcoflow.server.config import load_file
from telcoflow.server.errors import ConfigError

from .nodes import REDIS_URL, ROOT, Cluster, remove_keys

CONNECTOR = "conn-race"


@pytest_asyncio.fixture
async def two_nodes() -> AsyncIterator[tuple[RedisRegistry, RedisRegistry]]:
    prefix = f"tftest-{uuid.uuid4().hex[:10]}"
    nodes = (RedisRegistry(REDIS_URL, "n1", prefix), RedisRegistry(REDIS_URL, "n2", prefix))
    for node in nodes:
        await node.connect()
    # each node has one agent connection registered for the connector
    await nodes[0].client.hset(nodes[0].key("links", CONNECTOR), mapping={"L1": "{}", "L2": "{}"})
    yield nodes
    for node in nodes:
        await node.close()
    remove_keys(prefix)


@pytest.mark.asyncio
async def test_simultaneous_claims_from_two_nodes_have_exactly_one_winner(
        two_nodes: tuple[RedisRegistry, RedisRegistry]) -> None:
    n1, n2 = two_nodes
    sids = [str(uuid.uuid4()) for _ in range(1000)]
    # every race at once, each node on its own connections: 2,000 claims in flight
    results = await asyncio.gather(*(asyncio.gather(n1.claim(CONNECTOR, s, "L1"),
                                                    n2.claim(CONNECTOR, s, "L2"))
                                     for s in sids))
    for first, second in results:
        assert first == second, "both nodes must see the same single winner"
        assert first in ("L1", "L2")
    # and Redis agrees with what they were told
    held = await n1.client.mget([n1.key("claim", s) for s in sids])
    assert held == [first for first, _ in results]


@pytest.mark.asyncio
async def test_a_claim_is_kept_until_its_holder_is_gone(
        two_nodes: tuple[RedisRegistry, RedisRegistry]) -> None:
    n1, n2 = two_nodes
    assert await n1.claim(CONNECTOR, "s1", "L1") == "L1"
    assert await n1.claim(CONNECTOR, "s1", "L1") == "L1"  # the holder again: still its
    assert await n2.claim(CONNECTOR, "s1", "L2") == "L1"
    await n1.client.hdel(n1.key("links", CONNECTOR), "L1")  # L1's connection dropped
    assert await n2.claim(CONNECTOR, "s1", "L2") == "L2"


@pytest.mark.asyncio
async def test_unreachable_registry_is_a_clear_error() -> None:
    registry = RedisRegistry("redis://user:s3cret@127.0.0.1:1/0", "n1")
    with pytest.raises(RegistryUnavailable) as caught:
        await registry.connect()
    assert "redis://user:***@127.0.0.1:1/0 does not answer" in caught.value.message
    assert "s3cret" not in caught.value.message
    await registry.close()


def test_serve_exits_non_zero_when_redis_does_not_answer(tmp_path: Path) -> None:
    config = Cluster(tmp_path, names=()).write_config("x", url="redis://127.0.0.1:1/0")
    done = subprocess.run([sys.executable, "-m", "telcoflow.cli.main", "serve", "--config",
                           str(config)], env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "the registry at redis://127.0.0.1:1/0 does not answer" in done.stderr


@pytest.mark.parametrize(("table", "error"), [
    ('url = "http://127.0.0.1:6379"', "must be a Redis URL"),
    ('url = "redis://127.0.0.1:6379/0"\nheartbeat_s = 2\nnode_ttl_s = 1',
     "node_ttl_s must be longer than heartbeat_s"),
    ('url = ""', "url must be a non-empty string"),
    ('url = "redis://127.0.0.1:6379/0"\nheartbeat_s = -1', "heartbeat_s must be a positive"),
])
def test_bad_registry_config_is_refused_clearly(tmp_path: Path, table: str, error: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'[[connectors]]\nuuid = "c"\napi_keys = ["{"k" * 24}"]\n[registry]\n{table}\n')
    with pytest.raises(ConfigError, match=error):
        load_file(path)


def test_registry_config_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(f'[[connectors]]\nuuid = "c"\napi_keys = ["{"k" * 24}"]\n[registry]\n'
                    'url = "redis://127.0.0.1:6379/3"\nnode_id = "gw-a"\nnode_ttl_s = 5\n')
    registry = load_file(path).registry
    assert (registry.url, registry.node_id, registry.node_ttl_s, registry.heartbeat_s) == \
        ("redis://127.0.0.1:6379/3", "gw-a", 5.0, 1.0)
