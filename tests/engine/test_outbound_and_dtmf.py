"""Calls the gateway places for an agent (SDK-initiated sessions), and DTMF both ways."""

from __future__ import annotations

import numpy as np
import pytest

from telcoflow.engine.errors import EngineError
from telcoflow.engine.ports import Channel, DialFailure, EndReason, SessionEnd
from telcoflow.testing.fakes import FakeAgentLink, FakeSessionLink

from .harness import NUMBER, Harness

REMOTE = "+15557777"


def outbound(h: Harness) -> tuple[FakeSessionLink, str]:
    """An agent creates, opens and readies a TELCO session for REMOTE."""
    h.dialler.numbers.add(REMOTE)
    link = h.link(rate=16000)
    session_id, created = h.engine.create_session(link, "TELCO", REMOTE)
    assert created
    h.engine.open_session(link, session_id)
    h.engine.session_ready(link, session_id)
    return link, session_id


def test_the_number_is_dialled_when_the_agent_is_ready_and_it_gets_the_call_when_answered(
        ) -> None:
    h = Harness()
    link, session_id = outbound(h)
    call_id, number, caller, ring_s, leg = h.dialler.dialled[0]
    assert (number, caller, ring_s) == (REMOTE, NUMBER, 60.0)
    assert link.of("call.in") == []           # nothing to claim while it rings
    h.run(5.0)
    h.engine.leg_answered(leg)
    offer = link.of("call.in")[0][1]
    assert (offer.session_id, offer.call_id, offer.caller, offer.callee) == (
        session_id, call_id, NUMBER, REMOTE)
    assert leg.kinds() == ["answered"]
    # the agent answers as usual: idempotent, the call is up already
    agent = FakeAgentLink()
    speech = np.full(320, 1500, "<i2").tobytes()
    h.engine.leg_audio(leg, speech)           # the callee speaks before the agent's link opens
    h.engine.agent_attach(call_id, agent)
    assert agent.audio[Channel.MIXED] == [speech]  # held and delivered: nothing lost
    assert h.command(agent, "call.answer")[2]["alreadyAnswered"] is True


@pytest.mark.parametrize(("failure", "cause"), [(DialFailure.BUSY, "CALLEE_BUSY"),
                                                (DialFailure.REJECTED, "CALL_REJECTED"),
                                                (DialFailure.UNREACHABLE, "CALL_UNANSWERED")])
def test_a_number_that_does_not_answer_closes_the_session_with_the_cause(
        failure: DialFailure, cause: str) -> None:
    h = Harness()
    link, session_id = outbound(h)
    h.engine.leg_failed(h.dialler.last, failure, "no")
    assert link.of("closed") == [("closed", session_id, SessionEnd.CALL_TERMINATED, cause)]
    assert not h.engine.calls and link.of("call.in") == []


def test_nobody_answering_ends_the_ringing_after_the_outbound_ring_time() -> None:
    h = Harness()
    link, session_id = outbound(h)
    h.run(59.9)
    assert link.of("closed") == []
    h.run(0.2)
    assert h.dialler.last.end_reason is EndReason.RING_TIMEOUT
    assert link.of("closed")[0][3] == "CALL_UNANSWERED"


def test_the_connector_closing_the_session_while_it_rings_withdraws_the_call() -> None:
    h = Harness()
    link, session_id = outbound(h)
    h.engine.close_session("conn-1", session_id)
    assert h.dialler.last.end_reason is EndReason.CALLER_GONE
    assert not h.engine.calls


def test_a_number_no_network_reaches_is_refused_at_create() -> None:
    h = Harness()
    with pytest.raises(EngineError) as refused:
        h.engine.create_session(h.link(), "TELCO", "+19990000")
    assert refused.value.code == "INVALID_REQUEST" and "+19990000" in refused.value.message


def test_a_dial_that_fails_at_once_closes_the_session_with_the_cause() -> None:
    h = Harness()
    h.dialler.busy.add(REMOTE)
    link, session_id = outbound(h)
    assert link.of("closed") == [("closed", session_id, SessionEnd.CALL_TERMINATED,
                                  "CALLEE_BUSY")]


def test_digits_a_party_presses_reach_the_agent_on_its_channel() -> None:
    h = Harness()
    caller, link, agent, call = h.answered_call()
    h.engine.leg_dtmf(caller, "5", 120)
    h.command(agent, "call.connect")
    callee = h.dialler.last
    h.engine.leg_answered(callee)
    h.engine.leg_dtmf(callee, "#", 80)
    assert [e for e in agent.events if e[0] == "dtmf"] == [
        ("dtmf", Channel.CALLER, "5", 120), ("dtmf", Channel.CALLEE, "#", 80)]


def test_the_agent_plays_digits_to_whoever_hears_it() -> None:
    h = Harness()
    caller, link, agent, call = h.answered_call()
    answer = h.command(agent, "call.dtmf", digits="12#")
    assert answer[2] == {"callId": call.id, "digits": "12#", "to": ["caller"]}
    assert ("dtmf", "12#") in caller.events
    h.command(agent, "call.connect")
    callee = h.dialler.last
    h.engine.leg_answered(callee)
    h.command(agent, "agent.whisper")
    assert h.command(agent, "call.dtmf", digits="9")[2]["to"] == ["callee"]
    assert ("dtmf", "9") in callee.events and ("dtmf", "9") not in caller.events
    h.command(agent, "agent.spy")
    assert h.command(agent, "call.dtmf", digits="9")[2] == "NOT_HEARD"


def test_dtmf_before_answer_is_refused() -> None:
    h = Harness()
    link = h.link()
    _, call_id = h.dial()
    assert call_id is not None
    agent = h.claim(link, call_id)
    assert h.command(agent, "call.dtmf", digits="1")[2] == "INVALID_STATE"
