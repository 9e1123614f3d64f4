"""Three-way calls on the media clock: legs in, one batched mix, legs out.

A two-party call (caller ↔ agent) forwards caller audio to the agent the
moment it arrives, for the least delay. Once the callee is bridged, every
party's audio is collected per leg and mixed on the tick: each leg hears the
sum of the legs routed to it (see :mod:`telcoflow.audio.mixer` and
:mod:`.conference_states`), and the agent's channels stay sample-aligned
(channel 0 = channel 1 + channel 2 in isolated mode). That costs at most one
tick (20 ms) of extra delay on the human-to-agent path.

Mixing happens at the agent connection's rate — every leg is converted to it
anyway — with :class:`~telcoflow.server.legs.Uplink` / ``Downlink`` per leg.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from ..audio.mixer import AGENT, CALLEE, CALLER, BatchMixer, routes_for
from ..protocol import voice as vp
from .legs import Downlink, Uplink
from .links import LineLink

if TYPE_CHECKING:
    from .calls import Call

# Frames a leg may run ahead of the tick before its oldest is dropped: bounds the
# delay a phone clock faster than ours can build up to 60 ms.
LEG_QUEUE_FRAMES = 3


class Bridge:
    """The callee's leg of one call, plus the per-leg queues the mixer reads."""

    def __init__(self, callee: LineLink, agent_rate: int) -> None:
        self.callee = callee
        self.uplink = Uplink(callee.codec, callee.sample_rate, agent_rate)
        self.downlink = Downlink(callee.codec, callee.sample_rate, agent_rate)
        self.caller_frames: deque[bytes] = deque(maxlen=LEG_QUEUE_FRAMES)
        self.callee_frames: deque[bytes] = deque(maxlen=LEG_QUEUE_FRAMES)
        self.agent_to = (True, True)
        self.caller_present = True
        self.routes = routes_for(*self.agent_to)
        self.late_frames = 0  # ticks a present leg had nothing queued

    def set_agent_routes(self, to_caller: bool, to_callee: bool) -> None:
        self.agent_to = (to_caller, to_callee)
        self._update()

    def caller_left(self) -> None:
        self.caller_present = False
        self.caller_frames.clear()
        self._update()

    def on_callee_audio(self, payload: bytes) -> None:
        self.callee_frames.extend(self.uplink.process(payload))

    def _update(self) -> None:
        self.routes = routes_for(*self.agent_to, caller=self.caller_present)


class ConferenceTicker:
    """Runs every bridged call of one agent rate through one :class:`BatchMixer` per tick."""

    def __init__(self, agent_rate: int) -> None:
        self.frame_samples = agent_rate // 50
        self.mixer = BatchMixer(self.frame_samples)

    def tick(self, calls: list[Call]) -> None:
        frames, routes = self.mixer.inputs(len(calls))
        for i, call in enumerate(calls):
            _gather(call, frames[i], routes[i])
        mixed = self.mixer.mix(len(calls))
        for i, call in enumerate(calls):
            _scatter(call, frames[i], mixed[i])


def _gather(call: Call, frames: np.ndarray, routes: np.ndarray) -> None:
    bridge = call.bridge
    assert bridge is not None
    routes[...] = bridge.routes
    for party, queue, present in ((CALLER, bridge.caller_frames, bridge.caller_present),
                                  (CALLEE, bridge.callee_frames, True)):
        if queue:
            frames[party] = np.frombuffer(queue.popleft(), "<i2")
        elif present:
            bridge.late_frames += 1
    # accepted agent audio keeps playing after the agent leaves: nothing accepted is lost
    agent = call.playout.tick() if call.playout is not None else None
    if agent is not None:
        frames[AGENT] = np.frombuffer(agent, "<i2")


def _scatter(call: Call, frames: np.ndarray, mixed: np.ndarray) -> None:
    bridge = call.bridge
    assert bridge is not None
    if bridge.caller_present and call.downlink is not None:
        call.phone.send_audio(call.downlink.process(mixed[CALLER].tobytes()))
        call.stats.downlink_frames += 1
    bridge.callee.send_audio(bridge.downlink.process(mixed[CALLEE].tobytes()))
    voice = call.voice
    if voice is None:
        return
    voice.send_binary(b"\x00" + mixed[AGENT].tobytes())
    if call.audio_mode == "isolated":
        voice.send_binary(b"\x01" + frames[CALLER].tobytes())
        voice.send_binary(b"\x02" + frames[CALLEE].tobytes())
    call.stats.uplink_frames += 1
    playout = call.playout
    if playout is not None:
        want = playout.credit_to_request()
        if want:
            voice.send_text(vp.build_buffer_request(want, call.frame_bytes, 0))
