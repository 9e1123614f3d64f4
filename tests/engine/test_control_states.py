"""The call-control table: every transition and every refusal is explicit."""

from __future__ import annotations

import pytest

from telcoflow.engine.control_states import (
    AGENT_ROUTES,
    CONFERENCED,
    CONTROL,
    TRANSITIONS,
    Control,
    Mode,
)
from telcoflow.engine.errors import TransitionRefused

next_mode = CONTROL.step


def test_connect_then_answer_defaults_to_barge_and_modes_switch_freely() -> None:
    mode = next_mode(next_mode(Mode.IDLE, Control.CONNECT), Control.CALLEE_ANSWERED)
    assert mode is Mode.BARGE and AGENT_ROUTES[mode] == (True, True)
    for control, target in ((Control.WHISPER, Mode.WHISPER), (Control.SPY, Mode.SPY),
                            (Control.BARGE, Mode.BARGE)):
        mode = next_mode(mode, control)
        assert mode is target


@pytest.mark.parametrize(("mode", "control", "code"), [
    (Mode.IDLE, Control.WHISPER, "NOT_CONNECTED"),
    (Mode.IDLE, Control.SPY, "NOT_CONNECTED"),
    (Mode.RINGING, Control.BARGE, "NOT_CONNECTED"),
    (Mode.RINGING, Control.CONNECT, "CONNECT_IN_PROGRESS"),
    (Mode.WHISPER, Control.CONNECT, "ALREADY_CONNECTED"),
    (Mode.LEFT, Control.BARGE, "CALL_TERMINATED"),
    (Mode.IDLE, Control.CALLEE_ANSWERED, "INVALID_STATE"),
])
def test_refusals_carry_specific_codes(mode: Mode, control: Control, code: str) -> None:
    with pytest.raises(TransitionRefused) as info:
        next_mode(mode, control)
    assert info.value.code == code and info.value.message


def test_the_callee_leaving_or_failing_allows_another_connect() -> None:
    assert next_mode(Mode.RINGING, Control.CALLEE_FAILED) is Mode.IDLE
    for mode in CONFERENCED:
        assert next_mode(mode, Control.CALLEE_LEFT) is Mode.IDLE
        assert next_mode(mode, Control.AGENT_LEFT) is Mode.LEFT


def test_whisper_reaches_the_callee_only_and_spy_nobody() -> None:
    assert AGENT_ROUTES[Mode.WHISPER] == (False, True)
    assert AGENT_ROUTES[Mode.SPY] == (False, False)
    assert all(target in Mode for target in TRANSITIONS.values())
