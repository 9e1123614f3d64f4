"""Cost of the WebSocket codec's fast path: ns per frame, parse and build, both roles.

    .venv/bin/python bench/ws_codec.py            # parse/build table
    .venv/bin/python bench/ws_codec.py --masking  # plus the masking alternatives

"parse" is one read holding one whole binary frame: the bytes copied into the
codec's receive buffer (as ``recv_into`` would) and ``buffer_updated`` run to
the payload ``bytes``. The frame comes from the other role, so the server
parses masked frames and the client unmasked ones. "build" is
``send_binary(payload)`` up to the bytes to write. Payloads are 1 channel byte
plus 20 ms of 8/16/48 kHz PCM16. Each figure is the best of several repeats
(the machine is shared: the minimum is the least disturbed).
"""

from __future__ import annotations

import argparse
import os
import timeit
from collections.abc import Callable

import numpy as np

from telcoflow.protocol.ws import Role, WsCodec, apply_mask

SIZES = (321, 641, 1921)


def best_ns(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


def parse_case(role: Role, size: int) -> Callable[[], object]:
    other = Role.CLIENT if role is Role.SERVER else Role.SERVER
    frame = WsCodec(other).send_binary(os.urandom(size))
    codec = WsCodec(role)
    n = len(frame)

    def parse() -> object:
        codec.get_buffer(-1)[:n] = frame
        return codec.buffer_updated(n)

    assert parse() and len(parse()[0]) == size  # type: ignore[arg-type]
    return parse


def build_case(role: Role, size: int) -> Callable[[], object]:
    codec = WsCodec(role)
    payload = os.urandom(size)
    return lambda: codec.send_binary(payload)


def masking_table(number: int, repeat: int) -> None:
    def int_xor(data: bytes, key: bytes) -> bytes:
        n = len(data)
        k = (key * ((n + 3) >> 2))[:n]
        return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(
            n, "little")

    def numpy_xor(data: bytes, key: bytes) -> bytes:
        n = len(data)
        keys = np.frombuffer(key * ((n + 3) >> 2), np.uint8, n)
        return np.bitwise_xor(np.frombuffer(data, np.uint8), keys).tobytes()

    candidates: dict[str, Callable[[bytes, bytes], bytes]] = {
        "codec apply_mask": apply_mask, "int.from_bytes ^": int_xor, "numpy xor": numpy_xor}
    try:  # for reference only: the codec does not use websockets' undocumented C module
        from websockets.speedups import apply_mask as c_mask
        candidates["websockets C"] = c_mask
    except ImportError:
        pass
    print("\nmasking, ns per call")
    print(f"{'bytes':>6} " + " ".join(f"{name:>17}" for name in candidates))
    for size in (160, 320, 640, 1281, 1920):
        data, key = os.urandom(size), os.urandom(4)
        expected = numpy_xor(data, key)
        cells = []
        for fn in candidates.values():
            assert fn(data, key) == expected
            cells.append(f"{best_ns(lambda f=fn, d=data, k=key: f(d, k), number, repeat):17.0f}")
        print(f"{size:>6} " + " ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--masking", action="store_true", help="also time masking options")
    args = parser.parse_args()
    print("ns per frame (payload bytes: 1 channel byte + 20 ms of PCM16)")
    print(f"{'role':>7} {'op':>6} " + " ".join(f"{size:>7}" for size in SIZES))
    for role in (Role.SERVER, Role.CLIENT):
        for op, case in (("parse", parse_case), ("build", build_case)):
            cells = [f"{best_ns(case(role, size), args.number, args.repeat):7.0f}"
                     for size in SIZES]
            print(f"{role.value:>7} {op:>6} " + " ".join(cells))
    if args.masking:
        masking_table(args.number, args.repeat)


if __name__ == "__main__":
    main()
