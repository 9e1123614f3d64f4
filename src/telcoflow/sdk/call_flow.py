"""Which call and message flows a connector handles (sent with ``call_flow.setup``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .enums import InboundCallMode


@dataclass(frozen=True)
class CallFlowConfig:
    """Resolved call-flow toggles; everything is off by default."""

    inbound_call: InboundCallMode = InboundCallMode.NO
    outbound_call: bool = False
    inbound_message: bool = False
    outbound_message: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.inbound_call, InboundCallMode):
            raise ValueError("inbound_call must be an InboundCallMode (ALL, MISSED_ONLY or NO)")

    def to_frame_data(self) -> dict[str, Any]:
        return {"inboundCall": self.inbound_call.value, "outboundCall": self.outbound_call,
                "inboundMessage": self.inbound_message, "outboundMessage": self.outbound_message}


class CallFlowBuilder:
    """Fluent builder: ``CallFlowBuilder().inbound_call(InboundCallMode.ALL).build()``."""

    def __init__(self) -> None:
        self._inbound_call = InboundCallMode.NO
        self._outbound_call = False
        self._inbound_message = False
        self._outbound_message = False

    def inbound_call(self, mode: InboundCallMode) -> CallFlowBuilder:
        self._inbound_call = mode
        return self

    def outbound_call(self, enabled: bool) -> CallFlowBuilder:
        self._outbound_call = enabled
        return self

    def inbound_message(self, enabled: bool) -> CallFlowBuilder:
        self._inbound_message = enabled
        return self

    def outbound_message(self, enabled: bool) -> CallFlowBuilder:
        self._outbound_message = enabled
        return self

    def build(self) -> CallFlowConfig:
        return CallFlowConfig(self._inbound_call, self._outbound_call,
                              self._inbound_message, self._outbound_message)
