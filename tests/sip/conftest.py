"""A gateway that takes SIP calls on loopback (UDP), for SIPp and baresip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from telcoflow.server.config import SipConfig, SipTrunk, embedded_defaults
from telcoflow.testing import GatewayThread

from .peers import free_udp_port

# RTP ports for the gateway under test; SIPp and baresip take theirs elsewhere
RTP_PORTS = (31000, 31999)


def sip_config(**overrides: object) -> SipConfig:
    config = SipConfig(host="127.0.0.1", port=free_udp_port(), rtp_port_min=RTP_PORTS[0],
                       rtp_port_max=RTP_PORTS[1], trunks=[SipTrunk("loopback")],
                       allow_uri_dialing=True)
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


@pytest.fixture
def sip_gateway() -> Iterator[GatewayThread]:
    config = embedded_defaults(port=0)
    config.sip = sip_config()
    with GatewayThread(config, ring_timeout_s=10.0) as gw:
        yield gw
