"""Test signals and the alignment helpers the echo tests need."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from telcoflow.audio.align import best_lag
from telcoflow.testing import Phone

__all__ = ["assert_follows", "best_lag", "chirp", "echo_of", "noise", "reply_breaks",
           "reply_of", "tone", "voiced_frames", "without_gaps"]


def noise(seconds: float, rate: int, seed: int = 7, amplitude: int = 8000) -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    return rng.integers(-amplitude, amplitude, int(seconds * rate)).astype(np.int16)


def tone(freq: float, seconds: float, rate: int, amplitude: int = 8000) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def chirp(seconds: float, rate: int, f0: float = 200.0, f1: float = 3000.0,
          amplitude: int = 8000) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return (amplitude * np.sin(phase)).astype(np.int16)


def voiced_frames(heard: npt.NDArray[np.int16], frame: int) -> npt.NDArray[np.int16]:
    """What was heard without its all-silent 20 ms frames.

    A playout inserts a silent frame when the agent's audio is late (the
    gateway or the agent was stalled): that is real-time behaviour, not a
    loss. Without those frames an exact echo must equal what was sent; a lost,
    repeated, reordered or altered frame still shows.
    """
    whole = heard[: len(heard) // frame * frame].reshape(-1, frame)
    return whole[np.abs(whole).max(axis=1) > 0].reshape(-1)


def without_gaps(heard: npt.NDArray[np.int16], frame: int, min_run: int = 32
                 ) -> npt.NDArray[np.int16]:
    """What was heard less every silence a late agent left in it: the all-silent frames
    (:func:`voiced_frames`) and, where the gateway resamples the agent's audio, the rest
    of the frame that carried the filter's tail out when the agent's audio ran dry (a
    few samples of the talkspurt, then zeros to the frame's end: not frame-aligned, so
    the first rule cannot drop it). Runs of ``min_run`` exact zeros and more go; the
    test signals (noise, chirps, speech) have none."""
    voiced = voiced_frames(heard, frame)
    zero = np.concatenate([[False], voiced == 0, [False]])
    edges = np.flatnonzero(zero[1:] != zero[:-1])  # run starts and ends, alternating
    keep = np.ones(len(voiced), bool)
    for begin, end in zip(edges[::2], edges[1::2], strict=True):
        if end - begin >= min_run:
            keep[begin:end] = False
    return voiced[keep]


def reply_breaks(heard: npt.NDArray[np.int16], expected: npt.NDArray[np.int16],
                 window: int = 320, slack: int = 64, threshold: float = 0.9) -> list[int]:
    """Where ``heard`` stops following ``expected``: the indexes of its ``window``-sample
    windows that are not found in ``expected`` (normalised correlation ≤ ``threshold``)
    or not one window after the previous one (± ``slack`` samples).

    A global correlation fails a reply that merely slipped: each time a late agent's
    audio ran dry on a resampled path the rest of it comes ~1 ms later than the filter
    would have put it (the tail was carried out, the filter restarted), and a chirp
    decorrelates within a millisecond. Lost, repeated, reordered or altered audio
    still breaks the run, window by window."""
    breaks: list[int] = []
    previous: int | None = None
    for index, start in enumerate(range(0, len(heard) - window + 1, window)):
        lag, corr = best_lag(expected, heard[start:start + window])
        if corr <= threshold:
            breaks.append(index)
            continue
        if previous is not None and abs(lag - previous - window) > slack:
            breaks.append(index)
        previous = lag
    return breaks


def assert_follows(heard: npt.NDArray[np.int16], expected: npt.NDArray[np.int16],
                   window: int = 320) -> None:
    """``heard`` is ``expected`` as a late agent's reply may sound (see
    :func:`reply_breaks`); its first and last windows may hold the resampler's ramp."""
    breaks = reply_breaks(heard, expected, window)
    last = len(heard) // window - 1
    assert set(breaks) <= {0, last}, f"the reply breaks at windows {breaks} of {last + 1}"


async def reply_of(phone: Phone, start: int, samples: int, timeout: float = 15.0
                   ) -> npt.NDArray[np.int16]:
    """An AI agent's reply as heard since frame ``start`` (:func:`without_gaps`: the
    agent is a process that may run late, on a resampled path), once ``samples`` of it
    have come (or the timeout passed)."""
    return await echo_of(phone, start, samples, timeout, without_gaps)


async def echo_of(phone: Phone, start: int, samples: int, timeout: float = 15.0,
                  voiced: Callable[[npt.NDArray[np.int16], int], npt.NDArray[np.int16]]
                  = voiced_frames) -> npt.NDArray[np.int16]:
    """Voiced audio heard since frame ``start``, once ``samples`` of it have come back
    (or the timeout passed: the caller's assertion then shows what is missing)."""
    frame = phone.frame_samples
    deadline = time.monotonic() + timeout
    while True:
        heard = voiced(phone.received()[start * frame:], frame)
        left = deadline - time.monotonic()
        if len(heard) >= samples or left <= 0 or phone.hung_up:
            return heard
        try:
            await phone.wait_frames(phone.frames_received + 1, timeout=left)
        except TimeoutError:
            pass
