"""Bad SIP and RTP input over real UDP: each kind gets the RFC's answer, and none of
it affects another call.

The test is the gateway's peer (:mod:`.raw`: hand-written requests on a plain
UDP socket); where a call must be answered, an agent with our SDK answers it
and keeps what it hears. Every wait is for a datagram or an event, bounded;
where the point is that nothing comes, the test watches for a bounded time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from telcoflow import Call, CallEvent
from telcoflow.protocol.rtp import RtpStats
from telcoflow.server.config import SipTrunk, embedded_defaults
from telcoflow.testing import GatewayThread

from .conftest import sip_config
from .raw import (
    FRAME,
    HOST,
    Addr,
    Dialog,
    Message,
    RtpPeer,
    RtpSource,
    Send,
    SipPeer,
    build,
    paced,
    pcmu_tone,
    rtp_header,
    sdp_media,
    sdp_offer,
)
from .test_sipp_callee import manager_for

pytestmark = pytest.mark.asyncio

LEG_LOGGER = "telcoflow.telephony.sip.leg"
UNROUTED = "+19990000"  # no connector has this number: 404 at once, no call lingers
ALLOW = {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO"}


# ── the gateway, its agent, what it logs ────────────────────────────────────

@contextmanager
def gateway(**sip: object) -> Iterator[GatewayThread]:
    config = embedded_defaults(port=0)
    config.sip = sip_config(**sip)
    with GatewayThread(config, ring_timeout_s=10.0) as gw:
        yield gw


def sip_addr(gw: GatewayThread) -> tuple[str, int]:
    assert gw.config.sip is not None
    return HOST, gw.config.sip.port


@dataclass
class AgentCall:
    call: Call
    heard: bytearray = field(default_factory=bytearray)
    digits: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # call.error codes
    ended: bool = False

    def peaks(self) -> npt.NDArray[np.int32]:
        """The loudest sample of each 20 ms frame heard (PCM16 at 8 kHz)."""
        pcm = np.frombuffer(bytes(self.heard[:len(self.heard) // 320 * 320]), "<i2")
        peaks: npt.NDArray[np.int32] = np.abs(pcm.astype(np.int32)).reshape(-1, FRAME).max(1)
        return peaks

    def frames_near(self, amplitude: int) -> int:
        """How many frames heard peak within 20 % of ``amplitude``."""
        peaks = self.peaks()
        return int(np.count_nonzero(np.abs(peaks - amplitude) < amplitude // 5))


class Agent:
    """Our SDK's agent on the gateway's number: counts the calls it is offered,
    answers each once ``answer`` is set, keeps what it hears and the digits."""

    def __init__(self) -> None:
        self.offers = 0
        self.calls: list[AgentCall] = []
        self.answer = asyncio.Event()
        self.answer.set()
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    async def until(self, condition: Callable[[], bool], what: str,
                    timeout: float = 5.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"the agent: no {what} within {timeout} s") from None

    def by_caller(self, number: str) -> AgentCall:
        return next(c for c in self.calls if c.call.caller_number == number)

    async def on_call(self, call: Call) -> None:
        record = AgentCall(call)
        self.calls.append(record)
        self.changed()

        def digit(d: object) -> None:
            record.digits.append(d.digit)  # type: ignore[attr-defined]
            self.changed()

        def ended() -> None:
            record.ended = True
            self.changed()

        def error(data: dict[str, str]) -> None:
            record.errors.append(data["error_code"])
            self.changed()

        call.on_dtmf(digit)
        call.on_terminated(ended)
        call.on_call_event(CallEvent.CALL_ERROR)(error)
        await self.answer.wait()
        assert await call.answer()
        async for chunk in call.audio_stream():
            record.heard.extend(chunk)
            self.changed()


@asynccontextmanager
async def agent_on(gw: GatewayThread) -> AsyncIterator[Agent]:
    agent = Agent()
    async with manager_for(gw) as sm:
        @sm.on_session_notification
        async def on_notify(noti: object) -> None:
            agent.offers += 1
            agent.changed()
            session = await sm.open_session(noti.session_id)  # type: ignore[attr-defined]
            session.on_incoming_call(agent.on_call)
            await session.ready()

        yield agent


@pytest.fixture
def rtp_socket() -> Iterator[Callable[[], RtpPeer]]:
    """Opens RTP sockets of the test's, closed when it ends."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(RtpPeer())


