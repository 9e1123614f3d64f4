"""An agent's memory follows its live calls: an ended call is freed when it ends.

Freed by reference counting alone, that is: an ended call caught in a
reference cycle is reclaimed only by a full collection of the cyclic garbage
collector, which a busy agent runs rarely (an echo agent once grew from 27 to
160 MB over 300 short calls, each holding its 1 MiB send buffer). So these
run with the collector off, and an object left to it fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import weakref
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from telcoflow import Call, SessionNotification, WSSCallClosedError, WSSSessionError
from telcoflow.sdk.voice import _VoiceConnection
from telcoflow.sdk.wsconn import WsConnection
from telcoflow.testing import GatewayThread, Phone

from ..interop.agent_process import AgentProcess
from .conftest import dialled, example_env, manager, noise

RATE = 16000
FREE_TIMEOUT = 10.0  # seconds for a call's links to close; a cycle never frees it at all

# ── an ended call is freed by reference counting ────────────────────────────

ENDINGS = ("the caller hangs up", "the agent hangs up", "a command fails",
           "a command is in flight")
CALLS_PER_ENDING = 3


@contextlib.contextmanager
def cyclic_gc_off() -> Iterator[None]:
    gc.collect()  # earlier tests' cycles, so that sdk_objects_in_cycles() sees this test's
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def sdk_objects_in_cycles() -> Counter[str]:
    """SDK objects that only the cyclic GC would free (every unreachable one is kept)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return Counter(type(o).__qualname__ for o in gc.garbage
                       if type(o).__module__.startswith("telcoflow.sdk"))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def holders(ref: weakref.ref[Call]) -> list[str]:
    call = ref()
    return [] if call is None else [type(r).__qualname__ for r in gc.get_referrers(call)]


async def serve(call: Call, ending: str, commanded: asyncio.Event) -> None:
    assert await call.answer()
    if ending == "the agent hangs up":
        await call.send_audio(bytes(3200))
        assert await call.disconnect()
        return
    if ending == "a command fails":
        assert not await call.whisper()  # NOT_CONNECTED: nobody has been connected yet
        commanded.set()
    elif ending == "a command is in flight":
        # rings a line that never answers; the caller hangs up meanwhile
        with contextlib.suppress(WSSCallClosedError):
            await call.connect(ring_time_seconds=30)
        return
    async for chunk in call.audio_stream():
        await call.send_audio(chunk)


async def end_call(gw: GatewayThread, ending: str, commanded: asyncio.Event) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if ending == "a command is in flight":  # a line of its own per call: rung once
            line = await stack.enter_async_context(Phone(gw.ws_url, gw.phone_key))
            await line.register(gw.number, answer="never")  # the line call.connect rings
        phone = await stack.enter_async_context(dialled(gw, RATE))
        await phone.wait_answered(timeout=10)
        if ending == "the agent hangs up":
            await phone.wait_hangup()
            return
        if ending == "a command fails":
            await asyncio.wait_for(commanded.wait(), 10)
        elif ending == "a command is in flight":
            await line.wait_incoming()  # the agent's call.connect is ringing it
        await phone.play(noise(0.04, RATE))
        await phone.hangup()


@pytest.mark.asyncio
@pytest.mark.parametrize("ending", ENDINGS)
async def test_an_ended_call_is_freed_by_reference_counting(gateway: GatewayThread,
                                                            ending: str) -> None:
    returned: asyncio.Queue[tuple[weakref.ref[Call], asyncio.Event]] = asyncio.Queue()
    commanded = asyncio.Event()
    with cyclic_gc_off():
        async with manager(gateway, RATE) as sm:

            @sm.on_session_notification
            async def on_notify(noti: SessionNotification) -> None:
                session = await sm.open_session(noti.session_id)

                @session.on_incoming_call
                async def on_call(call: Call) -> None:  # closes over the session
                    freed = asyncio.Event()
                    weakref.finalize(call, freed.set)

                    @call.on_terminated
                    def on_terminated() -> None:  # closes over the call
                        assert call.id and session.id

                    try:
                        await serve(call, ending, commanded)
                    finally:
                        returned.put_nowait((weakref.ref(call), freed))

                await session.ready()

            for n in range(CALLS_PER_ENDING):
                commanded.clear()
                await end_call(gateway, ending, commanded)
                ref, freed = await asyncio.wait_for(returned.get(), 10)
                try:  # the handler has returned; the call's links may still be closing
                    await asyncio.wait_for(freed.wait(), FREE_TIMEOUT)
                except TimeoutError:
                    pytest.fail(f"call {n} ({ending}) still held, by {holders(ref)}")
                assert ref() is None
            assert not sdk_objects_in_cycles()


