"""A call: its state, its legs, its agent link, and its two-party media path.

Two-party calls (caller ↔ agent) run here: caller audio goes to the agent
the moment it arrives, agent audio is played to the caller from the playout
buffer once per media tick. Once a callee is bridged the call's media runs
through :mod:`.conference` instead (``call.bridge`` is set).
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from dataclasses import dataclass, field

from ..audio.mixer import CALLER
from .bridge import Bridge
from .call_states import CALL, CallEvent, CallState
from .control_states import CONTROL, Control, Mode
from .hold import HoldLoop
from .legs import Downlink, Uplink
from .overload import LoadShed
from .playout import PlayoutBuffer
from .ports import AgentLink, Channel, Leg
from .quality_watch import CallWatch
from .sessions import Session

logger = logging.getLogger(__name__)

# Looked up on every frame: an enum member costs ~60 ns to look up on its class (3.11).
_ANSWERED = CallState.ANSWERED
_MIXED, _CALLER_CHANNEL = Channel.MIXED, Channel.CALLER
# Caller audio kept while no agent link is attached (an outbound call answered before the
# agent's voice link opened, a link being re-established): delivered when one attaches.
HELD_FRAMES = 100  # 2 s


@dataclass(slots=True)
class CallStats:
    uplink_frames: int = 0     # 20 ms frames sent to the agent
    downlink_frames: int = 0   # 20 ms frames played to the caller
    agent_audio_rejected: int = 0
    interrupted_at_frame: int = -1  # downlink frame count when the last interrupt landed


@dataclass(slots=True)
class PendingConnect:
    """A ``call.connect`` waiting for the callee: answered when the ringing ends."""

    command_id: str
    agent: AgentLink


@dataclass(eq=False)
class Call:
    session: Session
    caller_leg: Leg
    caller: str
    callee: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: CallState = CallState.RINGING
    agent_rate: int = 16000
    audio_mode: str = "mixed"
    agent: AgentLink | None = None
    playout: PlayoutBuffer | None = None
    stats: CallStats = field(default_factory=CallStats)
    end_reason: str | None = None
    mode: Mode = Mode.IDLE
    bridge: Bridge | None = None
    ringing_leg: Leg | None = None     # the callee a dialler is ringing
    ring_s: float = 0.0                # ... for this long
    connect: PendingConnect | None = None
    outbound: bool = False             # the gateway dialled the human (an SDK-initiated call)
    end_cause: str | None = None       # why an outbound call never connected
    arrived_at: float = 0.0            # when it arrived (or was dialled): set-up time, duration
    _held: deque[bytes] = field(default_factory=lambda: deque(maxlen=HELD_FRAMES))
    hold: HoldLoop | None = None  # played while the call has no agent link
    _uplink: Uplink | None = None
    _downlink: Downlink | None = None
    _ahead: bool = False               # this talkspurt's lead went out (Leg.lead_frames)
    _unheard_bytes: int = 0            # handed to the leg, then dropped unplayed by an interrupt
    errors_reported: dict[str, float] = field(default_factory=dict)  # call.error code → when
    watch: CallWatch | None = None     # live quality and the recording feed, once answered

    @property
    def frame_bytes(self) -> int:
        return self.agent_rate // 50 * 2

    @property
    def live(self) -> bool:
        return self.state is not CallState.ENDED

    def transition(self, event: CallEvent) -> CallState:
        previous, self.state = self.state, CALL.step(self.state, event)
        if previous is not self.state:
            logger.info("call %s: %s --%s--> %s", self.id, previous.value, event.value,
                        self.state.value)
        return previous

    def control(self, control: Control) -> Mode:
        previous, self.mode = self.mode, CONTROL.step(self.mode, control)
        if previous is not self.mode:
            logger.info("call %s: control %s --%s--> %s", self.id, previous.value,
                        control.value, self.mode.value)
        return previous

    # ── media ─────────────────────────────────────────────────────────────
    def start_media(self, target_ms: int, prebuffer_ms: int, max_lag_ms: int = 200,
                    shed: LoadShed | None = None) -> None:
        if self.playout is not None:
            return
        self.playout = PlayoutBuffer(self.frame_bytes, target_ms, prebuffer_ms,
                                     max_lag_ms=max_lag_ms,
                                     compress_from_ms=max_lag_ms // 2, shed=shed)
        self.reset_legs()

    def reset_legs(self) -> None:
        """Fresh caller-leg filters (after a bridge ends: theirs hold audio from before it)."""
        fmt = self.caller_leg.format
        self._uplink = Uplink(fmt.codec, fmt.rate, self.agent_rate)
        self._downlink = Downlink(fmt.codec, fmt.rate, self.agent_rate)

    def attach_agent(self, link: AgentLink) -> AgentLink | None:
        """A new agent link takes over; returns the one it replaced."""
        old, self.agent = self.agent, link
        self.hold = None
        if self.playout is not None:
            # the old link's unanswered requests died with it
            self.playout.outstanding = 0
        while self._held:  # what the caller said while no agent link was there
            frame = self._held.popleft()
            link.send_audio(_MIXED, frame)
            if self.audio_mode == "isolated":
                link.send_audio(_CALLER_CHANNEL, frame)
        return old if old is not link else None

    def on_caller_audio(self, payload: bytes) -> None:
        uplink = self._uplink
        if self.state is not _ANSWERED or uplink is None:
            return
        if self.bridge is not None:
            if self.bridge.present[CALLER]:
                self.bridge.push(CALLER, payload)
            return
        agent, watch, stats = self.agent, self.watch, self.stats
        for frame in uplink.process(payload):
            stats.uplink_frames += 1
            if watch is not None:
                watch.caller_frame(frame)
            if agent is None:
                self._held.append(frame)
                continue
            agent.send_audio(_MIXED, frame)
            if self.audio_mode == "isolated":
                agent.send_audio(_CALLER_CHANNEL, frame)

    def on_agent_audio(self, pcm: bytes) -> int:
        """Queue agent audio for playout; returns the bytes accepted."""
        if self.playout is None:
            return 0
        return self.playout.push(pcm)

    def owe(self, ticks: int) -> None:
        """The caller missed ``ticks`` ticks: the agent's audio now reaches them late."""
        if self.playout is not None:
            self.playout.owe(ticks * self.frame_bytes)

    def interrupt(self) -> int:
        if self.playout is None:
            return 0
        # what the caller's far end held unplayed is dropped with the rest: it was never heard
        self._unheard_bytes += self.caller_leg.held_frames * self.frame_bytes
        dropped = self.playout.interrupt()
        self._ahead = False
        self.stats.interrupted_at_frame = self.stats.downlink_frames
        if self._downlink is not None:
            self._downlink.reset()
        for leg in self.bridge.legs.values() if self.bridge is not None else (self.caller_leg,):
            leg.clear_audio()
        return dropped

    def played(self) -> tuple[int, int]:
        """(bytes, ms) of the agent's audio the caller has heard since the answer: handed
        to the leg, less what an interrupt dropped at the far end and what it still holds."""
        if self.playout is None:
            return 0, 0
        heard = (self.playout.stats.bytes_played - self._unheard_bytes
                 - self.caller_leg.held_frames * self.frame_bytes)
        heard = max(0, heard)
        return heard, heard * 1000 // (self.agent_rate * 2)

    def tick(self) -> None:
        """One 20 ms media tick: play a frame to the caller, top up the agent's credit."""
        playout, downlink = self.playout, self._downlink
        if playout is None or downlink is None or self.state is not _ANSWERED:
            return
        leg, watch = self.caller_leg, self.watch
        # the agent's audio played this tick, for the watch: hold and silence are silence
        frame = heard = playout.tick()
        if frame is None and self.hold is not None:  # no agent: the hold sound, not silence
            frame = self.hold.next_frame()
        elif frame is None and not playout.playing:
            if self._ahead and self.agent is not None:  # a talkspurt ended
                self.agent.playout_position(*self.played(), "talkspurt_end")
            self._ahead = False
        elif frame is not None and not self._ahead:
            # a talkspurt starts: a leg that wants a lead gets it now
            self._ahead = True
            for _ in range(leg.lead_frames):
                if playout.queued < self.frame_bytes:
                    break
                leg.send_audio(downlink.process(frame))
                self.stats.downlink_frames += 1
                if watch is not None:  # a lead frame: played ahead of the media clock
                    watch.agent_frame(frame)
                frame = heard = playout.tick()
        leg.send_audio(downlink.process(frame))
        self.stats.downlink_frames += 1
        if watch is not None:
            watch.tick(heard)
        self.request_credit()

    def request_credit(self) -> None:
        """Ask the agent for audio to keep the playout buffer near its target."""
        agent, playout = self.agent, self.playout
        if agent is None or playout is None:
            return
        want = playout.credit_to_request()
        if want:
            agent.request_audio(want, self.frame_bytes)
