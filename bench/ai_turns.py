"""Per-turn latency of an AI phone agent: gateway + SDK time against model time.

    .venv/bin/python bench/ai_turns.py                       # 50 turns, OpenAI then Gemini
    .venv/bin/python bench/ai_turns.py --backend openai --turns 20 --json out.json

Setup, per backend, all on loopback in one run:

- the gateway: ``telcoflow serve`` in a subprocess (one for the whole run, so
  its CPU is its own and is reported per turn);
- the model: the local fake (``FakeRealtimeServer`` / ``FakeLiveServer``), with
  a scripted ``reply_delay_ms`` (``--reply-delay``, default 200) and its server
  VAD ending the turn after 500 ms of input silence (both fakes' default);
- the agent: our SDK in this process, answering the call and running
  ``OpenAIRealtimeBridge`` / ``GeminiLiveBridge`` at ``--agent-rate`` (8000 Hz:
  OpenAI then gets μ-law both ways, Gemini 16 kHz in and 24 kHz out);
- the caller: ``telcoflow.testing.Phone`` dialing with PCMU at 8000 Hz, in this
  process. One call per backend; its ``--turns`` turns are sequential on that
  call: 0.6 s of loud noise (above both fakes' speech thresholds) then
  ``--silence`` seconds (default 1.4) of silence, long enough for the 0.3 s
  reply to be heard in full before the next turn (a turn that the next one
  interrupted would show up as a bridge interruption; the count is printed).

Caller, agent and fake share one asyncio loop and one clock
(``time.perf_counter``, CLOCK_MONOTONIC); only the gateway is another process.
The moments of turn k:

- ``t0``: the caller sent its last speech frame (``Phone.play``'s callback);
- ``t_in``: the fake received the last model-input message (``append`` /
  ``realtimeInput``) holding voiced audio (a 10 ms frame with RMS at or above
  ``THRESHOLD``, also the fakes' speech threshold) before ``t_vad``;
- ``t_agent_in``: the last chunk with voiced audio that ``call.audio_stream()``
  gave the bridge before ``t_in`` (same 10 ms RMS test, at the agent's rate);
- ``t_vad``: the fake ended the user's turn (OpenAI: sent
  ``input_audio_buffer.speech_stopped``; Gemini: its ``speech_ended`` event);
- ``t_reply``: the fake sent its first audio chunk of the reply;
- ``t_agent``: the bridge handed the first reply audio to ``call.send_audio``;
- ``t_heard``: the first non-silent frame of the reply reached the caller.

Figures (milliseconds):

- ``end_to_end`` = t_heard − t0: what the caller waits;
- ``model`` = t_reply − t_in: the time spent inside the fake — its VAD's
  silence wait (500 ms of input audio, arriving in real time), its scripted
  ``reply_delay_ms`` and its own processing;
- ``gateway_sdk`` = end_to_end − model = (t_in − t0) + (t_heard − t_reply):
  everything that is not the model, **the target: p99 ≤ 40 ms**. It splits
  into ``uplink`` = t_in − t0 (caller → gateway → SDK → bridge resampling →
  model socket), itself ``caller_to_agent`` = t_agent_in − t0 (gateway + SDK)
  and ``agent_to_model`` = t_in − t_agent_in (the bridge: resampling, encoding,
  the model socket), and ``downlink`` = t_heard − t_reply (model socket → bridge →
  SDK → gateway playout → caller), the latter as ``model_to_agent`` =
  t_agent − t_reply and ``agent_to_caller`` = t_heard − t_agent;
- also ``vad_wait`` = t_vad − t_in and ``reply_wait`` = t_reply − t_vad
  (≈ reply_delay_ms), the two parts of ``model``.

Limits: the fake, the bridge, the SDK and the caller share one event loop, so
their work delays one another and counts in the shares it lands in (the
fake's own work lands in ``model``); the caller hears in 20 ms frames, so
t_heard can lag by up to a frame of the gateway's playout clock; the uplink
includes the bridge's resampler delay (1.5 ms; ``THRESHOLD`` says why its
ringing in the next chunk is not counted as speech); with 50 turns p99 is
close to the maximum.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from telcoflow import Call, CallAudioConfig, SessionManager, SessionManagerConfig
from telcoflow.audio.codec import decode
from telcoflow.loadgen.procs import Child, Credentials, cpu_seconds, machine, start_gateway
from telcoflow.loadgen.stats import summary
from telcoflow.testing import Phone

CALLER_RATE = 8000
FRAME_S = 0.02
SPEECH_S = 0.6
REPLY_S = 0.3
# A 10 ms frame is speech at RMS >= 3000 (PCM16 units), two thirds of the caller's
# (uniform noise of amplitude 8000: RMS 4620), for both fakes' VAD and the moments
# below. Lower, the bridge's resampler (1.5 ms of filter delay) would make the chunk
# after the last speech chunk count as speech by its ringing alone: the end of the
# turn, for the VAD and for ``t_in``, would move by a 20 ms chunk that holds no speech.
THRESHOLD = 3000.0
HEARD_RMS = 200.0          # a caller frame above this is reply audio, not silence
TARGET_P99_MS = 40.0
FIGURES = ("end_to_end", "model", "gateway_sdk", "uplink", "caller_to_agent", "agent_to_model",
           "downlink", "model_to_agent",
           "agent_to_caller", "vad_wait", "reply_wait")


class Stamped(list[Any]):
    """A list that remembers when each item was appended (perf_counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Any) -> None:
        self.times.append(time.perf_counter())
        super().append(item)


