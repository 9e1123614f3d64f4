"""The QUIC audio plane for agents (docs/quic.md): calls' audio and events over QUIC.

Each subscribed connection is a session-manager link of the engine and each of
its calls an agent link, so calls, numbers and call control are the WebSocket
plane's. aioquic (the ``quic`` extra) is imported only when the door is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...server.app import Gateway
from ...server.config import QuicConfig
from ...server.errors import ConfigError

if TYPE_CHECKING:
    from .door import QuicDoor

__all__ = ["install"]


def install(gateway: Gateway, config: QuicConfig) -> QuicDoor:
    """Open the QUIC door on ``config.host:config.port`` (UDP) when the gateway starts;
    returns the :class:`~.door.QuicDoor`."""
    try:
        from .door import QuicDoor
    except ImportError as exc:
        raise ConfigError("the QUIC door needs aioquic, protobuf and cryptography: "
                          f"pip install 'telcoflow[quic]' ({exc})") from None
    door = QuicDoor(gateway, config)
    gateway.add_service(door.start, door.stop)
    return door
