"""Placeholder: the audiocodes adapter is being written (issue 12)."""

from __future__ import annotations

from ...server.app import Gateway
from ...server.config import AudioCodesConfig


def install(gateway: Gateway, config: AudioCodesConfig) -> None:
    """Nothing yet."""
