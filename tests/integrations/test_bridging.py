"""ModelWatchdog's rule, on a clock the test sets: the caller spoke, stopped, and the
model said nothing for the timeout."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from telcoflow.integrations.bridging import ModelStalled, ModelWatchdog, until_first

RATE = 8000
LOUD = (np.full(160, 3000, np.int16)).tobytes()   # 20 ms, RMS 3000
QUIET = (np.full(160, 100, np.int16)).tobytes()   # 20 ms, line noise


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watchdog(clock: Clock) -> ModelWatchdog:
    return ModelWatchdog(RATE, 10.0, min_speech_ms=300, clock=clock)


def test_due_once_the_caller_spoke_stopped_and_the_model_stayed_silent() -> None:
    clock = Clock()
    w = watchdog(clock)
    for _ in range(20):  # 400 ms of speech
        w.caller_audio(LOUD)
    w.caller_audio(QUIET)
    clock.now = 9.9
    assert not w.due(clock.now)
    clock.now = 10.0
    assert w.due(clock.now)


def test_a_model_event_clears_it_and_speech_must_come_again() -> None:
    clock = Clock()
    w = watchdog(clock)
    for _ in range(20):
        w.caller_audio(LOUD)
    w.caller_audio(QUIET)
    w.model_event()
    clock.now = 100.0
    w.caller_audio(QUIET)
    assert not w.due(clock.now)


def test_short_sounds_and_long_speech_do_not_start_it() -> None:
    clock = Clock()
    w = watchdog(clock)
    for _ in range(10):  # a 200 ms cough
        w.caller_audio(LOUD)
    w.caller_audio(QUIET)
    clock.now = 50.0
    assert not w.due(clock.now)
    for _ in range(5000):  # 100 s of talking: the model may wait for the end
        w.caller_audio(LOUD)
    clock.now = 200.0
    assert not w.due(clock.now)


def test_off_when_the_timeout_is_none() -> None:
    clock = Clock()
    w = ModelWatchdog(RATE, None, clock=clock)
    for _ in range(50):
        w.caller_audio(LOUD)
    w.caller_audio(QUIET)
    clock.now = 1e6
    assert not w.due(clock.now)


@pytest.mark.asyncio
async def test_run_raises_when_due_and_until_first_cancels_the_rest() -> None:
    w = ModelWatchdog(RATE, 0.05, min_speech_ms=20)
    forever = asyncio.create_task(asyncio.Event().wait())
    watch = asyncio.create_task(w.run())
    w.caller_audio(LOUD)
    w.caller_audio(QUIET)
    done = await until_first(forever, watch)
    assert done == {watch} and forever.cancelled()
    with pytest.raises(ModelStalled, match="sent nothing"):
        watch.result()
