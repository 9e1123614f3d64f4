"""``telcoflow demo``: gateway + agent + simulated call + recording + report.

Everything is local and embedded: a gateway on a free loopback port with
generated credentials, the Quick Start echo agent (our SDK) in its own
process, a caller speaking a synthesized phrase over μ-law at 8 kHz, a
stereo recording (caller left, what the caller hears right) and a report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio import synth
from ..audio.align import best_lag
from ..audio.wav import write_wav
from ..testing import GatewayThread, Phone

PHRASE = "Hello, this is the Telcoflow demo calling. Can you hear me clearly?"
RATE = 8000
FRAME = RATE // 50


def step(n: int, text: str) -> None:
    print(f"[{n}/5] {text}", flush=True)


def caller_voice() -> tuple[npt.NDArray[np.int16], str]:
    if synth.tts_available():
        return synth.tts(PHRASE, rate=RATE), f'eSpeak NG: "{PHRASE}"'
    return synth.to_int16(synth.speech_like(3.0, RATE)), "synthetic voiced speech (no eSpeak NG)"


def start_agent(gw: GatewayThread, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, WSS_API_KEY=gw.api_key, WSS_CONNECTOR_UUID=gw.connector_uuid,
               TELCOFLOW_BASE_URL=gw.ws_url)
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    return subprocess.Popen([sys.executable, "-u", "-m", "telcoflow.cli.demo_agent"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


async def wait_for_agent(gw: GatewayThread, proc: subprocess.Popen[bytes]) -> None:
    def connected() -> bool:
        return bool(gw.gateway.engine.session_links(gw.connector_uuid))
    while not gw.run(connected):
        if proc.poll() is not None:
            raise RuntimeError("the demo agent exited; see agent.log")
        await asyncio.sleep(0.05)  # polling a process we do not control


async def run_call(gw: GatewayThread, voice: npt.NDArray[np.int16]) -> dict[str, Any]:
    sent_at: dict[int, float] = {}
    async with Phone(gw.ws_url, gw.phone_key) as phone:
        t0 = time.perf_counter()
        call_id = await phone.dial(gw.number, "+15550001", "pcmu", RATE)
        await phone.wait_answered(timeout=20)
        setup_ms = (time.perf_counter() - t0) * 1000
        first = phone.frames_received
        tail = np.zeros(RATE, np.int16)  # a second for the echo to come home
        await phone.play(np.concatenate([voice, tail]),
                         on_frame_sent=lambda i, t: sent_at.__setitem__(i, t))
        heard = phone.received()[first * FRAME:]
        arrivals = phone.events.frame_arrivals[first:]
        await phone.hangup()
    return {"call_id": call_id, "setup_ms": setup_ms, "heard": heard, "arrivals": arrivals,
            "sent_at": sent_at, "frames_sent": len(sent_at)}


def analyse(voice: npt.NDArray[np.int16], call: dict[str, Any]) -> dict[str, Any]:
    heard: npt.NDArray[np.int16] = call["heard"]
    lag, _ = best_lag(heard, voice)
    lag_frames, offset = divmod(lag, FRAME)
    rtts = []
    intact = 0
    for i, sent in call["sent_at"].items():
        j = i + lag_frames + (1 if offset else 0)
        if i * FRAME >= len(voice) or j >= len(call["arrivals"]):
            continue
        seg_sent = voice[i * FRAME:(i + 1) * FRAME].astype(np.float64)
        seg_heard = heard[lag + i * FRAME: lag + (i + 1) * FRAME].astype(np.float64)
        if len(seg_heard) == FRAME and _similar(seg_sent, seg_heard):
            intact += 1
        rtts.append((call["arrivals"][j] - sent) * 1000)
    voiced = -(-len(voice) // FRAME)
    rtt = np.array(rtts) if rtts else np.zeros(1)
    # a frame's round trip: sent by the phone → the frame completing its echo arrives;
    # the path is symmetric (gateway → agent → gateway), so one way is half of it
    return {"echo_lag_ms": lag / RATE * 1000, "frames_echoed_intact": intact,
            "frames_lost": voiced - intact, "voiced_frames": voiced,
            "round_trip_p50_ms": float(np.percentile(rtt, 50)),
            "one_way_p50_ms": float(np.percentile(rtt, 50)) / 2,
            "one_way_p99_ms": float(np.percentile(rtt, 99)) / 2}


def _similar(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> bool:
    if np.sqrt(np.mean(a * a)) < 100:  # near-silence: μ-law noise decides correlation there
        return bool(np.sqrt(np.mean(b * b)) < 200)
    corr = np.dot(a, b) / (np.sqrt(np.dot(a, a) * np.dot(b, b)) or 1.0)
    return bool(corr > 0.9)


def write_outputs(out: Path, voice: npt.NDArray[np.int16], call: dict[str, Any],
                  report: dict[str, Any]) -> None:
    heard: npt.NDArray[np.int16] = call["heard"]
    n = max(len(heard), len(voice))
    stereo = np.zeros((n, 2), np.int16)
    stereo[:len(voice), 0] = voice
    stereo[:len(heard), 1] = heard
    write_wav(out / "call.wav", stereo, RATE)
    (out / "report.json").write_text(json.dumps(report, indent=2))


def main(out_dir: str) -> int:
    logging.getLogger("telcoflow").setLevel(logging.WARNING)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_main(out))


async def _main(out: Path) -> int:
    step(1, "starting a gateway on embedded defaults (loopback, generated keys)")
    with GatewayThread() as gw:
        print(f"      gateway at {gw.ws_url}; number {gw.number} routes to the demo connector")
        step(2, "starting the Quick Start echo agent (our SDK) in its own process")
        agent = start_agent(gw, out / "agent.log")
        try:
            await wait_for_agent(gw, agent)
            voice, what = caller_voice()
            step(3, f"calling {gw.number} over PCMU/8 kHz; the caller says {what}")
            call = await run_call(gw, voice)
            step(4, "analysing the call and writing the recording")
            report = {"call_id": call["call_id"], "call_setup_ms": round(call["setup_ms"], 1),
                      "frames_sent": call["frames_sent"],
                      "frames_received": len(call["arrivals"]),
                      **{k: round(v, 1) if isinstance(v, float) else v
                         for k, v in analyse(voice, call).items()},
                      "recording": str(out / "call.wav"), "report": str(out / "report.json"),
                      "agent_log": str(out / "agent.log")}
            write_outputs(out, voice, call, report)
        finally:
            agent.terminate()
            agent.wait(10)
    step(5, "done")
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"      {key:<{width}}  {value}")
    return 0 if report["frames_lost"] == 0 else 1
