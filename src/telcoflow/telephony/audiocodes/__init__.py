"""AudioCodes VoiceAI Connect (Bot API, streaming WebSocket mode) at ``/v1/audiocodes``.

See :mod:`.adapter` and docs/audiocodes.md.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from ...protocol.audiocodes import AUDIOCODES_PATH
from ...server.app import Gateway
from ...server.config import AudioCodesConfig
from .adapter import AudioCodesIngress, VaicConn, VaicLeg

__all__ = ["AudioCodesIngress", "VaicConn", "VaicLeg", "ingress_of", "install"]

_INGRESS: WeakKeyDictionary[Gateway, AudioCodesIngress] = WeakKeyDictionary()


def install(gateway: Gateway, config: AudioCodesConfig) -> AudioCodesIngress:
    """Route ``/v1/audiocodes`` (bearer tokens of ``[audiocodes]``) and run its timers."""
    ingress = AudioCodesIngress(gateway.engine, config, gateway.config.resume_grace_s)
    gateway.engine.add_timed(ingress)
    gateway.add_ws_route(AUDIOCODES_PATH, ingress.accept)
    _INGRESS[gateway] = ingress
    return ingress


def ingress_of(gateway: Gateway) -> AudioCodesIngress | None:
    """The ingress :func:`install` put on ``gateway`` (tests and operators inspect it)."""
    return _INGRESS.get(gateway)
