"""The call-control state machine (connect / whisper / barge / spy), as a table.

::

    IDLE ──connect──▶ RINGING ──callee_answered──▶ BARGE ◀──barge── WHISPER / SPY
      ▲                  │                            │ whisper / spy ▲
      └──callee_failed───┘                            └───────────────┘
      ▲                                            (BARGE | WHISPER | SPY)
      └────────────────────callee_left──────────────────┘
                                 (BARGE | WHISPER | SPY) ──agent_left──▶ LEFT

IDLE: no callee (before connect, or after the callee hung up or did not
answer; connect may be tried again). RINGING: the subscriber line is being
rung. BARGE / WHISPER / SPY: three-way, the mode says whom the agent reaches.
LEFT: no agent on the call — it left, or never joined (a MISSED_ONLY call
the subscriber answered itself: ``direct``) — and caller and callee talk.

The default mode after the callee answers is BARGE: until then the agent was
talking to the caller, and going silent for the caller the moment a third
party joins would cut it off mid-sentence without being asked to. Whisper
and spy are explicit choices (the seed calls ``whisper()`` right after
``connect()``).
"""

from __future__ import annotations

from enum import StrEnum

from ..fsm import Table
from .errors import TransitionRefused


class Mode(StrEnum):
    IDLE = "IDLE"
    RINGING = "RINGING"
    BARGE = "BARGE"
    WHISPER = "WHISPER"
    SPY = "SPY"
    LEFT = "LEFT"


class Control(StrEnum):
    CONNECT = "call.connect"
    CALLEE_ANSWERED = "callee_answered"
    CALLEE_FAILED = "callee_failed"      # rejected, ring time over, or line gone while ringing
    CALLEE_LEFT = "callee_left"
    WHISPER = "agent.whisper"
    BARGE = "agent.barge"
    SPY = "agent.spy"
    AGENT_LEFT = "agent_left"
    DIRECT = "direct"  # the subscriber answered before any agent was involved


CONFERENCED = (Mode.BARGE, Mode.WHISPER, Mode.SPY)

# (agent heard by the caller, agent heard by the callee)
AGENT_ROUTES: dict[Mode, tuple[bool, bool]] = {
    Mode.IDLE: (True, False),
    Mode.RINGING: (True, False),
    Mode.BARGE: (True, True),
    Mode.WHISPER: (False, True),
    Mode.SPY: (False, False),
    Mode.LEFT: (False, False),
}

_MODE_COMMANDS = {Control.WHISPER: Mode.WHISPER, Control.BARGE: Mode.BARGE, Control.SPY: Mode.SPY}

TRANSITIONS: dict[tuple[Mode, Control], Mode] = {
    (Mode.IDLE, Control.CONNECT): Mode.RINGING,
    (Mode.IDLE, Control.DIRECT): Mode.LEFT,
    (Mode.RINGING, Control.CALLEE_ANSWERED): Mode.BARGE,
    (Mode.RINGING, Control.CALLEE_FAILED): Mode.IDLE,
    **{(m, c): target for m in CONFERENCED for c, target in _MODE_COMMANDS.items()},
    **{(m, Control.CALLEE_LEFT): Mode.IDLE for m in CONFERENCED},
    **{(m, Control.AGENT_LEFT): Mode.LEFT for m in CONFERENCED},
}

_NOT_CONNECTED = "is only available after call.connect has bridged the callee"

REFUSALS: dict[tuple[Mode, Control], tuple[str, str]] = {
    **{(Mode.IDLE, c): ("NOT_CONNECTED", f"{c.value} {_NOT_CONNECTED}") for c in _MODE_COMMANDS},
    **{(Mode.RINGING, c): ("NOT_CONNECTED", f"{c.value} {_NOT_CONNECTED}; the callee is still "
                           "ringing") for c in _MODE_COMMANDS},
    (Mode.RINGING, Control.CONNECT): ("CONNECT_IN_PROGRESS",
                                      "call.connect is already ringing the callee"),
    **{(m, Control.CONNECT): ("ALREADY_CONNECTED", "the callee is already on the call")
       for m in CONFERENCED},
    **{(Mode.LEFT, c): ("CALL_TERMINATED", "the agent has left this call") for c in Control},
}


CONTROL = Table[Mode, Control]("call control", TRANSITIONS, REFUSALS, TransitionRefused)
