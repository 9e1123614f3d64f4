"""The gateway's SIP user agent: calls in from trunks, calls out through them.

It sits on the sans-I/O transaction layer (:mod:`telcoflow.protocol.sip.transaction`)
and speaks to the engine through its ports: every INVITE that is accepted
becomes an inbound call on a :class:`~.leg.SipLeg`; :meth:`SipUa.dial` is the
engine's :class:`~telcoflow.engine.ports.Dialler` for trunk numbers (and SIP
URIs, where allowed). It sends datagrams through the ``send`` callable it is
given and is driven by the engine's timer (:class:`~telcoflow.engine.ports.Timed`).

What a caller is told (RFC 3261 meanings, a ``Reason`` header with the
engine's sentence): 100 Trying at once; 180 Ringing while agents are
offered the call; 200 OK with SDP when one answers; 404 for a number that is
not in service, 480 when nobody answered in time or the agent is gone, 603
when the connector declines, 488 when no codec is common, 403 for a source
or credentials that are refused, 401 to ask for credentials, 503 (with
Retry-After) under an INVITE flood or when no RTP port is free, 487 to a
cancelled INVITE, 501 for a method we do not implement.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Callable
from typing import Any

from ...engine import Engine
from ...engine.ports import DialError, DialFailure, EndReason
from ...protocol.sip import sdp
from ...protocol.sip.auth import DigestChallenger, authorization
from ...protocol.sip.errors import DigestChallenge, DigestError, SdpError, SipError
from ...protocol.sip.message import (
    Headers,
    NameAddr,
    SipRequest,
    SipResponse,
    SipUri,
    make_cancel,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
)
from ...protocol.sip.transaction import (
    AckReceived,
    AckTimeout,
    MalformedMessage,
    RequestReceived,
    ResponseReceived,
    TransactionLayer,
    TransactionTimeout,
    TransportError,
)
from ...server.config import SipConfig, SipTrunk, parse_hostport
from ...server.limits import TokenBucket
from .leg import DialogState, SipLeg
from .media import NoPortFree, RtpSocket

logger = logging.getLogger(__name__)

Addr = tuple[str, int]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"
USER_AGENT = "telcoflow"
MAX_SOURCES = 10_000  # rate-limit buckets kept; beyond, the oldest are forgotten

# unanswered inbound call: the final response, per way the engine ended it
_REFUSAL = {
    EndReason.NOT_IN_SERVICE: 404, EndReason.DECLINED: 603, EndReason.NO_ANSWER: 480,
    EndReason.AGENT_HANGUP: 603, EndReason.CONNECTOR_CLOSED: 480, EndReason.AGENT_LOST: 480,
    EndReason.SERVER_SHUTDOWN: 503, EndReason.OTHER_PARTY_HANGUP: 480,
    EndReason.RING_TIMEOUT: 480, EndReason.CALLER_GONE: 487,
    EndReason.GATEWAY_OVERLOADED: 503, EndReason.SERVICE_UNAVAILABLE: 503,
}
# our INVITE's final response, per way the called party did not join
_BUSY, _REJECTED = frozenset({486, 600}), frozenset({603, 403, 606})


class SipUa:
    def __init__(self, engine: Engine, config: SipConfig, send: Callable[[bytes, Addr], None],
                 open_rtp: Callable[[], RtpSocket], clock: Callable[[], float]) -> None:
        self.engine = engine
        self.config = config
        self.tx = TransactionLayer()
        self._send = send
        self._open_rtp = open_rtp
        self._clock = clock
        self.host = config.advertised_host
        self.port = config.port
        self._by_server_tx: dict[Any, SipLeg] = {}
        self._by_client_tx: dict[Any, SipLeg] = {}
        self._dialogs: dict[tuple[str, str], SipLeg] = {}  # (Call-ID, our tag)
        self._buckets: dict[str, TokenBucket] = {}
        self._networks = [(t, [ipaddress.ip_network(s, strict=False) for s in t.sources])
                          for t in config.trunks]
        self._challengers = {t.name: DigestChallenger("telcoflow")
                             for t in config.trunks if t.username}

    # ── I/O and time (the endpoint and the engine's timer call these) ──────
    def receive(self, data: bytes, addr: Addr, now: float) -> None:
        for event in self.tx.receive(data, addr, now):
            self._on_event(event, now)
        self._flush()

    def next_deadline(self) -> float | None:
        return self.tx.next_deadline()

    def handle_timer(self, now: float) -> None:
        for event in self.tx.handle_timer(now):
            self._on_event(event, now)
        self._flush()

    def close(self) -> None:
        for leg in list(self._dialogs.values()) + list(self._by_server_tx.values()):
            leg.stop_media()

    def _flush(self) -> None:
        for data, addr in self.tx.datagrams_to_send():
            self._send(data, addr)
        self.engine.deadline_changed()

    # ── the engine's Dialler port ──────────────────────────────────────────
    def reaches(self, number: str) -> bool:
        return self._route(number) is not None

    def dial(self, call_id: str, number: str, caller: str, ring_s: float) -> SipLeg:
        route = self._route(number)
        if route is None:
            raise DialError(DialFailure.UNREACHABLE, f"no SIP trunk reaches {number}")
        uri, dest, trunk = route
        try:
            rtp = self._open_rtp()
        except NoPortFree as exc:
            raise DialError(DialFailure.UNREACHABLE, str(exc)) from None
        session_id = secrets.randbelow(2**31)
        offer = sdp.offer(self.host, rtp.port, session_id, 1)
        local = f"<sip:{_user(caller)}@{self.host}:{self.port}>"
        leg = SipLeg(self, self.engine, True, new_call_id(self.host), new_tag(), local, f"<{uri}>",
                     str(uri), dest, rtp, _request("INVITE", uri, [], b""), self._clock)
        leg.call_id = call_id
        leg.offer, leg.trunk = offer, trunk
        leg.invite = self._outbound_invite(leg, offer.to_bytes())
        self._send_invite(leg)
        return leg

    # ── events from the transaction layer ──────────────────────────────────
    def _on_event(self, event: object, now: float) -> None:
        try:
            if isinstance(event, RequestReceived):
                self._request(event, now)
            elif isinstance(event, AckReceived):
                self._ack(event)
            elif isinstance(event, ResponseReceived):
                self._response(event, now)
            elif isinstance(event, TransactionTimeout | TransportError):
                self._failed(event.transaction, now)
            elif isinstance(event, AckTimeout):
                self._ack_timeout(event, now)
            elif isinstance(event, MalformedMessage):
                logger.info("malformed SIP from %s: %s", event.addr, event.error.message)
        except Exception:  # one broken dialog must not take the endpoint down
            logger.exception("SIP event handling failed: %s", type(event).__name__)

    def _request(self, event: RequestReceived, now: float) -> None:
        req, method = event.request, event.request.method
        if method == "INVITE":
            leg = self._dialog_of(req)
            if leg is not None:
                self._reinvite(leg, event, now)
            elif req.to.tag:
                self._answer(event, 481, "Call/Transaction Does Not Exist", now)
            else:
                self._invite(event, now)
        elif method == "CANCEL":
            self._cancel(event, now)
        elif method == "BYE":
            self._bye(event, now)
        elif method == "OPTIONS":
            self._answer(event, 200, None, now, [("Allow", ALLOW), ("Accept", "application/sdp")])
        elif method == "INFO":
            self._info(event, now)
        elif method == "REGISTER":
            self._answer(event, 405, "this gateway is not a registrar", now, [("Allow", ALLOW)])
        else:
            self._answer(event, 501, f"{method[:32]} is not implemented here", now,
                         [("Allow", ALLOW)])

    # ── inbound calls ──────────────────────────────────────────────────────
    def _invite(self, event: RequestReceived, now: float) -> None:
        req, addr = event.request, event.addr
        trunk = self._trunk_for(addr[0])
        if trunk is None:
            logger.info("INVITE from %s refused: not a configured trunk source", addr[0])
            self._answer(event, 403, "this address is not an allowed trunk source", now)
            return
        if not self._bucket(addr[0], now).take(now):
            self._answer(event, 503, "too many calls from this source: slow down", now,
                         [("Retry-After", "1")])
            return
        if not self._authorised(event, trunk, now):
            return
        if not req.body:
            self._answer(event, 488, "an SDP offer in the INVITE is required", now)
            return
        try:
            offer = sdp.parse_sdp(req.body)
            answer_sdp, negotiated = sdp.answer(offer, self.host, 0, secrets.randbelow(2**31), 1)
        except SdpError as exc:
            self._answer(event, exc.status, exc.message, now)
            return
        try:
            rtp = self._open_rtp()
        except NoPortFree:
            self._answer(event, 503, "no media port is free", now, [("Retry-After", "5")])
            return
        contact = req.contacts[0].uri if req.contacts else req.from_.uri
        leg = SipLeg(self, self.engine, False, req.call_id, new_tag(), str(req.to.uri),
                     str(req.from_), str(contact), addr, rtp, req, self._clock,
                     remote_tag=req.from_.tag, route_set=[str(r) for r in req.record_routes],
                     server_tx=event.transaction)
        leg.offer = offer
        leg.start_media(negotiated)
        self._by_server_tx[event.transaction] = leg
        self._respond(leg, 100, now)
        number = req.uri.user or req.to.uri.user or ""
        caller = req.from_.uri.user or "anonymous"
        logger.info("SIP call from %s to %s (%s, %s)", caller, number, addr[0], negotiated.codec)
        self.engine.inbound_call(leg, number, caller)

    def send_ringing(self, leg: SipLeg) -> None:
        if leg.state is DialogState.EARLY and leg.server_tx is not None:
            self._respond(leg, 180, self._clock())
            self._flush()

    def send_answer(self, leg: SipLeg) -> None:
        """The agent answered: 200 OK with our SDP; the layer re-sends it until the ACK."""
        if leg.state is not DialogState.EARLY or leg.server_tx is None:
            return
        offer = leg.offer
        assert offer is not None  # an inbound leg is made with its INVITE's offer
        body, negotiated = sdp.answer(offer, self.host, leg.rtp.port, leg.sdp_version, 1)
        leg.start_media(negotiated)
        leg.state = DialogState.CONFIRMED
        self._dialogs[(leg.sip_call_id, leg.local_tag)] = leg
        self._by_server_tx.pop(leg.server_tx, None)
        self._respond(leg, 200, self._clock(), body=body.to_bytes())
        self._flush()

    def _cancel(self, event: RequestReceived, now: float) -> None:
        """§9.2: 481 for a CANCEL that matches no INVITE; else 200, with the To tag of
        the INVITE's responses, and a ringing call ends with 487."""
        invite = event.invite
        if invite is None:
            self._answer(event, 481, "Call/Transaction Does Not Exist", now)
            return
        leg = self._by_server_tx.pop(invite, None)
        last = invite.last_response
        tag = leg.local_tag if leg is not None else last.to.tag if last is not None else None
        self._answer(event, 200, None, now, to_tag=tag)
        if leg is None or leg.state is not DialogState.EARLY:
            return
        self._respond(leg, 487, now)
        self._gone(leg)

    def _bye(self, event: RequestReceived, now: float) -> None:
        leg = self._dialog_of(event.request)
        if leg is None:
            self._answer(event, 481, "Call/Transaction Does Not Exist", now)
            return
        self._answer(event, 200, None, now)
        self._gone(leg)

    def _ack(self, event: AckReceived) -> None:
        leg = self._dialog_of(event.request)
        if leg is not None and leg.stream is not None and event.request.body:
            logger.debug("ignoring an SDP in the ACK of call %s", leg.call_id)

    def _ack_timeout(self, event: AckTimeout, now: float) -> None:
        leg = self._dialogs.get((event.response.call_id, event.response.to.tag or ""))
        if leg is not None:
            logger.info("call %s: no ACK for our 200 OK; hanging up", leg.call_id)
            self._send_bye(leg, "no ACK for the 200 OK")
            self._gone(leg)

    def _reinvite(self, leg: SipLeg, event: RequestReceived, now: float) -> None:
        """A re-INVITE: a new offer (hold, resume, a moved media address)."""
        if not event.request.body:
            self._answer(event, 488, "an SDP offer in the re-INVITE is required", now)
            return
        try:
            offer = sdp.parse_sdp(event.request.body)
            leg.sdp_version += 1
            body, negotiated = sdp.answer(offer, self.host, leg.rtp.port, leg.sdp_version,
                                          leg.sdp_version)
        except SdpError as exc:
            self._answer(event, exc.status, exc.message, now)
            return
        leg.start_media(negotiated)
        logger.info("call %s: re-INVITE, media %s", leg.call_id, negotiated.direction.value)
        response = make_response(event.request, 200, to_tag=leg.local_tag,
                                 headers=self._contact_headers(),
                                 body=body.to_bytes(), content_type="application/sdp")
        self.tx.send_response(response, now)

    def _info(self, event: RequestReceived, now: float) -> None:
        """SIP INFO ``application/dtmf-relay`` (Signal=5, Duration=160), the other way
        digits arrive besides RFC 4733 events."""
        leg = self._dialog_of(event.request)
        if leg is None:
            self._answer(event, 481, "Call/Transaction Does Not Exist", now)
            return
        self._answer(event, 200, None, now)
        if "dtmf" not in (event.request.content_type or "").lower():
            return
        fields = dict(line.partition("=")[::2] for line in
                      event.request.body.decode("utf-8", "replace").splitlines())
        digit = fields.get("Signal", "").strip()
        if len(digit) == 1 and digit in "0123456789*#ABCD":
            duration = int(fields.get("Duration", "100").strip() or 100)
            self.engine.leg_dtmf(leg, digit, max(10, min(duration, 10_000)))

    # ── ending legs (the engine's Leg.ended) ───────────────────────────────
    def end_leg(self, leg: SipLeg, reason: EndReason, message: str) -> None:
        if leg.state is DialogState.ENDED:
            return
        now = self._clock()
        if leg.state is DialogState.EARLY and not leg.outbound:
            status = _REFUSAL.get(reason, 480)
            self._respond(leg, status, now, reason_text=message)
            self._by_server_tx.pop(leg.server_tx, None)
        elif leg.state is DialogState.EARLY and leg.client_tx is not None:
            self.tx.send_request(make_cancel(leg.invite), leg.peer, now)
        elif leg.state is DialogState.CONFIRMED:
            self._send_bye(leg, message)
        self._close(leg)
        self._flush()

    def media_silent(self, leg: SipLeg, silent_s: float) -> bool:
        """The leg has had no RTP for ``silent_s``: past ``rtp_timeout_s`` the caller is
        gone without a BYE; hang up (a BYE with the reason) and tell the engine. True if
        the leg was ended."""
        limit = self.config.rtp_timeout_s
        if not limit or silent_s < limit or leg.state is not DialogState.CONFIRMED:
            return False
        logger.warning("call %s: no RTP from %s for %.0f s; hanging up", leg.call_id,
                       leg.peer[0], silent_s)
        self._send_bye(leg, f"no RTP for {silent_s:.0f} s")
        self._flush()
        self._gone(leg)
        return True

    def _gone(self, leg: SipLeg) -> None:
        """The remote ended the leg: the engine hears it hung up."""
        if leg.state is DialogState.ENDED:
            return
        self._close(leg)
        self.engine.leg_hung_up(leg)

    def _close(self, leg: SipLeg) -> None:
        leg.state = DialogState.ENDED
        self._dialogs.pop((leg.sip_call_id, leg.local_tag), None)
        if leg.server_tx is not None:
            self._by_server_tx.pop(leg.server_tx, None)
        if leg.client_tx is not None:
            self._by_client_tx.pop(leg.client_tx, None)
        leg.stop_media()

    def _send_bye(self, leg: SipLeg, why: str) -> None:
        leg.local_cseq += 1
        bye = self._in_dialog(leg, "BYE", [("Reason", _reason(200, why))])
        self.tx.send_request(bye, leg.peer, self._clock())

    # ── outbound calls ─────────────────────────────────────────────────────
    def _route(self, number: str) -> tuple[SipUri, Addr, SipTrunk | None] | None:
        if number.startswith(("sip:", "sips:")):
            if not self.config.allow_uri_dialing:
                return None
            try:
                uri = SipUri.parse(number)
            except SipError:
                return None
            if not _is_ip(uri.host):
                return None  # no DNS here: a trunk's proxy is named by address
            return uri, (uri.host, uri.port or 5060), None
        for trunk in self.config.trunks:
            if trunk.proxy and any(p == "*" or number.startswith(p) for p in trunk.numbers):
                host, port = parse_hostport(trunk.proxy, "proxy")
                return SipUri.parse(f"sip:{_user(number)}@{host}:{port}"), (host, port), trunk
        return None

    def _outbound_invite(self, leg: SipLeg, body: bytes,
                         auth: tuple[str, str] | None = None) -> SipRequest:
        headers = [("Via", self._via()), ("Max-Forwards", "70"),
                   ("From", f"{leg.local_uri};tag={leg.local_tag}"), ("To", leg.remote_uri),
                   ("Call-ID", leg.sip_call_id), ("CSeq", f"{leg.local_cseq} INVITE"),
                   *self._contact_headers(), ("Content-Type", "application/sdp")]
        if auth is not None:
            headers.append(auth)
        return _request("INVITE", SipUri.parse(leg.remote_target), headers, body)

    def _send_invite(self, leg: SipLeg) -> None:
        leg.client_tx = self.tx.send_request(leg.invite, leg.peer, self._clock())
        self._by_client_tx[leg.client_tx] = leg
        self._flush()

    def _response(self, event: ResponseReceived, now: float) -> None:
        leg = self._by_client_tx.get(event.transaction)
        response = event.response
        if leg is None or response.cseq[1] != "INVITE":
            return  # the answer to a BYE or CANCEL: nothing more to do
        status = response.status
        if 200 <= status < 300:
            self._outbound_answered(leg, response, now)
        elif status in (401, 407) and not leg.auth_tried and self._retry_with_auth(leg, response):
            return
        elif status >= 300:
            self._by_client_tx.pop(event.transaction, None)
            if leg.state is DialogState.EARLY:
                failure = (DialFailure.BUSY if status in _BUSY else
                           DialFailure.REJECTED if status in _REJECTED else
                           DialFailure.UNREACHABLE)
                self._close(leg)
                if status != 487:  # 487: we cancelled it; the engine knows
                    self.engine.leg_failed(leg, failure, f"{status} {response.reason}")

    def _outbound_answered(self, leg: SipLeg, response: SipResponse, now: float) -> None:
        ack = self._ack_for(leg, response)
        self.tx.send_ack_for_2xx(ack, leg.peer, leg.client_tx)
        if leg.state is not DialogState.EARLY:
            return  # a retransmitted 2xx: the layer re-sent our ACK
        try:
            assert leg.offer is not None  # dial() made ours
            negotiated = sdp.accept_answer(leg.offer, sdp.parse_sdp(response.body))
        except SdpError as exc:
            logger.info("call %s: unusable SDP answer (%s); hanging up", leg.call_id,
                        exc.message)
            leg.state = DialogState.CONFIRMED
            self._send_bye(leg, "unusable SDP answer")
            self._close(leg)
            self.engine.leg_failed(leg, DialFailure.UNREACHABLE, exc.message)
            return
        leg.remote_tag = response.to.tag
        leg.route_set = [str(r) for r in reversed(response.record_routes)]
        if response.contacts:
            leg.remote_target = str(response.contacts[0].uri)
        leg.state = DialogState.CONFIRMED
        leg.start_media(negotiated)
        self._dialogs[(leg.sip_call_id, leg.local_tag)] = leg
        self.engine.leg_answered(leg)

    def _retry_with_auth(self, leg: SipLeg, response: SipResponse) -> bool:
        trunk = leg.trunk
        name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        challenge = response.headers.get(name)
        if trunk is None or not trunk.out_username or challenge is None:
            return False
        try:
            value = authorization(challenge, "INVITE", str(leg.invite.uri), trunk.out_username,
                                  trunk.out_password or "", secrets.token_hex(8))
        except DigestError as exc:
            logger.info("call %s: cannot answer the trunk's challenge: %s", leg.call_id,
                        exc.message)
            return False
        leg.auth_tried = True
        self._by_client_tx.pop(leg.client_tx, None)
        leg.local_cseq += 1
        header = "Authorization" if response.status == 401 else "Proxy-Authorization"
        leg.invite = self._outbound_invite(leg, leg.invite.body, (header, value))
        self._send_invite(leg)
        return True

    def _failed(self, transaction: object, now: float) -> None:
        leg = self._by_client_tx.pop(transaction, None)
        if leg is not None and leg.state is DialogState.EARLY:
            self._close(leg)
            self.engine.leg_failed(leg, DialFailure.UNREACHABLE, "no answer from the far end")

    # ── helpers ────────────────────────────────────────────────────────────
    def _trunk_for(self, ip: str) -> SipTrunk | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for trunk, networks in self._networks:
            if any(address in net for net in networks):
                return trunk
        return None

    def _bucket(self, source: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(source)
        if bucket is None:
            if len(self._buckets) >= MAX_SOURCES:
                self._buckets.pop(next(iter(self._buckets)))
            rate = self.config.invites_per_second
            bucket = self._buckets[source] = TokenBucket(rate, 2 * rate, now)
        return bucket

    def _authorised(self, event: RequestReceived, trunk: SipTrunk, now: float) -> bool:
        challenger = self._challengers.get(trunk.name)
        if challenger is None:
            return True
        value = event.request.headers.get("Authorization")
        if value is None:
            self._answer(event, 401, "credentials required", now,
                         [("WWW-Authenticate", challenger.challenge(now))])
            return False
        try:
            challenger.verify(value, "INVITE", lambda user: trunk.password
                              if user == trunk.username else None, now)
        except DigestChallenge as exc:
            self._answer(event, exc.status, exc.message, now,
                         [("WWW-Authenticate", exc.challenge)])
            return False
        except DigestError as exc:
            # which of user and password was wrong is logged, never told to the sender
            logger.info("INVITE from %s refused: %s", event.addr[0], exc.message)
            self._answer(event, exc.status, "Forbidden" if exc.status == 403 else exc.message,
                         now)
            return False
        return True

    def _dialog_of(self, req: SipRequest) -> SipLeg | None:
        return self._dialogs.get((req.call_id, req.to.tag or ""))

    def _answer(self, event: RequestReceived, status: int, reason: str | None, now: float,
                headers: list[tuple[str, str]] | None = None, to_tag: str | None = None
                ) -> None:
        more = [("Reason", _reason(status, reason))] if reason and status >= 300 else []
        response = make_response(event.request, status, reason,
                                 to_tag=None if status == 100 else to_tag or new_tag(),
                                 headers=[("Server", USER_AGENT), *more, *(headers or [])])
        self.tx.send_response(response, now)

    def _respond(self, leg: SipLeg, status: int, now: float, *, body: bytes = b"",
                 reason_text: str | None = None) -> None:
        headers = [("Server", USER_AGENT)]
        if 100 < status < 300:
            headers += self._contact_headers()
            headers += [("Record-Route", r) for r in leg.invite.headers.get_all("Record-Route")]
        if reason_text:
            headers.append(("Reason", _reason(status, reason_text)))
        response = make_response(leg.invite, status, None,
                                 to_tag=None if status == 100 else leg.local_tag,
                                 headers=headers, body=body,
                                 content_type="application/sdp" if body else None)
        self.tx.send_response(response, now)

    def _contact_headers(self) -> list[tuple[str, str]]:
        return [("Contact", f"<sip:telcoflow@{_host(self.host)}:{self.port}>"),
                ("Allow", ALLOW), ("User-Agent", USER_AGENT)]

    def _via(self) -> str:
        return f"SIP/2.0/UDP {_host(self.host)}:{self.port};branch={new_branch()};rport"

    def _in_dialog(self, leg: SipLeg, method: str,
                   extra: list[tuple[str, str]] | None = None) -> SipRequest:
        """A request within the dialog (BYE), to its remote target along its route set."""
        if leg.outbound:
            from_, to = f"{leg.local_uri};tag={leg.local_tag}", _tagged(leg.remote_uri,
                                                                       leg.remote_tag)
        else:
            from_, to = f"<{leg.local_uri}>;tag={leg.local_tag}", leg.remote_uri
        headers = [("Via", self._via()), ("Max-Forwards", "70"), ("From", from_), ("To", to),
                   ("Call-ID", leg.sip_call_id), ("CSeq", f"{leg.local_cseq} {method}"),
                   *[("Route", r) for r in leg.route_set], *(extra or [])]
        return _request(method, SipUri.parse(_bare(leg.remote_target)), headers, b"")

    def _ack_for(self, leg: SipLeg, response: SipResponse) -> SipRequest:
        target = response.contacts[0].uri if response.contacts else SipUri.parse(
            leg.remote_target)
        headers = [("Via", self._via()), ("Max-Forwards", "70"),
                   ("From", f"{leg.local_uri};tag={leg.local_tag}"),
                   ("To", str(response.to)), ("Call-ID", leg.sip_call_id),
                   ("CSeq", f"{response.cseq[0]} ACK"),
                   *[("Route", str(r)) for r in reversed(response.record_routes)]]
        return _request("ACK", target, headers, b"")


def _request(method: str, uri: SipUri, headers: list[tuple[str, str]], body: bytes
             ) -> SipRequest:
    return SipRequest(method, uri, Headers(headers), body)


def _reason(status: int, text: str) -> str:
    return 'SIP;cause={};text="{}"'.format(status, text.replace('"', "'").replace("\\", "/"))


def _user(number: str) -> str:
    return "".join(c for c in number if c.isalnum() or c in "+-_.*#") or "anonymous"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bare(value: str) -> str:
    """``<sip:x@h>;param`` or ``"Name" <sip:…>`` → ``sip:x@h``."""
    if "<" in value:
        return value[value.index("<") + 1:value.index(">")]
    return value


def _tagged(name_addr: str, tag: str | None) -> str:
    if not tag:
        return name_addr
    parsed = NameAddr.parse(name_addr)
    parsed.tag = tag
    return str(parsed)
