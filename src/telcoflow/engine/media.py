"""The media plane: which calls tick in which phase, and the tick itself.

Every answered call belongs to one of the media clock's phases (assigned in
turn, so the phases stay even). A two-party call ticks on its own
(:meth:`Call.tick`); bridged calls of one agent rate go through one batch
(:class:`~.conference.ConferenceTicker`).

While the tick runs late (admission control's verdict) the media plane sheds load:
the calls' quality watches pause and calls behind catch up by cuts; see
:meth:`MediaPlane._shed_load`.

The observer (:class:`~.ports.CallObserver`) hears of each tick once, not of each
call or frame: its lateness, its start and end (it times them), and each interrupt
when the interrupted call's next tick has run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .calls import Call
from .clock import PHASES, MediaClock
from .conference import ConferenceTicker
from .overload import Admission, LoadShed
from .ports import CallObserver, NoObserver
from .quality_watch import WatchCost

logger = logging.getLogger(__name__)


class MediaPlane:
    def __init__(self, failed: Callable[[Call, BaseException], None] | None = None,
                 observer: CallObserver | None = None) -> None:
        self.clock = MediaClock()
        self._failed = failed  # told of a call whose tick raised (the engine reports it)
        self._observer: CallObserver = observer or NoObserver()
        self._interrupts: dict[Call, float] = {}  # interrupted, not yet ticked since: when
        self._skip: set[Call] = set()  # ticked early (an interrupt): skips its next tick
        self._phases: list[set[Call]] = [set() for _ in range(PHASES)]
        self._phase_of: dict[Call, int] = {}
        self._next_phase = 0
        self._conferences: dict[int, ConferenceTicker] = {}
        self.admission = Admission()  # fed every sub-tick's lateness: new calls or not
        self.shed = LoadShed()  # while overloaded: watch paused, catch-up by cuts
        self.watch = WatchCost(shed=self.shed)  # the calls' quality watches' cost
        self._paused_at_calls = 0

    def __len__(self) -> int:
        return len(self._phase_of)

    def add(self, call: Call, now: float) -> None:
        if call in self._phase_of:
            return
        phase, self._next_phase = self._next_phase, (self._next_phase + 1) % PHASES
        self._phase_of[call] = phase
        self._phases[phase].add(call)
        self.clock.start(now)

    def discard(self, call: Call) -> None:
        phase = self._phase_of.pop(call, None)
        if phase is not None:
            self._phases[phase].discard(call)
        self._interrupts.pop(call, None)
        self._skip.discard(call)
        if not self._phase_of:
            self.clock.stop()  # no wake-ups while no call has media

    def next_deadline(self) -> float | None:
        return self.clock.next_deadline()

    def interrupted(self, call: Call, now: float) -> None:
        """``call``'s agent interrupted at ``now``: the caller hears silence at once, not
        at its next tick (up to 20 ms away). The call's tick runs now and the call moves
        to the phase due 15-20 ms from now, so its frames keep their 20 ms cadence (this
        one early by what the interrupt saved, no frame added or lost)."""
        phase = self._phase_of.get(call)
        if phase is None:
            return
        if call.bridge is not None:  # a bridge ticks as one batch: heard at its next tick
            self._interrupts[call] = now
            return
        try:
            call.tick()
        except Exception as exc:
            if self._failed is not None:
                self._failed(call, exc)
            return
        self._observer.interrupt_done(0.0)
        later = self.clock.phase_due_in(3)  # the phase three sub-ticks on: 15-20 ms away
        if later == phase:
            # it ticked under 5 ms ago: the frame just played stands for its next tick,
            # so it skips the one 20-25 ms on instead (no frame added: same count)
            later = self.clock.phase_due_in(0)
            self._skip.add(call)
        self._phases[phase].discard(call)
        self._phases[later].add(call)
        self._phase_of[call] = later

    def tick(self, now: float) -> None:
        """Run every phase that is due at ``now`` (several after a stall)."""
        due_at = self.clock.next_deadline()
        ticks = self.clock.due(now)
        if not ticks or due_at is None:
            return
        observer = self._observer
        observer.media_tick_started(max(0.0, now - due_at), len(ticks))
        self.admission.observe(max(0.0, now - due_at), now)
        self._shed_load(now)
        if self.clock.just_skipped >= PHASES:
            self._owe(self.clock.just_skipped // PHASES)
        for n in ticks:
            self._tick_phase(n % PHASES)
        if self._interrupts:
            self._interrupts_heard(ticks, now)
        observer.media_tick_done()

    def _shed_load(self, now: float) -> None:
        """While the media tick runs late the media plane sheds load (:class:`LoadShed`):
        the quality watch is paused (a third of the gateway's CPU: the calls' audio comes
        first) and calls behind catch up by cuts, not by time-compression (WSOLA was half
        the gateway's CPU at 400 calls behind). Both resume once the overload is over
        *and* the calls have fallen under 90 % of the count they stopped at: resuming at
        the same load would only bring the lateness back, and they would flap on and off
        with the admission's 3 s window."""
        shed = self.shed
        overloaded = self.admission.overloaded(now)
        if overloaded and not shed.active:
            shed.active = True
            self._paused_at_calls = len(self)
            logger.warning("media tick running late (p99 %.0f ms) with %d calls: quality "
                           "watch paused and catch-up by cuts until under %d calls",
                           1000 * self.admission.p99_s, len(self), int(0.9 * len(self)))
        elif shed.active and not overloaded and len(self) < 0.9 * self._paused_at_calls:
            shed.active = False
            logger.info("quality watch and catch-up by time-compression resumed: %d calls, "
                        "the media tick on time", len(self))

    def _owe(self, ticks: int) -> None:
        """A stall made every call miss ``ticks`` of its ticks: they catch up (playout)."""
        for call in self._phase_of:
            if call.bridge is None:
                call.owe(ticks)

    def _interrupts_heard(self, ticks: range, now: float) -> None:
        phases = {n % PHASES for n in ticks}
        for call, at in tuple(self._interrupts.items()):
            if self._phase_of.get(call) in phases:
                del self._interrupts[call]
                self._observer.interrupt_done(now - at)

    def _tick_phase(self, phase: int) -> None:
        bridged: dict[int, list[Call]] = {}
        skip = self._skip
        for call in tuple(self._phases[phase]):
            if skip and call in skip:
                skip.discard(call)
                continue
            if call.bridge is None:
                try:
                    call.tick()
                except Exception as exc:  # one call's broken leg must not silence the others
                    if self._failed is not None:
                        self._failed(call, exc)
            else:
                bridged.setdefault(call.agent_rate, []).append(call)
                if call.watch is not None:  # a bridge is not measured: silence keeps time
                    call.watch.tick()
        for rate, calls in bridged.items():
            ticker = self._conferences.get(rate)
            if ticker is None:
                ticker = self._conferences[rate] = ConferenceTicker(rate)
            try:
                ticker.tick(calls)
            except Exception:
                logger.exception("media tick failed for %d bridged calls", len(calls))
