"""RFC 3261 §17 transactions over UDP, sans-I/O and given the time (with RFC 6026 and RFC 3581).

The layer is fed datagrams and the time and hands back events and datagrams,
the way aioquic's connection is driven::

    layer = TransactionLayer()
    events = layer.receive(data, addr, now)        # a datagram arrived
    events += layer.handle_timer(now)              # when now >= layer.next_deadline()
    tx = layer.send_request(request, addr, now)    # the UA core starts a client transaction
    layer.send_response(response, now)             # … or answers through a server transaction
    for data, addr in layer.datagrams_to_send(): sock.sendto(data, addr)
    # then re-arm the one timer at layer.next_deadline()

After every call the I/O layer sends what :meth:`TransactionLayer.datagrams_to_send`
returns and re-arms its single timer at :meth:`TransactionLayer.next_deadline`.

The four machines
-----------------
Each is a table on :class:`telcoflow.fsm.Table` (``CLIENT_INVITE`` …, below);
the code next to it does the actions (send, retransmit, start a timer, tell
the TU). With T1 = 0.5 s, T2 = 4 s, T4 = 5 s (all given to the constructor):

================  ===========================================================================
client INVITE     Calling: request re-sent by Timer A (T1, doubling, no cap: 0, .5, 1.5, 3.5,
                  7.5, 15.5, 31.5 s); Timer B (64·T1) → :class:`TransactionTimeout`. 1xx →
                  Proceeding (no more retransmissions). 300-699 → Completed: the layer builds
                  and sends the ACK (same branch, §17.1.1.3) and re-sends it for every
                  retransmitted final response, which the TU does not see again; Timer D
                  (32 s). 2xx → Accepted (RFC 6026), Timer M (64·T1): every 2xx, forks and
                  retransmissions too, goes to the TU, which ACKs it (see
                  :meth:`TransactionLayer.send_ack_for_2xx`).
client non-INV.   Trying: Timer E (T1 doubling up to T2), Timer F (64·T1) → timeout. 1xx →
                  Proceeding (E re-sends every T2). 200-699 → Completed, Timer K (T4), later
                  responses absorbed.
server INVITE     Proceeding: a retransmitted INVITE gets the last provisional response again
                  (none is sent for the TU: it sends 100 Trying itself if it will not answer
                  within 200 ms, §17.2.1). 300-699 from the TU → Completed: Timer G
                  re-sends it (T1 doubling up to T2), each retransmitted INVITE gets it too,
                  Timer H (64·T1) → :class:`TransactionTimeout` (no ACK); the ACK →
                  Confirmed (reported as :class:`AckReceived`), Timer I (T4) absorbs later
                  ACKs. 2xx from the TU → Accepted (RFC 6026), Timer L (64·T1) absorbs
                  retransmitted INVITEs; the layer re-sends the 2xx itself (below).
server non-INV.   Trying (retransmissions absorbed) → 1xx → Proceeding (retransmissions get
                  the 1xx) → 200-699 → Completed: retransmissions get the final response,
                  Timer J (64·T1).
================  ===========================================================================

The 2xx to an INVITE (RFC 3261 §13.3.1.4)
------------------------------------------
A UAS re-sends its 2xx until the ACK comes, which has its own branch and so
matches no transaction. The layer does this for the UA core: every 2xx to an
INVITE passed to :meth:`~TransactionLayer.send_response` is re-sent at T1, 2·T1
… capped at T2, until an ACK with the same Call-ID, CSeq number, From tag and
To tag arrives (reported as :class:`AckReceived` with ``transaction=None``) or
64·T1 pass (reported as :class:`AckTimeout`; the UA core then ends the dialog
with BYE). A 2xx the TU sends again is sent once more, keeping the schedule;
a 2xx sent after Timer L ended its transaction is sent and retransmitted the
same way. :class:`TwoXXRetransmitter` is that schedule.

Matching (§17.1.3, §17.2.3)
---------------------------
- A response matches the client transaction with its top Via branch and its
  CSeq method. Responses with more than one Via (§8.1.3.3) and responses
  matching no transaction (RFC 6026 §7.2) are dropped.
- A request matches the server transaction with its top Via branch, sent-by
  (host case-insensitive, default port by transport) and method, an ACK
  matching the INVITE's. A CANCEL is its own non-INVITE server transaction;
  :meth:`~TransactionLayer.matching_invite` (and ``RequestReceived.invite``)
  give the INVITE transaction it cancels (§9.2).
- RFC 2543 requests (a top Via branch without the ``z9hG4bK`` cookie) are not
  matched the old way: they are answered ``400`` (reported as
  :class:`MalformedMessage`), an ACK without the cookie is dropped. Every
  RFC 3261 peer sends the cookie; the old rules would cost a second matching
  path for peers that no longer exist.

Responses go where §18.2.2 and RFC 3581 say: every request's top Via is
stamped on arrival with ``received=<source IP>`` when its sent-by host is not
that IP, and ``rport=<source port>`` (plus ``received``) when it asked for
rport; the UA core's :func:`~.message.make_response` copies the stamped Via,
and the layer sends to ``received`` at ``rport`` (else the Via port, else
5060). ``maddr`` is not honoured.

Malformed datagrams
-------------------
Whitespace-only datagrams (RFC 5626 keep-alives) are ignored. Anything else
:func:`~.message.parse_message` refuses becomes a :class:`MalformedMessage`;
if it is a request whose Via and CSeq can still be read
(:func:`~.message.salvage_request`), and it is not an ACK, the layer answers it
statelessly with the error's status (400, 505, 416, 513) and its sentence as the
reason phrase (§21.4.1), and puts that response in the event. The answer copies
From, To and Call-ID where they can be read (a request lacking one is told so,
RFC 4475 §3.1.2.18) and adds a To tag derived from the request, the same for
its retransmissions (§8.2.7). Otherwise nothing is sent: without a Via no
answer can reach the sender, without a CSeq it could not match it to its
request (§17.1.3). The ACK a client sends for such a 400 (to an INVITE) matches no
transaction and reaches the TU as an :class:`AckReceived` with no transaction,
like any ACK the TU knows nothing about.

Timers, time and memory
-----------------------
Timers are data: each transaction keeps its deadlines by name and one heap
orders them all (O(log n) per timer; cancelled ones are skipped when they
surface, and the heap is rebuilt when stale entries outnumber live ones 3 to
1). A late :meth:`~TransactionLayer.handle_timer` catches up: each timer fires
as if at its deadline, and the next one is counted from there. A transaction
leaves the layer when it terminates. What the layer cannot end alone, the UA
core must: a server transaction it never answers, a client INVITE stuck in
Proceeding. For the latter, sending a CANCEL (same branch) arms a guard: if
the INVITE has no final response 64·T1 later (§9.1), it terminates with
:class:`TransactionTimeout` (``timer=Timer.CANCEL``); :meth:`~TransactionLayer.terminate`
drops any transaction at once.

The TU's mistakes (a response no server transaction matches, a second final
response, an ACK sent as a transaction, a branch used twice) raise
:class:`~.errors.SipTransactionError`; the tables name the refused ones.
"""

