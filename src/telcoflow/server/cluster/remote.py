"""Another node's agent connection, as this node's engine sees it.

A :class:`RemoteLink` is the :class:`~telcoflow.engine.ports.SessionLink` of an SM-WS
that lives on another node: the engine offers it sessions and hands it calls like
any local link, and each frame it would send is published to the node that holds
the connection. Frames are built here, on the node that holds the session: a
``call.in`` names this node's voice URL and carries a token this node signed, so the
agent's voice connection (the call's media) comes here, where the phone leg is.
"""

from __future__ import annotations

from collections.abc import Callable

from ...engine import Engine
from ..auth import Authenticator
from ..config import Connector
from ..sm_ws import SmLink


class RemoteLink(SmLink):
    def __init__(self, engine: Engine, connector: Connector, auth: Authenticator,
                 voice_base_url: str, link_id: str, node_id: str, rate: int, mode: str,
                 send: Callable[[str, str, str], None]) -> None:
        super().__init__(engine, connector, auth, voice_base_url)
        self.id, self.node_id = link_id, node_id
        self.sample_rate, self.audio_mode = rate, mode
        self.setup_done = True
        self._send = send

    def send_text(self, text: str) -> None:
        self._send(self.node_id, self.id, text)

    def close(self, code: int, reason: str) -> None:
        """Connections are closed by the node that holds them."""
