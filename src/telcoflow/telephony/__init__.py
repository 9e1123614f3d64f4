"""Phone-side adapters: each one a protocol codec plus the engine's Leg / Dialler ports.

:func:`install` puts the configured ones on a gateway; the gateway itself
names none of them.
"""

from __future__ import annotations

from ..server.app import Gateway
from . import simulated


def install(gateway: Gateway) -> None:
    """Every phone-side adapter this gateway's configuration asks for."""
    simulated.install(gateway)
    if gateway.config.sip is not None:
        from . import sip  # only a gateway that takes SIP calls loads it
        sip.install(gateway, gateway.config.sip)
    if gateway.config.twilio is not None:
        from . import twilio
        twilio.install(gateway, gateway.config.twilio)
    if gateway.config.audiocodes is not None:
        from . import audiocodes
        audiocodes.install(gateway, gateway.config.audiocodes)
    if gateway.config.quic is not None:
        from . import quic  # the agents' QUIC audio plane (aioquic: the quic extra)
        quic.install(gateway, gateway.config.quic)
    if gateway.config.whatsapp is not None:
        from . import whatsapp
        whatsapp.install(gateway, gateway.config.whatsapp)
