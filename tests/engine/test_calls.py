"""A call's life in the engine: offered, claimed, answered, ended by each party or timer."""

from __future__ import annotations

import pytest

from telcoflow.engine.errors import CommandError, NotFound
from telcoflow.engine.ports import Activity, AgentEvent, EndReason, LinkClose, SessionEnd
from telcoflow.testing.fakes import FakeAgentLink

from .harness import NUMBER, Harness


def test_a_call_is_offered_to_every_link_of_the_connector_and_rings() -> None:
    h = Harness()
    one, two = h.link(), h.link()
    leg, call_id = h.dial()
    assert call_id is not None and leg.events == [("ringing", call_id)]
    session_id = h.engine.calls[call_id].session.id
    for link in (one, two):
        assert link.of("notify") == [("notify", session_id, Activity.NEW_INCOMING_CALL)]


def test_unknown_numbers_and_closed_connectors_are_refused_with_a_reason() -> None:
    h = Harness()
    leg, call_id = h.dial(to="+19999")
    assert call_id is None and leg.end_reason is EndReason.NOT_IN_SERVICE
    assert "+19999" in leg.events[0][2]
    h.engine.set_call_flow("conn-1", "NO")
    leg, call_id = h.dial()
    assert call_id is None and leg.end_reason is EndReason.DECLINED


def test_nobody_claims_the_call_in_time() -> None:
    h = Harness()
    link = h.link()
    leg, call_id = h.dial()
    h.run(29.9)
    assert leg.end_reason is None
    h.run(0.2)
    assert leg.end_reason is EndReason.NO_ANSWER and "no agent claimed" in leg.events[-1][2]
    assert not h.engine.calls
    session = h.engine.sessions.find("conn-1")[0]
    assert session.close_reason == "CALL_TERMINATED"
    assert link.of("closed") == []  # nobody had claimed it: nobody to tell


def test_answer_stops_the_ring_timer_and_starts_media() -> None:
    h = Harness()
    leg, link, agent, call = h.answered_call()
    assert leg.kinds() == ["ringing", "answered"]
    h.run(60.0)
    assert call.live and leg.end_reason is None
    assert leg.frames == 3000  # one frame per 20 ms tick for a minute
    answer = h.command(agent, "call.answer")
    assert answer[0] == "done" and answer[2]["alreadyAnswered"] is True


def test_only_ready_sessions_get_call_in_and_only_once_per_link() -> None:
    h = Harness()
    link = h.link(rate=24000, mode="isolated")
    _, call_id = h.dial()
    assert call_id is not None
    session = h.engine.calls[call_id].session
    h.engine.open_session(link, session.id)
    assert link.of("call.in") == []
    h.engine.session_ready(link, session.id)
    h.engine.session_ready(link, session.id)
    offers = link.of("call.in")
    assert len(offers) == 1 and offers[0][1].call_id == call_id
    call = h.engine.calls[call_id]
    assert (call.agent_rate, call.audio_mode) == (24000, "isolated")


def test_caller_hangup_ends_the_call_for_the_agent_then_closes_the_session() -> None:
    h = Harness()
    leg, link, agent, call = h.answered_call()
    h.engine.leg_hung_up(leg)
    assert agent.events[-2:] == [("event", AgentEvent.TERMINATED), ("close", LinkClose.CALL_ENDED)]
    assert link.of("closed") == [("closed", call.session.id, SessionEnd.CALL_TERMINATED)]
    assert leg.end_reason is None  # nobody tells a caller who hung up that it hung up
    assert not h.engine.calls and len(h.engine.media) == 0


@pytest.mark.parametrize("name", ["call.close", "call.disconnect"])
def test_the_agent_ends_a_two_party_call(name: str) -> None:
    h = Harness()
    leg, link, agent, call = h.answered_call()
    answer = h.command(agent, name)
    assert answer[0] == "done"
    assert agent.events.index(answer) < agent.events.index(("close", LinkClose.CALL_ENDED))
    assert ("event", AgentEvent.TERMINATED) not in agent.events
    assert leg.end_reason is EndReason.AGENT_HANGUP
    assert link.of("closed")[0][2] is SessionEnd.SDK_REQUEST


