"""A call's state as the SDK sees it, as a table (the published SDK's ``CallState``).

::

    NEW ──open──▶ OPENING ──opened──▶ LIVE
     ▲               │
     └──open_failed──┘            (a retry or a handoff with to_json() stays possible)
    NEW | OPENING | LIVE | TERMINATED ──terminate──▶ TERMINATED

``terminate`` is idempotent: the voice link closing, ``call.terminated`` and
a successful close or disconnect may all arrive for one call.
"""

from __future__ import annotations

from enum import StrEnum

from ..fsm import Table
from .enums import CallState
from .errors import WSSCallStateError


class CallStep(StrEnum):
    OPEN = "open"
    OPENED = "opened"
    OPEN_FAILED = "open_failed"
    TERMINATE = "terminate"


CALL_STATES = Table[CallState, CallStep](
    "the call",
    {
        (CallState.NEW, CallStep.OPEN): CallState.OPENING,
        (CallState.OPENING, CallStep.OPENED): CallState.LIVE,
        (CallState.OPENING, CallStep.OPEN_FAILED): CallState.NEW,
        **{(state, CallStep.TERMINATE): CallState.TERMINATED for state in CallState},
    },
    {},
    lambda code, message: WSSCallStateError(message),
)
