"""Bad input from VAIC: refused with a specific code, the call (and every other) goes on."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest

from telcoflow.testing import GatewayThread
from telcoflow.testing.vaic_client import VaicCaller

from ..interop.signals import best_lag, noise
from .conftest import agent, ingress, vaic


def chunk(cid: str, payload: str) -> str:
    return json.dumps({"type": "userStream.chunk", "conversationId": cid, "audioChunk": payload})


async def still_echoes(caller: VaicCaller) -> None:
    """The call survived: audio goes round the agent as before."""
    sent = noise(0.3, caller.rate, amplitude=6000)
    start = len(caller.received())
    await caller.play(np.concatenate([sent, np.zeros(caller.rate // 4, np.int16)]))
    heard = await caller.wait_received(start + len(sent) + caller.rate // 10, timeout=5)
    assert best_lag(heard[start:], sent)[1] > 0.99


async def refused(gw: GatewayThread, code: str, caller: VaicCaller | None = None) -> None:
    """``code`` was counted. With ``caller``: after its connection.validate is answered
    (one socket's messages are handled in order); else polled on the gateway's loop."""
    if caller is not None:
        await caller.validate()
        assert gw.run(lambda: ingress(gw).rejected[code]) == 1
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while gw.run(lambda: ingress(gw).rejected[code]) == 0:
        assert loop.time() < deadline, f"{code} never counted"
        await asyncio.sleep(0.01)  # a polling interval, not a synchronisation


@pytest.mark.asyncio
@pytest.mark.parametrize(("make", "code"), [
    (lambda cid: json.dumps({"type": "userStream.dance", "conversationId": cid}), "UNKNOWN_TYPE"),
    (lambda cid: chunk(cid, "%%%not base64%%%"), "BAD_BASE64"),
    (lambda cid: chunk(cid, base64.b64encode(b"\x01\x02\x03").decode()), "ODD_LENGTH"),
    (lambda cid: '{"type": "userStream.chunk", "audioChunk": ""}', "MISSING_CONVERSATION_ID"),
    (lambda cid: "{not json", "BAD_JSON"),
    (lambda cid: chunk("someone-else", ""), "WRONG_CONVERSATION"),
])
async def test_a_bad_message_is_dropped_and_the_call_goes_on(gw: GatewayThread, make: object,
                                                            code: str) -> None:
    async with agent(gw) as seen, vaic(gw, "raw/lpcm16") as caller:
        await caller.dial("bot", "+15550001")
        await caller.wait_answered()
        await caller.send_raw(make(caller.conversation_id))  # type: ignore[operator]
        await refused(gw, code, caller)
        await still_echoes(caller)
        assert not seen.terminated.is_set()
        await caller.hangup()


@pytest.mark.asyncio
async def test_a_chunk_before_user_stream_start_is_refused(gw: GatewayThread) -> None:
    async with agent(gw, echo=False), vaic(gw, "raw/lpcm16") as caller:
        await caller.dial("bot", "+15550001")
        await caller.wait_answered()
        await caller.send_raw(chunk(caller.conversation_id,
                                    base64.b64encode(bytes(640)).decode()))
        await refused(gw, "CHUNK_BEFORE_START", caller)
        await caller.hangup()


@pytest.mark.asyncio
async def test_only_unsupported_formats_get_session_error(gw: GatewayThread) -> None:
    async with vaic(gw, "wav/lpcm16", "audio/opus") as caller:
        await caller.dial("bot", "+15550001")
        with pytest.raises(Exception, match="none of the offered media formats"):
            await caller.wait_answered(timeout=5)
        assert "raw/lpcm16_24" in (caller.events.refused or "")
    assert gw.run(lambda: gw.gateway.engine.calls) == {}


@pytest.mark.asyncio
async def test_junk_before_any_session_closes_with_a_reason(gw: GatewayThread) -> None:
    async with vaic(gw) as caller:
        await caller.send_raw(chunk("c1", ""))
        await caller.wait_for(lambda: caller.events.closed is not None, timeout=5)
        assert caller.events.closed is not None
        code, reason = caller.events.closed
        assert code == 1008 and reason.startswith("NO_SESSION")


@pytest.mark.asyncio
async def test_an_audio_flood_is_cut_to_real_time_and_others_are_unaffected(
        gw: GatewayThread) -> None:
    async with agent(gw) as seen, vaic(gw, "raw/lpcm16") as flooder, \
            vaic(gw, "raw/lpcm16") as other:
        await flooder.dial("bot", "+15550001")
        await other.dial("bot", "+15550002")
        await flooder.wait_answered()
        await other.wait_answered()
        cid = flooder.conversation_id
        await flooder.send_raw(json.dumps({"type": "userStream.start", "conversationId": cid}))
        one_second = chunk(cid, base64.b64encode(bytes(32000)).decode())
        for _ in range(10):  # ten seconds of audio at once, and a burst of messages
            await flooder.send_raw(one_second)
        for _ in range(600):
            await flooder.send_raw(json.dumps({"type": "userStream.stop",
                                               "conversationId": cid}))
        await refused(gw, "AUDIO_FLOOD")
        await refused(gw, "MESSAGE_FLOOD")
        await still_echoes(other)
        assert len(seen.calls) == 2 and not seen.terminated.is_set()
        await other.hangup()
        await flooder.hangup()
