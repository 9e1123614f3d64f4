"""The registry port: where the engine's sessions are made known beyond this process.

A session lives in the engine of the node that holds its call (or its messages);
the registry is told when one is added and when it closes, so that other nodes
can list it, route a claim to it and route their agents' requests for it. The
engine never waits on it: the calls are fire-and-forget, and an adapter that does
I/O (the Redis one, :mod:`telcoflow.server.cluster`) queues them in order.

:class:`MemoryRegistry` is the embedded default: one process, its
:class:`~.sessions.SessionStore` is the whole registry, nothing to tell.
"""

from __future__ import annotations

from typing import Protocol

from .ports import SessionView


class RegisteredSession(SessionView, Protocol):
    """What a registry may record of a session (its public fields and owner)."""

    @property
    def connector_uuid(self) -> str: ...
    @property
    def initiator(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def closed_at(self) -> int | None: ...
    @property
    def close_reason(self) -> str | None: ...


class Registry(Protocol):
    """Told of every session the engine adds and closes, in the engine's order."""

    def session_added(self, session: RegisteredSession) -> None: ...

    def session_closed(self, session: RegisteredSession) -> None: ...


class MemoryRegistry:
    """One process: the engine's own store is the registry."""

    def session_added(self, session: RegisteredSession) -> None:
        pass

    def session_closed(self, session: RegisteredSession) -> None:
        pass
