"""``telcoflow call --via quic``: a QUIC agent of the connector originates a call, plays
a file to the number and records what it hears (the other doors' shape, agent side)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio.codec import decode, encode
from .call import QuicCall
from .client import QuicAgent, QuicAgentError


async def _answered(call: QuicCall, timeout: float) -> None:
    """Until the number answers; QuicAgentError with the cause if it never does."""
    waits = [asyncio.ensure_future(call.answered.wait()),
             asyncio.ensure_future(call.ended.wait())]
    done, pending = await asyncio.wait(waits, timeout=timeout,
                                       return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if not call.answered.is_set():
        raise QuicAgentError(call.end_reason or "TIMEOUT", "the number did not answer")


async def _collect(call: QuicCall, into: list[bytes]) -> None:
    async for frame in call.audio():
        into.append(decode(frame.codec.lower(), frame.payload))


async def place_call(agent: QuicAgent, to: str, codec: str, rate: int,
                     talk: Any) -> tuple[dict[str, Any], npt.NDArray[np.int16], int]:
    """Originate to ``to`` in ``codec``/``rate``; ``talk(rate)`` gives the samples to play.
    Returns the summary, what was heard and its rate."""
    t0 = time.perf_counter()
    call = agent.call(await agent.originate(to, default_app_args={
        "codec": codec.upper(), "sample_rate": str(rate)}))
    await _answered(call, 60.0)
    setup_ms = (time.perf_counter() - t0) * 1000
    heard: list[bytes] = []
    collector = asyncio.create_task(_collect(call, heard))
    samples: npt.NDArray[np.int16] = talk(call.sample_rate)
    pcm = samples.astype("<i2").tobytes()
    frames = call.send(pcm if call.codec == "PCM16" else encode(call.codec.lower(), pcm))
    await call.end()
    ended_by = call.end_reason or "AGENT_HANGUP"
    if not call.ended.is_set():
        try:
            await call.hangup()
        except QuicAgentError:
            pass
        await call.wait_ended()
    await collector
    received = np.frombuffer(b"".join(heard), dtype="<i2").astype(np.int16)
    loss = call.gateway_loss
    return ({"call_id": call.call_sid, "setup_ms": round(setup_ms, 1), "codec": call.codec,
             "rate": call.sample_rate, "frames_sent": frames,
             "frames_received": call.tracker.received,
             "lost_to_gw": loss.missing if loss is not None else None,
             "lost_from_gw": call.tracker.missing, "ended_by": ended_by},
            received, call.sample_rate)
