"""The engine's registry port: told of every session added and closed, in order; and the
engine's refusal of new calls (a draining node, an unreachable registry)."""

from __future__ import annotations

from telcoflow.engine.ports import EndReason
from telcoflow.engine.registry import MemoryRegistry, RegisteredSession

from .harness import Harness


class RecordingRegistry:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def session_added(self, session: RegisteredSession) -> None:
        self.seen.append(("added", session.id, session.state))

    def session_closed(self, session: RegisteredSession) -> None:
        self.seen.append(("closed", session.id, session.state))


def test_the_registry_is_told_of_a_call_session_from_offer_to_close() -> None:
    h = Harness()
    registry = RecordingRegistry()
    h.engine.sessions.registry = registry
    leg, call_id = h.dial()
    assert call_id is not None
    sid = h.engine.calls[call_id].session.id
    assert registry.seen == [("added", sid, "OPEN")]
    h.engine.leg_hung_up(leg)
    assert registry.seen == [("added", sid, "OPEN"), ("closed", sid, "CLOSED")]


def test_the_memory_registry_is_the_default() -> None:
    assert isinstance(Harness().engine.sessions.registry, MemoryRegistry)


def test_a_refusing_engine_turns_new_calls_away_and_keeps_live_ones() -> None:
    h = Harness()
    live_leg, _, _, live = h.answered_call()
    h.engine.refusing = "the gateway is draining"
    leg, call_id = h.dial()
    assert call_id is None
    assert leg.end_reason is EndReason.SERVICE_UNAVAILABLE
    assert live.id in h.engine.calls and live_leg.end_reason is None
    h.engine.refusing = None
    assert h.dial()[1] is not None
