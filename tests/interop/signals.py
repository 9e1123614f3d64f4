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


def voiced_frames(heard: npt.NDArray[np.int16], frame: int, quiet: int = 0
                  ) -> npt.NDArray[np.int16]:
    """What was heard without its all-silent 20 ms frames.

    A playout inserts a silent frame when the agent's audio is late (the
    gateway or the agent was stalled): that is real-time behaviour, not a
    loss. Without those frames an exact echo must equal what was sent; a lost,
    repeated, reordered or altered frame still shows. ``quiet``: the peak of a silent
    frame (G.711 A-law's silence decodes to ±8, not 0).
    """
    whole = heard[: len(heard) // frame * frame].reshape(-1, frame)
    return whole[np.abs(whole.astype(np.int32)).max(axis=1) > quiet].reshape(-1)


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
                 window: int = 320, slack: int = 64, threshold: float = 0.9,
                 foreign: float = 0.5) -> tuple[list[int], list[int], list[int]]:
    """Where ``heard`` stops following ``expected``, window by window (``window``
    samples): ``(unmatched, out_of_step, altered)`` — the windows not found in
    ``expected`` (normalised correlation ≤ ``threshold``), those found somewhere else
    than after the last window that matched (± ``slack`` samples), and among the
    unmatched those nothing like it (≤ ``foreign``: not a ramp, other audio).

    A global correlation fails a reply that merely slipped: each time a late agent's
    audio ran dry on a resampled path the gateway carried the filter's tail out and
    the filter restarts when the audio resumes, so the rest comes ~1 ms later and the
    window of the restart is ramped; a chirp decorrelates within a millisecond. Lost,
    repeated or reordered audio puts a window out of step; altered audio leaves
    windows that match nothing."""
    unmatched: list[int] = []
    out_of_step: list[int] = []
    altered: list[int] = []
    previous: tuple[int, int] | None = None  # (index, lag) of the last window matched
    for index, start in enumerate(range(0, len(heard) - window + 1, window)):
        lag, corr = best_lag(expected, heard[start:start + window])
        if corr <= threshold:
            unmatched.append(index)
            if corr <= foreign:
                altered.append(index)
            continue
        if previous is not None and abs(lag - previous[1] - (index - previous[0]) * window) \
                > slack:
            out_of_step.append(index)
        previous = (index, lag)
    return unmatched, out_of_step, altered


def assert_follows(heard: npt.NDArray[np.int16], expected: npt.NDArray[np.int16],
                   window: int = 320) -> None:
    """``heard`` is ``expected`` as a late agent's reply may sound (see
    :func:`reply_breaks`): every window that matches is in step, and besides the first
    and last (the resampler's ramps) at most one window in ten is a restart's ramp."""
    unmatched, out_of_step, altered = reply_breaks(heard, expected, window)
    windows = len(heard) // window
    ramps = set(unmatched) - {0, windows - 1}
    assert not out_of_step and not altered and len(ramps) <= max(1, windows // 10), (
        f"the reply breaks: windows {unmatched} unmatched ({altered} other audio), "
        f"{out_of_step} out of step, of {windows}")


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
