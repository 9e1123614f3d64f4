"""A newcomer's path (docs/console.md): `telcoflow serve`, the demo agent, the printed
console URL in a browser, a call from the softphone, then the call's record and recording."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from ..interop.agent_process import AgentProcess
from .conftest import ARTEFACTS
from .test_browser import log_in, until


class InDirectory(AgentProcess):
    """A process run in ``cwd`` (the development gateway records under it)."""

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        super().__init__(cmd, env)
        self._cwd = cwd

    def __enter__(self) -> AgentProcess:
        self.proc = subprocess.Popen(self._cmd, env=self._env, cwd=self._cwd, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE)
        threading.Thread(target=self._pump, daemon=True).start()
        return self


def test_serve_prints_the_console_and_the_browser_calls_the_demo_agent(
        browser: Any, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELCOFLOW_", "WSS_"))}
    env["TELCOFLOW_CREDENTIALS"] = str(tmp_path / "creds.json")
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in
                                        env.get("PYTHONPATH", "").split(os.pathsep) if p)
    serve = [sys.executable, "-m", "telcoflow.cli.main", "serve", "--port", "0"]
    with InDirectory(serve, env, tmp_path) as server:
        url = server.wait_for("Console: ").split("Console: ")[1].split()[0]
        recordings = server.wait_for("Recording calls to ").split(" to ")[1].split(" (")[0]
        exports = dict(line.split("export ", 1)[1].split("=", 1)
                       for line in server.lines if "export " in line)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        agent_env = dict(env, WSS_API_KEY=exports["WSS_API_KEY"],
                         WSS_CONNECTOR_UUID=exports["WSS_CONNECTOR_UUID"],
                         TELCOFLOW_BASE_URL="ws" + url[4:].rstrip("/"))
        demo_agent = [sys.executable, "-u", "-m", "telcoflow.cli.demo_agent"]
        with InDirectory(demo_agent, agent_env, tmp_path) as agent:
            agent.wait_for("Waiting for sessions")
            context = browser.new_context(base_url=url)
            page = context.new_page()
            page.set_default_timeout(15_000)
            try:
                log_in(page, exports["WSS_API_KEY"])
                page.goto("/#phone")
                page.check("#phone-raw")
                page.click("#phone-call")  # the number field holds the connector's number
                until(page, "window.softphone.latenciesMs.length >= 1")
                call_id = page.evaluate("window.softphone.callId")
                page.click("#phone-hangup")
                until(page, "window.softphone.status === 'ended'")
                agent.wait_for("terminated")
                page.goto("/#records")
                page.click(f"#records-table tr[data-call-id='{call_id}']")
                assert until(page, "window.consoleView.waveform")["channels"] == 2
                page.screenshot(path=str(ARTEFACTS / "newcomer-record.png"), full_page=True)
            finally:
                context.close()
    assert list(Path(recordings).glob(f"*/{call_id}.wav")), "no recording on disk"
