"""State machines as tables: one :class:`Table` type and one ``step`` for all of them.

Each machine lists its transitions ``(state, event) → state`` and, for the
pairs it refuses with a specific reason, ``(state, event) → (code, message)``;
anything in neither table is refused with a generic ``INVALID_STATE`` that
names the machine. The exception raised is the owning package's own (the
engine's ``TransitionRefused``, the SDK's call-state error), so each package
keeps one exception tree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


class Table(Generic[S, E]):
    __slots__ = ("name", "transitions", "refusals", "_refused")

    def __init__(self, name: str, transitions: Mapping[tuple[S, E], S],
                 refusals: Mapping[tuple[S, E], tuple[str, str]],
                 refused: Callable[[str, str], Exception]) -> None:
        self.name = name
        self.transitions = transitions
        self.refusals = refusals
        self._refused = refused

    def step(self, state: S, event: E) -> S:
        """The state after ``event``; raises the package's refusal if the table has none."""
        target = self.transitions.get((state, event))
        if target is not None:
            return target
        code, message = self.refusals.get((state, event), (
            "INVALID_STATE", f"'{event.value}' is not allowed while {self.name} is {state.value}"))
        raise self._refused(code, message)

    def allows(self, state: S, event: E) -> bool:
        return (state, event) in self.transitions
