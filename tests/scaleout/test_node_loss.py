"""A node killed mid-call: its agents are told within 5 s, the other node's calls go on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from telcoflow.testing import Phone

from .agents import echo_agent
from .nodes import REDIS_URL, Cluster
from .test_cross_node import RATE, echoed, rest
from .test_redis_faults import wait_until


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("pair"), names=("a", "d")) as nodes:
        yield nodes


@pytest.mark.asyncio
async def test_kill_9_a_node_mid_call(pair: Cluster) -> None:
    a, d = pair["a"], pair["d"]
    async with echo_agent(pair, a.url) as seen, Phone(a.url, pair.phone_key) as survivor, \
            Phone(d.url, pair.phone_key) as doomed:
        for phone, caller in ((survivor, "+15550011"), (doomed, "+15550012")):
            await phone.dial(to=pair.number, caller=caller, sample_rate=RATE)
            await phone.wait_answered(timeout=10)
        doomed_sid = seen.session_of["+15550012"]
        d.kill()
        killed_at = time.monotonic()
        await doomed.wait_hangup(timeout=5)  # its caller's connection went with the node
        async with asyncio.timeout(5):
            while doomed_sid not in seen.closed:
                seen.closed_event.clear()
                await seen.closed_event.wait()
        told_after = time.monotonic() - killed_at
        assert seen.closed[doomed_sid] == ("CALL_TERMINATED", "GATEWAY_NODE_LOST")
        assert told_after < 5.0
        # the call on the surviving node goes on, both ways
        assert not survivor.hung_up
        assert await echoed(survivor) > 0.99
        await survivor.hangup()
    # the dead node's records are reaped, not served: its session is listed closed
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    dead = d.node_id
    await asyncio.to_thread(wait_until, lambda: not client.hexists(f"{pair.prefix}:nodes", dead),
                            5, "the dead node reaped")
    assert not client.exists(f"{pair.prefix}:nodesessions:{dead}",
                             f"{pair.prefix}:nodelinks:{dead}")
    client.close()
    listed = rest(a.http_url, pair, "GET", "/public/v1/sessions")
    assert {s["id"]: s["state"] for s in listed["items"]}[doomed_sid] == "CLOSED"
