"""The bench's echo agents, and the frame marker both ends of the bench share.

Run as a script, once per bench step set: ``python -u -P loadgen/agent.py`` for
our SDK, ``python -S -P -u loadgen/agent.py`` with ``PYTHONPATH`` = the
published SDK's directory for the reference. It may import only the standard
library and ``telcoflow``'s public names, because under ``-S`` nothing else
(numpy included) is importable beside the published SDK; ``-P`` keeps this
directory off ``sys.path`` so no sibling module can shadow a dependency.

Every 20 ms frame carries a marker in its samples: 12 symbols (magic, kind,
call index, sequence number) repeated over the frame. Symbols are 16 µ-law
levels whose codes survive decode → encode, so a marker crosses pcmu legs as
bit-exact as pcm16 ones (the gateway's resampler is a passthrough when the
phone and agent rates match).

Protocol with the bench (stdin/stdout, one line each): the agent prints
``READY`` once connected; ``DUMP <path> <calls>`` makes it wait until that many
calls have ended, write their timestamps (``time.perf_counter``, CLOCK_MONOTONIC,
comparable across processes) to ``path`` as JSON, forget them and print
``DUMPED``. End of stdin stops the agent.

The per-frame timestamps (33 bytes a frame, 6 MB per call-hour) do not stay in
the agent's memory: every ``SPOOL_FRAMES`` they are appended to files in a
spool directory of the agent's, which the JSON names and :func:`load_spooled`
reads back (and deletes) in the bench. So the agent's RSS slope over a long
call is the SDK's, not the bench's bookkeeping.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import sys
import tempfile
import threading
from array import array
from itertools import count
from time import perf_counter
from typing import Any

from telcoflow import (
    Call,
    CallAudioConfig,
    SessionManager,
    SessionManagerConfig,
    SessionNotification,
)

# ── the marker ──────────────────────────────────────────────────────────────
ULAW_CODES = bytes(0x84 + 7 * k for k in range(16))
LEVELS = (28028, 20860, 14972, 11388, 7932, 6140, 4348, 3260,
          2364, 1692, 1244, 844, 620, 396, 276, 164)  # the int16 decodes of ULAW_CODES
MAGIC = 0xA
CALLER, BURST = 0, 1   # kinds: a caller frame (echoed back as is), agent prompt audio
MARK_SYMBOLS = 12
_MARK_PCM16 = struct.Struct(f"<{MARK_SYMBOLS}h")
_LEVEL_SYMBOL = {level: symbol for symbol, level in enumerate(LEVELS)}
_CODE_SYMBOL = {code: symbol for symbol, code in enumerate(ULAW_CODES)}

# the interrupt scene: prompt audio queued ahead, cut after WAIT frames, echo resumes later
BURST_FRAMES = 25
INTERRUPT_AFTER_FRAMES = 10
PAUSE_FRAMES = 5


def _symbols(kind: int, call: int, seq: int) -> list[int]:
    return [MAGIC, kind, *((call >> s) & 15 for s in (12, 8, 4, 0)),
            *((seq >> s) & 15 for s in (20, 16, 12, 8, 4, 0))]


def _tile(mark: bytes, size: int) -> bytes:
    return (mark * (size // len(mark) + 1))[:size]


def pcm16_frame(kind: int, call: int, seq: int, samples: int) -> bytes:
    mark = _MARK_PCM16.pack(*(LEVELS[s] for s in _symbols(kind, call, seq)))
    return _tile(mark, samples * 2)


def ulaw_frame(kind: int, call: int, seq: int, samples: int) -> bytes:
    return _tile(bytes(ULAW_CODES[s] for s in _symbols(kind, call, seq)), samples)


def _fields(symbols: list[int]) -> tuple[int, int, int] | None:
    if symbols[0] != MAGIC:
        return None
    call = seq = 0
    for s in symbols[2:6]:
        call = call << 4 | s
    for s in symbols[6:12]:
        seq = seq << 4 | s
    return symbols[1], call, seq


def read_pcm16(frame: bytes) -> tuple[int, int, int] | None:
    """``(kind, call, seq)`` of a marked PCM16 frame, else None."""
    if len(frame) < _MARK_PCM16.size:
        return None
    try:
        return _fields([_LEVEL_SYMBOL[v] for v in _MARK_PCM16.unpack_from(frame)])
    except KeyError:
        return None


def read_ulaw(frame: bytes) -> tuple[int, int, int] | None:
    """``(kind, call, seq)`` of a marked µ-law frame, else None."""
    if len(frame) < MARK_SYMBOLS:
        return None
    try:
        return _fields([_CODE_SYMBOL[c] for c in frame[:MARK_SYMBOLS]])
    except KeyError:
        return None


def caller_number(index: int) -> str:
    return f"+1999{index:07d}"


def caller_index(number: str) -> int:
    return int(number[-7:]) if number.startswith("+1999") else -1


# ── the agent ───────────────────────────────────────────────────────────────
# frames a call's log holds before they go to its spool files: 30 s, ~50 kB
SPOOL_FRAMES = 1500
# the per-frame series and their array type codes
SERIES = (("rx_seq", "l"), ("rx_t", "d"), ("tx_seq", "l"), ("tx_t", "d"), ("tx_start", "b"))
_log_ids = count()


class CallLog:
    """What one call's agent saw and did, with perf_counter times.

    ``spool`` (a directory): the per-frame series are appended to files there
    every ``SPOOL_FRAMES`` frames and at the dump, so a long call holds at most
    that many frames of them; None keeps them all in memory.
    """

    def __init__(self, spool: str | None = None, index: int = 0) -> None:
        self.rx_seq = array("l")     # caller frames as audio_stream() yielded them (-1: unmarked)
        self.rx_t = array("d")
        self.tx_seq = array("l")     # caller frames handed back to send_audio()
        self.tx_t = array("d")
        self.tx_start = array("b")   # 1 where echo (re)starts after a pause: a talkspurt start
        self.burst_t: list[float] = []
        self.interrupt: list[float] = []  # clear_send_audio_buffer() called, returned
        self.events: dict[str, float] = {}
        self.quic: dict[str, Any] | None = None  # the QUIC plane's loss counts (quic_agent.py)
        # unique per log: a call index comes back in the next step while this one is dumped
        self._spool = None if spool is None else os.path.join(spool, f"{index}-{next(_log_ids)}")

    def received(self, seq: int, now: float) -> None:
        """A caller frame ``seq`` (-1: unmarked) came out of the audio stream at ``now``."""
        self.rx_seq.append(seq)
        self.rx_t.append(now)
        if len(self.rx_t) >= SPOOL_FRAMES:
            self.spill()

    def echoed(self, seq: int, start: int, now: float) -> None:
        """Caller frame ``seq`` handed back at ``now`` (``start``: opens a talkspurt)."""
        self.tx_seq.append(seq)
        self.tx_start.append(start)
        self.tx_t.append(now)
        if len(self.tx_t) >= SPOOL_FRAMES:
            self.spill()

    def spill(self) -> None:
        """Append the per-frame series to the spool files and start them afresh."""
        if self._spool is None:
            return
        for name, code in SERIES:
            series = getattr(self, name)
            if series:
                with open(f"{self._spool}.{name}", "ab") as fh:
                    series.tofile(fh)
                setattr(self, name, array(code))  # a new empty array: the old buffer is freed

    def as_json(self) -> dict[str, Any]:
        self.spill()
        out: dict[str, Any] = {name: getattr(self, name).tolist() for name, _ in SERIES}
        out.update(burst_t=self.burst_t, interrupt=self.interrupt, events=self.events,
                   quic=self.quic, spool=self._spool)
        return out


def load_spooled(logs: dict[str, Any]) -> dict[str, Any]:
    """A dump's call logs with their spooled series read back (as arrays; the files go)."""
    for key, log in logs.items():
        prefix = log.pop("spool", None) if not key.startswith("_") else None
        if prefix is None:
            continue
        for name, code in SERIES:
            series = array(code)
            path = f"{prefix}.{name}"
            if os.path.exists(path):
                with open(path, "rb") as fh:
                    series.frombytes(fh.read())
                os.unlink(path)
            series.extend(log.get(name, ()))
            log[name] = series
    return logs


