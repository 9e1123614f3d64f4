"""What the engine is told at start: routes, quotas and timings (no file formats here)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    uuid: str
    numbers: tuple[str, ...] = ()
    max_sessions: int = 1000


@dataclass(slots=True)
class EngineSettings:
    connectors: list[ConnectorSpec] = field(default_factory=list)
    ring_timeout_s: float = 30.0          # an inbound call nobody claims ends after this
    resume_grace_s: float = 30.0          # a live call waits this long for its agent to return
    agent_reconnect_grace_s: float = 10.0  # ... and this long for a lost voice link
    playout_target_ms: int = 120          # agent audio queued + requested, per call
    playout_prebuffer_ms: int = 40
    # how far behind the agent's audio a caller may fall (the media clock stalled, the
    # agent's audio came late) before it is cut; from half of it speech is compressed
    # and quiet frames are skipped at any lag (docs/benchmarks.md); 0: no catch-up
    playout_max_lag_ms: int = 200
    connect_ring_cap_s: float = 120.0     # the longest call.connect rings a callee
    missed_ring_s: float = 20.0           # MISSED_ONLY: the subscriber rings this long first
    outbound_ring_s: float = 60.0         # an SDK-initiated call rings its number this long
    # RESUME offers: the first waits out the published SDK's reconnect bookkeeping (it
    # drops its call sessions right after setup.done), then they repeat until claimed
    resume_delay_s: float = 0.2
    resume_retry_s: float = 2.0
    # what a caller hears while the call waits for an agent: "tone", "silence", or a WAV
    hold_sound: str = "tone"
    # a WA session stays open this long after the user's last message (WhatsApp's
    # customer-service window); outside it, only template messages may be sent
    message_window_s: float = 86_400.0
    max_queued_messages: int = 256   # per WA session while no agent holds it
    max_messages_in_flight: int = 32  # per WA session, sent and not yet answered
    # each answered call's legs measured live (engine/quality_watch.py); off: no quality
    # figures, alerts or recordings
    quality_watch: bool = True
    # calls at once (ringing or up, either direction); a caller arriving beyond it is
    # refused GATEWAY_OVERLOADED. 0: no cap
    max_calls: int = 0
