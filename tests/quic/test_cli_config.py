"""``[quic]`` in the config file, ``telcoflow serve --quic PORT``, ``telcoflow call --via quic``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from telcoflow.audio.wav import read_wav, write_wav
from telcoflow.cli.main import main as cli_main
from telcoflow.cli.serve import build_config
from telcoflow.server.config import QuicConfig, load_file
from telcoflow.server.errors import ConfigError
from telcoflow.telephony.quic.certs import fingerprint, self_signed
from telcoflow.testing import GatewayThread, Phone

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
