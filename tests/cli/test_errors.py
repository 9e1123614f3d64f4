"""Every mistake a user can make on the command line gets one clear line on stderr and a
non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from telcoflow.testing import GatewayThread

from ..reliability.test_faults import free_tcp_port


def telcoflow(*args: str, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "telcoflow.cli.main", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WSS_", "TELCOFLOW_", "TWILIO_"))}
    return {**env, "TELCOFLOW_CREDENTIALS": str(tmp_path / "creds.json"), **extra}


def one_clear_line(run: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    assert run.returncode == code, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert lines and says in lines[-1], run.stderr


def test_version() -> None:
    run = telcoflow("--version")
    assert run.returncode == 0 and run.stdout.startswith("telcoflow ")


def test_a_wrong_key_is_a_refusal_with_the_gateways_reason(
        gateway: GatewayThread, tmp_path: Path) -> None:
    run = telcoflow("call", "--to", gateway.number, "--url", gateway.ws_url,
                    "--key", "not-the-key", env=clean_env(tmp_path))
    one_clear_line(run, 1, "refused the call: HTTP 401: invalid phone network key")


@pytest.mark.parametrize(("make", "says"), [
    (lambda d: str(d / "missing.wav"), "no such file"),
    (lambda d: (d / "notes.txt").write_text("hello") and str(d / "notes.txt"),
     "not a PCM WAV file"),
], ids=["missing", "not-a-wav"])
def test_a_bad_play_file_is_named_before_anything_is_dialled(
        tmp_path: Path, make: object, says: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    run = telcoflow("call", "--to", "+15550100", "--play", path, "--key", "k",
                    env=clean_env(tmp_path))
    one_clear_line(run, 2, says)


def test_a_record_path_that_cannot_be_written(tmp_path: Path) -> None:
    run = telcoflow("call", "--to", "+15550100", "--record", str(tmp_path / "no" / "x.wav"),
                    "--key", "k", env=clean_env(tmp_path))
    one_clear_line(run, 2, "cannot write in")


def test_no_gateway_there(tmp_path: Path) -> None:
    run = telcoflow("call", "--to", "+15550100", "--key", "k", "--duration", "0.1",
                    "--url", f"ws://127.0.0.1:{free_tcp_port()}", env=clean_env(tmp_path))
    one_clear_line(run, 1, "cannot reach the gateway")


def test_serve_on_a_port_in_use(gateway: GatewayThread, tmp_path: Path) -> None:
    port = gateway.ws_url.rsplit(":", 1)[1]
    run = telcoflow("serve", "--port", port, env=clean_env(tmp_path))
    one_clear_line(run, 1, "the address is in use")


def test_a_missing_config_file_from_the_option_or_the_environment(tmp_path: Path) -> None:
    missing = str(tmp_path / "gateway.toml")
    one_clear_line(telcoflow("serve", "--config", missing, env=clean_env(tmp_path)), 2,
                   "cannot read config")
    one_clear_line(telcoflow("serve", env=clean_env(tmp_path, TELCOFLOW_CONFIG=missing)), 2,
                   "cannot read config")


def test_two_saved_gateways_and_no_url_is_a_question_not_a_guess(tmp_path: Path) -> None:
    entries = {url: {"base_url": url, "phone_key": "k"}
               for url in ("ws://127.0.0.1:9001", "ws://127.0.0.1:9002")}
    (tmp_path / "creds.json").write_text(json.dumps({"gateways": entries}))
    run = telcoflow("call", "--to", "+15550100", env=clean_env(tmp_path))
    one_clear_line(run, 2, "several development gateways are saved")
    assert "ws://127.0.0.1:9001" in run.stderr and "pass --url" in run.stderr
