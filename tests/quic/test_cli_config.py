"""``[quic]`` in the config file, ``telcoflow serve --quic PORT``, ``telcoflow call --via quic``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from telcoflow.audio.wav import read_wav, write_wav
from telcoflow.cli.main import main as cli_main
from telcoflow.cli.serve import build_config
from telcoflow.server import credentials
from telcoflow.server.config import QuicConfig, load_file
from telcoflow.server.errors import ConfigError
from telcoflow.telephony.quic.certs import fingerprint, self_signed
from telcoflow.testing import GatewayThread, Phone

from ..interop.agent_process import AgentProcess
from .conftest import agent_for, tone

CONFIG = """
[[connectors]]
uuid = "c-1"
api_keys = ["tfk_test-key-0123456789"]
numbers = ["+15550100"]
[quic]
listen = "127.0.0.1:4999"
{extra}
"""


def test_the_quic_section_is_read(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(CONFIG.format(extra='cert = "c.pem"\nkey = "k.pem"\nmax_connections = 8'))
    quic = load_file(path).quic
    assert quic == QuicConfig("127.0.0.1", 4999, "c.pem", "k.pem", 8)
    path.write_text(CONFIG.format(extra='cert = "c.pem"'))
    with pytest.raises(ConfigError, match="cert and key together"):
        load_file(path)


def test_serve_quic_port_opens_the_door_on_embedded_defaults(tmp_path: Path) -> None:
    config = build_config(None, None, 0, quic=4433)
    assert config.quic is not None and (config.quic.port, config.quic.cert) == (4433, None)
    path = tmp_path / "gw.toml"
    path.write_text(CONFIG.format(extra='cert = "c.pem"\nkey = "k.pem"'))
    config = build_config(str(path), None, None, quic=5000)
    assert config.quic is not None and (config.quic.port, config.quic.cert) == (5000, "c.pem")


@pytest.mark.asyncio
async def test_a_configured_certificate_is_served_and_pinned(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    cert, key = self_signed("127.0.0.1")
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    quic = QuicConfig(port=0, cert=str(tmp_path / "c.pem"), key=str(tmp_path / "k.pem"))
    with GatewayThread(quic=quic) as gw:
        assert quic.fingerprint == fingerprint(cert)
        async with agent_for(gw, fingerprint=fingerprint(cert)) as agent:
            assert await agent.subscribe()


@pytest.mark.asyncio
async def test_telcoflow_call_via_quic_originates_plays_and_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELCOFLOW_CREDENTIALS", str(tmp_path / "none.json"))
    play, record = tmp_path / "in.wav", tmp_path / "out.wav"
    write_wav(str(play), tone(1.0, 8000), 8000)
    with GatewayThread(quic=QuicConfig(port=0)) as gw:
        assert gw.config.quic is not None
        monkeypatch.setenv("WSS_CONNECTOR_UUID", gw.connector_uuid)
        async with Phone(gw.ws_url, gw.phone_key) as line:
            await line.register("+15557001", codec="pcmu", answer="auto")
            cli = asyncio.create_task(asyncio.to_thread(cli_main, [
                "call", "--via", "quic", "--to", "+15557001", "--url", gw.ws_url,
                "--key", gw.api_key, "--quic-port", str(gw.config.quic.port),
                "--fingerprint", gw.config.quic.fingerprint, "--play", str(play),
                "--record", str(record), "--duration", "1.5"]))
            await line.wait_answered()
            await line.play(tone(1.0, 8000, 300.0))    # what the number says
            code = await cli
            heard_by_line = line.received()
    assert code == 0
    samples, rate = read_wav(str(record))
    assert rate == 8000 and np.abs(samples).max() > 4000  # the line's tone, recorded
    assert np.abs(heard_by_line).max() > 4000        # the line heard the file


def test_call_via_quic_wants_a_way_to_check_the_certificate(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["call", "--via", "quic", "--to", "+15557001"]) == 2
    assert "--fingerprint" in capsys.readouterr().err


def test_credentials_keep_the_quic_door_of_a_dev_gateway(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELCOFLOW_CREDENTIALS", str(tmp_path / "creds.json"))
    config = build_config(None, None, 8123, quic=0)
    credentials.save(config)  # the door is not open yet: nothing to pin
    assert credentials.load()["quic_port"] is None
    assert config.quic is not None
    config.quic.port, config.quic.fingerprint = 4999, "ab" * 32   # what start() writes back
    credentials.save(config)
    saved = credentials.load("ws://localhost:8123")
    assert (saved["quic_port"], saved["quic_fingerprint"]) == (4999, "ab" * 32)
    credentials.save(build_config(None, None, 8124))               # a gateway without QUIC
    assert credentials.load("ws://127.0.0.1:8124")["quic_port"] is None
    assert credentials.load("ws://127.0.0.1:8123")["quic_port"] == 4999


@pytest.mark.asyncio
async def test_serve_quic_saves_what_call_via_quic_needs(tmp_path: Path) -> None:
    """``telcoflow serve --quic PORT`` on embedded defaults, then ``telcoflow call --via
    quic --to N`` with no --url, --key, --quic-port nor --fingerprint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WSS_", "TELCOFLOW_"))}
    env["TELCOFLOW_CREDENTIALS"] = str(tmp_path / "creds.json")
    play, record = tmp_path / "in.wav", tmp_path / "out.wav"
    write_wav(str(play), tone(1.0, 8000), 8000)
    cli = [sys.executable, "-m", "telcoflow.cli.main"]
    with AgentProcess([*cli, "serve", "--port", "0", "--quic", "0"], env) as server:
        server.wait_for("saved for local tools")
        door = re.search(r"QUIC door on udp \S+:(\d+).* SHA-256 ([0-9a-f]{64})",
                         server.wait_for("QUIC door on udp"))
        assert door is not None
        assert "the QUIC door's port and certificate fingerprint too" in server.output
        (saved,) = json.loads((tmp_path / "creds.json").read_text())["gateways"].values()
        assert (saved["quic_port"], saved["quic_fingerprint"]) == (int(door[1]), door[2])
        async with Phone(saved["base_url"], saved["phone_key"]) as line:
            await line.register("+15557001", codec="pcmu", answer="auto")
            call = asyncio.create_task(asyncio.to_thread(subprocess.run, [
                *cli, "call", "--via", "quic", "--to", "+15557001", "--play", str(play),
                "--record", str(record), "--duration", "1.5"],
                env=env, capture_output=True, text=True, timeout=60))
            await line.wait_answered()
            await line.play(tone(1.0, 8000, 300.0))    # what the number says
            done = await call
            heard_by_line = line.received()
    assert done.returncode == 0, done.stderr
    samples, rate = read_wav(str(record))
    assert rate == 8000 and np.abs(samples).max() > 4000  # the line's tone, recorded
    assert np.abs(heard_by_line).max() > 4000        # the line heard the file
    # the gateway stopped: its entry (and its QUIC door's) went with it
    assert json.loads((tmp_path / "creds.json").read_text())["gateways"] == {}
