"""Every node's session records, kept on each node for the REST plane.

REST answers synchronously; a list across nodes is read here, kept current by the
records every node publishes (and loaded from Redis at start).
"""

from __future__ import annotations

from collections import deque
from typing import Any

PUBLIC = ("id", "channel", "initiator", "state", "remoteAddress", "localAddress",
          "openedAt", "closedAt")


class SessionMirror:
    KEEP_CLOSED = 10_000

    def __init__(self) -> None:
        self._by_id: dict[str, dict[str, Any]] = {}
        self._closed: deque[str] = deque()

    def put(self, record: dict[str, Any]) -> None:
        old = self._by_id.get(record["id"])
        if old is not None and old.get("state") == "CLOSED":
            return  # a late copy of an open record never reopens a session
        self._by_id[record["id"]] = record
        if record.get("state") == "CLOSED":
            self._closed.append(record["id"])
            while len(self._closed) > self.KEEP_CLOSED:
                self._by_id.pop(self._closed.popleft(), None)

    def get(self, session_id: str, connector: str) -> dict[str, Any] | None:
        record = self._by_id.get(session_id)
        return record if record is not None and record["connector"] == connector else None

    def of_node(self, node_id: str) -> list[dict[str, Any]]:
        return [r for r in self._by_id.values() if r["node"] == node_id and r["state"] == "OPEN"]

    def find(self, connector: str, channel: str | None, remote: str | None,
             state: str | None) -> list[dict[str, Any]]:
        return [public(r) for r in self._by_id.values()
                if r["connector"] == connector and (channel is None or r["channel"] == channel)
                and (remote is None or r["remoteAddress"] == remote)
                and (state is None or r["state"] == state)]


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record.get(name) for name in PUBLIC}
