"""A simulated phone connection's state, as a table.

::

    IDLE ──dial──▶ DIALLED ──hangup──▶ ENDED
      └──register──▶ REGISTERED (answer / reject / hangup / audio, call after call)

A connection either places one call (a caller) or registers a number and
is rung by ``call.connect`` (a subscriber line); every other frame is
refused with the reason the phone is told.
"""

from __future__ import annotations

from enum import StrEnum

from ..fsm import Table
from .errors import LineStateRefused


class Line(StrEnum):
    IDLE = "IDLE"
    DIALLED = "DIALLED"
    REGISTERED = "REGISTERED"
    ENDED = "ENDED"


class LineEvent(StrEnum):
    DIAL = "dial"
    REGISTER = "register"
    ANSWER = "answer"
    REJECT = "reject"
    HANGUP = "hangup"
    AUDIO = "audio"
    DTMF = "dtmf"


_LINE_ONLY = "is for a registered subscriber line"

LINE = Table[Line, LineEvent](
    "the phone line",
    {
        (Line.IDLE, LineEvent.DIAL): Line.DIALLED,
        (Line.IDLE, LineEvent.REGISTER): Line.REGISTERED,
        (Line.IDLE, LineEvent.HANGUP): Line.ENDED,
        (Line.DIALLED, LineEvent.AUDIO): Line.DIALLED,
        (Line.DIALLED, LineEvent.DTMF): Line.DIALLED,
        (Line.ENDED, LineEvent.DTMF): Line.ENDED,
        (Line.DIALLED, LineEvent.HANGUP): Line.ENDED,
        (Line.ENDED, LineEvent.AUDIO): Line.ENDED,  # in flight when the call ended: dropped
        (Line.ENDED, LineEvent.HANGUP): Line.ENDED,
        **{(Line.REGISTERED, e): Line.REGISTERED
           for e in (LineEvent.ANSWER, LineEvent.REJECT, LineEvent.HANGUP, LineEvent.AUDIO,
                     LineEvent.DTMF)},
    },
    {
        (Line.IDLE, LineEvent.AUDIO): ("INVALID_STATE", "dial before sending audio"),
        (Line.IDLE, LineEvent.DTMF): ("INVALID_STATE", "dial before sending DTMF"),
        **{(state, e): ("INVALID_STATE", f"'{e.value}' {_LINE_ONLY}")
           for state in (Line.IDLE, Line.DIALLED, Line.ENDED)
           for e in (LineEvent.ANSWER, LineEvent.REJECT)},
        **{(state, e): ("INVALID_STATE", "this line has already dialled")
           for state in (Line.DIALLED, Line.ENDED) for e in (LineEvent.DIAL, LineEvent.REGISTER)},
        **{(Line.REGISTERED, e): ("INVALID_STATE", "this line is registered already")
           for e in (LineEvent.DIAL, LineEvent.REGISTER)},
    },
    LineStateRefused,
)
