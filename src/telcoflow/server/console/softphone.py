"""The console's softphone line: the simulated-phone plane, for one connector's numbers.

The browser speaks the phone protocol (:mod:`telcoflow.protocol.phone`) as a
caller: ``dial`` then PCM16 binary frames both ways. It is not a phone-network
client (it holds no phone key; its console session names one connector), so
what it may do is narrower: dial a number routed to its own connector, send
DTMF, hang up. Registering a number and WA messages are refused.
"""

from __future__ import annotations

from typing import Protocol

from ...protocol import errors as perr
from ...protocol import phone as pp
from ..netio import WsConnection


class PhoneHandler(Protocol):
    """What the simulated network's phone connection offers (``PhoneConn``)."""

    def on_open(self, conn: WsConnection) -> None: ...
    def on_text(self, text: str) -> None: ...
    def on_binary(self, data: bytes) -> None: ...
    def on_close(self, code: int | None, reason: str) -> None: ...


class SoftphoneConn:
    """Filters a browser's control frames, then hands them to the phone connection;
    audio goes straight through (bound methods: no extra call per frame)."""

    __slots__ = ("on_binary", "on_close", "_phone", "_numbers", "_conn")

    def __init__(self, phone: PhoneHandler, numbers: list[str]) -> None:
        self._phone, self._numbers = phone, frozenset(numbers)
        self.on_binary = phone.on_binary
        self.on_close = phone.on_close
        self._conn: WsConnection | None = None

    def on_open(self, conn: WsConnection) -> None:
        self._conn = conn
        self._phone.on_open(conn)

    def on_text(self, text: str) -> None:
        try:
            frame = pp.parse_phone_text(text)
        except perr.ProtocolError:
            frame = None  # the phone connection answers (and counts) malformed frames
        refusal = self._refusal(frame)
        if refusal is None:
            self._phone.on_text(text)
        elif self._conn is not None:
            self._conn.send_text(pp.build_error("FORBIDDEN", refusal))

    def _refusal(self, frame: pp.PhoneFrame | None) -> str | None:
        if isinstance(frame, pp.Dial) and frame.to not in self._numbers:
            return (f"the console's softphone dials this connector's numbers only "
                    f"({', '.join(sorted(self._numbers)) or 'none configured'})")
        if isinstance(frame, pp.Register | pp.SendMessage | pp.Read):
            return "the console's softphone places calls only (no line, no messages)"
        return None