@asynccontextmanager
async def caller_and_agent(gw: GatewayThread) -> AsyncIterator[tuple[SipPeer, Agent]]:
    async with SipPeer.open(sip_addr(gw)) as peer, agent_on(gw) as agent:
        yield peer, agent


async def answered_call(gw: GatewayThread, peer: SipPeer, agent: Agent, rtp: RtpPeer,
                        caller: str = "+15550001") -> tuple[Dialog, AgentCall, Addr]:
    """A call of ours from ``caller`` with its RTP at ``rtp``, the agent answered: the
    dialog, the agent's side of it, and the gateway's RTP address."""
    dialog = Dialog(peer, gw.number, caller=caller)
    answered = await dialog.call(sdp_offer(rtp.port))
    assert answered.status == 200, str(answered)
    media, direction = sdp_media(answered.body)
    assert direction == "sendrecv", str(answered)
    await agent.until(lambda: any(c.call.caller_number == caller for c in agent.calls),
                      "call")
    return dialog, agent.by_caller(caller), media


def settle(gw: GatewayThread) -> None:
    """Return once the gateway's loop has read the datagrams already sent to it: it
    polls its sockets before it runs a callback queued now, and runs their readers
    in the same turn; the second callback comes after them."""
    for _ in range(2):
        gw.run(lambda: None)


def rtp_report(caplog: pytest.LogCaptureFixture, call_id: str) -> RtpStats:
    """The RTP counters the leg of ``call_id`` logged at its end."""
    reports = [r for r in caplog.records
               if r.name == LEG_LOGGER and getattr(r, "call_id", None) == call_id]
    assert len(reports) == 1, [r.getMessage() for r in caplog.records if r.name == LEG_LOGGER]
    stats = reports[0].rtp  # type: ignore[attr-defined]
    assert isinstance(stats, RtpStats)
    return stats


# ── checks on what the gateway answered ─────────────────────────────────────

def assert_answers(response: Message, peer: SipPeer, dialog: Dialog,
                   status: int, reason: str | None = None) -> None:
    """``response`` has ``status``, came to us by our Via (rport filled in), names our
    call, and carries a To tag (RFC 3261 §8.2.6.2: every final response does)."""
    assert response.status == status, str(response)
    if reason is not None:
        assert reason in response.reason, str(response)
    assert f"rport={peer.addr[1]}" in (response.header("Via") or ""), str(response)
    assert response.header("Call-ID") == dialog.call_id, str(response)
    assert response.tag("From") == dialog.tag, str(response)
    assert response.tag("To"), f"no To tag:\n{response}"


async def answer_to(dialog: Dialog, data: bytes, status: int, reason: str | None = None,
                    method: str = "INVITE") -> Message:
    """Send ``data``: its final response, checked (and ACKed for an INVITE)."""
    dialog.peer.send(data)
    response = await dialog.peer.response((dialog.cseq, method))
    assert_answers(response, dialog.peer, dialog, status, reason)
    if method == "INVITE":
        dialog.ack(response)
    return response


async def still_serves(peer: SipPeer) -> None:
    """The endpoint answers an OPTIONS: whatever came before did not stop it."""
    probe = Dialog(peer, "+15550000")
    cseq = probe.send("OPTIONS")
    assert (await peer.response(cseq)).status == 200


async def rings(dialog: Dialog, rtp_port: int = 4000) -> Message:
    """INVITE: 100 Trying, then 180 Ringing (the call was offered to agents)."""
    dialog.invite(sdp_offer(rtp_port))
    trying = await dialog.peer.response((dialog.cseq, "INVITE"), final=False)
    assert trying.status == 100, str(trying)
    ringing = await dialog.peer.response((dialog.cseq, "INVITE"), final=False)
    assert ringing.status == 180 and ringing.tag("To"), str(ringing)
    return ringing


async def cancel(dialog: Dialog) -> tuple[Message, Message]:
    """CANCEL our ringing INVITE: the 200 to the CANCEL and the 487, ACKed."""
    cseq = dialog.cancel()
    ok = await dialog.peer.response((cseq[0], "CANCEL"))
    terminated = await dialog.peer.response((cseq[0], "INVITE"))
    dialog.ack(terminated)
    return ok, terminated


# ── malformed requests ──────────────────────────────────────────────────────

