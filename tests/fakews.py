"""The send side of a WebSocket as an adapter sees it, recording what it is told."""

from __future__ import annotations

import json
from typing import Any


class FakeWsConnection:
    def __init__(self) -> None:
        self.texts: list[dict[str, Any]] = []
        self.binaries: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.open = True
        self.peer = ("127.0.0.1", 5555)

    def send_text(self, text: str) -> None:
        if self.open:
            self.texts.append(json.loads(text))

    def send_binary(self, data: bytes) -> None:
        if self.open:
            self.binaries.append(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.open:
            self.open, self.closed = False, (code, reason)

    def abort(self) -> None:
        self.open = False

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [t for t in self.texts if t.get("type") == kind]
