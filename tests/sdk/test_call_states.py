"""The SDK's call-state table: the published SDK's states, every move explicit."""

from __future__ import annotations

import pytest

from telcoflow import CallState
from telcoflow.sdk.call_states import CALL_STATES, CallStep
from telcoflow.sdk.errors import WSSCallStateError


def test_a_call_opens_goes_live_and_terminates_once_or_more() -> None:
    state = CALL_STATES.step(CallState.NEW, CallStep.OPEN)
    assert state is CallState.OPENING
    assert CALL_STATES.step(state, CallStep.OPEN_FAILED) is CallState.NEW  # may retry
    state = CALL_STATES.step(state, CallStep.OPENED)
    assert state is CallState.LIVE
    for _ in range(2):
        state = CALL_STATES.step(state, CallStep.TERMINATE)
        assert state is CallState.TERMINATED


@pytest.mark.parametrize(("state", "step"), [
    (CallState.TERMINATED, CallStep.OPEN), (CallState.TERMINATED, CallStep.OPENED),
    (CallState.LIVE, CallStep.OPEN), (CallState.NEW, CallStep.OPENED)])
def test_anything_else_is_a_call_state_error_naming_the_state(state: CallState,
                                                              step: CallStep) -> None:
    with pytest.raises(WSSCallStateError) as refused:
        CALL_STATES.step(state, step)
    assert state.value in str(refused.value) and step.value in str(refused.value)
