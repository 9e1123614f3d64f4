"""Three gateway nodes, one set of sessions: calls, claims and REST across nodes."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest

from telcoflow.testing import Phone

from ..conftest import refsdk_command
from ..interop.agent_process import AgentProcess
from ..interop.signals import best_lag, noise
from .agents import RawAgent, echo_agent
from .nodes import Cluster

QUICKSTART = Path(__file__).parents[1] / "interop" / "agents" / "quickstart_echo.py"
RATE = 8000


async def echoed(phone: Phone, seconds: float = 0.6) -> float:
    """Play noise, return how well what comes back matches it (correlation)."""
    start = phone.frames_received
    sent = noise(seconds, RATE)
    await phone.play(sent)
    await phone.wait_frames(start + len(sent) // (RATE // 50) + 25, timeout=15)
    _, correlation = best_lag(phone.received()[start * (RATE // 50):], sent)
    return float(correlation)


@pytest.mark.asyncio
async def test_agent_on_one_node_takes_and_echoes_a_call_that_arrived_on_another(
        cluster: Cluster) -> None:
    a, c = cluster["a"], cluster["c"]
    async with echo_agent(cluster, a.url) as seen, Phone(c.url, cluster.phone_key) as phone:
        await phone.dial(to=cluster.number, caller="+15550001", sample_rate=RATE)
        await phone.wait_answered(timeout=10)
        # the call's media stays where its phone leg is: call.in pointed the agent at C
        assert seen.voice_urls[0].startswith(c.url + "/v1/voice/")
        assert await echoed(phone) > 0.99
        await phone.hangup()
        await asyncio.wait_for(seen.terminated.wait(), 10)


@pytest.mark.asyncio
async def test_published_sdk_on_one_node_echoes_a_call_on_another(cluster: Cluster,
                                                                    refsdk_path: Path) -> None:
    a, c = cluster["a"], cluster["c"]
    env = {"PYTHONPATH": str(refsdk_path), "WSS_API_KEY": cluster.api_key,
           "WSS_CONNECTOR_UUID": cluster.connector_uuid, "TELCOFLOW_BASE_URL": a.url,
           "AGENT_RATE": str(RATE), "PATH": "/usr/bin:/bin"}
    with AgentProcess(refsdk_command(QUICKSTART), env) as agent:
        await asyncio.to_thread(agent.wait_for, "Connected. Waiting for sessions")
        async with Phone(c.url, cluster.phone_key) as phone:
            await phone.dial(to=cluster.number, caller="+15550002", sample_rate=RATE)
            await phone.wait_answered(timeout=15)
            assert await echoed(phone) > 0.99
            await phone.hangup()
        await asyncio.to_thread(agent.wait_for, "terminated")


@pytest.mark.asyncio
async def test_second_claim_from_another_node_is_session_busy_and_rest_sees_it(
        cluster: Cluster) -> None:
    """The connector's key in use on nodes A and B at once: both are offered the call."""
    a, b, c = cluster["a"], cluster["b"], cluster["c"]
    async with RawAgent(cluster, a.url) as on_a, RawAgent(cluster, b.url) as on_b, \
            Phone(c.url, cluster.phone_key) as phone:
        await phone.dial(to=cluster.number, caller="+15550003", sample_rate=RATE)
        notified = [await agent.wait(lambda f: f["type"] == "session.notify")
                    for agent in (on_a, on_b)]
        sid = notified[0]["sessionId"]
        assert notified[1]["sessionId"] == sid
        # REST on B lists the session C holds
        listed = rest(b.http_url, cluster, "GET", "/public/v1/sessions?state=OPEN")
        assert sid in [s["id"] for s in listed["items"]]
        won = await on_a.request("session.open", sessionId=sid)
        lost = await on_b.request("session.open", sessionId=sid)
        assert won["ok"] and won["content"]["session"]["id"] == sid
        assert not lost["ok"] and lost["errorCode"] == "SESSION_BUSY"
        assert lost["errorContent"] == {"boundSmWsId": on_a.sm_ws_id}
        await on_a.send("session.ready", sessionId=sid)
        call_in = await on_a.wait(lambda f: f["type"] == "call.in")
        assert call_in["url"].startswith(c.url + "/v1/voice/")
        # REST on B closes it: C ends the call, the agent on A is told
        closed = rest(b.http_url, cluster, "POST", f"/public/v1/sessions/{sid}/close")
        assert closed["reason"] == "SDK_REQUEST"
        assert await phone.wait_hangup(timeout=10) == "CONNECTOR_CLOSED"
        await on_a.wait(lambda f: f["type"] == "session.closed" and f["sessionId"] == sid)


def rest(base: str, cluster: Cluster, method: str, path: str) -> dict[str, object]:
    request = urllib.request.Request(base + path, method=method, headers={
        "x-api-key": cluster.api_key, "x-connector-uuid": cluster.connector_uuid,
        "x-sdk-version": "test"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]
