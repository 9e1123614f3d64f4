"""Conference mixer cost per call per 20 ms tick, at 10, 100 and 1,000 three-party calls.

Run: ``.venv/bin/python bench/mixer.py [--calls 10 100 1000] [--rate 16000] [--ticks 200]``

Three figures per size, all on the gateway's real objects (``Call``,
``Bridge``, ``ConferenceTicker``) with network links that discard what they
are given, so only the media work is timed:

- ``mix``: the batched mix alone (``BatchMixer.mix``: route, sum, saturate);
- ``tick``: the whole conference tick — each leg's phone frame decoded and
  resampled in, the agent's playout frame, the batched mix, each leg's
  resampling and encoding out (the caller is µ-law 8 kHz, the callee A-law
  8 kHz, the agent PCM16 at ``--rate``) — with sends to discarding links;
- ``per-call ref``: the same mix done one call at a time with
  :func:`telcoflow.audio.pcm.mix` (the unbatched way), for the ratio;
- ``tick same-rate``: the whole tick again with every leg PCM16 at the agent
  rate (no resampling, no G.711), to show what the conversions cost.

Also printed: the share of one core the tick would take at that many calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
# as `telcoflow serve` does: BLAS threads would fight the event loop for the cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from telcoflow.audio import g711  # noqa: E402
from telcoflow.audio.mixer import CALLEE, BatchMixer, routes_for  # noqa: E402
from telcoflow.audio.pcm import mix  # noqa: E402
from telcoflow.engine.bridge import Bridge  # noqa: E402
from telcoflow.engine.call_states import CallState  # noqa: E402
from telcoflow.engine.calls import Call  # noqa: E402
from telcoflow.engine.conference import ConferenceTicker  # noqa: E402
from telcoflow.engine.sessions import Session  # noqa: E402
from telcoflow.testing.fakes import FakeAgentLink, FakeLeg  # noqa: E402


def make_calls(n: int, rate: int, same_rate: bool) -> list[Call]:
    calls = []
    caller_fmt = ("pcm16", rate) if same_rate else ("pcmu", 8000)
    callee_fmt = ("pcm16", rate) if same_rate else ("pcma", 8000)
    for i in range(n):
        call = Call(Session("c", "TELCO", f"+1{i}", "+15550100", 0),
                    FakeLeg(*caller_fmt, keep_audio=False), f"+1{i}", "+15550100",
                    agent_rate=rate, state=CallState.ANSWERED)
        call.start_media(120, 40)
        call.agent = FakeAgentLink(keep_audio=False)
        call.bridge = Bridge(call.caller_leg, FakeLeg(*callee_fmt, keep_audio=False))
        call.bridge.set_agent_routes(False, True)  # whisper
        calls.append(call)
    return calls


def pcm_tone(freq: float, rate: int) -> bytes:
    t = np.arange(rate // 50) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def bench_tick(n: int, rate: int, ticks: int, same_rate: bool = False) -> float:
    calls = make_calls(n, rate, same_rate)
    if same_rate:
        caller_frame, callee_frame = pcm_tone(500, rate), pcm_tone(1300, rate)
    else:
        caller_frame = g711.ulaw_encode(np.frombuffer(pcm_tone(500, 8000), "<i2"))
        callee_frame = g711.alaw_encode(np.frombuffer(pcm_tone(1300, 8000), "<i2"))
    agent_frame = bytes(rate // 50 * 2)
    ticker = ConferenceTicker(rate)
    elapsed = 0.0
    for _ in range(ticks):
        started = time.perf_counter()
        for call in calls:
            call.on_caller_audio(caller_frame)
            assert call.bridge is not None
            call.bridge.push(CALLEE, callee_frame)
            call.on_agent_audio(agent_frame)
        ticker.tick(calls)
        elapsed += time.perf_counter() - started
    return elapsed / ticks / n


def bench_mix(n: int, rate: int, ticks: int) -> tuple[float, float]:
    s = rate // 50
    mixer = BatchMixer(s)
    rng = np.random.default_rng(1)
    frames, routes = mixer.inputs(n)
    frames[...] = rng.integers(-20000, 20000, frames.shape)
    routes[...] = routes_for(False, True)
    started = time.perf_counter()
    for _ in range(ticks):
        mixer.mix(n)
    batched = (time.perf_counter() - started) / ticks / n
    data = frames.copy()
    started = time.perf_counter()
    for _ in range(max(1, ticks // 4)):
        for i in range(n):
            caller, callee, agent = data[i]
            mix(callee)
            mix(caller, agent)
            mix(caller, callee)
    reference = (time.perf_counter() - started) / max(1, ticks // 4) / n
    return batched, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--rate", type=int, default=16000, choices=(8000, 16000, 24000))
    parser.add_argument("--ticks", type=int, default=200)
    args = parser.parse_args()
    print(f"three-party calls, agent PCM16 {args.rate} Hz, caller PCMU 8 kHz, callee PCMA "
          f"8 kHz; µs per call per 20 ms tick")
    print(f"{'calls':>6} {'mix':>8} {'per-call ref':>13} {'ratio':>6} {'tick':>8} "
          f"{'core':>7} {'tick same-rate':>15} {'core':>7}")
    for n in args.calls:
        ticks = max(20, args.ticks * 10 // max(10, n))
        batched, reference = bench_mix(n, args.rate, ticks)
        tick = bench_tick(n, args.rate, ticks)
        same = bench_tick(n, args.rate, ticks, same_rate=True)
        print(f"{n:>6} {batched * 1e6:>8.2f} {reference * 1e6:>13.2f} "
              f"{batched / reference:>6.2f} {tick * 1e6:>8.1f} {tick * n / 0.020:>7.0%} "
              f"{same * 1e6:>15.1f} {same * n / 0.020:>7.0%}")


if __name__ == "__main__":
    main()
