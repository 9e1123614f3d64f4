"""``telcoflow agent openai|gemini``: a complete phone agent on an AI model.

Every call the connector is offered is answered and bridged to the model
(:mod:`telcoflow.integrations`); when it ends, a report is written to
``--out``: how it ended, who spoke (transcripts), barge-ins, and for OpenAI
the per-turn latency and the audio generated, sent and heard.

Keys come from the environment, never the command line: ``WSS_API_KEY`` and
``WSS_CONNECTOR_UUID`` (or a development gateway's saved credentials), and
the model's own (``OPENAI_API_KEY``, ``GEMINI_API_KEY``). The vendors' SDKs
read their base-URL settings (``OPENAI_BASE_URL``, ``GOOGLE_GEMINI_BASE_URL``)
too, which is how the local fakes of ``telcoflow.testing`` stand in for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Literal

from ..sdk import Call, CallAudioConfig, SessionManager, SessionManagerConfig, SessionNotification
from ..server import credentials

logger = logging.getLogger(__name__)

BACKENDS = ("openai", "gemini")
TOOLS = ("transfer_to_human", "hang_up", "send_dtmf")
# the rate each model speaks: the agent's calls run there, so its audio is never resampled
RATES: dict[str, Literal[24000]] = {"openai": 24000, "gemini": 24000}


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
    agent.add_argument("--greeting", help="openai: speak first, with these instructions "
                       "(as on an outbound call)")
    agent.add_argument("--out", default="out/agent", help="directory for per-call reports")
    agent.add_argument("--url", help="gateway base URL (default: env, else dev credentials)")


def main(args: Any) -> int:
    tools = {t.strip() for t in args.tools.split(",") if t.strip()}
    unknown = tools - set(TOOLS)
    if unknown:
        print(f"unknown tools: {', '.join(sorted(unknown))} (known: {', '.join(TOOLS)})",
              file=sys.stderr)
        return 2
    saved = credentials.load()
    api_key = os.environ.get("WSS_API_KEY") or saved.get("api_key")
    connector = os.environ.get("WSS_CONNECTOR_UUID") or saved.get("connector_uuid")
    url = args.url or os.environ.get("TELCOFLOW_BASE_URL") or saved.get("base_url")
    if not api_key or not connector:
        print("set WSS_API_KEY and WSS_CONNECTOR_UUID (or start 'telcoflow serve' on "
              "embedded defaults first)", file=sys.stderr)
        return 2
    if args.greeting and args.backend != "openai":
        print("--greeting is for the openai backend", file=sys.stderr)
        return 2
    needed = {"openai": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY"}[args.backend]
    if not os.environ.get(needed):
        print(f"set {needed}: the {args.backend} model's key", file=sys.stderr)
        return 2
    config = SessionManagerConfig.create(
        api_key=api_key, connector_uuid=connector, base_url=url or "ws://localhost:8080",
        call_audio=CallAudioConfig(sample_rate=RATES[args.backend]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(_serve(config, args, tools, out))
    except KeyboardInterrupt:
        pass
    return 0


async def _serve(config: SessionManagerConfig, args: Any, tools: set[str], out: Path) -> None:
    async with SessionManager(config) as sm:
        logger.info("agent (%s) connected; waiting for calls", args.backend)

        @sm.on_session_notification
        async def offered(notification: SessionNotification) -> None:
            session = await sm.open_session(notification.session_id)

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                await answer_with_model(call, args, tools, out)

            await session.ready()

        await sm.run_forever()


async def answer_with_model(call: Call, args: Any, tools: set[str], out: Path) -> Path:
    """Answer ``call``, bridge it to the model until it ends, write its report."""
    transcript: list[dict[str, Any]] = []
    started = time.time()

    def heard(role: str, text: str) -> None:
        transcript.append({"at_s": round(time.time() - started, 3), "role": role, "text": text})

    options: dict[str, Any] = {"instructions": args.instructions, "voice": args.voice,
                               "tools": tools, "on_transcript": heard}
    if args.model:
        options["model"] = args.model
    if args.backend == "openai":
        from ..integrations.openai_realtime import OpenAIRealtimeBridge
        bridge: Any = OpenAIRealtimeBridge(call, greeting=args.greeting, **options)
    else:
        from ..integrations.gemini_live import GeminiLiveBridge
        bridge = GeminiLiveBridge(call, **options)
    await call.answer()
    await bridge.run()
    report = {"call_id": call.id, "caller": call.caller_number, "callee": call.callee_number,
              "backend": args.backend, "duration_s": round(time.time() - started, 3),
              "ended_by": getattr(bridge, "end_reason", None) or getattr(bridge, "ended_by", None),
              "played_ms": call.played_ms, "transcript": transcript, **_stats(bridge)}
    path = out / f"call-{call.id}.json"
    path.write_text(json.dumps(report, indent=1))
    logger.info("call %s ended (%s); report in %s", call.id, report["ended_by"], path)
    return path


def _stats(bridge: Any) -> dict[str, Any]:
    stats = getattr(bridge, "stats", None)
    if stats is not None and is_dataclass(stats) and not isinstance(stats, type):
        return {"stats": asdict(stats)}
    return {"interruptions": getattr(bridge, "interruptions", None)}
