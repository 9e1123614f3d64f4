"""Phone codecs by name (``pcm16``, ``pcmu``, ``pcma``) ↔ PCM16 little-endian bytes."""

from __future__ import annotations

import numpy as np

from . import g711

CODECS = ("pcm16", "pcmu", "pcma")


def decode(codec: str, payload: bytes) -> bytes:
    """Phone codec → PCM16 LE bytes at the phone's rate."""
    if codec == "pcm16":
        return payload
    if codec == "pcmu":
        return g711.ulaw_decode_bytes(payload)
    return g711.alaw_decode_bytes(payload)


def encode(codec: str, pcm: bytes) -> bytes:
    """PCM16 LE bytes → the phone codec."""
    if codec == "pcm16":
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    return g711.ulaw_encode(samples) if codec == "pcmu" else g711.alaw_encode(samples)