def noise(seconds: float, rate: int, seed: int, amplitude: int = 8000) -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    return rng.integers(-amplitude, amplitude, int(seconds * rate)).astype(np.int16)


def voiced(pcm16: bytes, rate: int) -> bool:
    """Any 10 ms frame at or above the fakes' speech threshold."""
    samples = np.frombuffer(pcm16[: len(pcm16) - len(pcm16) % 2], "<i2").astype(np.float64)
    frame = rate // 100
    whole = samples.size - samples.size % frame
    if whole == 0:
        return bool(samples.size and np.sqrt(np.mean(samples * samples)) >= THRESHOLD)
    rms = np.sqrt(np.mean(samples[:whole].reshape(-1, frame) ** 2, axis=1))
    return bool(rms.max() >= THRESHOLD)


# ── the two backends: the fake, the bridge, and how to read the fake's records ──
class Backend:
    name = ""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server: Any = None

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def bridge(self, call: Call) -> Any:
        raise NotImplementedError

    def stamp(self) -> None:
        self.server.received = Stamped()
        self.server.sent = Stamped()

    def input_voiced(self, msg: dict[str, Any]) -> bool:
        raise NotImplementedError

    def vad_end_times(self) -> list[float]:
        raise NotImplementedError

    def is_audio_out(self, msg: dict[str, Any]) -> bool:
        raise NotImplementedError

    def interruptions(self, bridge: Any) -> int:
        raise NotImplementedError


