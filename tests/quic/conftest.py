"""A gateway with its QUIC door open, QUIC agents for it, and a simulated caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from telcoflow.protocol import quic
from telcoflow.quic import QuicAgent, QuicCall
from telcoflow.server.config import QuicConfig
from telcoflow.testing import GatewayThread, Phone

Kind = quic.CallEvent.Kind


@pytest.fixture
def qgw() -> Iterator[GatewayThread]:
    with GatewayThread(quic=QuicConfig(port=0), ring_timeout_s=10.0) as gw:
        yield gw


def agent_for(gw: GatewayThread, **kwargs: Any) -> QuicAgent:
    q = gw.config.quic
    assert q is not None
    kwargs.setdefault("fingerprint", q.fingerprint)
    return QuicAgent("127.0.0.1", q.port, gw.api_key, gw.connector_uuid, **kwargs)


async def echo(call: QuicCall) -> None:
    """Send back every frame heard, as it came (the pacer keeps 20 ms)."""
    async for frame in call.audio():
        call.send(frame.payload, frame.codec)


@asynccontextmanager
async def answered_call(gw: GatewayThread, agent: QuicAgent, codec: str = "pcmu",
                        rate: int = 8000) -> AsyncIterator[tuple[Phone, QuicCall]]:
    """A simulated caller dialled the gateway's number and ``agent`` answered."""
    async with Phone(gw.ws_url, gw.phone_key) as phone:
        await phone.dial(gw.number, "+15550001", codec, rate)
        call = await agent.next_call()
        await call.answer()
        await phone.wait_answered()
        yield phone, call


async def next_event(events: AsyncIterator[quic.CallEvent], kind: int,
                     reason: str | None = None, timeout: float = 10.0) -> quic.CallEvent:
    """The next event of ``kind`` (and ``reason``) from ``events``."""
    async with asyncio.timeout(timeout):
        async for event in events:
            if event.kind == kind and (reason is None or event.reason == reason):
                return event
    raise AssertionError(f"the stream ended before a {Kind.Name(kind)} {reason or ''}")


def tone(seconds: float, rate: int, freq: float = 440.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def pcmu_frame(call_sid: str, seq: int, eos: bool = False) -> bytes:
    """One envelope: 20 ms of µ-law near-silence (a valid frame for an 8 kHz call)."""
    return quic.encode(quic.AudioFrame(call_sid=call_sid, payload=b"\xfe" * 160, codec="PCMU",
                                       sequence_number=seq, end_of_stream=eos))


def gateway_connections(gw: GatewayThread) -> list[Any]:
    """The gateway's QUIC connections (``GatewayConnection``; read from the test's thread:
    only to look)."""
    from telcoflow.telephony.quic.door import QuicDoor
    for start, _ in gw.gateway._services:
        door = getattr(start, "__self__", None)
        if isinstance(door, QuicDoor):
            return list(door.connections)
    raise AssertionError("the gateway has no QUIC door")
