"""Errors of the SIP protocol core.

Tree (under :class:`telcoflow.protocol.errors.ProtocolError`)::

    SipError               base; ``status`` is the SIP status to answer with, if any
    ├── SipParseError      a message that cannot be read (400, or 413 / 505 / 416 …)
    ├── SdpError           an SDP body that cannot be read or answered (400 / 488)
    └── DigestError        credentials that cannot be read or checked (400 / 401 / 407)
"""

from __future__ import annotations

from ..errors import ProtocolError


class SipError(ProtocolError):
    code = "SIP_ERROR"
    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class SipParseError(SipError):
    code = "SIP_PARSE_ERROR"


class SdpError(SipError):
    code = "SDP_ERROR"


class DigestError(SipError):
    code = "DIGEST_ERROR"


class DigestChallenge(DigestError):
    """Credentials to be retried: answer ``status`` (401, or 407 as a proxy) with
    ``challenge`` as the WWW-Authenticate (Proxy-Authenticate) value. Raised for a
    stale nonce (``stale=true`` in the challenge: the password was right), a nonce
    this server did not issue, another realm, or an algorithm we did not offer."""

    code = "DIGEST_CHALLENGE"
    status = 401

    def __init__(self, message: str, challenge: str, status: int | None = None) -> None:
        super().__init__(message, status)
        self.challenge = challenge


class SipTransactionError(SipError):
    """The transaction user asked the transaction layer for something RFC 3261 §17 does not
    allow: a response no server transaction matches, a response after the final one, an
    ACK or a request without a Via sent as a client transaction, a branch used twice.
    A programming error in the UA core, not a message to answer; ``code`` names the
    refusal (``TRANSACTION_COMPLETED``, ``NO_TRANSACTION`` …)."""

    code = "SIP_TRANSACTION_ERROR"
    status = 500
