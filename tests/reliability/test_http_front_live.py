"""The gateway's one port (server/netio.py) under fuzzed HTTP while a call is live.

A canary call runs throughout: a simulated phone dialled the gateway's number
and an agent answered it and echoes its audio. Meanwhile a child process
(:mod:`.http_fuzzer`) opens a few thousand connections to the port over real
loopback sockets: broken and well-formed HTTP requests, WebSocket upgrades
(some accepted, then fed junk frames) and raw junk. Each connection must be
answered or closed within a bound; none may get a 500 or leave a traceback in
the gateway's log. Afterwards the canary call is still up and lost no frames,
and the gateway takes a new call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection

from telcoflow.engine.clock import MAX_CATCH_UP, SUB_TICK_S
from telcoflow.server.netio import HttpWsProtocol
from telcoflow.testing import GatewayThread, Phone

from ..server.rawclient import command, recv_type, request, sm_connect, voice_connect
from .fuzzing import PROFILE, gc_cpu
from .http_fuzzer import BOUND_S

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 4_000 if PROFILE == "ci" else 50_000
SEED = 20_260_101 if PROFILE == "ci" else random.randrange(2**32)
# the fuzzing takes 2-10 s in CI; this bound answers before pytest-timeout's 120 s would
FUZZ_BOUND_S = 90 if PROFILE == "ci" else 3600
FRAME_S = 0.020
# Frames the canary may miss for no stall of the gateway's loop (which LoopProbe counts):
# each of the two marks is an estimate, within a frame of the tick it stands for.
MAX_LOST = 3


async def fuzz_port(gw: GatewayThread) -> dict[str, Any]:
    """Run the fuzzing client (a child process) against ``gw``: its report."""
    port = gw.ws_url.rsplit(":", 1)[1]
    env = {**os.environ, "TF_API_KEY": gw.api_key, "TF_CONNECTOR_UUID": gw.connector_uuid,
           "TF_PHONE_KEY": gw.phone_key}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.reliability.http_fuzzer", port, str(SEED),
        str(CONNECTIONS), cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(child.communicate(), FUZZ_BOUND_S)
    finally:
        if child.returncode is None:
            child.kill()
    assert child.returncode == 0, err.decode()[-3000:]
    report: dict[str, Any] = json.loads(out)
    return report


# ── the canary call ─────────────────────────────────────────────────────────

async def echo(voice: ClientConnection) -> None:
    """The agent: plays back to the caller what it hears, and keeps reading."""
    async for message in voice:
        if isinstance(message, bytes) and len(message) > 1:
            await voice.send(b"\x00" + message[1:])


async def claim(sm: ClientConnection, caller: str) -> dict[str, Any]:
    """notify (of this caller's call: fuzzed phones may dial too) → open → ready → call.in."""
    while True:
        notify = await recv_type(sm, "session.notify", timeout=10)
        if notify.get("remoteAddress") == caller:
            break
    opened = await request(sm, {"type": "session.open", "sessionId": notify["sessionId"]})
    assert opened["ok"], opened
    await sm.send(json.dumps({"type": "session.ready", "sessionId": notify["sessionId"]}))
    return await recv_type(sm, "call.in", timeout=10)


@pytest_asyncio.fixture
async def canary(gateway: GatewayThread) -> AsyncIterator[tuple[Phone, ClientConnection]]:
    sm = await sm_connect(gateway, rate=8000)
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        await phone.dial(gateway.number, caller="+15550001", codec="pcm16", sample_rate=8000)
        call_in = await claim(sm, "+15550001")
        voice = await voice_connect(call_in)
        await command(voice, "call.answer")
        await phone.wait_answered()
        agent = asyncio.create_task(echo(voice))
        yield phone, sm
        agent.cancel()
        await voice.close()
        await phone.hangup()
    await sm.close()


async def steady(phone: Phone, more: int) -> tuple[int, float]:
    """(frames heard, when the last one was due) once ``more`` further frames came.

    When each frame is due is estimated from the ``more`` latest arrivals: this loop may
    read some late (it is busy, or the machine is), so the earliest one, relative to its
    place in the 20 ms sequence, tells when the last was sent."""
    await phone.wait_frames(phone.frames_received + more, timeout=BOUND_S)
    arrivals = phone.events.frame_arrivals
    count = len(arrivals)
    due = min(arrivals[i] + (count - 1 - i) * FRAME_S for i in range(count - more, count))
    return count, due


class LoopProbe:
    """Samples the gateway's loop every 10 ms, from the loop: when it ran late.

    The media clock catches up a loop up to MAX_CATCH_UP sub-ticks late (95-100 ms); a
    longer stall re-anchors it and the ticks it missed are gone, so :meth:`stop` counts
    the frames of every longer gap: what the canary could not get whoever kept the loop
    late (other processes, the collector, this process's other thread; not an input,
    which :class:`CallbackMeter` watches).
    """

    STALL_S = (MAX_CATCH_UP - 1) * SUB_TICK_S

    def __init__(self, gw: GatewayThread) -> None:
        self.gw = gw
        self.samples: list[float] = []
        self.running = True
        gw.call_soon(self._sample)

    def _sample(self) -> None:  # on the gateway's loop
        self.samples.append(time.monotonic())
        if self.running:
            self.gw.loop.call_later(0.010, self._sample)

    def stop(self) -> int:
        """The ticks lost to stalls (one more each: samples and ticks are not aligned)."""
        self.gw.run(lambda: setattr(self, "running", False))
        gaps = (b - a for a, b in zip(self.samples, self.samples[1:], strict=False))
        return sum(math.ceil(gap / FRAME_S) + 1 for gap in gaps if gap > self.STALL_S)


class CallbackMeter:
    """The CPU time (of the gateway's thread) of each of netio's callbacks, less the
    garbage collector's (:func:`.fuzzing.gc_cpu`: a full collection of this big pytest
    process costs ~50 ms, charged to whichever callback allocated last): a connection's
    input that blocks the loop shows here, however busy or idle the machine is."""

    LIMIT_S = 0.050
    CALLBACKS = ("connection_made", "buffer_updated", "eof_received", "connection_lost",
                 "on_tick")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.worst: list[tuple[float, str]] = []
        for name in self.CALLBACKS:
            self._wrap(monkeypatch, name)

    def _wrap(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        original = getattr(HttpWsProtocol, name)

        def timed(protocol: HttpWsProtocol, *args: Any) -> Any:
            started, collected = time.thread_time(), gc_cpu()
            try:
                return original(protocol, *args)
            finally:
                cpu = time.thread_time() - started - (gc_cpu() - collected)
                if cpu > self.LIMIT_S:
                    self.worst.append((cpu, name))

        monkeypatch.setattr(HttpWsProtocol, name, timed)


@pytest.fixture
def meter(monkeypatch: pytest.MonkeyPatch) -> CallbackMeter:
    return CallbackMeter(monkeypatch)


async def test_fuzzed_http_leaves_a_live_call_untouched(
        gateway: GatewayThread, canary: tuple[Phone, ClientConnection],
        caplog: pytest.LogCaptureFixture, meter: CallbackMeter) -> None:
    phone, sm = canary
    caplog.set_level(logging.WARNING)
    frames_before, heard_before = await steady(phone, 25)
    meter.worst.clear()  # from now on
    probe = LoopProbe(gateway)

    report = await fuzz_port(gateway)

    assert not report["hung"], (f"{len(report['hung'])} connection(s) neither answered nor "
                                f"closed in {BOUND_S} s; the first sent {report['hung'][0]}")
    assert not report["errors"], f"answers with 500: {report['errors'][:3]}"
    crashes = [r for r in caplog.records if r.exc_info or "Fatal error" in r.getMessage()]
    assert not crashes, f"{len(crashes)} tracebacks, the first: {crashes[0].getMessage()}" \
                        f"\n{caplog.text[:3000]}"

    # No input blocked the gateway's loop; the canary heard one 20 ms frame per tick all
    # along (but for ticks the loop ran too late to catch up: a loaded machine), and its
    # call is still up.
    frames_after, heard_after = await steady(phone, 25)
    excused = probe.stop()
    ticks = round((heard_after - heard_before) / FRAME_S)
    lost = ticks - (frames_after - frames_before)
    print(f"\n{report['connections']} connections in {report['seconds']:.1f} s (the slowest "
          f"{report['slowest']:.2f} s), answers {report['statuses']}; the canary heard "
          f"{frames_after - frames_before} frames in {ticks} ticks; the gateway's loop "
          f"stalled past its clock's catch-up for {excused} ticks")
    assert not meter.worst, f"netio callbacks that blocked the loop (CPU s): {meter.worst}"
    assert lost <= MAX_LOST + excused, (
        f"the canary lost {lost} frames of {ticks} while the port was fuzzed; the gateway's "
        f"loop stalled (not on an input) for {excused} ticks")
    assert not phone.hung_up, phone.events.hangup_reason

    # ... and the gateway still takes a new call, answered and heard.
    async with Phone(gateway.ws_url, gateway.phone_key) as caller:
        await caller.dial(gateway.number, caller="+15550002", codec="pcm16", sample_rate=8000)
        voice = await voice_connect(await claim(sm, "+15550002"))
        await command(voice, "call.answer")
        await caller.wait_answered()
        await caller.wait_frames(10)
        await voice.close()
        await caller.hangup()
