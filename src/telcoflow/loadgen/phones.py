"""The bench's callers: many simulated phones on one event loop, one sender for all.

Why not :class:`telcoflow.testing.Phone`: it runs on the
``websockets`` asyncio client and paces each phone with its own sleeps, which
costs the bench process more per frame than the gateway spends; at a few
hundred calls the bench, not the gateway, would be measured. These phones
speak the same phone plane (``telcoflow.protocol.phone``) over the SDK's lean
sans-I/O WebSocket client, time-stamp frames in the receive callback, and one
task sends every phone's frames on a shared 20 ms schedule, each phone at its
own random phase like independent handsets.
"""

from __future__ import annotations

import asyncio
import random
from array import array
from time import perf_counter

from ..protocol import phone as pp
from ..sdk.wsconn import WsConnection, open_ws
from .agent import (
    BURST,
    CALLER,
    caller_number,
    pcm16_frame,
    read_pcm16,
    read_ulaw,
    ulaw_frame,
)

# what a heard frame was
HEARD_CALLER, HEARD_BURST, HEARD_SILENCE, HEARD_OTHER = 0, 1, 2, 3

PHASES = 20  # 1 ms phase slots in a 20 ms frame period


class BenchPhone:
    """One caller: dials, sends marked frames when told, classifies every frame it hears."""

    def __init__(self, index: int, codec: str, rate: int) -> None:
        self.index = index
        self.codec = codec
        self.samples = rate // 50
        self.rate = rate
        self._frame = ulaw_frame if codec == "pcmu" else pcm16_frame
        self._read = read_ulaw if codec == "pcmu" else read_pcm16
        frame_bytes = pp.bytes_per_frame(codec, rate)
        self._silence = (b"\xff" if codec == "pcmu" else b"\x00\x00") * self.samples
        self._period = frame_bytes // self.samples * 12  # one marker, in bytes
        self.sent_t = array("d")
        self.heard_t = array("d")
        self.heard_kind = array("b")
        self.heard_seq = array("l")
        self.events: dict[str, float] = {}
        self.hangup_reason: str | None = None
        self.errors: list[str] = []
        self._ws: WsConnection | None = None
        loop = asyncio.get_running_loop()
        self._ringing: asyncio.Future[None] = loop.create_future()
        self._answered: asyncio.Future[None] = loop.create_future()
        self._tail: asyncio.Future[None] = loop.create_future()
        self._tail_seq = -1

    # ── signalling ──────────────────────────────────────────────────────────
    async def call(self, url: str, key: str, number: str, timeout: float) -> None:
        """Connect, dial and wait until the call is answered."""
        self._ws = await open_ws(url.rstrip("/") + pp.PHONE_PATH,
                                 {"Authorization": f"Bearer {key}"}, self, max_size=1 << 16)
        self.events["dial"] = perf_counter()
        self._ws.send_text(pp.build_dial(number, caller_number(self.index), self.codec,
                                         self.rate))
        async with asyncio.timeout(timeout):
            await self._ringing
            await self._answered

    async def hangup(self) -> None:
        ws = self._ws
        if ws is not None and ws.is_open:
            ws.send_text(pp.build_hangup_request())
            await ws.close()

    def send(self, seq: int) -> None:
        ws = self._ws
        if ws is None or not ws.is_open or self.hangup_reason is not None:
            return
        ws.send_binary(self._frame(CALLER, self.index, seq, self.samples))
        self.sent_t.append(perf_counter())

    async def tail(self, timeout: float) -> None:
        """Wait until the echo of the last frame sent has been heard."""
        self._tail_seq = len(self.sent_t) - 1
        if self._tail_seq < 0 or self._tail_seq in self.heard_seq[-50:]:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._tail), timeout)
        except TimeoutError:
            pass

    # ── WsHandler ───────────────────────────────────────────────────────────
    def ws_binary(self, data: bytes) -> None:
        self.heard_t.append(perf_counter())
        if data == self._silence:
            kind, seq = HEARD_SILENCE, -1
        else:
            mark = self._read(data)
            period = self._period
            if (mark is None or mark[1] != self.index or data[period:] != data[:-period]
                    or mark[0] not in (CALLER, BURST)):
                kind, seq = HEARD_OTHER, -1  # not a whole frame of ours: corrupt or crossed
            else:
                kind, seq = (HEARD_CALLER if mark[0] == CALLER else HEARD_BURST), mark[2]
        self.heard_kind.append(kind)
        self.heard_seq.append(seq)
        if kind == HEARD_CALLER and seq == self._tail_seq and not self._tail.done():
            self._tail.set_result(None)

    def ws_text(self, data: bytes) -> None:
        # a handful per call (set-up and tear-down), never per audio frame
        frame = pp.parse_network_text(data)
        if isinstance(frame, pp.Ringing):
            self.events["ringing"] = perf_counter()
            _settle(self._ringing)
        elif isinstance(frame, pp.Answered):
            self.events["answered"] = perf_counter()
            _settle(self._answered)
        elif isinstance(frame, pp.HungUp):
            self.hangup_reason = frame.reason
            self._fail(f"hung up by the gateway: {frame.reason} ({frame.message})")
        elif isinstance(frame, pp.LineError):
            self.errors.append(f"{frame.code}: {frame.message}")

    def ws_closed(self, code: int | None, reason: str) -> None:
        self._fail(f"line closed ({code} {reason})")

    def _fail(self, why: str) -> None:
        for future in (self._ringing, self._answered):
            if not future.done():
                future.set_exception(ConnectionError(why))
        _settle(self._tail)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def place_calls(phones: list[BenchPhone], url: str, key: str, numbers: list[str],
                      concurrency: int, rate: float, timeout: float) -> list[str]:
    """Set every call up, ``rate`` a second at most, ``concurrency`` at a time.

    Caller ``i`` dials ``numbers[i % len(numbers)]``: one number per agent process.
    Returns the failures.
    """
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(n: int, phone: BenchPhone) -> None:
        # paced: the gateway limits each session-manager link to 200 frames a second, and
        # a call's set-up costs its agent two or three of them
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
        async with gate:
            try:
                await phone.call(url, key, numbers[phone.index % len(numbers)], timeout)
            except (OSError, ConnectionError, TimeoutError) as exc:
                failures.append(f"caller {phone.index}: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(one(n, p) for n, p in enumerate(phones)))
    return failures


async def talk(phones: list[BenchPhone], seconds: float, seed: int = 1) -> None:
    """Every phone sends ``seconds`` of 20 ms frames on an absolute schedule.

    Phones are spread over 1 ms phase slots so the gateway sees arrivals the
    way independent callers make them, not a burst of N frames every 20 ms.
    """
    rng = random.Random(seed)
    slots: list[list[BenchPhone]] = [[] for _ in range(PHASES)]
    for phone in phones:
        slots[rng.randrange(PHASES)].append(phone)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.01
    for seq in range(round(seconds * 50)):
        for slot, members in enumerate(slots):
            if not members:
                continue
            delay = start + seq * 0.02 + slot * 0.02 / PHASES - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            for phone in members:
                phone.send(seq)
