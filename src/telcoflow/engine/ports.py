"""What the engine needs from the world, as structural types, and the meanings it speaks.

Every kind of connection plugs in through one of these ports; the engine
never sees a wire format. Each adapter translates the engine's meanings
(ringing, answered, ended with an :class:`EndReason`, …) to its own protocol.

Phone side:
    :class:`Leg`       one party's phone leg in a call (caller or callee)
    :class:`Dialler`   places calls to numbers on some network (``call.connect``)
    :class:`MessageNetwork`  carries WA messages (the WhatsApp Cloud API, simulated lines)
Agent side:
    :class:`SessionLink`  an agent's session-manager connection (offers, claims)
    :class:`AgentLink`    an agent's media and command link for one call
Time:
    :class:`Clock`     the engine never reads a system clock itself
Observing:
    :class:`CallObserver`  told of call set-up, ends, interrupts, media ticks and quality
                           alerts (metrics, records); :class:`NoObserver` is the default
    :class:`Recorder`      opens a :class:`CallRecording` for the calls it records

Adapters call the engine's methods for what they receive; the engine calls
the port methods below for what they must send. Calls in both directions
happen on one thread and never block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What a phone leg speaks: ``codec`` is pcm16 (LE), pcmu or pcma, at ``rate`` Hz."""

    codec: str
    rate: int

    @property
    def frame_bytes(self) -> int:
        """Bytes in one 20 ms frame."""
        samples = self.rate // 50
        return samples * 2 if self.codec == "pcm16" else samples


class Channel(IntEnum):
    """The agent's audio channels: everyone but the agent mixed, then each party alone."""

    MIXED = 0
    CALLER = 1
    CALLEE = 2


class EndReason(StrEnum):
    """Why a phone leg is ended, as the engine tells it to the leg."""

    NO_ANSWER = "NO_ANSWER"                # no agent claimed the call in time
    NOT_IN_SERVICE = "NOT_IN_SERVICE"      # the number is not routed to a connector
    DECLINED = "DECLINED"                  # the connector takes no inbound calls / line refused
    AGENT_HANGUP = "AGENT_HANGUP"          # the agent closed or disconnected the call
    CONNECTOR_CLOSED = "CONNECTOR_CLOSED"  # the session was closed through the REST API
    AGENT_LOST = "AGENT_LOST"              # the agent's link never came back
    SERVER_SHUTDOWN = "SERVER_SHUTDOWN"
    OTHER_PARTY_HANGUP = "OTHER_PARTY_HANGUP"  # the last other party left
    RING_TIMEOUT = "RING_TIMEOUT"          # a dialled leg did not answer in time
    CALLER_GONE = "CALLER_GONE"            # the call ended while a dialled leg was ringing
    GATEWAY_OVERLOADED = "GATEWAY_OVERLOADED"  # refused on arrival: the media runs late
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"  # new calls refused (draining, registry away)


class DialFailure(StrEnum):
    """Why a dialled leg did not join, as a dialler reports it."""

    UNREACHABLE = "UNREACHABLE"  # nothing answers for the number (not registered, no route)
    BUSY = "BUSY"
    REJECTED = "REJECTED"        # the called party declined, or hung up while ringing


class Activity(StrEnum):
    """Why a session is offered to an agent's session-manager connection."""

    NEW_INCOMING_CALL = "NEW_INCOMING_CALL"
    NEW_INCOMING_MESSAGE = "NEW_INCOMING_MESSAGE"
    RESUME = "RESUME"  # a live call whose agent connection dropped


class SessionEnd(StrEnum):
    """Why a session closed, as its agent is told."""

    SDK_REQUEST = "SDK_REQUEST"
    FORCE_CLOSE = "FORCE_CLOSE"
    CALL_TERMINATED = "CALL_TERMINATED"


class LinkClose(StrEnum):
    """Why the engine closes an agent link."""

    CALL_ENDED = "call terminated"
    SUPERSEDED = "superseded by a newer voice connection for this call"
    AGENT_LEFT = "the agent left the call"


class AgentEvent(StrEnum):
    TERMINATED = "call.terminated"
    ERROR = "call.error"


class MediaError(StrEnum):
    """``call.error`` codes: the gateway failed part of a call's media on its side."""

    CALLER_AUDIO_INVALID = "CALLER_AUDIO_INVALID"  # the caller's audio could not be decoded
    AGENT_AUDIO_DROPPED = "AGENT_AUDIO_DROPPED"    # agent audio past the playout bound
    MEDIA_FAILURE = "MEDIA_FAILURE"                # the call's media tick failed (a bug)