async def test_a_header_section_cut_short_gets_400(sip_gateway: GatewayThread) -> None:
    async with SipPeer.open(sip_addr(sip_gateway)) as peer:
        dialog = Dialog(peer, sip_gateway.number)
        data = dialog.message("INVITE", sdp_offer(4000))
        cut = data[:data.index(b"Contact:") + 14]  # in the middle of a line, no empty line
        await answer_to(dialog, cut, 400, "empty line")
        await still_serves(peer)


@pytest.mark.parametrize("missing", ["Call-ID", "From", "To"])
async def test_a_request_without_call_id_from_or_to_gets_400(
        sip_gateway: GatewayThread, missing: str) -> None:
    """RFC 4475 §3.1.2.18: ideally a 400. Its Via and CSeq are there, so the answer
    reaches the sender and matches its transaction; it names what is missing."""
    async with SipPeer.open(sip_addr(sip_gateway)) as peer:
        dialog = Dialog(peer, sip_gateway.number)
        fields = [f for f in dialog.fields("INVITE") if f[0] != missing]
        peer.send(build(f"INVITE {dialog.target} SIP/2.0",
                        [*fields, ("Content-Type", "application/sdp")], sdp_offer(4000)))
        response = await peer.response((1, "INVITE"))
        assert response.status == 400 and f"no {missing} header" in response.reason, \
            str(response)
        assert f"rport={peer.addr[1]}" in (response.header("Via") or ""), str(response)
        present = {"Call-ID": response.header("Call-ID") == dialog.call_id,
                   "From": response.tag("From") == dialog.tag,
                   "To": response.tag("To") is not None}
        assert all(ok for name, ok in present.items() if name != missing), str(response)
        assert response.header(missing) is None, str(response)
        await still_serves(peer)


@pytest.mark.parametrize("missing", ["Via", "CSeq"])
async def test_a_request_without_via_or_cseq_is_dropped(
        sip_gateway: GatewayThread, missing: str) -> None:
    """Without a Via an answer has nowhere to go (§18.2.2); without a CSeq no client
    transaction could match it (§17.1.3): nothing is sent, and the endpoint serves on."""
    async with SipPeer.open(sip_addr(sip_gateway)) as peer:
        dialog = Dialog(peer, sip_gateway.number)
        fields = [f for f in dialog.fields("INVITE") if f[0] != missing]
        peer.send(build(f"INVITE {dialog.target} SIP/2.0",
                        [*fields, ("Content-Type", "application/sdp")], sdp_offer(4000)))
        await still_serves(peer)  # its answer comes after anything the INVITE caused
        await peer.nothing(0.2, lambda m: m.header("Call-ID") == dialog.call_id,
                           "answer to the INVITE")


@pytest.mark.parametrize("padding", ["one 20 kB header", "200 header fields"])
async def test_a_message_over_the_size_limit_gets_513(
        sip_gateway: GatewayThread, padding: str) -> None:
    """513 Message Too Large (§21.5.14). A UDP datagram cannot exceed the 64 kB the
    parser reads at most, so the limits a datagram meets are the header section's:
    16 kB, 128 fields."""
    async with SipPeer.open(sip_addr(sip_gateway)) as peer:
        dialog = Dialog(peer, sip_gateway.number)
        extra = ([("Subject", "x" * 20_000)] if padding.startswith("one")
                 else [(f"X-Pad-{i}", "x") for i in range(200)])
        data = dialog.message("INVITE", sdp_offer(4000), extra=extra)
        await answer_to(dialog, data, 513)
        await still_serves(peer)


async def test_a_content_length_longer_than_the_body_gets_400(
        sip_gateway: GatewayThread) -> None:
    async with SipPeer.open(sip_addr(sip_gateway)) as peer:
        dialog = Dialog(peer, sip_gateway.number)
        body = sdp_offer(4000)
        fields = [*dialog.fields("INVITE"), ("Content-Type", "application/sdp")]
        data = build(f"INVITE {dialog.target} SIP/2.0", fields, body,
                     content_length=len(body) + 10)
        await answer_to(dialog, data, 400, "Content-Length")