class ClosingSocket:
    """A voice link's socket that closes as soon as a command is sent on it."""

    is_open = True

    def __init__(self, voice: _VoiceConnection) -> None:
        self._voice = voice

    def send_text(self, text: str) -> None:
        asyncio.get_running_loop().call_soon(self._voice.ws_closed, 1006, "")


async def command_cut_off(voice: _VoiceConnection) -> weakref.ref[WSSSessionError]:
    try:
        await voice.send_command(command="playout.position")
    except WSSSessionError as exc:
        return weakref.ref(exc)
    raise AssertionError("the command outlived its link")


@pytest.mark.asyncio
async def test_a_command_cut_off_by_its_link_closing_is_freed_by_reference_counting() -> None:
    """Its error, raised from a future, used to hold the frames that awaited it (the Call's)."""
    voice = _VoiceConnection("ws://gateway.test/v1/voice", "token")
    voice._ws, voice._connected = cast(WsConnection, ClosingSocket(voice)), True
    with cyclic_gc_off():
        error = await command_cut_off(voice)
        assert error() is None


# ── an echo agent serving 100 calls ends where it started ───────────────────

AGENT = Path(__file__).with_name("memory_agent.py")
WARM_UP = 5   # calls before the baseline: first-use caches (codecs, uuid, logging) fill
CALLS = 100
MARGIN = 5 * 1024 * 1024


@dataclass
class Figures:
    traced: int  # bytes the agent's tracemalloc traced when call n's handler returned
    peak: int    # the most it traced since the previous call's handler returned


async def agent_mark(agent: AgentProcess, what: str, n: int, start: int) -> list[str]:
    """The fields of the agent's ``MARK <what> <n> ...`` line, once printed."""
    line = await asyncio.to_thread(agent.wait_for, f"MARK {what} {n}", 20.0, start)
    fields = line.split()[2:]
    assert fields[0] == str(n), line
    return fields[1:]


@pytest.mark.asyncio
async def test_an_echo_agent_ends_100_short_calls_where_it_started(
        gateway: GatewayThread) -> None:
    sent = noise(0.04, RATE)
    figures: list[Figures] = []
    with AgentProcess([sys.executable, "-u", str(AGENT)], example_env(gateway)) as agent:
        await asyncio.to_thread(agent.wait_for, "MARK ready")
        for n in range(1, WARM_UP + CALLS + 1):
            start = len(agent.lines)
            async with dialled(gateway, RATE) as phone:
                await phone.wait_answered(timeout=10)
                await phone.play(sent)
                await agent_mark(agent, "echoed", n, start)  # send_audio had work to do
                await phone.hangup()
            traced, peak = await agent_mark(agent, "ended", n, start)
            figures.append(Figures(int(traced), int(peak)))
    base = figures[WARM_UP - 1].traced
    served = figures[WARM_UP:]
    grown, most = served[-1].traced - base, max(f.peak for f in served) - base
    assert grown < MARGIN and most < MARGIN, (
        f"the agent traced {base / 1e6:.2f} MB after {WARM_UP} calls, then "
        f"{grown / 1e6:+.2f} MB after {CALLS} more, at most {most / 1e6:+.2f} MB")
