"""``telcoflow serve --workers N``: one port shared by N processes, each with its voice port."""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

from telcoflow.loadgen.scaleout import family, free_ports
from telcoflow.testing import Phone

from .agents import echo_agent
from .nodes import ROOT, Cluster, Node
from .test_cross_node import RATE, echoed


def console_statuses(port: int, api_key: str, polls: int) -> list[int]:
    """Log in to the console through the shared port, then poll it on fresh connections
    (the kernel gives each to either worker): each poll's status."""
    def send(method: str, path: str, body: str | None, headers: dict[str, str]
             ) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response

    form = {"content-type": "application/x-www-form-urlencoded"}
    login = send("POST", "/console/login", urlencode({"key": api_key}), form)
    assert login.status == 303, login.status
    cookie = (login.getheader("set-cookie") or "").split(";", 1)[0]
    return [send("GET", "/console/api/me", None, {"cookie": cookie}).status
            for _ in range(polls)]


_WORKER = re.compile(r"gateway listening on (\S+) \(this worker's calls' voice on (\S+)\)")


def test_workers_without_a_registry_say_redis_is_needed() -> None:
    done = subprocess.run([sys.executable, "-m", "telcoflow.cli.main", "serve", "--workers",
                           "2", "--port", "0"], env={"PYTHONPATH": str(ROOT / "src"),
                                                     "PATH": "/usr/bin", "HOME": "/tmp"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "--workers 2 needs a shared session registry" in done.stderr
    assert "[registry] url" in done.stderr


@pytest.mark.asyncio
async def test_two_workers_share_a_port_and_each_call_talks_to_its_worker(
        tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, names=(), port=free_ports(3))
    supervisor = Node("workers", cluster.write_config("w"), "--workers", "2")
    cluster.nodes["workers"] = supervisor
    with cluster:
        shared = f"ws://127.0.0.1:{cluster.port}"
        log = supervisor.process
        first = log.wait_for("voice on", 30)
        second = log.wait_for("voice on", 30, start=log.lines.index(first) + 1)
        matches = [_WORKER.search(line) for line in (first, second)]
        assert all(m and m.group(1) == shared for m in matches), (first, second)
        voice_urls = {m.group(2) for m in matches if m}
        assert len(voice_urls) == 2  # the workers' own ports
        async with echo_agent(cluster, shared) as seen:
            for n in range(3):
                async with Phone(shared, cluster.phone_key) as phone:
                    await phone.dial(to=cluster.number, caller=f"+1555004{n}", sample_rate=RATE)
                    await phone.wait_answered(timeout=10)
                    assert await echoed(phone, 0.2) > 0.99
                    await phone.hangup()
            # each call's voice connection went to a worker's own port
            assert {url.rsplit("/v1/voice/", 1)[0] for url in seen.voice_urls} <= voice_urls
        # a console session one worker opened is good in the other: 20 connections
        # all land in one worker with odds of 1 in 2^19
        assert await asyncio.to_thread(console_statuses, cluster.port, cluster.api_key,
                                       20) == [200] * 20
        # a worker killed is started again, and calls go on through the shared port
        os.kill(family(supervisor.proc.pid)[1], signal.SIGKILL)
        exited = await asyncio.to_thread(log.wait_for, "starting it again", 10)
        await asyncio.to_thread(log.wait_for, "voice on", 30, log.lines.index(exited) + 1)
        async with echo_agent(cluster, shared), Phone(shared, cluster.phone_key) as phone:
            await phone.dial(to=cluster.number, caller="+15550049", sample_rate=RATE)
            await phone.wait_answered(timeout=10)
            assert await echoed(phone, 0.2) > 0.99
        supervisor.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(supervisor.proc.wait, 15) == 0
