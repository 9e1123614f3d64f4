"""A call's media path: caller leg ↔ agent voice connection, on the media clock.

Two-party calls run here; once a callee is bridged the call's media runs
through :mod:`.conference` instead (``call.bridge`` is set).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field

from ..audio.mixer import CALLER
from ..protocol import voice as vp
from .call_states import CallEvent, CallState, next_state
from .conference import Bridge
from .conference_states import Control, Mode, next_mode
from .legs import Downlink, Uplink
from .links import LineLink, PhoneLink, VoiceLink
from .playout import PlayoutBuffer
from .sessions import Session

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class CallStats:
    uplink_frames: int = 0     # 20 ms frames sent to the agent
    downlink_frames: int = 0   # 20 ms frames sent to the caller
    agent_audio_rejected: int = 0
    interrupted_at_frame: int = -1  # downlink frame count when the last interrupt landed


@dataclass(eq=False)
class Call:
    session: Session
    phone: PhoneLink
    caller: str
    callee: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: CallState = CallState.RINGING
    agent_rate: int = 16000
    audio_mode: str = "mixed"
    voice: VoiceLink | None = None
    playout: PlayoutBuffer | None = None
    stats: CallStats = field(default_factory=CallStats)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    end_reason: str | None = None
    mode: Mode = Mode.IDLE
    bridge: Bridge | None = None
    ringing_line: LineLink | None = None  # the subscriber line call.connect is ringing
    _uplink: Uplink | None = None
    _downlink: Downlink | None = None

    @property
    def frame_bytes(self) -> int:
        return self.agent_rate // 50 * 2

    @property
    def live(self) -> bool:
        return self.state is not CallState.ENDED

    def transition(self, event: CallEvent) -> CallState:
        previous, self.state = self.state, next_state(self.state, event)
        if previous is not self.state:
            logger.info("call %s: %s --%s--> %s", self.id, previous.value, event.value,
                        self.state.value)
        return previous

    def control(self, control: Control) -> Mode:
        previous, self.mode = self.mode, next_mode(self.mode, control)
        if previous is not self.mode:
            logger.info("call %s: control %s --%s--> %s", self.id, previous.value,
                        control.value, self.mode.value)
        return previous

    # ── timers (the engine schedules, the call owns the handles) ─────────────
    def set_timer(self, name: str, handle: asyncio.TimerHandle) -> None:
        self.cancel_timer(name)
        self.timers[name] = handle

    def cancel_timer(self, name: str) -> None:
        handle = self.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def cancel_timers(self) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()

    # ── media ─────────────────────────────────────────────────────────────
    def start_media(self, target_ms: int, prebuffer_ms: int) -> None:
        if self.playout is not None:
            return
        self.playout = PlayoutBuffer(self.frame_bytes, target_ms, prebuffer_ms)
        self.reset_legs()

    def reset_legs(self) -> None:
        """Fresh caller-leg filters (after a bridge ends: theirs hold audio from before it)."""
        self._uplink = Uplink(self.phone.codec, self.phone.sample_rate, self.agent_rate)
        self._downlink = Downlink(self.phone.codec, self.phone.sample_rate, self.agent_rate)

    def attach_voice(self, link: VoiceLink) -> VoiceLink | None:
        """A new voice connection takes over; returns the one it replaced."""
        old, self.voice = self.voice, link
        if self.playout is not None:
            # the old connection's unanswered requests died with it
            self.playout.outstanding = 0
        return old if old is not link else None

    def on_phone_audio(self, payload: bytes) -> None:
        if self.state is not CallState.ANSWERED or self._uplink is None:
            return
        if self.bridge is not None:
            if self.bridge.present[CALLER]:
                self.bridge.push(CALLER, payload)
            return
        voice = self.voice
        for frame in self._uplink.process(payload):
            self.stats.uplink_frames += 1
            if voice is None:
                continue
            voice.send_binary(b"\x00" + frame)
            if self.audio_mode == "isolated":
                voice.send_binary(b"\x01" + frame)

    def on_agent_audio(self, pcm: bytes) -> int:
        """Queue agent audio for playout; returns the bytes accepted."""
        if self.playout is None:
            return 0
        return self.playout.push(pcm)

    def interrupt(self) -> int:
        if self.playout is None:
            return 0
        dropped = self.playout.interrupt()
        self.stats.interrupted_at_frame = self.stats.downlink_frames
        if self._downlink is not None:
            self._downlink.reset()
        return dropped

    def tick(self) -> None:
        """One 20 ms media-clock tick: play a frame to the caller, top up credit."""
        playout, downlink = self.playout, self._downlink
        if playout is None or downlink is None or self.state is not CallState.ANSWERED:
            return
        self.phone.send_audio(downlink.process(playout.tick()))
        self.stats.downlink_frames += 1
        self.request_credit()

    def request_credit(self) -> None:
        """Ask the agent for audio to keep the playout buffer near its target."""
        voice, playout = self.voice, self.playout
        if voice is None or playout is None:
            return
        want = playout.credit_to_request()
        if want:
            voice.send_text(vp.build_buffer_request(want, self.frame_bytes, 0))
