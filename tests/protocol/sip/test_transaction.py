"""RFC 3261 §17 transactions with a fake clock: every timer, retransmission, match and route."""

from __future__ import annotations

import random
import typing

import pytest

from telcoflow.protocol.sip.errors import SipTransactionError
from telcoflow.protocol.sip.message import (
    Headers,
    SipRequest,
    SipUri,
    make_cancel,
    make_response,
    parse_message,
)
from telcoflow.protocol.sip.transaction import (
    CLIENT_INVITE,
    CLIENT_NON_INVITE,
    SERVER_INVITE,
    SERVER_NON_INVITE,
    AckReceived,
    AckTimeout,
    ClientTransaction,
    Event,
    MalformedMessage,
    RequestReceived,
    ResponseReceived,
    Timer,
    TransactionLayer,
    TransactionTimeout,
    TransportError,
    TwoXXRetransmitter,
    TxInput,
    TxKind,
    TxState,
)

from ._msg_samples import ALL, BARESIP_INVITE, OPTIONS_PING, wire

Addr = tuple[str, int]
PEER: Addr = ("192.0.2.10", 5060)      # the trunk: where we send, where requests come from
NAT: Addr = ("198.51.100.1", 40000)    # a phone behind NAT

# --------------------------------------------------------------------------- helpers

Log = list[tuple[float, list[Event], list[tuple[bytes, Addr]]]]


def run(layer: TransactionLayer, until: float) -> Log:
    """Fire every timer up to ``until`` at its own deadline; what each firing did."""
    log: Log = []
    while (deadline := layer.next_deadline()) is not None and deadline <= until:
        events = layer.handle_timer(deadline)
        log.append((deadline, events, layer.datagrams_to_send()))
    return log


def sends(log: Log) -> list[float]:
    return [t for t, _, out in log for _ in out]


def events_of(log: Log) -> list[tuple[float, Event]]:
    return [(t, e) for t, events, _ in log for e in events]


def our_request(method: str = "INVITE", *, branch: str | None = None, cseq: int = 1,
                call_id: str = "call-1@gw") -> SipRequest:
    """A request the UA core would hand to send_request (no branch: the layer adds one)."""
    via = "SIP/2.0/UDP 203.0.113.5:5060;rport" + (f";branch={branch}" if branch else "")
    headers = Headers([
        ("Via", via), ("Max-Forwards", "70"),
        ("From", "<sip:gateway@203.0.113.5>;tag=gw1"), ("To", "<sip:+15551230000@carrier.net>"),
        ("Call-ID", call_id), ("CSeq", f"{cseq} {method}"),
        ("Contact", "<sip:gateway@203.0.113.5:5060>"), ("Route", "<sip:192.0.2.10;lr>"),
    ])
    return SipRequest(method, SipUri("sip", "+15551230000", "carrier.net"), headers)


def peer_answer(sent: bytes, status: int, to_tag: str | None = "callee") -> bytes:
    """What the peer answers to a datagram we sent."""
    request = parse_message(sent)
    assert isinstance(request, SipRequest)
    return make_response(request, status, to_tag=to_tag).serialize()


def peer_request(method: str = "INVITE", *, branch: str = "z9hG4bKpeer1", cseq: int = 7,
                 via: str | None = None, call_id: str = "peer-call-1") -> bytes:
    """A request from the trunk."""
    via = via or f"SIP/2.0/UDP 192.0.2.10:5060;branch={branch}"
    return (f"{method} sip:agent@203.0.113.5 SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:+15559870000@carrier.net>;tag=peer\r\nTo: <sip:agent@203.0.113.5>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n").encode()


