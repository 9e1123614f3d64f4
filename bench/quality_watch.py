"""Live quality watching: microseconds per leg per media tick, amortised.

Run: ``PYTHONPATH=src .venv/bin/python bench/quality_watch.py [--calls 50] [--seconds 10]``.
Feeds ``--calls`` :class:`~telcoflow.engine.quality_watch.CallWatch` es the way a call
does (a caller frame and an agent frame per 20 ms tick, then ``tick()``), for
``--seconds`` of media, with the audio a call carries: speech-like noise bursts with
pauses on the caller's leg, the agent answering in turns (silent otherwise), and a
second run with both legs talking all the time (the worst case). Best of 3 runs;
prints µs per leg per tick (two legs a call) for each rate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from telcoflow.engine.ports import NoObserver  # noqa: E402
from telcoflow.engine.quality_watch import CallWatch  # noqa: E402


def _talk(rate: int, seconds: float, seed: int, duty: float) -> list[bytes]:
    """20 ms frames: noise bursts of ~1 s shaped like speech, silent ``1 - duty`` of the time."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    x = rng.normal(0, 3000, n)
    t = np.arange(n) / rate
    on = (np.sin(2 * np.pi * 0.5 * t + seed) + 1) / 2 < duty
    x = np.where(on, x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)), rng.normal(0, 30, n))
    pcm = np.clip(x, -32767, 32767).astype("<i2").tobytes()
    fb = rate // 50 * 2
    return [pcm[i:i + fb] for i in range(0, len(pcm) - fb + 1, fb)]


def run(rate: int, calls: int, seconds: float, both_talk: bool) -> float:
    caller = _talk(rate, seconds, 1, 1.0 if both_talk else 0.5)
    agent = _talk(rate, seconds, 2, 1.0 if both_talk else 0.4)
    if not both_talk:  # the agent's pauses are digital silence (nothing played)
        agent = [f if any(f[:8]) else None for f in agent]  # type: ignore[misc]
    best = float("inf")
    for _ in range(5):
        watches = [CallWatch(f"c{i}", rate, NoObserver(), lambda: None) for i in range(calls)]
        start = time.process_time()
        for c, a in zip(caller, agent, strict=True):
            for w in watches:
                w.caller_frame(c)
                w.agent_frame(a)
                w.tick()
        best = min(best, time.process_time() - start)
    return best / (len(caller) * calls * 2) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    print(f"{args.calls} calls x {args.seconds:g} s of media, best of 5 (process CPU time)")
    print(f"{'agent rate':>10}  {'turns (µs/leg/tick)':>20}  {'both talking':>13}")
    for rate in (8000, 16000, 24000):
        turns = run(rate, args.calls, args.seconds, False)
        both = run(rate, args.calls, args.seconds, True)
        print(f"{rate:>10}  {turns:>20.2f}  {both:>13.2f}")


if __name__ == "__main__":
    main()
