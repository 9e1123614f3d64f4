"""`telcoflow agent openai` as a user runs it: against a gateway and, through the openai
SDK's own base-URL setting, the local Realtime fake; a caller talks to it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from telcoflow.audio.synth import speech_like, to_int16
from telcoflow.testing import GatewayThread, Phone
from telcoflow.testing.openai_fake import FakeRealtimeServer, FakeScript

from ..interop.agent_process import AgentProcess
from ..interop.signals import noise, voiced_frames

RATE = 16000


def read_report(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


@pytest.mark.asyncio
async def test_the_openai_agent_answers_a_call_and_writes_its_report(tmp_path: Path) -> None:
    script = FakeScript(reply_audio=to_int16(speech_like(0.6, 24000, seed=2)),
                        reply_transcript="Hello from the fake.")
    with GatewayThread() as gw:
        async with FakeRealtimeServer(script) as server:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("WSS_", "OPENAI"))}
            env.update(WSS_API_KEY=gw.api_key, WSS_CONNECTOR_UUID=gw.connector_uuid,
                       TELCOFLOW_BASE_URL=gw.ws_url, OPENAI_API_KEY="sk-test-not-a-key",
                       OPENAI_BASE_URL=server.base_url,
                       TELCOFLOW_CREDENTIALS=str(tmp_path / "none.json"))
            cmd = [sys.executable, "-m", "telcoflow.cli.main", "agent", "openai",
                   "--instructions", "Be brief.", "--out", str(tmp_path / "reports")]
            with AgentProcess(cmd, env) as agent:
                await asyncio.to_thread(agent.wait_for, "waiting for calls")
                async with Phone(gw.ws_url, gw.phone_key) as phone:
                    await phone.dial(gw.number, "+15550001", "pcm16", RATE)
                    await phone.wait_answered()
                    await phone.play(np.concatenate([noise(0.5, RATE), np.zeros(RATE, np.int16)]))
                    while len(voiced_frames(phone.received(), RATE // 50)) < RATE * 6 // 10:
                        await phone.wait_frames(phone.frames_received + 1)  # the whole reply
                    await phone.hangup()
                line = await asyncio.to_thread(agent.wait_for, "report in")
                output = agent.output
    report = read_report(line.rsplit("report in ", 1)[1].strip())
    assert report["backend"] == "openai" and report["ended_by"] == "call_ended"
    assert report["stats"]["latencies_ms"] and report["stats"]["sent_ms"] >= 550
    assert ("assistant", "Hello from the fake.") in [(t["role"], t["text"])
                                                     for t in report["transcript"]]
    assert "sk-test-not-a-key" not in output and gw.api_key not in output
    assert report["quality"]["agent"]["duration_seconds"] > 0.5
    size = await asyncio.to_thread(os.path.getsize, report["recording"])
    assert size > 44  # a WAV header and audio


def test_the_adk_backend_without_google_adk_says_which_extra(tmp_path: Path) -> None:
    """The test venv has no google-adk (it lives in its own directory: tests/adkenv.py)."""
    import subprocess
    env = {**os.environ, "WSS_API_KEY": "k", "WSS_CONNECTOR_UUID": "c",
           "GEMINI_API_KEY": "g", "TELCOFLOW_CREDENTIALS": str(tmp_path / "none.json")}
    run = subprocess.run([sys.executable, "-m", "telcoflow.cli.main", "agent", "adk"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "pip install 'telcoflow[adk]'" in run.stderr and "Traceback" not in run.stderr


def test_a_missing_model_key_is_named(tmp_path: Path) -> None:
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "GEMINI"))}
    env.update(WSS_API_KEY="k", WSS_CONNECTOR_UUID="c",
               TELCOFLOW_CREDENTIALS=str(tmp_path / "none.json"))
    for backend, variable in (("openai", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")):
        run = subprocess.run([sys.executable, "-m", "telcoflow.cli.main", "agent", backend],
                             env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and variable in run.stderr, run.stderr
