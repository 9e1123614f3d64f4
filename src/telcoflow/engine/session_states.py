"""A session's binding to an agent's session-manager connection, as a table.

::

    UNBOUND ──open──▶ OPENED ──ready──▶ READY
       ▲                 │                │
       └─────unbind──────┴────────────────┘       (the binding connection dropped)
    UNBOUND | OPENED | READY ──close──▶ CLOSED

``open`` by the connection already bound is idempotent (OPENED and READY
stay); ``open`` by another live connection is refused by the engine with
``SESSION_BUSY`` before the table is consulted, because the answer names
the binder. Only a READY session gets pushes (``call.in``).
"""

from __future__ import annotations

from enum import StrEnum

from ..fsm import Table
from .errors import TransitionRefused


class Binding(StrEnum):
    UNBOUND = "UNBOUND"
    OPENED = "OPENED"
    READY = "READY"
    CLOSED = "CLOSED"


class BindingEvent(StrEnum):
    OPEN = "session.open"
    READY = "session.ready"
    UNBIND = "unbind"
    CLOSE = "close"


_OPEN = (Binding.UNBOUND, Binding.OPENED, Binding.READY)

BINDING = Table[Binding, BindingEvent](
    "the session",
    {
        (Binding.UNBOUND, BindingEvent.OPEN): Binding.OPENED,
        (Binding.OPENED, BindingEvent.OPEN): Binding.OPENED,
        (Binding.READY, BindingEvent.OPEN): Binding.READY,
        (Binding.OPENED, BindingEvent.READY): Binding.READY,
        (Binding.READY, BindingEvent.READY): Binding.READY,
        (Binding.UNBOUND, BindingEvent.UNBIND): Binding.UNBOUND,
        (Binding.OPENED, BindingEvent.UNBIND): Binding.UNBOUND,
        (Binding.READY, BindingEvent.UNBIND): Binding.UNBOUND,
        **{(state, BindingEvent.CLOSE): Binding.CLOSED for state in _OPEN},
    },
    {
        (Binding.UNBOUND, BindingEvent.READY): (
            "SESSION_NOT_OPEN", "session.ready for a session this connection has not opened: "
            "send session.open first"),
        **{(Binding.CLOSED, event): ("SESSION_CLOSED", "the session is closed")
           for event in BindingEvent},
    },
    TransitionRefused,
)
