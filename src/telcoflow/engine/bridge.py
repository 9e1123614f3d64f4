"""The callee's leg of a bridged call, and each human leg's inbox and filter states.

A bridged call's media runs on the media tick in one batch with every other
bridged call of its agent rate (:mod:`.conference`); this record is what the
batch keeps per call. It knows legs only through the :class:`~.ports.Leg` port.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..audio.codec import decode
from ..audio.mixer import CALLEE, CALLER, routes_for
from .ports import Leg

# Frames a leg may run ahead of the tick before its oldest is dropped: bounds the
# delay a phone clock faster than ours can build up to 60 ms.
LEG_QUEUE_FRAMES = 3

State = npt.NDArray[np.float32]


def frame_bytes(rate: int) -> int:
    """Bytes of 20 ms of PCM16 at ``rate``."""
    return rate // 50 * 2


class Bridge:
    """The legs of one bridged call: inboxes of decoded audio, filter states, routes."""

    def __init__(self, caller: Leg, callee: Leg) -> None:
        self.callee = callee
        self.legs: dict[int, Leg] = {CALLER: caller, CALLEE: callee}
        # decoded PCM16 at each leg's own rate, waiting for the tick
        self.inbox: dict[int, bytearray] = {CALLER: bytearray(), CALLEE: bytearray()}
        self.present = {CALLER: True, CALLEE: True}
        # resampler histories, made by the ticker on first use (a fresh filter: the
        # two-party path's history is not carried over, a ~2 ms settle at bridging)
        self.up_state: dict[int, State] = {}
        self.down_state: dict[int, State] = {}
        self.agent_to = (True, True)
        self.routes = routes_for(*self.agent_to)

    def set_agent_routes(self, to_caller: bool, to_callee: bool) -> None:
        self.agent_to = (to_caller, to_callee)
        self._update()

    def caller_left(self) -> None:
        self.present[CALLER] = False
        self.inbox[CALLER].clear()
        self._update()

    def push(self, party: int, payload: bytes) -> None:
        """Phone audio of ``party`` in its codec, in any chunking."""
        fmt = self.legs[party].format
        inbox = self.inbox[party]
        inbox += decode(fmt.codec, payload)
        limit = LEG_QUEUE_FRAMES * frame_bytes(fmt.rate)
        if len(inbox) > limit:
            del inbox[:len(inbox) - limit]

    def _update(self) -> None:
        self.routes = routes_for(*self.agent_to, caller=self.present[CALLER])