class EchoAgents:
    def __init__(self, rate: int, interrupt: tuple[int, int], spool: str | None = None) -> None:
        self.samples = rate // 50
        self.spool = spool  # where the calls' per-frame logs go (see CallLog)
        self.interrupt = interrupt  # (first frame, spread): -1 = no interrupt scene
        self.logs: dict[int, CallLog] = {}
        self.ended = 0
        self._changed = asyncio.Condition()

    async def on_notification(self, sm: SessionManager, noti: SessionNotification) -> None:
        now = perf_counter()
        index = caller_index(noti.remote_address)
        # a call is notified again after a session-manager reconnect: keep what it logged
        log = self.log_for(index)
        log.events.setdefault("notify", now)
        session = await sm.open_session(noti.session_id)

        @session.on_incoming_call
        async def on_call(call: Call) -> None:
            log.events["call_in"] = perf_counter()
            try:
                if await call.answer():
                    log.events["answered"] = perf_counter()
                    await self.echo(call, index, log)
            except Exception as exc:  # the call's end races our sends; keep the log
                log.events.setdefault("error", perf_counter())
                print(f"call {index}: {type(exc).__name__}: {exc}", file=sys.stderr)
            finally:
                log.events["ended"] = perf_counter()
                async with self._changed:
                    self.ended += 1
                    self._changed.notify_all()

        await session.ready()

    def log_for(self, index: int) -> CallLog:
        log = self.logs.get(index)
        if log is None:
            log = self.logs[index] = CallLog(self.spool, index)
        return log

    async def echo(self, call: Call, index: int, log: CallLog) -> None:
        first, spread = self.interrupt
        # staggered per call: a barge-in on every call in the same 20 ms is no one's traffic
        interrupt_at = first + index * 37 % max(1, spread) if first >= 0 else -1
        echoing, start, countdown, interrupted = True, 1, 0, False
        helper: asyncio.Task[None] | None = None
        async for chunk in call.audio_stream():
            now = perf_counter()
            mark = read_pcm16(chunk)
            seq = mark[2] if mark is not None and mark[0] == CALLER else -1
            log.received(seq, now)
            if echoing:
                if not interrupted and 0 <= interrupt_at <= seq:
                    # play prompt audio ahead of time, then cut it as a barge-in would
                    interrupted, echoing, countdown = True, False, INTERRUPT_AFTER_FRAMES
                    burst = b"".join(pcm16_frame(BURST, index, k, self.samples)
                                     for k in range(BURST_FRAMES))
                    log.burst_t.append(perf_counter())
                    await call.send_audio(burst)
                    continue
                log.echoed(seq, start, perf_counter())
                start = 0
                await call.send_audio(chunk)
                continue
            countdown -= 1
            if countdown == 0 and helper is None:
                # in its own task, so caller audio keeps being read (and timed) meanwhile
                helper = asyncio.ensure_future(self._interrupt(call, log))
                countdown = PAUSE_FRAMES
            elif countdown == 0:
                echoing, start = True, 1
        if helper is not None:
            await helper

    @staticmethod
    async def _interrupt(call: Call, log: CallLog) -> None:
        begun = perf_counter()
        await call.clear_send_audio_buffer()
        log.interrupt = [begun, perf_counter()]

    async def dump(self, path: str, calls: int) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.ended >= calls), 30)
            except TimeoutError:
                print(f"dump: only {self.ended} of {calls} calls ended", file=sys.stderr)
        logs, self.logs, self.ended = self.logs, {}, 0
        data = {str(i): log.as_json() for i, log in logs.items()}
        data.update(self.dump_extra())
        await asyncio.to_thread(_write_json, path, data)
        print("DUMPED", flush=True)

    def dump_extra(self) -> dict[str, Any]:
        """More for the dump, under keys that are not call indices (``_name``)."""
        return {}


