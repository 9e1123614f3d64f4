"""``call.error``: what the gateway fails on its side reaches the call's agent, once per
report interval, and the call (and every other call) goes on."""

from __future__ import annotations

import pytest

from telcoflow.engine import EngineError
from telcoflow.engine.engine import ERROR_REPORT_S
from telcoflow.engine.ports import MediaError

from .harness import Harness


def errors(agent: object) -> list[str]:
    return [e[1] for e in agent.events if e[0] == "error"]  # type: ignore[attr-defined]


def test_a_failing_media_tick_is_reported_rate_limited_and_spares_other_calls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness()
    _, _, broken_agent, broken = h.answered_call()
    leg, _, agent, _ = h.answered_call()

    def fails() -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(broken, "tick", fails)
    h.run(1.0)
    assert errors(broken_agent) == ["MEDIA_FAILURE"]  # 50 failures, one report
    assert "RuntimeError" in [e for e in broken_agent.events if e[0] == "error"][0][2]
    h.run(ERROR_REPORT_S)
    assert errors(broken_agent) == ["MEDIA_FAILURE"] * 2
    assert errors(agent) == [] and leg.frames >= 50 * (1 + ERROR_REPORT_S) - 2


def test_agent_audio_past_the_playout_bound_is_reported() -> None:
    h = Harness()
    _, _, agent, call = h.answered_call()
    assert call.playout is not None
    with pytest.raises(EngineError):
        h.engine.agent_audio(agent, bytes(call.playout.max_bytes + 640))
    assert errors(agent) == [MediaError.AGENT_AUDIO_DROPPED.value]


def test_a_legs_undecodable_audio_is_reported_on_its_call_only() -> None:
    h = Harness()
    leg, _, agent, _ = h.answered_call()
    _, _, other, _ = h.answered_call()
    for _ in range(3):
        h.engine.leg_media_error(leg, MediaError.CALLER_AUDIO_INVALID, "bad bytes")
    assert errors(agent) == ["CALLER_AUDIO_INVALID"] and errors(other) == []
