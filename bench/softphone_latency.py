"""The console softphone's mouth-to-ear delay, and how much of it the browser adds.

Run: ``PYTHONPATH=src .venv/bin/python bench/softphone_latency.py [--bursts 8]``
(needs Debian's ``chromium`` and the ``playwright`` package of the dev extra).

A gateway on loopback and an echo agent (our SDK, 16 kHz) answer two callers in turn,
each sending a 1 kHz tone burst (150 ms) once a second:

* a Python phone (``telcoflow.testing.Phone``, PCM16 at 16 kHz): from the moment the
  frame holding a burst's onset is sent to the moment its echo's onset arrives (the
  arrival of the frame holding it, plus the onset's place in that frame). This is the
  gateway and agent's part: WebSocket both ways, media clock, agent round trip;
* the console's softphone in headless Chromium, fed the same bursts by the fake
  microphone: from the onset's sample entering the capture worklet to the echo's onset
  sample leaving the playback worklet (both on the AudioContext's clock), i.e. what
  the page adds on top: capture framing, main-thread hops, the jitter buffer, the
  resamplers. The context's reported output latency is printed beside it.

Prints one JSON object: medians and every measurement, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from telcoflow.audio.wav import write_wav  # noqa: E402
from telcoflow.server.config import embedded_defaults  # noqa: E402
from telcoflow.testing import GatewayThread, Phone  # noqa: E402
from telcoflow.testing.echo import echo_agent  # noqa: E402

RATE = 16000
FRAME = RATE // 50
BURST_S, PERIOD_S = 0.15, 1.0
THRESHOLD = 0.02 * 32768  # the worklets' onset threshold, in PCM16 units


def bursts(rate: int, periods: int, period_s: float = PERIOD_S) -> np.ndarray:
    t = np.arange(int(rate * BURST_S)) / rate
    period = np.zeros(int(rate * period_s))
    period[:len(t)] = 0.25 * np.sin(2 * np.pi * 1000 * t)
    return (np.tile(period, periods) * 32767).astype(np.int16)


async def python_phone(gw: GatewayThread, periods: int) -> list[float]:
    sent_at: dict[int, float] = {}
    async with Phone(gw.ws_url, gw.phone_key) as phone:
        await phone.dial(gw.number, "+15550001", "pcm16", RATE)
        await phone.wait_answered(10)
        first = phone.frames_received
        await phone.play(np.concatenate([bursts(RATE, periods), np.zeros(RATE, np.int16)]),
                         on_frame_sent=lambda i, t: sent_at.__setitem__(i, t))
        heard = phone.received()[first * FRAME:]
        arrivals = phone.events.frame_arrivals[first:]
        await phone.hangup()
    loud = np.flatnonzero(np.abs(heard.astype(np.int32)) >= THRESHOLD)
    onsets = loud[np.diff(loud, prepend=-RATE) >= int(0.15 * RATE)]  # after 150 ms quiet
    starts = [sent_at[k] for k in sorted(sent_at) if k % int(PERIOD_S * 50) == 0]
    delays = []
    for onset in onsets:
        if onset // FRAME < len(arrivals):
            at = arrivals[onset // FRAME] + (onset % FRAME) / RATE
            delays.append((at - max(t for t in starts if t < at)) * 1000)
    return delays


def browser(gw: GatewayThread, wav: Path, bursts_wanted: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}"])
        page = chromium.new_page(base_url=gw.http_url)
        page.set_default_timeout(bursts_wanted * PERIOD_S * 1000 + 20_000)
        page.goto("/")
        page.fill("#key", gw.api_key)
        page.click("button[type=submit]")
        page.wait_for_function("() => document.getElementById('who').textContent")
        page.goto("/#phone")
        page.check("#phone-raw")
        page.click("#phone-call")
        page.wait_for_function(f"() => window.softphone.latenciesMs.length >= {bursts_wanted}")
        state: dict[str, Any] = page.evaluate("window.softphone")
        page.click("#phone-hangup")
        chromium.close()
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bursts", type=int, default=8)
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(120)

    config = embedded_defaults(port=0)
    config.hold_sound = "silence"
    with GatewayThread(config) as gw, tempfile.TemporaryDirectory() as tmp:
        ready, stop = run(_events())
        agent = asyncio.run_coroutine_threadsafe(
            echo_agent(gw.ws_url, gw.api_key, gw.connector_uuid, RATE, ready, stop), loop)
        run(asyncio.wait_for(ready.wait(), 10))
        phone = run(python_phone(gw, args.bursts))
        wav = Path(tmp) / "bursts.wav"
        # 1.007 s apart: each burst's onset falls at another place in the 20 ms frames
        write_wav(wav, bursts(48000, 8, 1.007), 48000)
        started = time.perf_counter()
        page = browser(gw, wav, args.bursts)
        loop.call_soon_threadsafe(stop.set)
        agent.result(10)
    page_ms = page["latenciesMs"]
    print(json.dumps({
        "python_phone_echo_ms": {"median": statistics.median(phone), "all": phone},
        "browser_worklet_to_worklet_ms": {"median": statistics.median(page_ms), "all": page_ms},
        "browser_reported_output_latency_ms": page["outputLatencyMs"],
        "browser_added_ms": statistics.median(page_ms) - statistics.median(phone),
        "playback_underruns": page["underruns"], "browser_run_s": time.perf_counter() - started,
    }, indent=2))


async def _events() -> tuple[asyncio.Event, asyncio.Event]:
    return asyncio.Event(), asyncio.Event()


if __name__ == "__main__":
    main()