def _write_json(path: str, data: dict[str, Any]) -> None:
    with open(path, "w") as fh:
        json.dump(data, fh)


def _read_commands(loop: asyncio.AbstractEventLoop, agents: EchoAgents,
                   stop: asyncio.Event) -> None:
    for line in sys.stdin:
        words = line.split()
        if len(words) == 3 and words[0] == "DUMP":
            asyncio.run_coroutine_threadsafe(agents.dump(words[1], int(words[2])), loop)
    loop.call_soon_threadsafe(stop.set)


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="telcoflow-agent-log-") as spool:
        await serve(spool)


async def serve(spool: str) -> None:
    first, spread = os.environ["BENCH_INTERRUPT"].split(",")
    agents = EchoAgents(int(os.environ["BENCH_RATE"]), (int(first), int(spread)), spool)
    config = SessionManagerConfig.create(
        api_key=os.environ["WSS_API_KEY"], connector_uuid=os.environ["WSS_CONNECTOR_UUID"],
        base_url=os.environ["TELCOFLOW_BASE_URL"],
        call_audio=CallAudioConfig(sample_rate=int(os.environ["BENCH_RATE"])))  # type: ignore[arg-type]
    stop = asyncio.Event()
    async with SessionManager(config) as sm:
        @sm.on_session_notification
        async def handle(noti: SessionNotification) -> None:
            await agents.on_notification(sm, noti)

        threading.Thread(target=_read_commands, args=(asyncio.get_running_loop(), agents, stop),
                         daemon=True).start()
        print("READY", flush=True)
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
