"""An engine on a hand-moved clock with recording fakes of every port (no sockets, no sleep)."""

from __future__ import annotations

from dataclasses import dataclass, field

from telcoflow.engine import ConnectorSpec, Engine, EngineSettings
from telcoflow.engine.calls import Call
from telcoflow.engine.ports import AgentCommand
from telcoflow.testing.fakes import FakeAgentLink, FakeClock, FakeDialler, FakeLeg, FakeSessionLink

CONNECTOR = "conn-1"
NUMBER = "+15550100"
CALLER = "+15550001"


@dataclass
class Harness:
    settings: EngineSettings = field(default_factory=lambda: EngineSettings(
        connectors=[ConnectorSpec(CONNECTOR, (NUMBER,), max_sessions=5)],
        ring_timeout_s=30.0, resume_grace_s=30.0, agent_reconnect_grace_s=10.0,
        connect_ring_cap_s=120.0, missed_ring_s=20.0))
    clock: FakeClock = field(default_factory=FakeClock)
    wakes: int = 0

    def __post_init__(self) -> None:
        self.engine = Engine(self.settings, self.clock)
        self.engine.set_waker(self._wake)
        self.dialler = FakeDialler(NUMBER)
        self.engine.add_dialler(self.dialler)
        self._commands = 0

    def _wake(self) -> None:
        self.wakes += 1

    # ── time ────────────────────────────────────────────────────────────────
    def run(self, seconds: float) -> None:
        """Move time on by ``seconds``, firing every deadline on the way, as the
        asyncio driver would (it sleeps until ``next_deadline()``)."""
        until = self.clock.t + seconds
        while (deadline := self.engine.next_deadline()) is not None and deadline <= until:
            self.clock.t = max(self.clock.t, deadline)
            self.engine.handle_timer(self.clock.t)
        self.clock.t = until

    def stall(self, seconds: float) -> None:
        """The event loop was blocked: time passes with no timer firing, then one does."""
        self.clock.advance(seconds)
        self.engine.handle_timer(self.clock.t)

    # ── parties ─────────────────────────────────────────────────────────────
    def link(self, rate: int = 16000, mode: str = "mixed") -> FakeSessionLink:
        link = FakeSessionLink(CONNECTOR, rate, mode)
        self.engine.link_up(link)
        return link

    def dial(self, codec: str = "pcm16", rate: int = 16000, to: str = NUMBER
             ) -> tuple[FakeLeg, str | None]:
        leg = FakeLeg(codec, rate)
        return leg, self.engine.inbound_call(leg, to, CALLER)

    def claim(self, link: FakeSessionLink, call_id: str) -> FakeAgentLink:
        """session.open + session.ready, then the agent's voice link opens."""
        session = self.engine.calls[call_id].session
        self.engine.open_session(link, session.id)
        self.engine.session_ready(link, session.id)
        agent = FakeAgentLink()
        self.engine.agent_attach(call_id, agent)
        return agent

    def command(self, agent: FakeAgentLink, name: str, timeout_s: float = 10.0,
                ring_s: float = 60.0, digits: str = "") -> tuple[object, ...]:
        """Send a command; returns its answer if it came at once, else ``()``."""
        self._commands += 1
        command_id = f"cmd-{self._commands}"
        self.engine.command(agent, AgentCommand(command_id, name, timeout_s, ring_s, digits))
        answers = [e for e in agent.events if e[0] in ("done", "failed") and e[1] == command_id]
        return answers[0] if answers else ()

    def answered_call(self, codec: str = "pcm16", rate: int = 16000,
                      agent_rate: int = 16000, mode: str = "mixed"
                      ) -> tuple[FakeLeg, FakeSessionLink, FakeAgentLink, Call]:
        link = self.link(agent_rate, mode)
        leg, call_id = self.dial(codec, rate)
        assert call_id is not None
        agent = self.claim(link, call_id)
        assert self.command(agent, "call.answer")[0] == "done"
        return leg, link, agent, self.engine.calls[call_id]
