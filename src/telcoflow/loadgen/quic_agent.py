"""The bench's echo agent on the QUIC plane (docs/quic.md), one process for every call.

Run as a script, like ``loadgen/agent.py``: ``python -u -P loadgen/quic_agent.py``,
with the same protocol on stdin/stdout (``READY``; ``DUMP <path> <calls>`` →
``DUMPED``; end of stdin stops it) and the same per-call log, so the bench merges
it with the callers' time stamps exactly as it does the WebSocket plane's agents.

It opens one :class:`~telcoflow.quic.QuicAgent` connection per connector it is
given (``BENCH_QUIC_CONNECTORS``, JSON ``[[api_key, connector_uuid], ...]``):
the gateway takes at most 64 calls on a connection (each of them may start its
audio stream at the same moment), so the bench spreads the callers over as many
connectors as it needs (``loadgen/run.py``). Each connection subscribes for
PCM16 at the bench's rate (what the WebSocket agents get) and answers every call
it is offered; a call's frames are echoed as they come, through
:meth:`~telcoflow.quic.QuicCall.send`, which paces them at 20 ms.

``BENCH_CARRIER``: ``stream`` (the calls' QUIC streams, reliable) or ``datagram``
(QUIC DATAGRAMs both ways, RFC 9221: a lost frame stays lost). At the end of each
call its log also holds the loss counts of both ends (``quic``): the gateway's
``LOSS`` event (our audio as it arrived there) and our tracker (its audio here).

No interrupt scene: a ``QuicCall`` has no call that clears the audio it queued
itself, so the scene would not measure what it measures on the WebSocket plane;
the bench turns it off on both planes when it compares them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
import threading
from contextlib import AsyncExitStack
from time import perf_counter
from typing import Any

from telcoflow.loadgen.agent import (
    CALLER,
    CallLog,
    EchoAgents,
    _read_commands,
    caller_index,
    read_pcm16,
)
from telcoflow.quic import ErrorCode, QuicAgent, QuicCall


class QuicEchoAgents(EchoAgents):
    """Echo every call of every connection; the logs and ``dump`` are the WebSocket
    agents' (:class:`~telcoflow.loadgen.agent.EchoAgents`)."""

    def __init__(self, rate: int, spool: str | None = None) -> None:
        super().__init__(rate, (-1, 0), spool)
        self.tasks: set[asyncio.Task[None]] = set()
        self.clients: list[QuicAgent] = []

    def dump_extra(self) -> dict[str, Any]:
        """Each connection's state and the ERROR events of its subscription's stream
        (what belongs to no call: a stream refused before it named one)."""
        connections = []
        for client in self.clients:
            errors: dict[str, int] = {}
            for event in client.errors:
                errors[event.reason] = errors.get(event.reason, 0) + 1
            client.errors.clear()
            connections.append({"closed": client.closed.is_set(), "close_code": client.close_code,
                                "close_reason": client.close_reason, "errors": errors})
        return {"_connections": connections}

    async def take_calls(self, agent: QuicAgent) -> None:
        """Every call offered to ``agent`` (subscribed), in its own task."""
        while not agent.closed.is_set():
            try:
                call = await agent.next_call(timeout=3600.0)
            except TimeoutError:
                continue
            task = asyncio.ensure_future(self.on_call(call))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def on_call(self, call: QuicCall) -> None:
        now = perf_counter()
        index = caller_index(call.caller)
        log = self.log_for(index)
        # INCOMING is the notification and the call at once on this plane
        log.events.setdefault("notify", now)
        log.events["call_in"] = now
        stop: dict[str, Any] = {}
        watch = asyncio.ensure_future(self._watch_stop(call, stop))
        try:
            await call.answer()
            log.events["answered"] = perf_counter()
            await self.echo_frames(call, log)
        except Exception as exc:  # the call's end races our commands; keep the log
            log.events.setdefault("error", perf_counter())
            print(f"call {index}: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            log.events["ended"] = perf_counter()
            watch.cancel()
            loss = call.gateway_loss
            log.quic = {"gateway_received": loss.received if loss else None,
                        "gateway_missing": loss.missing if loss else None,
                        "agent_received": call.tracker.received,
                        "agent_missing": call.tracker.missing,
                        # the gateway stopped our audio stream: with what, and whether
                        # that came before the call's ENDED event
                        "stream_stopped": stop.get("code"),
                        "stopped_while_live": stop.get("live", False),
                        "errors": sorted({e.reason for e in call.errors})}
            async with self._changed:
                self.ended += 1
                self._changed.notify_all()

    @staticmethod
    async def _watch_stop(call: QuicCall, into: dict[str, Any]) -> None:
        """If the gateway stops this call's audio stream: the code, and whether the call's
        ENDED event had arrived by then (this runs when the stop arrives, not when the echo
        loop, which may lag, gets to it)."""
        try:
            code = await call.agent.wait_stopped(call, timeout=24 * 3600.0)
        except TimeoutError:
            return
        into.update(code=_code_name(code), live=not call.end_reason)

    @staticmethod
    async def echo_frames(call: QuicCall, log: CallLog) -> None:
        start = 1
        async for frame in call.audio():
            now = perf_counter()
            mark = read_pcm16(frame.payload)
            seq = mark[2] if mark is not None and mark[0] == CALLER else -1
            log.received(seq, now)
            log.echoed(seq, start, perf_counter())
            start = 0
            call.send(frame.payload, frame.codec)


def _code_name(code: int | None) -> str | None:
    if code is None:
        return None
    try:
        return ErrorCode(code).name
    except ValueError:
        return hex(code)


async def main() -> None:
    rate = int(os.environ["BENCH_RATE"])
    host, port = os.environ["BENCH_QUIC_HOST"], int(os.environ["BENCH_QUIC_PORT"])
    fingerprint = os.environ["BENCH_QUIC_FINGERPRINT"]
    carrier = os.environ.get("BENCH_CARRIER", "stream")
    connectors: list[list[str]] = json.loads(os.environ["BENCH_QUIC_CONNECTORS"])
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        spool = stack.enter_context(tempfile.TemporaryDirectory(prefix="telcoflow-agent-log-"))
        agents = QuicEchoAgents(rate, spool)
        clients = [await stack.enter_async_context(QuicAgent(
            host, port, key, uuid, fingerprint=fingerprint, datagrams=carrier == "datagram"))
            for key, uuid in connectors]
        agents.clients = clients
        for client in clients:  # every connection subscribed before the bench dials
            await client.subscribe(codec="PCM16", sample_rate=rate)
        taking = [asyncio.ensure_future(agents.take_calls(c)) for c in clients]
        threading.Thread(target=_read_commands, args=(asyncio.get_running_loop(), agents, stop),
                         daemon=True).start()
        print(f"READY {len(clients)} connection(s), carrier {carrier}", flush=True)
        await stop.wait()
        for task in taking:
            task.cancel()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
