"""What the call engine needs from each kind of connection (structural types)."""

from __future__ import annotations

from typing import Protocol


class PhoneLink(Protocol):
    """A phone leg: the simulated network today, SIP/Twilio/AudioCodes adapters later."""

    codec: str
    sample_rate: int

    def send_text(self, text: str) -> None: ...
    def send_audio(self, payload: bytes) -> None: ...
    def end(self, reason: str, message: str) -> None: ...


class VoiceLink(Protocol):
    """An agent's voice WebSocket for one call."""

    def send_text(self, text: str) -> None: ...
    def send_binary(self, data: bytes) -> None: ...
    def close(self, code: int, reason: str) -> None: ...
