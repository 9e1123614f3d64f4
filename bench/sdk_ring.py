"""Cost of the SDK's outgoing-audio hot path: ns per 20 ms frame, written and sent.

    .venv/bin/python bench/sdk_ring.py                 # this tree's ring
    .venv/bin/python bench/sdk_ring.py --compare HEAD  # and HEAD's, interleaved

Each case queues 20 ms of PCM16 with ``ByteRing.write`` (what ``send_audio``
does) and drains it as the voice connection does on a ``buffer_request``
(``OutboundAudio.grant`` + ``due_frames`` with the channel-0 prefix):

- ``echo``: one frame written, one frame sent (the ring is empty after each cycle);
- ``burst``: 50 frames (1 s) written, then all 50 sent in one grant (TTS-style);
- ``steady``: 1 s queued ahead, then one frame in and one out per cycle.

The rate is 16 kHz (640-byte frames) unless ``--rate`` says otherwise. Each
figure is the best of several repeats (the machine is shared: the minimum is
the least disturbed) of process CPU time, which leaves out the time other
processes had the core; with ``--compare`` the two rings take turns, repeat by
repeat, so that both see the same load.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from telcoflow.sdk import ring
from telcoflow.sdk.config import DEFAULT_BUFFER_SIZE

ROOT = Path(__file__).resolve().parents[1]
PREFIX = b"\x00"

Case = Callable[[ModuleType, bytes], Callable[[], object]]


def ring_at(ref: str) -> ModuleType:
    """``telcoflow.sdk.ring`` as it is in git revision ``ref``, imported beside this tree's."""
    source = subprocess.run(["git", "show", f"{ref}:src/telcoflow/sdk/ring.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"telcoflow.sdk._ring_{ref}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "telcoflow.sdk"  # its relative import of .errors
    exec(compile(source, f"{ref}:ring.py", "exec"), module.__dict__)
    return module


def echo_case(rings: ModuleType, frame: bytes) -> Callable[[], object]:
    out = rings.OutboundAudio(DEFAULT_BUFFER_SIZE)
    n = len(frame)

    def cycle() -> object:
        out.ring.write(frame)
        out.grant(n, n)
        return out.due_frames(PREFIX)

    return cycle


def burst_case(rings: ModuleType, frame: bytes, frames: int = 50) -> Callable[[], object]:
    out = rings.OutboundAudio(DEFAULT_BUFFER_SIZE)
    n = len(frame)

    def cycle() -> object:
        write = out.ring.write
        for _ in range(frames):
            write(frame)
        out.grant(n * frames, n)
        return out.due_frames(PREFIX)

    return cycle


def steady_case(rings: ModuleType, frame: bytes, ahead: int = 50) -> Callable[[], object]:
    out = rings.OutboundAudio(DEFAULT_BUFFER_SIZE)
    n = len(frame)
    for _ in range(ahead):
        out.ring.write(frame)

    def cycle() -> object:
        out.ring.write(frame)
        out.grant(n, n)
        return out.due_frames(PREFIX)

    return cycle


CASES: dict[str, tuple[Case, int]] = {
    "echo (1 in, 1 out)": (echo_case, 1),
    "burst (50 in, 50 out)": (burst_case, 50),
    "steady (1 s queued)": (steady_case, 1),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--compare", metavar="REF", help="also time the ring of git REF")
    args = parser.parse_args()
    frame = os.urandom(args.rate // 50 * 2)
    rings = {"this tree": ring}
    if args.compare:
        rings = {args.compare: ring_at(args.compare), **rings}
    print(f"{len(frame)}-byte frames ({args.rate} Hz), ns per frame written and sent, "
          f"best of {args.repeat}")
    print(f"  {'':24}" + "".join(f"{name:>12}" for name in rings))
    for name, (case, frames) in CASES.items():
        fns = {label: case(module, frame) for label, module in rings.items()}
        number = max(1, args.number // frames)
        best = dict.fromkeys(fns, float("inf"))
        for _ in range(args.repeat):
            for label, fn in fns.items():
                seconds = timeit.Timer(fn, timer=time.process_time).timeit(number)
                best[label] = min(best[label], seconds / number / frames * 1e9)
        print(f"  {name:24}" + "".join(f"{best[label]:12.0f}" for label in fns))


if __name__ == "__main__":
    main()
