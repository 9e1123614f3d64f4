"""Jittered exponential back-off for reconnecting (sans-I/O: it only computes delays)."""

from __future__ import annotations

import random
from collections.abc import Callable


class ExponentialBackoff:
    """0.5 s first, x1.5 per attempt, capped at 10 s, plus up to 20 % jitter."""

    def __init__(self, min_delay: float = 0.5, max_delay: float = 10.0, factor: float = 1.5,
                 jitter: float = 0.2,
                 rand: Callable[[float, float], float] = random.uniform) -> None:
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.factor = factor
        self.jitter = jitter
        self.attempt = 0
        self._rand = rand

    def base_delay(self, attempt: int) -> float:
        # Cap the exponent too: factor**attempt would overflow a float after ~1750 tries.
        return min(self.min_delay * self.factor ** min(attempt, 64), self.max_delay)

    def next_delay(self) -> float:
        delay = self.base_delay(self.attempt)
        self.attempt += 1
        return delay + self._rand(0.0, delay * self.jitter)

    def reset(self) -> None:
        self.attempt = 0