async def test_bytes_past_the_content_length_are_discarded(sip_gateway: GatewayThread) -> None:
    """RFC 3261 §18.3: over UDP, what follows the body Content-Length gives is dropped;
    the call goes on (were it read, the junk would make the SDP unreadable)."""
    async with SipPeer.open(sip_addr(sip_gateway)) as peer:
        dialog = Dialog(peer, sip_gateway.number)
        body = sdp_offer(4000)
        fields = [*dialog.fields("INVITE"), ("Content-Type", "application/sdp")]
        peer.send(build(f"INVITE {dialog.target} SIP/2.0", fields,
                        body + b"this is not SDP\r\n", content_length=len(body)))
        assert (await peer.response((1, "INVITE"), final=False)).status == 100
        assert (await peer.response((1, "INVITE"), final=False)).status == 180
        ok, terminated = await cancel(dialog)
        assert (ok.status, terminated.status) == (200, 487)


@pytest.mark.parametrize(("sdp", "status", "reason"), [
    (b"v=0\r\nthis is not SDP\r\n", 400, "SDP line 2"),
    (sdp_offer(4000, payload_types=(18,)), 488, "not acceptable"),
], ids=["unreadable", "no common codec"])
async def test_an_invite_with_bad_sdp_is_refused(
        sip_gateway: GatewayThread, sdp: bytes, status: int, reason: str) -> None:
    async with SipPeer.open(sip_addr(sip_gateway)) as peer:
        dialog = Dialog(peer, sip_gateway.number)
        await answer_to(dialog, dialog.message("INVITE", sdp), status, reason)


@pytest.mark.parametrize(("method", "status", "accept"), [
    ("FROBNICATE", 501, None), ("OPTIONS", 200, "application/sdp"),
], ids=["unknown method: 501", "OPTIONS: 200"])
async def test_what_the_gateway_does_is_listed_in_allow(
        sip_gateway: GatewayThread, method: str, status: int, accept: str | None) -> None:
    """A method it does not implement: 501 with Allow (§21.5.2); OPTIONS: 200 with
    Allow and Accept (§11.2)."""
    async with SipPeer.open(sip_addr(sip_gateway)) as peer:
        dialog = Dialog(peer, sip_gateway.number)
        response = await answer_to(dialog, dialog.message(method), status, method=method)
        allow = {m.strip() for m in (response.header("Allow") or "").split(",")}
        assert allow == ALLOW, str(response)
        assert response.header("Accept") == accept, str(response)


# ── who may call ────────────────────────────────────────────────────────────

async def test_an_invite_flood_gets_503_and_another_source_still_calls(
        rtp_socket: Callable[[], RtpPeer]) -> None:
    """2 INVITEs a second per source (a burst of 4): the flooding source gets
    503 with Retry-After; a call from another address is answered meanwhile."""
    trunk = SipTrunk("loopback", sources=["127.0.0.0/8"])
    with gateway(invites_per_second=2.0, trunks=[trunk]) as gw:
        async with SipPeer.open(sip_addr(gw), "127.0.0.2") as flooder, \
                SipPeer.open(sip_addr(gw)) as caller, agent_on(gw) as agent:
            flood = [Dialog(flooder, UNROUTED) for _ in range(10)]
            for dialog in flood:
                dialog.invite(sdp_offer(4000))
            statuses = []
            for _ in flood:
                response = await flooder.response((1, "INVITE"), timeout=2.0)
                match = next(d for d in flood if d.call_id == response.header("Call-ID"))
                match.ack(response)
                statuses.append(response.status)
                if response.status == 503:
                    assert response.header("Retry-After") == "1", str(response)
                    assert (response.header("Reason") or "").startswith("SIP;cause=503;"), \
                        str(response)
            assert statuses[:4] == [404] * 4 and statuses.count(503) >= 5, statuses
            assert set(statuses) == {404, 503}, statuses

            dialog, _, _ = await answered_call(gw, caller, agent, rtp_socket())
            assert (await caller.response(dialog.bye())).status == 200


async def test_a_source_outside_every_trunk_gets_403() -> None:
    trunk = SipTrunk("carrier", sources=["127.0.0.2/32"])
    with gateway(trunks=[trunk]) as gw:
        async with SipPeer.open(sip_addr(gw)) as stranger, \
                SipPeer.open(sip_addr(gw), "127.0.0.2") as carrier:
            dialog = Dialog(stranger, gw.number)
            await answer_to(dialog, dialog.message("INVITE", sdp_offer(4000)), 403,
                          "not an allowed trunk source")
            trusted = Dialog(carrier, gw.number)
            await rings(trusted)  # the same INVITE from the trunk's address is taken
            await cancel(trusted)


