"""Recording fakes of the engine's ports and a clock moved by hand.

For engine tests with no sockets and no sleeping, and for benches that
measure the engine's own work. Each fake records what the engine told it
in ``events``, in order, as short tuples.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine.ports import (
    Activity,
    AgentEvent,
    AudioFormat,
    CallOffer,
    Channel,
    DialError,
    DialFailure,
    EndReason,
    LinkClose,
    MessageOutcome,
    OutboundMessage,
    QualityEvent,
    SessionEnd,
    SessionView,
)


class FakeClock:
    """``now()`` is whatever the test set; ``advance()`` moves it and returns it."""

    def __init__(self, start: float = 1000.0, wall_offset: float = 1.7e9) -> None:
        self.t = start
        self.wall_offset = wall_offset

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t + self.wall_offset

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


class FakeLeg:
    """A phone leg: records signalling; keeps the audio it was sent if ``keep_audio``."""

    network = "fake"  # Leg.network

    def __init__(self, codec: str = "pcm16", rate: int = 16000, keep_audio: bool = True) -> None:
        self.format = AudioFormat(codec, rate)
        self.events: list[tuple[Any, ...]] = []
        self.audio: list[bytes | None] = []
        self.frames = 0
        self.lead_frames = 0
        self.held_frames = 0
        self.can_transfer = False
        self._keep = keep_audio

    def ringing(self, call_id: str) -> None:
        self.events.append(("ringing", call_id))

    def answered(self, call_id: str) -> None:
        self.events.append(("answered", call_id))

    def ended(self, reason: EndReason, message: str) -> None:
        self.events.append(("ended", reason, message))

    def send_audio(self, frame: bytes | None) -> None:
        self.frames += 1
        if self._keep:
            self.audio.append(frame)

    def send_dtmf(self, digits: str) -> None:
        self.events.append(("dtmf", digits))

    def clear_audio(self) -> None:
        self.events.append(("clear",))
        self.held_frames = 0  # the far end dropped what it held

    def transfer(self, number: str) -> bool:
        if self.can_transfer:
            self.events.append(("transfer", number))
        return self.can_transfer

    @property
    def end_reason(self) -> EndReason | None:
        ends = [e[1] for e in self.events if e[0] == "ended"]
        return ends[-1] if ends else None

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


class FakeDialler:
    """Reaches ``numbers``; each dial makes a :class:`FakeLeg`, or fails as told."""

    def __init__(self, *numbers: str, codec: str = "pcm16", rate: int = 16000) -> None:
        self.numbers = set(numbers)
        self.busy: set[str] = set()
        self.codec, self.rate = codec, rate
        self.dialled: list[tuple[str, str, str, float, FakeLeg]] = []

    def reaches(self, number: str) -> bool:
        return number in self.numbers

    def dial(self, call_id: str, number: str, caller: str, ring_s: float) -> FakeLeg:
        if number in self.busy:
            raise DialError(DialFailure.BUSY, f"the line of {number} is busy")
        leg = FakeLeg(self.codec, self.rate)
        self.dialled.append((call_id, number, caller, ring_s, leg))
        return leg

    @property
    def last(self) -> FakeLeg:
        return self.dialled[-1][4]


class FakeMessageNetwork:
    """Carries messages to ``users``; answers each send when told (:meth:`answer`)."""

    def __init__(self, *users: str) -> None:
        self.users = set(users)
        self.sent: list[tuple[OutboundMessage, Callable[[MessageOutcome], None]]] = []

    def serves(self, local: str, remote: str) -> bool:
        return remote in self.users

    def send_message(self, message: OutboundMessage,
                     done: Callable[[MessageOutcome], None]) -> None:
        self.sent.append((message, done))

    def answer(self, index: int = -1, outcome: MessageOutcome | None = None) -> None:
        self.sent[index][1](outcome or MessageOutcome(True, {"messages": [{"id": "wamid.1"}]}))


@dataclass(eq=False)
class FakeSessionLink:
    """An agent's session-manager connection after setup."""

    connector_uuid: str
    sample_rate: int = 16000
    audio_mode: str = "mixed"
    id: str = field(default_factory=lambda: f"smws-{uuid.uuid4()}")
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def notify(self, session: SessionView, activity: Activity) -> None:
        self.events.append(("notify", session.id, activity))

    def offer_call(self, offer: CallOffer) -> None:
        self.events.append(("call.in", offer))

    def session_closed(self, session_id: str, reason: SessionEnd, cause: str | None = None) -> None:
        self.events.append(("closed", session_id, reason) if cause is None
                           else ("closed", session_id, reason, cause))

    def deliver_message(self, session_id: str, sender: str, content: dict[str, Any]) -> None:
        self.events.append(("message", session_id, sender, content))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]


class FakeAgentLink:
    """An agent's voice link for one call; keeps the audio per channel if ``keep_audio``."""

    def __init__(self, keep_audio: bool = True) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.audio: dict[int, list[bytes]] = {}
        self.credit = 0
        self.closed: LinkClose | None = None
        self._keep = keep_audio

    def send_audio(self, channel: int, pcm: bytes) -> None:
        if self._keep:
            self.audio.setdefault(channel, []).append(pcm)

    def request_audio(self, nbytes: int, frame_bytes: int) -> None:
        self.credit += nbytes

    def call_event(self, event: AgentEvent) -> None:
        self.events.append(("event", event))

    def call_error(self, code: str, message: str) -> None:
        self.events.append(("error", code, message))

    def dtmf(self, channel: Channel, digit: str, duration_ms: int) -> None:
        self.events.append(("dtmf", channel, digit, duration_ms))

    def playout_position(self, played_bytes: int, played_ms: int, reason: str) -> None:
        self.events.append(("position", played_bytes, played_ms, reason))

    def quality_event(self, event: QualityEvent) -> None:
        self.events.append(("quality", event))

    def command_done(self, command_id: str, result: dict[str, Any]) -> None:
        self.events.append(("done", command_id, result))

    def command_failed(self, command_id: str, code: str, message: str) -> None:
        self.events.append(("failed", command_id, code, message))

    def close(self, why: LinkClose) -> None:
        self.closed = why
        self.events.append(("close", why))

    def answer_of(self, command_id: str) -> tuple[Any, ...]:
        found = [e for e in self.events if e[0] in ("done", "failed") and e[1] == command_id]
        assert len(found) == 1, f"{command_id} answered {len(found)} times: {self.events}"
        return found[0]
