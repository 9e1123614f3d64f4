"""A UDP relay that loses datagrams on purpose, for loss tests of UDP planes (QUIC).

::

    async with LossyRelay(("127.0.0.1", server_port), seed=7) as relay:
        client connects to ("127.0.0.1", relay.port)
        relay.set_loss(up=0.05, down=0.05, min_size=150)   # from now on
        ...
        relay.dropped["up"], relay.dropped["down"]

``up`` is client → server, ``down`` server → client. Each direction has its own
seeded RNG, so a run drops the same datagrams given the same traffic.
``min_size`` limits the losses to datagrams at least that big: on QUIC that keeps
acknowledgement-only packets (tens of bytes) and loses packets that carry media,
so a test can compare what the relay dropped with what the receiver counted.
"""

from __future__ import annotations

import asyncio
import random
from types import TracebackType

Address = tuple[str, int]
DIRECTIONS = ("up", "down")


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: object) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.on_datagram(data, addr)  # type: ignore[operator]


class LossyRelay:
    def __init__(self, target: Address, *, seed: int = 1, host: str = "127.0.0.1") -> None:
        self.target, self.host = target, host
        self.loss = {d: 0.0 for d in DIRECTIONS}
        self.min_size = 0
        self.forwarded = {d: 0 for d in DIRECTIONS}
        self.dropped = {d: 0 for d in DIRECTIONS}
        self._rng = {d: random.Random(f"{seed}-{d}") for d in DIRECTIONS}
        self._front: _Side | None = None
        self._backs: dict[Address, _Side] = {}  # one upstream socket per client address
        self._opening: dict[Address, list[bytes]] = {}  # what came while its socket opens

    @property
    def port(self) -> int:
        assert self._front is not None and self._front.transport is not None
        return int(self._front.transport.get_extra_info("sockname")[1])

    def set_loss(self, up: float | None = None, down: float | None = None,
                 min_size: int | None = None) -> None:
        """Drop this fraction of each direction's datagrams (of ``min_size`` bytes or more)."""
        if up is not None:
            self.loss["up"] = up
        if down is not None:
            self.loss["down"] = down
        if min_size is not None:
            self.min_size = min_size

    async def __aenter__(self) -> LossyRelay:
        loop = asyncio.get_running_loop()
        _, self._front = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_client), local_addr=(self.host, 0))
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                        ) -> None:
        for side in (self._front, *self._backs.values()):
            if side is not None and side.transport is not None:
                side.transport.close()

    def _lost(self, direction: str, data: bytes) -> bool:
        if len(data) < self.min_size or not self.loss[direction]:
            self.forwarded[direction] += 1
            return False
        if self._rng[direction].random() < self.loss[direction]:
            self.dropped[direction] += 1
            return True
        self.forwarded[direction] += 1
        return False

    def _from_client(self, data: bytes, addr: Address) -> None:
        back = self._backs.get(addr)
        if back is None:
            if addr not in self._opening:
                self._opening[addr] = []
                asyncio.get_running_loop().create_task(self._open_back(addr))
            self._opening[addr].append(data)
            return
        if back.transport is not None and not self._lost("up", data):
            back.transport.sendto(data, self.target)

    async def _open_back(self, client: Address) -> None:
        front = self._front

        def to_client(data: bytes, _addr: Address) -> None:
            if front is not None and front.transport is not None \
                    and not self._lost("down", data):
                front.transport.sendto(data, client)

        _, back = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Side(to_client), local_addr=(self.host, 0))
        self._backs[client] = back
        for data in self._opening.pop(client):
            self._from_client(data, client)
