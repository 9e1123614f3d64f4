"""WebSocket PCM16 vs WebRTC (aiortc) for the browser softphone: the transport's own delay.

Run: ``PYTHONPATH=src .venv/bin/python bench/softphone_transport.py [--bursts 8]``
(needs Debian's ``chromium``, ``playwright`` (dev extra) and ``aiortc``, which the
project does not depend on: ``pip install aiortc`` for this bench only).

The same page, fed the same tone bursts by Chromium's fake microphone, talks to an
echo on loopback two ways; no gateway and no agent, only the transport:

* **ws-pcm**: the console's worklets (``audio-worklet.js``): capture → PCM16 at 16 kHz
  in 20 ms frames → WebSocket → a Python echo (``websockets``) → WebSocket → the
  playback worklet's jitter buffer (40 ms target) → output;
* **webrtc**: the microphone track → RTCPeerConnection (Opus, 20 ms) → aiortc, which
  sends the received track back → Chrome's jitter buffer (NetEq) → the remote track
  into the same AudioContext.

Each delay is a burst's onset at the microphone (in a worklet, on the AudioContext's
clock) to its echo's onset in the page's audio graph, on the same clock. Also timed:
how long each takes from "call" to the first echoed sound (set-up). Prints JSON (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from telcoflow.audio.wav import write_wav  # noqa: E402

PAGE = """<!doctype html><html><body><script>
"use strict";
const out = window.result = { latenciesMs: [], setupMs: null, error: null };
let lastMouth = null, t0 = 0, ctx = null;
function mouth(m) { if (m.type === "onset") lastMouth = m.frame; }
function ear(m) {
  if (m.type !== "onset" || lastMouth === null) return;
  if (out.setupMs === null) out.setupMs = performance.now() - t0;
  const d = (m.frame - lastMouth) / ctx.sampleRate;
  if (d > 0 && d < 2) out.latenciesMs.push(d * 1000);
  lastMouth = null;
}
async function audio(worklet) {
  ctx = new AudioContext({ latencyHint: "interactive" });
  const url = URL.createObjectURL(new Blob([worklet], { type: "text/javascript" }));
  await ctx.audioWorklet.addModule(url);
  const stream = await navigator.mediaDevices.getUserMedia({ audio: {
    echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  const capture = new AudioWorkletNode(ctx, "telcoflow-capture",
    { processorOptions: { rate: 16000 } });
  const sink = ctx.createGain(); sink.gain.value = 0;
  ctx.createMediaStreamSource(stream).connect(capture).connect(sink).connect(ctx.destination);
  capture.port.onmessage = (e) => mouth(e.data);
  await ctx.resume();
  return { stream, capture, sink };
}
window.wsPcm = async (worklet, url) => {
  t0 = performance.now();
  const { capture } = await audio(worklet);
  const playback = new AudioWorkletNode(ctx, "telcoflow-playback",
    { numberOfInputs: 0, outputChannelCount: [1], processorOptions: { rate: 16000 } });
  playback.connect(ctx.destination);
  playback.port.onmessage = (e) => ear(e.data);
  const ws = new WebSocket(url); ws.binaryType = "arraybuffer";
  await new Promise((ok) => { ws.onopen = ok; });
  ws.onmessage = (e) => playback.port.postMessage(e.data, [e.data]);
  capture.port.onmessage = (e) => {
    mouth(e.data);
    if (e.data.type === "frame") ws.send(e.data.pcm);
  };
};
window.webrtc = async (worklet) => {
  t0 = performance.now();
  const { stream, sink } = await audio(worklet);
  const pc = new RTCPeerConnection();
  stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  pc.ontrack = (e) => {
    const remote = new MediaStream([e.track]);
    const el = new Audio(); el.muted = true; el.srcObject = remote; el.play();  // Chrome
    const tap = new AudioWorkletNode(ctx, "telcoflow-capture",
      { processorOptions: { rate: 16000 } });
    ctx.createMediaStreamSource(remote).connect(tap).connect(sink);
    tap.port.onmessage = (m) => ear(m.data);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => {
    if (pc.iceGatheringState === "complete") ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok();
  });
  const answer = await window.signal(pc.localDescription.sdp);
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
};
</script></body></html>"""


def bursts(rate: int, periods: int, period_s: float = 1.007) -> np.ndarray:
    t = np.arange(int(rate * 0.15)) / rate
    period = np.zeros(int(rate * period_s))
    period[:len(t)] = 0.25 * np.sin(2 * np.pi * 1000 * t)
    return (np.tile(period, periods) * 32767).astype(np.int16)


class Echoes:
    """A WebSocket echo and an aiortc echo, on a loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.peers: list[Any] = []

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    async def ws_echo(self) -> int:
        from websockets.asyncio.server import serve

        async def echo(ws: Any) -> None:
            async for message in ws:
                await ws.send(message)
        self.server = await serve(echo, "127.0.0.1", 0, compression=None)
        return int(self.server.sockets[0].getsockname()[1])

    async def answer(self, offer: str) -> str:
        from aiortc import RTCPeerConnection, RTCSessionDescription
        pc = RTCPeerConnection()
        self.peers.append(pc)

        @pc.on("track")
        def on_track(track: Any) -> None:
            pc.addTrack(track)  # what it hears, sent straight back
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)


def measure(echoes: Echoes, wav: Path, worklet: str, transport: str, wanted: int
            ) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}"])
        page = chromium.new_page()
        page.set_default_timeout(wanted * 1500 + 20_000)
        page.expose_function("signal", lambda sdp: echoes.run(echoes.answer(sdp)))
        page.goto(f"http://127.0.0.1:{echoes.http_port}/")
        if transport == "ws-pcm":
            page.evaluate("([w, u]) => window.wsPcm(w, u)",
                          [worklet, f"ws://127.0.0.1:{echoes.ws_port}/"])
        else:
            page.evaluate("(w) => window.webrtc(w)", worklet)
        page.wait_for_function(f"() => window.result.latenciesMs.length >= {wanted}")
        result: dict[str, Any] = page.evaluate("window.result")
        chromium.close()
    return result


async def http_page(port_box: list[int]) -> None:
    """The page from a loopback origin (a secure context, as the console's is)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = PAGE.encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: %d\r\n"
                     b"connection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_box.append(server.sockets[0].getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bursts", type=int, default=8)
    args = parser.parse_args()
    worklet = resources.files("telcoflow.server.console").joinpath(
        "static/audio-worklet.js").read_text()
    echoes = Echoes()
    echoes.ws_port = echoes.run(echoes.ws_echo())
    box: list[int] = []
    echoes.run(http_page(box))
    echoes.http_port = box[0]
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "bursts.wav"
        write_wav(wav, bursts(48000, 8), 48000)
        for transport in ("ws-pcm", "webrtc"):
            result = measure(echoes, wav, worklet, transport, args.bursts)
            report[transport] = {"median_ms": statistics.median(result["latenciesMs"]),
                                 "all_ms": [round(x, 1) for x in result["latenciesMs"]],
                                 "first_echo_after_ms": result["setupMs"]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
