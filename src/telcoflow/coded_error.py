"""The base of the gateway-side exception trees: a wire error code and a sentence.

``code`` is what an adapter sends (``errorCode``, ``error_code``, an HTTP
body's ``code``), ``status`` the HTTP status a REST answer uses, and
``message`` a sentence written for the person reading it. Each package
(engine, server, telephony) roots its own tree in one subclass of this.
"""

from __future__ import annotations


class CodedError(Exception):
    code = "INTERNAL_ERROR"
    status = 500

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
