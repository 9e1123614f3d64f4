"""`telcoflow serve` + the published Quick Start + `telcoflow call`, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from telcoflow.audio.resample import resample
from telcoflow.audio.wav import read_wav, write_wav

from ..conftest import ROOT
from ..interop.agent_process import AgentProcess
from ..interop.signals import assert_follows, chirp, without_gaps

QUICKSTART = ROOT / "tests" / "interop" / "agents" / "quickstart_echo.py"


@pytest.mark.parametrize("via", ["phone", "twilio", "audiocodes"])
def test_serve_shows_keys_once_and_call_records_the_echo(tmp_path: Path, refsdk_path: Path,
                                                         via: str) -> None:
    """A user's first five minutes, through each door: the call is placed with the
    keys the development gateway saved, and what comes back is the echo."""
    env = dict(os.environ, TELCOFLOW_CREDENTIALS=str(tmp_path / "creds.json"))
    for name in ("TELCOFLOW_API_KEY", "TELCOFLOW_CONNECTOR_UUID", "TELCOFLOW_CONFIG"):
        env.pop(name, None)
    serve_cmd = [sys.executable, "-m", "telcoflow.cli.main", "serve", "--port", "0"]
    with AgentProcess(serve_cmd, env) as server:
        server.wait_for("saved for local tools")
        exports = dict(line.split("export ", 1)[1].split("=", 1)
                       for line in server.lines if "export " in line)
        url = server.wait_for("gateway ready on").split("gateway ready on ")[1].split()[0]
        assert (tmp_path / "creds.json").stat().st_mode & 0o777 == 0o600
        saved = json.loads((tmp_path / "creds.json").read_text())["gateways"][url]

        agent_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        agent_env.update(PYTHONPATH=str(refsdk_path), TELCOFLOW_BASE_URL=url, AGENT_RATE="24000",
                         WSS_API_KEY=exports["WSS_API_KEY"],
                         WSS_CONNECTOR_UUID=exports["WSS_CONNECTOR_UUID"])
        with AgentProcess([sys.executable, "-S", "-u", str(QUICKSTART)], agent_env) as agent:
            agent.wait_for("Connected. Waiting for sessions")
            sent = chirp(1.5, 44100, f1=3000)
            write_wav(tmp_path / "in.wav", sent, 44100)
            done = subprocess.run(
                [sys.executable, "-m", "telcoflow.cli.main", "call", "--via", via,
                 "--to", "+15550100",
                 "--play", str(tmp_path / "in.wav"), "--record", str(tmp_path / "out.wav")],
                env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            agent.wait_for("terminated")
        output = server.output + agent.output + done.stdout + done.stderr

    heard, rate = read_wav(tmp_path / "out.wav")
    assert rate == {"phone": 8000, "twilio": 8000, "audiocodes": 24000}[via]
    expected = np.frombuffer(resample(sent, 44100, rate), dtype="<i2")
    # what the agent returned, less the silence a late agent leaves (a busy machine):
    # every window of it in step with what was sent; nothing lost, repeated or altered
    assert_follows(without_gaps(heard, rate // 50), expected)
    # the gateway removed its entry when it stopped: no stale keys for the next one
    assert json.loads((tmp_path / "creds.json").read_text())["gateways"] == {}
    for secret in (exports["WSS_API_KEY"], exports["TELCOFLOW_PHONE_KEY"]):
        assert output.count(secret) == 1, "a key was shown more than once"
        assert not any(secret in line for line in server.lines if " INFO " in line)
    for secret in (saved["twilio_auth_token"], saved["audiocodes_token"]):
        assert secret not in output, "a carrier's token was shown"


def test_serve_with_json_logs_and_a_separate_metrics_listener(tmp_path: Path) -> None:
    """The operator's flags: log lines are JSON objects with no key in them, and /metrics
    and the probes answer on their own listener with the printed metrics key."""
    import urllib.error
    import urllib.request

    env = dict(os.environ, TELCOFLOW_CREDENTIALS=str(tmp_path / "creds.json"))
    for name in ("TELCOFLOW_API_KEY", "TELCOFLOW_CONNECTOR_UUID", "TELCOFLOW_CONFIG"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "telcoflow.cli.main", "serve", "--port", "0",
           "--metrics-listen", "127.0.0.1:0", "--log-format", "json"]
    with AgentProcess(cmd, env) as server:
        server.wait_for("saved for local tools")
        said = json.loads(server.wait_for("metrics and probes on"))["message"]
        where = said.split(" on ", 1)[1].strip()
        exports = dict(line.split("export ", 1)[1].split("=", 1)[0:2]
                       for line in server.lines if "export " in line)
        key = exports["TELCOFLOW_METRICS_KEY"].split()[0]
        with urllib.request.urlopen(f"{where}/healthz", timeout=10) as health:
            assert health.status == 200
        request = urllib.request.Request(f"{where}/metrics",
                                         headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=10) as metrics:
            assert b"telcoflow_calls_active" in metrics.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{where}/metrics", timeout=10)
        assert refused.value.code == 401
        logs = [json.loads(line) for line in server.lines if line.startswith("{")]
    assert any(entry["message"].startswith("gateway ready on") for entry in logs)
    secrets = [v.split()[0] for k, v in exports.items() if "KEY" in k]
    assert logs and not any(s in json.dumps(logs) for s in secrets)
