"""Seeded test values for the round-trip tests of every plane."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pytest

from telcoflow.protocol import errors

T = TypeVar("T")
SEEDS = range(40)
_ALPHABET = "aZ09 +-_.:/\"\\'é☎\u2028{}"


class Draw:
    """Seeded values; strings are unique, so two swapped fields never compare equal."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._n = 0

    def text(self) -> str:
        self._n += 1
        return "".join(self._rng.choices(_ALPHABET, k=self._rng.randint(0, 8))) + f"#{self._n}"

    def flag(self) -> bool:
        return self._rng.random() < 0.5

    def pick(self, options: Sequence[T]) -> T:
        return self._rng.choice(options)

    def number(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def numbers(self, count: int, low: int, high: int) -> list[int]:
        return self._rng.sample(range(low, high), count)

    def value(self, depth: int = 2) -> Any:
        """Any JSON value: what ``content``/``result``-like fields carry untouched."""
        rng = self._rng
        kind = rng.randrange(7 if depth else 5)
        if kind == 5:
            return [self.value(depth - 1) for _ in range(rng.randint(0, 3))]
        if kind == 6:
            return self.obj(depth - 1)
        scalars = (self.text(), rng.randint(-10**12, 10**12), rng.uniform(-1e6, 1e6), self.flag(),
                   None)
        return scalars[kind]

    def obj(self, depth: int = 1) -> dict[str, Any]:
        return {self.text(): self.value(depth) for _ in range(self._rng.randint(0, 3))}

    def pcm(self) -> bytes:
        return self._rng.randbytes(2 * self._rng.randint(1, 480))


def raised(parse: Callable[[Any], object], frame: Any) -> errors.ProtocolError:
    """The protocol error ``parse(frame)`` raises (the test fails if it raises none)."""
    with pytest.raises(errors.ProtocolError) as info:
        parse(frame)
    return info.value
