"""SIGTERM drains a node: new calls refused, live ones finish, stragglers ended."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from telcoflow.testing import Phone, PhoneError

from .agents import echo_agent
from .nodes import Cluster
from .test_cross_node import RATE, echoed


async def live_call(phone: Phone, cluster: Cluster, caller: str) -> None:
    await phone.dial(to=cluster.number, caller=caller, sample_rate=RATE)
    await phone.wait_answered(timeout=10)


@pytest.mark.asyncio
async def test_sigterm_refuses_new_calls_and_lets_live_ones_finish(tmp_path: Path) -> None:
    with Cluster(tmp_path, names=("e",)) as cluster:
        e = cluster["e"]
        async with echo_agent(cluster, e.url), Phone(e.url, cluster.phone_key) as live:
            await live_call(live, cluster, "+15550021")
            e.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(e.wait_for, "draining: 1 call(s) live")
            async with Phone(e.url, cluster.phone_key) as late:
                with pytest.raises(PhoneError, match="SERVICE_UNAVAILABLE"):
                    await late.dial(to=cluster.number, caller="+15550022", sample_rate=RATE)
                assert await late.wait_hangup(timeout=5) == "SERVICE_UNAVAILABLE"
            assert await echoed(live) > 0.99  # the live call goes on while draining
            await live.hangup()
            assert await asyncio.to_thread(e.proc.wait, 10) == 0  # its last call over: it exits


@pytest.mark.asyncio
async def test_calls_left_after_the_grace_end_with_gateway_shutdown(tmp_path: Path) -> None:
    with Cluster(tmp_path, names=("f",), drain_grace_s=0.5) as cluster:
        f = cluster["f"]
        async with echo_agent(cluster, f.url) as seen, Phone(f.url, cluster.phone_key) as live:
            await live_call(live, cluster, "+15550023")
            sid = seen.session_of["+15550023"]
            f.proc.send_signal(signal.SIGTERM)
            assert await live.wait_hangup(timeout=10) == "SERVER_SHUTDOWN"
            async with asyncio.timeout(10):
                while sid not in seen.closed:
                    seen.closed_event.clear()
                    await seen.closed_event.wait()
            assert seen.closed[sid] == ("CALL_TERMINATED", "GATEWAY_SHUTDOWN")
