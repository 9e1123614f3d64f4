"""Errors of the gateway server (its HTTP front, REST plane, auth and configuration).

Tree::

    GatewayError                base; ``code`` is the wire error code, ``status`` the HTTP status
    ├── AuthError               bad or missing credentials            (UNAUTHORIZED, 401)
    ├── ForbiddenError          authenticated, but not allowed        (FORBIDDEN, 403)
    ├── NotFoundError           no such endpoint or resource          (NOT_FOUND, 404)
    ├── BadRequest              a request this endpoint cannot take   (INVALID_REQUEST, 400)
    ├── MethodNotAllowed        the wrong HTTP method for the path    (METHOD_NOT_ALLOWED, 405)
    └── ConfigError             the configuration file or environment is invalid

The engine's own refusals are :mod:`telcoflow.engine.errors` (a REST answer
uses their ``status`` too); malformed frames are :mod:`telcoflow.protocol.errors`.
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
    code = "NOT_FOUND"
    status = 404


class BadRequest(GatewayError):
    code = "INVALID_REQUEST"
    status = 400


class Conflict(GatewayError):
    code = "CONFLICT"
    status = 409


class TooLarge(GatewayError):
    code = "TOO_LARGE"
    status = 413


class RangeNotSatisfiable(GatewayError):
    code = "RANGE_NOT_SATISFIABLE"
    status = 416


class MethodNotAllowed(GatewayError):
    code = "METHOD_NOT_ALLOWED"
    status = 405


class ConfigError(GatewayError):
    code = "CONFIG_ERROR"
