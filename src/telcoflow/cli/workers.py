"""``telcoflow serve --workers N``: a supervisor that runs N gateway processes.

Each worker is ``telcoflow serve`` with the same arguments and ``TELCOFLOW_WORKER``
set to its index (see :mod:`telcoflow.server.workers`). Signals are passed on:
``SIGTERM`` drains every worker, ``SIGINT`` stops them. A worker that dies is
started again (its calls are lost with it; the other workers' go on, and its agents
are told GATEWAY_NODE_LOST by them), at most once per ``RESTART_S``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from types import FrameType

from ..server.console.session import SECRET_ENV
from ..server.workers import WORKER_ENV

RESTART_S = 1.0
STARTUP_S = 5.0  # a worker failing this soon failed to start: the supervisor gives up


class Supervisor:
    def __init__(self, count: int, argv: list[str]) -> None:
        self.count, self.argv = count, argv
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.started = [0.0] * count
        self.stopping = False
        # the console's cookies must verify in every worker (and in one started again)
        self.console_secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._forward)
        for index in range(self.count):
            self._start(index)
        codes: dict[int, int] = {}
        while len(codes) < self.count:
            pid, status = os.wait()
            found = next((i for i, p in enumerate(self.procs) if p and p.pid == pid), None)
            if found is None:
                continue
            index = found
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                codes[index] = code
            elif time.monotonic() - self.started[index] < STARTUP_S and code > 0:
                # it could not start (a bad config, Redis away): so will the rest
                self._forward(signal.SIGINT, None)
                codes[index] = code
            else:
                print(f"telcoflow serve: worker {index} exited ({code}); starting it again",
                      file=sys.stderr, flush=True)
                time.sleep(RESTART_S)  # a worker that cannot start must not spin the host
                self._start(index)
        return max(codes.values(), default=0)

    def _start(self, index: int) -> None:
        env = {**os.environ, WORKER_ENV: str(index), SECRET_ENV: self.console_secret}
        self.started[index] = time.monotonic()
        self.procs[index] = subprocess.Popen(
            [sys.executable, "-m", "telcoflow.cli.main", *self.argv], env=env)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signum)
