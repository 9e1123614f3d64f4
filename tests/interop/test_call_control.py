"""connect / whisper / barge / spy with real sockets, on both SDKs: exactly who hears whom.

Three parties, three tones: the caller (µ-law 8 kHz) plays 500 Hz, the callee
(the number's subscriber line, PCM16 16 kHz) 1300 Hz, the agent 2100 Hz. Each
listener's audio is checked for every tone.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from telcoflow.testing import GatewayThread, Phone

from .agent_process import AgentProcess
from .conference import AMPLITUDE, FREQS, agent_command, who_is_heard
from .signals import tone

AGENT_RATE = 16000
BOTH = {"caller", "agent"}

# what each human hears once the mode is set (nobody ever hears themselves)
EXPECT = {
    "default": {"caller": {"callee", "agent"}, "callee": BOTH},
    "barge": {"caller": {"callee", "agent"}, "callee": BOTH},
    "whisper": {"caller": {"callee"}, "callee": BOTH},
    "spy": {"caller": {"callee"}, "callee": {"caller"}},
}


async def three_way(gw: GatewayThread, agent: AgentProcess, rec_dir: Path,
                    channels: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Run the call: returns what the caller, callee and each agent channel heard."""
    async with Phone(gw.ws_url, gw.phone_key) as line, Phone(gw.ws_url, gw.phone_key) as caller:
        await line.register(gw.number, codec="pcm16", sample_rate=16000, answer_after=0.1)
        await asyncio.to_thread(agent.wait_for, "MARK connected_sm")
        await caller.dial(to=gw.number, caller="+15550001", codec="pcmu", sample_rate=8000)
        await caller.wait_answered(timeout=15)
        await asyncio.to_thread(agent.wait_for, "MARK ready")
        c0, l0 = caller.frames_received, line.frames_received
        await asyncio.gather(
            caller.play(tone(FREQS["caller"], 1.2, 8000, AMPLITUDE)),
            line.play(tone(FREQS["callee"], 1.2, 16000, AMPLITUDE)))
        agent.say("stop")
        await asyncio.to_thread(agent.wait_for, "MARK recorded")
        heard = {"caller": caller.received()[c0 * 160:], "callee": line.received()[l0 * 320:]}
        agent.say("end")
        await asyncio.to_thread(agent.wait_for, "MARK disconnected True")
        assert await caller.wait_hangup() == "AGENT_HANGUP"
        assert await line.wait_hangup() == "AGENT_HANGUP"
    for ch in channels:
        heard[f"ch{ch}"] = np.fromfile(rec_dir / f"ch{ch}.pcm", "<i2")
    return heard


@pytest.mark.asyncio
@pytest.mark.parametrize(("sdk", "mode", "audio_mode"), [
    ("ours", "default", "mixed"), ("ours", "whisper", "isolated"),
    ("ours", "barge", "mixed"), ("ours", "spy", "isolated"),
    ("published", "default", "isolated"), ("published", "whisper", "mixed"),
    ("published", "barge", "isolated"), ("published", "spy", "mixed"),
])
async def test_each_mode_routes_exactly_who_hears_whom(
        gateway: GatewayThread, refsdk_path: Path, tmp_path: Path,
        sdk: str, mode: str, audio_mode: str) -> None:
    tone_file = tmp_path / "agent.pcm"
    tone_file.write_bytes(tone(FREQS["agent"], 3.0, AGENT_RATE, AMPLITUDE).tobytes())
    cmd, env = agent_command(sdk, refsdk_path, gateway, "conference_agent.py", mode,
                             AGENT_RATE=str(AGENT_RATE), AUDIO_MODE=audio_mode,
                             TONE_FILE=str(tone_file), REC_DIR=str(tmp_path))
    channels = (0, 1, 2) if audio_mode == "isolated" else (0,)
    with AgentProcess(cmd, env) as agent:
        heard = await three_way(gateway, agent, tmp_path, channels)
        assert agent.marks("connected") == [["True", "None"]]
        if mode != "default":
            assert agent.marks("mode") == [[mode, "True", "None"]]
    rates = {"caller": 8000, "callee": 16000}
    for listener, expected in EXPECT[mode].items():
        assert who_is_heard(heard[listener], rates[listener]) == expected, listener
    # the agent hears both humans in every mode, and never itself
    assert who_is_heard(heard["ch0"], AGENT_RATE) == {"caller", "callee"}
    if audio_mode == "isolated":
        assert who_is_heard(heard["ch1"], AGENT_RATE) == {"caller"}
        assert who_is_heard(heard["ch2"], AGENT_RATE) == {"callee"}
        # channel 0 is the sample-aligned sum of channels 1 and 2
        n = min(len(heard["ch0"]), len(heard["ch1"]), len(heard["ch2"]))
        total = heard["ch1"][:n].astype(np.int32) + heard["ch2"][:n]
        assert np.array_equal(heard["ch0"][:n], np.clip(total, -32768, 32767))
