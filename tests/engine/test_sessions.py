"""Sessions: claiming, busy, gating, RESUME after a dropped connection, quotas, the store."""

from __future__ import annotations

import pytest

from telcoflow.engine.errors import (
    ChannelNotConfigured,
    NotFound,
    QuotaExceeded,
    SessionBusy,
    SessionClosed,
    SessionNotOpen,
)
from telcoflow.engine.ports import Activity, EndReason
from telcoflow.engine.sessions import Session, SessionStore

from .harness import Harness


def test_the_first_open_binds_and_another_connection_is_told_who_has_it() -> None:
    h = Harness()
    one, two = h.link(), h.link()
    _, call_id = h.dial()
    assert call_id is not None
    session_id = h.engine.calls[call_id].session.id
    h.engine.open_session(one, session_id)
    h.engine.open_session(one, session_id)  # idempotent for the binder
    with pytest.raises(SessionBusy) as busy:
        h.engine.open_session(two, session_id)
    assert busy.value.bound_id == one.id
    with pytest.raises(SessionNotOpen):
        h.engine.session_ready(two, session_id)
    with pytest.raises(NotFound):
        h.engine.open_session(two, "no-such-session")


def test_a_claimed_but_unanswered_call_goes_back_to_the_others_when_its_link_drops() -> None:
    h = Harness()
    one, two = h.link(), h.link()
    _, call_id = h.dial()
    assert call_id is not None
    session_id = h.engine.calls[call_id].session.id
    h.engine.open_session(one, session_id)
    h.engine.link_down(one)
    assert two.of("notify")[-1] == ("notify", session_id, Activity.NEW_INCOMING_CALL)
    h.engine.open_session(two, session_id)  # no longer busy


def test_a_live_call_is_offered_again_with_resume_until_claimed() -> None:
    h = Harness()
    leg, link, agent, call = h.answered_call()
    h.engine.link_down(link)
    back = h.link()
    assert back.of("notify") == []  # not before the published SDK's bookkeeping is done
    h.run(0.21)
    assert back.of("notify") == [("notify", call.session.id, Activity.RESUME)]
    h.run(2.0)
    h.run(2.0)
    assert len(back.of("notify")) == 3  # repeated while nobody claims it
    h.engine.open_session(back, call.session.id)
    h.engine.session_ready(back, call.session.id)
    h.run(10.0)
    assert len(back.of("notify")) == 3 and len(back.of("call.in")) == 1
    h.run(60.0)  # the resume grace was cancelled by the claim
    assert call.live and leg.end_reason is None


def test_a_live_call_whose_agent_is_gone_ends_after_the_shorter_grace() -> None:
    h = Harness()
    leg, link, agent, call = h.answered_call()
    h.engine.link_down(link)
    h.engine.agent_detach(agent)
    h.run(9.9)
    assert call.live
    h.run(0.2)  # the voice link's 10 s grace ends before the session's 30 s one
    assert leg.end_reason is EndReason.AGENT_LOST
    assert h.engine.timers.next_deadline() is None  # nothing of the call is left behind


def test_the_session_grace_ends_a_call_whose_agent_never_returns() -> None:
    h = Harness()
    h.settings.agent_reconnect_grace_s = 300.0
    leg, link, agent, call = h.answered_call()
    h.engine.agent_detach(agent)
    h.engine.link_down(link)
    h.run(29.9)
    assert call.live
    h.run(0.2)
    assert leg.end_reason is EndReason.AGENT_LOST


def test_a_call_whose_voice_link_stays_up_survives_without_its_session_link() -> None:
    h = Harness()
    leg, link, agent, call = h.answered_call()
    h.engine.link_down(link)
    h.run(120.0)
    assert call.live and leg.end_reason is None


def test_resume_offers_stop_when_the_call_ends() -> None:
    h = Harness()
    leg, link, agent, call = h.answered_call()
    h.engine.link_down(link)
    back = h.link()
    h.run(0.3)
    h.engine.leg_hung_up(leg)
    h.run(10.0)
    assert len(back.of("notify")) == 1 and h.engine.timers.next_deadline() is None


def test_sdk_sessions_are_idempotent_per_address_and_quota_bound() -> None:
    h = Harness()
    h.dialler.numbers.update({"+15551111", "+15553333", *(f"+1555200{n}" for n in range(4))})
    link = h.link()
    first, created = h.engine.create_session(link, "TELCO", "+15551111")
    assert created
    assert h.engine.create_session(link, "TELCO", "+15551111") == (first, False)
    for n in range(4):
        h.engine.create_session(link, "TELCO", f"+1555200{n}")
    with pytest.raises(QuotaExceeded):
        h.engine.create_session(link, "TELCO", "+15553333")
    with pytest.raises(ChannelNotConfigured):
        h.engine.create_session(link, "WA", "+15553333")
    h.engine.close_session("conn-1", first)
    with pytest.raises(SessionClosed):
        h.engine.open_session(link, first)
    assert h.engine.create_session(link, "TELCO", "+15553333")[1]


def test_the_store_looks_up_open_sessions_without_the_closed_ones() -> None:
    store = SessionStore()
    store.KEEP_CLOSED = 3
    sessions = [store.add(Session("c", "TELCO", f"+{n}", "+1", 0)) for n in range(6)]
    other = store.add(Session("d", "TELCO", "+9", "+1", 0))
    for s in sessions[:5]:
        store.close(s, "SDK_REQUEST", 10)
    assert store.open_of("c") == [sessions[5]] and store.count_open("c") == 1
    assert [s.id for s in store.find("c", state="CLOSED")] == [s.id for s in sessions[2:5]]
    assert store.get(sessions[0].id, "c") is None          # pushed out by newer closings
    assert store.get(other.id, "c") is None                 # another connector's: not found
    assert store.find("c", remote_address="+5", state="OPEN") == [sessions[5]]