def digest(challenge: str, user: str, password: str, uri: str) -> str:
    """An Authorization value for an INVITE (RFC 2617, MD5, qop=auth)."""
    params = dict(re.findall(r'(\w+)="?([^",]+)"?', challenge))
    assert challenge.startswith("Digest ") and "auth" in params["qop"], challenge
    realm, nonce, nc, cnonce = params["realm"], params["nonce"], "00000001", secrets.token_hex(4)

    def h(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = h(f"{user}:{realm}:{password}"), h(f"INVITE:{uri}")
    response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}"')


async def test_a_trunk_with_credentials_challenges_then_refuses_a_wrong_password() -> None:
    trunk = SipTrunk("loopback", username="carrier", password="s3cret")
    with gateway(trunks=[trunk]) as gw:
        async with SipPeer.open(sip_addr(gw)) as peer:
            dialog = Dialog(peer, gw.number)
            dialog.invite(sdp_offer(4000))
            challenge = await peer.response((1, "INVITE"))
            assert_answers(challenge, peer, dialog, 401)
            dialog.ack(challenge)
            www = challenge.header("WWW-Authenticate") or ""
            assert re.match(r'Digest realm="telcoflow", nonce="[^"]+"', www), str(challenge)
            assert 'qop="auth"' in www, str(challenge)

            for password, status in (("guess", 403), ("s3cret", 180)):
                dialog.cseq += 1  # the retry is a new transaction of the same call (§22.2)
                dialog.invite(sdp_offer(4000), extra=[
                    ("Authorization", digest(www, "carrier", password, dialog.target))])
                response = await peer.response((dialog.cseq, "INVITE"), final=status >= 200)
                if status == 180:
                    while response.status == 100:
                        response = await peer.response((dialog.cseq, "INVITE"), final=False)
                assert response.status == status, str(response)
                if status == 403:
                    assert response.reason == "Forbidden", str(response)  # no hint which
                    assert response.header("WWW-Authenticate") is None, str(response)
                    dialog.ack(response)
            await cancel(dialog)


# ── the life of a call ──────────────────────────────────────────────────────

async def test_cancel_before_the_answer_gets_200_and_the_invite_487(
        sip_gateway: GatewayThread) -> None:
    async with SipPeer.open(sip_addr(sip_gateway)) as peer:
        dialog = Dialog(peer, sip_gateway.number)
        ringing = await rings(dialog)
        ok, terminated = await cancel(dialog)
        assert ok.status == 200 and terminated.status == 487, (str(ok), str(terminated))
        # one dialog: the To tag of the 180, the 487 and the CANCEL's 200 (§9.2)
        assert ringing.tag("To") == terminated.tag("To") == ok.tag("To"), (
            str(ringing), str(terminated), str(ok))
        # the ACK ended the INVITE transaction: the 487 is not sent again (T1 = 0.5 s)
        await peer.nothing(0.7, lambda m: m.status == 487, "487 retransmission")
        # a CANCEL for an INVITE the gateway never saw: 481 (§9.2)
        stray = Dialog(peer, sip_gateway.number)
        stray.message("INVITE")  # a branch for an INVITE that is never sent
        response = await peer.response(stray.cancel())
        assert_answers(response, peer, stray, 481)


async def test_a_bye_from_the_caller_gets_200_and_ends_the_agents_call(
        sip_gateway: GatewayThread, rtp_socket: Callable[[], RtpPeer]) -> None:
    async with caller_and_agent(sip_gateway) as (peer, agent):
        dialog, call, _ = await answered_call(sip_gateway, peer, agent, rtp_socket())
        response = await peer.response(dialog.bye())
        assert_answers(response, peer, dialog, 200)
        assert response.tag("To") == dialog.remote_tag, str(response)
        await agent.until(lambda: call.ended, "end of the call")
        # the dialog is gone: another BYE is for no call (§15.1.2)
        assert (await peer.response(dialog.bye())).status == 481


