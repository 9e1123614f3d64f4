"""The agent-plane adapters on their own: voice and session-manager frames, no sockets."""

from __future__ import annotations

import json

from telcoflow.server.auth import Authenticator
from telcoflow.server.config import embedded_defaults
from telcoflow.server.sm_ws import SmLink
from telcoflow.server.voice_ws import COMMANDS_PER_SECOND, VoiceConn

from ..engine.harness import CONNECTOR, Harness
from ..fakews import FakeWsConnection


def command(name: str, n: int) -> str:
    return json.dumps({"type": "command", "data": {"command_id": f"c{n}", "command": name}})


def voice_on_a_call() -> tuple[Harness, VoiceConn, FakeWsConnection]:
    h = Harness()
    link = h.link()
    _, call_id = h.dial()
    assert call_id is not None
    session = h.engine.calls[call_id].session
    h.engine.open_session(link, session.id)
    h.engine.session_ready(link, session.id)
    voice, ws = VoiceConn(h.engine, call_id, clock=h.clock.now), FakeWsConnection()
    voice.on_open(ws)  # type: ignore[arg-type]
    return h, voice, ws


def test_commands_are_answered_once_each_through_the_engine() -> None:
    h, voice, ws = voice_on_a_call()
    voice.on_text(command("call.answer", 1))
    voice.on_text(command("agent.spy", 2))
    answers = ws.of("command_response")
    assert [(a["data"]["command_id"], a["data"]["success"]) for a in answers] == [
        ("c1", True), ("c2", False)]
    assert answers[1]["data"]["error_code"] == "NOT_CONNECTED"


def test_a_command_flood_closes_the_voice_connection() -> None:
    h, voice, ws = voice_on_a_call()
    for n in range(2 * COMMANDS_PER_SECOND):
        voice.on_text(command("agent.interrupt", n))
    assert ws.closed is None
    voice.on_text(command("agent.interrupt", 999))
    assert ws.closed is not None and ws.closed[0] == 1008
    h.clock.advance(10)  # a well-behaved rate is fine
    voice2_h, voice2, ws2 = voice_on_a_call()
    for n in range(COMMANDS_PER_SECOND * 3):
        voice2_h.clock.advance(1 / COMMANDS_PER_SECOND)
        voice2.on_text(command("agent.interrupt", n))
    assert ws2.closed is None


def test_bad_agent_audio_gets_a_specific_error_and_the_call_goes_on() -> None:
    h, voice, ws = voice_on_a_call()
    voice.on_binary(b"\x00\x00\x00\x00")        # half a sample
    voice.on_binary(b"\x01" + bytes(640))       # not channel 0
    voice.on_binary(b"\x00" + bytes(640))       # before call.answer
    codes = [e["data"]["error_code"] for e in ws.of("error")]
    assert codes == ["INVALID_AUDIO", "INVALID_AUDIO", "AUDIO_BEFORE_ANSWER"]
    assert ws.closed is None


def test_the_session_manager_plane_limits_frames_and_needs_setup_first() -> None:
    h = Harness()
    config = embedded_defaults(port=0)
    config.connectors[0].uuid = CONNECTOR
    link = SmLink(h.engine, config.connectors[0], Authenticator(config), "ws://x",
                  clock=h.clock.now)
    ws = FakeWsConnection()
    link.on_open(ws)  # type: ignore[arg-type]
    link.on_text(json.dumps({"type": "session.open", "reqId": "r1", "sessionId": "s"}))
    assert ws.texts[-1]["errorCode"] == "INVALID_REQUEST" and "setup" in ws.texts[-1]["message"]
    for _ in range(399):  # with the first frame, the burst of 400
        link.on_text(json.dumps({"type": "setup", "data": {"sampleRate": 16000}}))
    assert ws.closed is None
    link.on_text("{}")
    assert ws.closed is not None and ws.closed[0] == 1008
