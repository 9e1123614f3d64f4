"""The call state machine, as a table.

::

    RINGING ──answer──▶ ANSWERED ──(close|disconnect|caller_hangup|rest_close|agent_lost)──▶ ENDED
       └──(caller_hangup|ring_timeout|dial_failed|close|disconnect|rest_close)───────────────▶ ENDED

RINGING covers "offered to agents, claimed or not" (the caller hears
ringing) and, for an outbound call, "the dialled number is ringing".
Every event not in the table is refused with a specific reason.
"""

from __future__ import annotations

from enum import StrEnum

from ..fsm import Table
from .errors import TransitionRefused


class CallState(StrEnum):
    RINGING = "RINGING"
    ANSWERED = "ANSWERED"
    ENDED = "ENDED"


class CallEvent(StrEnum):
    ANSWER = "answer"
    CLOSE = "close"            # agent leaves (call.close)
    DISCONNECT = "disconnect"  # agent ends the call for everyone (call.disconnect)
    CALLER_HANGUP = "caller_hangup"
    CALLEE_HANGUP = "callee_hangup"  # the callee left a bridged call nobody else is left on
    RING_TIMEOUT = "ring_timeout"
    DIAL_FAILED = "dial_failed"  # an outbound call's number was busy, declined or unreachable
    REST_CLOSE = "rest_close"
    AGENT_LOST = "agent_lost"  # voice connection gone and not back within the grace period
    SHUTDOWN = "shutdown"


_ENDING = (CallEvent.CLOSE, CallEvent.DISCONNECT, CallEvent.CALLER_HANGUP,
           CallEvent.CALLEE_HANGUP, CallEvent.REST_CLOSE, CallEvent.AGENT_LOST, CallEvent.SHUTDOWN)

TRANSITIONS: dict[tuple[CallState, CallEvent], CallState] = {
    (CallState.RINGING, CallEvent.ANSWER): CallState.ANSWERED,
    # answering again (an agent resuming after a reconnect) is idempotent
    (CallState.ANSWERED, CallEvent.ANSWER): CallState.ANSWERED,
    (CallState.RINGING, CallEvent.RING_TIMEOUT): CallState.ENDED,
    (CallState.RINGING, CallEvent.DIAL_FAILED): CallState.ENDED,
    **{(CallState.RINGING, e): CallState.ENDED for e in _ENDING},
    **{(CallState.ANSWERED, e): CallState.ENDED for e in _ENDING},
}

REFUSALS: dict[tuple[CallState, CallEvent], tuple[str, str]] = {
    **{(CallState.ENDED, e): ("CALL_TERMINATED", "the call has already ended") for e in CallEvent},
}


CALL = Table[CallState, CallEvent]("the call", TRANSITIONS, REFUSALS, TransitionRefused)