async def test_an_agent_that_hangs_up_sends_bye(
        sip_gateway: GatewayThread, rtp_socket: Callable[[], RtpPeer]) -> None:
    async with caller_and_agent(sip_gateway) as (peer, agent):
        dialog, call, _ = await answered_call(sip_gateway, peer, agent, rtp_socket())
        assert await call.call.disconnect()
        bye = await peer.request("BYE")
        host, port = peer.addr
        assert bye.start == f"BYE sip:{dialog.caller}@{host}:{port} SIP/2.0", str(bye)
        assert bye.header("Call-ID") == dialog.call_id, str(bye)
        assert bye.tag("From") == dialog.remote_tag and bye.tag("To") == dialog.tag, str(bye)
        assert bye.cseq[1] == "BYE" and bye.header("Reason"), str(bye)
        peer.respond(bye, 200)
        # answered: the gateway's BYE transaction is over, nothing is sent again
        await peer.nothing(0.7, lambda m: m.method == "BYE", "BYE retransmission")
        await agent.until(lambda: call.ended, "end of the call")


async def test_a_retransmitted_invite_is_absorbed(
        sip_gateway: GatewayThread, rtp_socket: Callable[[], RtpPeer]) -> None:
    async with caller_and_agent(sip_gateway) as (peer, agent):
        agent.answer.clear()  # the call rings until the retransmission is answered
        dialog = Dialog(peer, sip_gateway.number)
        invite = dialog.invite(sdp_offer(rtp_socket().port))
        assert (await peer.response((1, "INVITE"), final=False)).status == 100
        ringing = await peer.response((1, "INVITE"), final=False)
        assert ringing.status == 180
        await agent.until(lambda: agent.calls != [], "call offered")
        peer.send(invite)  # as a caller whose 1xx was lost sends it again
        again = await peer.response((1, "INVITE"), final=False)
        assert again.status == 180 and again.tag("To") == ringing.tag("To"), str(again)
        assert sip_gateway.run(lambda: len(sip_gateway.gateway.engine.calls)) == 1
        agent.answer.set()
        answered = await peer.response((1, "INVITE"))
        assert answered.status == 200
        dialog.ack(answered)
        assert (await peer.response(dialog.bye())).status == 200
        assert agent.offers == 1 and len(agent.calls) == 1
        await peer.nothing(0.1, lambda m: m.status is not None and m.status < 200,
                           "second provisional response")


async def test_hold_stops_audio_both_ways_and_resume_restarts_it(
        sip_gateway: GatewayThread, caplog: pytest.LogCaptureFixture,
        rtp_socket: Callable[[], RtpPeer]) -> None:
    """re-INVITE a=sendonly: the caller's audio (loud, on hold) reaches no agent and
    the gateway sends nothing; re-INVITE a=sendrecv: audio flows both ways again."""
    caplog.set_level(logging.INFO, logger=LEG_LOGGER)
    rtp, source = rtp_socket(), RtpSource()
    before, held, after = 3000, 24000, 10000  # the tone's amplitude in each phase
    async with caller_and_agent(sip_gateway) as (peer, agent):
        dialog, call, media = await answered_call(sip_gateway, peer, agent, rtp)

        def tone(amplitude: int, frames: int) -> list[list[Send]]:
            return [[(rtp, source.packet(f), media)] for f in pcmu_tone(amplitude, frames)]

        async def reinvite(direction: str, version: int) -> None:
            dialog.invite(sdp_offer(rtp.port, direction, version))
            ok = await peer.response((dialog.cseq, "INVITE"))
            assert ok.status == 200, str(ok)
            dialog.ack(ok)
            answer = {"sendonly": "recvonly", "sendrecv": "sendrecv"}[direction]
            assert sdp_media(ok.body)[1] == answer, str(ok)

        sent = await paced(tone(before, 15))
        await agent.until(lambda: call.frames_near(before) >= 5, "audio before the hold")
        await rtp.recv()  # and the gateway's RTP reaches us

        await reinvite("sendonly", 2)
        rtp.drain()  # what the gateway sent before the 200 is in; nothing may follow
        sent += await paced(tone(held, 20))  # the caller plays loud audio on hold
        settle(sip_gateway)  # and the gateway has read it all before the resume
        assert rtp.drain() == [], "the gateway sent RTP to a caller that holds it"
        heard_on_hold = len(call.heard)

        await reinvite("sendrecv", 3)
        await rtp.recv()  # the gateway sends again
        sent += await paced(tone(after, 15))
        await paced([[(rtp, p, media)] for p in source.dtmf(1)])  # read all before it
        await agent.until(lambda: call.digits == ["1"] and call.frames_near(after) >= 5,
                          "audio and a digit after the resume")
        assert (await peer.response(dialog.bye())).status == 200
    assert call.peaks().max() < (held + after) // 2, "audio sent on hold reached the agent"
    assert call.frames_near(before) >= 5 and len(call.heard) > heard_on_hold
    report = rtp_report(caplog, call.call.id)
    assert report.audio_packets == sent, report  # the held audio came, and was dropped


