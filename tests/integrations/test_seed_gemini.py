"""Seed 003's "Integration with AI Models" block (``examples/gemini_agent.py``), unchanged,
run as a process against a real gateway, the local Gemini Live fake and a simulated caller.

The example is pointed at the fake by environment only (``GOOGLE_GEMINI_BASE_URL``,
``SSL_CERT_FILE``, any ``GEMINI_API_KEY``) and at the gateway by ``TELCOFLOW_BASE_URL``.
A launcher turns logging on (the seed configures none) so the test can wait on the
SDK's log lines; the example's own code runs as printed.

What the seed does, as these tests show it:

- one model turn per call: google-genai's ``session.receive()`` ends at the first
  ``turnComplete``, so ``receive_from_gemini`` returns after the first reply;
- ``interrupted`` → ``clear_send_audio_buffer()``: the caller stops hearing the reply
  within ``BARGE_FRAMES`` 20 ms frames of the fake sending ``interrupted`` (the
  tolerance covers the fake → agent → gateway hops and one frame in flight to the phone);
- the model socket dropping raises out of the ``on_incoming_call`` handler (the SDK logs
  "Error in on_incoming_call handler"); the call is not ended by the seed: the caller
  hangs up, and the process takes the next call.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import numpy as np
import pytest

from telcoflow.audio.resample import resample
from telcoflow.testing import GatewayThread, Phone
from telcoflow.testing.gemini_fake import FakeLiveServer, LiveScript

from ..interop.agent_process import AgentProcess
from ..interop.signals import assert_follows, best_lag, chirp, noise, reply_of, voiced_frames
from ..sdk.conftest import EXAMPLES, example_env

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

PHONE_RATE = 16_000
FRAME = PHONE_RATE // 50
MODEL_RATE = 24_000
BARGE_FRAMES = 3
READY = "SessionManager connected"
# Run the example as __main__ with logging on (the seed itself sets none up).
LAUNCH = ("import logging, runpy, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout,"
          " format='%(levelname)s %(name)s %(message)s');"
          " runpy.run_path(sys.argv[1], run_name='__main__')")


@contextmanager
def seed_agent(gw: GatewayThread, server: FakeLiveServer) -> Iterator[AgentProcess]:
    env = example_env(gw, GEMINI_API_KEY="test-key", **server.env())
    for name in ("GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_API_VERSION"):
        env.pop(name, None)
    cmd = [sys.executable, "-u", "-c", LAUNCH, str(EXAMPLES / "gemini_agent.py")]
    with AgentProcess(cmd, env) as agent:
        yield agent


async def wait_line(agent: AgentProcess, text: str, start: int = 0, timeout: float = 15.0) -> str:
    return await asyncio.to_thread(agent.wait_for, text, timeout, start)


@asynccontextmanager
async def caller(gw: GatewayThread) -> AsyncIterator[Phone]:
    async with Phone(gw.ws_url, gw.phone_key) as phone:
        await phone.dial(to=gw.number, caller="+15550001", codec="pcm16", sample_rate=PHONE_RATE)
        await phone.wait_answered()
        yield phone


def speech(seconds: float, seed: int = 3) -> np.ndarray:
    """Noise well above the fake's speech threshold (RMS ~4600 vs 500)."""
    return noise(seconds, PHONE_RATE, seed=seed)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * PHONE_RATE), np.int16)


def at_phone_rate(reply: np.ndarray) -> np.ndarray:
    return np.frombuffer(resample(reply, MODEL_RATE, PHONE_RATE), "<i2").astype(np.int16)


