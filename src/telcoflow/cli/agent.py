"""``telcoflow agent openai|gemini|adk``: a complete phone agent on an AI model.

Every call the connector is offered is answered and bridged to the model
(:mod:`telcoflow.integrations`); when it ends, a report is written to
``--out``: how it ended, who spoke (transcripts), barge-ins, the audio the
model generated, the agent sent and the caller heard, and for OpenAI the
per-turn latency, and the audio quality of both sides (seed 004's monitor:
SNR, clipping, score); beside it the call's recording (stereo WAV: the caller
left, the agent right, cut where the caller barged in), unless ``--no-record``.

Keys come from the environment, never the command line: ``WSS_API_KEY`` and
``WSS_CONNECTOR_UUID`` (or a development gateway's saved credentials), and
the model's own (``OPENAI_API_KEY``, ``GEMINI_API_KEY``; ADK also takes
``GOOGLE_API_KEY`` or Vertex AI's settings). The vendors' SDKs
read their base-URL settings (``OPENAI_BASE_URL``, ``GOOGLE_GEMINI_BASE_URL``)
too, which is how the local fakes of ``telcoflow.testing`` stand in for them.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import os
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Literal

from ..integrations.recording import CallTap
from ..sdk import Call, CallAudioConfig, SessionManager, SessionManagerConfig, SessionNotification
from ..server import credentials

logger = logging.getLogger(__name__)

BACKENDS = ("openai", "gemini", "adk")
TOOLS = ("transfer_to_human", "hang_up", "send_dtmf")
# the rate each model speaks: the agent's calls run there, so its audio is never resampled
RATES: dict[str, Literal[24000]] = {"openai": 24000, "gemini": 24000, "adk": 24000}
PACKAGES = {"openai": ("openai", "openai"), "gemini": ("google.genai", "gemini"),
            "adk": ("google.adk", "adk")}


def add_parser(sub: Any) -> None:
    agent = sub.add_parser("agent", help="answer calls with an AI model (OpenAI Realtime or "
                           "Gemini Live)")
    agent.add_argument("backend", choices=BACKENDS)
    agent.add_argument("--instructions", default="You are a helpful assistant on a phone "
                       "call. Be brief.", help="the model's system instructions")
    agent.add_argument("--voice", help="the model's voice (the vendor's names)")
    agent.add_argument("--model", help="the model (default: the bridge's)")
    agent.add_argument("--tools", default="", help="comma-separated tools the model may call: "
                       + ", ".join(TOOLS))
    agent.add_argument("--greeting", help="speak first, prompted by this (as on an outbound "
                       "call)")
    agent.add_argument("--out", default="out/agent", help="directory for per-call reports "
                       "and recordings")
    agent.add_argument("--no-record", dest="record", action="store_false",
                       help="no per-call recording")
    agent.add_argument("--model-timeout", type=float, default=15.0, metavar="S",
                       help="end a call whose model sends nothing S seconds after the caller "
                       "stopped speaking (default 15; 0: never)")
    agent.add_argument("--url", help="gateway base URL (default: env, else dev credentials)")


def main(args: Any) -> int:
    tools = {t.strip() for t in args.tools.split(",") if t.strip()}
    unknown = tools - set(TOOLS)
    if unknown:
        print(f"unknown tools: {', '.join(sorted(unknown))} (known: {', '.join(TOOLS)})",
              file=sys.stderr)
        return 2
    url = args.url or os.environ.get("TELCOFLOW_BASE_URL")
    try:
        saved = credentials.load(url)
    except credentials.CredentialsError as exc:
        print(exc, file=sys.stderr)
        return 2
    api_key = os.environ.get("WSS_API_KEY") or saved.get("api_key")
    connector = os.environ.get("WSS_CONNECTOR_UUID") or saved.get("connector_uuid")
    url = url or saved.get("base_url")
    if not api_key or not connector:
        print("set WSS_API_KEY and WSS_CONNECTOR_UUID (or start 'telcoflow serve' on "
              "embedded defaults first)", file=sys.stderr)
        return 2
    problem = _backend_problem(args.backend)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    config = SessionManagerConfig.create(
        api_key=api_key, connector_uuid=connector, base_url=url or "ws://localhost:8080",
        call_audio=CallAudioConfig(sample_rate=RATES[args.backend]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bridge_class(args.backend)
    # each call's report holds its quality alerts; a log line per alert per chunk would
    # drown the agent's log
    logging.getLogger("telcoflow.audio.quality").setLevel(logging.ERROR)
    try:
        asyncio.run(_serve(config, args, tools, out))
    except KeyboardInterrupt:
        pass
    return 0


def _backend_problem(backend: str) -> str | None:
    """Why ``backend`` cannot run here (its package or key missing), or None."""
    module, extra = PACKAGES[backend]
    if importlib.util.find_spec(module.split(".")[0]) is None or \
            importlib.util.find_spec(module) is None:
        return (f"the {backend} backend needs the {extra!r} extra: "
                f"pip install 'telcoflow[{extra}]'")
    if backend == "openai" and not os.environ.get("OPENAI_API_KEY"):
        return "set OPENAI_API_KEY: the openai model's key"
    if backend == "gemini" and not os.environ.get("GEMINI_API_KEY"):
        return "set GEMINI_API_KEY: the gemini model's key"
    if backend == "adk":
        from ..integrations.adk import KEY_VARIABLES, _has_credentials
        if not _has_credentials():
            return (f"set {' or '.join(KEY_VARIABLES)} (or GOOGLE_GENAI_USE_VERTEXAI): "
                    "the adk agent's Gemini key")
    return None


def _shared_client(backend: str) -> Any:
    """One vendor client for every call: making one (an httpx client and its TLS
    context) takes 50-100 ms, which each caller would otherwise wait before the
    answer. ADK makes its own, per agent."""
    if backend == "openai":
        from openai import AsyncOpenAI
        return AsyncOpenAI()
    if backend == "gemini":
        from google import genai
        return genai.Client(api_key=os.environ["GEMINI_API_KEY"])
    return None


async def _serve(config: SessionManagerConfig, args: Any, tools: set[str], out: Path) -> None:
    client = _shared_client(args.backend)
    async with SessionManager(config) as sm:
        logger.info("agent (%s) connected; waiting for calls", args.backend)

        @sm.on_session_notification
        async def offered(notification: SessionNotification) -> None:
            session = await sm.open_session(notification.session_id)

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                await answer_with_model(call, args, tools, out, client)

            await session.ready()

        await sm.run_forever()


async def answer_with_model(call: Call, args: Any, tools: set[str], out: Path,
                            client: Any = None) -> Path:
    """Answer ``call``, bridge it to the model until it ends, write its report."""
    transcript: list[dict[str, Any]] = []
    started = time.time()

    def heard(role: str, text: str) -> None:
        transcript.append({"at_s": round(time.time() - started, 3), "role": role, "text": text})

    options: dict[str, Any] = {"instructions": args.instructions, "voice": args.voice,
                               "tools": tools, "on_transcript": heard, "greeting": args.greeting,
                               "model_timeout_s": args.model_timeout or None}
    if args.model:
        options["model"] = args.model
    if client is not None:
        options["client"] = client
    tap = CallTap(call, record_to=out / f"call-{call.id}.wav" if args.record else None)
    bridge = bridge_class(args.backend)(tap.as_call(), **options)
    await call.answer()
    try:
        await bridge.run()
    finally:
        recording = tap.stop()
    report = {"call_id": call.id, "caller": call.caller_number, "callee": call.callee_number,
              "backend": args.backend, "duration_s": round(time.time() - started, 3),
              "ended_by": getattr(bridge, "end_reason", None) or getattr(bridge, "ended_by", None),
              "played_ms": call.played_ms, "transcript": transcript,
              "recording": str(recording) if recording else None, "quality": tap.quality(),
              **_stats(bridge)}
    path = out / f"call-{call.id}.json"
    path.write_text(json.dumps(report, indent=1))
    logger.info("call %s ended (%s); report in %s", call.id, report["ended_by"], path)
    return path


def bridge_class(backend: str) -> Any:
    """The backend's bridge, its vendor's SDK imported: done once, before the first call,
    because importing ``openai`` or ``google.adk`` takes about a second and would hold
    the first caller's answer that long."""
    importlib.import_module(PACKAGES[backend][0])
    if backend == "openai":
        from ..integrations.openai_realtime import OpenAIRealtimeBridge
        return OpenAIRealtimeBridge
    if backend == "gemini":
        from ..integrations.gemini_live import GeminiLiveBridge
        return GeminiLiveBridge
    from ..integrations.adk import AdkBridge
    return AdkBridge


def _stats(bridge: Any) -> dict[str, Any]:
    stats = getattr(bridge, "stats", None)
    if stats is not None and is_dataclass(stats) and not isinstance(stats, type):
        return {"stats": asdict(stats)}
    return {"stats": {"interruptions": getattr(bridge, "interruptions", None),
                      "tool_calls": getattr(bridge, "tool_calls", None),
                      "rejected_chunks": getattr(bridge, "rejected_chunks", 0)}}
