"""``telcoflow.quic``: an agent on the gateway's QUIC audio plane (docs/quic.md).

Needs the ``quic`` extra (aioquic, protobuf). :class:`QuicAgent` is the
connection (subscribe, originate, commands, every call's events);
:class:`QuicCall` one call (its events, its audio in, its paced audio out).
"""

from __future__ import annotations

from ..protocol.quic import AudioFrame, CallEvent, LossReport
from .call import QuicCall
from .client import QuicAgent, QuicAgentError
from .codes import ALPN, ErrorCode

__all__ = ["ALPN", "AudioFrame", "CallEvent", "ErrorCode", "LossReport", "QuicAgent",
           "QuicAgentError", "QuicCall"]
