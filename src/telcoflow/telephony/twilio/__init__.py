"""Placeholder: the twilio adapter is being written (issue 12)."""

from __future__ import annotations

from ...server.app import Gateway
from ...server.config import TwilioConfig


def install(gateway: Gateway, config: TwilioConfig) -> None:
    """Nothing yet."""
