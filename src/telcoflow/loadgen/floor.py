"""The floor: what the gateway's socket pattern costs at minimum on this machine.

A gateway process (same config, same doors, same uvloop, same WebSocket framing code)
in which, once a call's agent sends its first audio frame, the call's two WebSockets
are spliced: from then on every frame is relayed as bytes and nothing else happens.

- caller → agent: each phone frame goes out at once as the gateway's uplink frame
  (channel byte + the same PCM16 bytes), and every third one is followed by the same
  ``buffer_request`` text frame the gateway sends (one per 60 ms quantum);
- agent → caller: each agent frame goes out at once without its channel byte;
- no engine, no playout, no resampler, no media tick for a spliced call; the call's
  set-up and hang-up still go through the gateway (they lie outside the talking window
  the bench measures CPU over).

So per call and second the floor reads and writes the same frames, of the same sizes,
on the same connections as the gateway: 50 + 50 binary frames in, 50 + 50 out, ~17
text frames out. The bench (``telcoflow bench --floor``) runs the same callers and the
same agent processes against it right after the gateway, in the same run, and prints
the gateway's CPU per call-minute as a ratio to the floor's.

Run it on its own with ``python bench/floor.py --config gateway.toml`` (it prints the
same ``gateway ready on URL`` line as ``telcoflow serve``). pcm16 phones only: the frames
are relayed unchanged, so the phone and agent formats must be the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from ..protocol import voice as vp
from ..server.netio import WsConnection
from ..server.voice_ws import VoiceConn
from .procs import Child, Credentials, env_without

CREDIT_EVERY = 3  # uplink frames per buffer_request: the gateway's 60 ms credit quantum
_UPLINK_CHANNEL = b"\x00"


class _PhoneSide:
    """The caller's connection once spliced: frames → the agent, as bytes."""

    __slots__ = ("on_text", "on_close", "on_open", "_agent", "_credit", "_n")

    def __init__(self, previous: Any, agent: WsConnection, credit: str) -> None:
        self.on_text, self.on_close, self.on_open = (previous.on_text, previous.on_close,
                                                     previous.on_open)
        self._agent, self._credit, self._n = agent, credit, 0

    def on_binary(self, data: bytes) -> None:
        self._agent.send_binary(_UPLINK_CHANNEL + data)
        self._n += 1
        if self._n == CREDIT_EVERY:
            self._n = 0
            self._agent.send_text(self._credit)


class _AgentSide:
    """The agent's voice connection once spliced: frames → the caller, as bytes."""

    __slots__ = ("on_text", "on_close", "on_open", "_phone")

    def __init__(self, previous: Any, phone: WsConnection) -> None:
        self.on_text, self.on_close, self.on_open = (previous.on_text, previous.on_close,
                                                     previous.on_open)
        self._phone = phone

    def on_binary(self, data: bytes) -> None:
        self._phone.send_binary(data[1:])


def _splice(voice: VoiceConn, first: bytes) -> bool:
    """Take ``voice``'s call out of the engine's media and relay its two sockets."""
    engine = voice.engine
    call = engine._agents.get(voice)  # the bench's own process: internals are fair game
    leg = getattr(call, "caller_leg", None) if call is not None else None
    phone = getattr(getattr(leg, "conn", None), "_conn", None)
    agent = voice._conn
    if call is None or phone is None or agent is None:
        return False
    engine.media.discard(call)
    credit = vp.build_buffer_request(CREDIT_EVERY * call.frame_bytes, call.frame_bytes, 0)
    phone_proto, agent_proto = phone._owner, agent._owner
    phone_proto._handler = _PhoneSide(phone_proto._handler, agent, credit)
    agent_side = _AgentSide(agent_proto._handler, phone)
    agent_proto._handler = agent_side
    agent_side.on_binary(first)
    return True


def install() -> None:
    """Patch this process's voice connections to splice on their first agent frame."""
    original = VoiceConn.on_binary

    def on_binary(self: VoiceConn, data: bytes) -> None:
        if not _splice(self, data):
            original(self, data)

    VoiceConn.on_binary = on_binary  # type: ignore[method-assign]


def start_floor(config: Path, creds: Credentials) -> tuple[Child, Credentials]:
    """The floor on ``config`` (the bench gateway's own file, port 0: a free port), and
    the same credentials pointed at it."""
    child = Child("floor", [sys.executable, "-m", "telcoflow.loadgen.floor", "--config",
                            str(config)], env_without("TELCOFLOW_", "WSS_"))
    url = child.expect(r"gateway ready on (\S+)").group(1)
    return child, dataclasses.replace(creds, url=url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", required=True, help="the gateway's TOML config")
    args = parser.parse_args(argv)
    install()
    from ..cli.main import main as cli  # the same logging set-up and serve as the gateway
    return cli(["serve", "--config", args.config])


if __name__ == "__main__":
    raise SystemExit(main())
