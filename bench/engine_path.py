"""The engine's per-frame media path, without sockets: µs of CPU per call per 20 ms.

Run: ``PYTHONPATH=src .venv/bin/python bench/engine_path.py [--calls 50] [--seconds 10]``.

``--calls`` answered two-party calls on a hand-moved clock (the engine's real
``Engine``, ``Call``, legs, playout, media plane and quality watch; phone legs and
agent links that discard what they are given). Each 20 ms the way the gateway's
adapters do it: every phone sends one frame (``Engine.leg_audio``), every agent
sends one frame while it has credit (``Engine.agent_audio``), and the media clock's
four 5 ms sub-ticks run (``Engine.handle_timer``). The audio is speech-like noise in
turns (each party silent about half the time, the agent's pauses digital silence).

Prints the best of ``--repeat`` runs, in process CPU time, for the uplink alone
(phone frames in), the agent's audio in, the media ticks (playout, downlink, the
quality watch), and their sum, with the quality watch on and off; same-rate PCM16
phone and agent by default (``--phone-rate`` / ``--codec`` for others). Malloc is
tuned as in the gateway's process (``server/heap.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from telcoflow.engine import ConnectorSpec, Engine, EngineSettings  # noqa: E402
from telcoflow.engine.ports import AgentCommand  # noqa: E402
from telcoflow.server.heap import keep_freed_heap  # noqa: E402
from telcoflow.testing.fakes import (  # noqa: E402
    FakeAgentLink,
    FakeClock,
    FakeLeg,
    FakeSessionLink,
)

NUMBER = "+15550100"


def _talk(rate: int, seconds: float, seed: int, duty: float) -> list[bytes]:
    """20 ms PCM16 frames: ~1 s noise bursts shaped like speech, silent ``1 - duty``
    of the time (near-silent noise in the pauses)."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    on = (np.sin(2 * np.pi * 0.5 * t + seed) + 1) / 2 < duty
    x = np.where(on, rng.normal(0, 3000, n) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)),
                 rng.normal(0, 30, n))
    pcm = np.clip(x, -32767, 32767).astype("<i2").tobytes()
    fb = rate // 50 * 2
    return [pcm[i:i + fb] for i in range(0, len(pcm) - fb + 1, fb)]


def _calls(engine: Engine, calls: int, codec: str, phone_rate: int, agent_rate: int
           ) -> list[tuple[FakeLeg, FakeAgentLink]]:
    link = FakeSessionLink("conn-1", agent_rate)
    engine.link_up(link)
    out = []
    for i in range(calls):
        leg = FakeLeg(codec, phone_rate, keep_audio=False)
        call_id = engine.inbound_call(leg, NUMBER, f"+1555{i:07d}")
        assert call_id is not None
        session = engine.calls[call_id].session
        engine.open_session(link, session.id)
        engine.session_ready(link, session.id)
        agent = FakeAgentLink(keep_audio=False)
        engine.agent_attach(call_id, agent)
        engine.command(agent, AgentCommand(f"a{i}", "call.answer", 10.0, 0.0, ""))
        out.append((leg, agent))
    return out


def run(args: argparse.Namespace, watch: bool) -> tuple[float, float, float]:
    """CPU seconds spent in (uplink, agent audio in, media ticks) over one run."""
    clock = FakeClock()
    settings = EngineSettings(connectors=[ConnectorSpec("conn-1", (NUMBER,), 10_000)],
                              quality_watch=watch)
    engine = Engine(settings, clock)
    engine.set_waker(lambda: None)
    pairs = _calls(engine, args.calls, args.codec, args.phone_rate, args.agent_rate)
    phone = _talk(args.phone_rate, args.seconds, 1, 0.5)
    if args.codec != "pcm16":
        from telcoflow.audio.codec import encode
        phone = [encode(args.codec, f) for f in phone]
    agent_fb = args.agent_rate // 50 * 2
    agent = [f if any(f[:8]) else bytes(agent_fb)
             for f in _talk(args.agent_rate, args.seconds, 2, 0.4)]
    uplink = agent_in = ticks = 0.0
    cpu = time.process_time
    leg_audio, agent_audio, handle_timer = engine.leg_audio, engine.agent_audio, engine.handle_timer
    for p, a in zip(phone, agent, strict=True):
        t0 = cpu()
        for leg, _ in pairs:
            leg_audio(leg, p)
        t1 = cpu()
        for _, link in pairs:
            if link.credit >= agent_fb:
                agent_audio(link, a)
                link.credit -= agent_fb
        t2 = cpu()
        for _ in range(4):
            clock.t += 0.005
            handle_timer(clock.t)
        t3 = cpu()
        uplink += t1 - t0
        agent_in += t2 - t1
        ticks += t3 - t2
    return uplink, agent_in, ticks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--codec", default="pcm16")
    ap.add_argument("--phone-rate", type=int, default=16000)
    ap.add_argument("--agent-rate", type=int, default=16000)
    ap.add_argument("--watch", choices=("on", "off", "both"), default="both")
    args = ap.parse_args()
    keep_freed_heap()  # as the gateway's process does (server/heap.py)
    per = args.calls * args.seconds * 50 / 1e6  # call-ticks, in millions: µs per call-tick
    print(f"{args.calls} calls x {args.seconds:g} s, {args.codec} {args.phone_rate} Hz phone, "
          f"agent {args.agent_rate} Hz; best of {args.repeat} (process CPU), "
          "µs per call per 20 ms")
    print(f"{'watch':>5}  {'uplink':>7}  {'agent in':>8}  {'ticks':>7}  {'total':>7}")
    for watch in ((True, False) if args.watch == "both" else (args.watch == "on",)):
        best = min((run(args, watch) for _ in range(args.repeat)), key=sum)
        up, ag, tk = (x / per for x in best)
        print(f"{'on' if watch else 'off':>5}  {up:>7.2f}  {ag:>8.2f}  {tk:>7.2f}  "
              f"{up + ag + tk:>7.2f}")


if __name__ == "__main__":
    main()
