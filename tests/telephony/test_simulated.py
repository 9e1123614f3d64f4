"""The simulated phone adapter on its own: frames in, engine calls out, no sockets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from telcoflow.engine.ports import Channel
from telcoflow.telephony.simulated import PhoneConn, SimulatedNetwork

from ..engine.harness import NUMBER, Harness
from ..fakews import FakeWsConnection


class Net:
    def __init__(self) -> None:
        self.h = Harness()
        self.h.engine.diallers.clear()
        self.network = SimulatedNetwork(self.h.engine)
        self.h.engine.add_dialler(self.network)

    def phone(self) -> tuple[PhoneConn, FakeWsConnection]:
        conn, ws = PhoneConn(self.network, clock=self.h.clock.now), FakeWsConnection()
        conn.on_open(ws)  # type: ignore[arg-type]
        return conn, ws


def send(conn: PhoneConn, **frame: object) -> None:
    conn.on_text(json.dumps(frame))


def dialled(net: Net, codec: str = "pcm16", rate: int = 8000) -> tuple[PhoneConn,
                                                                       FakeWsConnection, str]:
    conn, ws = net.phone()
    send(conn, type="dial", to=NUMBER, codec=codec, sampleRate=rate)
    return conn, ws, ws.of("ringing")[0]["callId"]


def test_a_dial_rings_and_the_engine_answer_is_told_to_the_phone() -> None:
    net = Net()
    link = net.h.link()
    conn, ws, call_id = dialled(net)
    agent = net.h.claim(link, call_id)
    net.h.command(agent, "call.answer")
    assert [t["type"] for t in ws.texts] == ["ringing", "answered"]
    net.h.run(0.1)
    assert len(ws.binaries) == 5 and ws.binaries[0] == bytes(320)  # silence, encoded


def test_audio_beyond_the_flood_limit_is_dropped_and_counted() -> None:
    net = Net()
    link = net.h.link()
    conn, ws, call_id = dialled(net)
    agent = net.h.claim(link, call_id)
    net.h.command(agent, "call.answer")
    frame = np.full(160, 99, "<i2").tobytes()  # 20 ms at 8 kHz
    for _ in range(200):                        # 4 s of audio at once
        conn.on_binary(frame)
    assert conn.audio_dropped == 150 * len(frame)     # 1 s burst allowed, the rest dropped
    assert len(agent.audio[Channel.MIXED]) == 50
    net.h.clock.advance(0.2)                          # refills at 1.5x real time
    for _ in range(100):
        conn.on_binary(frame)
    assert len(agent.audio[Channel.MIXED]) == 65


@pytest.mark.parametrize(("frames", "code", "words"), [
    ([{"type": "answer"}], "INVALID_STATE", "registered subscriber line"),
    ([{"type": "dial", "to": NUMBER}, {"type": "dial", "to": NUMBER}], "INVALID_STATE",
     "already dialled"),
    ([{"type": "register", "number": "+1"}, {"type": "dial", "to": NUMBER}], "INVALID_STATE",
     "registered already"),
    ([{"type": "register", "number": "+1"}, {"type": "answer"}], "INVALID_STATE",
     "no call ringing"),
    ([{"type": "wave"}], "UNKNOWN_TYPE", "wave"),
])
def test_frames_out_of_place_get_a_specific_error(frames: list[dict[str, object]], code: str,
                                                  words: str) -> None:
    net = Net()
    conn, ws = net.phone()
    for frame in frames:
        conn.on_text(json.dumps(frame))
    error = ws.of("error")[-1]
    assert error["code"] == code and words in error["message"]


def test_audio_before_dialling_is_refused() -> None:
    net = Net()
    conn, ws = net.phone()
    conn.on_binary(b"\0\0")
    assert ws.of("error")[0]["message"] == "dial before sending audio"


def test_a_number_has_one_line_and_a_connect_rings_it() -> None:
    net = Net()
    line, line_ws = net.phone()
    send(line, type="register", number=NUMBER, codec="pcmu", sampleRate=8000)
    other, other_ws = net.phone()
    send(other, type="register", number=NUMBER)
    assert other_ws.of("error")[0]["code"] == "NUMBER_IN_USE"
    _, _, agent, call = net.h.answered_call()
    net.h.command(agent, "call.connect", timeout_s=60)
    incoming = line_ws.of("incoming")[0]
    assert incoming["callId"] == call.id and incoming["ringTimeoutMs"] == 59750
    send(line, type="answer")
    assert line_ws.of("answered")[0]["callId"] == call.id
    assert agent.answer_of("cmd-2")[2]["callee"] == NUMBER
    line.on_close(1000, "")  # the line goes away: back to a two-party call
    assert call.bridge is None and call.live and NUMBER not in net.network.lines


def test_a_line_rejecting_or_hanging_up_while_ringing_fails_the_connect() -> None:
    net = Net()
    line, line_ws = net.phone()
    send(line, type="register", number=NUMBER)
    _, _, agent, call = net.h.answered_call()
    net.h.command(agent, "call.connect")
    send(line, type="reject")
    assert agent.answer_of("cmd-2")[2] == "CALL_REJECTED"
    assert line_ws.of("hangup")[-1]["reason"] == "DECLINED" and line.leg is None
    net.h.command(agent, "call.connect")
    send(line, type="hangup")
    assert agent.answer_of("cmd-3")[2] == "CALL_REJECTED"