class OpenAI(Backend):
    name = "openai"

    async def start(self) -> None:
        from telcoflow.testing.openai_fake import FakeRealtimeServer, FakeScript
        reply = noise(REPLY_S, 24000, seed=5, amplitude=6000)
        self.server = await FakeRealtimeServer(FakeScript(
            reply_audio=reply, reply_delay_ms=self.args.reply_delay,
            energy_threshold=THRESHOLD)).start()
        self.stamp()

    async def stop(self) -> None:
        await self.server.close()

    def bridge(self, call: Call) -> Any:
        from openai import AsyncOpenAI

        from telcoflow.integrations.openai_realtime import OpenAIRealtimeBridge
        client = AsyncOpenAI(api_key="bench", websocket_base_url=self.server.websocket_base_url)
        return OpenAIRealtimeBridge(call, client=client)

    def input_voiced(self, msg: dict[str, Any]) -> bool:
        if msg.get("type") != "input_audio_buffer.append":
            return False
        data = base64.b64decode(msg.get("audio") or "")
        fmt = self.server.sessions[-1]["audio"]["input"]["format"]["type"]
        if fmt == "audio/pcmu":  # the bridge's G.711 passthrough (an 8 kHz call)
            return voiced(decode("pcmu", data), 8000)
        return voiced(data, 24000)

    def vad_end_times(self) -> list[float]:
        sent: Stamped = self.server.sent
        return [t for t, e in zip(sent.times, sent, strict=True)
                if e.get("type") == "input_audio_buffer.speech_stopped"]

    def is_audio_out(self, msg: dict[str, Any]) -> bool:
        return msg.get("type") == "response.output_audio.delta"

    def interruptions(self, bridge: Any) -> int:
        return int(bridge.stats.interruptions)


class Gemini(Backend):
    name = "gemini"

    async def start(self) -> None:
        from telcoflow.testing.gemini_fake import FakeLiveServer, LiveScript
        reply = noise(REPLY_S, 24000, seed=5, amplitude=6000)
        self.server = await FakeLiveServer(LiveScript(
            reply_audio=reply, reply_delay_ms=self.args.reply_delay,
            speech_threshold=THRESHOLD)).start()
        self.stamp()
        self.server.events = Stamped()

    async def stop(self) -> None:
        await self.server.stop()

    def bridge(self, call: Call) -> Any:
        from google import genai

        from telcoflow.integrations.gemini_live import GeminiLiveBridge
        client = genai.Client(api_key="bench", http_options=self.server.http_options())
        return GeminiLiveBridge(call, client=client)

    def input_voiced(self, msg: dict[str, Any]) -> bool:
        audio = (msg.get("realtimeInput") or {}).get("audio")
        if not isinstance(audio, dict):
            return False
        rate = int(str(audio.get("mimeType", "rate=16000")).rsplit("=", 1)[-1])
        from telcoflow.testing.gemini_fake import b64decode
        return voiced(b64decode(str(audio.get("data") or "")), rate)

    def vad_end_times(self) -> list[float]:
        events: Stamped = self.server.events
        return [t for t, e in zip(events.times, events, strict=True) if e == "speech_ended"]

    def is_audio_out(self, msg: dict[str, Any]) -> bool:
        return bool(((msg.get("serverContent") or {}).get("modelTurn") or {}).get("parts"))

    def interruptions(self, bridge: Any) -> int:
        return int(bridge.interruptions)


BACKENDS: dict[str, Callable[[argparse.Namespace], Backend]] = {"openai": OpenAI,
                                                                "gemini": Gemini}


def first_after(times: list[float], t: float) -> float | None:
    return next((x for x in times if x > t), None)


def last_before(times: list[float], t: float) -> float | None:
    return next((x for x in reversed(times) if x < t), None)


