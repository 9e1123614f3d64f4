"""Errors of the gateway server.

Tree::

    GatewayError                base; ``code`` is the wire error code, ``status`` the HTTP status
    ├── AuthError               bad or missing credentials            (UNAUTHORIZED, 401)
    ├── ForbiddenError          authenticated, but not allowed        (FORBIDDEN, 403)
    ├── NotFoundError           no such session / call for this caller (SESSION_NOT_FOUND, 404)
    ├── ConfigError             the configuration file or environment is invalid
    └── CommandError            a voice command that cannot run now   (code set per instance)

Protocol-level errors (malformed frames) are :mod:`telcoflow.protocol.errors`.
"""

from __future__ import annotations

from ..coded_error import CodedError


class GatewayError(CodedError):
    """The base of the gateway server's errors."""


class AuthError(GatewayError):
    code = "UNAUTHORIZED"
    status = 401


class ForbiddenError(GatewayError):
    code = "FORBIDDEN"
    status = 403


class NotFoundError(GatewayError):
    code = "SESSION_NOT_FOUND"
    status = 404


class ConfigError(GatewayError):
    code = "CONFIG_ERROR"


class CommandError(GatewayError):
    code = "INVALID_STATE"
    status = 409
