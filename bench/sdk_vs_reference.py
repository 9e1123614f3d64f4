"""CPU cost of our SDK vs the published telcoflow 1.0.0 SDK, serving echo calls.

One gateway (in this process), the same Quick Start echo agent run twice in a
child process (once on our SDK, once on the published one installed in an
isolated directory), N simulated callers talking for D seconds each. The
agent process's CPU time over the talking window, per call-minute, is the
figure; the ratio is ours / published (target: <= 0.5).

    .venv/bin/python bench/sdk_vs_reference.py --calls 20 --seconds 20 --rounds 3

This machine is shared, and another process's load changes an agent's CPU per
frame (cache, wake-ups) by tens of percent, so one run of each can be unlucky
for either side. ``--rounds R`` measures R pairs, alternating which SDK goes
first (ours-published, published-ours, ...), and reports the median of the
per-round ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from telcoflow.loadgen.procs import cpu_times
from telcoflow.testing import GatewayThread, Phone

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.refsdk import REFSDK_DIR, ensure_refsdk  # noqa: E402

RATE = 16000

AGENT = '''
import asyncio, logging, os, sys
from telcoflow import (SessionManager, SessionManagerConfig, SessionNotification, Call,
                       CallAudioConfig)

logging.basicConfig(level=logging.WARNING)


async def main():
    config = SessionManagerConfig.create(
        api_key=os.getenv("WSS_API_KEY"), connector_uuid=os.getenv("WSS_CONNECTOR_UUID"),
        base_url=os.getenv("TELCOFLOW_BASE_URL"),
        call_audio=CallAudioConfig(sample_rate=int(os.getenv("AGENT_RATE"))))
    async with SessionManager(config) as sm:
        @sm.on_session_notification
        async def handle_session(noti: SessionNotification):
            session = await sm.open_session(noti.session_id)

            @session.on_incoming_call
            async def on_call(call: Call):
                if not await call.answer():
                    return
                async for audio_chunk in call.audio_stream():
                    await call.send_audio(audio_chunk)
                await call.close()

            await session.ready()

        print("READY", flush=True)
        await sm.run_forever()


if os.getenv("AGENT_UVLOOP"):
    import uvloop
    uvloop.install()
asyncio.run(main())
'''


def _uvloop_dir(wanted: bool) -> list[str]:
    if not wanted:
        return []
    import uvloop
    return [str(Path(uvloop.__file__).resolve().parent.parent)]


def start_agent(which: str, gw: GatewayThread, script: Path,
                uvloop: bool) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "WSS_"))}
    env.update(WSS_API_KEY=gw.api_key, WSS_CONNECTOR_UUID=gw.connector_uuid,
               TELCOFLOW_BASE_URL=gw.ws_url, AGENT_RATE=str(RATE))
    if uvloop:
        env["AGENT_UVLOOP"] = "1"
    if which == "published":
        # -S keeps our (editable) package out; uvloop comes from our site-packages, after
        # the published SDK's own directory so its pinned dependencies win.
        env["PYTHONPATH"] = os.pathsep.join([str(ensure_refsdk(REFSDK_DIR)), *_uvloop_dir(uvloop)])
        cmd = [sys.executable, "-S", "-u", str(script)]  # -S: our package is not importable
    else:
        cmd = [sys.executable, "-u", str(script)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        if line.startswith("READY"):
            break
        seen.append(line)
    else:
        raise RuntimeError(f"{which} agent did not start:\n" + "".join(seen[-20:]))
    threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
    return proc


async def run_calls(gw: GatewayThread, calls: int, seconds: float,
                    pid: int) -> tuple[float, float, int]:
    rng = np.random.default_rng(1)
    signal = rng.integers(-8000, 8000, int(seconds * RATE)).astype(np.int16)
    phones = [Phone(gw.ws_url, gw.phone_key) for _ in range(calls)]
    for phone in phones:
        await phone.__aenter__()
    try:
        await asyncio.gather(*(p.dial(to=gw.number, caller=f"+1555000{i:04d}", codec="pcm16",
                                      sample_rate=RATE) for i, p in enumerate(phones)))
        await asyncio.gather(*(p.wait_answered(timeout=30) for p in phones))
        user0, sys0 = cpu_times(pid)
        await asyncio.gather(*(p.play(signal) for p in phones))
        user1, sys1 = cpu_times(pid)
        heard = sum(int(np.count_nonzero(p.received())) for p in phones)
        await asyncio.gather(*(p.hangup() for p in phones))
    finally:
        for phone in phones:
            await phone.__aexit__(None, None, None)
    return user1 - user0, sys1 - sys0, heard


def measure(which: str, gw: GatewayThread, script: Path, calls: int, seconds: float,
            uvloop: bool = False) -> float:
    proc = start_agent(which, gw, script, uvloop)
    try:
        user, system, heard = asyncio.run(run_calls(gw, calls, seconds, proc.pid))
    finally:
        proc.terminate()
        proc.wait(10)
    used = user + system
    per_minute = used / (calls * seconds / 60.0)
    echoed = heard / (calls * seconds * RATE)
    print(f"{which:>9}: {used:6.2f} CPU s ({user:.2f} user + {system:.2f} sys) for {calls} calls "
          f"x {seconds:.0f} s = {per_minute:.3f} CPU s per call-minute "
          f"(echoed {echoed:.0%} of the audio)", flush=True)
    return per_minute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=1,
                        help="pairs of runs, alternating which SDK goes first (median ratio)")
    parser.add_argument("--uvloop", action="store_true",
                        help="run both agents on uvloop instead of the stdlib event loop")
    args = parser.parse_args()
    ratios = []
    with tempfile.TemporaryDirectory() as tmp, GatewayThread(ring_timeout_s=30.0) as gw:
        script = Path(tmp) / "echo_agent.py"
        script.write_text(AGENT)
        for round_no in range(args.rounds):
            order = ("ours", "published") if round_no % 2 == 0 else ("published", "ours")
            cost = {which: measure(which, gw, script, args.calls, args.seconds, args.uvloop)
                    for which in order}
            ratios.append(cost["ours"] / cost["published"])
            print(f"    ratio: ours / published = {ratios[-1]:.2f} (target <= 0.50)", flush=True)
    if len(ratios) > 1:
        print(f"   median: ours / published = {statistics.median(ratios):.2f} over {len(ratios)} "
              f"rounds ({', '.join(f'{r:.2f}' for r in ratios)}; "
              f"{'uvloop' if args.uvloop else 'asyncio'} loop)")


if __name__ == "__main__":
    main()
