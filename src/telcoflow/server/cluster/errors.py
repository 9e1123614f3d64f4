"""Errors of the cluster layer (several gateway nodes sharing a Redis registry).

Tree::

    GatewayError                          (telcoflow.server.errors)
    └── ClusterError                      base of this package's errors
        ├── RegistryUnavailable           Redis does not answer     (SERVICE_UNAVAILABLE, 503)
        └── NodeUnreachable               the node holding a session did not answer in time
                                                                    (SERVICE_UNAVAILABLE, 503)
"""

from __future__ import annotations

from ..errors import GatewayError


class ClusterError(GatewayError):
    code = "SERVICE_UNAVAILABLE"
    status = 503


class RegistryUnavailable(ClusterError):
    """Redis is down or refuses us; the message names the URL without its password."""


class NodeUnreachable(ClusterError):
    pass