async def test_bad_rtp_is_counted_and_the_audio_flows_on(
        sip_gateway: GatewayThread, caplog: pytest.LogCaptureFixture,
        rtp_socket: Callable[[], RtpPeer]) -> None:
    """Into a live call: packets of a payload type nobody offered, another SSRC from
    the caller's address (a new source: followed), a stranger's packets from another
    socket (never latched to), datagrams that are not RTP. The agent hears the
    caller throughout, the gateway keeps sending to the caller, and the leg's RTP
    report counts each kind."""
    caplog.set_level(logging.INFO, logger=LEG_LOGGER)
    rtp, stranger = rtp_socket(), rtp_socket()
    first, second, intruder = RtpSource(), RtpSource(), RtpSource()
    quiet, loud, bad = 4000, 10000, 30000  # amplitudes: first source, second, rejected
    async with caller_and_agent(sip_gateway) as (peer, agent):
        dialog, call, media = await answered_call(sip_gateway, peer, agent, rtp)
        good = [[(rtp, first.packet(f), media)] for f in pcmu_tone(quiet, 10)]
        junk = pcmu_tone(bad, 1)[0]
        slots: list[list[Send]] = [
            *good[:5],
            # payload type 18 (G.729) was not offered: 3 dropped
            *([(rtp, first.packet(junk, pt=18, advance=False), media)] for _ in range(3)),
            *good[5:8],
            # a stranger's stream, fewer than 5 in a row: 4 dropped as foreign
            [(stranger, intruder.packet(junk), media) for _ in range(4)],
            *good[8:],
            # not RTP at all: 2 malformed
            [(rtp, b"\x00garbage", media), (rtp, b"\xff" * 11, media)],
            # the caller's phone restarts its stream: a new SSRC, the same address
            *([(rtp, second.packet(f), media)] for f in pcmu_tone(loud, 15)),
        ]
        assert await paced(slots) == 10 + 3 + 1 + 1 + 15
        await paced([[(rtp, p, media)] for p in second.dtmf(5)])  # a marker: digit 5
        await agent.until(lambda: call.digits == ["5"], "digit after the bad input")
        # everything before the digit has been read; the gateway still sends to us
        rtp.drain()
        assert rtp_header(await rtp.recv())[0] == 0
        assert stranger.drain() == [], "the gateway sent RTP to the stranger"
        await agent.until(lambda: call.frames_near(loud) >= 10, "the second source")
        assert (await peer.response(dialog.bye())).status == 200
    # told once (the three came within the report interval), and the call went on
    assert call.errors == ["CALLER_AUDIO_INVALID"]
    assert call.peaks().max() < (loud + bad) // 2, "a rejected packet was played"
    assert call.frames_near(quiet) >= 5
    report = rtp_report(caplog, call.call.id)
    counted = (report.audio_packets, report.wrong_payload_type, report.foreign,
               report.malformed, report.ssrc_changes, report.address_changes,
               report.dtmf_digits, report.lost)
    assert counted == (10 + 15, 3, 4, 2, 1, 0, 1, 0), report