def test_rest_close_ends_the_call_and_is_idempotent() -> None:
    h = Harness()
    leg, link, agent, call = h.answered_call()
    session = h.engine.close_session("conn-1", call.session.id)
    assert leg.end_reason is EndReason.CONNECTOR_CLOSED and not session.is_open
    again = h.engine.close_session("conn-1", call.session.id)
    assert again is session and link.of("closed") == [("closed", session.id,
                                                         SessionEnd.SDK_REQUEST)]
    with pytest.raises(NotFound):
        h.engine.close_session("another-connector", call.session.id)


def test_a_lost_agent_link_may_come_back_within_the_grace_else_the_call_ends() -> None:
    h = Harness()
    leg, link, agent, call = h.answered_call()
    h.engine.agent_detach(agent)
    h.run(9.0)
    back = FakeAgentLink()
    h.engine.agent_attach(call.id, back)
    h.run(20.0)
    assert call.live
    h.engine.agent_detach(back)
    h.run(10.1)
    assert leg.end_reason is EndReason.AGENT_LOST and not call.live


def test_a_newer_agent_link_supersedes_and_the_old_one_is_refused() -> None:
    h = Harness()
    leg, link, old, call = h.answered_call()
    new = FakeAgentLink()
    h.engine.agent_attach(call.id, new)
    assert old.closed is LinkClose.SUPERSEDED
    with pytest.raises(CommandError) as refused:
        h.engine.agent_audio(old, bytes(640))
    assert refused.value.code == "CALL_TERMINATED"
    assert h.command(old, "agent.interrupt")[2] == "CALL_TERMINATED"
    h.engine.agent_detach(old)  # its close arriving later changes nothing
    h.engine.agent_audio(new, bytes(640))
    assert call.agent is new and call.playout is not None and call.playout.queued == 640


def test_agent_audio_before_answer_after_end_and_beyond_the_buffer_is_refused() -> None:
    h = Harness()
    link = h.link()
    _, call_id = h.dial()
    assert call_id is not None
    agent = h.claim(link, call_id)
    with pytest.raises(CommandError) as early:
        h.engine.agent_audio(agent, bytes(640))
    assert early.value.code == "AUDIO_BEFORE_ANSWER"
    h.command(agent, "call.answer")
    call = h.engine.calls[call_id]
    with pytest.raises(CommandError) as full:
        h.engine.agent_audio(agent, bytes(640 * 600))  # 12 s: the buffer holds 10
    assert full.value.code == "AUDIO_OVERFLOW" and call.stats.agent_audio_rejected == 1
    h.command(agent, "call.disconnect")
    with pytest.raises(CommandError) as late:
        h.engine.agent_audio(agent, bytes(640))
    assert late.value.code == "CALL_TERMINATED"


def test_unknown_commands_and_commands_on_ended_calls_get_one_specific_answer() -> None:
    h = Harness()
    _, _, agent, call = h.answered_call()
    assert h.command(agent, "call.dance")[2] == "UNKNOWN_COMMAND"
    assert h.command(agent, "agent.whisper")[2] == "NOT_CONNECTED"
    h.command(agent, "call.disconnect")
    assert h.command(agent, "call.answer")[2] == "CALL_TERMINATED"
    with pytest.raises(NotFound):
        h.engine.agent_attach(call.id, FakeAgentLink())


def test_shutdown_tells_every_party() -> None:
    h = Harness()
    legs = [h.answered_call()[0] for _ in range(3)]
    h.engine.shutdown()
    assert all(leg.end_reason is EndReason.SERVER_SHUTDOWN for leg in legs)
    assert not h.engine.calls and h.engine.next_deadline() is None


def test_the_number_routes_to_its_connector() -> None:
    h = Harness()
    assert h.engine.call_connector("nope") is None
    _, call_id = h.dial(to=NUMBER)
    assert call_id is not None and h.engine.call_connector(call_id) == "conn-1"
