"""Admission control over real sockets: a caller refused while the gateway is overloaded
hears why (GATEWAY_OVERLOADED), and /readyz says "overloaded" until it recovers."""

from __future__ import annotations

import asyncio
import json

import pytest

from telcoflow.engine.overload import Admission, OverloadSettings
from telcoflow.testing import GatewayThread, Phone, PhoneError

from .test_metrics import http_get


@pytest.mark.asyncio
async def test_a_caller_is_refused_with_gateway_overloaded_and_readyz_says_so() -> None:
    with GatewayThread(admission=True) as gw:
        media = gw.gateway.engine.media
        # a window and hold far longer than the test: the verdict cannot expire under it
        admission = Admission(OverloadSettings(window_s=3600.0, hold_s=3600.0))

        def overload() -> None:
            media.admission = admission
            admission.observe(0.25, gw.gateway.clock.now())  # a sub-tick 250 ms late

        gw.run(overload)
        status, _, body = await asyncio.to_thread(http_get, gw.http_url + "/readyz")
        assert (status, json.loads(body)) == (503, {"status": "overloaded"})
        async with Phone(gw.ws_url, gw.phone_key) as phone:
            with pytest.raises(PhoneError, match="GATEWAY_OVERLOADED"):
                await phone.dial(to=gw.number, caller="+15550001")
        assert admission.refused == 1

        def recovered() -> None:
            media.admission = Admission()

        gw.run(recovered)
        status, _, body = await asyncio.to_thread(http_get, gw.http_url + "/readyz")
        assert (status, json.loads(body)) == (200, {"status": "ready"})


@pytest.mark.asyncio
async def test_a_caller_beyond_max_calls_is_refused_and_readyz_says_so_until_one_ends(
        ) -> None:
    """Calls that arrive together load the gateway only once they talk, too late for the
    media's lateness to refuse them: max_calls caps what one process holds."""
    with GatewayThread(max_calls=2) as gw:
        async with Phone(gw.ws_url, gw.phone_key) as a, Phone(gw.ws_url, gw.phone_key) as b:
            await a.dial(to=gw.number, caller="+15550001")  # ringing: no agent takes it
            await b.dial(to=gw.number, caller="+15550002")
            status, _, body = await asyncio.to_thread(http_get, gw.http_url + "/readyz")
            assert (status, json.loads(body)) == (503, {"status": "overloaded"})
            async with Phone(gw.ws_url, gw.phone_key) as c:
                with pytest.raises(PhoneError, match="GATEWAY_OVERLOADED.*max_calls"):
                    await c.dial(to=gw.number, caller="+15550003")
            await a.hangup()
            async with Phone(gw.ws_url, gw.phone_key) as c:
                await c.dial(to=gw.number, caller="+15550003")  # one ended: room again
