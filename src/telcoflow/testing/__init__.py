"""Real peers for tests, benches, the demo and ``telcoflow call``.

- :class:`GatewayThread`: a real gateway on loopback in a background thread.
- :class:`Phone`: a simulated-network caller or subscriber line.
"""

from .gateway import GatewayThread
from .phone import Phone, PhoneError

__all__ = ["GatewayThread", "Phone", "PhoneError"]
