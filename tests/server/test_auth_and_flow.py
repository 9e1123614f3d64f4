"""Voice tokens expire; call_flow.setup decides which calls are offered."""

from __future__ import annotations

import pytest

from telcoflow.server.auth import Authenticator
from telcoflow.server.config import embedded_defaults
from telcoflow.server.errors import AuthError
from telcoflow.testing import GatewayThread, Phone, PhoneError

from .rawclient import recv_type, request, sm_connect


def test_voice_tokens_are_bound_to_call_and_expire() -> None:
    config = embedded_defaults()
    config.token_ttl_s = 60
    auth = Authenticator(config)
    token = auth.issue_voice_token("call-1", "conn-1", now=1000.0)
    headers = {"authorization": f"Bearer {token}"}
    assert auth.verify_voice_token(headers, "call-1", now=1059.0) == "conn-1"
    with pytest.raises(AuthError, match="expired"):
        auth.verify_voice_token(headers, "call-1", now=1061.0)
    with pytest.raises(AuthError, match="another call"):
        auth.verify_voice_token(headers, "call-2", now=1001.0)
    other = Authenticator(config)  # another gateway's secret
    with pytest.raises(AuthError, match="signature"):
        other.verify_voice_token(headers, "call-1", now=1001.0)


@pytest.mark.asyncio
async def test_inbound_no_declines_calls_and_all_restores_them(gateway: GatewayThread) -> None:
    sm = await sm_connect(gateway)
    flow = {"type": "call_flow.setup", "data": {"inboundCall": "NO", "outboundCall": False,
                                                "inboundMessage": False, "outboundMessage": False}}
    assert (await request(sm, flow, "f1"))["ok"] is True
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        with pytest.raises(PhoneError, match="DECLINED"):
            await phone.dial(gateway.number)
        assert "does not take calls" in (phone.events.hangup_message or "")
    flow["data"]["inboundCall"] = "ALL"  # type: ignore[index]
    assert (await request(sm, flow, "f2"))["ok"] is True
    async with Phone(gateway.ws_url, gateway.phone_key) as phone:
        await phone.dial(gateway.number)
        notify = await recv_type(sm, "session.notify")
        assert notify["activity"] == "NEW_INCOMING_CALL"
        await phone.hangup()
    await sm.close()