async def one_turn(gw: GatewayThread, reply: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A call: the caller speaks, then listens to the whole reply and hangs up.
    Returns what it heard (voiced frames) and the reply at the phone's rate."""
    async with caller(gw) as phone:
        start = phone.frames_received
        await phone.play(np.concatenate([speech(0.4), silence(0.7)]))
        expected = at_phone_rate(reply)
        heard = await reply_of(phone, start, len(expected))
        await phone.hangup()
    return heard, expected


async def barge_in(phone: Phone, server: FakeLiveServer) -> tuple[int, int, np.ndarray]:
    """The caller speaks, hears 200 ms of the reply, then speaks over it. Returns the frame
    its turn started at, its frame count when the fake sent ``interrupted``, and all it
    heard up to 300 ms after that."""
    interrupted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Events(list[str]):  # notes the phone's frame count when the fake interrupts
        def append(self, event: str) -> None:
            super().append(event)
            if event == "interrupted" and not interrupted.done():
                interrupted.set_result(phone.frames_received)

    server.events = Events()
    start = phone.frames_received
    await phone.play(np.concatenate([speech(0.4), silence(0.7)]))
    await reply_of(phone, start, 10 * FRAME)  # 200 ms of the reply heard
    barge = asyncio.create_task(phone.play(speech(0.6, seed=9)))
    mark = await asyncio.wait_for(interrupted, 10)
    await phone.wait_frames(mark + 15)  # 300 ms after the interrupt
    heard = phone.received()
    await barge
    return start, mark, heard


def frames_after(heard: np.ndarray, mark: int) -> int:
    """How many 20 ms frames after ``mark`` (within 300 ms) still carried audio."""
    after = heard[mark * FRAME:(mark + 15) * FRAME].reshape(-1, FRAME)
    voiced = np.flatnonzero(np.abs(after).max(axis=1) > 0)
    return int(voiced[-1]) + 1 if len(voiced) else 0


async def test_a_turn_reaches_the_caller() -> None:
    reply = chirp(0.8, MODEL_RATE)
    script = LiveScript(reply_audio=reply, reply_delay_ms=20)
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server:
            with seed_agent(gw, server) as agent:
                await wait_line(agent, READY)
                heard, expected = await one_turn(gw, reply)
                await wait_line(agent, "terminated")
        # the seed streams the call's 24 kHz PCM as it is, labelled rate=24000
        audio = server.received[1]["realtimeInput"]["audio"]
        assert audio["mimeType"] == "audio/pcm;rate=24000"
        assert server.events[:3] == ["speech_started", "speech_ended", "reply_started"]
    assert len(heard) >= len(expected)
    assert_follows(heard, expected)


async def test_barge_in_clears_the_reply() -> None:
    # four times real time: when the caller barges in, seconds of the reply wait in the
    # agent's send buffer, so only clear_send_audio_buffer() can stop the caller hearing them
    reply = chirp(8.0, MODEL_RATE)
    script = LiveScript(reply_audio=reply, reply_delay_ms=20, pace=4.0)
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server:
            with seed_agent(gw, server) as agent:
                await wait_line(agent, READY)
                async with caller(gw) as phone:
                    start, mark, heard = await barge_in(phone, server)
                    await phone.hangup()
                await wait_line(agent, "terminated")
        cut = next(i for i, m in enumerate(server.sent)
                   if m.get("serverContent", {}).get("interrupted"))
        sent_before_cut = sum("modelTurn" in m.get("serverContent", {})
                              for m in server.sent[:cut])
        assert list(server.events[:5]) == ["speech_started", "speech_ended", "reply_started",
                                           "speech_started", "interrupted"]
    before = voiced_frames(heard[start * FRAME:mark * FRAME], FRAME)
    last = frames_after(heard, mark)
    assert last <= BARGE_FRAMES, f"the reply went on for {last} frames after the interrupt"
    # what was heard before the interrupt is the reply's beginning, and less than all of it
    expected = at_phone_rate(reply)
    assert len(before) < len(expected) // 2
    # the model had sent far more than the caller heard: the rest was in the buffer, cleared
    assert sent_before_cut * 40 > len(before) // FRAME * 20 + 500
    lag, corr = best_lag(expected[:len(before) + 20 * FRAME], before[FRAME:])
    assert corr > 0.9, f"correlation {corr:.3f} at lag {lag}"


async def test_model_socket_drop_does_not_hang_the_call_or_the_agent() -> None:
    script = LiveScript(drop_after_ms=200)
    with GatewayThread(ring_timeout_s=10.0) as gw:
        async with FakeLiveServer(script) as server:
            with seed_agent(gw, server) as agent:
                await wait_line(agent, READY)
                async with caller(gw) as phone:
                    # the fake aborts the TCP connection: receive() raises out of the handler
                    error = await wait_line(agent, "Error in on_incoming_call handler")
                    assert "test-key" not in agent.output
                    assert server.events == ["dropped"]
                    await phone.play(speech(0.2))  # the seed's sender meets the dead socket
                    assert not phone.hung_up  # the seed does not end the call itself
                    await phone.hangup()
                mark = len(agent.lines)
                await wait_line(agent, "terminated", start=mark - 5)
                # the process is still serving: the next call gets a full turn
                reply = chirp(0.5, MODEL_RATE)
                server.script = LiveScript(reply_audio=reply, reply_delay_ms=20)
                heard, expected = await one_turn(gw, reply)
                assert agent.proc is not None and agent.proc.poll() is None
    assert error
    assert_follows(heard, expected)
