"""What the call engine needs from each kind of connection (structural types)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .calls import Call


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


class LineLink(PhoneLink, Protocol):
    """A subscriber line: registered for a number, rung by ``call.connect``."""

    number: str
    call: Call | None  # the call it is ringing or bridged into

    def offer(self, call_id: str, caller: str, ring_s: float) -> None: ...
    def release(self, reason: str, message: str, call_id: str) -> None: ...