class Leg(Protocol):
    """One party's phone leg (an inbound caller, or a callee a dialler reached)."""

    @property
    def format(self) -> AudioFormat: ...

    @property
    def network(self) -> str:
        """The kind of network the party is on, as its adapter names it (a short constant:
        the label calls are counted by, e.g. ``calls by ingress``). Never per-call data."""
        ...

    @property
    def lead_frames(self) -> int:
        """Frames sent ahead when a talkspurt starts (then one per tick, so the far end
        stays that far ahead): a carrier that queues what it is sent (Twilio) rides
        out a late tick with them. 0 for legs that play each frame as it comes."""
        ...

    def ringing(self, call_id: str) -> None:
        """The call is being offered: the caller hears ringing."""

    def answered(self, call_id: str) -> None:
        """The party is now in the call: media flows both ways."""

    def ended(self, reason: EndReason, message: str) -> None:
        """This leg's part in the call is over; ``message`` is a sentence for people."""

    def send_audio(self, frame: bytes | None) -> None:
        """One 20 ms frame in :attr:`format`, once per media tick; ``None`` is silence."""

    def send_dtmf(self, digits: str) -> None:
        """Play DTMF ``digits`` (0-9 * # A-D) to the party, in order."""

    def clear_audio(self) -> None:
        """The agent interrupted: drop whatever agent audio the leg's far end still
        holds unplayed (Twilio's ``clear``, AudioCodes' ``playStream.stop``; a leg
        that sends each frame on its tick holds none)."""

    @property
    def held_frames(self) -> int:
        """Frames of agent audio sent to the far end that it has not played yet (Twilio,
        from its mark echoes); 0 for a leg whose far end plays each frame as it comes."""
        ...

    def transfer(self, number: str) -> bool:
        """Hand the call to ``number`` through the leg's own carrier (AudioCodes'
        ``transfer`` activity): ``call.connect`` when no network of ours reaches the
        number. False when the carrier cannot; the call then stays as it was."""


class PlaysOnArrival:
    """:class:`Leg`'s carrier capabilities for a far end that plays each frame as it
    arrives (the simulated phone; RTP, whose far end's jitter buffer is not counted;
    AudioCodes, paced at playback speed): nothing held unplayed, no lead wanted,
    nothing to clear, no transfer of its own. A leg class inherits what fits."""

    lead_frames: int = 0
    held_frames: int = 0

    def clear_audio(self) -> None:
        """Nothing to clear: each frame went out on its own tick."""

    def transfer(self, number: str) -> bool:
        return False


class Dialler(Protocol):
    """Reaches numbers on one network. It reports later, through the engine's
    ``leg_answered``, ``leg_failed``, ``leg_hung_up`` and ``leg_audio``."""

    def reaches(self, number: str) -> bool:
        """True if this network is where ``number`` lives."""

    def dial(self, call_id: str, number: str, caller: str, ring_s: float) -> Leg:
        """Start ringing ``number``; raises :class:`DialError` when it cannot ring at all."""


class DialError(Exception):
    def __init__(self, failure: DialFailure, message: str) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message


@dataclass(frozen=True, slots=True)
class AgentCommand:
    """A command from an agent about its call, already checked by the adapter's parser."""

    command_id: str
    name: str              # call.answer, call.connect, agent.whisper, agent.interrupt, ...
    timeout_s: float       # the agent's own deadline for the answer
    ring_s: float = 60.0   # call.connect: how long to ring the callee
    digits: str = ""       # call.dtmf: what to play


@dataclass(frozen=True, slots=True)
class CallOffer:
    """What an agent is told about a call it claimed (``call.in``)."""

    session_id: str
    call_id: str
    caller: str
    callee: str


class SessionLink(Protocol):
    """An agent's session-manager connection, once set up."""

    @property
    def id(self) -> str: ...
    @property
    def connector_uuid(self) -> str: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def audio_mode(self) -> str: ...

    def notify(self, session: SessionView, activity: Activity) -> None:
        """Offer ``session`` (``session.notify``)."""

    def offer_call(self, offer: CallOffer) -> None:
        """Hand the claimed call over (``call.in``)."""

    def session_closed(self, session_id: str, reason: SessionEnd, cause: str | None = None) -> None:
        """The session is over; ``cause`` says why an outbound call never connected
        (``CALL_UNANSWERED``, ``CALL_REJECTED``, ``CALLEE_BUSY``) or a message session
        ended (``WINDOW_EXPIRED``)."""

    def deliver_message(self, session_id: str, sender: str, content: dict[str, Any]) -> None:
        """A WA message (or a delivery status of one the agent sent) on a READY session
        bound to this link (``wa.msg.in``)."""