def peer_ack(invite: bytes, final: bytes, *, branch: str | None = None) -> bytes:
    """The peer's ACK: for a 300-699 on the INVITE's branch, for a 2xx on a new one."""
    request = parse_message(invite)
    response = parse_message(final)
    via = request.headers.get("Via") or ""
    if branch is not None:
        via = via.split(";branch=")[0] + f";branch={branch}"
    return (f"ACK sip:agent@203.0.113.5 SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
            f"From: {request.headers.get('From')}\r\nTo: {response.headers.get('To')}\r\n"
            f"Call-ID: {request.call_id}\r\nCSeq: {request.cseq[0]} ACK\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


def received(layer: TransactionLayer, data: bytes, addr: Addr = PEER,
             now: float = 0.0) -> RequestReceived:
    events = layer.receive(data, addr, now)
    assert len(events) == 1 and isinstance(events[0], RequestReceived), events
    return events[0]


def one(layer: TransactionLayer) -> tuple[bytes, Addr]:
    out = layer.datagrams_to_send()
    assert len(out) == 1, out
    return out[0]


def start_invite(layer: TransactionLayer, now: float = 0.0) -> tuple[ClientTransaction, bytes]:
    tx = layer.send_request(our_request(), PEER, now)
    data, addr = one(layer)
    assert addr == PEER
    return tx, data


# --------------------------------------------------------------------------- client INVITE


def test_timer_a_doubles_and_timer_b_times_out_at_32s() -> None:
    layer = TransactionLayer()
    tx, first = start_invite(layer)
    assert tx.kind is TxKind.CLIENT_INVITE and tx.state is TxState.CALLING
    assert tx.branch.startswith("z9hG4bK")
    log = run(layer, 100)
    assert sends(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(data == first for _, _, out in log for data, _ in out)  # byte for byte
    assert events_of(log) == [(32.0, TransactionTimeout(tx, Timer.B))]
    assert tx.state is TxState.TERMINATED
    assert layer.counts() == {"client": 0, "server": 0, "2xx": 0, "heap": 0}
    assert layer.next_deadline() is None


def test_timers_follow_t1() -> None:
    layer = TransactionLayer(t1=0.25)
    start_invite(layer)
    log = run(layer, 100)
    assert sends(log) == [0.25, 0.75, 1.75, 3.75, 7.75, 15.75]
    assert [t for t, _ in events_of(log)] == [16.0]


def test_provisional_stops_retransmission_and_timer_b() -> None:
    layer = TransactionLayer()
    tx, first = start_invite(layer)
    run(layer, 1.0)
    layer.datagrams_to_send()
    events = layer.receive(peer_answer(first, 100, None), PEER, 1.2)
    assert events == [ResponseReceived(tx.last_response, tx)]  # type: ignore[arg-type]
    assert tx.state is TxState.PROCEEDING
    assert run(layer, 1000) == [] and layer.next_deadline() is None
    ringing = layer.receive(peer_answer(first, 180), PEER, 50.0)
    assert isinstance(ringing[0], ResponseReceived) and ringing[0].response.status == 180
    assert tx.state is TxState.PROCEEDING


def test_failure_is_acked_and_retransmissions_absorbed_until_timer_d() -> None:
    layer = TransactionLayer()
    tx, first = start_invite(layer)
    busy = peer_answer(first, 486)
    events = layer.receive(busy, PEER, 2.0)
    assert len(events) == 1 and isinstance(events[0], ResponseReceived)
    assert events[0].response.status == 486 and tx.state is TxState.COMPLETED
    ack_data, addr = one(layer)
    assert addr == PEER
    ack = parse_message(ack_data)
    assert isinstance(ack, SipRequest) and ack.method == "ACK"
    assert ack.uri == tx.request.uri
    assert ack.headers.get_all("Via") == [tx.request.headers.get("Via")]  # same branch
    assert ack.cseq == (1, "ACK") and ack.to.tag == "callee"
    assert ack.headers.get("From") == tx.request.headers.get("From")
    assert ack.headers.get("Route") == "<sip:192.0.2.10;lr>"
    # the 486 again: the same ACK again, nothing for the TU
    assert layer.receive(busy, PEER, 3.0) == []
    assert one(layer) == (ack_data, PEER)
    assert layer.receive(peer_answer(first, 180), PEER, 3.5) == []
    log = run(layer, 100)
    assert [t for t, _, _ in log] == [34.0] and events_of(log) == [] and sends(log) == []
    assert tx.state is TxState.TERMINATED and layer.counts()["client"] == 0
    assert layer.receive(busy, PEER, 35.0) == []  # stray now
    assert layer.datagrams_to_send() == []


def test_timer_d_is_configurable() -> None:
    layer = TransactionLayer(timer_d=40.0)
    _, first = start_invite(layer)
    layer.receive(peer_answer(first, 503), PEER, 1.0)
    assert [t for t, _, _ in run(layer, 100)] == [41.0]


def test_2xx_goes_to_accepted_and_every_2xx_to_the_tu_until_timer_m() -> None:
    layer = TransactionLayer()
    tx, first = start_invite(layer)
    ok = peer_answer(first, 200)
    events = layer.receive(ok, PEER, 1.0)
    assert len(events) == 1 and isinstance(events[0], ResponseReceived)
    assert not events[0].retransmission and tx.state is TxState.ACCEPTED
    assert layer.datagrams_to_send() == []  # the TU ACKs a 2xx, not the transaction
    ack = SipRequest("ACK", SipUri("sip", "+15551230000", "198.51.100.9"), Headers([
        ("Via", "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKack1"),
        ("From", "<sip:gateway@203.0.113.5>;tag=gw1"),
        ("To", "<sip:+15551230000@carrier.net>;tag=callee"), ("Call-ID", "call-1@gw"),
        ("CSeq", "1 ACK")]))
    layer.send_ack_for_2xx(ack, ("198.51.100.9", 5060), tx)
    ack_sent = one(layer)
    # a retransmitted 2xx: to the TU (marked), and the layer re-sends the TU's ACK
    again = layer.receive(ok, PEER, 2.0)
    assert len(again) == 1 and isinstance(again[0], ResponseReceived) and again[0].retransmission
    assert one(layer) == ack_sent
    # a 2xx from another fork: to the TU, not a retransmission, no ACK from the layer
    fork = layer.receive(peer_answer(first, 200, "fork2"), PEER, 3.0)
    assert isinstance(fork[0], ResponseReceived) and not fork[0].retransmission
    assert layer.datagrams_to_send() == []
    assert layer.receive(peer_answer(first, 180), PEER, 3.0) == []  # absorbed
    assert layer.receive(peer_answer(first, 486), PEER, 3.0) == []  # absorbed
    log = run(layer, 100)
    assert [t for t, _, _ in log] == [33.0] and sends(log) == []
    assert tx.state is TxState.TERMINATED and layer.counts()["client"] == 0
    assert layer.receive(ok, PEER, 34.0) == []


def test_2xx_after_provisional() -> None:
    layer = TransactionLayer()
    tx, first = start_invite(layer)
    layer.receive(peer_answer(first, 183), PEER, 0.7)
    layer.receive(peer_answer(first, 200), PEER, 5.0)
    assert tx.state is TxState.ACCEPTED
    assert [t for t, _, _ in run(layer, 100)] == [37.0]


# --------------------------------------------------------------------------- client non-INVITE


def test_timer_e_doubles_to_t2_and_timer_f_times_out() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(our_request("OPTIONS"), PEER, 0.0)
    first = one(layer)[0]
    assert tx.kind is TxKind.CLIENT_NON_INVITE and tx.state is TxState.TRYING
    log = run(layer, 100)
    assert sends(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(data == first for _, _, out in log for data, _ in out)
    assert events_of(log) == [(32.0, TransactionTimeout(tx, Timer.F))]
    assert layer.counts()["client"] == 0


def test_timer_e_is_t2_once_proceeding() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(our_request("BYE"), PEER, 0.0)
    first = one(layer)[0]
    run(layer, 0.6)
    events = layer.receive(peer_answer(first, 100, None), PEER, 0.6)
    assert isinstance(events[0], ResponseReceived) and tx.state is TxState.PROCEEDING
    log = run(layer, 100)
    assert sends(log) == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert events_of(log) == [(32.0, TransactionTimeout(tx, Timer.F))]


def test_non_invite_final_then_timer_k() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(our_request("OPTIONS"), PEER, 0.0)
    first = one(layer)[0]
    ok = peer_answer(first, 200)
    events = layer.receive(ok, PEER, 0.2)
    assert isinstance(events[0], ResponseReceived) and tx.state is TxState.COMPLETED
    assert layer.receive(ok, PEER, 0.3) == []
    assert layer.receive(peer_answer(first, 404), PEER, 0.4) == []
    log = run(layer, 100)
    assert [t for t, _, _ in log] == [5.2] and sends(log) == [] and events_of(log) == []
    assert tx.state is TxState.TERMINATED


def test_non_invite_failure_is_not_acked() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(our_request("REGISTER"), PEER, 0.0)
    events = layer.receive(peer_answer(one(layer)[0], 401), PEER, 0.1)
    assert isinstance(events[0], ResponseReceived) and tx.state is TxState.COMPLETED
    assert layer.datagrams_to_send() == []


# --------------------------------------------------------------------------- server INVITE


def test_duplicate_invite_gets_the_last_provisional_again() -> None:
    layer = TransactionLayer()
    invite = peer_request()
    event = received(layer, invite)
    tx = event.transaction
    assert tx.kind is TxKind.SERVER_INVITE and tx.state is TxState.PROCEEDING
    assert event.addr == PEER and event.invite is None
    assert layer.receive(invite, PEER, 0.5) == []  # nothing to re-send yet
    assert layer.datagrams_to_send() == []
    assert layer.send_response(make_response(tx.request, 100), 0.1) is tx
    trying = one(layer)
    assert layer.receive(invite, PEER, 0.6) == []
    assert one(layer) == trying
    layer.send_response(make_response(tx.request, 180, to_tag="gw"), 1.0)
    ringing = one(layer)
    assert layer.receive(invite, PEER, 1.5) == []
    assert one(layer) == ringing
    assert tx.state is TxState.PROCEEDING and layer.counts()["server"] == 1
    assert run(layer, 1000) == []  # no timer in Proceeding: the UA core answers


def test_failure_response_timer_g_and_timer_h() -> None:
    layer = TransactionLayer()
    tx = received(layer, peer_request()).transaction
    layer.send_response(make_response(tx.request, 486, to_tag="gw"), 0.0)
    busy = one(layer)
    assert tx.state is TxState.COMPLETED
    log = run(layer, 100)
    assert sends(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(item == busy for _, _, out in log for item in out)
    assert events_of(log) == [(32.0, TransactionTimeout(tx, Timer.H))]
    assert layer.counts()["server"] == 0


def test_ack_confirms_then_timer_i() -> None:
    layer = TransactionLayer()
    invite = peer_request()
    tx = received(layer, invite).transaction
    layer.send_response(make_response(tx.request, 603, to_tag="gw"), 0.0)
    decline = one(layer)
    assert sends(run(layer, 2.0)) == [0.5, 1.5]
    assert layer.receive(invite, PEER, 2.0) == []  # INVITE again: the 603 again
    assert one(layer) == decline
    ack = peer_ack(invite, decline[0])
    events = layer.receive(ack, PEER, 2.5)
    assert len(events) == 1 and isinstance(events[0], AckReceived)
    assert events[0].transaction is tx and tx.state is TxState.CONFIRMED
    assert layer.receive(ack, PEER, 3.0) == []  # absorbed
    assert layer.receive(invite, PEER, 3.0) == []  # absorbed too
    log = run(layer, 100)
    assert [t for t, _, _ in log] == [7.5] and sends(log) == [] and events_of(log) == []
    assert tx.state is TxState.TERMINATED and layer.counts()["server"] == 0


def test_2xx_accepted_absorbs_invites_and_is_retransmitted_until_ack() -> None:
    layer = TransactionLayer()
    invite = peer_request()
    tx = received(layer, invite).transaction
    layer.send_response(make_response(tx.request, 180, to_tag="gw"), 0.0)
    layer.datagrams_to_send()
    ok = make_response(tx.request, 200, to_tag="gw")
    layer.send_response(ok, 1.0)
    ok_sent = one(layer)
    assert tx.state is TxState.ACCEPTED
    assert layer.receive(invite, PEER, 1.2) == []  # absorbed: no 180, no 200
    assert layer.datagrams_to_send() == []
    log = run(layer, 5.0)
    assert sends(log) == [1.5, 2.5, 4.5]
    assert all(item == ok_sent for _, _, out in log for item in out)
    ack = peer_ack(invite, ok_sent[0], branch="z9hG4bKack2xx")
    events = layer.receive(ack, PEER, 5.0)
    assert len(events) == 1 and isinstance(events[0], AckReceived)
    assert events[0].transaction is None and events[0].request.method == "ACK"
    log = run(layer, 100)
    assert sends(log) == [] and events_of(log) == [] and [t for t, _, _ in log] == [33.0]
    assert layer.counts() == {"client": 0, "server": 0, "2xx": 0, "heap": 0}


def test_2xx_without_ack_gives_ack_timeout() -> None:
    layer = TransactionLayer()
    tx = received(layer, peer_request()).transaction
    ok = make_response(tx.request, 200, to_tag="gw")
    layer.send_response(ok, 0.0)
    one(layer)
    log = run(layer, 100)
    assert sends(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert events_of(log) == [(32.0, AckTimeout(ok, PEER))]
    assert layer.counts()["2xx"] == 0 and layer.counts()["server"] == 0


def test_tu_resending_2xx_keeps_one_schedule_and_works_after_timer_l() -> None:
    layer = TransactionLayer()
    tx = received(layer, peer_request()).transaction
    ok = make_response(tx.request, 200, to_tag="gw")
    layer.send_response(ok, 0.0)
    layer.send_response(ok, 0.2)  # through the Accepted transaction
    assert len(layer.datagrams_to_send()) == 2 and layer.counts()["2xx"] == 1
    run(layer, 40)
    assert layer.counts()["server"] == 0
    assert layer.send_response(ok, 41.0) is None  # no transaction: sent statelessly
    assert one(layer)[1] == PEER and layer.counts()["2xx"] == 1


def test_ack_reusing_the_invite_branch_in_accepted_reaches_the_tu() -> None:
    layer = TransactionLayer()
    invite = peer_request()
    tx = received(layer, invite).transaction
    layer.send_response(make_response(tx.request, 200, to_tag="gw"), 0.0)
    ok = one(layer)[0]
    events = layer.receive(peer_ack(invite, ok), PEER, 0.3)
    assert events == [AckReceived(events[0].request, PEER, tx)]  # type: ignore[union-attr]
    assert layer.counts()["2xx"] == 0 and run(layer, 10) == []


def test_twoxx_retransmitter_alone() -> None:
    ok = make_response(parse_message(peer_request()), 200, to_tag="gw")  # type: ignore[arg-type]
    schedule = TwoXXRetransmitter(ok, b"200", PEER, 10.0, t1=0.5, t2=4.0)
    times = []
    while (deadline := schedule.next_deadline()) is not None:
        times += [deadline] * len(schedule.handle_timer(deadline))
    assert times == [10.5, 11.5, 13.5, 17.5, 21.5, 25.5, 29.5, 33.5, 37.5, 41.5]
    assert schedule.timed_out and schedule.done
    stopped = TwoXXRetransmitter(ok, b"200", PEER, 0.0)
    stopped.stop()
    assert stopped.next_deadline() is None and not stopped.timed_out
    assert TwoXXRetransmitter(ok, b"200", PEER, 0.0).handle_timer(20.0) == [(b"200", PEER)] * 7


# --------------------------------------------------------------------------- server non-INVITE


def test_server_non_invite_absorbs_then_answers_with_the_last_response() -> None:
    layer = TransactionLayer()
    options = wire(OPTIONS_PING)
    source = ("198.51.100.7", 5060)
    tx = received(layer, options, source).transaction
    assert tx.kind is TxKind.SERVER_NON_INVITE and tx.state is TxState.TRYING
    assert layer.receive(options, source, 0.1) == [] and layer.datagrams_to_send() == []
    layer.send_response(make_response(tx.request, 100), 0.2)
    trying = one(layer)
    assert tx.state is TxState.PROCEEDING
    assert layer.receive(options, source, 0.3) == [] and one(layer) == trying
    layer.send_response(make_response(tx.request, 200, to_tag="gw"), 0.4)
    ok = one(layer)
    assert tx.state is TxState.COMPLETED
    assert layer.receive(options, source, 1.0) == [] and one(layer) == ok
    log = run(layer, 100)
    assert [t for t, _, _ in log] == [32.4] and sends(log) == []
    assert layer.counts()["server"] == 0
    again = layer.receive(options, source, 33.0)  # after Timer J: a new transaction
    assert isinstance(again[0], RequestReceived) and again[0].transaction is not tx


# --------------------------------------------------------------------------- CANCEL


def test_cancel_is_its_own_transaction_and_finds_its_invite() -> None:
    layer = TransactionLayer()
    invite = peer_request()
    invite_tx = received(layer, invite).transaction
    cancel = peer_request("CANCEL", cseq=7)
    event = received(layer, cancel, now=1.0)
    assert event.invite is invite_tx and event.transaction is not invite_tx
    assert event.transaction.kind is TxKind.SERVER_NON_INVITE
    assert layer.matching_invite(event.request) is invite_tx
    other = received(layer, peer_request("CANCEL", branch="z9hG4bKother"), now=1.0)
    assert other.invite is None and layer.matching_invite(other.request) is None
    elsewhere = peer_request("CANCEL", via="SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKpeer1")
    assert received(layer, elsewhere, now=1.0).invite is None  # another sent-by
    layer.send_response(make_response(event.request, 200, to_tag="gw"), 1.0)
    layer.send_response(make_response(invite_tx.request, 487, to_tag="gw"), 1.0)
    out = [parse_message(d) for d, _ in layer.datagrams_to_send()]
    assert [(m.status, m.cseq) for m in out] == [  # type: ignore[union-attr]
        (200, (7, "CANCEL")), (487, (7, "INVITE"))]
    ack = peer_ack(invite, out[1].serialize())
    events = layer.receive(ack, PEER, 1.1)
    assert isinstance(events[0], AckReceived) and events[0].transaction is invite_tx


def test_client_cancel_keeps_the_branch_and_both_are_matched() -> None:
    layer = TransactionLayer()
    invite_tx, first = start_invite(layer)
    layer.receive(peer_answer(first, 180), PEER, 1.0)
    cancel_tx = layer.send_request(make_cancel(invite_tx.request), PEER, 2.0)
    cancel_data = one(layer)[0]
    assert cancel_tx.branch == invite_tx.branch and cancel_tx is not invite_tx
    assert cancel_tx.kind is TxKind.CLIENT_NON_INVITE
    events = layer.receive(peer_answer(cancel_data, 200), PEER, 2.1)
    assert [e.transaction for e in events] == [cancel_tx]  # type: ignore[union-attr]
    events = layer.receive(peer_answer(first, 487), PEER, 2.2)
    assert [e.transaction for e in events] == [invite_tx]  # type: ignore[union-attr]
    assert parse_message(one(layer)[0]).cseq == (1, "ACK")
    assert invite_tx.state is TxState.COMPLETED and Timer.CANCEL not in invite_tx.timers()


def test_cancel_guard_ends_an_invite_that_never_gets_a_final_response() -> None:
    layer = TransactionLayer()
    invite_tx, first = start_invite(layer)
    layer.receive(peer_answer(first, 180), PEER, 1.0)
    cancel_tx = layer.send_request(make_cancel(invite_tx.request), PEER, 5.0)
    layer.receive(peer_answer(one(layer)[0], 200), PEER, 5.1)
    log = run(layer, 100)
    assert events_of(log) == [(37.0, TransactionTimeout(invite_tx, Timer.CANCEL))]
    assert invite_tx.terminated and cancel_tx.terminated
    assert layer.counts() == {"client": 0, "server": 0, "2xx": 0, "heap": 0}


# --------------------------------------------------------------------------- response routing


@pytest.mark.parametrize("via, source, address, stamped", [
    # rport: the source address and port, received added even when the host is the same
    ("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport", NAT, NAT,
     "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport=40000;received=198.51.100.1"),
    ("SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK1;rport", NAT, NAT,
     "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK1;rport=40000;received=198.51.100.1"),
    # no rport: received when the host differs, the Via's port (or 5060)
    ("SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1", NAT, ("198.51.100.1", 5070),
     "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1;received=198.51.100.1"),
    ("SIP/2.0/UDP phone.example.com;branch=z9hG4bK1", NAT, ("198.51.100.1", 5060),
     "SIP/2.0/UDP phone.example.com;branch=z9hG4bK1;received=198.51.100.1"),
    ("SIP/2.0/UDP 198.51.100.1:5062;branch=z9hG4bK1", NAT, ("198.51.100.1", 5062),
     "SIP/2.0/UDP 198.51.100.1:5062;branch=z9hG4bK1"),
    ("SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;rport", ("2001:db8::2", 6000),
     ("2001:db8::2", 6000), "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;rport=6000;"
     "received=2001:db8::2"),
    ("SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1", ("2001:0db8:0::1", 6000),
     ("2001:db8::1", 5060), "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1"),
])
def test_responses_go_where_18_2_2_and_rfc_3581_say(via: str, source: Addr, address: Addr,
                                                    stamped: str) -> None:
    layer = TransactionLayer()
    event = received(layer, peer_request("OPTIONS", via=via), source)
    assert event.request.headers.get("Via") == stamped
    assert event.transaction.addr == address and event.transaction.source == source
    layer.send_response(make_response(event.request, 200, to_tag="gw"), 0.0)
    data, addr = one(layer)
    assert addr == address
    assert parse_message(data).headers.get("Via") == stamped


def test_baresip_behind_nat_gets_its_answer_at_the_nat_port() -> None:
    layer = TransactionLayer()
    event = received(layer, wire(BARESIP_INVITE), NAT)
    layer.send_response(make_response(event.request, 180, to_tag="gw"), 0.0)
    assert one(layer)[1] == NAT
    assert event.request.top_via.rport == 40000 and event.request.top_via.received == NAT[0]


# --------------------------------------------------------------------------- matching


def test_requests_match_on_branch_sent_by_and_method() -> None:
    layer = TransactionLayer()
    a = received(layer, peer_request()).transaction
    b = received(layer, peer_request(branch="z9hG4bKpeer2")).transaction
    c = received(layer, peer_request(via="SIP/2.0/UDP 192.0.2.11:5060;branch=z9hG4bKpeer1")
                 ).transaction
    d = received(layer, peer_request("OPTIONS")).transaction
    e = received(layer, peer_request(via="SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKpeer1")
                 ).transaction
    assert len({id(t) for t in (a, b, c, d, e)}) == 5 and layer.counts()["server"] == 5
    # sent-by host case and the default port do not make a new transaction
    assert layer.receive(peer_request(via="SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKpeer1"),
                         PEER, 0.1) == []


def test_responses_match_on_branch_and_cseq_method() -> None:
    layer = TransactionLayer()
    tx, first = start_invite(layer)
    request = parse_message(first)
    assert isinstance(request, SipRequest)
    wrong_method = make_response(request, 200, to_tag="x")
    wrong_method.headers.set("CSeq", "1 BYE")
    assert layer.receive(wrong_method.serialize(), PEER, 0.1) == []
    two_vias = make_response(request, 200, to_tag="x")
    two_vias.headers.add("Via", "SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKzz")
    assert layer.receive(two_vias.serialize(), PEER, 0.1) == []
    other_branch = make_response(request, 200, to_tag="x")
    other_branch.headers.set("Via", "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKnot")
    assert layer.receive(other_branch.serialize(), PEER, 0.1) == []
    assert tx.state is TxState.CALLING and layer.datagrams_to_send() == []


def test_rfc2543_requests_are_answered_400_and_their_acks_dropped() -> None:
    layer = TransactionLayer()
    old = peer_request(via="SIP/2.0/UDP 192.0.2.10:5060;branch=1234")
    events = layer.receive(old, PEER, 0.0)
    assert len(events) == 1 and isinstance(events[0], MalformedMessage)
    assert events[0].response is not None and events[0].response.status == 400
    assert "RFC 2543" in events[0].response.reason
    data, addr = one(layer)
    assert addr == PEER and data == events[0].response.serialize()
    no_branch = peer_request("ACK", via="SIP/2.0/UDP 192.0.2.10:5060")
    assert layer.receive(no_branch, PEER, 0.0) == [] and layer.datagrams_to_send() == []
    assert layer.counts()["server"] == 0


def test_one_message_per_datagram() -> None:
    layer = TransactionLayer()
    two = peer_request() + peer_request(branch="z9hG4bKsecond")
    event = received(layer, two)
    assert event.request.body == b"" and layer.counts()["server"] == 1


# --------------------------------------------------------------------------- malformed input


def test_malformed_request_is_answered_with_its_specific_reason() -> None:
    layer = TransactionLayer()
    bad = peer_request("OPTIONS", via="SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKbad;rport").replace(
        b"Content-Length: 0", b"Content-Length: 20")
    events = layer.receive(bad, NAT, 0.0)
    assert len(events) == 1 and isinstance(events[0], MalformedMessage)
    event = events[0]
    assert event.data == bad and event.addr == NAT and event.error.status == 400
    assert event.response is not None
    assert event.response.reason == "Content-Length says 20 bytes but 0 follow"
    data, addr = one(layer)
    assert addr == NAT and data == event.response.serialize()
    answer = parse_message(data)
    assert answer.top_via.rport == 40000 and answer.cseq == (7, "OPTIONS")
    assert layer.counts()["server"] == 0


@pytest.mark.parametrize("old, new, status", [
    (b"SIP/2.0\r\nVia", b"SIP/2.1\r\nVia", 505),
    (b"INVITE sip:agent@203.0.113.5", b"INVITE mailto:agent@example.com", 416),
])
def test_malformed_request_statuses(old: bytes, new: bytes, status: int) -> None:
    layer = TransactionLayer()
    events = layer.receive(peer_request().replace(old, new), PEER, 0.0)
    assert isinstance(events[0], MalformedMessage) and events[0].error.status == status
    assert parse_message(one(layer)[0]).status == status  # type: ignore[union-attr]


def test_a_malformed_request_is_answered_with_a_to_tag_its_retransmission_gets_again() -> None:
    """§8.2.6.2: every final response carries a To tag; §8.2.7: a stateless one makes it
    from the request, so the retransmitted request is answered alike."""
    layer = TransactionLayer()
    bad = peer_request().replace(b"Content-Length: 0", b"Content-Length: 5")
    answers = []
    for _ in range(2):
        layer.receive(bad, PEER, 0.0)
        answers.append(parse_message(one(layer)[0]))
    tags = {answer.to.tag for answer in answers}
    assert len(tags) == 1 and None not in tags
    other = peer_request(branch="z9hG4bKpeer2").replace(b"Content-Length: 0",
                                                       b"Content-Length: 5")
    layer.receive(other, PEER, 0.0)
    assert parse_message(one(layer)[0]).to.tag not in tags


@pytest.mark.parametrize("missing", [b"Call-ID: peer-call-1\r\n",
                                     b"From: <sip:+15559870000@carrier.net>;tag=peer\r\n",
                                     b"To: <sip:agent@203.0.113.5>\r\n"])
def test_a_request_without_call_id_from_or_to_is_answered_400(missing: bytes) -> None:
    """RFC 4475 §3.1.2.18: ideally 400. The Via takes the answer back and its branch
    and CSeq method match it to the sender's transaction (§17.1.3)."""
    layer = TransactionLayer()
    events = layer.receive(peer_request().replace(missing, b""), PEER, 0.0)
    assert len(events) == 1 and isinstance(events[0], MalformedMessage)
    data, addr = one(layer)
    name = missing.split(b":")[0].decode()
    assert addr == PEER and f"400 the message has no {name} header".encode() in data
    assert b"branch=z9hG4bKpeer1" in data and b"CSeq: 7 INVITE" in data
    assert f"\r\n{name}:".encode() not in data
    assert layer.counts()["server"] == 0


@pytest.mark.parametrize("data", [
    peer_request().replace(b"CSeq: 7 INVITE\r\n", b""),        # cannot be matched by the peer
    peer_request().replace(b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKpeer1\r\n",
                           b""),                                # cannot reach the peer
    peer_request("ACK").replace(b"Content-Length: 0", b"Content-Length: 9"),  # never answered
    peer_request().replace(b"CSeq: 7 INVITE", b"CSeq: seven INVITE"),
    peer_answer(peer_request(), 200).replace(b"Content-Length: 0", b"Content-Length: 3"),
    b"\x80\x00\x00\x01 RTP on the SIP port",
    b"\x00\x01\x00\x00\x21\x12\xa4\x42 STUN binding request",
])
def test_unanswerable_junk_is_reported_not_answered(data: bytes) -> None:
    layer = TransactionLayer()
    events = layer.receive(data, PEER, 0.0)
    assert len(events) == 1 and isinstance(events[0], MalformedMessage)
    assert events[0].response is None and layer.datagrams_to_send() == []


def test_answer_malformed_can_be_turned_off() -> None:
    layer = TransactionLayer(answer_malformed=False)
    events = layer.receive(peer_request().replace(b"SIP/2.0\r\nVia", b"SIP/3.0\r\nVia"), PEER,
                           0.0)
    assert isinstance(events[0], MalformedMessage) and events[0].response is None
    assert layer.datagrams_to_send() == []


@pytest.mark.parametrize("data", [b"\r\n\r\n", b"\r\n", b" ", b""])
def test_keep_alives_are_ignored(data: bytes) -> None:
    layer = TransactionLayer()
    assert layer.receive(data, PEER, 0.0) == [] and layer.datagrams_to_send() == []


# --------------------------------------------------------------------------- the TU's mistakes


def test_tu_mistakes_raise_named_refusals() -> None:
    layer = TransactionLayer()
    tx = received(layer, peer_request()).transaction
    layer.send_response(make_response(tx.request, 486, to_tag="gw"), 0.0)
    with pytest.raises(SipTransactionError) as info:
        layer.send_response(make_response(tx.request, 200, to_tag="gw"), 0.1)
    assert info.value.code == "TRANSACTION_COMPLETED"
    accepted = received(layer, peer_request(branch="z9hG4bKacc")).transaction
    layer.send_response(make_response(accepted.request, 200, to_tag="gw"), 0.0)
    for status in (180, 486):
        with pytest.raises(SipTransactionError) as info:
            layer.send_response(make_response(accepted.request, status, to_tag="gw"), 0.1)
        assert info.value.code == "ALREADY_ACCEPTED"
    stranger = make_response(parse_message(peer_request("BYE", branch="z9hG4bKnone")),  # type: ignore[arg-type]
                             200)
    with pytest.raises(SipTransactionError) as info:
        layer.send_response(stranger, 0.1)
    assert info.value.code == "NO_TRANSACTION"
    with pytest.raises(SipTransactionError) as info:
        layer.send_request(our_request("ACK"), PEER, 0.0)
    assert info.value.code == "ACK_NOT_A_TRANSACTION"
    layer.send_request(our_request(branch="z9hG4bKmine"), PEER, 0.0)
    with pytest.raises(SipTransactionError) as info:
        layer.send_request(our_request(branch="z9hG4bKmine"), PEER, 0.0)
    assert info.value.code == "BRANCH_IN_USE"
    no_via = our_request()
    no_via.headers.remove("Via")
    with pytest.raises(SipTransactionError) as info:
        layer.send_request(no_via, PEER, 0.0)
    assert info.value.code == "NO_VIA"
    with pytest.raises(SipTransactionError):
        layer.send_ack_for_2xx(our_request("BYE"), PEER)
    with pytest.raises(SipTransactionError):
        layer.send_stateless(our_request("BYE"))
    with pytest.raises(ValueError):
        TransactionLayer(t1=5, t2=4)


def test_send_request_adds_a_branch_only_when_missing() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(our_request(), PEER, 0.0)
    sent = parse_message(one(layer)[0])
    assert sent.top_via.branch == tx.branch and tx.branch.startswith("z9hG4bK")
    assert sent.top_via.params == {"rport": None, "branch": tx.branch}
    mine = layer.send_request(our_request("OPTIONS", branch="z9hG4bKkept"), PEER, 0.0)
    assert mine.branch == "z9hG4bKkept"


def test_send_stateless() -> None:
    layer = TransactionLayer()
    request = parse_message(peer_request("OPTIONS", via="SIP/2.0/UDP 10.1.1.1:5070;"
                                         "branch=z9hG4bKs;received=192.0.2.7"))
    assert isinstance(request, SipRequest)
    response = make_response(request, 200)
    layer.send_stateless(response)
    layer.send_stateless(b"raw", ("192.0.2.8", 9))
    layer.send_stateless(our_request("ACK"), PEER)
    out = layer.datagrams_to_send()
    assert [a for _, a in out] == [("192.0.2.7", 5070), ("192.0.2.8", 9), PEER]
    assert out[0][0] == response.serialize() and out[1][0] == b"raw"


# ------------------------------------------------------------------ transport errors, terminate


def test_transport_error_ends_what_sends_there() -> None:
    layer = TransactionLayer()
    calling = layer.send_request(our_request(), PEER, 0.0)
    proceeding, first = layer.send_request(our_request(call_id="c2"), PEER, 0.0), b""
    first = layer.datagrams_to_send()[1][0]
    layer.receive(peer_answer(first, 180), PEER, 0.1)
    elsewhere = layer.send_request(our_request("OPTIONS"), ("192.0.2.99", 5060), 0.0)
    server = received(layer, peer_request()).transaction
    events = layer.transport_error(PEER, 0.2)
    assert events == [TransportError(calling, PEER), TransportError(server, PEER)]
    assert calling.terminated and server.terminated
    assert proceeding.state is TxState.PROCEEDING and elsewhere.state is TxState.TRYING


def test_terminate_drops_a_transaction_without_an_event() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(our_request(), PEER, 0.0)
    server = received(layer, peer_request()).transaction
    layer.terminate(tx)
    layer.terminate(server)
    layer.terminate(tx)  # again: nothing
    assert tx.terminated and server.terminated and run(layer, 100) == []
    assert layer.counts() == {"client": 0, "server": 0, "2xx": 0, "heap": 0}


# --------------------------------------------------------------------------- time


def test_a_late_handle_timer_catches_up_in_deadline_order() -> None:
    layer = TransactionLayer()
    start_invite(layer)
    layer.send_request(our_request("OPTIONS"), PEER, 0.0)
    layer.datagrams_to_send()
    assert layer.handle_timer(8.0) == []
    assert len(layer.datagrams_to_send()) == 4 + 4  # A and E, each at .5 1.5 3.5 7.5
    assert layer.next_deadline() == 11.5
    assert layer.handle_timer(0.0) == []  # nothing due: nothing happens


def test_next_deadline_skips_cancelled_timers() -> None:
    layer = TransactionLayer()
    assert layer.next_deadline() is None
    _, first = start_invite(layer)
    assert layer.next_deadline() == 0.5
    layer.receive(peer_answer(first, 180), PEER, 0.1)
    assert layer.next_deadline() is None and layer.counts()["heap"] == 0


def test_memory_is_bounded() -> None:
    """Thousands of transactions of every kind come and go; nothing is left behind."""
    layer = TransactionLayer()
    rng = random.Random(5)
    now = 0.0
    peak_heap = 0
    for i in range(600):
        now += rng.random() * 0.2
        tx = layer.send_request(our_request(rng.choice(["INVITE", "OPTIONS"]), call_id=f"c{i}"),
                                PEER, now)
        sent = layer.datagrams_to_send()[-1][0]
        status = rng.choice([100, 180, 200, 486])
        layer.receive(peer_answer(sent, status), PEER, now + 0.05)
        if status < 200:
            layer.receive(peer_answer(sent, 603), PEER, now + 0.1)
        invite = peer_request(branch=f"z9hG4bKp{i}", call_id=f"p{i}")
        server = received(layer, invite, now=now).transaction
        final = make_response(server.request, rng.choice([200, 404]), to_tag="gw")
        layer.send_response(final, now + 0.1)
        if rng.random() < 0.7:
            layer.receive(peer_ack(invite, final.serialize(),
                                   branch=None if final.status >= 300 else f"z9hG4bKa{i}"),
                          PEER, now + 0.2)
        layer.handle_timer(now)
        layer.datagrams_to_send()
        peak_heap = max(peak_heap, layer.counts()["heap"])
        assert not tx.terminated or tx.key not in layer._client
    live = layer.counts()
    assert live["client"] > 0 and live["server"] > 0
    layer.handle_timer(now + 1000)
    assert layer.counts() == {"client": 0, "server": 0, "2xx": 0, "heap": 0}
    assert layer.datagrams_to_send() != [] and peak_heap < 4 * 3 * 600


def test_stale_heap_entries_are_compacted() -> None:
    layer = TransactionLayer()
    for i in range(3000):  # each INVITE gets a 180 at once: A and B become stale entries
        layer.send_request(our_request(call_id=f"c{i}"), PEER, 0.0)
        layer.receive(peer_answer(layer.datagrams_to_send()[0][0], 180), PEER, 0.0)
    for i in range(1000):  # each OPTIONS answered at once: E, F stale and K live
        layer.send_request(our_request("OPTIONS", call_id=f"o{i}"), PEER, 0.0)
        layer.receive(peer_answer(layer.datagrams_to_send()[0][0], 200), PEER, 0.0)
    live = sum(len(tx.timers()) for tx in layer._client.values())
    assert live == 1000 and layer.counts()["client"] == 4000
    assert layer.counts()["heap"] <= 4 * live + 256  # not the 9000 entries ever pushed


# --------------------------------------------------------------------------- the tables


@pytest.mark.parametrize("table, start", [
    (CLIENT_INVITE, TxState.CALLING), (CLIENT_NON_INVITE, TxState.TRYING),
    (SERVER_INVITE, TxState.PROCEEDING), (SERVER_NON_INVITE, TxState.TRYING),
])
def test_every_state_is_reachable_and_can_end(table: object, start: TxState) -> None:
    transitions = table.transitions  # type: ignore[attr-defined]
    reachable = {start}
    while True:
        more = {to for (state, _), to in transitions.items() if state in reachable} - reachable
        if not more:
            break
        reachable |= more
    assert TxState.TERMINATED in reachable
    ending = {TxState.TERMINATED}  # the states that end without the TU abandoning them
    while True:
        more = {s for (s, i), to in transitions.items()
                if to in ending and i is not TxInput.ABANDON} - ending
        if not more:
            break
        ending |= more
    assert reachable <= ending
    for state in reachable - {TxState.TERMINATED}:
        assert (state, TxInput.ABANDON) in transitions
    assert not any(s is TxState.TERMINATED for s, _ in transitions)


# --------------------------------------------------------------------------- junk never raises


def test_junk_and_mutations_never_raise() -> None:
    rng = random.Random(11)
    layer = TransactionLayer()
    invite = peer_request()
    samples = [wire(text) for text in ALL.values()] + [invite, peer_answer(invite, 200)]
    tx, first = start_invite(layer)
    samples += [peer_answer(first, 180), peer_answer(first, 486), peer_answer(first, 200)]
    now = 0.0
    for i in range(3000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(0, 4)):
            pos = rng.randrange(len(data) + 1)
            if rng.random() < 0.5:
                data[pos:pos + rng.randint(1, 4)] = rng.randbytes(rng.randint(0, 4))
            else:
                del data[pos:]
        now += 0.01
        source = rng.choice([PEER, NAT, ("2001:db8::5", 5060)])
        for event in layer.receive(bytes(data), source, now):
            if isinstance(event, RequestReceived) and rng.random() < 0.5:
                status = rng.choice([100, 180, 200, 486])
                layer.send_response(make_response(event.request, status, to_tag="gw"), now)
        layer.handle_timer(now)
        layer.datagrams_to_send()
        if i % 500 == 0:
            tx, first = start_invite(layer, now)
    layer.handle_timer(now + 1000)
    assert layer.counts()["client"] == 0 and layer.counts()["2xx"] == 0


def test_event_union_lists_every_event() -> None:
    assert set(typing.get_args(Event)) == {
        RequestReceived, AckReceived, ResponseReceived, TransactionTimeout, TransportError,
        MalformedMessage, AckTimeout}