async def test_garbage_at_one_calls_rtp_port_leaves_another_call_alone(
        sip_gateway: GatewayThread, caplog: pytest.LogCaptureFixture,
        rtp_socket: Callable[[], RtpPeer]) -> None:
    """Two calls at once; all sorts of garbage, and a stranger's stream, to the first
    call's RTP port. The second call's agent hears its caller, every packet and
    nothing else; its report counts no bad packet, the first's counts them all."""
    caplog.set_level(logging.INFO, logger=LEG_LOGGER)
    rtp1, rtp2, stranger = rtp_socket(), rtp_socket(), rtp_socket()
    source1, source2, intruder = RtpSource(), RtpSource(), RtpSource()
    level1, level2, junk_level = 3000, 9000, 30000
    async with caller_and_agent(sip_gateway) as (peer, agent):
        d1, c1, m1 = await answered_call(sip_gateway, peer, agent, rtp1, "+15550001")
        d2, c2, m2 = await answered_call(sip_gateway, peer, agent, rtp2, "+15550002")
        assert m1 != m2
        junk = pcmu_tone(junk_level, 1)[0]
        garbage: list[Send] = [
            (stranger, b"\x00" + secrets.token_bytes(171), m1),  # not RTP version 2
            (stranger, b"\x80\xc8" + bytes(26), m1),              # RTCP sender report
            (stranger, intruder.packet(junk, pt=96), m1),         # no such payload type
            (stranger, intruder.packet(junk), m1),                # a stranger's audio
            (stranger, b"\x3f" + secrets.token_bytes(1399), m1),  # big junk
        ]
        slots = [[(rtp1, source1.packet(f1), m1), (rtp2, source2.packet(f2), m2),
                  *(garbage if 10 <= i < 30 else [])]
                 for i, (f1, f2) in enumerate(zip(pcmu_tone(level1, 40),
                                                  pcmu_tone(level2, 40), strict=True))]
        sent = await paced(slots)
        # a digit on each call: what was sent before it has been read
        await paced([[(rtp1, p1, m1), (rtp2, p2, m2)]
                     for p1, p2 in zip(source1.dtmf(3), source2.dtmf(7), strict=True)])
        await agent.until(lambda: (c1.digits, c2.digits) == (["3"], ["7"]), "digits")
        ssrcs = {rtp_header(p)[3] for p in rtp2.drain()}
        assert len(ssrcs) == 1, "the second caller got RTP of two sources"
        assert (await peer.response(d2.bye())).status == 200
        assert (await peer.response(d1.bye())).status == 200
    assert c2.frames_near(level2) >= 25 and c2.peaks().max() < (level2 + junk_level) // 2
    second = rtp_report(caplog, c2.call.id)
    assert (second.audio_packets, second.lost, second.malformed, second.rtcp,
            second.wrong_payload_type, second.foreign, second.ssrc_changes,
            second.address_changes) == (sent, 0, 0, 0, 0, 0, 0, 0), second
    first = rtp_report(caplog, c1.call.id)
    assert (first.audio_packets, first.malformed, first.rtcp, first.wrong_payload_type,
            first.foreign) == (sent, 40, 20, 20, 20), first


@pytest.fixture
def quick_rtp_timeout() -> Iterator[GatewayThread]:
    config = embedded_defaults(port=0)
    config.sip = sip_config(rtp_timeout_s=0.6)
    with GatewayThread(config, ring_timeout_s=10.0) as gw:
        yield gw


async def test_a_caller_whose_rtp_stops_is_hung_up_with_a_bye_that_says_why(
        quick_rtp_timeout: GatewayThread, rtp_socket: Callable[[], RtpPeer]) -> None:
    """A phone that vanished without a BYE (crashed, unplugged): after rtp_timeout_s of no
    RTP the gateway sends BYE with a Reason and the agent's call ends; a held call, which
    sends no RTP by agreement, is not hung up."""
    gw, rtp, source = quick_rtp_timeout, rtp_socket(), RtpSource()
    loop = asyncio.get_running_loop()
    async with caller_and_agent(gw) as (peer, agent):
        dialog, call, media = await answered_call(gw, peer, agent, rtp)
        dialog.invite(sdp_offer(rtp.port, "inactive", 2))  # hold: no RTP, by agreement
        held = await peer.response((dialog.cseq, "INVITE"))
        dialog.ack(held)
        await peer.nothing(1.2, lambda m: m.method == "BYE", "BYE while on hold")
        dialog.invite(sdp_offer(rtp.port, "sendrecv", 3))  # resume, then one last packet
        resumed = await peer.response((dialog.cseq, "INVITE"))
        dialog.ack(resumed)
        await paced([[(rtp, source.packet(f), media)] for f in pcmu_tone(3000, 5)])
        stopped = loop.time()
        bye = await peer.request("BYE")
        assert loop.time() - stopped >= 0.6
        assert "no RTP for" in (bye.header("Reason") or ""), str(bye)
        peer.respond(bye, 200)
        await agent.until(lambda: call.ended, "end of the agent's call")
