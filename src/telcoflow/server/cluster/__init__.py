"""Scale-out: several gateway processes (nodes, workers) sharing one Redis registry.

:mod:`.redis_registry` does the I/O against Redis (records, atomic claims, pub/sub);
:mod:`.node` ties it to a :class:`~telcoflow.server.app.Gateway`: agents' connections on
other nodes appear in the engine as :class:`.remote.RemoteLink` s, their requests for a
session are sent to the node that holds it, and dead nodes are noticed and reaped.
"""

from .errors import ClusterError, NodeUnreachable, RegistryUnavailable

__all__ = ["ClusterError", "NodeUnreachable", "RegistryUnavailable"]
