"""Conference mixing for many calls at once: one vectorised pass per 20 ms tick.

Every call has the same three party slots — 0 caller, 1 callee, 2 agent —
and a routing matrix ``routes[listener, speaker]`` of 0/1. What listener
``l`` hears is ``Σ_k routes[l, k] · frame[k]``, summed in int32 and
saturated to int16 (clipped, never wrapped). A party never hears itself, so
the diagonal is always zero ("mix-minus").

The mixer works on a whole batch: ``frames`` has shape ``(calls, 3,
samples)``. Per-call Python work would cost ~10 µs per call per tick; the
batch costs a few numpy calls for all calls together (see ``bench/mixer.py``).
All calls in one batch share a frame length; the gateway keeps one batch per
agent rate.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .pcm import INT16_MAX, INT16_MIN

CALLER, CALLEE, AGENT = 0, 1, 2
PARTIES = 3

Frames = npt.NDArray[np.int16]
Routes = npt.NDArray[np.int32]


def routes_for(agent_to_caller: bool, agent_to_callee: bool, *, caller: bool = True,
               callee: bool = True, agent: bool = True) -> Routes:
    """The routing matrix of one call: who is present and whom the agent reaches.

    Present humans always hear each other; the agent hears every present
    human; the agent reaches a human only if both are present and the
    mode routes it there.
    """
    r = np.zeros((PARTIES, PARTIES), np.int32)
    if caller and callee:
        r[CALLER, CALLEE] = r[CALLEE, CALLER] = 1
    if agent:
        r[AGENT, CALLER] = int(caller)
        r[AGENT, CALLEE] = int(callee)
        r[CALLER, AGENT] = int(caller and agent_to_caller)
        r[CALLEE, AGENT] = int(callee and agent_to_callee)
    return r


class BatchMixer:
    """Mixes ``(calls, 3, samples)`` int16 frames by per-call routes, with saturation.

    Buffers are kept between ticks and grown when a batch is larger, so a
    steady tick allocates nothing but the int32 accumulator view.
    """

    def __init__(self, frame_samples: int) -> None:
        self.frame_samples = frame_samples
        self._capacity = 0
        self._frames = np.zeros((0, PARTIES, frame_samples), np.int16)
        self._routes = np.zeros((0, PARTIES, PARTIES), np.int32)
        self._acc = np.zeros((0, PARTIES, frame_samples), np.int32)
        self._out = np.zeros((0, PARTIES, frame_samples), np.int16)

    def inputs(self, calls: int) -> tuple[Frames, Routes]:
        """Writable ``frames`` and ``routes`` arrays for ``calls`` calls (zeroed frames)."""
        if calls > self._capacity:
            cap = max(calls, self._capacity * 2, 8)
            s = self.frame_samples
            self._frames = np.zeros((cap, PARTIES, s), np.int16)
            self._routes = np.zeros((cap, PARTIES, PARTIES), np.int32)
            self._acc = np.zeros((cap, PARTIES, s), np.int32)
            self._out = np.zeros((cap, PARTIES, s), np.int16)
            self._capacity = cap
        frames = self._frames[:calls]
        frames.fill(0)
        return frames, self._routes[:calls]

    def mix(self, calls: int) -> Frames:
        """Mix the first ``calls`` rows of :meth:`inputs`; returns ``(calls, 3, samples)``."""
        frames, routes = self._frames[:calls], self._routes[:calls]
        acc, out = self._acc[:calls], self._out[:calls]
        # three broadcast multiply-adds beat a batched 3×3 matmul on small integer matrices
        np.multiply(routes[:, :, 0, None], frames[:, None, 0, :], out=acc)
        for speaker in (1, 2):
            acc += routes[:, :, speaker, None] * frames[:, None, speaker, :]
        np.clip(acc, INT16_MIN, INT16_MAX, out=acc)
        out[...] = acc
        return out


def mix_batch(frames: Frames, routes: Routes) -> Frames:
    """One-shot form of :class:`BatchMixer` for tests and offline use."""
    calls, parties, samples = frames.shape
    if parties != PARTIES or routes.shape != (calls, PARTIES, PARTIES):
        raise ValueError(f"frames must be (calls, 3, samples) and routes (calls, 3, 3), "
                         f"not {frames.shape} and {routes.shape}")
    mixer = BatchMixer(samples)
    f, r = mixer.inputs(calls)
    f[...] = frames
    r[...] = routes
    return mixer.mix(calls).copy()
