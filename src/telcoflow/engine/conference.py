"""Three-way calls on the media clock: legs in, one batched mix, legs out.

A two-party call (caller ↔ agent) forwards caller audio to the agent the
moment it arrives, for the least delay. Once the callee is bridged, every
party's audio is collected per leg and handled on the tick: each leg hears
the sum of the legs routed to it (see :mod:`telcoflow.audio.mixer` and
:mod:`.conference_states`), and the agent's channels stay sample-aligned
(channel 0 = channel 1 + channel 2 in isolated mode). That costs at most one
tick (20 ms) of extra delay on the human-to-agent path.

Mixing happens at the agent connection's rate. All the per-tick work is
batched across the bridged calls of one agent rate: legs are resampled in
one matrix product per phone format and direction
(:class:`~telcoflow.audio.polyphase.FrameBatchResampler`), mixed in one pass
(:class:`~telcoflow.audio.mixer.BatchMixer`) and G.711-encoded in one table
lookup, so the Python work left per call is a few row copies and the sends
(``bench/mixer.py`` measures it).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import numpy.typing as npt

from ..audio.codec import encode
from ..audio.mixer import AGENT, CALLEE, CALLER, BatchMixer
from ..audio.polyphase import FrameBatchResampler
from .bridge import Bridge, State, frame_bytes
from .calls import Call
from .ports import Channel, Leg


class ConferenceTicker:
    """Runs every bridged call of one agent rate through one batch per tick."""

    def __init__(self, agent_rate: int) -> None:
        self.agent_rate = agent_rate
        self.frame_samples = agent_rate // 50
        self.mixer = BatchMixer(self.frame_samples)
        self._up: dict[int, FrameBatchResampler] = {}
        self._down: dict[int, FrameBatchResampler] = {}

    def tick(self, calls: list[Call]) -> None:
        frames, routes = self.mixer.inputs(len(calls))
        self._legs_in(calls, frames, routes)
        mixed = self.mixer.mix(len(calls))
        self._legs_out(calls, mixed)
        for i, call in enumerate(calls):
            _to_agent(call, frames[i], mixed[i])

    def _legs_in(self, calls: list[Call], frames: npt.NDArray[np.int16],
                 routes: npt.NDArray[np.int32]) -> None:
        by_rate: dict[int, list[tuple[int, int, bytes]]] = defaultdict(list)
        for i, call in enumerate(calls):
            bridge = call.bridge
            assert bridge is not None
            routes[i] = bridge.routes
            for party in (CALLER, CALLEE):
                if not bridge.present[party]:
                    continue
                rate = bridge.legs[party].format.rate
                size, inbox = frame_bytes(rate), bridge.inbox[party]
                if len(inbox) < size:
                    continue  # nothing from this leg yet: it is heard as silence
                by_rate[rate].append((i, party, bytes(inbox[:size])))
                del inbox[:size]
            # accepted agent audio keeps playing after the agent leaves: nothing is lost
            agent = call.playout.tick() if call.playout is not None else None
            if agent is not None:
                frames[i, AGENT] = np.frombuffer(agent, "<i2")
        for rate, items in by_rate.items():
            resampler = self._up.get(rate)
            if resampler is None:
                resampler = self._up[rate] = FrameBatchResampler(rate, self.agent_rate,
                                                                 rate // 50)
            pcm = np.frombuffer(b"".join(chunk for _, _, chunk in items), "<i2")
            states = [_state(calls[i].bridge, party, resampler, up=True)
                      for i, party, _ in items]
            out = resampler.process(pcm.reshape(len(items), -1), states)
            frames[[i for i, _, _ in items], [p for _, p, _ in items]] = out

    def _legs_out(self, calls: list[Call], mixed: npt.NDArray[np.int16]) -> None:
        by_format: dict[tuple[str, int], list[tuple[int, int, Leg]]] = defaultdict(list)
        for i, call in enumerate(calls):
            bridge = call.bridge
            assert bridge is not None
            for party in (CALLER, CALLEE):
                if bridge.present[party]:
                    leg = bridge.legs[party]
                    by_format[(leg.format.codec, leg.format.rate)].append((i, party, leg))
        for (codec, rate), items in by_format.items():
            resampler = self._down.get(rate)
            if resampler is None:
                resampler = self._down[rate] = FrameBatchResampler(
                    self.agent_rate, rate, self.frame_samples)
            states = [_state(calls[i].bridge, party, resampler, up=False)
                      for i, party, _ in items]
            out = resampler.process(mixed[[i for i, _, _ in items], [p for _, p, _ in items]],
                                    states)
            payload = memoryview(encode(codec, np.ascontiguousarray(out).tobytes()))
            size = len(payload) // len(items)
            for n, (i, party, leg) in enumerate(items):
                leg.send_audio(bytes(payload[n * size:(n + 1) * size]))
                if party == CALLER:
                    calls[i].stats.downlink_frames += 1


def _to_agent(call: Call, frames: npt.NDArray[np.int16], mixed: npt.NDArray[np.int16]) -> None:
    agent = call.agent
    if agent is None:
        return
    agent.send_audio(Channel.MIXED, mixed[AGENT].tobytes())
    if call.audio_mode == "isolated":
        agent.send_audio(Channel.CALLER, frames[CALLER].tobytes())
        agent.send_audio(Channel.CALLEE, frames[CALLEE].tobytes())
    call.stats.uplink_frames += 1
    call.request_credit()


def _state(bridge: Bridge | None, party: int, resampler: FrameBatchResampler,
           up: bool) -> State:
    assert bridge is not None
    states = bridge.up_state if up else bridge.down_state
    state = states.get(party)
    if state is None or state.size != resampler.history:
        state = states[party] = resampler.new_state()
    return state