class SessionView(Protocol):
    """The fields of a session an adapter may show."""

    @property
    def id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def remote_address(self) -> str: ...
    @property
    def local_address(self) -> str: ...
    @property
    def opened_at(self) -> int: ...


class AgentLink(Protocol):
    """An agent's media and command link for one call (a voice WebSocket)."""

    def send_audio(self, channel: Channel, pcm: bytes) -> None:
        """20 ms of PCM16 at the agent's rate on one :class:`Channel`."""

    def request_audio(self, nbytes: int, frame_bytes: int) -> None:
        """Credit: the agent may send up to ``nbytes`` more, in ``frame_bytes`` chunks."""

    def call_event(self, event: AgentEvent) -> None: ...

    def call_error(self, code: str, message: str) -> None:
        """The gateway failed part of the call's media on its side (``call.error``); the
        call goes on unless the engine ends it."""

    def dtmf(self, channel: Channel, digit: str, duration_ms: int) -> None:
        """A DTMF digit the party on ``channel`` (caller / callee) pressed."""

    def playout_position(self, played_bytes: int, played_ms: int, reason: str) -> None:
        """How much of the agent's audio the caller has heard (agent-format bytes and
        ms since the call was answered): sent on an interrupt, at the end of each
        talkspurt (``reason`` says which), and asked for with ``playout.position``."""

    def command_done(self, command_id: str, result: dict[str, Any]) -> None:
        """The answer to an :class:`AgentCommand`, exactly one per command."""

    def command_failed(self, command_id: str, code: str, message: str) -> None: ...

    def close(self, why: LinkClose) -> None: ...


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A WA message an agent sends (``wa.msg.out``), checked and routed by the engine."""

    session_id: str
    client_msg_id: str
    local: str              # the business number it is sent from
    remote: str             # the user it goes to
    api_version: str        # the connector's Cloud API version (may be empty: the default)
    data: dict[str, Any]    # the message object (type and its body), as the Cloud API takes it


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """What a network said about a message: sent (``content``: its answer) or refused
    (``code`` one of the wire's ``wa.msg.out`` codes, ``message`` a sentence for people,
    ``detail`` the network's own error object, secrets removed)."""

    ok: bool
    content: Any = None
    code: str | None = None
    message: str = ""
    detail: Any = None


class MessageNetwork(Protocol):
    """Carries WA messages between business numbers and users. Inbound messages and
    delivery statuses come to the engine through ``Engine.messaging.message_in`` /
    ``status_in``."""

    def serves(self, local: str, remote: str) -> bool:
        """True if this network carries messages from ``local`` to ``remote``."""

    def send_message(self, message: OutboundMessage,
                     done: Callable[[MessageOutcome], None]) -> None:
        """Send ``message``; ``done`` is called exactly once, later or at once, on the
        engine's thread. Never raises for the network's own failures (``done`` says)."""


class Timed(Protocol):
    """An adapter's own timers (SIP retransmissions, say), run on the engine's one timer:
    :meth:`Engine.add_timed` it, and call :meth:`Engine.deadline_changed` after an
    input that may have made its next deadline earlier."""

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds; the same clock ``handle_timer(now)`` is given."""

    def wall(self) -> float:
        """Unix seconds, for the timestamps agents see."""


class ReceiveStats(Protocol):
    """What a leg that reorders and conceals its party's audio itself counted (an RTP
    leg's jitter buffer), cumulative. Optional: a leg that has them offers a
    ``receive_stats`` attribute (None until media flows); a leg on a reliable transport
    (a WebSocket) loses nothing and has none."""

    @property
    def lost(self) -> int: ...
    @property
    def late(self) -> int: ...
    @property
    def concealed(self) -> int: ...
    @property
    def jitter_ms(self) -> float: ...


def receive_stats(leg: Leg) -> ReceiveStats | None:
    """The leg's :class:`ReceiveStats`, if it keeps them."""
    stats: ReceiveStats | None = getattr(leg, "receive_stats", None)
    return stats


@dataclass(slots=True)  # not frozen: a scrape makes one per live call, and that is 3x faster
class CallReport:
    """A call as observers see it: live (``state`` RINGING / ANSWERED, at a scrape) or
    ended (``outcome`` set). Media counts are cumulative 20 ms frames. Read it only."""

    call_id: str | None        # None: refused before it became a call
    ingress: str               # the phone leg's :attr:`Leg.network`
    outbound: bool             # the gateway dialled the party (an SDK-initiated call)
    state: str                 # RINGING, ANSWERED or ENDED
    outcome: str = ""          # why it ended (see ``Engine.outcome``); "" while live
    answered: bool = False     # media started (the agent or the callee answered)
    duration_s: float = 0.0    # since it arrived (or was dialled)
    to_agent_frames: int = 0   # the phone party's audio sent to the agent
    to_phone_frames: int = 0   # ticks played to the phone leg, silence included
    agent_frames_played: int = 0  # of them, frames of the agent's audio
    underruns: int = 0         # agent talkspurts that ran dry mid-speech
    agent_audio_rejected: int = 0  # agent audio chunks refused (the playout was full)
    playout_queued_s: float = 0.0  # agent audio waiting in the playout buffer now
    # catching up after the caller fell behind (playout.py): agent audio time-compressed
    # away, quiet frames skipped, and cut because the delay passed its bound even so
    compressed_s: float = 0.0
    skipped_quiet_s: float = 0.0
    cut_late_s: float = 0.0
    lost: int = 0              # the phone leg's own :class:`ReceiveStats` (0 without them)
    late: int = 0
    concealed: int = 0
    jitter_ms: float | None = None  # None: the leg keeps no receive stats
    connector: str = ""        # the connector's uuid
    caller: str = ""           # the parties: who called (an outbound call: our number)
    callee: str = ""
    # the live quality of both legs (``CallWatch.summary()``: JSON-ready, camelCase), None
    # before media or with quality watching off
    quality: dict[str, Any] | None = None


class CallObserver(Protocol):
    """Told what happens to calls, on the engine's thread: must be quick, never block
    and never raise (metrics, traces). Per-frame work is never reported one frame at a
    time: media counts are read from :meth:`Engine.live_reports` when wanted."""

    def call_offered(self, call_id: str | None, ingress: str, outbound: bool) -> None:
        """A call arrived (or was dialled); ``call_id`` None: refused at once (its
        :meth:`call_ended` follows)."""

    def call_answered(self, call_id: str, ingress: str, outbound: bool, setup_s: float) -> None:
        """Media started, ``setup_s`` after the call arrived (or was dialled)."""

    def call_ended(self, report: CallReport) -> None: ...

    def interrupt_done(self, seconds: float) -> None:
        """An ``agent.interrupt`` reached the caller: ``seconds`` from the command to the
        call's next media tick (the first frame without the interrupted audio)."""

    def media_tick_started(self, lateness_s: float, sub_ticks: int) -> None:
        """A media tick begins, ``lateness_s`` after its first due sub-tick (``sub_ticks``
        > 1: a catch-up burst)."""

    def media_tick_done(self) -> None:
        """The tick :meth:`media_tick_started` announced is over (its duration is the
        observer's to measure: the engine reads no clock)."""

    def quality_alert(self, leg: str, kind: str) -> None:
        """A quality alert was raised on a call's ``leg`` (caller / agent): ``kind`` is
        low_snr, high_thd, clipping or low_quality_score."""


class NoObserver:
    """A :class:`CallObserver` that does nothing: the engine's default."""

    def call_offered(self, call_id: str | None, ingress: str, outbound: bool) -> None:
        pass

    def call_answered(self, call_id: str, ingress: str, outbound: bool, setup_s: float) -> None:
        pass

    def call_ended(self, report: CallReport) -> None:
        pass

    def interrupt_done(self, seconds: float) -> None:
        pass

    def media_tick_started(self, lateness_s: float, sub_ticks: int) -> None:
        pass

    def media_tick_done(self) -> None:
        pass

    def quality_alert(self, leg: str, kind: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class QualityEvent:
    """A quality alert's edge on one leg of a call: ``state`` raised or cleared, at
    ``at_s`` seconds of the call's media (see :mod:`.quality_watch`)."""

    leg: str          # caller | agent
    kind: str         # low_snr | high_thd | clipping | low_quality_score
    state: str        # raised | cleared
    value: float
    threshold: float  # the seed's threshold (0 on a cleared edge)
    at_s: float

    def public(self) -> dict[str, Any]:
        return {"leg": self.leg, "kind": self.kind, "state": self.state, "value": self.value,
                "threshold": self.threshold, "atS": self.at_s}


class CallRecording(Protocol):
    """Where one call's audio goes when it is recorded (a WAV file the gateway writes)."""

    def write(self, caller: bytes, agent: bytes) -> None:
        """The next block of both legs: PCM16 mono at the call's agent rate, equal
        lengths, consecutive on the media clock (silence already in place of gaps)."""

    def close(self) -> None: ...


class Recorder(Protocol):
    """Decides which calls are recorded and opens their recordings."""

    def open(self, call_id: str, connector_uuid: str, rate: int) -> CallRecording | None:
        """The call's recording, or None when its connector does not record."""
        ...
