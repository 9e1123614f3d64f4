"""The call core: no asyncio and no wire formats, given the time, talking through ports.

Adapters (the simulated phone, the agent planes, later SIP and carriers)
implement the ports in :mod:`.ports` and call the :class:`Engine`'s methods.
"""

from .engine import Engine
from .errors import EngineError
from .settings import ConnectorSpec, EngineSettings

__all__ = ["ConnectorSpec", "Engine", "EngineError", "EngineSettings"]