# ── one backend: one call, N turns ──────────────────────────────────────────
async def run_backend(backend: Backend, creds: Credentials, gateway: Child,
                      args: argparse.Namespace) -> dict[str, Any]:
    await backend.start()
    connector = creds.connectors[0]
    config = SessionManagerConfig.create(
        api_key=connector.api_key, connector_uuid=connector.uuid, base_url=creds.url,
        call_audio=CallAudioConfig(sample_rate=args.agent_rate))
    agent_sends: list[float] = []
    agent_voiced_in: list[float] = []
    started: asyncio.Future[tuple[Any, asyncio.Task[None]]] = (
        asyncio.get_running_loop().create_future())
    t0s: list[float] = []
    try:
        async with SessionManager(config) as sm, Phone(creds.url, creds.phone_key) as phone:

            @sm.on_session_notification
            async def offered(notification: Any) -> None:
                session = await sm.open_session(notification.session_id)

                @session.on_incoming_call
                async def on_call(call: Call) -> None:
                    assert await call.answer()
                    send = call.send_audio

                    async def timed_send(pcm: bytes) -> None:
                        agent_sends.append(time.perf_counter())
                        await send(pcm)

                    stream = call.audio_stream

                    async def timed_stream() -> AsyncIterator[bytes]:
                        async for chunk in stream():
                            if voiced(chunk, args.agent_rate):
                                agent_voiced_in.append(time.perf_counter())
                            yield chunk

                    call.send_audio = timed_send  # type: ignore[method-assign,assignment]
                    call.audio_stream = timed_stream  # type: ignore[method-assign,assignment]
                    bridge = backend.bridge(call)
                    started.set_result((bridge, asyncio.create_task(bridge.run())))

                await session.ready()

            await phone.dial(to=connector.number, caller="+15550001", codec="pcmu",
                             sample_rate=CALLER_RATE)
            bridge, run = await asyncio.wait_for(started, 15)
            await phone.wait_answered()
            await asyncio.sleep(0.5)  # the model session is set up
            speech_frames = round(SPEECH_S / FRAME_S)
            silence = np.zeros(round(args.silence * CALLER_RATE), np.int16)
            cpu_before = cpu_seconds(gateway.pid)
            for k in range(args.turns):
                turn = np.concatenate([noise(SPEECH_S, CALLER_RATE, seed=100 + k), silence])

                def sent(index: int, at: float) -> None:
                    if index == speech_frames - 1:
                        t0s.append(at)

                await phone.play(turn, on_frame_sent=sent)
            gateway_cpu_s = cpu_seconds(gateway.pid) - cpu_before
            interruptions = backend.interruptions(bridge)
            heard_at = [at for frame, at in zip(list(phone._frames),
                                                list(phone.events.frame_arrivals), strict=True)
                        if voiced_frame(frame)]
            await phone.hangup()
            try:
                await asyncio.wait_for(run, 10)
            except TimeoutError:
                run.cancel()
    finally:
        await backend.stop()
    return figures(backend, t0s, agent_voiced_in, agent_sends, heard_at, interruptions,
                   gateway_cpu_s)


def voiced_frame(payload: bytes) -> bool:
    pcm = np.frombuffer(decode("pcmu", payload), "<i2").astype(np.float64)
    return bool(pcm.size and np.sqrt(np.mean(pcm * pcm)) >= HEARD_RMS)


