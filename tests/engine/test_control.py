"""call.connect through a dialler, the modes, who leaves when, and MISSED_ONLY."""

from __future__ import annotations

import numpy as np
import pytest

from telcoflow.engine.errors import CommandError
from telcoflow.engine.ports import (
    Activity,
    AgentEvent,
    Channel,
    DialFailure,
    EndReason,
    LinkClose,
    SessionEnd,
)
from telcoflow.testing.fakes import FakeLeg

from .harness import CALLER, NUMBER, Harness


def connected(h: Harness, mode: str = "mixed") -> tuple[FakeLeg, FakeLeg, object, object]:
    caller, link, agent, call = h.answered_call(mode=mode)
    assert h.command(agent, "call.connect", ring_s=30) == ()  # answered when ringing ends
    callee = h.dialler.last
    h.engine.leg_answered(callee)
    return caller, callee, agent, call


def test_connect_rings_the_number_and_answers_when_the_callee_does() -> None:
    h = Harness()
    caller, link, agent, call = h.answered_call()
    assert h.command(agent, "call.connect", ring_s=30, timeout_s=60) == ()
    call_id, number, from_, ring_s, callee = h.dialler.dialled[0]
    assert (call_id, number, from_, ring_s) == (call.id, NUMBER, CALLER, 30)
    h.run(5.0)
    h.engine.leg_answered(callee)
    done = agent.answer_of("cmd-2")
    assert done[0] == "done" and done[2] == {"callId": call.id, "callee": NUMBER,
                                             "mode": "barge"}
    assert callee.kinds() == ["answered"]
    assert h.command(agent, "call.connect")[2] == "ALREADY_CONNECTED"


def test_nobody_answering_fails_the_connect_but_the_call_goes_on_and_can_retry() -> None:
    h = Harness()
    caller, link, agent, call = h.answered_call()
    h.command(agent, "call.connect", ring_s=7)
    callee = h.dialler.last
    h.run(6.9)
    assert agent.events[-1][0] != "failed"
    h.run(0.2)
    failed = agent.answer_of("cmd-2")
    assert failed[2] == "CALL_UNANSWERED" and "7 s" in failed[3]
    assert callee.end_reason is EndReason.RING_TIMEOUT
    assert call.live and caller.end_reason is None
    h.command(agent, "call.connect", ring_s=7)
    h.engine.leg_answered(h.dialler.last)
    assert agent.answer_of("cmd-3")[0] == "done"


def test_the_ring_time_is_capped_by_the_operator_and_by_the_agents_deadline() -> None:
    h = Harness()
    h.settings.connect_ring_cap_s = 20.0
    _, _, agent, _ = h.answered_call()
    h.command(agent, "call.connect", ring_s=60, timeout_s=120)
    assert h.dialler.dialled[-1][3] == 20.0
    h.run(21)
    h.command(agent, "call.connect", ring_s=60, timeout_s=5)
    assert h.dialler.dialled[-1][3] == 4.75  # answered before the agent gives up


@pytest.mark.parametrize(("failure", "code"), [(DialFailure.REJECTED, "CALL_REJECTED"),
                                               (DialFailure.BUSY, "CALLEE_BUSY")])
def test_a_callee_that_declines_or_is_busy_fails_the_connect(failure: DialFailure,
                                                             code: str) -> None:
    h = Harness()
    _, _, agent, call = h.answered_call()
    h.command(agent, "call.connect")
    h.engine.leg_failed(h.dialler.last, failure, "no")
    assert agent.answer_of("cmd-2")[2] == code and call.live


def test_an_unreachable_or_busy_number_fails_at_once() -> None:
    h = Harness()
    _, _, agent, call = h.answered_call()
    h.dialler.numbers.clear()
    assert h.command(agent, "call.connect")[2] == "CALL_UNANSWERED"
    h.dialler.numbers.add(NUMBER)
    h.dialler.busy.add(NUMBER)
    assert h.command(agent, "call.connect")[2] == "CALLEE_BUSY"
    assert call.live and call.mode.value == "IDLE"


def test_a_number_we_do_not_reach_is_transferred_by_a_carrier_that_can() -> None:
    h = Harness()
    caller, _, agent, call = h.answered_call()
    h.dialler.numbers.clear()
    caller.can_transfer = True
    answer = h.command(agent, "call.connect", ring_s=30)
    assert answer[0] == "done" and answer[2] == {"callId": call.id, "callee": NUMBER,
                                                 "mode": "transferred"}
    assert caller.events[-1] == ("transfer", NUMBER) and call.live
    assert call.mode.value == "IDLE"  # no callee joins here; a second connect may follow
    h.engine.leg_hung_up(caller)  # the carrier hands the call over: it ends for us
    assert not call.live and agent.events[-1][0] == "close"
    h2 = Harness()
    other, _, agent2, _ = h2.answered_call()
    other.can_transfer = True
    h2.command(agent2, "call.connect", ring_s=30)  # a number we reach is rung, not transferred
    assert ("transfer", NUMBER) not in other.events


def test_connect_needs_an_answered_call_and_one_at_a_time() -> None:
    h = Harness()
    link = h.link()
    _, call_id = h.dial()
    assert call_id is not None
    agent = h.claim(link, call_id)
    assert h.command(agent, "call.connect")[2] == "INVALID_STATE"
    h.command(agent, "call.answer")
    h.command(agent, "call.connect")
    assert h.command(agent, "call.connect")[2] == "CONNECT_IN_PROGRESS"
    assert h.command(agent, "agent.whisper")[2] == "NOT_CONNECTED"


