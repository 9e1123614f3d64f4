"""The WA plane of the engine: conversations, the inbox, the window, sending (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from telcoflow.engine import EngineError
from telcoflow.engine.errors import ChannelNotConfigured, NotFound
from telcoflow.engine.ports import Activity, MessageOutcome, SessionEnd
from telcoflow.testing.fakes import FakeMessageNetwork, FakeSessionLink

from .harness import NUMBER, Harness

USER = "+447700900123"
HOUR = 3600.0


def text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body}}


TEMPLATE = {"type": "template", "template": {"name": "hello", "language": {"code": "en"}}}


def setup(window_s: float = 24 * HOUR) -> tuple[Harness, FakeMessageNetwork]:
    h = Harness()
    h.settings.message_window_s = window_s
    network = FakeMessageNetwork(USER)
    h.engine.messaging.add_network(network)
    return h, network


def claim(h: Harness, link: FakeSessionLink, session_id: str) -> None:
    h.engine.open_session(link, session_id)
    h.engine.session_ready(link, session_id)


def inbound(h: Harness, body: str, sender: str = USER) -> MessageOutcome:
    return h.engine.messaging.message_in(NUMBER, sender, text(body))


def send(h: Harness, link: FakeSessionLink, session_id: str, data: dict[str, Any],
         answers: list[MessageOutcome]) -> None:
    h.engine.messaging.send(link, session_id, "c-1", "v23.0", data,
                            data["type"] == "template", answers.append)


def test_a_message_opens_a_session_offered_to_every_link_and_waits_for_its_claim() -> None:
    h, _ = setup()
    a, b = h.link(), h.link()
    outcome = inbound(h, "hello")
    assert outcome.ok
    session_id = outcome.content["sessionId"]
    assert a.of("notify") == b.of("notify") == [("notify", session_id,
                                                   Activity.NEW_INCOMING_MESSAGE)]
    assert inbound(h, "are you there?").ok  # a second one: no second offer
    assert len(a.of("notify")) == 1
    claim(h, b, session_id)
    assert [m[3]["text"]["body"] for m in b.of("message")] == ["hello", "are you there?"]
    assert a.of("message") == []
    inbound(h, "thanks")  # held now: straight through
    assert b.of("message")[-1][1:3] == (session_id, USER)


def test_messages_wait_while_the_agent_is_away_and_a_new_link_is_offered_them() -> None:
    h, _ = setup()
    link = h.link()
    session_id = inbound(h, "one").content["sessionId"]
    claim(h, link, session_id)
    h.engine.link_down(link)
    inbound(h, "two")
    back = FakeSessionLink(link.connector_uuid)
    h.engine.link_up(back)
    assert back.of("notify") == [("notify", session_id, Activity.NEW_INCOMING_MESSAGE)]
    claim(h, back, session_id)  # the SDK re-claims WA sessions after a reconnect
    assert [m[3]["text"]["body"] for m in back.of("message")] == ["two"]


def test_the_inbox_is_bounded() -> None:
    h, _ = setup()
    h.settings.max_queued_messages = 3
    for n in range(3):
        assert inbound(h, str(n)).ok
    refused = inbound(h, "one too many")
    assert (refused.ok, refused.code) == (False, "OVERFLOW")


def test_unrouted_numbers_and_switched_off_flows_are_refused() -> None:
    h, _ = setup()
    refused = h.engine.messaging.message_in("+19999", USER, text("hi"))
    assert (refused.ok, refused.code) == (False, "NOT_IN_SERVICE")
    link = h.link()
    h.engine.set_call_flow(link.connector_uuid, "ALL", inbound_message=False,
                           outbound_message=False)
    assert inbound(h, "hi").code == "DECLINED"
    with pytest.raises(EngineError) as err:
        h.engine.create_session(link, "WA", USER)
    assert err.value.code == "FORBIDDEN"


def test_sending_inside_the_window_and_the_network_answer() -> None:
    h, network = setup()
    link = h.link()
    session_id = inbound(h, "hi").content["sessionId"]
    claim(h, link, session_id)
    answers: list[MessageOutcome] = []
    send(h, link, session_id, text("hello back"), answers)
    message, _ = network.sent[0]
    assert (message.local, message.remote, message.data) == (NUMBER, USER, text("hello back"))
    assert answers == []  # answered when the network answers
    network.answer()
    assert answers[0].ok and answers[0].content["messages"][0]["id"] == "wamid.1"


def test_an_agent_made_session_sends_templates_only_until_the_user_writes() -> None:
    h, network = setup()
    link = h.link()
    session_id, created = h.engine.create_session(link, "WA", USER)
    assert created and h.engine.create_session(link, "WA", USER) == (session_id, False)
    claim(h, link, session_id)
    answers: list[MessageOutcome] = []
    with pytest.raises(EngineError) as err:
        send(h, link, session_id, text("hi"), answers)
    assert err.value.code == "SESSION_NOT_OPEN" and "template" in err.value.message
    send(h, link, session_id, TEMPLATE, answers)
    assert len(network.sent) == 1
    inbound(h, "who is this?")
    send(h, link, session_id, text("your bank"), answers)
    assert len(network.sent) == 2


def test_the_session_closes_when_the_window_runs_out_and_each_message_renews_it() -> None:
    h, _ = setup(window_s=10.0)
    link = h.link()
    session_id = inbound(h, "hi").content["sessionId"]
    claim(h, link, session_id)
    h.run(8.0)
    inbound(h, "still here")  # the window runs 10 s from now
    h.run(8.0)
    assert link.of("closed") == []
    h.run(2.5)
    assert link.of("closed") == [("closed", session_id, SessionEnd.FORCE_CLOSE,
                                  "WINDOW_EXPIRED")]
    answers: list[MessageOutcome] = []
    with pytest.raises(EngineError) as err:
        send(h, link, session_id, TEMPLATE, answers)
    assert err.value.code == "SESSION_NOT_OPEN"
    assert h.engine.messaging.next_deadline() is None
    assert inbound(h, "back again").content["sessionId"] != session_id  # a new conversation


def test_refusals_of_a_send() -> None:
    h, network = setup()
    h.settings.max_messages_in_flight = 2
    link, other = h.link(), h.link()
    session_id = inbound(h, "hi").content["sessionId"]
    answers: list[MessageOutcome] = []
    with pytest.raises(EngineError) as err:  # not claimed by this link
        send(h, other, session_id, text("x"), answers)
    assert err.value.code == "SESSION_NOT_OPEN"
    claim(h, link, session_id)
    with pytest.raises(NotFound):
        send(h, link, "no-such-session", text("x"), answers)
    send(h, link, session_id, text("1"), answers)
    send(h, link, session_id, text("2"), answers)
    with pytest.raises(EngineError) as err:
        send(h, link, session_id, text("3"), answers)
    assert err.value.code == "OVERFLOW"
    network.answer(0)
    send(h, link, session_id, text("3"), answers)  # room again
    network.users.clear()  # the user is out of reach now
    network.answer(1)
    with pytest.raises(EngineError) as err:
        send(h, link, session_id, text("4"), answers)
    assert err.value.code == "INVALID_CHANNEL"


def test_a_call_session_takes_no_messages_and_no_network_means_not_configured() -> None:
    h, _ = setup()
    leg, link, agent, call = h.answered_call()
    answers: list[MessageOutcome] = []
    with pytest.raises(EngineError) as err:
        send(h, link, call.session.id, text("x"), answers)
    assert err.value.code == "INVALID_CHANNEL"
    with pytest.raises(ChannelNotConfigured):
        h.engine.create_session(link, "WA", "+33100000000")  # no network reaches it


def test_statuses_reach_the_open_conversation_only() -> None:
    h, _ = setup()
    link = h.link()
    status = {"type": "status", "id": "wamid.1", "status": "delivered"}
    h.engine.messaging.status_in(NUMBER, USER, status)  # no conversation: dropped
    assert link.of("notify") == []
    session_id = inbound(h, "hi").content["sessionId"]
    claim(h, link, session_id)
    h.engine.messaging.status_in(NUMBER, USER, status)
    assert link.of("message")[-1][3] == status
