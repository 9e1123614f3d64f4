"""Run an agent script in a subprocess and wait on what it logs (no sleeps)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path
from types import TracebackType

from telcoflow.testing import GatewayThread

from ..conftest import refsdk_command, refsdk_env

SCENARIO = Path(__file__).parent / "agents" / "scenario_agent.py"


class AgentProcess:
    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self._cmd, self._env = cmd, env
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> AgentProcess:
        self.proc = subprocess.Popen(self._cmd, env=self._env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.PIPE, text=True)
        threading.Thread(target=self._pump, daemon=True).start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def say(self, line: str) -> None:
        """Tell the agent to act (it reads stdin where the scenario says so)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def marks(self, what: str) -> list[list[str]]:
        """Every 'MARK what …' line so far, split into fields."""
        with self._cond:
            return [ln.split()[2:] for ln in self.lines
                    if ln.startswith("MARK ") and ln.split()[1:2] == [what]]

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<exited>")
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 20.0, start: int = 0) -> str:
        """Block until a log line containing ``text`` appears; return it."""
        def found() -> str | None:
            return next((ln for ln in self.lines[start:] if text in ln), None)
        with self._cond:
            ok = self._cond.wait_for(lambda: found() is not None or "<exited>" in self.lines,
                                     timeout)
            line = found()
        if line is None:
            raise AssertionError(f"agent never logged {text!r} (ok={ok}); output:\n"
                                 + "\n".join(self.lines[-40:]))
        return line

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


def scenario_agent(refsdk: Path, gw: GatewayThread, scenario: str, **env: str) -> AgentProcess:
    """The published-SDK scenario agent (``agents/scenario_agent.py``) against ``gw``."""
    return AgentProcess(refsdk_command(SCENARIO, scenario), refsdk_env(refsdk, gw, **env))


async def wait_mark(proc: AgentProcess, what: str, timeout: float = 20.0, nth: int = 1) -> str:
    """The ``nth`` 'MARK what' line, once it is there."""
    start = 0
    for _ in range(nth):
        line = await asyncio.to_thread(proc.wait_for, f"MARK {what}", timeout, start)
        start = proc.lines.index(line, start) + 1
    return line