def figures(backend: Backend, t0s: list[float], agent_voiced_in: list[float],
            agent_sends: list[float], heard_at: list[float], interruptions: int,
            gateway_cpu_s: float) -> dict[str, Any]:
    received: Stamped = backend.server.received
    sent: Stamped = backend.server.sent
    voiced_in = [t for t, m in zip(received.times, received, strict=True)
                 if backend.input_voiced(m)]
    audio_out = [t for t, m in zip(sent.times, sent, strict=True) if backend.is_audio_out(m)]
    vad_ends = backend.vad_end_times()
    turns: list[dict[str, float]] = []
    missed = 0
    for k, t0 in enumerate(t0s):
        nxt = t0s[k + 1] if k + 1 < len(t0s) else float("inf")
        t_vad = first_after(vad_ends, t0)
        t_in = last_before(voiced_in, t_vad) if t_vad is not None else None
        t_agent_in = last_before(agent_voiced_in, t_in) if t_in is not None else None
        t_reply = first_after(audio_out, t_vad) if t_vad is not None else None
        t_agent = first_after(agent_sends, t_reply) if t_reply is not None else None
        t_heard = first_after(heard_at, t_agent) if t_agent is not None else None
        if None in (t_vad, t_in, t_agent_in, t_reply, t_agent, t_heard) or not (
                t_heard is not None and t_heard < nxt):
            missed += 1
            continue
        assert t_vad is not None and t_in is not None and t_reply is not None
        assert t_agent_in is not None
        assert t_agent is not None and t_heard is not None
        e2e, model = t_heard - t0, t_reply - t_in
        turns.append({k_: round(v * 1000, 3) for k_, v in {
            "end_to_end": e2e, "model": model, "gateway_sdk": e2e - model,
            "uplink": t_in - t0, "caller_to_agent": t_agent_in - t0,
            "agent_to_model": t_in - t_agent_in, "downlink": t_heard - t_reply,
            "model_to_agent": t_agent - t_reply, "agent_to_caller": t_heard - t_agent,
            "vad_wait": t_vad - t_in, "reply_wait": t_reply - t_vad}.items()})
    out: dict[str, Any] = {
        "turns_played": len(t0s), "turns_measured": len(turns), "turns_missed": missed,
        "bridge_interruptions": interruptions,
        "gateway_cpu_ms_per_turn": round(1000 * gateway_cpu_s / max(1, len(t0s)), 2),
        "summary": {name: summary([t[name] for t in turns]) for name in FIGURES},
        "per_turn": turns,
    }
    p99 = out["summary"]["gateway_sdk"]["p99"]
    out["target_gateway_sdk_p99_ms"] = TARGET_P99_MS
    out["target_met"] = p99 is not None and p99 <= TARGET_P99_MS
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    names = ["openai", "gemini"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ai-turns-") as tmp:
        gateway, creds = start_gateway(1, Path(tmp))
        try:
            for name in names:
                results[name] = await run_backend(BACKENDS[name](args), creds, gateway, args)
        finally:
            gateway.stop()
    return {"bench": "ai_turns", "turns": args.turns, "caller": "pcmu 8000 Hz",
            "agent_rate": args.agent_rate, "reply_delay_ms": args.reply_delay,
            "fake_vad_silence_ms": 500, "speech_s": SPEECH_S, "silence_s": args.silence,
            "reply_s": REPLY_S, "machine": machine(), "backends": results}


def report(out: dict[str, Any]) -> str:
    lines = [f"AI agent turns: {out['turns']} turns per backend, caller {out['caller']}, agent "
             f"{out['agent_rate']} Hz, fake reply_delay {out['reply_delay_ms']:g} ms + VAD "
             f"silence {out['fake_vad_silence_ms']} ms (milliseconds)"]
    header = f"{'backend':8} {'figure':16} {'p50':>9} {'p99':>9} {'max':>9}"
    lines.append(header)
    for name, res in out["backends"].items():
        for figure in FIGURES:
            s = res["summary"][figure]
            if s["n"] == 0:
                lines.append(f"{name:8} {figure:16} {'-':>9} {'-':>9} {'-':>9}")
                continue
            lines.append(f"{name:8} {figure:16} {s['p50']:9.1f} {s['p99']:9.1f} {s['max']:9.1f}")
        verdict = "met" if res["target_met"] else "NOT met"
        lines.append(f"{name:8} measured {res['turns_measured']}/{res['turns_played']} turns, "
                     f"{res['bridge_interruptions']} interruptions, gateway CPU "
                     f"{res['gateway_cpu_ms_per_turn']} ms/turn; gateway_sdk p99 ≤ "
                     f"{res['target_gateway_sdk_p99_ms']:g} ms: {verdict}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=["openai", "gemini", "both"], default="both")
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--reply-delay", type=float, default=200.0,
                        help="the fake's scripted delay before its reply (ms)")
    parser.add_argument("--silence", type=float, default=1.4,
                        help="silence after each 0.6 s utterance (s)")
    parser.add_argument("--agent-rate", type=int, default=8000,
                        help="the agent's call audio rate (Hz)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON here")
    args = parser.parse_args()
    out = asyncio.run(run(args))
    print(report(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0 if all(r["turns_measured"] for r in out["backends"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
