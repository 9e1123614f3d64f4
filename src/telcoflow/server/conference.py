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
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..audio.codec import decode, encode
from ..audio.mixer import AGENT, CALLEE, CALLER, BatchMixer, routes_for
from ..audio.polyphase import FrameBatchResampler
from .links import LineLink, PhoneLink

if TYPE_CHECKING:
    from .calls import Call

# Frames a leg may run ahead of the tick before its oldest is dropped: bounds the
# delay a phone clock faster than ours can build up to 60 ms.
LEG_QUEUE_FRAMES = 3

State = npt.NDArray[np.float32]


class Bridge:
    """The callee's leg of one call, and each human leg's inbox and filter states."""

    def __init__(self, caller: PhoneLink, callee: LineLink) -> None:
        self.callee = callee
        self.links: dict[int, PhoneLink] = {CALLER: caller, CALLEE: callee}
        # decoded PCM16 at each leg's own rate, waiting for the tick
        self.inbox: dict[int, bytearray] = {CALLER: bytearray(), CALLEE: bytearray()}
        self.present = {CALLER: True, CALLEE: True}
        # resampler histories, made by the ticker on first use (a fresh filter: the
        # two-party path's history is not carried over, a ~2 ms settle at bridging)
        self.up_state: dict[int, State] = {}
        self.down_state: dict[int, State] = {}
        self.agent_to = (True, True)
        self.routes = routes_for(*self.agent_to)

    def set_agent_routes(self, to_caller: bool, to_callee: bool) -> None:
        self.agent_to = (to_caller, to_callee)
        self._update()

    def caller_left(self) -> None:
        self.present[CALLER] = False
        self.inbox[CALLER].clear()
        self._update()

    def push(self, party: int, payload: bytes) -> None:
        """Phone audio of ``party`` in its codec, in any chunking."""
        link = self.links[party]
        inbox = self.inbox[party]
        inbox += decode(link.codec, payload)
        limit = LEG_QUEUE_FRAMES * _frame_bytes(link.sample_rate)
        if len(inbox) > limit:
            del inbox[:len(inbox) - limit]

    def _update(self) -> None:
        self.routes = routes_for(*self.agent_to, caller=self.present[CALLER])


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
                rate = bridge.links[party].sample_rate
                size, inbox = _frame_bytes(rate), bridge.inbox[party]
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
        by_format: dict[tuple[str, int], list[tuple[int, int, PhoneLink]]] = defaultdict(list)
        for i, call in enumerate(calls):
            bridge = call.bridge
            assert bridge is not None
            for party in (CALLER, CALLEE):
                if bridge.present[party]:
                    link = bridge.links[party]
                    by_format[(link.codec, link.sample_rate)].append((i, party, link))
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
            for n, (i, party, link) in enumerate(items):
                link.send_audio(bytes(payload[n * size:(n + 1) * size]))
                if party == CALLER:
                    calls[i].stats.downlink_frames += 1


def _to_agent(call: Call, frames: npt.NDArray[np.int16], mixed: npt.NDArray[np.int16]) -> None:
    voice = call.voice
    if voice is None:
        return
    voice.send_binary(b"\x00" + mixed[AGENT].tobytes())
    if call.audio_mode == "isolated":
        voice.send_binary(b"\x01" + frames[CALLER].tobytes())
        voice.send_binary(b"\x02" + frames[CALLEE].tobytes())
    call.stats.uplink_frames += 1
    call.request_credit()


def _frame_bytes(rate: int) -> int:
    return rate // 50 * 2


def _state(bridge: Bridge | None, party: int, resampler: FrameBatchResampler,
           up: bool) -> State:
    assert bridge is not None
    states = bridge.up_state if up else bridge.down_state
    state = states.get(party)
    if state is None or state.size != resampler.history:
        state = states[party] = resampler.new_state()
    return state