def test_modes_route_the_agent_and_isolated_channels_stay_aligned() -> None:
    h = Harness()
    caller, callee, agent, call = connected(h, mode="isolated")
    assert h.command(agent, "agent.whisper")[2] == {"callId": call.id, "mode": "whisper"}
    h.engine.agent_audio(agent, np.full(320 * 10, 5000, "<i2").tobytes())
    for _ in range(10):
        h.engine.leg_audio(caller, np.full(320, 100, "<i2").tobytes())
        h.engine.leg_audio(callee, np.full(320, 200, "<i2").tobytes())
        h.run(0.02)
    loud = [max(abs(np.frombuffer(f, "<i2"))) for f in caller.audio if f]
    assert loud and max(loud) < 1000       # the caller never hears the whisper
    assert max(max(abs(np.frombuffer(f, "<i2"))) for f in callee.audio if f) > 4000
    mixed = [np.frombuffer(f, "<i2").astype(int) for f in agent.audio[Channel.MIXED][-5:]]
    one = [np.frombuffer(f, "<i2").astype(int) for f in agent.audio[Channel.CALLER][-5:]]
    two = [np.frombuffer(f, "<i2").astype(int) for f in agent.audio[Channel.CALLEE][-5:]]
    assert all((m == a + b).all() for m, a, b in zip(mixed, one, two, strict=True))
    assert h.command(agent, "agent.spy")[2]["mode"] == "spy"
    assert h.command(agent, "agent.barge")[2]["mode"] == "barge"


def test_caller_leaving_a_bridged_call_leaves_callee_and_agent_talking() -> None:
    h = Harness()
    caller, callee, agent, call = connected(h)
    h.engine.leg_hung_up(caller)
    assert call.live and callee.end_reason is None and agent.closed is None
    h.engine.leg_hung_up(callee)  # the last human leaves: the agent is told
    assert not call.live and ("event", AgentEvent.TERMINATED) in agent.events
    assert caller.end_reason is None  # it had gone already


def test_callee_leaving_returns_to_a_two_party_call() -> None:
    h = Harness()
    caller, callee, agent, call = connected(h)
    h.engine.leg_hung_up(callee)
    assert call.live and call.bridge is None and call.mode.value == "IDLE"
    h.engine.agent_audio(agent, np.full(320, 3000, "<i2").tobytes())
    h.run(0.1)
    assert any(f is not None for f in caller.audio[-5:])
    h.command(agent, "call.connect")  # and connect may be tried again
    assert len(h.dialler.dialled) == 2


def test_close_after_connect_lets_the_agent_go_and_its_accepted_audio_still_play() -> None:
    h = Harness()
    caller, callee, agent, call = connected(h)
    h.engine.agent_audio(agent, np.full(320 * 5, 4000, "<i2").tobytes())
    assert h.command(agent, "call.close")[0] == "done"
    assert agent.closed is LinkClose.AGENT_LEFT and call.live
    h.engine.agent_audio(agent, np.full(320 * 2, 4000, "<i2").tobytes())  # was in flight
    h.run(0.2)
    heard = [f for f in callee.audio if f and max(abs(np.frombuffer(f, "<i2"))) > 3000]
    assert len(heard) >= 6
    session = call.session
    assert not session.is_open and session.close_reason == SessionEnd.SDK_REQUEST.value
    h.engine.agent_detach(agent)
    h.run(30.0)  # no agent-lost timer for an agent that left on purpose
    assert call.live and caller.end_reason is None
    h.engine.leg_hung_up(caller)
    assert callee.end_reason is EndReason.OTHER_PARTY_HANGUP


def test_disconnect_after_connect_ends_every_leg() -> None:
    h = Harness()
    caller, callee, agent, call = connected(h)
    h.command(agent, "call.disconnect")
    assert caller.end_reason is EndReason.AGENT_HANGUP
    assert callee.end_reason is EndReason.AGENT_HANGUP


def test_the_call_ending_while_the_callee_rings_releases_it_and_fails_the_connect() -> None:
    h = Harness()
    caller, _, agent, call = h.answered_call()
    h.command(agent, "call.connect")
    h.engine.leg_hung_up(caller)
    assert h.dialler.last.end_reason is EndReason.CALLER_GONE
    assert agent.answer_of("cmd-2")[2] == "CALL_TERMINATED"


def test_missed_only_rings_the_subscriber_first_and_agents_get_what_it_misses() -> None:
    h = Harness()
    link = h.link()
    h.engine.set_call_flow("conn-1", "MISSED_ONLY")
    caller, call_id = h.dial()
    assert link.of("notify") == [] and h.dialler.dialled[0][3] == 20.0
    h.run(20.1)
    assert h.dialler.last.end_reason is EndReason.RING_TIMEOUT
    assert link.of("notify")[0][2] is Activity.NEW_INCOMING_CALL
    caller2, call2 = h.dial()
    h.engine.leg_answered(h.dialler.last)  # answered: caller and subscriber talk, no agent
    assert caller2.kinds() == ["ringing", "answered"] and len(link.of("notify")) == 1
    assert call2 is not None and h.engine.calls[call2].mode.value == "LEFT"
    h.engine.leg_audio(h.dialler.last, np.full(320, 1234, "<i2").tobytes())
    h.run(0.1)
    assert any(f and np.frombuffer(f, "<i2").max() > 1000 for f in caller2.audio)


def test_events_about_a_leg_the_engine_does_not_ring_are_refused() -> None:
    h = Harness()
    with pytest.raises(CommandError):
        h.engine.leg_answered(FakeLeg())
    h.engine.leg_hung_up(FakeLeg())   # unknown: nothing happens
    h.engine.leg_audio(FakeLeg(), b"\0\0")