from __future__ import annotations

import hashlib
import heapq
import ipaddress
import itertools
import logging
from dataclasses import dataclass
from enum import StrEnum

from ...fsm import Table
from .errors import SipError, SipParseError, SipTransactionError
from .message import (
    MAGIC_COOKIE,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_MESSAGE_SIZE,
    Addr,
    Headers,
    SipRequest,
    SipResponse,
    make_response,
    new_branch,
    parse_message,
    salvage_request,
)

__all__ = [
    "TxKind", "TxState", "TxInput", "TxKey", "Timer", "Transaction", "ClientTransaction",
    "ServerTransaction", "TransactionLayer", "TwoXXRetransmitter", "Event", "RequestReceived",
    "AckReceived", "ResponseReceived", "TransactionTimeout", "TransportError",
    "MalformedMessage", "AckTimeout", "CLIENT_INVITE", "CLIENT_NON_INVITE", "SERVER_INVITE",
    "SERVER_NON_INVITE",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


class TxKind(StrEnum):
    CLIENT_INVITE = "client INVITE transaction"
    CLIENT_NON_INVITE = "client non-INVITE transaction"
    SERVER_INVITE = "server INVITE transaction"
    SERVER_NON_INVITE = "server non-INVITE transaction"


class TxState(StrEnum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class TxInput(StrEnum):
    RECV_1XX = "a 1xx arrives"
    RECV_2XX = "a 2xx arrives"
    RECV_FAILURE = "a 300-699 arrives"
    RECV_REQUEST = "the request arrives again"
    RECV_ACK = "an ACK arrives"
    SEND_1XX = "the TU sends a 1xx"
    SEND_2XX = "the TU sends a 2xx"
    SEND_FAILURE = "the TU sends a 300-699"
    TIMER_A = "Timer A fires"
    TIMER_B = "Timer B fires"
    TIMER_D = "Timer D fires"
    TIMER_E = "Timer E fires"
    TIMER_F = "Timer F fires"
    TIMER_G = "Timer G fires"
    TIMER_H = "Timer H fires"
    TIMER_I = "Timer I fires"
    TIMER_J = "Timer J fires"
    TIMER_K = "Timer K fires"
    TIMER_L = "Timer L fires"
    TIMER_M = "Timer M fires"
    TIMER_CANCEL = "the CANCEL guard fires"
    TRANSPORT_ERROR = "the transport fails"
    ABANDON = "the TU abandons it"


class Timer(StrEnum):
    """Timer names: RFC 3261's letters, the CANCEL guard, and the 2xx retransmission pair."""

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - RFC 3261's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"
    CANCEL = "CANCEL"
    RETRANSMIT_2XX = "2xx retransmit"
    ACK_WAIT = "2xx ACK wait"


_TIMER_INPUT = {
    Timer.A: TxInput.TIMER_A, Timer.B: TxInput.TIMER_B, Timer.D: TxInput.TIMER_D,
    Timer.E: TxInput.TIMER_E, Timer.F: TxInput.TIMER_F, Timer.G: TxInput.TIMER_G,
    Timer.H: TxInput.TIMER_H, Timer.I: TxInput.TIMER_I, Timer.J: TxInput.TIMER_J,
    Timer.K: TxInput.TIMER_K, Timer.L: TxInput.TIMER_L, Timer.M: TxInput.TIMER_M,
    Timer.CANCEL: TxInput.TIMER_CANCEL,
}
_TIMEOUTS = frozenset({Timer.B, Timer.F, Timer.H, Timer.CANCEL})

# --------------------------------------------------------------------------- the tables

_S, _I = TxState, TxInput
_ALIVE = (_S.CALLING, _S.TRYING, _S.PROCEEDING, _S.COMPLETED, _S.CONFIRMED, _S.ACCEPTED)


def _abandon(*states: TxState) -> dict[tuple[TxState, TxInput], TxState]:
    return {(state, _I.ABANDON): _S.TERMINATED for state in states}


CLIENT_INVITE_TRANSITIONS: dict[tuple[TxState, TxInput], TxState] = {
    (_S.CALLING, _I.TIMER_A): _S.CALLING,                   # re-send, double A
    (_S.CALLING, _I.TIMER_B): _S.TERMINATED,                # timeout to the TU
    (_S.CALLING, _I.RECV_1XX): _S.PROCEEDING,               # to the TU
    (_S.PROCEEDING, _I.RECV_1XX): _S.PROCEEDING,            # to the TU
    (_S.CALLING, _I.RECV_2XX): _S.ACCEPTED,                 # to the TU, start M
    (_S.PROCEEDING, _I.RECV_2XX): _S.ACCEPTED,              # to the TU, start M
    (_S.ACCEPTED, _I.RECV_2XX): _S.ACCEPTED,                # to the TU (RFC 6026)
    (_S.CALLING, _I.RECV_FAILURE): _S.COMPLETED,            # ACK, to the TU, start D
    (_S.PROCEEDING, _I.RECV_FAILURE): _S.COMPLETED,         # ACK, to the TU, start D
    (_S.COMPLETED, _I.RECV_FAILURE): _S.COMPLETED,          # ACK again, absorbed
    (_S.COMPLETED, _I.TIMER_D): _S.TERMINATED,
    (_S.ACCEPTED, _I.TIMER_M): _S.TERMINATED,
    (_S.CALLING, _I.TIMER_CANCEL): _S.TERMINATED,           # timeout to the TU
    (_S.PROCEEDING, _I.TIMER_CANCEL): _S.TERMINATED,        # timeout to the TU
    (_S.CALLING, _I.TRANSPORT_ERROR): _S.TERMINATED,
    (_S.COMPLETED, _I.TRANSPORT_ERROR): _S.TERMINATED,
    **_abandon(_S.CALLING, _S.PROCEEDING, _S.COMPLETED, _S.ACCEPTED),
}

CLIENT_NON_INVITE_TRANSITIONS: dict[tuple[TxState, TxInput], TxState] = {
    (_S.TRYING, _I.TIMER_E): _S.TRYING,                     # re-send, E = min(2E, T2)
    (_S.PROCEEDING, _I.TIMER_E): _S.PROCEEDING,             # re-send, E = T2
    (_S.TRYING, _I.TIMER_F): _S.TERMINATED,                 # timeout to the TU
    (_S.PROCEEDING, _I.TIMER_F): _S.TERMINATED,             # timeout to the TU
    (_S.TRYING, _I.RECV_1XX): _S.PROCEEDING,                # to the TU
    (_S.PROCEEDING, _I.RECV_1XX): _S.PROCEEDING,            # to the TU
    **{(state, final): _S.COMPLETED                         # to the TU, start K
       for state in (_S.TRYING, _S.PROCEEDING) for final in (_I.RECV_2XX, _I.RECV_FAILURE)},
    (_S.COMPLETED, _I.TIMER_K): _S.TERMINATED,
    (_S.TRYING, _I.TRANSPORT_ERROR): _S.TERMINATED,
    (_S.PROCEEDING, _I.TRANSPORT_ERROR): _S.TERMINATED,
    **_abandon(_S.TRYING, _S.PROCEEDING, _S.COMPLETED),
}

SERVER_INVITE_TRANSITIONS: dict[tuple[TxState, TxInput], TxState] = {
    (_S.PROCEEDING, _I.RECV_REQUEST): _S.PROCEEDING,        # re-send the last 1xx
    (_S.PROCEEDING, _I.SEND_1XX): _S.PROCEEDING,
    (_S.PROCEEDING, _I.SEND_2XX): _S.ACCEPTED,              # start L and the 2xx schedule
    (_S.PROCEEDING, _I.SEND_FAILURE): _S.COMPLETED,         # start G and H
    (_S.COMPLETED, _I.RECV_REQUEST): _S.COMPLETED,          # re-send the final response
    (_S.COMPLETED, _I.TIMER_G): _S.COMPLETED,               # re-send, G = min(2G, T2)
    (_S.COMPLETED, _I.RECV_ACK): _S.CONFIRMED,              # to the TU, start I
    (_S.COMPLETED, _I.TIMER_H): _S.TERMINATED,              # timeout to the TU (no ACK)
    (_S.CONFIRMED, _I.TIMER_I): _S.TERMINATED,
    (_S.ACCEPTED, _I.SEND_2XX): _S.ACCEPTED,                # the TU's own re-send
    (_S.ACCEPTED, _I.RECV_ACK): _S.ACCEPTED,                # to the TU (a reused branch)
    (_S.ACCEPTED, _I.TIMER_L): _S.TERMINATED,
    (_S.PROCEEDING, _I.TRANSPORT_ERROR): _S.TERMINATED,
    (_S.COMPLETED, _I.TRANSPORT_ERROR): _S.TERMINATED,
    (_S.ACCEPTED, _I.TRANSPORT_ERROR): _S.TERMINATED,
    **_abandon(_S.PROCEEDING, _S.COMPLETED, _S.CONFIRMED, _S.ACCEPTED),
    # absorbed (in no row): INVITE and ACK in Confirmed, INVITE in Accepted, ACK in Proceeding
}

SERVER_NON_INVITE_TRANSITIONS: dict[tuple[TxState, TxInput], TxState] = {
    (_S.TRYING, _I.SEND_1XX): _S.PROCEEDING,
    (_S.PROCEEDING, _I.SEND_1XX): _S.PROCEEDING,
    (_S.PROCEEDING, _I.RECV_REQUEST): _S.PROCEEDING,        # re-send the last 1xx
    **{(state, final): _S.COMPLETED                         # start J
       for state in (_S.TRYING, _S.PROCEEDING) for final in (_I.SEND_2XX, _I.SEND_FAILURE)},
    (_S.COMPLETED, _I.RECV_REQUEST): _S.COMPLETED,          # re-send the final response
    (_S.COMPLETED, _I.TIMER_J): _S.TERMINATED,
    (_S.PROCEEDING, _I.TRANSPORT_ERROR): _S.TERMINATED,
    (_S.COMPLETED, _I.TRANSPORT_ERROR): _S.TERMINATED,
    **_abandon(_S.TRYING, _S.PROCEEDING, _S.COMPLETED),
    # absorbed: the request again in Trying
}

_SENDS = (_I.SEND_1XX, _I.SEND_2XX, _I.SEND_FAILURE)
_FINAL_SENT = ("TRANSACTION_COMPLETED", "the transaction has already sent its final response")
SERVER_INVITE_REFUSALS: dict[tuple[TxState, TxInput], tuple[str, str]] = {
    **{(state, send): _FINAL_SENT for state in (_S.COMPLETED, _S.CONFIRMED) for send in _SENDS},
    (_S.ACCEPTED, _I.SEND_1XX): ("ALREADY_ACCEPTED", "a provisional response after a 2xx"),
    (_S.ACCEPTED, _I.SEND_FAILURE): ("ALREADY_ACCEPTED", "a 300-699 response after a 2xx"),
}
SERVER_NON_INVITE_REFUSALS: dict[tuple[TxState, TxInput], tuple[str, str]] = {
    (_S.COMPLETED, send): _FINAL_SENT for send in _SENDS
}


def _refused(code: str, message: str) -> SipTransactionError:
    error = SipTransactionError(message)
    error.code = code
    return error


CLIENT_INVITE = Table[TxState, TxInput](
    TxKind.CLIENT_INVITE.value, CLIENT_INVITE_TRANSITIONS, {}, _refused)
CLIENT_NON_INVITE = Table[TxState, TxInput](
    TxKind.CLIENT_NON_INVITE.value, CLIENT_NON_INVITE_TRANSITIONS, {}, _refused)
SERVER_INVITE = Table[TxState, TxInput](
    TxKind.SERVER_INVITE.value, SERVER_INVITE_TRANSITIONS, SERVER_INVITE_REFUSALS, _refused)
SERVER_NON_INVITE = Table[TxState, TxInput](
    TxKind.SERVER_NON_INVITE.value, SERVER_NON_INVITE_TRANSITIONS, SERVER_NON_INVITE_REFUSALS,
    _refused)
_TABLES = {TxKind.CLIENT_INVITE: CLIENT_INVITE, TxKind.CLIENT_NON_INVITE: CLIENT_NON_INVITE,
           TxKind.SERVER_INVITE: SERVER_INVITE, TxKind.SERVER_NON_INVITE: SERVER_NON_INVITE}

# --------------------------------------------------------------------------- transactions


TxKey = tuple[str | int, ...]
"""(branch, method) for a client transaction, (branch, sent-by host, port, method) for a
server one (an ACK's method counted as INVITE)."""


class _Timed:
    """Something with named deadlines in the layer's heap."""

    __slots__ = ("_timers",)

    def __init__(self) -> None:
        self._timers: dict[Timer, float] = {}

    def timers(self) -> dict[Timer, float]:
        """The armed timers and their deadlines (a copy)."""
        return dict(self._timers)


class Transaction(_Timed):
    """One transaction. The layer owns and changes it; the TU keeps it and reads it.

    ``request`` is the request that created it (for a server transaction, with
    its top Via stamped); ``addr`` is where it sends: the request's destination
    for a client transaction, the response address (§18.2.2) for a server one;
    ``last_response`` is the last response received (client) or sent (server).
    """

    __slots__ = ("kind", "key", "request", "addr", "state", "last_response", "_data",
                 "_interval")

    def __init__(self, kind: TxKind, key: TxKey, request: SipRequest, addr: Addr,
                 state: TxState) -> None:
        super().__init__()
        self.kind = kind
        self.key = key
        self.request = request
        self.addr = addr
        self.state = state
        self.last_response: SipResponse | None = None
        self._data: bytes | None = None  # what a retransmission re-sends, byte for byte
        self._interval = 0.0

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def branch(self) -> str:
        return str(self.key[0])

    @property
    def is_invite(self) -> bool:
        return self.kind in (TxKind.CLIENT_INVITE, TxKind.SERVER_INVITE)

    @property
    def terminated(self) -> bool:
        return self.state is TxState.TERMINATED

    def __repr__(self) -> str:
        return f"<{self.kind.value} {self.method} {self.branch} {self.state.value}>"


class ClientTransaction(Transaction):
    """A request this UA sent (:meth:`TransactionLayer.send_request`)."""

    __slots__ = ("_ack", "_acks_2xx", "_tags_2xx")

    def __init__(self, kind: TxKind, key: TxKey, request: SipRequest, addr: Addr,
                 state: TxState) -> None:
        super().__init__(kind, key, request, addr, state)
        self._ack: bytes | None = None  # the ACK for a non-2xx final response
        self._acks_2xx: dict[str, tuple[bytes, Addr]] = {}  # To tag -> the TU's ACK
        self._tags_2xx: set[str] = set()


class ServerTransaction(Transaction):
    """A request this UA received; ``source`` is the address it came from."""

    __slots__ = ("source",)

    def __init__(self, kind: TxKind, key: TxKey, request: SipRequest, addr: Addr,
                 state: TxState, source: Addr) -> None:
        super().__init__(kind, key, request, addr, state)
        self.source = source


class TwoXXRetransmitter(_Timed):
    """The schedule of a UAS's 2xx to an INVITE (RFC 3261 §13.3.1.4), given the time.

    The first send is the caller's; retransmissions are due at ``start`` + T1,
    then at doubling intervals capped at T2, until :meth:`stop` (the ACK came)
    or 64·T1 after ``start``, when ``timed_out`` turns true. The transaction
    layer runs one per 2xx it sends; usable alone with :meth:`handle_timer`.
    """

    __slots__ = ("key", "response", "data", "addr", "timed_out", "_t2", "_interval")

    def __init__(self, response: SipResponse, data: bytes, addr: Addr, now: float, *,
                 t1: float = 0.5, t2: float = 4.0) -> None:
        super().__init__()
        self.key = _ack_key(response)
        self.response = response
        self.data = data
        self.addr = addr
        self.timed_out = False
        self._t2 = t2
        self._interval = t1
        self._timers = {Timer.RETRANSMIT_2XX: now + t1, Timer.ACK_WAIT: now + 64 * t1}

    @property
    def done(self) -> bool:
        return not self._timers

    def next_deadline(self) -> float | None:
        return min(self._timers.values(), default=None)

    def stop(self) -> None:
        """The ACK came: nothing more to send."""
        self._timers.clear()

    def _fire(self, timer: Timer, deadline: float) -> bool:
        """Run a due timer (already removed); True when this one gave up waiting."""
        if timer is Timer.ACK_WAIT:
            self._timers.clear()
            self.timed_out = True
            return True
        self._interval = min(2 * self._interval, self._t2)
        self._timers[Timer.RETRANSMIT_2XX] = deadline + self._interval
        return False

    def handle_timer(self, now: float) -> list[tuple[bytes, Addr]]:
        """The retransmissions due by ``now`` (standalone use; the layer has its own heap)."""
        out: list[tuple[bytes, Addr]] = []
        while self._timers:
            timer, deadline = min(self._timers.items(), key=lambda item: item[1])
            if deadline > now:
                break
            del self._timers[timer]
            if not self._fire(timer, deadline):
                out.append((self.data, self.addr))
        return out


def _ack_key(message: SipRequest | SipResponse) -> tuple[str, int, str, str]:
    """What ties an ACK to the 2xx it acknowledges: Call-ID, CSeq number, From and To tags."""
    return (message.call_id, message.cseq[0], message.from_.tag or "", message.to.tag or "")


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request and the server transaction made for it; the TU answers through
    :meth:`TransactionLayer.send_response`. For a CANCEL, ``invite`` is the INVITE
    server transaction it cancels, in whatever state (None: answer 481; if the INVITE
    already has its final response, only answer the CANCEL 200, §9.2)."""

    request: SipRequest
    addr: Addr
    transaction: ServerTransaction
    invite: ServerTransaction | None = None


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK: for a 2xx (``transaction`` None, it belongs to no transaction; if it
    acknowledges a 2xx the layer was re-sending, that stopped), or the first ACK for
    a 300-699 of a server INVITE transaction (``transaction`` set, now Confirmed)."""

    request: SipRequest
    addr: Addr
    transaction: ServerTransaction | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for a client transaction. ``retransmission`` is true for a 2xx to an
    INVITE whose To tag came before: the layer re-sent the TU's ACK for it if the TU
    gave one through :meth:`TransactionLayer.send_ack_for_2xx`."""

    response: SipResponse
    transaction: ClientTransaction
    retransmission: bool = False


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B / F (no final response: the TU treats it as a 408), H (a server INVITE's
    300-699 was never ACKed), or CANCEL (a cancelled INVITE got no final response)."""

    transaction: Transaction
    timer: Timer


@dataclass(frozen=True, slots=True)
class TransportError:
    """The I/O layer reported that sending to ``addr`` fails; the transaction ended."""

    transaction: Transaction
    addr: Addr


@dataclass(frozen=True, slots=True)
class MalformedMessage:
    """A datagram that is not a SIP message we accept. ``response`` is the error
    response the layer already sent for it, or None when nothing could be sent."""

    data: bytes
    addr: Addr
    error: SipError
    response: SipResponse | None


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """A 2xx to an INVITE was re-sent for 64·T1 without an ACK: the UA core should
    end the dialog with BYE (RFC 3261 §13.3.1.4)."""

    response: SipResponse
    addr: Addr


Event = (RequestReceived | AckReceived | ResponseReceived | TransactionTimeout
         | TransportError | MalformedMessage | AckTimeout)


# --------------------------------------------------------------------------- the layer


def _same_ip(host: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(ip)
    except ValueError:
        return False


def _stamp(request: SipRequest, source: Addr) -> None:
    """Add ``received`` / fill ``rport`` in the top Via (RFC 3261 §18.2.1, RFC 3581 §4)."""
    via = request.top_via
    ip, port = source
    if "rport" in via.params and via.params["rport"] is None:
        via.params["rport"] = str(port)
        via.params["received"] = ip
    elif not _same_ip(via.host, ip):
        via.params["received"] = ip
    else:
        return
    request.headers.replace_top("Via", str(via))


def _stateless_tag(request: SipRequest) -> str:
    """The To tag of a response sent outside any transaction: made from the request,
    so a retransmission of it is answered with the same tag (RFC 3261 §8.2.7)."""
    key = "\n".join([request.top_via.branch or "", request.headers.get("CSeq") or "",
                      *request.headers.get_lines("From"), *request.headers.get_lines("Call-ID")])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _ack_for(request: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK of a client INVITE transaction for a 300-699 (RFC 3261 §17.1.1.3)."""
    headers = Headers()
    headers.add("Via", request.headers.get_all("Via")[0])
    for route in request.headers.get_lines("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", request.headers.get_lines("From")[0])
    headers.add("To", response.headers.get_lines("To")[0])
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", f"{request.cseq[0]} ACK")
    return SipRequest("ACK", request.uri, headers)


_HeapEntry = tuple[float, int, _Timed, Timer]
_MAX_2XX_TAGS = 64


class TransactionLayer:
    """All transactions of one UDP SIP endpoint, driven by datagrams and the time.

    ``t1``, ``t2``, ``t4`` are RFC 3261's (RTT estimate, maximum non-INVITE
    retransmission interval, maximum time a message lives in the network);
    ``timer_d`` is Timer D (at least 32 s over UDP). The parser limits are
    those of :func:`~.message.parse_message`. With ``answer_malformed`` False,
    malformed requests are reported but never answered.
    """

    def __init__(self, t1: float = 0.5, t2: float = 4.0, t4: float = 5.0, *,
                 timer_d: float = 32.0, max_size: int = MAX_MESSAGE_SIZE,
                 max_header_bytes: int = MAX_HEADER_BYTES, max_headers: int = MAX_HEADERS,
                 answer_malformed: bool = True) -> None:
        if not (0 < t1 <= t2 and t4 > 0 and timer_d >= 0):
            raise ValueError("timers need 0 < t1 <= t2, t4 > 0 and timer_d >= 0")
        self.t1, self.t2, self.t4, self.timer_d = t1, t2, t4, timer_d
        self.answer_malformed = answer_malformed
        self._limits = {"max_size": max_size, "max_header_bytes": max_header_bytes,
                        "max_headers": max_headers}
        self._client: dict[TxKey, ClientTransaction] = {}  # (branch, method)
        self._server: dict[TxKey, ServerTransaction] = {}  # (branch, host, port, method)
        self._2xx: dict[tuple[str, int, str, str], TwoXXRetransmitter] = {}
        self._heap: list[_HeapEntry] = []
        self._compact_at = 256
        self._seq = itertools.count()
        self._out: list[tuple[bytes, Addr]] = []

    # ---------------------------------------------------------------- I/O side

    def receive(self, data: bytes, addr: Addr, now: float) -> list[Event]:
        """Feed one whole datagram from ``addr``; the events for the TU."""
        if not data.strip(b" \t\r\n"):
            return []  # a keep-alive (RFC 5626 §3.5.1)
        try:
            message = parse_message(data, **self._limits)
        except SipParseError as error:
            return [self._malformed(data, addr, error, salvage_request(data))]
        if isinstance(message, SipResponse):
            return self._on_response(message, now)
        return self._on_request(data, message, addr, now)

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """What to send now, in order, as ``(data, (ip, port))``; the list is handed over."""
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """The earliest armed timer, or None when no timer is armed."""
        heap = self._heap
        while heap:
            deadline, _, owner, timer = heap[0]
            if owner._timers.get(timer) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every timer due by ``now``, in deadline order; the events for the TU."""
        events: list[Event] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, owner, timer = heapq.heappop(heap)
            if owner._timers.get(timer) != deadline:
                continue  # cancelled or re-armed
            del owner._timers[timer]
            if isinstance(owner, TwoXXRetransmitter):
                self._fire_2xx(owner, timer, deadline, events)
            else:
                assert isinstance(owner, Transaction)
                self._fire(owner, timer, deadline, events)
        return events

    def transport_error(self, addr: Addr, now: float) -> list[Event]:
        """The I/O layer knows sending to ``addr`` fails: end the transactions that send there
        in a state where RFC 3261 says a transport error ends them."""
        events: list[Event] = []
        for tx in [*self._client.values(), *self._server.values()]:
            if tx.addr == addr and self._step(tx, TxInput.TRANSPORT_ERROR):
                self._end(tx)
                events.append(TransportError(tx, addr))
        return events

    # ---------------------------------------------------------------- TU side

    def send_request(self, request: SipRequest, addr: Addr, now: float) -> ClientTransaction:
        """Start a client transaction: send ``request`` to ``addr`` and retransmit it.

        The request needs a top Via (the UA core writes its sent-by, with
        ``;rport``); the layer adds a fresh branch if it has none and keeps it
        otherwise, which is how a CANCEL (:func:`~.message.make_cancel`) gets
        its INVITE's branch. Sending a CANCEL arms the INVITE's CANCEL guard.
        The CANCEL must wait for a provisional response (§9.1): the UA core
        checks ``invite_tx.state is TxState.PROCEEDING``.
        """
        method = request.method
        if method == "ACK":
            raise _refused("ACK_NOT_A_TRANSACTION", "an ACK is not a transaction: send the ACK "
                           "for a 2xx with send_ack_for_2xx")
        try:
            vias = request.vias
            cseq_method = request.cseq[1]
        except SipParseError as error:
            raise _refused("BAD_REQUEST", f"the request cannot be sent: {error}") from None
        if not vias:
            raise _refused("NO_VIA", "the request has no Via: the UA core writes its sent-by")
        if cseq_method != method:
            raise _refused("BAD_REQUEST", f"the CSeq method {cseq_method} is not {method}")
        via = vias[0]
        if not via.branch:
            via.params["branch"] = new_branch()
            request.headers.replace_top("Via", str(via))
        assert via.branch is not None
        key = (via.branch, method)
        if key in self._client:
            raise _refused("BRANCH_IN_USE", f"a {method} with branch {via.branch} is pending")
        invite = method == "INVITE"
        tx = ClientTransaction(TxKind.CLIENT_INVITE if invite else TxKind.CLIENT_NON_INVITE, key,
                               request, addr, TxState.CALLING if invite else TxState.TRYING)
        tx._data = request.serialize()
        tx._interval = self.t1
        self._client[key] = tx
        self._send(tx._data, addr)
        self._set(tx, Timer.A if invite else Timer.E, now + self.t1)
        self._set(tx, Timer.B if invite else Timer.F, now + 64 * self.t1)
        if method == "CANCEL":
            cancelled = self._client.get((via.branch, "INVITE"))
            if (cancelled is not None and Timer.CANCEL not in cancelled._timers
                    and cancelled.state in (TxState.CALLING, TxState.PROCEEDING)):
                self._set(cancelled, Timer.CANCEL, now + 64 * self.t1)
        return tx

    def send_response(self, response: SipResponse, now: float) -> ServerTransaction | None:
        """Send ``response`` through the server transaction it answers; that transaction.

        Matched by the response's top Via (branch, sent-by) and CSeq method, as
        :func:`~.message.make_response` copies them. A 2xx to an INVITE is then
        re-sent until its ACK (module docstring); one whose transaction has
        already ended (after Timer L) is sent statelessly and re-sent the same
        way, and None is returned. Raises :class:`SipTransactionError` for a
        response no transaction matches or one its transaction refuses (a
        second final response, a 1xx after a 2xx).
        """
        status = response.status
        try:
            via = response.top_via
            method = response.cseq[1]
        except SipParseError as error:
            raise _refused("BAD_RESPONSE", f"the response cannot be sent: {error}") from None
        host, port = via.sent_by
        tx = self._server.get((via.branch or "", host.lower(), port, method))
        if status < 200:
            send = TxInput.SEND_1XX
        elif status < 300:
            send = TxInput.SEND_2XX
        else:
            send = TxInput.SEND_FAILURE
        if tx is None:
            if method == "INVITE" and send is TxInput.SEND_2XX:
                data = response.serialize()
                self._send(data, via.response_address())
                self._retransmit_2xx(response, data, via.response_address(), now)
                return None
            raise _refused("NO_TRANSACTION", f"no server transaction matches this {status} to "
                           f"{method} (branch {via.branch}): it ended or never was")
        before = tx.state
        tx.state = _TABLES[tx.kind].step(tx.state, send)
        tx.last_response = response
        tx._data = response.serialize()
        self._send(tx._data, tx.addr)
        if tx.kind is TxKind.SERVER_INVITE:
            if send is TxInput.SEND_2XX:
                if before is TxState.PROCEEDING:
                    self._set(tx, Timer.L, now + 64 * self.t1)
                self._retransmit_2xx(response, tx._data, tx.addr, now)
            elif send is TxInput.SEND_FAILURE:
                tx._interval = self.t1
                self._set(tx, Timer.G, now + self.t1)
                self._set(tx, Timer.H, now + 64 * self.t1)
        elif send is not TxInput.SEND_1XX:
            self._set(tx, Timer.J, now + 64 * self.t1)
        return tx

    def send_ack_for_2xx(self, ack: SipRequest, addr: Addr,
                         transaction: ClientTransaction | None = None) -> None:
        """Send the UA core's ACK for a 2xx (it belongs to no transaction, §13.2.2.4).

        With the client INVITE ``transaction`` the 2xx came on (still Accepted),
        the layer also re-sends this ACK for every retransmission of a 2xx with
        the same To tag until Timer M ends the transaction.
        """
        if ack.method != "ACK":
            raise _refused("NOT_AN_ACK", f"send_ack_for_2xx was given a {ack.method}")
        data = ack.serialize()
        self._send(data, addr)
        if (transaction is not None and transaction.kind is TxKind.CLIENT_INVITE
                and transaction.state is TxState.ACCEPTED):
            transaction._acks_2xx[ack.to.tag or ""] = (data, addr)

    def send_stateless(self, message: SipRequest | SipResponse | bytes,
                       addr: Addr | None = None) -> None:
        """Send outside any transaction; a response without ``addr`` goes to its top
        Via's response address (§18.2.2)."""
        if addr is None:
            if not isinstance(message, SipResponse):
                raise _refused("NO_ADDRESS", "a request or raw bytes need an address")
            addr = message.top_via.response_address()
        self._send(message if isinstance(message, bytes) else message.serialize(), addr)

    def terminate(self, transaction: Transaction) -> None:
        """Drop a transaction now, without an event (the TU gave up on it)."""
        if transaction.state is not TxState.TERMINATED:
            transaction.state = _TABLES[transaction.kind].step(transaction.state, TxInput.ABANDON)
            self._end(transaction)

    def matching_invite(self, cancel: SipRequest) -> ServerTransaction | None:
        """The INVITE server transaction a received CANCEL cancels (§9.2), or None."""
        via = cancel.top_via
        host, port = via.sent_by
        return self._server.get((via.branch or "", host.lower(), port, "INVITE"))

    def counts(self) -> dict[str, int]:
        """Live client and server transactions, 2xx being re-sent, heap entries."""
        return {"client": len(self._client), "server": len(self._server),
                "2xx": len(self._2xx), "heap": len(self._heap)}

    # ---------------------------------------------------------------- internals

    def _send(self, data: bytes, addr: Addr) -> None:
        self._out.append((data, addr))

    def _set(self, owner: _Timed, timer: Timer, deadline: float) -> None:
        owner._timers[timer] = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), owner, timer))
        if len(self._heap) > self._compact_at:
            self._compact()

    def _compact(self) -> None:
        owners: list[_Timed] = [*self._client.values(), *self._server.values(),
                                *self._2xx.values()]
        live = [(d, next(self._seq), o, t) for o in owners for t, d in o._timers.items()]
        if len(live) * 4 < len(self._heap):
            heapq.heapify(live)
            self._heap = live
        self._compact_at = max(256, 4 * len(self._heap))

    @staticmethod
    def _cancel(owner: _Timed, *timers: Timer) -> None:
        for timer in timers:
            owner._timers.pop(timer, None)

    @staticmethod
    def _step(tx: Transaction, event: TxInput) -> bool:
        """Take a network or timer input; False when the state absorbs it (in no row)."""
        table = _TABLES[tx.kind]
        if not table.allows(tx.state, event):
            return False
        tx.state = table.step(tx.state, event)
        return True

    def _end(self, tx: Transaction) -> None:
        tx._timers.clear()
        if isinstance(tx, ClientTransaction):
            if self._client.get(tx.key) is tx:
                del self._client[tx.key]
        elif self._server.get(tx.key) is tx:
            del self._server[tx.key]

    def _malformed(self, data: bytes, addr: Addr, error: SipError,
                   request: SipRequest | None) -> MalformedMessage:
        response = None
        if request is not None and self.answer_malformed:
            tag = _stateless_tag(request)
            _stamp(request, addr)
            response = make_response(request, error.status, str(error), to_tag=tag)
            self._send(response.serialize(), request.top_via.response_address())
        log.debug("malformed datagram from %s: %s", addr, error)
        return MalformedMessage(data, addr, error, response)

    def _on_request(self, data: bytes, request: SipRequest, addr: Addr,
                    now: float) -> list[Event]:
        _stamp(request, addr)
        via = request.top_via
        branch = via.branch or ""
        method = request.method
        if not branch.startswith(MAGIC_COOKIE):
            if method == "ACK":
                log.debug("dropped an ACK from %s without an RFC 3261 branch", addr)
                return []
            error = SipParseError("the top Via has no RFC 3261 branch (z9hG4bK...): "
                                  "RFC 2543 transactions are not supported")
            return [self._malformed(data, addr, error, request)]
        host, port = via.sent_by
        key = (branch, host.lower(), port, "INVITE" if method == "ACK" else method)
        tx = self._server.get(key)
        if method == "ACK":
            if tx is None:
                self._ack_2xx(request)
                return [AckReceived(request, addr, None)]
            if not self._step(tx, TxInput.RECV_ACK):
                return []  # absorbed
            if tx.state is TxState.CONFIRMED:
                self._cancel(tx, Timer.G, Timer.H)
                self._set(tx, Timer.I, now + self.t4)
            else:
                self._ack_2xx(request)
            return [AckReceived(request, addr, tx)]
        if tx is not None:
            if self._step(tx, TxInput.RECV_REQUEST) and tx._data is not None:
                self._send(tx._data, tx.addr)
            return []
        invite = method == "INVITE"
        tx = ServerTransaction(TxKind.SERVER_INVITE if invite else TxKind.SERVER_NON_INVITE, key,
                               request, via.response_address(),
                               TxState.PROCEEDING if invite else TxState.TRYING, addr)
        self._server[key] = tx
        cancels = self._server.get((*key[:3], "INVITE")) if method == "CANCEL" else None
        return [RequestReceived(request, addr, tx, cancels)]

    def _on_response(self, response: SipResponse, now: float) -> list[Event]:
        if len(response.headers.get_all("Via")) != 1:
            log.debug("dropped a %d with more than one Via", response.status)
            return []
        tx = self._client.get((response.top_via.branch or "", response.cseq[1]))
        if tx is None:
            log.debug("dropped a stray %d", response.status)
            return []
        status = response.status
        if status < 200:
            event = TxInput.RECV_1XX
        elif status < 300:
            event = TxInput.RECV_2XX
        else:
            event = TxInput.RECV_FAILURE
        before = tx.state
        if not self._step(tx, event):
            return []  # absorbed
        tx.last_response = response
        if tx.kind is TxKind.CLIENT_NON_INVITE:
            if event is not TxInput.RECV_1XX:
                self._cancel(tx, Timer.E, Timer.F)
                self._set(tx, Timer.K, now + self.t4)
            return [ResponseReceived(response, tx)]
        if event is TxInput.RECV_1XX:
            self._cancel(tx, Timer.A, Timer.B)
            return [ResponseReceived(response, tx)]
        if event is TxInput.RECV_FAILURE:
            if before is TxState.COMPLETED:
                assert tx._ack is not None
                self._send(tx._ack, tx.addr)
                return []
            self._cancel(tx, Timer.A, Timer.B, Timer.CANCEL)
            tx._ack = _ack_for(tx.request, response).serialize()
            self._send(tx._ack, tx.addr)
            self._set(tx, Timer.D, now + self.timer_d)
            return [ResponseReceived(response, tx)]
        tag = response.to.tag or ""
        seen = tag in tx._tags_2xx
        if before is not TxState.ACCEPTED:
            self._cancel(tx, Timer.A, Timer.B, Timer.CANCEL)
            self._set(tx, Timer.M, now + 64 * self.t1)
        elif seen and tag in tx._acks_2xx:
            self._send(*tx._acks_2xx[tag])
        if not seen and len(tx._tags_2xx) < _MAX_2XX_TAGS:
            tx._tags_2xx.add(tag)
        return [ResponseReceived(response, tx, seen)]

    def _fire(self, tx: Transaction, timer: Timer, deadline: float,
              events: list[Event]) -> None:
        if not self._step(tx, _TIMER_INPUT[timer]):
            return
        if tx.state is TxState.TERMINATED:
            self._end(tx)
            if timer in _TIMEOUTS:
                events.append(TransactionTimeout(tx, timer))
            return
        assert tx._data is not None
        self._send(tx._data, tx.addr)
        if timer is Timer.A:
            tx._interval *= 2
        elif timer is Timer.E and tx.state is TxState.PROCEEDING:
            tx._interval = self.t2
        else:  # E in Trying, G
            tx._interval = min(2 * tx._interval, self.t2)
        self._set(tx, timer, deadline + tx._interval)

    def _retransmit_2xx(self, response: SipResponse, data: bytes, addr: Addr,
                        now: float) -> None:
        key = _ack_key(response)
        if key in self._2xx:
            self._2xx[key].data = data
            return
        retransmitter = TwoXXRetransmitter(response, data, addr, now, t1=self.t1, t2=self.t2)
        self._2xx[key] = retransmitter
        for timer, deadline in retransmitter._timers.items():
            self._set(retransmitter, timer, deadline)

    def _fire_2xx(self, retransmitter: TwoXXRetransmitter, timer: Timer, deadline: float,
                  events: list[Event]) -> None:
        if retransmitter._fire(timer, deadline):
            del self._2xx[retransmitter.key]
            events.append(AckTimeout(retransmitter.response, retransmitter.addr))
            return
        self._send(retransmitter.data, retransmitter.addr)
        self._set(retransmitter, timer, retransmitter._timers[timer])

    def _ack_2xx(self, ack: SipRequest) -> None:
        retransmitter = self._2xx.pop(_ack_key(ack), None)
        if retransmitter is not None:
            retransmitter.stop()
